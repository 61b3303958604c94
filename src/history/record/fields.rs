//! The field encodings records share: length-prefixed bytes, filter keys, a JSON-RPC block,
//! and the bounds-checked reader ([`Cursor`]) every decode goes through (a short or
//! inconsistent buffer is an `Err`, never a panic).

use super::RecordError;
use crate::model::kind::EventType;
use crate::model::outbound::{FilterKeys, MAX_EVENT_ADDRESSES, MAX_LOG_TOPICS};
use crate::model::rpc::{LiveBytes, RpcBlock, RpcLog, LOG_TAIL_LIVE};

pub(super) fn push_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A JSON-RPC block, whole (each of its commit-state frames carries it: a few per block).
pub(super) fn encode_block(b: &RpcBlock, out: &mut Vec<u8>) {
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

pub(super) fn decode_block(c: &mut Cursor<'_>) -> Result<RpcBlock, RecordError> {
    let number = c.u64()?;
    let hash = c.array()?;
    let id = c.array()?;
    let chain_id = c.u64()?;
    let header: Box<[u8]> = c.bytes()?.into();
    let block_tail: Box<[u8]> = c.bytes()?.into();
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
        live: LiveBytes::of(&header, &logs, &block_tail),
        number,
        hash,
        id,
        chain_id,
        header,
        logs,
        block_tail,
    })
}

pub(super) fn encode_keys(k: &FilterKeys, out: &mut Vec<u8>) {
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
pub(super) struct Cursor<'a> {
    pub(super) buf: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.at.checked_add(n).ok_or(RecordError::Truncated)?;
        let s = self.buf.get(self.at..end).ok_or(RecordError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    pub(super) fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
    pub(super) fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(super) fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(super) fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

pub(super) fn decode_keys(c: &mut Cursor<'_>) -> Result<FilterKeys, RecordError> {
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
