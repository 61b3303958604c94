//! Thin, safe wrappers over the few Linux calls the ring needs that std lacks at our MSRV:
//! `flock` (from `crate::sys`), `renameat2(RENAME_NOREPLACE)`, `statfs`, `access`,
//! `posix_fallocate`.
//!
//! Runs wherever attach or writer creation runs (startup, never the hot path). Input: paths and
//! open files; output: `io::Result`. Each wrapper converts its arguments to C form, makes one
//! call, and maps `-1`/errno to `io::Error`. Never: keep pointers past the call, retry silently.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains an interior NUL byte",
        )
    })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `flock` lives in `crate::sys` (the history journal locks its directory with it too).
pub(crate) use crate::sys::try_lock_exclusive;

/// `renameat2(from, to, RENAME_NOREPLACE)`: fails with `AlreadyExists` if `to` exists.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (c_path(from)?, c_path(to)?);
    // SAFETY: both pointers are NUL-terminated strings owned by `f` and `t`, alive for the
    // call; AT_FDCWD makes relative paths resolve like std's.
    check(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    })
}

/// The two `statfs` fields the hugetlbfs lookup needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FsInfo {
    /// `f_type` (filesystem magic).
    pub(crate) fs_type: u64,
    /// `f_bsize` (the huge page size on hugetlbfs).
    pub(crate) block_size: u64,
}

/// `HUGETLBFS_MAGIC` as `statfs` reports it in `f_type`.
pub(crate) const HUGETLBFS_MAGIC: u64 = 0x9584_58f6;

/// `statfs(path)`.
pub(crate) fn statfs(path: &Path) -> io::Result<FsInfo> {
    let p = c_path(path)?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `p` is a NUL-terminated path alive for the call and `st` points to writable
    // storage of the right type, which the kernel fills on success.
    check(unsafe { libc::statfs(p.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: `statfs` returned 0, so it initialised the struct (it was zeroed anyway, and
    // every field is a plain integer, valid for any bit pattern).
    let st = unsafe { st.assume_init() };
    Ok(FsInfo {
        // f_type is a signed word on x86-64; the magic is a 32-bit pattern.
        fs_type: (st.f_type as u64) & 0xffff_ffff,
        block_size: st.f_bsize as u64,
    })
}

/// `access(path, R_OK | W_OK | X_OK) == 0`.
pub(crate) fn access_rwx(path: &Path) -> bool {
    let Ok(p) = c_path(path) else { return false };
    // SAFETY: `p` is a NUL-terminated path alive for the call.
    unsafe { libc::access(p.as_ptr(), libc::R_OK | libc::W_OK | libc::X_OK) == 0 }
}

/// `posix_fallocate(fd, 0, len)`: reserve every page now (hugetlbfs would SIGBUS later).
pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file size exceeds off_t"))?;
    // SAFETY: plain fd and integer arguments; `file` keeps the fd open for the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        // posix_fallocate returns the error number instead of setting errno.
        Err(io::Error::from_raw_os_error(rc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statfs_and_access_work_on_the_temp_dir() {
        let dir = std::env::temp_dir();
        let info = statfs(&dir).unwrap();
        assert!(info.block_size > 0);
        assert!(access_rwx(&dir));
        assert!(!access_rwx(Path::new("/nonexistent/ringgate")));
    }
}
