//! `ringgate inspect`: what is in a ring file or snapshot, for operators and bug reports.
//!
//! Runs on the CLI's thread, once, read-only. Input: a ring path (live file or `.zst`
//! snapshot). Output, to any `Write`: the header (magic, content type, schema hash, sizes,
//! `last_seqno`, payload window), then, with `events`, every event as one JSON line (exactly
//! the bytes clients receive), then the counts per event type, decode failures by kind, gaps,
//! expired and malformed events. Lines that are not events start with `#`, so
//! `grep -v '^#'` yields clean JSON lines.
//!
//! What is read: a snapshot from seqno 1; a live ring from the oldest event still in the
//! descriptor array up to the `last_seqno` seen at start (a writer that keeps writing does not
//! keep `inspect` running). Never writes to the ring; a ring that does not attach returns the
//! typed [`AttachError`] (the CLI exits non-zero).

use std::io::{self, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::ingest::event::decode::DecodeFailures;
use crate::ingest::event::encoder::Encoder;
use crate::ingest::ring::layout::{CONTENT_TYPE_EXEC, EXEC_SCHEMA_HASH, MAGIC};
use crate::ingest::ring::{AttachError, ReadOutcome, Ring, RingHeader, RingReader, StartAt};
use crate::model::kind::{EventType, EVENT_TYPE_COUNT};
use crate::wire::json::to_hex;

/// Gap ranges kept in the summary (all are counted).
pub const MAX_LISTED_GAPS: usize = 32;

/// What to print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InspectOptions {
    /// Print every event as one JSON line.
    pub events: bool,
}

/// What `inspect` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectSummary {
    pub header: RingHeader,
    /// Seqnos read (`first..=last`); empty when the ring holds no event.
    pub first_seqno: u64,
    pub last_seqno: u64,
    /// Events read and decoded.
    pub events: u64,
    /// Events per type code (decoded or not), indexed by code.
    pub counts: [u64; EVENT_TYPE_COUNT],
    /// Events with a code outside the schema.
    pub unknown_type_events: u64,
    pub failures: DecodeFailures,
    /// Missing seqno ranges, the first [`MAX_LISTED_GAPS`].
    pub gaps: Vec<Range<u64>>,
    /// Seqnos missing across all gaps.
    pub missing_events: u64,
    pub expired: u64,
    pub malformed: u64,
}

impl InspectSummary {
    /// Events of one type.
    pub fn count(&self, t: EventType) -> u64 {
        self.counts[t.code() as usize]
    }
}

/// Why `inspect` failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The ring could not be attached (missing, not a ring, wrong schema, truncated…).
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// Writing the report failed.
    #[error("cannot write the inspect report: {0}")]
    Output(#[from] io::Error),
}

/// Inspects the ring at `path`: the header, per-event notes (gaps, expired payloads, decode
/// failures) and the summary go to `report`; with `opts.events`, every event's JSON object
/// goes to `events`, one per line and nothing else, so `events` is pure JSON Lines
/// (`ringgate inspect --events RING | jq` works: the binary sends the report to stderr then).
pub fn run(
    path: &Path,
    opts: InspectOptions,
    report: &mut dyn Write,
    events: &mut dyn Write,
) -> Result<InspectSummary, InspectError> {
    let out = report;
    let ring = Arc::new(Ring::open(path)?);
    let header = ring.header();
    print_header(out, path, &ring, &header)?;
    let head = header.last_seqno;
    let capacity = header.sizes.descriptor_capacity;
    let oldest = if ring.is_snapshot() {
        1
    } else {
        head.saturating_sub(capacity).saturating_add(1).max(1)
    };
    let mut reader = RingReader::new(Arc::clone(&ring), StartAt::Seqno(oldest));
    let mut enc = Encoder::default();
    let mut s = InspectSummary {
        header,
        first_seqno: 0,
        last_seqno: 0,
        events: 0,
        counts: [0; EVENT_TYPE_COUNT],
        unknown_type_events: 0,
        failures: DecodeFailures::default(),
        gaps: Vec::new(),
        missing_events: 0,
        expired: 0,
        malformed: 0,
    };
    while reader.next_seqno() <= head {
        let seqno = match reader.try_next() {
            ReadOutcome::NotReady => break,
            ReadOutcome::Gap { missing } => {
                s.missing_events += missing.end - missing.start;
                if s.gaps.len() < MAX_LISTED_GAPS {
                    s.gaps.push(missing.clone());
                }
                if opts.events {
                    writeln!(out, "# gap: seqnos {}..{} lost", missing.start, missing.end)?;
                }
                continue;
            }
            ReadOutcome::Expired { descriptor } => {
                s.expired += 1;
                if opts.events {
                    writeln!(out, "# seqno {}: payload expired", descriptor.seqno)?;
                }
                descriptor.seqno
            }
            ReadOutcome::Malformed { descriptor, reason } => {
                s.malformed += 1;
                if opts.events {
                    writeln!(out, "# seqno {}: malformed {reason:?}", descriptor.seqno)?;
                }
                descriptor.seqno
            }
            ReadOutcome::Ready(ev) => {
                let d = ev.descriptor;
                s.events += 1;
                match s.counts.get_mut(usize::from(d.event_type)) {
                    Some(c) => *c += 1,
                    None => s.unknown_type_events += 1,
                }
                match enc.encode(&d, ev.payload) {
                    Ok(e) if opts.events => {
                        events.write_all(&e.json)?;
                        events.write_all(b"\n")?;
                    }
                    Ok(_) => {}
                    Err(err) if opts.events => writeln!(out, "# seqno {}: {err}", d.seqno)?,
                    Err(_) => {}
                }
                d.seqno
            }
        };
        if s.first_seqno == 0 {
            s.first_seqno = seqno;
        }
        s.last_seqno = seqno;
    }
    s.failures = *enc.failures();
    print_summary(out, &s)?;
    Ok(s)
}

fn print_header(out: &mut dyn Write, path: &Path, ring: &Ring, h: &RingHeader) -> io::Result<()> {
    let kind = if ring.is_snapshot() {
        "snapshot (zstd)"
    } else {
        "live ring file"
    };
    writeln!(out, "# ring          {} ({kind})", path.display())?;
    writeln!(out, "# magic         {}", String::from_utf8_lossy(&MAGIC))?;
    let ct = if h.content_type == CONTENT_TYPE_EXEC {
        "exec"
    } else {
        "other"
    };
    writeln!(out, "# content_type  {} ({ct})", h.content_type)?;
    let matches = if h.schema_hash == EXEC_SCHEMA_HASH {
        "matches this build"
    } else {
        "MISMATCH"
    };
    writeln!(
        out,
        "# schema_hash   {} ({matches})",
        to_hex(&h.schema_hash)
    )?;
    let z = h.sizes;
    writeln!(
        out,
        "# sizes         {} descriptors ({} MiB), payload buffer {} MiB, context {} B",
        z.descriptor_capacity,
        (z.descriptor_capacity * 64) >> 20,
        z.payload_buf_size >> 20,
        z.context_area_size
    )?;
    writeln!(out, "# last_seqno    {}", h.last_seqno)?;
    writeln!(
        out,
        "# window        buffer_window_start {}, next_payload_byte {} ({} MiB live)",
        h.buffer_window_start,
        h.next_payload_byte,
        h.next_payload_byte.saturating_sub(h.buffer_window_start) >> 20
    )
}

fn print_summary(out: &mut dyn Write, s: &InspectSummary) -> io::Result<()> {
    if s.first_seqno == 0 {
        writeln!(out, "# read          no events")?;
    } else {
        writeln!(
            out,
            "# read          seqnos {}..={}: {} events",
            s.first_seqno, s.last_seqno, s.events
        )?;
    }
    writeln!(out, "# counts")?;
    for t in EventType::ALL {
        let n = s.count(t);
        if n > 0 {
            writeln!(out, "#   {:<28}{n}", t.spec_name())?;
        }
    }
    if s.unknown_type_events > 0 {
        writeln!(
            out,
            "#   {:<28}{}",
            "(unknown type code)", s.unknown_type_events
        )?;
    }
    if s.failures.total() == 0 {
        writeln!(out, "# decode failures: none")?;
    } else {
        writeln!(out, "# decode failures: {}", s.failures.total())?;
        for (kind, n) in s.failures.iter().filter(|(_, n)| *n > 0) {
            writeln!(out, "#   {:<28}{n}", kind.name())?;
        }
    }
    if s.missing_events == 0 {
        writeln!(out, "# gaps: none")?;
    } else {
        writeln!(out, "# gaps: {} events lost", s.missing_events)?;
        for g in &s.gaps {
            writeln!(out, "#   seqnos {}..{}", g.start, g.end)?;
        }
    }
    writeln!(out, "# expired {}, malformed {}", s.expired, s.malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::ring::layout::RingSizes;
    use crate::ingest::ring::{scratch_dir, RingWriter};
    use crate::tools::pacer::Pacer;
    use crate::tools::synth::drive;
    use crate::tools::synth::{Generator, SynthOptions};
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_live_synthetic_ring_is_summarised_and_printed_as_json_lines() {
        let path = scratch_dir().join(format!("ringgate-inspect-{}", std::process::id()));
        let sizes = RingSizes {
            descriptor_capacity: 1 << 16,
            payload_buf_size: 1 << 27,
            context_area_size: 0,
        };
        let mut w = RingWriter::create(&path, sizes).unwrap();
        let opts = SynthOptions {
            txns_per_block: 4,
            ..SynthOptions::default()
        };
        let mut g = Generator::new(opts);
        drive::run(
            &mut w,
            &mut g,
            &mut Pacer::new(None),
            &AtomicBool::new(false),
            Some(700),
        );
        let (mut report, mut events) = (Vec::new(), Vec::new());
        let s = run(
            &path,
            InspectOptions { events: true },
            &mut report,
            &mut events,
        )
        .unwrap();
        assert_eq!((s.first_seqno, s.last_seqno, s.events), (1, 700, 700));
        assert_eq!(s.counts.iter().sum::<u64>(), 700);
        assert!(s.count(EventType::BlockStart) > 5);
        assert_eq!(s.failures.total(), 0);
        assert!(s.gaps.is_empty());
        // The events stream is pure JSON Lines: every line is an event object.
        let events = String::from_utf8(events).unwrap();
        assert_eq!(events.lines().count(), 700);
        for line in events.lines() {
            let v = sonic_rs::from_str::<sonic_rs::Value>(line).unwrap();
            assert!(
                sonic_rs::JsonValueTrait::get(&v, "event_name").is_some(),
                "{line}"
            );
        }
        let text = String::from_utf8(report).unwrap();
        assert!(text.lines().all(|l| l.starts_with('#')), "{text}");
        assert!(text.contains("# schema_hash   0x8933f907"));
        assert!(text.contains("matches this build"));
        assert!(text.contains("# decode failures: none"));
    }

    #[test]
    fn a_file_that_is_not_a_ring_is_a_typed_attach_error() {
        let path = std::env::temp_dir().join(format!("ringgate-not-a-ring-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let err = run(
            &path,
            InspectOptions::default(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, InspectError::Attach(_)), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = run(
            &path,
            InspectOptions::default(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, InspectError::Attach(_)), "{err}");
    }
}
