//! Frame records: the binary form of one [`Outbound`] in a history chunk, and back.
//!
//! A live event is stored whole (its JSON, filter keys and stage span); a `min_stage` copy is
//! stored as a reference to its original (`origin_seqno`) plus its stage, 18 bytes, and
//! rebuilt on read as the same shared bytes with its stage ([`EncodedEvent::restaged`]); a
//! meta frame and a JSON-RPC block frame (header and logs) are stored whole. An event's `json` is stored as held (the original's bytes;
//! the stage is spliced when written), with its `gate` and `stage_span`. So copies never multiply the
//! bytes kept (docs/history-format.md has the byte layout).
//!
//! Decoding never panics: a truncated or inconsistent record is an `Err` (the chunk it came
//! from is counted corrupt and its range announced as a Gap).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::model::kind::EventType;
use crate::model::outbound::{
    EncodedEvent, FilterKeys, MetaFrame, MetaKind, Outbound, MAX_EVENT_ADDRESSES, MAX_LOG_TOPICS,
};
use crate::model::rpc::{RpcBlock, RpcFrame, RpcLog, LOG_TAIL_LIVE};
use crate::model::seqno::PROVISIONAL_SEQNO_BASE;
use crate::model::stage::CommitStage;

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

fn push_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A JSON-RPC block, whole (each of its commit-state frames carries it: a few per block).
fn encode_block(b: &RpcBlock, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.number.to_le_bytes());
    out.extend_from_slice(&b.hash);
    out.extend_from_slice(&b.id);
    out.extend_from_slice(&b.chain_id.to_le_bytes());
    push_bytes(&b.header, out);
    push_bytes(&b.block_tail, out);
    out.extend_from_slice(&(b.logs.len() as u32).to_le_bytes());
    for log in &b.logs {
        out.extend_from_slice(&log.address);
        out.push(log.topic_count);
        for t in log.topics() {
            out.extend_from_slice(t);
        }
        push_bytes(&log.json, out);
    }
}

fn decode_block(c: &mut Cursor<'_>) -> Result<RpcBlock, RecordError> {
    let number = c.u64()?;
    let hash = c.array()?;
    let id = c.array()?;
    let chain_id = c.u64()?;
    let header = c.bytes()?.into();
    let block_tail = c.bytes()?.into();
    let n = c.u32()? as usize;
    // Each log takes at least 25 bytes: a count beyond what is left is corrupt.
    if n > c.buf.len().saturating_sub(c.at) / 25 {
        return Err(RecordError::Field("log count"));
    }
    let mut logs = Vec::with_capacity(n);
    for _ in 0..n {
        let address = c.array()?;
        let topic_count = c.u8()?;
        if usize::from(topic_count) > MAX_LOG_TOPICS {
            return Err(RecordError::Field("topic_count"));
        }
        let mut topics = [[0u8; 32]; MAX_LOG_TOPICS];
        for t in topics.iter_mut().take(usize::from(topic_count)) {
            *t = c.array()?;
        }
        let json: Box<[u8]> = c.bytes()?.into();
        if !json.ends_with(LOG_TAIL_LIVE) {
            return Err(RecordError::Field("log json"));
        }
        logs.push(RpcLog {
            address,
            topics,
            topic_count,
            json,
        });
    }
    Ok(RpcBlock {
        number,
        hash,
        id,
        chain_id,
        header,
        logs,
        block_tail,
    })
}

fn encode_keys(k: &FilterKeys, out: &mut Vec<u8>) {
    out.extend_from_slice(&k.event_type.code().to_le_bytes());
    out.extend_from_slice(&k.block_seqno.to_le_bytes());
    let mut flags = 0u8;
    for (bit, set) in [
        k.block_id.is_some(),
        k.block_number.is_some(),
        k.txn_idx.is_some(),
        k.log_index.is_some(),
        k.selector.is_some(),
        k.has_value,
    ]
    .into_iter()
    .enumerate()
    {
        flags |= u8::from(set) << bit;
    }
    out.push(flags);
    if let Some(id) = &k.block_id {
        out.extend_from_slice(id);
    }
    if let Some(n) = k.block_number {
        out.extend_from_slice(&n.to_le_bytes());
    }
    if let Some(i) = k.txn_idx {
        out.extend_from_slice(&i.to_le_bytes());
    }
    if let Some(i) = k.log_index {
        out.extend_from_slice(&i.to_le_bytes());
    }
    if let Some(s) = &k.selector {
        out.extend_from_slice(s);
    }
    out.push(k.address_count);
    for a in k.addresses() {
        out.extend_from_slice(a);
    }
    out.push(k.topic_count);
    for t in k.topics() {
        out.extend_from_slice(t);
    }
}

/// A bounds-checked reader over a record buffer.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.at.checked_add(n).ok_or(RecordError::Truncated)?;
        let s = self.buf.get(self.at..end).ok_or(RecordError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

fn decode_keys(c: &mut Cursor<'_>) -> Result<FilterKeys, RecordError> {
    let event_type = EventType::from_code(c.u16()?).ok_or(RecordError::Field("event_type"))?;
    let mut k = FilterKeys::new(event_type);
    k.block_seqno = c.u64()?;
    let flags = c.u8()?;
    let has = |bit: u8| flags & (1 << bit) != 0;
    if has(0) {
        k.block_id = Some(c.array()?);
    }
    if has(1) {
        k.block_number = Some(c.u64()?);
    }
    if has(2) {
        k.txn_idx = Some(c.u32()?);
    }
    if has(3) {
        k.log_index = Some(c.u32()?);
    }
    if has(4) {
        k.selector = Some(c.array()?);
    }
    k.has_value = has(5);
    let addresses = c.u8()?;
    if usize::from(addresses) > MAX_EVENT_ADDRESSES {
        return Err(RecordError::Field("address_count"));
    }
    for _ in 0..addresses {
        k.push_address(c.array()?);
    }
    let topics = c.u8()?;
    if usize::from(topics) > MAX_LOG_TOPICS {
        return Err(RecordError::Field("topic_count"));
    }
    for i in 0..usize::from(topics) {
        k.topics[i] = c.array()?;
    }
    k.topic_count = topics;
    Ok(k)
}

/// Originals by `server_seqno`, for rebuilding copies; filled by [`decode_all`] as it goes
/// and by the caller with originals from earlier chunks.
pub type Originals = HashMap<u64, Arc<EncodedEvent>>;

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

/// Decodes every record of `raw` in order. A copy whose original is neither earlier in `raw`
/// nor in `originals` is an error; every original decoded is added to `originals`.
pub fn decode_all(raw: &[u8], originals: &mut Originals) -> Result<Vec<Outbound>, RecordError> {
    let mut c = Cursor { buf: raw, at: 0 };
    let mut out = Vec::new();
    while c.at < raw.len() {
        out.push(decode_one(&mut c, originals)?);
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
            Ok(Outbound::Event(Arc::new(
                original.restaged(stage, server_seqno),
            )))
        }
        TAG_EVENT => {
            let ring_seqno = c.u64()?;
            let timestamp_ns = c.u64()?;
            let gate = stage_of(c.u8()?)?;
            let keys = decode_keys(c)?;
            let (s, t) = (c.u32()?, c.u32()?);
            let stage_span: Option<Range<u32>> = (s != NONE_U32).then_some(s..t);
            let len = c.u32()? as usize;
            let json: Arc<[u8]> = c.take(len)?.into();
            // A copy stored whole (its original was provisional) reads back as an original
            // of its stage: nothing downstream distinguishes them.
            let e = Arc::new(EncodedEvent {
                server_seqno,
                origin_seqno: server_seqno,
                ring_seqno,
                timestamp_ns,
                gate,
                keys,
                json,
                stage_span,
            });
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
mod tests {
    use super::*;

    fn original(seqno: u64) -> Arc<EncodedEvent> {
        let mut keys = FilterKeys::new(EventType::TxnLog);
        keys.block_seqno = 7;
        keys.block_number = Some(15_000_001);
        keys.txn_idx = Some(3);
        keys.log_index = Some(1);
        keys.push_address([0xaa; 20]);
        keys.topics[0] = [0x11; 32];
        keys.topics[1] = [0x22; 32];
        keys.topic_count = 2;
        keys.selector = Some([1, 2, 3, 4]);
        let json = br#"{"event_name":"TxnLog","commit_stage":"Proposed","payload":{}}"#;
        Arc::new(EncodedEvent {
            server_seqno: seqno,
            origin_seqno: seqno,
            ring_seqno: 99,
            timestamp_ns: 1_700_000_000_000_000_000,
            gate: CommitStage::Proposed,
            keys,
            json: json.as_slice().into(),
            stage_span: Some(39..47),
        })
    }

    #[test]
    fn events_copies_and_meta_frames_round_trip_and_copies_cost_18_bytes() {
        let o = original(10);
        let copy = Arc::new(o.restaged(CommitStage::Finalized, 12));
        let meta = Arc::new(MetaFrame {
            server_seqno: 11,
            kind: MetaKind::Lifecycle,
            stage: Some(CommitStage::Voted),
            frame: br#"{"server_seqno":11,"Lifecycle":{}}"#.as_slice().into(),
            old: Some(br#"{"server_seqno":11,"Lifecycle":{"old":1}}"#.as_slice().into()),
        });
        let frames = [
            Outbound::Event(o.clone()),
            Outbound::Meta(meta),
            Outbound::Event(copy.clone()),
        ];
        let mut raw = Vec::new();
        for f in &frames[..2] {
            encode(f, &mut raw);
        }
        let before = raw.len();
        encode(&frames[2], &mut raw);
        assert_eq!(raw.len() - before, 18);

        let back = decode_all(&raw, &mut Originals::new()).unwrap();
        assert_eq!(back.len(), 3);
        let (Outbound::Event(e), Outbound::Meta(m), Outbound::Event(c)) =
            (&back[0], &back[1], &back[2])
        else {
            panic!("kinds changed: {back:?}");
        };
        assert_eq!(**e, *o);
        assert_eq!(
            (m.server_seqno, m.kind, m.stage),
            (11, MetaKind::Lifecycle, Some(CommitStage::Voted))
        );
        assert!(m
            .old
            .as_deref()
            .is_some_and(|o| o.ends_with(b"{\"old\":1}}")));
        assert_eq!(**c, *copy);
        let mut sent = Vec::new();
        c.write_json(&mut sent);
        assert!(std::str::from_utf8(&sent)
            .unwrap()
            .contains(r#""commit_stage":"Finalized""#));
        assert_eq!(
            scan(&raw).unwrap(),
            vec![(10, None), (11, None), (12, Some(10))]
        );
    }

    #[test]
    fn json_rpc_block_frames_round_trip() {
        let mut topics = [[0u8; 32]; MAX_LOG_TOPICS];
        topics[0] = [7; 32];
        let block = Arc::new(RpcBlock {
            number: 15_000_001,
            hash: [1; 32],
            id: [2; 32],
            chain_id: 143,
            header: br#"{"number":"0xe4e1c1"}"#.as_slice().into(),
            logs: vec![RpcLog {
                address: [9; 20],
                topics,
                topic_count: 1,
                json: br#"{"logIndex":"0x0","removed":false}"#.as_slice().into(),
            }],
            block_tail: br#","transactions":[]}"#.as_slice().into(),
        });
        let frame = Outbound::Rpc(Arc::new(RpcFrame {
            server_seqno: 33,
            stage: CommitStage::Abandoned,
            reached: CommitStage::Voted,
            timestamp_ns: 5,
            block: block.clone(),
        }));
        let mut raw = Vec::new();
        encode(&frame, &mut raw);
        let back = decode_all(&raw, &mut Originals::new()).unwrap();
        let Outbound::Rpc(r) = &back[0] else {
            panic!("{back:?}");
        };
        assert_eq!(
            (r.server_seqno, r.stage, r.reached, r.timestamp_ns),
            (33, CommitStage::Abandoned, CommitStage::Voted, 5)
        );
        assert_eq!(*r.block, *block);
        assert_eq!(scan(&raw).unwrap(), vec![(33, None)]);
        for cut in 1..raw.len() {
            assert!(decode_all(&raw[..cut], &mut Originals::new()).is_err());
        }
    }

    #[test]
    fn a_copy_needs_its_original_and_garbage_is_an_error_never_a_panic() {
        let copy = Outbound::Event(Arc::new(original(10).restaged(CommitStage::Voted, 20)));
        let mut raw = Vec::new();
        encode(&copy, &mut raw);
        assert_eq!(
            decode_all(&raw, &mut Originals::new()).unwrap_err(),
            RecordError::MissingOrigin {
                copy: 20,
                origin: 10
            }
        );
        let mut originals = Originals::new();
        originals.insert(10, original(10));
        assert_eq!(decode_all(&raw, &mut originals).unwrap().len(), 1);

        let mut full = Vec::new();
        encode(&Outbound::Event(original(1)), &mut full);
        for cut in 0..full.len() {
            assert!(decode_all(&full[..cut], &mut Originals::new()).is_err() || cut == 0);
            let _ = scan(&full[..cut]);
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let mut bytes = full.clone();
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = (rng as usize) % bytes.len();
            bytes[i] ^= (rng >> 32) as u8 | 1;
            let _ = decode_all(&bytes, &mut Originals::new());
            let _ = scan(&bytes);
        }
    }
}
