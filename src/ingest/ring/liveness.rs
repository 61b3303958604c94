//! Writer liveness: is the process that writes a live ring still there, and is the file at our
//! path still the one we mapped?
//!
//! Runs on the tailer core, called only after the ring has been silent for a while (the
//! tailer's `LIVENESS_QUIET`, 1 s), never while events flow: it does a `stat` and reads
//! `/proc/locks`, whose first `read(2)` can block 6–14 ms in the kernel. Input: an attached
//! [`Ring`]. Output: [`WriterState`].
//!
//! - **Replaced**: `stat(path)` gives another inode. A restarted daemon creates a new file and
//!   restarts seqnos at 1; the old mapping would say `NotReady` forever
//!   (docs/ring-format.md#s1-4).
//! - **Gone**: the path no longer exists (a clean exit unlinks the file), or `/proc/locks` has no
//!   `FLOCK ... WRITE` holder on our inode, or that holder's pid has no `/proc/<pid>`. Locks are
//!   matched by inode only: overlay filesystems may report a different device in `stat` than in
//!   `/proc/locks`, and a same-inode WRITE flock on another device is vanishingly unlikely.
//!   A holder pid of 0 (outside our pid namespace) counts as alive.
//! - Snapshots are static and always **Alive**.
//!
//! Never: signal or otherwise touch the writer process.

use super::attach::Ring;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What happened to the writer of a live ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    /// A process holds the ring's exclusive flock and the path still names our file.
    Alive,
    /// No process holds the ring's write lock (crash or clean exit): no more events will come.
    Gone,
    /// The path now names a different file (the writer restarted); re-attach to follow it.
    Replaced,
}

/// Checks the writer of `ring`.
pub fn writer_state(ring: &Ring) -> WriterState {
    if ring.is_snapshot() {
        return WriterState::Alive;
    }
    match std::fs::metadata(ring.path()) {
        Ok(m) if m.ino() != ring.inode() => return WriterState::Replaced,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return WriterState::Gone,
        _ => {}
    }
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    match exclusive_writer_pid_in(&locks, ring.inode()) {
        Some(0) => WriterState::Alive,
        Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => WriterState::Alive,
        _ => WriterState::Gone,
    }
}

/// The pid holding an exclusive flock on `inode`, read from `/proc/locks`.
pub fn exclusive_writer_pid(inode: u64) -> Option<u32> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    exclusive_writer_pid_in(&locks, inode)
}

/// Parses `/proc/locks` text: lines like `1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF`.
/// Blocked waiters (`1: -> FLOCK ...`) hold nothing and are skipped.
fn exclusive_writer_pid_in(locks: &str, inode: u64) -> Option<u32> {
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(1) == Some(&"->") || f.len() < 6 {
            return None;
        }
        let (kind, mode, pid, id) = (f[1], f[3], f[4], f[5]);
        let ino = id.rsplit(':').next()?.parse::<u64>().ok()?;
        (kind == "FLOCK" && mode == "WRITE" && ino == inode)
            .then(|| pid.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKS: &str = "1: POSIX  ADVISORY  WRITE 77 00:1a:42 0 EOF\n\
                         2: FLOCK  ADVISORY  READ 88 00:1a:42 0 EOF\n\
                         3: FLOCK  ADVISORY  WRITE 4242 00:1a:42 0 EOF\n\
                         3: -> FLOCK  ADVISORY  WRITE 5555 00:1a:99 0 EOF\n\
                         4: FLOCK  ADVISORY  WRITE 6666 fd:01:7 0 EOF\n";

    #[test]
    fn finds_the_flock_write_holder_by_inode() {
        assert_eq!(exclusive_writer_pid_in(LOCKS, 42), Some(4242));
        assert_eq!(exclusive_writer_pid_in(LOCKS, 7), Some(6666));
    }

    #[test]
    fn ignores_waiters_posix_locks_and_other_inodes() {
        assert_eq!(exclusive_writer_pid_in(LOCKS, 99), None);
        assert_eq!(exclusive_writer_pid_in(LOCKS, 1), None);
        assert_eq!(exclusive_writer_pid_in("garbage\n\n1:\n", 1), None);
    }
}
