//! Cheap scanning of server messages: what the load client learns from a frame without
//! parsing its JSON (so the client costs far less per event than the server under test).
//!
//! Runs on the load client's threads. Input: one complete text message and the receipt time.
//! Output: a [`Message`] summary; per-event latencies go straight into the caller's histogram.
//!
//! What is relied on (the envelope, docs/protocol.md#2-envelope-and-server_seqno): every frame starts with
//! `{"server_seqno":N,"<Kind>"`, and every event object carries `"seqno":S` and
//! `"timestamp_ns":T`. Events are counted by the exact key `"seqno":` *with its leading quote*,
//! which the envelope's `"server_seqno":` does not match. Nothing here panics on malformed
//! bytes: an unrecognised frame is [`Kind::Other`].

use hdrhistogram::Histogram;
use memchr::memmem::Finder;

/// Byte patterns, built once per thread.
#[derive(Debug)]
pub struct Scanner {
    seqno: Finder<'static>,
    timestamp: Finder<'static>,
    dropped: Finder<'static>,
}

/// What kind of server frame a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An `Events` batch holding `events` event objects.
    Events { events: u64 },
    /// A `Warning` (backpressure) frame; `dropped` is its `"dropped"` count when present.
    Warning { dropped: Option<u64> },
    /// A gap notice (any kind whose name contains `Gap`); `dropped` as for warnings.
    Gap { dropped: Option<u64> },
    /// A data frame without events (TPS, ContentionData, TopAccesses, Lifecycle): its
    /// `server_seqno` is a new one, like an `Events` frame's.
    Data,
    /// A per-connection frame (Hello, Subscribed, Resume, Heartbeat): it repeats the connection's cursor
    /// (the last data seqno sent) rather than taking a new seqno.
    Control,
    /// An `Error` frame: the server refused a client message (a per-connection frame too).
    Error,
    /// Not an envelope this client understands.
    Unrecognised,
}

impl Kind {
    /// Whether the frame carries a new `server_seqno` (data) rather than repeating the
    /// connection's cursor (Hello, Subscribed, Resume, Error, Warning).
    pub fn is_data(self) -> bool {
        matches!(self, Kind::Events { .. } | Kind::Gap { .. } | Kind::Data)
    }
}

/// Summary of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub server_seqno: Option<u64>,
    pub kind: Kind,
    /// Event timestamps later than the receipt time (clock skew or a bad timestamp); these
    /// are not recorded in the histogram.
    pub future_timestamps: u64,
}

const ENVELOPE_PREFIX: &[u8] = br#"{"server_seqno":"#;

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            seqno: Finder::new(br#""seqno":"#),
            timestamp: Finder::new(br#""timestamp_ns":"#),
            dropped: Finder::new(br#""dropped":"#),
        }
    }
}

impl Scanner {
    /// Scans `msg`, received at `now_ns` (CLOCK_REALTIME), recording each event's latency
    /// `now_ns - timestamp_ns` (ns) into `latency`.
    pub fn scan(&self, msg: &[u8], now_ns: u64, latency: &mut Histogram<u64>) -> Message {
        let unrecognised = Message {
            server_seqno: None,
            kind: Kind::Unrecognised,
            future_timestamps: 0,
        };
        let Some(rest) = msg.strip_prefix(ENVELOPE_PREFIX) else {
            return unrecognised;
        };
        let Some((server_seqno, used)) = parse_u64(rest) else {
            return unrecognised;
        };
        let Some(rest) = rest.get(used..).and_then(|r| r.strip_prefix(b",\"")) else {
            return unrecognised;
        };
        let Some(name_len) = memchr::memchr(b'"', rest) else {
            return unrecognised;
        };
        let name = &rest[..name_len];
        let body = &rest[name_len..];
        let mut future_timestamps = 0;
        let kind = match name {
            b"Events" => {
                let events = self.seqno.find_iter(body).count() as u64;
                for at in self.timestamp.find_iter(body) {
                    let digits = &body[at + self.timestamp.needle().len()..];
                    if let Some((ts, _)) = parse_u64(digits) {
                        match now_ns.checked_sub(ts) {
                            Some(lat) => latency.saturating_record(lat),
                            None => future_timestamps += 1,
                        }
                    }
                }
                Kind::Events { events }
            }
            b"Warning" => Kind::Warning {
                dropped: self.number_after(&self.dropped, body),
            },
            n if memchr::memmem::find(n, b"Gap").is_some() => Kind::Gap {
                dropped: self.number_after(&self.dropped, body),
            },
            b"Hello" | b"Subscribed" | b"Resume" | b"Heartbeat" => Kind::Control,
            b"Error" => Kind::Error,
            _ => Kind::Data,
        };
        Message {
            server_seqno: Some(server_seqno),
            kind,
            future_timestamps,
        }
    }

    fn number_after(&self, key: &Finder<'_>, body: &[u8]) -> Option<u64> {
        let at = key.find(body)?;
        parse_u64(body.get(at + key.needle().len()..)?).map(|(n, _)| n)
    }
}

/// Parses the decimal digits at the start of `b`; `None` if there are none or they overflow.
fn parse_u64(b: &[u8]) -> Option<(u64, usize)> {
    let mut n: u64 = 0;
    let mut used = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        used += 1;
    }
    (used > 0).then_some((n, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist() -> Histogram<u64> {
        Histogram::new(3).unwrap()
    }

    #[test]
    fn events_are_counted_by_seqno_key_not_server_seqno() {
        let msg = br#"{"server_seqno":7,"Events":[{"event_name":"TxnLog","payload":{"type":"TxnLog"},"seqno":249,"timestamp_ns":1000},{"event_name":"TxnEnd","payload":{"type":"TxnEnd"},"seqno":250,"timestamp_ns":1500}]}"#;
        let mut h = hist();
        let m = Scanner::default().scan(msg, 2000, &mut h);
        assert_eq!(m.server_seqno, Some(7));
        assert_eq!(m.kind, Kind::Events { events: 2 });
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 500);
        assert_eq!(h.max(), 1000);
    }

    #[test]
    fn future_timestamps_are_counted_not_recorded() {
        let msg = br#"{"server_seqno":1,"Events":[{"seqno":1,"timestamp_ns":5000}]}"#;
        let mut h = hist();
        let m = Scanner::default().scan(msg, 2000, &mut h);
        assert_eq!(m.future_timestamps, 1);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn warnings_gaps_and_others_are_told_apart() {
        let s = Scanner::default();
        let mut h = hist();
        let w = br#"{"server_seqno":0,"Warning":{"type":"backpressure","dropped":1000,"drop_limit":10000}}"#;
        assert_eq!(
            s.scan(w, 0, &mut h).kind,
            Kind::Warning {
                dropped: Some(1000)
            }
        );
        let g = br#"{"server_seqno":9,"Gap":{"from":3,"to":8,"dropped":6}}"#;
        assert_eq!(s.scan(g, 0, &mut h).kind, Kind::Gap { dropped: Some(6) });
        let t = br#"{"server_seqno":2,"TPS":0}"#;
        let m = s.scan(t, 0, &mut h);
        assert_eq!((m.server_seqno, m.kind), (Some(2), Kind::Data));
        let h = br#"{"server_seqno":2,"Hello":{"wire_version":1}}"#;
        assert_eq!(s.scan(h, 0, &mut hist()).kind, Kind::Control);
        let beat = br#"{"server_seqno":2,"Heartbeat":{}}"#;
        assert_eq!(s.scan(beat, 0, &mut hist()).kind, Kind::Control);
        let e = br#"{"server_seqno":2,"Error":{"code":4001}}"#;
        assert_eq!(s.scan(e, 0, &mut hist()).kind, Kind::Error);
        assert!(!Kind::Warning { dropped: None }.is_data());
    }

    #[test]
    fn malformed_messages_are_unrecognised_not_panics() {
        let s = Scanner::default();
        let mut h = hist();
        for bad in [
            &b""[..],
            b"{",
            br#"{"server_seqno":"#,
            br#"{"server_seqno":x}"#,
            br#"{"server_seqno":99999999999999999999999,"Events":[]}"#,
            br#"{"server_seqno":1,"Events"#,
            br#"{"server_seqno":1}"#,
        ] {
            assert_eq!(s.scan(bad, 0, &mut h).kind, Kind::Unrecognised, "{bad:?}");
        }
    }
}
