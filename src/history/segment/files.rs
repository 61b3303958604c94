//! The history directory's small files: the `lock` (one gateway per directory), the
//! `identity` (whose history this is) and the `clean` marker, plus the listing of segment
//! files. Layouts in `format`; rules in `docs/history-format.md`.

use super::error::{io_err, JournalError};
use super::format::{decode_clean, decode_identity, parse_segment_file_name, IdentityFault};
use crate::history::meta::JournalIdentity;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// File names inside the history directory.
pub(super) const LOCK_FILE: &str = "lock";
pub(super) const IDENTITY_FILE: &str = "identity";
pub(super) const CLEAN_FILE: &str = "clean";
/// Suffix of a segment whose header could not be read, renamed out of the journal at `open`.
pub(super) const CORRUPT_SUFFIX: &str = ".corrupt";

/// Opens `DIR/lock` and takes its exclusive `flock`, then writes our pid into it for the
/// error message a second gateway gets.
pub(super) fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    match crate::sys::try_lock_exclusive(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "lock held".to_owned(),
                pid => format!("pid {pid}"),
            };
            return Err(JournalError::Locked {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        Err(e) => return Err(io_err("lock", &path)(e)),
    }
    // The pid is a courtesy for the message above; the lock itself is what counts.
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0));
    Ok(file)
}

/// Segment ids in `dir`, ascending. Other files are ignored.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list history dir", dir))? {
        let entry = entry.map_err(io_err("list history dir", dir))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Reads `DIR/identity` and checks it against `expected`: `None` when there is none.
pub(super) fn read_identity(
    dir: &Path,
    expected: &JournalIdentity,
) -> Result<Option<JournalIdentity>, JournalError> {
    let path = dir.join(IDENTITY_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let found = match decode_identity(&bytes, expected.format_version) {
        Ok(found) => found,
        Err(IdentityFault::Version(found)) => {
            return Err(JournalError::UnsupportedVersion {
                dir: dir.to_path_buf(),
                found,
                supported: expected.format_version,
            })
        }
        Err(IdentityFault::Damaged(why)) => {
            return Err(JournalError::BadIdentity {
                dir: dir.to_path_buf(),
                path,
                why,
            })
        }
    };
    let foreign = |field, found: String, expected: String| JournalError::Foreign {
        dir: dir.to_path_buf(),
        field,
        found,
        expected,
    };
    if found.ring_path != expected.ring_path {
        return Err(foreign(
            "ring path",
            found.ring_path,
            expected.ring_path.clone(),
        ));
    }
    if found.chain_id != 0 && expected.chain_id != 0 && found.chain_id != expected.chain_id {
        return Err(foreign(
            "chain id",
            found.chain_id.to_string(),
            expected.chain_id.to_string(),
        ));
    }
    Ok(Some(found))
}

/// Reads and removes `DIR/clean`: `Some(last seqno)` when the previous run closed cleanly.
/// Removed so that a crash of this run is not taken for a clean stop.
pub(super) fn take_clean_marker(dir: &Path) -> Result<Option<Option<u64>>, JournalError> {
    let path = dir.join(CLEAN_FILE);
    let marker = match fs::read(&path) {
        Ok(bytes) => decode_clean(&bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    fs::remove_file(&path).map_err(io_err("remove", &path))?;
    Ok(marker)
}

/// Writes `DIR/name` so that it is either the old or the new content, even after a crash or
/// power loss: a temporary file, fsync'd, renamed over it, then the directory fsync'd. Only
/// for the small files written at start and stop, never on the append path.
pub(super) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), JournalError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))?;
    // A directory fsync is not supported by every file system; the rename is done either way.
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}
