//! Opening the history at server start: in memory, or from `--history-dir` with everything
//! an earlier run journaled (its epoch, its seqnos, the frames its write-ahead log holds),
//! and where the tailer must continue reading the ring.
//!
//! Order (all before the tailer and the shards start): open the journal (exclusive lock,
//! identity check: another ring, chain or format version is refused), recover its chunks
//! (torn tail truncated, corrupt records counted), recover the write-ahead log's unsealed
//! frames, then start the history thread, which seals those frames first. The epoch is the
//! journal's when it has one, so clients' cursors stay valid across the restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::history::meta::JournalIdentity;
use crate::history::record::{self, Originals};
use crate::history::segment::{Journal, JournalError, SegmentConfig};
use crate::history::store::{History, HistoryConfig};
use crate::history::wal::Wal;
use crate::history::writer::{self, HistorySender};
use crate::model::outbound::Outbound;

/// Version of the journal format (segments, chunks, frame records, write-ahead log).
pub const FORMAT_VERSION: u32 = 1;

/// Where the history lives and how big it may grow.
#[derive(Debug, Clone)]
pub struct HistorySetup {
    pub config: HistoryConfig,
    /// `--history-dir`: journal on disk; `None` = memory only.
    pub dir: Option<PathBuf>,
    pub segments: SegmentConfig,
    /// Bytes of the write-ahead log's data area.
    pub wal_bytes: u64,
    /// The ring (or snapshot) the gateway reads, as configured: part of the journal identity.
    pub ring_path: String,
}

/// Where a restarted gateway continues: the last frame and ring event it journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPoint {
    /// The last `server_seqno` journaled: the next frame gets the one after it.
    pub last_server_seqno: u64,
    /// The ring seqno and ring timestamp of the last live event journaled (0 if none): the
    /// tailer continues after it when the ring still holds it with the same timestamp.
    pub last_ring_seqno: u64,
    pub last_ring_timestamp_ns: u64,
}

/// What recovery found, for the startup log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub chunks: usize,
    pub torn_tail_bytes: u64,
    pub corrupt_records: u64,
    pub wal_frames: usize,
    pub clean_shutdown: bool,
}

/// An opened history.
#[derive(Debug)]
pub struct OpenedHistory {
    pub history: Arc<History>,
    /// The tailer's queue to the history thread.
    pub sender: HistorySender,
    pub thread: JoinHandle<()>,
    /// The tailer's write-ahead log (with a history dir).
    pub wal: Option<Wal>,
    /// Set when the journal held frames of an earlier run.
    pub restart: Option<RestartPoint>,
    pub epoch: u64,
    pub report: RecoveryReport,
}

/// Why the history could not be opened (the server does not start).
#[derive(Debug, thiserror::Error)]
pub enum HistoryOpenError {
    #[error("history dir: {0}")]
    Journal(#[from] JournalError),
    #[error("history dir {dir}: write-ahead log: {source}")]
    Wal {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("history thread: {0}")]
    Thread(std::io::Error),
}

/// Opens the history; `new_epoch` is used when there is no journal to continue.
pub fn open(setup: &HistorySetup, new_epoch: u64) -> Result<OpenedHistory, HistoryOpenError> {
    let Some(dir) = &setup.dir else {
        let history = Arc::new(History::new(setup.config.clone(), new_epoch));
        let (sender, thread) =
            writer::spawn(history.clone(), 0, Vec::new()).map_err(HistoryOpenError::Thread)?;
        return Ok(OpenedHistory {
            history,
            sender,
            thread,
            wal: None,
            restart: None,
            epoch: new_epoch,
            report: RecoveryReport::default(),
        });
    };
    let expected = JournalIdentity {
        format_version: FORMAT_VERSION,
        epoch: new_epoch,
        ring_path: setup.ring_path.clone(),
        chain_id: 0,
    };
    let (mut journal, recovered) = Journal::open(dir, &expected, setup.segments)?;
    // The journal's chain, once known, is what the ring's first block is checked against.
    if let Some(found) = recovered.identity.as_ref().filter(|i| i.chain_id != 0) {
        if journal.identity().chain_id != found.chain_id {
            let mut identity = journal.identity().clone();
            identity.chain_id = found.chain_id;
            journal.set_identity(&identity)?;
        }
    }
    let epoch = recovered.identity.as_ref().map_or(new_epoch, |i| i.epoch);
    let mut report = RecoveryReport {
        chunks: recovered.chunks.len(),
        torn_tail_bytes: recovered.torn_tail_bytes,
        corrupt_records: recovered.corrupt_records,
        wal_frames: 0,
        clean_shutdown: recovered.clean_shutdown,
    };
    let history = History::with_journal(setup.config.clone(), epoch, journal, recovered.chunks);
    let (wal, tail) = Wal::open(&dir.join("wal"), setup.wal_bytes, epoch).map_err(|source| {
        HistoryOpenError::Wal {
            dir: dir.clone(),
            source,
        }
    })?;
    // Frames the last run wrote ahead but never sealed (a crash): those after the journal.
    let sealed = history.sealed_head();
    let pending = if tail.epoch == epoch {
        decode_tail(&history, &tail.records, sealed)
    } else {
        Vec::new()
    };
    report.wal_frames = pending.len();
    // Never reuse a seqno the last run issued, even one whose frame the journal lost (a
    // torn or damaged tail): such seqnos become a hole a replay announces as lost.
    let wal_last = if tail.epoch == epoch {
        tail.last_seqno
    } else {
        0
    };
    let last_server_seqno = pending
        .last()
        .map_or(sealed, Outbound::server_seqno)
        .max(wal_last);
    let last_event = last_live_event(&pending).or_else(|| history.last_live_event());
    let restart = (last_server_seqno > 0).then(|| RestartPoint {
        last_server_seqno,
        last_ring_seqno: last_event.map_or(0, |e| e.0),
        last_ring_timestamp_ns: last_event.map_or(0, |e| e.1),
    });
    let history = Arc::new(history);
    let start_ring = restart.map_or(0, |r| r.last_ring_seqno);
    let (sender, thread) =
        writer::spawn(history.clone(), start_ring, pending).map_err(HistoryOpenError::Thread)?;
    Ok(OpenedHistory {
        history,
        sender,
        thread,
        wal: Some(wal),
        restart,
        epoch,
        report,
    })
}

/// The write-ahead log's records above `sealed`, decoded (copies resolved against the
/// journal); stops at the first record that does not decode or breaks the seqno order.
fn decode_tail(history: &History, records: &[Vec<u8>], sealed: u64) -> Vec<Outbound> {
    let mut raw = Vec::new();
    let mut last = sealed;
    for r in records {
        let Ok(scanned) = record::scan(r) else {
            break;
        };
        let Some(&(seqno, _)) = scanned.first() else {
            continue;
        };
        if seqno <= last {
            continue;
        }
        if seqno != last + 1 && last != sealed {
            break;
        }
        last = seqno;
        raw.extend_from_slice(r);
    }
    let mut originals = Originals::new();
    history.load_originals_for(&raw, &mut originals);
    let mut unresolved = Vec::new();
    record::decode_lenient(&raw, &mut originals, &mut unresolved).unwrap_or_default()
}

/// `(ring_seqno, timestamp_ns)` of the last live event in `frames`.
pub fn last_live_event(frames: &[Outbound]) -> Option<(u64, u64)> {
    frames.iter().rev().find_map(|f| match f {
        Outbound::Event(e) if !e.is_copy() => Some((e.ring_seqno, e.timestamp_ns)),
        _ => None,
    })
}
