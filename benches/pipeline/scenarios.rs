//! The scenarios (a)–(g) of the benchmark plan, and the one routine that runs a single
//! measured configuration: writer → gateway → load client, then tables.
//!
//! Runs on the harness's main thread (plus one sampler thread per run). Inputs: the parsed
//! [`Args`]. Output: tables on stdout, preceded by the machine, commit and command line.
//!
//! Invariants: every child process and ring file belongs to a guard that removes it on drop
//! (panics included); every wait has a timeout; only loopback addresses are used; a scenario's
//! parameters reach the processes under test (flags below), never just the table title.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::blaster::{Blaster, EVENTS_PER_FRAME};
use super::load_client::{ClientSpec, LoadClient, LoadConfig};
use super::probe::{
    gateway_counters, head_server_seqno, ring_last_seqno, GatewayCounters, DETAIL_COUNTERS,
};
use super::process::{
    allowed_cpus, free_loopback_addr, machine_description, ChildGuard, ProcSample, ProcessError,
};
use super::report::{GatewayCost, RunOutcome, Table};
use super::{Args, Scenario, TargetArg};

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
    Baseline,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Ringgate => "ringgate",
            Target::Baseline => "baseline",
        }
    }
}

/// One measured configuration.
#[derive(Debug, Clone)]
struct RunSpec {
    title: String,
    /// Writer events/s; `None` = flat out.
    rate: Option<u64>,
    clients: Vec<ClientSpec>,
    stuck: Vec<ClientSpec>,
    /// Settle time after the clients connect, before the window (overrides `--warmup`).
    warmup: Option<Duration>,
    window: Duration,
}

/// Entry point: runs `scenario` with `args` and prints its tables.
pub fn run(scenario: Scenario, args: &Args) -> Result<(), HarnessError> {
    println!("machine: {}", machine_description());
    println!("commit:  {}", commit());
    println!(
        "load:    {} (1-minute load average before the first run)",
        loadavg()
    );
    println!(
        "command: cargo bench --bench pipeline -- {}",
        std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect::<Vec<_>>()
            .join(" ")
    );
    let b = Bench { args };
    let targets = match args.target {
        TargetArg::Ringgate => vec![Target::Ringgate],
        TargetArg::Baseline => vec![Target::Baseline],
        TargetArg::Both => vec![Target::Ringgate, Target::Baseline],
    };
    let window = Duration::from_secs_f64(args.duration.max(0.1));
    let rate = |default: Option<u64>| match args.rate {
        Some(0) => None,
        Some(r) => Some(r),
        None => default,
    };
    match scenario {
        Scenario::Latency => {
            let rates: Vec<Option<u64>> = match args.rate {
                Some(_) => vec![rate(None)],
                None => vec![Some(10_000), Some(100_000)],
            };
            for r in rates {
                let n = args.clients.unwrap_or(1);
                let spec = RunSpec::new(r, firehose(n), window);
                b.compare(
                    &format!("(a) latency: {n} firehose client(s), {}", rate_label(r)),
                    &targets,
                    &spec,
                )?;
            }
        }
        Scenario::Ingest => {
            let counts = args.clients.map_or(vec![0, 1, 100], |n| vec![n]);
            for n in counts {
                let spec = RunSpec::new(rate(None), firehose(n), window);
                b.compare(
                    &format!(
                        "(b) ingest: {}, {n} firehose client(s)",
                        rate_label(spec.rate)
                    ),
                    &targets,
                    &spec,
                )?;
            }
        }
        Scenario::Narrow => {
            let n = args.clients.unwrap_or(1000);
            let spec = RunSpec::new(rate(Some(10_000)), narrow(n), window);
            b.compare(
                &format!(
                    "(c) {n} clients with narrow filters, {}",
                    rate_label(spec.rate)
                ),
                &targets,
                &spec,
            )?;
        }
        Scenario::IdleConns => {
            let n = args.clients.unwrap_or(10_000);
            for &t in &targets {
                b.idle_connections(t, n, window)?;
            }
        }
        Scenario::Stuck => {
            let n = args.clients.unwrap_or(100);
            let stuck = if args.stuck > 0 { args.stuck } else { 10 };
            for &t in &targets {
                let without =
                    RunSpec::new(rate(Some(10_000)), firehose(n), window).titled("no stuck");
                let mut with = without.clone().titled(&format!("{stuck} stuck"));
                with.stuck = firehose(stuck);
                let runs = vec![b.run_one(t, &without)?, b.run_one(t, &with)?];
                b.print(
                    &format!(
                        "(e) {}: {n} fast clients, {}, without vs with {stuck} stuck",
                        t.name(),
                        rate_label(without.rate)
                    ),
                    &runs,
                );
            }
        }
        Scenario::Resume => {
            if args.target == TargetArg::Baseline {
                return Err(HarnessError::Unavailable(
                    scenario,
                    "the baseline has no resume (the existing gateway's aborts past ~14k frames)",
                ));
            }
            b.resume(args.resume_frames, rate(Some(20_000)), window)?;
        }
        Scenario::IdleMemory => {
            let mut spec = RunSpec::new(Some(10), Vec::new(), Duration::from_secs(1));
            spec.warmup = Some(Duration::from_secs(2));
            b.compare(
                "(g) idle memory: no clients, writer at 10 events/s",
                &targets,
                &spec,
            )?;
        }
        Scenario::ClientCeiling => {
            let n = args.clients.unwrap_or(1);
            let blaster = Blaster::start()?;
            let load = LoadClient::connect(&LoadConfig {
                addr: blaster.addr,
                clients: firehose(n),
                stuck: Vec::new(),
                threads: args.client_threads,
                cpus: args.client_cpus.clone(),
                connect_timeout: Duration::from_secs(10),
                connect_budget: Duration::from_secs(60),
            })?;
            let start = Instant::now() + Duration::from_secs_f64(args.warmup.max(0.0));
            let result = load.measure(start, start + window)?;
            drop(blaster);
            let run = RunOutcome {
                title: "load client".into(),
                load: Some(result),
                gateway: None,
                written: None,
                client_cpus: client_cpus(args),
                extra: vec![("events per frame sent".into(), EVENTS_PER_FRAME.to_string())],
            };
            b.print(
                &format!("load client ceiling: {n} connection(s) from an in-process blaster"),
                &[run],
            );
        }
        Scenario::Custom => {
            let n = args.clients.unwrap_or(1);
            let spec_of = |_| ClientSpec {
                path: args.path.clone(),
                subscribe: args.subscribe.clone(),
                catch_up_to: None,
            };
            let mut spec = RunSpec::new(rate(Some(10_000)), (0..n).map(spec_of).collect(), window);
            spec.stuck = (0..args.stuck).map(spec_of).collect();
            b.compare(
                &format!(
                    "custom: {n} clients, {} stuck, {}",
                    args.stuck,
                    rate_label(spec.rate)
                ),
                &targets,
                &spec,
            )?;
        }
    }
    Ok(())
}

impl RunSpec {
    fn new(rate: Option<u64>, clients: Vec<ClientSpec>, window: Duration) -> RunSpec {
        RunSpec {
            title: String::new(),
            rate,
            clients,
            stuck: Vec::new(),
            warmup: None,
            window,
        }
    }

    fn titled(mut self, title: &str) -> RunSpec {
        self.title = title.into();
        self
    }
}

fn rate_label(rate: Option<u64>) -> String {
    rate.map_or("writer flat out".into(), |r| {
        format!("{} events/s", super::report::si(r as f64))
    })
}

/// `n` clients on `/v1/ws` with no subscribe message: every event (the channel default).
fn firehose(n: usize) -> Vec<ClientSpec> {
    (0..n)
        .map(|_| ClientSpec {
            path: "/v1/ws".into(),
            subscribe: None,
            catch_up_to: None,
        })
        .collect()
}

/// `n` clients, each subscribed to one rare event kind, rotating over the block-level kinds
/// (a few events per block each), so almost every event matches no client.
fn narrow(n: usize) -> Vec<ClientSpec> {
    const KINDS: [&str; 4] = ["BlockStart", "BlockEnd", "BlockQC", "BlockFinalized"];
    (0..n)
        .map(|i| ClientSpec {
            path: "/v1/ws".into(),
            subscribe: Some(format!(r#"{{"subscribe":["{}"]}}"#, KINDS[i % KINDS.len()])),
            catch_up_to: None,
        })
        .collect()
}

struct Bench<'a> {
    args: &'a Args,
}

/// A ring file that is deleted when the run ends.
struct RingFile(PathBuf);

impl RingFile {
    fn new() -> RingFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let n = N.fetch_add(1, Ordering::Relaxed);
        RingFile(dir.join(format!("ringgate-bench-{}-{n}", std::process::id())))
    }
}

impl Drop for RingFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the sampler saw at the window edges.
#[derive(Debug, Default)]
struct Edges {
    proc: [ProcSample; 2],
    ring: [Option<u64>; 2],
    counters: [Option<GatewayCounters>; 2],
    /// The gateway's RSS when the memory guard killed it.
    killed_at_rss_kib: Option<u64>,
}

impl Bench<'_> {
    fn compare(&self, title: &str, targets: &[Target], spec: &RunSpec) -> Result<(), HarnessError> {
        let mut runs = Vec::new();
        for &t in targets {
            runs.push(self.run_one(t, &spec.clone().titled(t.name()))?);
        }
        self.print(title, &runs);
        Ok(())
    }

    fn print(&self, title: &str, runs: &[RunOutcome]) {
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

    /// Starts the writer and then the gateway `target` over a fresh ring; returns both guards
    /// and the gateway's address once it accepts connections.
    fn start(
        &self,
        target: Target,
        ring: &RingFile,
        rate: Option<u64>,
        lifetime: Duration,
    ) -> Result<(ChildGuard, ChildGuard, std::net::SocketAddr), HarnessError> {
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
            ringgate::ring::layout::HEADER_SIZE,
            Duration::from_secs(20),
        )?;
        let addr = free_loopback_addr()?;
        let mut g = match target {
            Target::Ringgate => {
                let mut c = Command::new(ringgate_exe()?);
                c.arg("serve")
                    .arg("--ring")
                    .arg(&ring.0)
                    .arg("--listen")
                    .arg(addr.to_string());
                if let Some(s) = a.shards {
                    c.arg("--shards").arg(s.to_string());
                }
                c.args(&a.ringgate_args);
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
        };
        g.env("RUST_LOG", "warn");
        let mut gateway = ChildGuard::spawn(target.name(), g, cpus(&a.gateway_cpus))?;
        gateway.wait_listening(addr, Duration::from_secs(20))?;
        Ok((writer, gateway, addr))
    }

    /// One measured configuration of one target.
    fn run_one(&self, target: Target, spec: &RunSpec) -> Result<RunOutcome, HarnessError> {
        let a = self.args;
        let warmup = spec
            .warmup
            .unwrap_or(Duration::from_secs_f64(a.warmup.max(0.0)));
        let ring = RingFile::new();
        let lifetime = warmup + spec.window + Duration::from_secs(120);
        let (writer, mut gateway, addr) = self.start(target, &ring, spec.rate, lifetime)?;
        let ready = ProcSample::read(gateway.pid())?;
        eprintln!(
            "[{}] {}: {} clients + {} stuck connecting to {addr}",
            target.name(),
            spec.title,
            spec.clients.len(),
            spec.stuck.len()
        );
        let load = LoadClient::connect(&LoadConfig {
            addr,
            clients: spec.clients.clone(),
            stuck: spec.stuck.clone(),
            threads: a.client_threads,
            cpus: a.client_cpus.clone(),
            connect_timeout: Duration::from_secs(10),
            connect_budget: Duration::from_secs(60),
        })?;
        let start = Instant::now() + warmup;
        let end = start + spec.window;
        let (pid, ring_path) = (gateway.pid(), ring.0.clone());
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
            client_cpus: if a.client_cpus.is_empty() {
                allowed_cpus(0)
            } else {
                a.client_cpus
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            },
            extra,
        };
        drop(gateway);
        drop(writer);
        Ok(outcome)
    }

    /// (f): a client reconnects with `resume_from` = head − `frames` and is timed until it
    /// has caught up with the head it resumed behind. ringgate only.
    fn resume(&self, frames: u64, rate: Option<u64>, window: Duration) -> Result<(), HarnessError> {
        let ring = RingFile::new();
        let fill_s = frames / rate.unwrap_or(1_000_000).max(1) + 60;
        let lifetime = window + Duration::from_secs(fill_s + 60);
        let (writer, mut gateway, addr) = self.start(Target::Ringgate, &ring, rate, lifetime)?;
        // Wait until the store can hold the requested depth plus a margin.
        let deadline = Instant::now() + Duration::from_secs(fill_s);
        let head = loop {
            gateway.check_alive()?;
            let h = head_server_seqno(addr).unwrap_or(0);
            if h >= frames + frames / 10 {
                break h;
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Unavailable(
                    Scenario::Resume,
                    "the head never grew",
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let from = head - frames;
        eprintln!("[ringgate] resuming from server_seqno {from} (head {head})");
        let load = LoadClient::connect(&LoadConfig {
            addr,
            clients: vec![ClientSpec {
                path: format!("/v1/ws?resume_from={from}"),
                subscribe: None,
                catch_up_to: Some(head),
            }],
            stuck: Vec::new(),
            threads: 1,
            cpus: self.args.client_cpus.clone(),
            connect_timeout: Duration::from_secs(10),
            connect_budget: Duration::from_secs(60),
        })?;
        let start = Instant::now();
        let result = load.measure(start, start + window)?;
        gateway.check_alive()?;
        let c = result.conns.first().cloned().unwrap_or_default();
        let mut extra = vec![
            (
                "resume_from (head − frames)".into(),
                format!("{from} ({head} − {frames})"),
            ),
            ("host load average (1 min) at end".into(), loadavg()),
        ];
        extra.push((
            "Resume said recovered:false".into(),
            c.resume_unrecovered.to_string(),
        ));
        extra.push((
            "first data server_seqno received".into(),
            c.first_data_seqno.map_or("none".into(), |s| s.to_string()),
        ));
        // A replay starts right after the cursor; anything later means history was skipped.
        let replayed = c.first_data_seqno.is_some_and(|s| s <= from + 1);
        extra.push((
            "replay started at resume_from + 1".into(),
            replayed.to_string(),
        ));
        let caught_up = match c.caught_up_after {
            Some(t) if replayed => {
                let rate = frames as f64 / t.as_secs_f64().max(1e-9);
                extra.push(("replay rate (frames/s)".into(), super::report::si(rate)));
                format!("{:.1}", t.as_secs_f64() * 1e3)
            }
            None if replayed => "not in the window".into(),
            _ => "no replay".into(),
        };
        extra.push(("caught up with the head after (ms)".into(), caught_up));
        let outcome = RunOutcome {
            title: "ringgate".into(),
            load: Some(result),
            gateway: Some(GatewayCost {
                window_cpu_s: 0.0,
                end: ProcSample::read(gateway.pid())?,
                ready: ProcSample::default(),
                cpus: allowed_cpus(gateway.pid()),
            }),
            written: None,
            client_cpus: client_cpus(self.args),
            extra,
        };
        drop(gateway);
        drop(writer);
        self.print(
            &format!(
                "(f) resume of {frames} frames, writer at {}",
                rate_label(rate)
            ),
            &[outcome],
        );
        Ok(())
    }

    /// (d): memory per idle connection = growth of the gateway's anonymous RSS while `n`
    /// connections that receive nothing are open, divided by `n`.
    fn idle_connections(
        &self,
        target: Target,
        n: usize,
        window: Duration,
    ) -> Result<(), HarnessError> {
        let ring = RingFile::new();
        let (writer, mut gateway, addr) =
            self.start(target, &ring, Some(10), window + Duration::from_secs(180))?;
        std::thread::sleep(Duration::from_secs(1));
        let before = ProcSample::read(gateway.pid())?;
        // Subscribed to a kind the synthetic chain never writes, so the connections stay idle.
        let clients: Vec<ClientSpec> = (0..n)
            .map(|_| ClientSpec {
                path: "/v1/ws".into(),
                subscribe: Some(r#"{"subscribe":["BlockReject"]}"#.into()),
                catch_up_to: None,
            })
            .collect();
        eprintln!("[{}] opening {n} idle connections to {addr}", target.name());
        let t0 = Instant::now();
        let load = LoadClient::connect(&LoadConfig {
            addr,
            clients,
            stuck: Vec::new(),
            threads: self.args.client_threads,
            cpus: self.args.client_cpus.clone(),
            connect_timeout: Duration::from_secs(10),
            connect_budget: Duration::from_secs(60),
        })?;
        let connect_s = t0.elapsed().as_secs_f64();
        let start = Instant::now() + Duration::from_secs(2);
        let sampler_pid = gateway.pid();
        let sampler = std::thread::spawn(move || {
            std::thread::sleep(start.saturating_duration_since(Instant::now()));
            ProcSample::read(sampler_pid).unwrap_or_default()
        });
        let result = load.measure(start, start + window.min(Duration::from_secs(3)))?;
        let with = sampler.join().unwrap_or_default();
        gateway.check_alive()?;
        let per_conn = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / n.max(1) as f64;
        let extra = vec![
            (
                "connections open".into(),
                result
                    .conns
                    .iter()
                    .filter(|c| c.ended.is_none())
                    .count()
                    .to_string(),
            ),
            ("connect time for all (s)".into(), format!("{connect_s:.2}")),
            (
                "RssAnon before (MiB)".into(),
                format!("{:.1}", before.rss_anon_kib as f64 / 1024.0),
            ),
            (
                "RssAnon with connections (MiB)".into(),
                format!("{:.1}", with.rss_anon_kib as f64 / 1024.0),
            ),
            (
                "memory per connection, RssAnon (KiB)".into(),
                format!("{:.1}", per_conn(with.rss_anon_kib, before.rss_anon_kib)),
            ),
            (
                "memory per connection, VmRSS (KiB)".into(),
                format!("{:.1}", per_conn(with.rss_kib, before.rss_kib)),
            ),
        ];
        let outcome = RunOutcome {
            title: target.name().into(),
            load: Some(result),
            gateway: Some(GatewayCost {
                window_cpu_s: 0.0,
                end: ProcSample::read(gateway.pid())?,
                ready: before,
                cpus: allowed_cpus(gateway.pid()),
            }),
            written: None,
            client_cpus: client_cpus(self.args),
            extra,
        };
        drop(gateway);
        drop(writer);
        self.print(
            &format!("(d) {n} idle connections ({})", target.name()),
            &[outcome],
        );
        Ok(())
    }
}

/// The `ringgate` binary cargo built next to this bench.
fn ringgate_exe() -> Result<&'static str, HarnessError> {
    option_env!("CARGO_BIN_EXE_ringgate").ok_or(HarnessError::NoRinggateBinary)
}

/// The cores the load client threads may use.
fn client_cpus(a: &Args) -> String {
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

/// The 1-minute load average: other work on the host shows up here.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `git rev-parse --short HEAD` of the source tree, marked `-dirty` when it has changes.
fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = out(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        out(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}-dirty")
    } else {
        head
    }
}
