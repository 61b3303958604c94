//! Every libc call outside the ring mapping (`ingest::ring::{map, sys}`), each behind a safe
//! function with its SAFETY argument, so `unsafe` lives in as few files as possible.
//!
//! Called from the tailer thread (timer slack), the main thread (THP, rlimits, signals), the
//! ring writer and the history journal (`flock`) and shard executors (socket options, `shutdown(2)`, `sendmsg(2)`, discarding a closing
//! socket's input, doorbell writes). None of
//! these calls blocks except the signal watcher's `read(2)`, which runs on its own thread.
//! Failures that leave a harmless default (timer slack, THP, `SO_SNDBUF`, `shutdown`) are
//! ignored on purpose and say so; the rest return `io::Result`.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// `errno` values callers match on (glommio reports a locked-memory failure as either).
pub const ENOMEM: i32 = libc::ENOMEM;
pub const EPERM: i32 = libc::EPERM;

/// Sets this thread's timer slack to `nanos` (Linux lets a `nanosleep` end up to the slack
/// late; the default is 50 µs). A failure leaves the default slack.
pub fn set_timer_slack(nanos: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes one unsigned long by value and only changes this
    // thread's timer slack; a failure leaves the default slack.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, nanos as libc::c_ulong, 0, 0, 0) };
}

/// Disables transparent huge pages for this process's heap. A failure (an old kernel)
/// leaves THP as configured.
pub fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and sets a flag on this
    // process's memory map; a failure leaves THP as configured.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1 as libc::c_ulong, 0, 0, 0) };
}

/// `flock(fd, LOCK_EX | LOCK_NB)`: the ring writer's claim on its file and the history
/// journal's claim on its directory. `Err` with `ErrorKind::WouldBlock` when another open file
/// description holds the lock; released when every fd of this open file description closes.
pub fn try_lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: `flock` takes a plain fd and flags; `file` keeps the fd open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `posix_fallocate(fd, 0, len)`: reserves the file's blocks now, so that a later write
/// through a shared mapping of it cannot fault with `SIGBUS` on a full disk (the history's
/// write-ahead log). `Err` (e.g. `ENOSPC`) when the space is not there.
pub fn allocate(file: &File, len: u64) -> io::Result<()> {
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `posix_fallocate` takes a plain fd and two offsets; `file` keeps the fd open.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// The current soft RLIMIT_MEMLOCK in KiB (`u64::MAX` when unlimited or unknown).
pub fn memlock_limit_kib() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct; getrlimit only writes into it.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        lim.rlim_cur / 1024
    }
}

/// The current soft RLIMIT_NOFILE (`u64::MAX` when unlimited or unknown).
pub fn open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct; getrlimit only writes into it.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        lim.rlim_cur
    }
}

/// Which directions [`shutdown`] closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Send FIN after what is queued; reads still work (`SHUT_WR`).
    Write,
    /// Both directions; pending reads and writes fail at once (`SHUT_RDWR`).
    Both,
}

/// `shutdown(2)` on a socket the caller owns. It never closes or invalidates the descriptor;
/// a failure (already shut down, peer gone) needs no handling.
pub fn shutdown(fd: RawFd, how: Shutdown) {
    let how = match how {
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: callers pass the fd of a socket they still own (a session's stream, which
    // outlives the call); shutdown(2) changes the connection state only and does not close
    // the descriptor, so no other owner can be affected.
    let _ = unsafe { libc::shutdown(fd, how) };
}

/// Sets `SO_SNDBUF` on a socket the caller owns. A failure leaves the kernel default.
pub fn set_send_buffer(fd: RawFd, bytes: usize) {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is the caller's open socket for the duration of this call; the option
    // value is a valid c_int whose size is passed. A failure leaves the kernel default.
    let _ = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// One non-blocking `sendmsg(2)` of `iov` (never raises `SIGPIPE`); returns the bytes the
/// socket took. "Would block" comes back as an error of that kind.
pub fn send_nonblocking(fd: RawFd, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // std guarantees `IoSlice` is ABI-compatible with `struct iovec` on Unix.
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: `fd` is the caller's open socket; `msg` points at `iov`, whose slices the
    // caller keeps alive and unmodified for the call, and the kernel only reads them;
    // MSG_DONTWAIT makes the call non-blocking whatever the fd's flags.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// What [`discard_input`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discarded {
    /// Nothing more is queued now (`EAGAIN`); the connection is still open for reading.
    Drained,
    /// The peer's FIN (or an error: the connection is gone): nothing will ever be unread.
    Ended,
    /// Stopped after `limit` bytes with more still queued (a peer that keeps sending).
    Limit,
}

/// Reads and throws away what is queued on socket `fd` without waiting (`MSG_DONTWAIT`), up
/// to `limit` bytes. A socket closed with unread input is reset by the kernel (RST instead
/// of FIN), and the reset destroys whatever it had not transmitted yet, close frame included.
pub fn discard_input(fd: RawFd, limit: usize) -> Discarded {
    let mut scratch = [0u8; 4096];
    let mut total = 0usize;
    while total < limit {
        // SAFETY: `fd` is the caller's open socket for the duration of this call; the
        // buffer is a valid, writable local array whose length is passed; MSG_DONTWAIT
        // makes the call non-blocking whatever the fd's flags.
        let n = unsafe {
            libc::recv(
                fd,
                scratch.as_mut_ptr().cast(),
                scratch.len(),
                libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => return Discarded::Ended,
            n if n > 0 => total += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Discarded::Drained,
                    io::ErrorKind::Interrupted => continue,
                    _ => Discarded::Ended,
                };
            }
        }
    }
    Discarded::Limit
}

/// Writes one byte to `fd` (a doorbell). Async-signal-safe. A failure (the buffer is full,
/// so the reader has unread wake-ups; or the reader is gone) is harmless to every caller and
/// ignored.
pub fn write_byte(fd: RawFd) {
    write_u8(fd, 1);
}

fn write_u8(fd: RawFd, value: u8) {
    let byte = [value];
    // SAFETY: write(2) is async-signal-safe; `fd` is an open descriptor the caller keeps
    // alive for the call; the buffer is a valid 1-byte array.
    let _ = unsafe { libc::write(fd, byte.as_ptr().cast(), 1) };
}

/// Write end of the signal self-pipe (-1 until installed). Read by the signal handler only.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn signal_handler(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // The signal number says which; it fits a byte (SIGHUP 1, SIGINT 2, SIGTERM 15).
        write_u8(fd, sig as u8);
    }
}

/// Installs SIGINT/SIGTERM handlers that call `on_signal` once, on a small watcher thread
/// (through a self-pipe, so the handler itself only calls `write(2)`). Call once per process.
pub fn install_signal_handlers(on_signal: impl FnOnce() + Send + 'static) -> io::Result<()> {
    install_signal_handlers_with_reload(on_signal, None::<fn()>)
}

/// As [`install_signal_handlers`], and with `on_reload`, SIGHUP calls it (on the watcher
/// thread) each time it arrives; without it SIGHUP keeps its default action.
pub fn install_signal_handlers_with_reload(
    on_signal: impl FnOnce() + Send + 'static,
    mut on_reload: Option<impl FnMut() + Send + 'static>,
) -> io::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid 2-int array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    SIGNAL_PIPE.store(write_fd, Ordering::SeqCst);
    let hup = on_reload.is_some().then_some(libc::SIGHUP);
    for sig in [libc::SIGINT, libc::SIGTERM].into_iter().chain(hup) {
        // SAFETY: a zeroed sigaction is a valid starting value; we set a plain handler
        // (no SA_SIGINFO) that only performs an async-signal-safe write.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction =
                signal_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    std::thread::Builder::new()
        .name("rg-signals".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            loop {
                // SAFETY: `read_fd` is the pipe's read end, owned by this thread; the buffer
                // is a valid 1-byte array.
                let n = unsafe { libc::read(read_fd, byte.as_mut_ptr().cast(), 1) };
                if n == 1 && i32::from(byte[0]) == libc::SIGHUP {
                    if let Some(reload) = on_reload.as_mut() {
                        reload();
                    }
                    continue;
                }
                if n == 1 {
                    // Not eprintln!: it panics when stderr is a closed pipe (a parent that
                    // died), and this thread would then never ask the server to stop.
                    let _ = std::io::Write::write_all(
                        &mut std::io::stderr(),
                        b"ringgate: signal received, shutting down\n",
                    );
                    on_signal();
                    return;
                }
                if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    return;
                }
            }
        })?;
    Ok(())
}
