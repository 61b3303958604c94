//! Structured logs: one line per lifecycle event (start, attach, attach error, writer
//! restart, gap, a client closed for a policy reason, shutdown), never per ring event or per
//! frame, written to stderr as text (default) or JSON (`--log-format json`).
//!
//! Called from any thread (the main thread, the tailer, the shards); each line is formatted
//! into one buffer and written with one `write` call, so lines from different threads never
//! interleave. Configured once by [`init`]; before that (tests, tools) lines are text at
//! `info`. Never: log a token or anything a client sent beyond its address, or log on the
//! hot path.

use std::io::Write as _;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::wire::json::{push_u64, write_str, Obj};

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2026-12-04T12:00:00.123Z INFO attach ring=/path last_seqno=42`.
    #[default]
    Text,
    /// `{"ts":"2026-12-04T12:00:00.123Z","level":"info","event":"attach","ring":"/path",…}`.
    Json,
}

impl LogFormat {
    /// Parses `text` or `json`.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl Level {
    /// Parses `debug`, `info`, `warn` or `error`.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One field value of a log line.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    U64(u64),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Value<'a> {
        Value::Str(s)
    }
}

impl From<u64> for Value<'_> {
    fn from(v: u64) -> Self {
        Value::U64(v)
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    format: LogFormat,
    min: Level,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets the format and the lowest level written, once per process (later calls are ignored).
pub fn init(format: LogFormat, min: Level) {
    let _ = SETTINGS.set(Settings { format, min });
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings {
        format: LogFormat::Text,
        min: Level::Info,
    })
}

/// Writes one line: `event` names what happened, `fields` the facts.
pub fn event(level: Level, event: &str, fields: &[(&str, Value<'_>)]) {
    let s = settings();
    if level < s.min {
        return;
    }
    let line = format_line(s.format, now_ms(), level, event, fields);
    let _ = std::io::stderr().lock().write_all(&line);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One formatted line, newline included.
fn format_line(
    format: LogFormat,
    unix_ms: u64,
    level: Level,
    event: &str,
    fields: &[(&str, Value<'_>)],
) -> Vec<u8> {
    let ts = rfc3339_ms(unix_ms);
    let mut out = Vec::with_capacity(160);
    match format {
        LogFormat::Text => {
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
            out.extend_from_slice(level.name().to_ascii_uppercase().as_bytes());
            out.push(b' ');
            out.extend_from_slice(event.as_bytes());
            for (k, v) in fields {
                out.push(b' ');
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                match v {
                    Value::U64(n) => push_u64(&mut out, *n),
                    // Quote values a reader could not split on spaces.
                    Value::Str(s) if s.is_empty() || s.contains([' ', '"', '=']) => {
                        write_str(&mut out, s)
                    }
                    Value::Str(s) => out.extend_from_slice(s.as_bytes()),
                }
            }
        }
        LogFormat::Json => {
            let mut o = Obj::open(&mut out);
            o.str("ts", &ts)
                .str("level", level.name())
                .str("event", event);
            for (k, v) in fields {
                match v {
                    Value::U64(n) => o.u64(k, *n),
                    Value::Str(s) => o.str(k, s),
                };
            }
            o.close();
        }
    }
    out.push(b'\n');
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) for milliseconds since the Unix epoch.
fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_796_384_096_007), "2026-12-04T11:34:56.007Z");
    }

    #[test]
    fn text_lines_quote_what_would_not_split_and_json_lines_parse() {
        let fields = [
            ("ring", Value::from("/dev/shm/my ring")),
            ("last_seqno", Value::from(42u64)),
            ("kind", Value::from("not_found")),
        ];
        let text = format_line(LogFormat::Text, 0, Level::Warn, "attach_error", &fields);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "1970-01-01T00:00:00.000Z WARN attach_error ring=\"/dev/shm/my ring\" last_seqno=42 kind=not_found\n"
        );
        let json = format_line(LogFormat::Json, 0, Level::Info, "attach", &fields);
        let v: sonic_rs::Value = sonic_rs::from_slice(&json).unwrap();
        use sonic_rs::JsonValueTrait;
        assert_eq!(v.get("event").and_then(|x| x.as_str()), Some("attach"));
        assert_eq!(v.get("level").and_then(|x| x.as_str()), Some("info"));
        assert_eq!(v.get("last_seqno").and_then(|x| x.as_u64()), Some(42));
        assert_eq!(
            v.get("ring").and_then(|x| x.as_str()),
            Some("/dev/shm/my ring")
        );
        assert!(json.ends_with(b"}\n"));
    }

    #[test]
    fn levels_and_formats_parse_from_their_flag_values() {
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("xml"), None);
        assert_eq!(Level::parse("warn"), Some(Level::Warn));
        assert!(Level::Debug < Level::Error);
    }
}
