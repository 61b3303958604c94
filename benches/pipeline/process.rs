//! Child processes of a benchmark run (the gateway under test, the ring writer) and what the
//! kernel says they cost: CPU time from `/proc/<pid>/stat`, peak and anonymous RSS from
//! `/proc/<pid>/status` (`VmHWM`, `RssAnon`), and the cores they may run on; plus what every
//! run's report and setup share: the ring file of a run (removed on drop), the host's load
//! average, the commit measured.
//!
//! Runs on the harness's main thread. Invariants: every child is owned by a [`ChildGuard`]
//! that kills it on drop (also while unwinding from a panic), and every child also gets
//! `PR_SET_PDEATHSIG = SIGKILL`, so a harness killed by a signal leaves nothing running.
//! Never signals a process it did not start.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running child that is killed (SIGTERM, then SIGKILL after a grace period) when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
}

/// Why a child could not be started or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("spawning {name}: {source}")]
    Spawn { name: String, source: io::Error },
    #[error("{name} exited before it was ready ({status})")]
    Exited {
        name: String,
        status: std::process::ExitStatus,
    },
    #[error("{name} not ready after {waited:?}: {what}")]
    NotReady {
        name: String,
        waited: Duration,
        what: String,
    },
}

impl ChildGuard {
    /// Starts `cmd` as `name`, pinned to `cpus` when given (sched_setaffinity in the child),
    /// with stdout discarded and stderr inherited (so gateway errors show up in the run).
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        cpus: Option<&[usize]>,
    ) -> Result<Self, ProcessError> {
        let cpus: Vec<usize> = cpus.map(<[usize]>::to_vec).unwrap_or_default();
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and only makes async-signal
        // -safe syscalls (prctl, sched_setaffinity) on stack data; it allocates nothing (the
        // CPU list was copied into `cpus` before fork).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if !cpus.is_empty() {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    for &c in &cpus {
                        libc::CPU_SET(c, &mut set);
                    }
                    if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: name.into(),
            source,
        })?;
        Ok(ChildGuard {
            name: name.into(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err(Exited)` if the child has already exited.
    pub fn check_alive(&mut self) -> Result<(), ProcessError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(ProcessError::Exited {
                name: self.name.clone(),
                status,
            }),
            _ => Ok(()),
        }
    }

    /// Polls until a TCP connect to `addr` succeeds, the child exits, or `timeout` passes.
    pub fn wait_listening(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(), ProcessError> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(ProcessError::NotReady {
                    name: self.name.clone(),
                    waited: timeout,
                    what: format!("nothing listening on {addr}"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until `path` exists and is at least `min_len` bytes long.
    pub fn wait_file(
        &mut self,
        path: &Path,
        min_len: u64,
        timeout: Duration,
    ) -> Result<(), ProcessError> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if std::fs::metadata(path).is_ok_and(|m| m.len() >= min_len) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(ProcessError::NotReady {
                    name: self.name.clone(),
                    waited: timeout,
                    what: format!("{} not created", path.display()),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the child: SIGTERM, then SIGKILL if it has not exited after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: `pid` is our own un-reaped child (try_wait above saw it running and only
        // `wait` reaps it), so the id cannot have been reused by another process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// A free loopback port: bind port 0, read the port, release it. The gateway binds it a
/// moment later; on a loopback-only bench host the race window is harmless.
pub fn free_loopback_addr() -> io::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

/// A process's resource use at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time, seconds (all threads).
    pub cpu_s: f64,
    /// Peak resident set (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// Current resident set (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Anonymous resident memory (`RssAnon`): heap and stacks, not file or shm mappings, KiB.
    pub rss_anon_kib: u64,
    pub threads: u64,
}

impl ProcSample {
    /// Reads `/proc/<pid>/{stat,status}`; `pid` 0 means the harness itself.
    pub fn read(pid: u32) -> io::Result<ProcSample> {
        let dir = if pid == 0 {
            "/proc/self".to_string()
        } else {
            format!("/proc/{pid}")
        };
        let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
        let status = std::fs::read_to_string(format!("{dir}/status"))?;
        let kib = |key: &str| status_field(&status, key).unwrap_or(0);
        Ok(ProcSample {
            cpu_s: stat_cpu_s(&stat),
            peak_rss_kib: kib("VmHWM:"),
            rss_kib: kib("VmRSS:"),
            rss_anon_kib: kib("RssAnon:"),
            threads: kib("Threads:"),
        })
    }
}

/// User + system CPU seconds in a `/proc/.../stat` line (a process's or one thread's).
fn stat_cpu_s(stat: &str) -> f64 {
    // Fields after the parenthesised command name (which may itself contain spaces).
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `after` starts at field 3.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

/// CPU seconds (user + system) of each live thread of `pid`, with the thread's name
/// (`/proc/<pid>/task/*/comm`); empty if the process is gone.
pub fn thread_cpu_s(pid: u32) -> Vec<(String, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            Some((name.trim().to_string(), stat_cpu_s(&stat)))
        })
        .collect()
}

/// The cores `pid` may run on (`Cpus_allowed_list`, e.g. `0-1`); `pid` 0 is the harness.
pub fn allowed_cpus(pid: u32) -> String {
    let path = if pid == 0 {
        "/proc/self/status".to_string()
    } else {
        format!("/proc/{pid}/status")
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// Pins the calling thread to `cpus` (no-op for an empty list).
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only
    // touch that local set, and pid 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The machine, for result tables: `lscpu` model name and online CPU count.
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cpus} CPUs")
}

/// A ring file that is deleted when the run ends.
pub struct RingFile(pub PathBuf);

impl RingFile {
    pub fn new() -> RingFile {
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

/// The 1-minute load average: other work on the host shows up here.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `git rev-parse --short HEAD` of the source tree, marked `-dirty` when it has changes.
pub fn commit() -> String {
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

fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_sample_has_memory_and_threads() {
        let s = ProcSample::read(0).unwrap();
        assert!(
            s.peak_rss_kib > 0 && s.rss_kib > 0 && s.threads >= 1,
            "{s:?}"
        );
        assert!(s.peak_rss_kib >= s.rss_anon_kib);
    }

    #[test]
    fn threads_of_this_process_are_listed_with_their_cpu() {
        let threads = thread_cpu_s(std::process::id());
        assert!(!threads.is_empty());
        assert!(threads
            .iter()
            .all(|(name, cpu)| !name.is_empty() && *cpu >= 0.0));
    }

    #[test]
    fn child_guard_kills_its_child_on_drop() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let guard = ChildGuard::spawn("sleep", cmd, None).unwrap();
        let pid = guard.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(guard);
        // Reaped by stop(): the pid no longer names our child.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(!stat.contains("(sleep)"), "child still present: {stat}");
    }
}
