//! The soak's verdict: every finding of the run judged against the rules in the soak's
//! header (loss, recovery, memory, fds, close frames, crashes), starvation excuses applied,
//! and the result printed as the table docs/benchmarks.md records.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::{clients, faults::Fault, monitor, Args, FaultRecord};
use clients::Shared;
use monitor::Sample;

/// Everything the run saw, judged.
pub struct Verdict<'a> {
    pub args: &'a Args,
    pub sh: &'a Shared,
    pub records: &'a [FaultRecord],
    pub reports: &'a [clients::SteadyReport],
    pub samples: &'a [Sample],
    pub fd_base: u64,
    pub fd_end: u64,
    pub threads: (u64, u64),
    pub churn: &'a clients::ChurnStats,
    pub crashed: Option<f64>,
    pub log: &'a Path,
}

/// Seconds after a fault ends within which lag must be back under 1 s.
const RECOVERY_LIMIT: f64 = 30.0;

/// A steady client's announced loss is forced, not the gateway's doing, when within
/// [`STARVED_WINDOW`] seconds before it either the harness's own ticker woke
/// [`HARNESS_STALL_MS`] late (its clients did not read: slow clients by definition), or the
/// gateway's threads waited [`GATEWAY_STARVED`] s per s for a CPU (the machine did not run
/// it: the same loss the busy-core fault forces). Both are reported.
const HARNESS_STALL_MS: u32 = 1_000;
const GATEWAY_STARVED: f64 = 0.3;
const STARVED_WINDOW: f64 = 10.0;

impl Verdict<'_> {
    /// Whether the machine starved the harness or the gateway in seconds `from..=to`.
    fn starved(&self, from: f64, to: f64) -> bool {
        self.sh.worst_stall(from, to) >= HARNESS_STALL_MS
            || monitor::worst_starvation(self.samples, from, to) >= GATEWAY_STARVED
    }

    pub fn judge_and_print(&self) -> bool {
        let sh = self.sh;
        let duration = self.args.duration as f64;
        if let Some(t) = self.crashed {
            sh.fail(format!(
                "the gateway exited at t={t:.1}s (log: {})",
                self.log.display()
            ));
        }

        // Loss: silent holes are already failures; announced ones only where forced.
        let forced = |t: f64| {
            self.records
                .iter()
                .any(|r| r.fault == Fault::ShardStall && t >= r.start && t <= r.end + 10.0)
        };
        let (mut announced, mut silent, mut events) = (0u64, 0u64, 0u64);
        let (mut starved, mut cpu_starved) = (0u64, 0u64);
        for (i, r) in self.reports.iter().enumerate() {
            events += r.check.events;
            let mut unforced: Option<(u64, f64, String)> = None;
            for (t, h) in &r.holes {
                let n = h.to - h.from + 1;
                match &h.announced_by {
                    None => silent += n,
                    Some(by) => {
                        announced += n;
                        let stall = sh.worst_stall(t - STARVED_WINDOW, *t);
                        let cpu_wait =
                            monitor::worst_starvation(self.samples, t - STARVED_WINDOW, *t);
                        if stall >= HARNESS_STALL_MS {
                            // The client was slow because the harness was starved.
                            starved += n;
                        } else if cpu_wait >= GATEWAY_STARVED {
                            // The machine did not run the gateway (as the busy-core fault).
                            cpu_starved += n;
                        } else if !forced(*t) {
                            let u = unforced.get_or_insert((0, *t, by.clone()));
                            u.0 += n;
                        }
                    }
                }
            }
            if let Some((n, t, by)) = unforced {
                sh.fail(format!(
                    "steady client {i}: {n} events lost from t={t:.1}s (first announced by {by}) where no fault forces a loss"
                ));
            }
            for d in r.check.disorder.iter().take(3) {
                sh.fail(format!("steady client {i}: {d}"));
            }
        }

        // Lag: per second, the worst steady client.
        let secs = self
            .reports
            .iter()
            .map(|r| r.lag_ms.len())
            .max()
            .unwrap_or(0);
        let lag: Vec<u32> = (0..secs)
            .map(|s| {
                self.reports
                    .iter()
                    .filter_map(|r| r.lag_ms.get(s).copied())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut recovery = Vec::new();
        let mut starved_recoveries = 0;
        for r in self.records {
            let from = r.end.ceil() as usize;
            let back = (from..lag.len()).find(|&s| lag[s] > 0 && lag[s] < 1000);
            let took = back.map(|s| s as f64 - r.end);
            let worst = lag
                .get(r.start as usize..from.min(lag.len()))
                .and_then(|w| w.iter().max().copied())
                .unwrap_or(0);
            match took {
                Some(t) if t <= RECOVERY_LIMIT => {}
                _ if r.end + RECOVERY_LIMIT > duration => {}
                _ if self.starved(r.end, r.end + RECOVERY_LIMIT) => starved_recoveries += 1,
                _ => sh.fail(format!(
                    "lag not back under 1 s within {RECOVERY_LIMIT} s of the end of '{}' (t={:.1}s)",
                    r.fault.name(),
                    r.end
                )),
            }
            recovery.push((r, took, worst));
        }

        // Problems starvation explains: excused only where it was measured.
        let suspects = sh.suspects.lock().expect("suspects").clone();
        let mut excused = Vec::new();
        for (t, what) in &suspects {
            if self.starved(t - STARVED_WINDOW, *t) {
                excused.push(format!("t={t:.1}s {what}"));
            } else {
                sh.fail(format!("t={t:.1}s {what} (no starvation measured)"));
            }
        }

        // Memory: the budget, and no growth in the last third of what the gateway holds
        // beyond its history and its JSON-RPC blocks (which fill up to their own budgets,
        // `--history-mib` and `--rpc-history-mib`, by design: hours at a low rate for the
        // history; a run that must see them full too passes small ones).
        let third: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|s| s.t >= duration * 2.0 / 3.0 && s.t <= duration)
            .map(|s| (s.t, s.rss_anon_mib - s.history_mib - s.rpc_block_mib))
            .collect();
        let max_anon = self
            .samples
            .iter()
            .fold(0.0f64, |a, s| a.max(s.rss_anon_mib));
        let mean_last = third.iter().map(|p| p.1).sum::<f64>() / third.len().max(1) as f64;
        let growth = monitor::slope(&third) * duration / 3.0;
        if max_anon > self.args.rss_budget_mib {
            sh.fail(format!(
                "anonymous RSS {max_anon:.0} MiB above the budget of {:.0} MiB",
                self.args.rss_budget_mib
            ));
        }
        if growth > (0.10 * mean_last).max(32.0) {
            sh.fail(format!(
                "anonymous RSS beyond the history and JSON-RPC blocks still growing in the last third: +{growth:.0} MiB over it (mean {mean_last:.0} MiB)"
            ));
        }
        let held: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|s| s.t >= duration * 2.0 / 3.0)
            .map(|s| (s.t, s.held_blocks))
            .collect();
        let held_growth = monitor::slope(&held) * duration / 3.0;
        if held_growth > 5.0 {
            sh.fail(format!(
                "blocks held for min_stage still growing in the last third: +{held_growth:.0}"
            ));
        }
        if self.fd_end > self.fd_base + 2 {
            sh.fail(format!(
                "fds not back to baseline: {} at the end, {} before churn",
                self.fd_end, self.fd_base
            ));
        }

        // The report.
        let failures = sh.failures.lock().expect("failures").clone();
        let cpu = match (self.samples.first(), self.samples.last()) {
            (Some(a), Some(b)) if b.t > a.t => (b.cpu_s - a.cpu_s) / (b.t - a.t) * 100.0,
            _ => 0.0,
        };
        let col = |f: fn(&Sample) -> f64| {
            let v: Vec<f64> = self.samples.iter().map(f).collect();
            (
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(0.0, f64::max),
                v.last().copied().unwrap_or(0.0),
            )
        };
        let (a_min, a_max, a_last) = col(|s| s.rss_anon_mib);
        let (_, hist_max, hist_last) = col(|s| s.history_mib);
        let (_, rpc_max, rpc_last) = col(|s| s.rpc_block_mib);
        let (r_min, r_max, r_last) = col(|s| s.rss_mib);
        let (_, h_max, h_last) = col(|s| s.held_blocks);
        let (_, c_max, _) = col(|s| s.connections_open);
        let (_, t_max, _) = col(|s| s.tailer_lag_s);
        let unhealthy = self.samples.iter().filter(|s| !s.healthy).count();
        let reconnects: u64 = self.reports.iter().map(|r| r.reconnects).sum();
        let mut gaps = std::collections::BTreeMap::<String, u64>::new();
        for r in self.reports {
            for (k, v) in &r.check.gaps {
                *gaps.entry(k.clone()).or_default() += v;
            }
        }
        println!("\n## Soak result\n");
        println!("| | |\n|---|---|");
        println!(
            "| run | {} s, {} ev/s, {} steady clients, {} churners |",
            self.args.duration, self.args.rate, self.args.clients, self.args.churners
        );
        println!(
            "| steady clients | {events} events checked, {silent} lost silently, {announced} lost with a Gap/Warning ({starved} of them while the harness was starved, {cpu_starved} while the machine starved the gateway of CPU), {reconnects} reconnects; gaps seen: {gaps:?} |"
        );
        println!(
            "| CPU starvation | harness: longest stall of its own 50 ms ticker {} ms; gateway: worst run-queue wait {:.2} s per s, {:.1} s in all |",
            sh.worst_stall(0.0, duration + 60.0),
            monitor::worst_starvation(self.samples, 0.0, duration + 60.0),
            self.samples.last().map_or(0.0, |s| s.run_delay_s)
        );
        println!(
            "| churn | {} connections ({} sessions, {} resumes, {} subscribes, {} aborted, {} garbage, {} oversized); close codes received: {:?} |",
            sh.churn_connections.load(Ordering::Relaxed),
            self.churn.sessions,
            self.churn.resumes,
            self.churn.subscribes,
            self.churn.aborts,
            self.churn.garbage,
            self.churn.oversized,
            sh.closes.lock().expect("closes")
        );
        println!(
            "| gateway memory | RssAnon {a_min:.0} → max {a_max:.0} → end {a_last:.0} MiB, of which history max {hist_max:.0} → end {hist_last:.0} MiB and JSON-RPC blocks max {rpc_max:.0} → end {rpc_last:.0} MiB (beyond both, last third {growth:+.1} MiB); RSS {r_min:.0} → max {r_max:.0} → end {r_last:.0} MiB |"
        );
        println!(
            "| held blocks | max {h_max:.0}, end {h_last:.0} (last third {held_growth:+.1}) |"
        );
        println!(
            "| fds / threads | fds {} before churn, {} at the end; threads {} → {}; connections open max {c_max:.0} |",
            self.fd_base, self.fd_end, self.threads.0, self.threads.1
        );
        println!(
            "| CPU | {cpu:.0} % of one core on average; tailer lag max {t_max:.2} s; /health not 200 in {unhealthy} samples |"
        );
        println!("\n| t (s) | fault | what happened | worst lag during | back under 1 s after |");
        println!("|---|---|---|---|---|");
        for (r, took, worst) in &recovery {
            println!(
                "| {:.0}–{:.0} | {} | {} | {:.2} s | {} |",
                r.start,
                r.end,
                r.fault.name(),
                r.note,
                f64::from(*worst) / 1000.0,
                match took {
                    Some(t)
                        if *t <= RECOVERY_LIMIT || !self.starved(r.end, r.end + RECOVERY_LIMIT) =>
                        format!("{t:.0} s"),
                    Some(t) => format!("{t:.0} s (starved)"),
                    None => "not within the run".into(),
                }
            );
        }
        if starved_recoveries + excused.len() > 0 {
            println!(
                "\nNot judged because the machine starved the harness or the gateway: {starved_recoveries} recoveries, {} client problems:",
                excused.len()
            );
            for e in excused.iter().take(10) {
                println!("  - {e}");
            }
        }
        if failures.is_empty() {
            println!("\nsoak: PASS");
            true
        } else {
            println!("\nsoak: FAIL ({} findings)", failures.len());
            for f in failures.iter().take(40) {
                println!("  - {f}");
            }
            false
        }
    }
}
