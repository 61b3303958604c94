//! `ringgate tail URL`: print a ringgate stream as JSON lines, on the Rust client
//! (`clients/rust`, crate `ringgate-client`). The same output contract as the Python and
//! TypeScript clients' `ringgate-tail`.
//!
//! - stdout: every event as one line, exactly the event object the server sent. With `--meta`
//!   (or when `--events` names a meta item) meta frames too, as the server's whole frame
//!   (`{"server_seqno":N,"TPS":n}`: no `event_name`).
//! - stderr: status (connected, resume, reconnecting, backpressure) and every gap, one line
//!   each, prefixed `ringgate tail:`; with `--latency`, the ring → client latency histogram
//!   every N seconds and at exit (`--json`: one JSON object per report).
//! - `--cursor-file F`: the cursor `EPOCH:SEQNO` is written to F (atomically: temporary file
//!   and rename) after every frame; on start the stream resumes from it, so a restarted tail
//!   prints no event twice and skips none without a gap line. (A kill in the middle of a
//!   frame can repeat that frame's printed events: the cursor names whole frames.)
//! - Exit status: 0 on `--limit`, `--duration`, Ctrl-C / SIGTERM, closed stdout; 1 on a fatal
//!   error (refused token, not a ringgate server, rejected subscription); 2 on bad usage.
//!
//! It runs its own single-threaded tokio runtime: nothing of `serve` (glommio) is involved.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use ringgate_client::{latency_ns, Client, Cursor, Error, Item, Options, META_ITEMS};

/// Flags of `ringgate tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Gateway base URL (ws://host:port) or a full /v1/ws path [env RINGGATE_URL].
    #[arg(env = "RINGGATE_URL", default_value = "ws://127.0.0.1:8443")]
    pub url: String,
    /// Channel: all, blocks, txs, contention, lifecycle (`/v1/ws/<channel>`).
    #[arg(long)]
    pub channel: Option<String>,
    /// Comma-separated event names and meta items (TxnLog,BlockStart,TPS,...).
    #[arg(long)]
    pub events: Option<String>,
    /// Deliver events once their block reached this stage (Proposed, Voted, Finalized, Verified).
    #[arg(long)]
    pub min_stage: Option<String>,
    /// A filter spec as JSON, e.g. '{"event_name":"TxnLog","field_filters":[...]}' (repeatable).
    #[arg(long = "filter", value_name = "JSON", action = clap::ArgAction::Append)]
    pub filters: Vec<String>,
    /// Access token, sent as 'Authorization: Bearer TOKEN' [env RINGGATE_TOKEN].
    #[arg(long, env = "RINGGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Persist the cursor here after every frame and resume from it on start.
    #[arg(long)]
    pub cursor_file: Option<PathBuf>,
    /// Resume from this cursor (EPOCH:SEQNO); wins over --cursor-file's content.
    #[arg(long, value_name = "EPOCH:SEQNO")]
    pub from_cursor: Option<Cursor>,
    /// Also print meta frames (TPS, ContentionData, ...) on stdout.
    #[arg(long)]
    pub meta: bool,
    /// Exit after N events (at the end of the frame in progress, so the cursor stays exact).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Exit after SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Exit on the first disconnect instead of resuming.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Only gaps, warnings and errors on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the ring → client latency histogram on stderr every SECS seconds and at exit.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "10")]
    pub latency: Option<f64>,
    /// With --latency: each report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Latency of every event, nanoseconds (ring timestamp → receive), over the run and over the
/// current reporting window.
struct Latency {
    total: Histogram<u64>,
    window: Histogram<u64>,
    /// Events whose ring timestamp was after their receive time (clocks not in sync).
    negative: u64,
    started: Instant,
    window_start: Instant,
}

impl Latency {
    fn new() -> Latency {
        // 1 ns .. 1 h at 3 significant digits.
        let h = || Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds");
        Latency {
            total: h(),
            window: h(),
            negative: 0,
            started: Instant::now(),
            window_start: Instant::now(),
        }
    }

    fn record(&mut self, ns: i64) {
        if ns < 0 {
            self.negative += 1;
        }
        let v = ns.max(1) as u64;
        self.total.saturating_record(v);
        self.window.saturating_record(v);
    }

    /// One report line of `h`.
    fn report(h: &Histogram<u64>, secs: f64, negative: u64, last: bool, json: bool) -> String {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        let max = h.max() as f64 / 1e6;
        if json {
            format!(
                "{{\"type\":\"latency\",\"final\":{last},\"secs\":{secs:.3},\"count\":{},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"p99_9_ms\":{:.3},\"max_ms\":{max:.3},\"negative\":{negative}}}",
                h.len(),
                ms(0.5),
                ms(0.9),
                ms(0.99),
                ms(0.999)
            )
        } else {
            format!(
                "ringgate tail: latency{} over {secs:.1}s: n={} p50={:.3}ms p90={:.3}ms p99={:.3}ms p99.9={:.3}ms max={max:.3}ms{}",
                if last { " (whole run)" } else { "" },
                h.len(),
                ms(0.5),
                ms(0.9),
                ms(0.99),
                ms(0.999),
                if negative > 0 { format!(" ({negative} negative: clocks out of sync)") } else { String::new() }
            )
        }
    }

    fn window_report(&mut self, json: bool) -> String {
        let secs = self.window_start.elapsed().as_secs_f64();
        let line = Latency::report(&self.window, secs, self.negative, false, json);
        self.window.reset();
        self.window_start = Instant::now();
        line
    }

    fn final_report(&self, json: bool) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        Latency::report(&self.total, secs, self.negative, true, json)
    }
}

fn status(line: &str) {
    let _ = writeln!(io::stderr(), "ringgate tail: {line}");
}

fn write_cursor(path: &Path, c: Cursor) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{c}\n"))?;
    std::fs::rename(&tmp, path)
}

fn gap_text(g: &ringgate_client::Meta<ringgate_client::Gap>) -> String {
    let mut s = format!("GAP reason={}", g.reason);
    let fields = [
        ("from_seqno", g.from_seqno),
        ("to_seqno", g.to_seqno),
        ("ring_from_seqno", g.ring_from_seqno),
        ("ring_to_seqno", g.ring_to_seqno),
        ("block_number", g.block_number),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    if let Some(id) = &g.block_id {
        s.push_str(&format!(" block_id={id}"));
    }
    if g.synthetic {
        let prev = g.previous_cursor.map(|c| c.to_string()).unwrap_or_default();
        s.push_str(&format!(
            " resume_reason={} previous_cursor={prev}",
            g.resume_reason.as_deref().unwrap_or("")
        ));
    }
    s.push_str(&format!(" cursor={}:{}", g.epoch, g.server_seqno));
    s
}

/// Why the loop stopped.
enum Stop {
    Done,
    Fatal(Error),
}

/// Runs `ringgate tail`; returns the process exit status.
pub fn run(args: TailArgs) -> u8 {
    let mut filters = Vec::new();
    for f in &args.filters {
        match serde_json::from_str::<serde_json::Value>(f) {
            Ok(serde_json::Value::Array(specs)) => filters.extend(specs),
            Ok(spec) => filters.push(spec),
            Err(e) => {
                status(&format!("--filter is not JSON: {e}"));
                return 2;
            }
        }
    }
    let mut start = args.from_cursor;
    if start.is_none() {
        if let Some(path) = &args.cursor_file {
            match std::fs::read_to_string(path) {
                Ok(text) if !text.trim().is_empty() => match text.parse::<Cursor>() {
                    Ok(c) => start = Some(c),
                    Err(e) => {
                        status(&format!("{}: {e}", path.display()));
                        return 2;
                    }
                },
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    status(&format!("{}: {e}", path.display()));
                    return 1;
                }
            }
        }
    }
    let mut opts = Options {
        channel: args.channel.clone(),
        min_stage: args.min_stage.clone(),
        token: args.token.clone(),
        from_cursor: start,
        reconnect: !args.no_reconnect,
        filters,
        ..Options::default()
    };
    if let Some(e) = &args.events {
        opts = opts.events([e]);
    }
    let show_meta = args.meta
        || opts
            .events
            .as_ref()
            .is_some_and(|names| names.iter().any(|n| META_ITEMS.contains(&n.as_str())));
    let client = match Client::new(&args.url, opts) {
        Ok(c) => c,
        Err(e) => {
            status(&e.to_string());
            return 2;
        }
    };
    if let (Some(c), false) = (start, args.quiet) {
        status(&format!("resuming from cursor {c}"));
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            status(&format!("cannot start the runtime: {e}"));
            return 1;
        }
    };
    match rt.block_on(tail(client, &args, show_meta)) {
        Stop::Done => 0,
        Stop::Fatal(e) => {
            status(&format!("error: {e}"));
            1
        }
    }
}

async fn tail(mut client: Client, args: &TailArgs, show_meta: bool) -> Stop {
    let mut out = io::BufWriter::with_capacity(64 << 10, io::stdout().lock());
    let mut latency = args.latency.map(|_| Latency::new());
    let every = args
        .latency
        .filter(|s| *s > 0.0)
        .map_or(Duration::MAX, Duration::from_secs_f64);
    let mut next_report = tokio::time::Instant::now() + every.min(Duration::from_secs(1 << 30));
    let deadline = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut saved: Option<Cursor> = None;
    let mut written = 0u64;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();

    let stop = loop {
        let item = tokio::select! {
            i = client.next() => i,
            _ = tokio::signal::ctrl_c() => break Stop::Done,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => break Stop::Done,
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break Stop::Done,
            _ = tokio::time::sleep_until(next_report), if latency.is_some() => {
                if let Some(l) = latency.as_mut() {
                    let _ = writeln!(io::stderr(), "{}", l.window_report(args.json));
                }
                next_report += every;
                continue;
            }
        };
        let item = match item {
            None => break Stop::Done,
            Some(Err(e)) => break Stop::Fatal(e),
            Some(Ok(i)) => i,
        };
        let mut frame_end = true;
        let printed = match &item {
            Item::Event(ev) => {
                if let Some(l) = latency.as_mut() {
                    l.record(latency_ns(ev));
                }
                written += 1;
                frame_end = ev.last_in_frame();
                writeln!(out, "{}", ev.raw_json)
            }
            Item::Gap(g) => {
                status(&gap_text(g));
                Ok(())
            }
            Item::Tps(m) if show_meta => meta_line(&mut out, "TPS", m.server_seqno, &m.raw_json),
            Item::ContentionData(m) if show_meta => {
                meta_line(&mut out, "ContentionData", m.server_seqno, &m.raw_json)
            }
            Item::TopAccesses(m) if show_meta => {
                meta_line(&mut out, "TopAccesses", m.server_seqno, &m.raw_json)
            }
            Item::Lifecycle(m) if show_meta => {
                meta_line(&mut out, "Lifecycle", m.server_seqno, &m.raw_json)
            }
            Item::Connected(c) => {
                if !args.quiet {
                    status(&format!(
                        "connected to {} (server {}, epoch {}, channel {}, cursor {}:{})",
                        c.url,
                        c.hello.server_version,
                        c.hello.epoch,
                        c.hello.channel.as_deref().unwrap_or("?"),
                        c.hello.epoch,
                        c.server_seqno
                    ));
                }
                Ok(())
            }
            Item::Resumed(r) => {
                if !args.quiet || (r.requested.is_some() && !r.resume.recovered) {
                    status(&format!(
                        "resume mode={} reason={} recovered={} from={} to={}",
                        r.resume.mode,
                        r.resume.reason.as_deref().unwrap_or("-"),
                        r.resume.recovered,
                        opt(r.resume.from_seqno),
                        opt(r.resume.to_seqno)
                    ));
                }
                Ok(())
            }
            Item::Reconnecting(r) => {
                if !args.quiet {
                    status(&format!(
                        "reconnecting (attempt {}) in {:.2}s: {}",
                        r.attempt,
                        r.delay.as_secs_f64(),
                        r.reason
                    ));
                }
                Ok(())
            }
            Item::Warning(w) => {
                status(&format!(
                    "BACKPRESSURE dropped={} total_dropped={} range={}..{}{}",
                    w.dropped,
                    opt(w.total_dropped),
                    opt(w.dropped_from_seqno),
                    opt(w.dropped_to_seqno),
                    if w.recovering {
                        " (resuming to recover them)"
                    } else {
                        ""
                    }
                ));
                Ok(())
            }
            Item::Shed(shed) => {
                status(&format!(
                    "SHED lane={} dropped={} total_shed={} range={}..{}{}",
                    shed.lane,
                    shed.dropped,
                    opt(shed.total_shed),
                    opt(shed.from_seqno),
                    opt(shed.to_seqno),
                    if shed.recovering {
                        " (resuming to recover them)"
                    } else {
                        ""
                    }
                ));
                Ok(())
            }
            _ => Ok(()),
        };
        if frame_end && printed.is_ok() {
            if let Err(e) = out.flush() {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    break Stop::Done;
                }
                break Stop::Fatal(Error::Protocol(format!("stdout: {e}")));
            }
        }
        if let Err(e) = printed {
            if e.kind() == io::ErrorKind::BrokenPipe {
                break Stop::Done;
            }
            break Stop::Fatal(Error::Protocol(format!("stdout: {e}")));
        }
        if !frame_end {
            continue;
        }
        if let (Some(path), Some(c)) = (&args.cursor_file, client.cursor()) {
            if saved != Some(c) {
                if let Err(e) = write_cursor(path, c) {
                    break Stop::Fatal(Error::Protocol(format!("{}: {e}", path.display())));
                }
                saved = Some(c);
            }
        }
        if args.limit.is_some_and(|n| written >= n) {
            break Stop::Done;
        }
    };
    let _ = out.flush();
    if let Some(l) = &latency {
        let _ = writeln!(io::stderr(), "{}", l.final_report(args.json));
    }
    client.close().await;
    stop
}

fn meta_line(out: &mut impl Write, kind: &str, seqno: u64, body: &str) -> io::Result<()> {
    writeln!(out, "{{\"server_seqno\":{seqno},\"{kind}\":{body}}}")
}

/// An optional seqno as status text: the number, or `-`.
fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}
