//! Frame records: the binary form of one [`Outbound`] in a history chunk, and back.
//!
//! A live event is stored whole (its JSON, filter keys and stage span); a `min_stage` copy is
//! stored as a reference to its original (`origin_seqno`) plus its stage, 18 bytes, and
//! rebuilt on read as the same shared bytes with its stage ([`EncodedEvent::restaged`]); a
//! meta frame and a JSON-RPC block frame (header and logs) are stored whole. An event's `json` is stored as held (the original's bytes;
//! the stage is spliced when written), with its `gate` and `stage_span`. So copies never multiply the
//! bytes kept (docs/history-format.md §2.4 has the byte layout).
//!
//! Decoding never panics: a truncated or inconsistent record is an `Err` (the chunk it came
//! from is counted corrupt and its range announced as a Gap).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::model::outbound::{EncodedEvent, EventBody, MetaFrame, MetaKind, Outbound};
use crate::model::rpc::RpcFrame;
use crate::model::seqno::PROVISIONAL_SEQNO_BASE;
use crate::model::stage::CommitStage;

mod fields;
use fields::{decode_block, decode_keys, encode_block, encode_keys, push_bytes, Cursor};

const TAG_EVENT: u8 = 1;
const TAG_COPY: u8 = 2;
const TAG_META: u8 = 3;
const TAG_RPC: u8 = 4;
const NONE_U32: u32 = u32::MAX;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record truncated")]
    Truncated,
    #[error("unknown record tag {0}")]
    Tag(u8),
    #[error("invalid field {0}")]
    Field(&'static str),
    #[error("copy {copy} refers to original {origin}, which is not in the history")]
    MissingOrigin { copy: u64, origin: u64 },
}

/// On disk a stage is its index in [`CommitStage::ALL`] and a meta kind its index in
/// [`META_KINDS`]: both orders are part of the format (docs/history-format.md §2.4) and change
/// only with its version.
fn stage_code(s: CommitStage) -> u8 {
    CommitStage::ALL.iter().position(|x| *x == s).unwrap_or(0) as u8
}

fn stage_of(code: u8) -> Result<CommitStage, RecordError> {
    CommitStage::ALL
        .get(usize::from(code))
        .copied()
        .ok_or(RecordError::Field("stage"))
}

const META_KINDS: [MetaKind; 5] = [
    MetaKind::Tps,
    MetaKind::ContentionData,
    MetaKind::TopAccesses,
    MetaKind::Lifecycle,
    MetaKind::Gap,
];

/// Appends the record of `frame` to `out`.
pub fn encode(frame: &Outbound, out: &mut Vec<u8>) {
    match frame {
        Outbound::Event(e) if e.is_copy() && e.origin_seqno < PROVISIONAL_SEQNO_BASE => {
            out.push(TAG_COPY);
            out.extend_from_slice(&e.server_seqno.to_le_bytes());
            out.extend_from_slice(&e.origin_seqno.to_le_bytes());
            out.push(stage_code(e.gate));
        }
        Outbound::Event(e) => {
            out.push(TAG_EVENT);
            out.extend_from_slice(&e.server_seqno.to_le_bytes());
            out.extend_from_slice(&e.ring_seqno.to_le_bytes());
            out.extend_from_slice(&e.timestamp_ns.to_le_bytes());
            out.push(stage_code(e.gate));
            encode_keys(&e.keys, out);
            let (s, t) = e
                .stage_span
                .as_ref()
                .map_or((NONE_U32, NONE_U32), |r| (r.start, r.end));
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&(e.json.len() as u32).to_le_bytes());
            out.extend_from_slice(&e.json);
        }
        Outbound::Rpc(r) => {
            out.push(TAG_RPC);
            out.extend_from_slice(&r.server_seqno.to_le_bytes());
            out.push(stage_code(r.stage));
            out.push(stage_code(r.reached));
            out.extend_from_slice(&r.timestamp_ns.to_le_bytes());
            encode_block(&r.block, out);
        }
        Outbound::Meta(m) => {
            out.push(TAG_META);
            out.extend_from_slice(&m.server_seqno.to_le_bytes());
            out.push(META_KINDS.iter().position(|k| *k == m.kind).unwrap_or(0) as u8);
            out.push(m.stage.map_or(u8::MAX, stage_code));
            push_bytes(&m.frame, out);
            match &m.old {
                Some(old) => {
                    out.push(1);
                    push_bytes(old, out);
                }
                None => out.push(0),
            }
        }
    }
}

/// Originals by `server_seqno`, for rebuilding copies; filled by [`decode_lenient`] as it goes
/// and by the caller with originals from earlier chunks.
pub type Originals = HashMap<u64, EncodedEvent>;

/// Skips the body of a record whose tag and seqno were read; returns a copy's original.
fn skip_body(tag: u8, c: &mut Cursor<'_>) -> Result<Option<u64>, RecordError> {
    match tag {
        TAG_COPY => {
            let origin = c.u64()?;
            c.u8()?;
            Ok(Some(origin))
        }
        TAG_EVENT => {
            c.take(8 + 8 + 1)?;
            decode_keys(c)?;
            c.take(8)?;
            let len = c.u32()? as usize;
            c.take(len)?;
            Ok(None)
        }
        TAG_META => {
            c.take(2)?;
            c.bytes()?;
            if c.u8()? != 0 {
                c.bytes()?;
            }
            Ok(None)
        }
        TAG_RPC => {
            c.take(2 + 8)?;
            decode_block(c)?;
            Ok(None)
        }
        t => Err(RecordError::Tag(t)),
    }
}

/// The `server_seqno` of every record in `raw`, and for each copy the original it needs, in
/// order, without building frames (cheap: no JSON copied).
pub fn scan(raw: &[u8]) -> Result<Vec<(u64, Option<u64>)>, RecordError> {
    let mut c = Cursor { buf: raw, at: 0 };
    let mut out = Vec::new();
    while c.at < raw.len() {
        let tag = c.u8()?;
        let seqno = c.u64()?;
        out.push((seqno, skip_body(tag, &mut c)?));
    }
    Ok(out)
}

/// Decodes the records of `raw` in order, leaving out (and listing in `unresolved`) the
/// copies whose original is not available: their seqnos become a hole the replay announces.
/// Any other decoding error is an `Err`.
pub fn decode_lenient(
    raw: &[u8],
    originals: &mut Originals,
    unresolved: &mut Vec<u64>,
) -> Result<Vec<Outbound>, RecordError> {
    let mut c = Cursor { buf: raw, at: 0 };
    let mut out = Vec::new();
    while c.at < raw.len() {
        match decode_one(&mut c, originals) {
            Ok(f) => out.push(f),
            Err(RecordError::MissingOrigin { copy, .. }) => unresolved.push(copy),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Adds to `originals` the live events of `raw` whose seqno `wanted` accepts, skipping every
/// other record (copies are not resolved).
pub fn collect_originals(
    raw: &[u8],
    wanted: impl Fn(u64) -> bool,
    originals: &mut Originals,
) -> Result<(), RecordError> {
    let mut c = Cursor { buf: raw, at: 0 };
    while c.at < raw.len() {
        let start = c.at;
        let tag = c.u8()?;
        let seqno = c.u64()?;
        if tag == TAG_EVENT && wanted(seqno) {
            c.at = start;
            decode_one(&mut c, originals)?;
        } else {
            skip_body(tag, &mut c)?;
        }
    }
    Ok(())
}

fn decode_one(c: &mut Cursor<'_>, originals: &mut Originals) -> Result<Outbound, RecordError> {
    let tag = c.u8()?;
    let server_seqno = c.u64()?;
    match tag {
        TAG_COPY => {
            let origin = c.u64()?;
            let stage = stage_of(c.u8()?)?;
            let original = originals.get(&origin).ok_or(RecordError::MissingOrigin {
                copy: server_seqno,
                origin,
            })?;
            Ok(Outbound::Event(original.restaged(stage, server_seqno)))
        }
        TAG_EVENT => {
            let ring_seqno = c.u64()?;
            let timestamp_ns = c.u64()?;
            let gate = stage_of(c.u8()?)?;
            let keys = decode_keys(c)?;
            let (s, t) = (c.u32()?, c.u32()?);
            let stage_span: Option<Range<u32>> = (s != NONE_U32).then_some(s..t);
            let len = c.u32()? as usize;
            let json: Box<[u8]> = c.take(len)?.into();
            // A copy stored whole (its original was provisional) reads back as an original
            // of its stage: nothing downstream distinguishes them.
            let e = EncodedEvent {
                server_seqno,
                gate,
                body: Arc::new(EventBody {
                    origin_seqno: server_seqno,
                    ring_seqno,
                    timestamp_ns,
                    keys,
                    json,
                    stage_span,
                }),
            };
            originals.insert(server_seqno, e.clone());
            Ok(Outbound::Event(e))
        }
        TAG_META => {
            let kind = *META_KINDS
                .get(usize::from(c.u8()?))
                .ok_or(RecordError::Field("meta kind"))?;
            let stage = match c.u8()? {
                u8::MAX => None,
                code => Some(stage_of(code)?),
            };
            let frame: Box<[u8]> = c.bytes()?.into();
            let old = match c.u8()? {
                0 => None,
                _ => Some(c.bytes()?.into()),
            };
            Ok(Outbound::Meta(Arc::new(MetaFrame {
                server_seqno,
                kind,
                stage,
                frame,
                old,
            })))
        }
        TAG_RPC => {
            let stage = stage_of(c.u8()?)?;
            let reached = stage_of(c.u8()?)?;
            let timestamp_ns = c.u64()?;
            let block = Arc::new(decode_block(c)?);
            Ok(Outbound::Rpc(Arc::new(RpcFrame {
                server_seqno,
                stage,
                reached,
                timestamp_ns,
                block,
            })))
        }
        t => Err(RecordError::Tag(t)),
    }
}

#[cfg(test)]
mod tests;
