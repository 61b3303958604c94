//! The scenarios (a)–(g) of the benchmark plan: which clients, rates and targets each one
//! runs, plus the two that need their own procedure (d: memory per idle connection, f:
//! resume). The shared run machinery is in [`super::runner`].
//!
//! Runs on the harness's main thread. Inputs: the parsed [`Args`]. Output: tables on stdout,
//! preceded by the machine, commit, host load and command line.

use std::time::{Duration, Instant};

use super::blaster::{Blaster, EVENTS_PER_FRAME};
use super::load_client::{ClientSpec, LoadClient, LoadConfig, LoadResult};
use super::probe::head_server_seqno;
use super::process::{allowed_cpus, machine_description, ProcSample};
use super::report::{GatewayCost, RunOutcome};
use super::runner::{
    client_cpus, commit, loadavg, rate_label, Bench, HarnessError, RingFile, RunSpec, Started,
    Target,
};
use super::{Args, Scenario, TargetArg};

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
        TargetArg::Floor => vec![Target::Floor],
        TargetArg::Both => vec![Target::Ringgate, Target::Baseline],
        TargetArg::All => vec![Target::Ringgate, Target::Floor, Target::Baseline],
        TargetArg::Edge => vec![Target::Edge],
        TargetArg::Scaleout => vec![Target::Ringgate, Target::Edge],
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
            let mut runs = Vec::new();
            for &t in &targets {
                runs.push(b.idle_connections(t, n, window)?);
            }
            b.print(&format!("(d) {n} idle connections"), &runs);
        }
        Scenario::Stuck => {
            let n = args.clients.unwrap_or(100);
            let stuck = if args.stuck > 0 { args.stuck } else { 10 };
            let without = RunSpec::new(rate(Some(10_000)), firehose(n), window);
            let mut with = without.clone();
            with.stuck = firehose(stuck);
            for (case, spec) in [("no stuck", without), (&*format!("{stuck} stuck"), with)] {
                b.compare(
                    &format!("(e) {n} fast clients, {}, {case}", rate_label(spec.rate)),
                    &targets,
                    &spec,
                )?;
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
                threads: args.client_threads,
                cpus: args.client_cpus.clone(),
                ..LoadConfig::new(blaster.addr, firehose(n))
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
                deflate: args.deflate,
                ..ClientSpec::new(args.path.clone(), args.subscribe.clone())
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

/// `n` clients on `/v1/ws` with no subscribe message: every event (the channel default).
fn firehose(n: usize) -> Vec<ClientSpec> {
    (0..n).map(|_| ClientSpec::new("/v1/ws", None)).collect()
}

/// `n` clients, each subscribed to one rare event kind, rotating over the block-level kinds
/// (a few events per block each), so almost every event matches no client.
fn narrow(n: usize) -> Vec<ClientSpec> {
    const KINDS: [&str; 4] = ["BlockStart", "BlockEnd", "BlockQC", "BlockFinalized"];
    (0..n)
        .map(|i| {
            let kind = KINDS[i % KINDS.len()];
            ClientSpec::new("/v1/ws", Some(format!(r#"{{"subscribe":["{kind}"]}}"#)))
        })
        .collect()
}

impl Bench<'_> {
    /// One column of a run that reports its own rows (`extra`) rather than a window's CPU:
    /// the gateway process (`gateway_pid`) as it is now, against `ready`.
    fn outcome_now(
        &self,
        title: &str,
        result: LoadResult,
        gateway_pid: u32,
        ready: ProcSample,
        extra: Vec<(String, String)>,
    ) -> Result<RunOutcome, HarnessError> {
        Ok(RunOutcome {
            title: title.into(),
            load: Some(result),
            gateway: Some(GatewayCost {
                window_cpu_s: 0.0,
                end: ProcSample::read(gateway_pid)?,
                ready,
                cpus: allowed_cpus(gateway_pid),
            }),
            written: None,
            client_cpus: client_cpus(self.args),
            extra,
        })
    }

    /// (f): a client reconnects with `resume_from` = head − `frames` and is timed until it
    /// has caught up with the head it resumed behind. ringgate only.
    fn resume(&self, frames: u64, rate: Option<u64>, window: Duration) -> Result<(), HarnessError> {
        let ring = RingFile::new();
        let fill_s = frames / rate.unwrap_or(1_000_000).max(1) + 60;
        let lifetime = window + Duration::from_secs(fill_s + 60);
        let Started {
            writer,
            mut gateway,
            addr,
            behind: _behind,
        } = self.start(Target::Ringgate, &ring, rate, lifetime)?;
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
        let client = ClientSpec {
            catch_up_to: Some(head),
            ..ClientSpec::new(format!("/v1/ws?resume_from={from}"), None)
        };
        let load = LoadClient::connect(&LoadConfig {
            cpus: self.args.client_cpus.clone(),
            ..LoadConfig::new(addr, vec![client])
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
        // A replay's first frame is the first stored frame after the cursor that this client's
        // subscription selects: above the cursor and at or below the head it resumed behind.
        // (Not necessarily cursor + 1: seqnos in between may be `min_stage` copies or frames of
        // other subscriptions.) A first frame above the head means history was skipped.
        let replayed = c.first_data_seqno.is_some_and(|s| s > from && s <= head);
        extra.push((
            "replay started after resume_from, below the head".into(),
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
        let outcome = self.outcome_now(
            "ringgate",
            result,
            gateway.pid(),
            ProcSample::default(),
            extra,
        )?;
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
    ) -> Result<RunOutcome, HarnessError> {
        let ring = RingFile::new();
        let Started {
            writer,
            mut gateway,
            addr,
            behind,
        } = self.start(target, &ring, Some(10), window + Duration::from_secs(180))?;
        std::thread::sleep(Duration::from_secs(1));
        let before = ProcSample::read(gateway.pid())?;
        // Subscribed to a kind the synthetic chain never writes, so the connections stay idle.
        let clients: Vec<ClientSpec> = (0..n)
            .map(|_| ClientSpec::new("/v1/ws", Some(r#"{"subscribe":["BlockReject"]}"#.into())))
            .collect();
        eprintln!("[{}] opening {n} idle connections to {addr}", target.name());
        let t0 = Instant::now();
        let load = LoadClient::connect(&LoadConfig {
            threads: self.args.client_threads,
            cpus: self.args.client_cpus.clone(),
            ..LoadConfig::new(addr, clients)
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
        let outcome = self.outcome_now(target.name(), result, gateway.pid(), before, extra)?;
        drop(gateway);
        drop(behind);
        drop(writer);
        Ok(outcome)
    }
}
