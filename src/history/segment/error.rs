//! What the journal fails with: one enum for every operation, each variant naming the
//! directory or file and saying what an operator can do about it.

use std::io;
use std::path::{Path, PathBuf};

/// Everything the journal can fail with. Messages name the directory or file and say what to
/// do, for an operator reading a log line.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("history journal: cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "history dir {dir} is in use by another process ({holder}); each gateway needs its own \
         --history-dir"
    )]
    Locked { dir: PathBuf, holder: String },
    #[error(
        "history dir {dir} belongs to another setup: its {field} is {found}, this gateway's is \
         {expected}; point --history-dir elsewhere or move {dir} aside (it is never mixed)"
    )]
    Foreign {
        dir: PathBuf,
        field: &'static str,
        found: String,
        expected: String,
    },
    #[error(
        "history dir {dir} was written in journal format version {found}, this ringgate reads \
         version {supported}; point --history-dir elsewhere or move {dir} aside"
    )]
    UnsupportedVersion {
        dir: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "history dir {dir}: {path} is damaged ({why}); move {dir} aside (or delete it) to start \
         a new history"
    )]
    BadIdentity {
        dir: PathBuf,
        path: PathBuf,
        why: &'static str,
    },
    #[error(
        "history dir {dir} holds segment files but no identity file, so whose history they are \
         is unknown; move {dir} aside (or delete it) to start a new history"
    )]
    MissingIdentity { dir: PathBuf },
    #[error(
        "history journal: chunk {first}..={last} does not follow the journal (it must start \
         at or after seqno {min_next})"
    )]
    OutOfOrder {
        first: u64,
        last: u64,
        min_next: u64,
    },
    #[error("history journal: chunk of epoch {found} offered to the journal of epoch {expected}")]
    WrongEpoch { found: u64, expected: u64 },
    #[error("history journal: chunk meta is inconsistent ({first}..={last}, {frames} frames)")]
    BadMeta { first: u64, last: u64, frames: u32 },
    #[error("history journal: chunk of {len} bytes is over the {max}-byte record limit")]
    TooLarge { len: usize, max: u32 },
    #[error(
        "history journal: segment {path} was deleted while in use (history dir removed?); \
         chunks are no longer journaled until a new segment can be created"
    )]
    Deleted { path: PathBuf },
    #[error("history journal: chunk at {path} offset {offset} is unreadable: {why}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: &'static str,
    },
    #[error(
        "history journal: cannot change the journal's {field} from {from} to {to} (its \
         segments are stamped with it)"
    )]
    IdentityChange {
        field: &'static str,
        from: String,
        to: String,
    },
}

pub(super) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
