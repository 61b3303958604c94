//! Turning a run's raw measurements into the rows of a results table, and printing tables
//! (aligned text for the terminal, or Markdown for docs/benchmarks.md).
//!
//! Runs on the harness's main thread after a run. Inputs: [`RunOutcome`]s. Output: text on
//! stdout. Every figure printed is derived here from counters; nothing is estimated.

use std::fmt::Write as _;
use std::time::Duration;

use super::load_client::LoadResult;
use super::process::ProcSample;

/// The gateway's resource use over a run.
#[derive(Debug, Clone, Default)]
pub struct GatewayCost {
    /// CPU seconds (user + system, all threads) spent during the measurement window.
    pub window_cpu_s: f64,
    /// Sample at the end of the run (peak RSS covers the whole life of the process).
    pub end: ProcSample,
    /// Sample once the server was ready, before any client connected.
    pub ready: ProcSample,
    /// The cores the gateway may run on.
    pub cpus: String,
}

/// One measured run of one target.
#[derive(Debug)]
pub struct RunOutcome {
    /// Column title, e.g. `ringgate` or `baseline (100 clients)`.
    pub title: String,
    pub load: Option<LoadResult>,
    /// `None` when the server ran inside the harness (the load client's own ceiling).
    pub gateway: Option<GatewayCost>,
    /// Ring events the writer committed during the window, and the window.
    pub written: Option<(u64, Duration)>,
    pub client_cpus: String,
    /// Scenario-specific rows (label, value), printed after the standard ones.
    pub extra: Vec<(String, String)>,
}

/// A table: one column per run, one row per metric.
#[derive(Debug, Default)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
}

impl Table {
    /// The standard rows for `runs` (a metric missing from a run prints as `-`), plus one
    /// ratio column `first / other` per other run (`ringgate / floor`, `ringgate / baseline`).
    pub fn from_runs(title: &str, runs: &[RunOutcome]) -> Table {
        let mut t = Table {
            title: title.into(),
            columns: runs.iter().map(|r| r.title.clone()).collect(),
            rows: Vec::new(),
        };
        let metrics: Vec<Vec<(String, Option<f64>, String)>> = runs.iter().map(metrics).collect();
        let labels: Vec<String> = {
            let mut l: Vec<String> = Vec::new();
            for m in &metrics {
                for (label, _, _) in m {
                    if !l.contains(label) {
                        l.push(label.clone());
                    }
                }
            }
            l
        };
        for other in runs.iter().skip(1) {
            t.columns
                .push(format!("{} / {}", runs[0].title, other.title));
        }
        for label in labels {
            let cells: Vec<Option<&(String, Option<f64>, String)>> = metrics
                .iter()
                .map(|m| m.iter().find(|(l, _, _)| *l == label))
                .collect();
            let mut row: Vec<String> = cells
                .iter()
                .map(|c| c.map_or("-".to_string(), |(_, _, s)| s.clone()))
                .collect();
            for other in cells.iter().skip(1) {
                let ratio = match (cells[0].and_then(|c| c.1), other.and_then(|c| c.1)) {
                    (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
                    _ => "-".into(),
                };
                row.push(ratio);
            }
            t.rows.push((label, row));
        }
        t
    }

    /// Aligned plain text.
    pub fn text(&self) -> String {
        let label_w = self
            .rows
            .iter()
            .map(|r| r.0.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.1.get(i).map(String::len))
                    .chain([self.columns[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = format!("== {}\n{:label_w$}", self.title, "");
        for (c, w) in self.columns.iter().zip(&widths) {
            let _ = write!(out, "  {c:>w$}");
        }
        out.push('\n');
        for (label, cells) in &self.rows {
            let _ = write!(out, "{label:label_w$}");
            for (c, w) in cells.iter().zip(&widths) {
                let _ = write!(out, "  {c:>w$}");
            }
            out.push('\n');
        }
        out
    }

    /// A Markdown table (for docs/benchmarks.md).
    pub fn markdown(&self) -> String {
        let mut out = format!("**{}**\n\n| metric |", self.title);
        for c in &self.columns {
            let _ = write!(out, " {c} |");
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.columns.len()));
        out.push('\n');
        for (label, cells) in &self.rows {
            let _ = write!(out, "| {label} |");
            for c in cells {
                let _ = write!(out, " {c} |");
            }
            out.push('\n');
        }
        out
    }
}

/// (label, numeric value for ratios, formatted value) for one run.
fn metrics(r: &RunOutcome) -> Vec<(String, Option<f64>, String)> {
    let mut m: Vec<(String, Option<f64>, String)> = Vec::new();
    let mut push = |label: &str, v: Option<f64>, s: String| m.push((label.into(), v, s));
    if let Some(load) = &r.load {
        let secs = load.window.as_secs_f64().max(1e-9);
        let events: u64 = load.conns.iter().map(|c| c.events).sum();
        let frames: u64 = load.conns.iter().map(|c| c.frames).sum();
        let bytes: u64 = load.conns.iter().map(|c| c.bytes).sum();
        let mut per_client: Vec<u64> = load.conns.iter().map(|c| c.events).collect();
        per_client.sort_unstable();
        push("reading clients", None, load.conns.len().to_string());
        push("stuck clients", None, load.stuck.to_string());
        if load.stuck_failed > 0 {
            push(
                "stuck clients failed to open",
                None,
                load.stuck_failed.to_string(),
            );
        }
        push("window (s)", None, format!("{secs:.1}"));
        let rate = events as f64 / secs;
        push("delivered events/s (total)", Some(rate), si(rate));
        if let (Some(min), Some(med)) = (per_client.first(), per_client.get(per_client.len() / 2)) {
            let (min, med) = (*min as f64 / secs, *med as f64 / secs);
            push("events/s per client, min", Some(min), si(min));
            push("events/s per client, median", Some(med), si(med));
        }
        let h = &load.latency;
        if !h.is_empty() {
            for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
                let us = h.value_at_quantile(q) as f64 / 1e3;
                push(&format!("latency {label}"), Some(us), fmt_us(us));
            }
            let max = h.max() as f64 / 1e3;
            push("latency max", Some(max), fmt_us(max));
            push("latency samples", None, h.len().to_string());
        }
        let fps = frames as f64 / secs;
        push("frames/s", Some(fps), si(fps));
        let bps = bytes as f64 / secs;
        push("bytes/s", Some(bps), format!("{}B", si(bps)));
        if events > 0 {
            let bpe = bytes as f64 / events as f64;
            push("bytes/event (wire)", Some(bpe), format!("{bpe:.0}"));
            let epf = events as f64
                / load
                    .conns
                    .iter()
                    .map(|c| c.event_frames)
                    .sum::<u64>()
                    .max(1) as f64;
            push("events/frame", Some(epf), format!("{epf:.1}"));
        }
        let sum =
            |f: fn(&super::load_client::ConnStats) -> u64| load.conns.iter().map(f).sum::<u64>();
        push("warning frames", None, sum(|c| c.warnings).to_string());
        push("gap frames", None, sum(|c| c.gaps).to_string());
        push("dropped (announced)", None, sum(|c| c.dropped).to_string());
        push(
            "server_seqno order violations",
            None,
            sum(|c| c.seqno_violations).to_string(),
        );
        push("error frames", None, sum(|c| c.errors).to_string());
        push(
            "unrecognised frames",
            None,
            sum(|c| c.unrecognised).to_string(),
        );
        let failed = load.conns.iter().filter(|c| c.failed_to_open).count();
        push("connections failed to open", None, failed.to_string());
        let ended: Vec<&str> = load
            .conns
            .iter()
            .filter(|c| !c.failed_to_open)
            .filter_map(|c| c.ended.as_deref())
            .collect();
        push("connections ended by server", None, ended.len().to_string());
        if let Some(reason) = load.conns.iter().find_map(|c| c.ended.as_deref()) {
            push("first end/failure reason", None, reason.to_string());
        }
        let pct = 100.0 * load.client_cpu_s / secs;
        push(
            "load client CPU (% of one core)",
            Some(pct),
            format!("{pct:.0}%"),
        );
    }
    if let Some((n, window)) = r.written {
        let rate = n as f64 / window.as_secs_f64().max(1e-9);
        push("written events/s (ring)", Some(rate), si(rate));
    }
    if let Some(g) = &r.gateway {
        if let Some(load) = &r.load {
            let pct = 100.0 * g.window_cpu_s / load.window.as_secs_f64().max(1e-9);
            push(
                "gateway CPU (% of one core)",
                Some(pct),
                format!("{pct:.0}%"),
            );
            let events: u64 = load.conns.iter().map(|c| c.events).sum();
            if events > 0 {
                let us = g.window_cpu_s * 1e6 / events as f64;
                push(
                    "gateway CPU per delivered event (µs)",
                    Some(us),
                    format!("{us:.1}"),
                );
            }
        }
        let mib = |kib: u64| kib as f64 / 1024.0;
        for (label, kib) in [
            ("gateway peak RSS (MiB)", g.end.peak_rss_kib),
            ("gateway RssAnon at end (MiB)", g.end.rss_anon_kib),
            ("gateway RssAnon when ready (MiB)", g.ready.rss_anon_kib),
        ] {
            push(label, Some(mib(kib)), format!("{:.1}", mib(kib)));
        }
        push("gateway threads", None, g.end.threads.to_string());
        push("gateway cores", None, g.cpus.clone());
    }
    push("load client cores", None, r.client_cpus.clone());
    for (label, value) in &r.extra {
        let v = value
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok();
        push(label, v, value.clone());
    }
    m
}

/// 1234567.0 → "1.23M".
pub fn si(v: f64) -> String {
    match v.abs() {
        x if x >= 1e9 => format!("{:.2}G", v / 1e9),
        x if x >= 1e6 => format!("{:.2}M", v / 1e6),
        x if x >= 1e3 => format!("{:.1}k", v / 1e3),
        _ => format!("{v:.0}"),
    }
}

/// Microseconds with a unit that keeps 2–4 significant digits: "235µs", "12.4ms", "1.24s".
fn fmt_us(us: f64) -> String {
    match us {
        x if x >= 1e6 => format!("{:.2}s", us / 1e6),
        x if x >= 1e4 => format!("{:.1}ms", us / 1e3),
        _ => format!("{us:.0}µs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_client::{new_histogram, ConnStats};

    fn run(title: &str, events: &[u64], lat_ns: &[u64]) -> RunOutcome {
        let mut latency = new_histogram();
        for &l in lat_ns {
            latency.record(l).unwrap();
        }
        RunOutcome {
            title: title.into(),
            load: Some(LoadResult {
                window: Duration::from_secs(2),
                conns: events
                    .iter()
                    .map(|&e| ConnStats {
                        events: e,
                        frames: 1,
                        event_frames: 1,
                        bytes: e * 100,
                        ..ConnStats::default()
                    })
                    .collect(),
                latency,
                client_cpu_s: 0.5,
                stuck: 0,
                stuck_failed: 0,
            }),
            gateway: Some(GatewayCost::default()),
            written: None,
            client_cpus: "1".into(),
            extra: vec![("memory per connection (KiB)".into(), "12.5".into())],
        }
    }

    fn cell<'a>(t: &'a Table, label: &str, col: usize) -> &'a str {
        &t.rows.iter().find(|r| r.0 == label).unwrap().1[col]
    }

    #[test]
    fn rates_percentiles_and_ratio_come_from_the_counters() {
        let a = run("ringgate", &[4000, 2000, 6000], &[1000, 2000, 3000, 4000]);
        let b = run("baseline", &[1000, 1000, 1000], &[10_000]);
        let t = Table::from_runs("test", &[a, b]);
        assert_eq!(t.columns.len(), 3);
        assert_eq!(cell(&t, "delivered events/s (total)", 0), "6.0k");
        assert_eq!(cell(&t, "events/s per client, min", 0), "1.0k");
        assert_eq!(cell(&t, "events/s per client, median", 0), "2.0k");
        assert_eq!(cell(&t, "delivered events/s (total)", 2), "4.00");
        assert_eq!(cell(&t, "latency p50", 0), "2µs");
        assert_eq!(cell(&t, "bytes/event (wire)", 0), "100");
        assert_eq!(cell(&t, "memory per connection (KiB)", 2), "1.00");
        assert!(t.text().contains("ringgate / baseline"));
        assert!(t
            .markdown()
            .starts_with("**test**\n\n| metric | ringgate |"));
    }

    #[test]
    fn gateway_cpu_per_delivered_event_is_window_cpu_over_events() {
        let mut a = run("ringgate", &[4000, 2000], &[1000]);
        a.gateway = Some(GatewayCost {
            window_cpu_s: 0.012,
            ..GatewayCost::default()
        });
        let mut e = run("edge", &[6000], &[1000]);
        e.gateway = Some(GatewayCost {
            window_cpu_s: 0.024,
            ..GatewayCost::default()
        });
        let t = Table::from_runs("test", &[a, e]);
        assert_eq!(cell(&t, "gateway CPU per delivered event (µs)", 0), "2.0");
        assert_eq!(cell(&t, "gateway CPU per delivered event (µs)", 1), "4.0");
        assert_eq!(cell(&t, "gateway CPU per delivered event (µs)", 2), "0.50");
    }

    #[test]
    fn three_runs_get_one_ratio_column_per_other_run() {
        let a = run("ringgate", &[3000], &[3000]);
        let f = run("floor", &[2000], &[1000]);
        let b = run("baseline", &[1000], &[6000]);
        let t = Table::from_runs("test", &[a, f, b]);
        assert_eq!(
            t.columns,
            [
                "ringgate",
                "floor",
                "baseline",
                "ringgate / floor",
                "ringgate / baseline"
            ]
        );
        assert_eq!(cell(&t, "delivered events/s (total)", 3), "1.50");
        assert_eq!(cell(&t, "delivered events/s (total)", 4), "3.00");
        assert_eq!(cell(&t, "latency p50", 3), "3.00");
        assert_eq!(cell(&t, "latency p50", 4), "0.50");
    }
}
