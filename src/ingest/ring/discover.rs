//! Default ring discovery: where the execution daemon puts its ring when given a bare name.
//!
//! Runs once at startup (`serve` without `--ring`). Input: `/proc/mounts`, `statfs`, `access`.
//! Output: `<first usable 2 MiB hugetlbfs mount>/event-rings/monad-exec-events`, or an
//! [`AttachError::NoDefaultRing`] saying what was searched and suggesting `--ring PATH`.
//! Same rule as the daemon (docs/ring-format.md#s1-4):
//! the **first** mount, in `/proc/mounts` order, that `statfs` reports as hugetlbfs with
//! `f_bsize` = 2 MiB and that this user can access with R|W|X. Never: create directories or files.

use super::attach::AttachError;
use super::layout::HEADER_SIZE;
use super::sys;
use std::path::{Path, PathBuf};

/// Name of the default exec ring file inside the hugetlbfs mount.
pub const DEFAULT_RING_SUBPATH: &str = "event-rings/monad-exec-events";

/// The default live ring path: `<first usable 2 MiB hugetlbfs mount>/event-rings/monad-exec-events`.
///
/// Scans `/proc/mounts` in order and takes the first mount that `statfs` reports as hugetlbfs
/// with 2 MiB pages and that this user can access with R|W|X (docs/ring-format.md#s1-4). The file itself may
/// not exist yet; [`Ring::open`](super::Ring::open) reports that.
pub fn default_ring_path() -> Result<PathBuf, AttachError> {
    let mounts = std::fs::read_to_string("/proc/mounts").map_err(|e| AttachError::Io {
        path: PathBuf::from("/proc/mounts"),
        op: "read",
        source: e,
    })?;
    default_ring_path_in(&mounts, |p| {
        sys::statfs(p)
            .is_ok_and(|fs| fs.fs_type == sys::HUGETLBFS_MAGIC && fs.block_size == HEADER_SIZE)
            && sys::access_rwx(p)
    })
}

/// Whether `path` (or, when it does not exist yet, its folder) is on a hugetlbfs mount with
/// 2 MiB pages; `None` when neither can be examined.
pub fn is_on_hugetlbfs(path: &Path) -> Option<bool> {
    let probe = if path.exists() { path } else { path.parent()? };
    sys::statfs(probe)
        .ok()
        .map(|fs| fs.fs_type == sys::HUGETLBFS_MAGIC && fs.block_size == HEADER_SIZE)
}

/// [`default_ring_path`] over a given `/proc/mounts` text and mount probe.
fn default_ring_path_in(
    mounts: &str,
    usable: impl Fn(&Path) -> bool,
) -> Result<PathBuf, AttachError> {
    let mut hugetlbfs = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_dev), Some(mount), Some(fstype)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mount = PathBuf::from(unescape_mount(mount));
        if usable(&mount) {
            return Ok(mount.join(DEFAULT_RING_SUBPATH));
        }
        if fstype == "hugetlbfs" {
            hugetlbfs.push(mount.display().to_string());
        }
    }
    let searched = if hugetlbfs.is_empty() {
        "no hugetlbfs mount found".to_string()
    } else {
        format!(
            "hugetlbfs mounts {} are not 2 MiB or not accessible",
            hugetlbfs.join(", ")
        )
    };
    Err(AttachError::NoDefaultRing { searched })
}

/// `/proc/mounts` escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                let v = d.iter().fold(0u16, |acc, c| acc * 8 + u16::from(c - b'0'));
                u8::try_from(v).ok()
            });
        if let Some(v) = octal {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_takes_the_first_usable_mount_in_order() {
        let mounts = "proc /proc proc rw 0 0\n\
                      hugetlbfs /dev/hugepages hugetlbfs rw 0 0\n\
                      none /var/lib/hugetlbfs/user/monad/pagesize-2MB hugetlbfs rw 0 0\n\
                      none /mnt/second hugetlbfs rw 0 0\n";
        let p = default_ring_path_in(mounts, |m| {
            m.starts_with("/var/lib") || m.starts_with("/mnt")
        })
        .unwrap();
        assert_eq!(
            p,
            Path::new("/var/lib/hugetlbfs/user/monad/pagesize-2MB/event-rings/monad-exec-events")
        );
    }

    #[test]
    fn no_usable_mount_names_what_was_searched_and_the_remedy() {
        let mounts = "hugetlbfs /dev/hugepages hugetlbfs rw 0 0\n";
        let e = default_ring_path_in(mounts, |_| false).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/dev/hugepages"), "{msg}");
        assert!(msg.contains("--ring PATH"), "{msg}");
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mount("/mnt/x\\"), "/mnt/x\\");
    }
}
