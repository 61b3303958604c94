//! `ringgate check`: a preflight that reports everything that would stop or slow serving,
//! each finding with its remedy, before the operator starts the gateway.
//!
//! Runs on the main thread, once; reads the ring header, process limits, `/proc` and `/sys`,
//! and tries to bind the listen address (then lets it go). Never changes the host. Findings
//! are `ok`, `warn` (serving works but slower or less predictable) or `fail` (serving would
//! not start or would not see events); the command exits 1 when any check fails. Output is a
//! table for people or, with `--json`, one JSON object for automation.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;

use crate::config::Config;
use crate::ingest::ring::{is_on_hugetlbfs, Ring};
use crate::wire::json::{push_array, Obj};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked: `ring`, `locked_memory`, `open_files`, `hugepages`, `listen`,
    /// `cpu_isolation`, `clock_source`.
    pub check: &'static str,
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty when ok).
    pub remedy: String,
}

fn finding(check: &'static str, verdict: Verdict, detail: String, remedy: &str) -> Finding {
    Finding {
        check,
        verdict,
        detail,
        remedy: if verdict == Verdict::Ok {
            String::new()
        } else {
            remedy.to_owned()
        },
    }
}

/// The host facts the checks read, gathered in one place so tests can substitute them.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Soft RLIMIT_MEMLOCK, KiB (`u64::MAX` = unlimited).
    pub memlock_kib: u64,
    /// Soft RLIMIT_NOFILE (`u64::MAX` = unlimited).
    pub open_files: u64,
    /// `/proc/meminfo` text.
    pub meminfo: String,
    /// `/sys/devices/system/cpu/isolated` (a cpu list such as `2-5,8`), empty when none.
    pub isolated_cpus: String,
    /// `/sys/devices/system/clocksource/clocksource0/current_clocksource`.
    pub clock_source: String,
}

impl Host {
    /// The facts of this machine and process.
    pub fn current() -> Host {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Host {
            memlock_kib: crate::sys::memlock_limit_kib(),
            open_files: crate::sys::open_files_limit(),
            meminfo: read("/proc/meminfo"),
            isolated_cpus: read("/sys/devices/system/cpu/isolated").trim().to_owned(),
            clock_source: read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
                .trim()
                .to_owned(),
        }
    }
}

/// Runs every check for `config` on `host`.
pub fn run(config: &Config, host: &Host) -> Vec<Finding> {
    vec![
        check_ring(&config.ring_path),
        check_locked_memory(config, host),
        check_open_files(config, host),
        check_hugepages(&config.ring_path, host),
        check_listen(config),
        check_cpu_isolation(config, host),
        check_clock_source(host),
    ]
}

fn check_ring(path: &Path) -> Finding {
    match Ring::open(path) {
        Ok(ring) => {
            let h = ring.header();
            let kind = if ring.is_snapshot() {
                "snapshot"
            } else {
                "live ring"
            };
            finding(
                "ring",
                Verdict::Ok,
                format!(
                    "{} ({kind}): schema matches this build, last_seqno {}, {} descriptors, {} MiB payload buffer",
                    path.display(),
                    h.last_seqno,
                    h.sizes.descriptor_capacity,
                    h.sizes.payload_buf_size >> 20
                ),
                "",
            )
        }
        Err(e) => finding(
            "ring",
            Verdict::Fail,
            e.to_string(),
            "start the node with --exec-event-ring (or pass the ring's path with --ring); a ring \
             of another schema needs a ringgate built for that Monad version",
        ),
    }
}

fn check_locked_memory(config: &Config, host: &Host) -> Finding {
    let need = config.locked_memory_needed_kib();
    let have = host.memlock_kib;
    let shown = if have == u64::MAX {
        "unlimited".to_owned()
    } else {
        format!("{have} KiB")
    };
    finding(
        "locked_memory",
        if have >= need {
            Verdict::Ok
        } else {
            Verdict::Fail
        },
        format!(
            "RLIMIT_MEMLOCK is {shown}; {} shard(s) x io_memory need about {need} KiB",
            config.shard_count()
        ),
        "raise the limit (systemd: LimitMEMLOCK=infinity; limits.conf: memlock unlimited) or \
         lower --io-memory-kib / --shards",
    )
}

fn check_open_files(config: &Config, host: &Host) -> Finding {
    // Each connection is one fd; listeners, rings, doorbells and logs need a few dozen more.
    let need = config.connection_limits.max_total as u64 + 64;
    let have = host.open_files;
    // Serving starts either way; past the limit, accepts fail (EMFILE): a warning.
    finding(
        "open_files",
        if have >= need {
            Verdict::Ok
        } else {
            Verdict::Warn
        },
        format!(
            "RLIMIT_NOFILE is {}; the connection limit {} needs at least {need}",
            if have == u64::MAX {
                "unlimited".to_owned()
            } else {
                have.to_string()
            },
            config.connection_limits.max_total
        ),
        "raise the limit (systemd: LimitNOFILE=1048576; ulimit -n) or lower the connection limit",
    )
}

fn meminfo_value(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn check_hugepages(ring: &Path, host: &Host) -> Finding {
    let total = meminfo_value(&host.meminfo, "HugePages_Total").unwrap_or(0);
    let free = meminfo_value(&host.meminfo, "HugePages_Free").unwrap_or(0);
    let size_kib = meminfo_value(&host.meminfo, "Hugepagesize").unwrap_or(0);
    let on_hugetlbfs = is_on_hugetlbfs(ring);
    let verdict = if on_hugetlbfs == Some(true) {
        Verdict::Ok
    } else {
        Verdict::Warn
    };
    let place = match on_hugetlbfs {
        Some(true) => "on hugetlbfs (2 MiB pages)",
        Some(false) => "not on hugetlbfs: every ring read may take TLB misses",
        None => "on a filesystem that cannot be examined",
    };
    finding(
        "hugepages",
        verdict,
        format!("{total} huge pages of {size_kib} KiB reserved, {free} free; the ring is {place}"),
        "reserve 2 MiB huge pages and run the node with its ring on a hugetlbfs mount \
         (tuning/hugepages prints the commands)",
    )
}

fn check_listen(config: &Config) -> Finding {
    match TcpListener::bind(config.listen) {
        Ok(_) => finding(
            "listen",
            Verdict::Ok,
            format!("{} is free", config.listen),
            "",
        ),
        Err(e) => finding(
            "listen",
            Verdict::Fail,
            format!("cannot bind {}: {e}", config.listen),
            "stop the process using the port (ss -ltnp) or choose another --listen",
        ),
    }
}

/// Expands a kernel cpu list (`0-3,8`) into cpu numbers.
fn cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b.min(a + 4096));
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

fn check_cpu_isolation(config: &Config, host: &Host) -> Finding {
    if !config.pin_cores {
        return finding(
            "cpu_isolation",
            Verdict::Warn,
            "pinning is off (--no-pin): the kernel may move the tailer and the shards".into(),
            "pin (drop --no-pin) and isolate the tailer's and shards' cores",
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut wanted = vec![config.tailer_core];
    wanted.extend((0..config.shard_count()).map(|i| config.shard_core(i, cores)));
    // More threads than cores (shards wrap around, or land on the tailer's core): say so.
    let mut distinct = wanted.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < wanted.len() {
        return finding(
            "cpu_isolation",
            Verdict::Warn,
            format!(
                "tailer on core {} and {} shard(s) on {:?}: {} cores are shared (this process may \
                 use {cores} cores)",
                config.tailer_core,
                config.shard_count(),
                &wanted[1..],
                wanted.len() - distinct.len()
            ),
            "give each shard its own core: fewer --shards, or a wider CPU set for the service",
        );
    }
    let isolated = cpu_list(&host.isolated_cpus);
    let mut missing: Vec<String> = Vec::new();
    for c in wanted.iter().filter(|c| !isolated.contains(c)) {
        let c = c.to_string();
        if !missing.contains(&c) {
            missing.push(c);
        }
    }
    finding(
        "cpu_isolation",
        if missing.is_empty() {
            Verdict::Ok
        } else {
            Verdict::Warn
        },
        format!(
            "tailer on core {}, shards on {:?}; isolated cores: {}",
            config.tailer_core,
            &wanted[1..],
            if host.isolated_cpus.is_empty() {
                "none"
            } else {
                &host.isolated_cpus
            }
        ),
        &format!(
            "isolate cores {} (tuning/cpu-isolation prints the kernel command line)",
            missing.join(",")
        ),
    )
}

fn check_clock_source(host: &Host) -> Finding {
    let tsc = host.clock_source == "tsc";
    finding(
        "clock_source",
        if tsc { Verdict::Ok } else { Verdict::Warn },
        format!("clock source is {:?}", host.clock_source),
        "use the tsc clock source (clocksource=tsc tsc=reliable on a host with an invariant \
         TSC): timestamps then cost nanoseconds, not a slower clock read",
    )
}

/// Writes the findings as a table (or JSON) to `out`; returns whether none failed.
pub fn report(findings: &[Finding], json: bool, out: &mut dyn Write) -> std::io::Result<bool> {
    let passed = findings.iter().all(|f| f.verdict != Verdict::Fail);
    if json {
        let mut buf = Vec::new();
        let mut o = Obj::open(&mut buf);
        o.bool("ok", passed);
        push_array(o.key("checks"), findings, |out, f| {
            let mut c = Obj::open(out);
            c.str("check", f.check)
                .str("verdict", f.verdict.name())
                .str("detail", &f.detail)
                .str("remedy", &f.remedy);
            c.close();
        });
        o.close();
        buf.push(b'\n');
        out.write_all(&buf)?;
    } else {
        for f in findings {
            writeln!(out, "{:<5} {:<14} {}", f.verdict.name(), f.check, f.detail)?;
            if !f.remedy.is_empty() {
                writeln!(out, "{:<20} remedy: {}", "", f.remedy)?;
            }
        }
        writeln!(
            out,
            "{}",
            if passed {
                "check passed"
            } else {
                "check FAILED: ringgate serve would not start or would see no events"
            }
        )?;
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            memlock_kib: u64::MAX,
            open_files: 1 << 20,
            meminfo:
                "HugePages_Total:     512\nHugePages_Free:      200\nHugepagesize:       2048 kB\n"
                    .into(),
            isolated_cpus: "1-3".into(),
            clock_source: "tsc".into(),
        }
    }

    #[test]
    fn limits_below_what_the_configuration_needs_fail_with_their_remedy() {
        let config = Config {
            shards: Some(2),
            ..Config::default()
        };
        let low = Host {
            memlock_kib: 64,
            open_files: 1024,
            ..host()
        };
        let mem = check_locked_memory(&config, &low);
        assert_eq!(mem.verdict, Verdict::Fail);
        assert!(mem.detail.contains("64 KiB"), "{}", mem.detail);
        assert!(mem.remedy.contains("LimitMEMLOCK"));
        let files = check_open_files(&config, &low);
        assert_eq!(files.verdict, Verdict::Warn);
        assert!(files.remedy.contains("LimitNOFILE"));
        assert_eq!(check_locked_memory(&config, &host()).verdict, Verdict::Ok);
        assert_eq!(check_open_files(&config, &host()).verdict, Verdict::Ok);
    }

    #[test]
    fn cores_outside_the_isolated_list_and_a_slow_clock_are_warnings() {
        assert_eq!(cpu_list("0-2,5, 7"), [0, 1, 2, 5, 7]);
        let config = Config {
            shards: Some(1),
            tailer_core: 2,
            ..Config::default()
        };
        assert_eq!(check_cpu_isolation(&config, &host()).verdict, Verdict::Ok);
        let none = Host {
            isolated_cpus: String::new(),
            clock_source: "kvm-clock".into(),
            ..host()
        };
        let iso = check_cpu_isolation(&config, &none);
        assert_eq!(iso.verdict, Verdict::Warn);
        assert!(iso.remedy.contains("isolate cores 2,"), "{}", iso.remedy);
        assert_eq!(check_clock_source(&none).verdict, Verdict::Warn);
    }

    #[test]
    fn the_json_report_says_which_check_failed() {
        let findings = vec![
            finding("ring", Verdict::Fail, "missing".into(), "start the node"),
            finding("listen", Verdict::Ok, "free".into(), "unused"),
        ];
        let mut out = Vec::new();
        assert!(!report(&findings, true, &mut out).unwrap());
        let v: sonic_rs::Value = sonic_rs::from_slice(&out).unwrap();
        use sonic_rs::{JsonContainerTrait, JsonValueTrait};
        assert_eq!(v.get("ok").and_then(|b| b.as_bool()), Some(false));
        let checks = v.get("checks").and_then(|c| c.as_array()).unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(
            checks
                .get(1)
                .and_then(|c| c.get("remedy"))
                .and_then(|r| r.as_str()),
            Some("")
        );
    }
}
