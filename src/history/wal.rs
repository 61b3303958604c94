//! The write-ahead log: every frame's record copied into a memory-mapped file by the tailer
//! *before* the frame reaches any shard, so that a gateway killed with SIGKILL has journaled
//! every frame a client can have seen (the page cache outlives the process; no `fsync`).
//!
//! Only with `--history-dir`. The tailer owns the [`Wal`] (no other thread touches the
//! mapping): an append is one record encode and one `memcpy` into the mapping, no syscall.
//! The history thread seals frames into compressed chunks in the journal and publishes the
//! last sealed seqno; the tailer then [`Wal::reclaim`]s the space of every record at or
//! below it. At start, [`Wal::open`] returns the records that were never sealed (the tail a
//! crash left), which the history seals first.
//!
//! Layout (little endian): a 4 KiB header `[magic "RGWAL001"][epoch u64][write_pos u64]
//! [reclaim_pos u64][capacity u64][last_seqno u64]` (`last_seqno`: the highest seqno ever
//! appended, so a restart never reuses a seqno a client may have seen even if the journal
//! lost its tail), then a circular data area of `capacity` bytes holding
//! records `[len u32][record]` (see [`crate::history::record`]); a `len` of `u32::MAX` (or
//! fewer than 4 bytes left before the end) means "continue at the start of the area".
//! Positions are logical byte counts since the log was created (`pos % capacity` is the
//! offset in the area). `write_pos` is stored after the record it covers, so a process that
//! dies mid-copy leaves no torn record behind `write_pos`.
//!
//! Invariants: `reclaim_pos <= write_pos <= reclaim_pos + capacity`; records between them are
//! in seqno order. A full log refuses the append (the caller counts it): never blocks, never
//! overwrites an unsealed record.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use memmap2::MmapMut;

use crate::history::record;
use crate::model::outbound::Outbound;

const MAGIC: &[u8; 8] = b"RGWAL001";
const HEADER: usize = 4096;
const WRAP: u32 = u32::MAX;
/// A reclaim checkpoint is taken every this many bytes of log at most (and at least 16 per
/// lap of the log, for small logs).
const CHECKPOINT_EVERY: u64 = 64 << 10;

/// The tailer's write-ahead log.
#[derive(Debug)]
pub struct Wal {
    map: MmapMut,
    capacity: u64,
    write_pos: u64,
    reclaim_pos: u64,
    /// `(pos, seqno)`: the record at `pos` has `seqno`; every record before `pos` is below it.
    checkpoints: VecDeque<(u64, u64)>,
    scratch: Vec<u8>,
}

/// What [`Wal::open`] found from an earlier run.
#[derive(Debug, Default)]
pub struct WalTail {
    /// The epoch the log was written under (0 for a new log).
    pub epoch: u64,
    /// The highest seqno the earlier run appended (0 for a new log).
    pub last_seqno: u64,
    /// Records between the reclaim and write positions, in order (each one frame record).
    pub records: Vec<Vec<u8>>,
}

impl Wal {
    /// Opens (or creates) the log at `path` with `capacity` data bytes, returns the records an
    /// earlier run left unsealed, and starts a new, empty log for `epoch`. A log of another
    /// capacity or with a bad header yields no records (counted by the caller as nothing to
    /// recover; the journal still has everything sealed).
    pub fn open(path: &Path, capacity: u64, epoch: u64) -> io::Result<(Wal, WalTail)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let total = HEADER as u64 + capacity;
        if file.metadata()?.len() != total {
            file.set_len(total)?;
        }
        // Blocks reserved now: a full disk is an error here, never a SIGBUS in the tailer.
        crate::sys::allocate(&file, total)?;
        // SAFETY: the file is the gateway's own log inside its history dir, which the journal
        // holds an exclusive `flock` on for the life of the process, so no other process maps
        // or truncates it while this mapping lives; the length was just set to `total` and
        // its blocks allocated.
        let map = unsafe { MmapMut::map_mut(&file)? };
        drop::<File>(file);
        let mut wal = Wal {
            map,
            capacity,
            write_pos: 0,
            reclaim_pos: 0,
            checkpoints: VecDeque::new(),
            scratch: Vec::with_capacity(4096),
        };
        let tail = wal.recover();
        wal.reset(epoch);
        Ok((wal, tail))
    }

    fn word(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.map[at..at + 8].try_into().expect("8 bytes"))
    }

    fn set_word(&mut self, at: usize, v: u64) {
        self.map[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn recover(&self) -> WalTail {
        if &self.map[..8] != MAGIC || self.word(32) != self.capacity {
            return WalTail::default();
        }
        let (epoch, write, reclaim) = (self.word(8), self.word(16), self.word(24));
        let mut tail = WalTail {
            epoch,
            last_seqno: self.word(40),
            records: Vec::new(),
        };
        if reclaim > write || write - reclaim > self.capacity {
            return tail;
        }
        let mut pos = reclaim;
        while pos < write {
            let off = (pos % self.capacity) as usize;
            let room = self.capacity as usize - off;
            if room < 4 {
                pos += room as u64;
                continue;
            }
            let at = HEADER + off;
            let len = u32::from_le_bytes(self.map[at..at + 4].try_into().expect("4 bytes"));
            if len == WRAP {
                pos += room as u64;
                continue;
            }
            let len = len as usize;
            if len + 4 > room || pos + 4 + len as u64 > write {
                break;
            }
            tail.records.push(self.map[at + 4..at + 4 + len].to_vec());
            pos += 4 + len as u64;
        }
        tail
    }

    fn reset(&mut self, epoch: u64) {
        self.map[..8].copy_from_slice(MAGIC);
        self.set_word(8, epoch);
        self.set_word(16, 0);
        self.set_word(24, 0);
        self.set_word(32, self.capacity);
        self.set_word(40, 0);
        self.write_pos = 0;
        self.reclaim_pos = 0;
        self.checkpoints.clear();
    }

    /// Appends `frame`'s record; `false` when the log is full (the history thread is behind
    /// by the whole capacity): the frame is not write-ahead logged (the caller counts it), and
    /// a SIGKILL before it is sealed loses it from the journal.
    pub fn append(&mut self, frame: &Outbound) -> bool {
        self.scratch.clear();
        record::encode(frame, &mut self.scratch);
        let need = 4 + self.scratch.len() as u64;
        let off = self.write_pos % self.capacity;
        let room = self.capacity - off;
        let skip = if room < need { room } else { 0 };
        if self.write_pos + skip + need - self.reclaim_pos > self.capacity {
            return false;
        }
        if skip > 0 {
            if room >= 4 {
                let at = HEADER + off as usize;
                self.map[at..at + 4].copy_from_slice(&WRAP.to_le_bytes());
            }
            self.write_pos += skip;
        }
        let pos = self.write_pos;
        let at = HEADER + (pos % self.capacity) as usize;
        let len = self.scratch.len();
        self.map[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
        self.map[at + 4..at + 4 + len].copy_from_slice(&self.scratch);
        if self
            .checkpoints
            .back()
            .is_none_or(|&(p, _)| pos - p >= CHECKPOINT_EVERY.min(self.capacity / 16))
        {
            self.checkpoints.push_back((pos, frame.server_seqno()));
        }
        self.write_pos = pos + need;
        self.set_word(16, self.write_pos);
        self.set_word(40, frame.server_seqno());
        true
    }

    /// Frees the space of records with seqno `<= sealed` (they are in the journal), up to
    /// the newest checkpoint at or below `sealed` (the records from there on stay: a few
    /// already sealed ones are recovered again after a crash and skipped by seqno).
    pub fn reclaim(&mut self, sealed: u64) {
        while self.checkpoints.get(1).is_some_and(|&(_, s)| s <= sealed) {
            self.checkpoints.pop_front();
        }
        if let Some(&(pos, seqno)) = self.checkpoints.front() {
            if seqno <= sealed && pos > self.reclaim_pos {
                self.reclaim_pos = pos;
                self.set_word(24, pos);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outbound::{MetaFrame, MetaKind};
    use std::sync::Arc;

    fn meta(seqno: u64, len: usize) -> Outbound {
        Outbound::Meta(Arc::new(MetaFrame {
            server_seqno: seqno,
            kind: MetaKind::Tps,
            stage: None,
            frame: vec![b'x'; len].into(),
            old: None,
        }))
    }

    fn seqnos(tail: &WalTail) -> Vec<u64> {
        tail.records
            .iter()
            .map(|r| record::scan(r).unwrap()[0].0)
            .collect()
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("ringgate-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn unsealed_records_survive_a_reopen_across_the_wrap_and_reclaimed_ones_do_not() {
        let path = temp("wrap");
        let (mut wal, tail) = Wal::open(&path, 1000, 7).unwrap();
        assert!(tail.records.is_empty());
        // Each record is 4 + 16 + 100 bytes: 8 fit in 1000.
        for s in 1..=8 {
            assert!(wal.append(&meta(s, 100)), "record {s}");
        }
        assert!(!wal.append(&meta(9, 100)), "the log is full");
        // Sealed through 8: the space before record 8 (the newest checkpoint <= 8) is freed.
        wal.reclaim(8);
        for s in 9..=12 {
            assert!(wal.append(&meta(s, 100)), "record {s} after the wrap");
        }
        drop(wal);
        let (_wal, tail) = Wal::open(&path, 1000, 8).unwrap();
        assert_eq!((tail.epoch, tail.last_seqno), (7, 12));
        // Record 8 stays (its checkpoint is the reclaim point); the caller skips it by seqno.
        assert_eq!(seqnos(&tail), vec![8, 9, 10, 11, 12]);
        // A reopen starts a new log: nothing to recover the next time.
        drop(_wal);
        let (_wal, tail) = Wal::open(&path, 1000, 8).unwrap();
        assert_eq!((tail.epoch, tail.records.len()), (8, 0));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_garbage_header_or_length_recovers_nothing_and_never_panics() {
        let path = temp("garbage");
        let (mut wal, _) = Wal::open(&path, 4096, 1).unwrap();
        for s in 1..=5 {
            wal.append(&meta(s, 50));
        }
        // Corrupt the second record's length.
        let second = HEADER + 4 + 16 + 50;
        wal.map[second..second + 4].copy_from_slice(&5000u32.to_le_bytes());
        drop(wal);
        let (wal, tail) = Wal::open(&path, 4096, 2).unwrap();
        assert_eq!(seqnos(&tail), vec![1], "stops at the bad length");
        drop(wal);
        std::fs::write(&path, vec![0xa5u8; HEADER + 4096]).unwrap();
        let (_wal, tail) = Wal::open(&path, 4096, 3).unwrap();
        assert!(tail.records.is_empty());
        let _ = std::fs::remove_file(&path);
    }
}
