//! The machinery every scenario shares: start a writer and a gateway over a fresh ring, open
//! the load, sample the gateway at the window edges, and turn it all into a [`RunOutcome`].
//! The `edge` target puts a real `nats-server -js` and an origin ringgate (`--publish`)
//! behind the gateway under test, an edge ringgate (`--source`): the load client reads the
//! edge, and the origin's and nats-server's CPU are sampled at the same edges.
//!
//! Runs on the harness's main thread (plus one sampler thread per run). Inputs: a
//! [`RunSpec`] and the parsed [`Args`]. Output: one [`RunOutcome`] per run.
//!
//! Invariants: every child process and ring file belongs to a guard that removes it on drop
//! (panics included); every wait has a timeout; only loopback addresses are used; a run's
//! parameters reach the processes under test (flags below), never just the table title; a
//! gateway past `--max-gateway-rss-mib` is killed and the run says so; nats-server's store
//! is a temp dir removed with it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::load_client::{ClientSpec, LoadClient, LoadConfig};
use super::probe::{gateway_counters, ring_last_seqno, GatewayCounters, DETAIL_COUNTERS};
use super::process::{allowed_cpus, free_loopback_addr, ChildGuard, ProcSample, ProcessError};
pub(super) use super::process::{commit, loadavg, RingFile};
use super::report::{GatewayCost, RunOutcome, Table};
use super::{Args, Scenario};

/// Why a scenario could not complete.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Load(#[from] super::load_client::LoadError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the ringgate binary is not part of this build (no `ringgate` [[bin]] target)")]
    NoRinggateBinary,
    #[error("scenario {0:?} is not available: {1}")]
    Unavailable(Scenario, &'static str),
}

/// A gateway implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Ringgate,
    /// The simplest program doing the same job ([`super::floor`]).
    Floor,
    Baseline,
    /// ringgate as an edge (`--source`) of an origin ringgate (`--publish`) through a
    /// nats-server started for the run (docs/scale-out.md).
    Edge,
}

impl Target {
    pub(super) fn name(self) -> &'static str {
        match self {
            Target::Ringgate => "ringgate",
            Target::Floor => "floor",
            Target::Baseline => "baseline",
            Target::Edge => "edge",
        }
    }
}

/// The processes of a run that are not the gateway under test but serve it: for the edge
/// target, the origin gateway and nats-server (in that order). Dropped after the gateway:
/// each is stopped, then the nats-server store is removed.
#[derive(Debug, Default)]
pub(super) struct Behind {
    pub(super) procs: Vec<(&'static str, ChildGuard)>,
    store: Option<PathBuf>,
}

impl Drop for Behind {
    fn drop(&mut self) {
        for (_, p) in &mut self.procs {
            p.stop(Duration::from_secs(2));
        }
        if let Some(dir) = &self.store {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A started run: the writer, the gateway under test at `addr`, and what is behind it.
pub(super) struct Started {
    pub(super) writer: ChildGuard,
    pub(super) gateway: ChildGuard,
    pub(super) addr: std::net::SocketAddr,
    pub(super) behind: Behind,
}

/// One measured configuration.
#[derive(Debug, Clone)]
pub(super) struct RunSpec {
    pub(super) title: String,
    /// Writer events/s; `None` = flat out.
    pub(super) rate: Option<u64>,
    pub(super) clients: Vec<ClientSpec>,
    pub(super) stuck: Vec<ClientSpec>,
    /// Settle time after the clients connect, before the window (overrides `--warmup`).
    pub(super) warmup: Option<Duration>,
    pub(super) window: Duration,
}

impl RunSpec {
    pub(super) fn new(rate: Option<u64>, clients: Vec<ClientSpec>, window: Duration) -> RunSpec {
        RunSpec {
            title: String::new(),
            rate,
            clients,
            stuck: Vec::new(),
            warmup: None,
            window,
        }
    }

    pub(super) fn titled(mut self, title: &str) -> RunSpec {
        self.title = title.into();
        self
    }
}

pub(super) fn rate_label(rate: Option<u64>) -> String {
    rate.map_or("writer flat out".into(), |r| {
        format!("{} events/s", super::report::si(r as f64))
    })
}

/// The harness for one invocation: its arguments.
pub(super) struct Bench<'a> {
    pub(super) args: &'a Args,
}

/// What the sampler saw at the window edges.
#[derive(Debug, Default)]
struct Edges {
    proc: [ProcSample; 2],
    ring: [Option<u64>; 2],
    counters: [Option<GatewayCounters>; 2],
    /// The processes behind the gateway ([`Behind::procs`], same order), at the edges.
    behind: Vec<[ProcSample; 2]>,
    /// The gateway's RSS when the memory guard killed it.
    killed_at_rss_kib: Option<u64>,
}

impl Bench<'_> {
    pub(super) fn compare(
        &self,
        title: &str,
        targets: &[Target],
        spec: &RunSpec,
    ) -> Result<(), HarnessError> {
        let mut runs = Vec::new();
        for &t in targets {
            runs.push(self.run_one(t, &spec.clone().titled(t.name()))?);
        }
        self.print(title, &runs);
        Ok(())
    }

    pub(super) fn print(&self, title: &str, runs: &[RunOutcome]) {
        let t = Table::from_runs(title, runs);
        println!(
            "\n{}",
            if self.args.markdown {
                t.markdown()
            } else {
                t.text()
            }
        );
    }

    /// Starts the writer and then the gateway `target` over a fresh ring (for the edge
    /// target: nats-server, the origin, then the edge); returns once the gateway accepts
    /// connections.
    pub(super) fn start(
        &self,
        target: Target,
        ring: &RingFile,
        rate: Option<u64>,
        lifetime: Duration,
    ) -> Result<Started, HarnessError> {
        let a = self.args;
        // The writer is this binary in its hidden writer mode: the library's synthetic driver
        // (the code `ringgate write` runs), so runs do not depend on that CLI's flags.
        let mut w = Command::new(std::env::current_exe()?);
        w.arg("--write-ring").arg("--ring").arg(&ring.0);
        if let Some(snap) = &a.snapshot {
            w.arg("--snapshot").arg(snap);
        }
        w.arg("--rate").arg(rate.unwrap_or(0).to_string());
        w.arg("--duration")
            .arg(lifetime.as_secs().max(1).to_string());
        let mut writer = ChildGuard::spawn("writer", w, cpus(&a.writer_cpus))?;
        writer.wait_file(
            &ring.0,
            ringgate::ingest::ring::layout::HEADER_SIZE,
            Duration::from_secs(20),
        )?;
        let addr = free_loopback_addr()?;
        let mut behind = Behind::default();
        let mut g = match target {
            Target::Ringgate => {
                let mut c = self.ringgate(addr)?;
                c.arg("--ring").arg(&ring.0);
                c
            }
            Target::Edge => {
                let nats = self.start_behind_edge(ring, &mut behind)?;
                let mut c = self.ringgate(addr)?;
                c.arg("--source").arg(nats);
                c
            }
            Target::Baseline => {
                let mut c = Command::new(std::env::current_exe()?);
                c.arg("--serve-baseline")
                    .arg("--ring")
                    .arg(&ring.0)
                    .arg("--listen")
                    .arg(addr.to_string());
                if let Some(t) = a.baseline_threads {
                    c.arg("--baseline-threads").arg(t.to_string());
                }
                c
            }
            Target::Floor => {
                let mut c = Command::new(std::env::current_exe()?);
                c.arg("--serve-floor")
                    .arg("--ring")
                    .arg(&ring.0)
                    .arg("--listen")
                    .arg(addr.to_string());
                c
            }
        };
        g.env("RUST_LOG", "warn");
        let mut gateway = ChildGuard::spawn(target.name(), g, cpus(&a.gateway_cpus))?;
        // An edge listens once it has found the origin's epoch on the stream (up to 30 s).
        gateway.wait_listening(addr, Duration::from_secs(45))?;
        Ok(Started {
            writer,
            gateway,
            addr,
            behind,
        })
    }

    /// `ringgate serve --listen addr [--shards N] RINGGATE_ARGS…` (the caller adds the source).
    fn ringgate(&self, addr: std::net::SocketAddr) -> Result<Command, HarnessError> {
        let a = self.args;
        let mut c = Command::new(ringgate_exe()?);
        c.arg("serve").arg("--listen").arg(addr.to_string());
        if let Some(s) = a.shards {
            c.arg("--shards").arg(s.to_string());
        }
        c.args(&a.ringgate_args);
        c.env("RUST_LOG", "warn");
        Ok(c)
    }

    /// For the edge target: a fresh `nats-server -js` on a free port with a temp store, and
    /// the origin (`ringgate serve --ring R --publish`, the same ringgate flags as the edge),
    /// both put in `behind`; returns the NATS URL for the edge.
    fn start_behind_edge(
        &self,
        ring: &RingFile,
        behind: &mut Behind,
    ) -> Result<String, HarnessError> {
        let a = self.args;
        let nats_addr = free_loopback_addr()?;
        // On disk (the temp dir), as a deployment's file store is; not next to the ring in
        // /dev/shm.
        let name = ring.0.file_name().unwrap_or_default().to_string_lossy();
        let store = std::env::temp_dir().join(format!("{name}.nats-store"));
        behind.store = Some(store.clone());
        let mut n = Command::new("nats-server");
        n.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &nats_addr.port().to_string(),
            "-sd",
        ])
        .arg(&store)
        .stderr(std::process::Stdio::null());
        let mut nats = ChildGuard::spawn("nats-server", n, None)?;
        nats.wait_listening(nats_addr, Duration::from_secs(20))?;
        let url = format!("nats://{nats_addr}");
        let origin_addr = free_loopback_addr()?;
        let mut o = self.ringgate(origin_addr)?;
        o.arg("--ring").arg(&ring.0).arg("--publish").arg(&url);
        let mut origin = ChildGuard::spawn("origin", o, cpus(&a.gateway_cpus))?;
        origin.wait_listening(origin_addr, Duration::from_secs(20))?;
        behind.procs.push(("origin", origin));
        behind.procs.push(("nats-server", nats));
        Ok(url)
    }

    /// One measured configuration of one target.
    pub(super) fn run_one(
        &self,
        target: Target,
        spec: &RunSpec,
    ) -> Result<RunOutcome, HarnessError> {
        let a = self.args;
        let warmup = spec
            .warmup
            .unwrap_or(Duration::from_secs_f64(a.warmup.max(0.0)));
        let ring = RingFile::new();
        let lifetime = warmup + spec.window + Duration::from_secs(120);
        let Started {
            writer,
            mut gateway,
            addr,
            behind,
        } = self.start(target, &ring, spec.rate, lifetime)?;
        let ready = ProcSample::read(gateway.pid())?;
        eprintln!(
            "[{}] {}: {} clients + {} stuck connecting to {addr}",
            target.name(),
            spec.title,
            spec.clients.len(),
            spec.stuck.len()
        );
        let load = LoadClient::connect(&LoadConfig {
            stuck: spec.stuck.clone(),
            threads: a.client_threads,
            cpus: a.client_cpus.clone(),
            ..LoadConfig::new(addr, spec.clients.clone())
        })?;
        let start = Instant::now() + warmup;
        let end = start + spec.window;
        let (pid, ring_path) = (gateway.pid(), ring.0.clone());
        let behind_pids: Vec<u32> = behind.procs.iter().map(|(_, p)| p.pid()).collect();
        let rss_limit_kib = a.max_gateway_rss_mib.saturating_mul(1024);
        let sampler = std::thread::spawn(move || {
            let mut e = Edges::default();
            let mut edges = [start, end].into_iter().enumerate().peekable();
            // Ticks for the memory guard; edge samples are taken at their exact instants.
            while let Some(&(i, at)) = edges.peek() {
                let tick = Instant::now() + Duration::from_millis(100);
                std::thread::sleep(at.min(tick).saturating_duration_since(Instant::now()));
                if Instant::now() >= at {
                    e.proc[i] = ProcSample::read(pid).unwrap_or_default();
                    e.behind.resize(behind_pids.len(), Default::default());
                    for (k, &b) in behind_pids.iter().enumerate() {
                        e.behind[k][i] = ProcSample::read(b).unwrap_or_default();
                    }
                    e.ring[i] = ring_last_seqno(&ring_path);
                    e.counters[i] = gateway_counters(addr);
                    edges.next();
                }
                let rss = ProcSample::read(pid).map_or(0, |p| p.rss_kib);
                if e.killed_at_rss_kib.is_none() && rss > rss_limit_kib {
                    // SAFETY: `pid` is the gateway child, owned by a ChildGuard that has not
                    // reaped it (it waits only when dropped, after this thread is joined).
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    e.killed_at_rss_kib = Some(rss);
                }
            }
            e
        });
        let result = load.measure(start, end)?;
        let edges = sampler.join().unwrap_or_default();
        if edges.killed_at_rss_kib.is_none() {
            gateway.check_alive()?;
        }
        let end_sample = ProcSample::read(gateway.pid()).unwrap_or_default();
        let mut extra = vec![("host load average (1 min) at end".into(), loadavg())];
        if let Some(kib) = edges.killed_at_rss_kib {
            extra.push((
                "KILLED by harness: RSS (MiB) over --max-gateway-rss-mib".into(),
                format!("{:.0}", kib as f64 / 1024.0),
            ));
        }
        if let [Some(c0), Some(c1)] = edges.counters {
            let secs = spec.window.as_secs_f64();
            let lost = c1.gap_events.saturating_sub(c0.gap_events);
            let ingest = c1
                .head_ring_seqno
                .saturating_sub(c0.head_ring_seqno)
                .saturating_sub(lost);
            extra.push((
                "gateway ingest events/s".into(),
                super::report::si(ingest as f64 / secs),
            ));
            extra.push(("ring events lost to laps".into(), lost.to_string()));
            for (i, name) in DETAIL_COUNTERS.iter().enumerate() {
                if let (Some(a), Some(b)) = (c0.detail[i], c1.detail[i]) {
                    let label = format!("{} (window)", name.trim_start_matches("ringgate_"));
                    extra.push((label, b.saturating_sub(a).to_string()));
                }
            }
        }
        let delivered: u64 = result.conns.iter().map(|c| c.events).sum();
        for ((name, _), [p0, p1]) in behind.procs.iter().zip(&edges.behind) {
            let cpu_s = p1.cpu_s - p0.cpu_s;
            let pct = 100.0 * cpu_s / spec.window.as_secs_f64();
            extra.push((format!("{name} CPU (% of one core)"), format!("{pct:.0}%")));
            if delivered > 0 {
                let us = cpu_s * 1e6 / delivered as f64;
                extra.push((
                    format!("{name} CPU per delivered event (µs)"),
                    format!("{us:.1}"),
                ));
            }
        }
        let outcome = RunOutcome {
            title: if spec.title.is_empty() {
                target.name().into()
            } else {
                spec.title.clone()
            },
            written: match edges.ring {
                [Some(r0), Some(r1)] => Some((r1.saturating_sub(r0), spec.window)),
                _ => None,
            },
            load: Some(result),
            gateway: Some(GatewayCost {
                window_cpu_s: edges.proc[1].cpu_s - edges.proc[0].cpu_s,
                end: end_sample,
                ready,
                cpus: allowed_cpus(gateway.pid()),
            }),
            client_cpus: client_cpus(a),
            extra,
        };
        drop(gateway);
        drop(behind);
        drop(writer);
        Ok(outcome)
    }
}

/// The `ringgate` binary cargo built next to this bench.
fn ringgate_exe() -> Result<&'static str, HarnessError> {
    option_env!("CARGO_BIN_EXE_ringgate").ok_or(HarnessError::NoRinggateBinary)
}

/// The cores the load client threads may use.
pub(super) fn client_cpus(a: &Args) -> String {
    if a.client_cpus.is_empty() {
        allowed_cpus(0)
    } else {
        a.client_cpus
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn cpus(list: &[usize]) -> Option<&[usize]> {
    (!list.is_empty()).then_some(list)
}
