//! The wire JSON of one event: the envelope object
//! `{"event_name":…,"block_number":…,"block_id":…,"txn_idx":…,"txn_hash":…,"commit_stage":…,
//! "payload":{"type":…,…},"seqno":…,"timestamp_ns":…}`, written by hand into a reused buffer.
//!
//! Runs on the tailer core, once per event (docs/invariants.md#fast-1). No serde here: fields
//! are appended in a fixed order with a hex lookup table. Names keep every field the existing
//! gateway sends (docs/old-gateway.md) and add the ones it drops; the full
//! schema is docs/events.md. Optional envelope fields are omitted, never `null`.
//!
//! Encoding: u64/u32/i64 as JSON numbers, u256 as minimal `0x` hex (`"0x0"`), bytes, hashes and
//! addresses as lowercase `0x` hex. All strings are hex or fixed ASCII names: nothing needs
//! escaping.

use std::ops::Range;

use crate::ingest::event::flow::EventContext;
use crate::ingest::event::payload::*;
use crate::ingest::ring::layout::Descriptor;
use crate::model::kind::EventType;
use crate::model::stage::CommitStage;
use crate::wire::json::{push_hex_quoted, push_i64, push_u128, push_u256_quoted, push_u64};

/// The stage an event is tagged with when first encoded: `Proposed` for block-scoped events,
/// the stage a consensus event announces (QC → Voted, FINALIZED → Finalized, VERIFIED →
/// Verified), `Rejected` for BLOCK_REJECT and block-scope EVM_ERROR; `None` outside any block.
pub fn initial_stage(event_type: EventType, ctx: &EventContext) -> Option<CommitStage> {
    match event_type {
        EventType::BlockQc => Some(CommitStage::Voted),
        EventType::BlockFinalized => Some(CommitStage::Finalized),
        EventType::BlockVerified => Some(CommitStage::Verified),
        EventType::BlockReject => Some(CommitStage::Rejected),
        EventType::EvmError if ctx.block_seqno != 0 && ctx.txn_idx.is_none() => {
            Some(CommitStage::Rejected)
        }
        _ if ctx.block_seqno != 0 => Some(CommitStage::Proposed),
        _ => None,
    }
}

/// `,"name":` as bytes.
macro_rules! k {
    ($n:literal) => {
        concat!(",\"", $n, "\":").as_bytes()
    };
}

/// Appender with one method per JSON value kind; keys carry their leading comma.
struct W<'a>(&'a mut Vec<u8>);

impl W<'_> {
    #[inline(always)]
    fn raw(&mut self, s: &[u8]) {
        self.0.extend_from_slice(s);
    }
    #[inline(always)]
    fn num(&mut self, key: &[u8], v: u64) {
        self.raw(key);
        push_u64(self.0, v);
    }
    #[inline(always)]
    fn int(&mut self, key: &[u8], v: i64) {
        self.raw(key);
        push_i64(self.0, v);
    }
    #[inline(always)]
    fn hex(&mut self, key: &[u8], b: &[u8]) {
        self.raw(key);
        push_hex_quoted(self.0, b);
    }
    #[inline(always)]
    fn u256(&mut self, key: &[u8], v: &U256) {
        self.raw(key);
        push_u256_quoted(self.0, &v.0);
    }
    #[inline(always)]
    fn bool(&mut self, key: &[u8], v: bool) {
        self.raw(key);
        self.raw(if v { b"true" } else { b"false" });
    }
    #[inline(always)]
    fn name(&mut self, key: &[u8], s: &str) {
        self.raw(key);
        self.0.push(b'"');
        self.raw(s.as_bytes());
        self.0.push(b'"');
    }
    #[inline(always)]
    fn txn_index(&mut self, ctx: &EventContext) {
        if let Some(i) = ctx.txn_idx {
            self.num(k!("txn_index"), u64::from(i));
        }
    }
    /// `txn_index` of the access events, `null` in a block's prologue or epilogue: the old
    /// gateway wrote it so (serde's `Option`), and its SDKs read the key.
    #[inline(always)]
    fn txn_index_or_null(&mut self, ctx: &EventContext) {
        match ctx.txn_idx {
            Some(i) => self.num(k!("txn_index"), u64::from(i)),
            None => {
                self.raw(k!("txn_index"));
                self.raw(b"null");
            }
        }
    }
    /// A JSON array of 32-byte hex strings.
    fn hex32_array(&mut self, key: &[u8], items: &[u8]) {
        self.raw(key);
        self.0.push(b'[');
        for (i, c) in items.chunks_exact(32).enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            push_hex_quoted(self.0, c);
        }
        self.0.push(b']');
    }
}

/// The hex of the last block id and transaction hash written into an envelope. Consecutive
/// events mostly name the same block (always) and transaction (often), so their 64 hex digits
/// are copied instead of recomputed.
#[derive(Debug, Default)]
pub struct HexMemo {
    block_id: Option<(Bytes32, [u8; 64])>,
    txn_hash: Option<(Bytes32, [u8; 64])>,
}

/// Hex digits of `v`, from `slot` when it holds the same value, else computed and kept there.
#[inline]
fn memo_hex<'m>(slot: &'m mut Option<(Bytes32, [u8; 64])>, v: &Bytes32) -> &'m [u8; 64] {
    if slot.as_ref().is_some_and(|(k, _)| k != v) {
        *slot = None;
    }
    &slot
        .get_or_insert_with(|| {
            let mut hex = [0u8; 64];
            crate::wire::json::hex_digits_into(&mut hex, v);
            (*v, hex)
        })
        .1
}

/// Appends the envelope object of one event to `out` and returns the byte range of the
/// `commit_stage` value (without quotes), if the envelope has one.
pub fn write_event(
    out: &mut Vec<u8>,
    memo: &mut HexMemo,
    desc: &Descriptor,
    ctx: &EventContext,
    event: &ExecEvent<'_>,
    stage: Option<CommitStage>,
) -> Option<Range<u32>> {
    let ty = event.event_type();
    let mut w = W(out);
    w.raw(b"{\"event_name\":\"");
    w.raw(ty.name().as_bytes());
    w.0.push(b'"');
    if let Some(n) = ctx.block_number {
        w.num(k!("block_number"), n);
    }
    if let Some(id) = &ctx.block_id {
        w.raw(b",\"block_id\":\"0x");
        w.raw(memo_hex(&mut memo.block_id, id));
        w.0.push(b'"');
    }
    if let Some(i) = ctx.txn_idx {
        w.num(k!("txn_idx"), u64::from(i));
    }
    if let Some(h) = &ctx.txn_hash {
        w.raw(b",\"txn_hash\":\"0x");
        w.raw(memo_hex(&mut memo.txn_hash, h));
        w.0.push(b'"');
    }
    let span = stage.map(|s| {
        w.raw(b",\"commit_stage\":\"");
        let start = w.0.len() as u32;
        w.raw(s.name().as_bytes());
        let end = w.0.len() as u32;
        w.0.push(b'"');
        start..end
    });
    w.raw(b",\"payload\":{\"type\":\"");
    w.raw(ty.name().as_bytes());
    w.0.push(b'"');
    payload(&mut w, ctx, event);
    w.0.push(b'}');
    w.num(k!("seqno"), desc.seqno);
    w.num(k!("timestamp_ns"), desc.record_epoch_nanos);
    w.0.push(b'}');
    span
}

fn payload(w: &mut W<'_>, ctx: &EventContext, event: &ExecEvent<'_>) {
    match event {
        ExecEvent::RecordError(e) => {
            w.num(k!("error_type"), u64::from(e.error_type));
            w.num(k!("dropped_event_type"), u64::from(e.dropped_event_type));
            w.num(
                k!("truncated_payload_size"),
                u64::from(e.truncated_payload_size),
            );
            w.num(k!("requested_payload_size"), e.requested_payload_size);
            if let Some(name) = record_error_name(e.error_type) {
                w.name(k!("error_name"), name);
            }
            if let Some(t) = EventType::from_code(e.dropped_event_type) {
                w.name(k!("dropped_event_name"), t.name());
            }
            w.hex(k!("truncated_payload"), e.truncated);
        }
        ExecEvent::BlockStart(b) => block_start(w, b),
        ExecEvent::BlockReject(code) => {
            w.num(k!("reason"), u64::from(*code));
            if let Some(name) = BLOCK_ERRORS.get(*code as usize) {
                w.name(k!("reason_name"), name);
            }
        }
        ExecEvent::BlockPerfEvmEnter
        | ExecEvent::BlockPerfEvmExit
        | ExecEvent::TxnHeaderEnd
        | ExecEvent::TxnPerfEvmEnter
        | ExecEvent::TxnPerfEvmExit
        | ExecEvent::TxnEnd => {}
        ExecEvent::BlockEnd(e) => {
            w.hex(k!("eth_block_hash"), &e.eth_block_hash);
            w.hex(k!("state_root"), &e.state_root);
            w.hex(k!("receipts_root"), &e.receipts_root);
            w.hex(k!("logs_bloom"), &e.logs_bloom);
            w.num(k!("gas_used"), e.gas_used);
        }
        ExecEvent::BlockQc(q) => {
            w.hex(k!("block_id"), &q.block_tag.id);
            w.num(k!("block_number"), q.block_tag.block_number);
            w.num(k!("round"), q.round);
            w.num(k!("epoch"), q.epoch);
        }
        ExecEvent::BlockFinalized(t) => {
            w.hex(k!("block_id"), &t.id);
            w.num(k!("block_number"), t.block_number);
        }
        ExecEvent::BlockVerified { block_number } => w.num(k!("block_number"), *block_number),
        ExecEvent::TxnHeaderStart(t) => txn_header_start(w, ctx, t),
        ExecEvent::TxnAccessListEntry(e) => {
            w.txn_index(ctx);
            w.hex(k!("address"), &e.address);
            w.hex(k!("storage_keys"), e.storage_keys);
            w.num(k!("index"), u64::from(e.index));
        }
        ExecEvent::TxnAuthListEntry(a) => {
            w.txn_index(ctx);
            w.hex(k!("address"), &a.address);
            w.num(k!("index"), u64::from(a.index));
            w.u256(k!("chain_id"), &a.chain_id);
            w.num(k!("nonce"), a.nonce);
            w.bool(k!("y_parity"), a.y_parity);
            w.u256(k!("r"), &a.r);
            w.u256(k!("s"), &a.s);
            w.hex(k!("authority"), &a.authority);
            w.bool(k!("is_valid_authority"), a.is_valid_authority);
        }
        ExecEvent::TxnReject(code) => {
            w.txn_index(ctx);
            w.num(k!("reason"), u64::from(*code));
            if let Some(name) = TXN_ERRORS.get(*code as usize) {
                w.name(k!("reason_name"), name);
            }
        }
        ExecEvent::TxnEvmOutput(o) => {
            w.txn_index(ctx);
            w.num(k!("log_count"), u64::from(o.log_count));
            w.bool(k!("status"), o.status);
            w.num(k!("gas_used"), o.gas_used);
            w.num(k!("call_frame_count"), u64::from(o.call_frame_count));
        }
        ExecEvent::TxnLog(g) => {
            w.txn_index(ctx);
            w.num(k!("log_index"), u64::from(g.index));
            w.hex(k!("address"), &g.address);
            w.hex(k!("topics"), g.topics);
            w.hex(k!("data"), g.data);
        }
        ExecEvent::TxnCallFrame(c) => {
            w.txn_index(ctx);
            w.num(k!("depth"), c.depth);
            w.hex(k!("caller"), &c.caller);
            w.hex(k!("call_target"), &c.call_target);
            w.u256(k!("value"), &c.value);
            w.hex(k!("input"), c.input);
            w.hex(k!("output"), c.output);
            w.num(k!("index"), u64::from(c.index));
            w.num(k!("opcode"), u64::from(c.opcode));
            w.name(k!("call_type"), call_type(c.opcode));
            w.num(k!("gas"), c.gas);
            w.num(k!("gas_used"), c.gas_used);
            w.int(k!("status"), i64::from(c.evmc_status));
        }
        ExecEvent::AccountAccessListHeader(h) => {
            w.txn_index_or_null(ctx);
            w.num(k!("entry_count"), u64::from(h.entry_count));
            w.num(k!("access_context"), u64::from(h.access_context));
        }
        ExecEvent::AccountAccess(a) => {
            w.txn_index_or_null(ctx);
            w.hex(k!("address"), &a.address);
            w.u256(k!("balance"), &a.prestate.balance);
            w.num(k!("nonce"), a.prestate.nonce);
            w.hex(k!("code_hash"), &a.prestate.code_hash);
            w.num(k!("index"), u64::from(a.index));
            w.num(k!("access_context"), u64::from(a.access_context));
            w.bool(k!("is_balance_modified"), a.is_balance_modified);
            w.bool(k!("is_nonce_modified"), a.is_nonce_modified);
            w.u256(k!("modified_balance"), &a.modified_balance);
            w.num(k!("modified_nonce"), a.modified_nonce);
            w.num(k!("storage_key_count"), u64::from(a.storage_key_count));
            w.num(k!("transient_count"), u64::from(a.transient_count));
        }
        ExecEvent::StorageAccess(s) => {
            w.txn_index_or_null(ctx);
            w.num(k!("account_index"), ctx.account_index);
            w.hex(k!("key"), &s.key);
            w.hex(k!("value"), &s.start_value);
            w.hex(k!("address"), &s.address);
            w.num(k!("index"), u64::from(s.index));
            w.num(k!("access_context"), u64::from(s.access_context));
            w.bool(k!("modified"), s.modified);
            w.bool(k!("transient"), s.transient);
            w.hex(k!("start_value"), &s.start_value);
            w.hex(k!("end_value"), &s.end_value);
        }
        ExecEvent::EvmError(e) => {
            w.num(k!("domain_id"), e.domain_id);
            w.int(k!("status_code"), e.status_code);
        }
    }
}

fn block_start(w: &mut W<'_>, b: &BlockStart) {
    let e = &b.eth_block_input;
    w.num(k!("block_number"), b.block_tag.block_number);
    w.hex(k!("block_id"), &b.block_tag.id);
    w.num(k!("round"), b.round);
    w.num(k!("epoch"), b.epoch);
    w.hex(k!("parent_eth_hash"), &b.parent_eth_hash);
    w.num(k!("timestamp"), e.timestamp);
    w.hex(k!("beneficiary"), &e.beneficiary);
    w.num(k!("gas_limit"), e.gas_limit);
    w.u256(k!("base_fee_per_gas"), &e.base_fee_per_gas);
    w.raw(k!("proposal_epoch_nanos"));
    push_u128(w.0, b.proposal_epoch_nanos);
    w.u256(k!("chain_id"), &b.chain_id);
    w.hex(k!("author"), &b.author);
    w.hex(k!("ommers_hash"), &e.ommers_hash);
    w.hex(k!("transactions_root"), &e.transactions_root);
    w.num(k!("difficulty"), e.difficulty);
    w.num(k!("number"), e.number);
    w.hex(k!("extra_data"), e.extra_data());
    w.hex(k!("prev_randao"), &e.prev_randao);
    w.hex(k!("nonce"), &e.nonce);
    w.hex(k!("withdrawals_root"), &e.withdrawals_root);
    w.num(k!("txn_count"), e.txn_count);
    w.u256(k!("base_fee_trend"), &b.monad_block_input.base_fee_trend);
    w.u256(k!("base_fee_moment"), &b.monad_block_input.base_fee_moment);
}

fn txn_header_start(w: &mut W<'_>, ctx: &EventContext, t: &TxnHeaderStart<'_>) {
    let h = &t.txn_header;
    w.txn_index(ctx);
    w.hex(k!("txn_hash"), &t.txn_hash);
    w.hex(k!("sender"), &t.sender);
    w.num(k!("txn_type"), u64::from(h.txn_type));
    w.u256(k!("chain_id"), &h.chain_id);
    w.num(k!("nonce"), h.nonce);
    w.num(k!("gas_limit"), h.gas_limit);
    w.u256(k!("max_fee_per_gas"), &h.max_fee_per_gas);
    w.u256(k!("max_priority_fee_per_gas"), &h.max_priority_fee_per_gas);
    w.u256(k!("value"), &h.value);
    w.hex(k!("data"), t.data);
    w.hex(k!("to"), &h.to);
    w.bool(k!("is_contract_creation"), h.is_contract_creation);
    w.u256(k!("r"), &h.r);
    w.u256(k!("s"), &h.s);
    w.bool(k!("y_parity"), h.y_parity);
    w.num(k!("access_list_count"), u64::from(h.access_list_count));
    w.num(k!("auth_list_count"), u64::from(h.auth_list_count));
    w.u256(k!("max_fee_per_blob_gas"), &h.max_fee_per_blob_gas);
    w.hex32_array(k!("blob_versioned_hashes"), t.blob_versioned_hashes);
}

/// Name of a call frame's opcode.
pub fn call_type(opcode: u8) -> &'static str {
    match opcode {
        0xf1 => "CALL",
        0xfa => "STATICCALL",
        0xf2 => "CALLCODE",
        0xf4 => "DELEGATECALL",
        0xf0 => "CREATE",
        0xf5 => "CREATE2",
        0xff => "SELFDESTRUCT",
        _ => "UNKNOWN",
    }
}

fn record_error_name(code: u16) -> Option<&'static str> {
    ["NONE", "OVERFLOW_4GB", "OVERFLOW_EXPIRE", "MISSING_EVENT"]
        .get(usize::from(code))
        .copied()
}

/// `BlockError` names (validate_block.hpp), by code.
const BLOCK_ERRORS: [&str; 21] = [
    "Success",
    "GasAboveLimit",
    "InvalidGasLimit",
    "ExtraDataTooLong",
    "WrongOmmersHash",
    "WrongParentHash",
    "FieldBeforeFork",
    "MissingField",
    "PowBlockAfterMerge",
    "InvalidNonce",
    "TooManyOmmers",
    "DuplicateOmmers",
    "InvalidOmmerHeader",
    "WrongLogsBloom",
    "InvalidGasUsed",
    "InvalidExcessBlobGas",
    "WrongMerkleRoot",
    "SystemCallMissingCode",
    "SystemCallFailed",
    "InvalidRequestsHash",
    "InvalidDepositLog",
];

/// `TransactionError` names (validate_transaction_error.hpp), by code.
const TXN_ERRORS: [&str; 17] = [
    "Success",
    "InsufficientBalance",
    "IntrinsicGasGreaterThanLimit",
    "BadNonce",
    "SenderNotEoa",
    "TypeNotSupported",
    "MaxFeeLessThanBase",
    "PriorityFeeGreaterThanMax",
    "NonceExceedsMax",
    "InitCodeLimitExceeded",
    "GasLimitReached",
    "WrongChainId",
    "MissingSender",
    "GasLimitOverflow",
    "InvalidSignature",
    "InvalidBlobHash",
    "EmptyAuthorizationList",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::build::tests::arbitrary;
    use crate::tools::synth::rng::Rng;
    use sonic_rs::{JsonValueTrait, Value};

    fn encode(
        ctx: &EventContext,
        ev: &ExecEvent<'_>,
        memo: &mut HexMemo,
    ) -> (String, Option<Range<u32>>) {
        let desc = Descriptor {
            seqno: 42,
            record_epoch_nanos: 1_756_499_174_388_871_879,
            ..Descriptor::default()
        };
        let mut out = Vec::new();
        let span = write_event(
            &mut out,
            memo,
            &desc,
            ctx,
            ev,
            initial_stage(ev.event_type(), ctx),
        );
        (String::from_utf8(out).unwrap(), span)
    }

    #[test]
    fn every_type_encodes_to_json_with_its_name_and_envelope() {
        let mut r = Rng::new(9);
        let mut arena = vec![0u8; 9000];
        r.fill(&mut arena);
        let mut memo = HexMemo::default();
        for ty in &EventType::ALL[1..] {
            for i in 0..50u32 {
                let ev = arbitrary(&mut r, *ty, &arena);
                let ctx = EventContext {
                    block_seqno: u64::from(i % 2),
                    block_number: (i % 3 == 0).then_some(7),
                    block_id: (i % 2 == 0).then_some([i as u8; 32]),
                    txn_idx: (i % 4 == 0).then_some(i),
                    txn_hash: (i % 5 == 0).then_some([0xab; 32]),
                    account_index: 3,
                };
                let (json, span) = encode(&ctx, &ev, &mut memo);
                let v: Value = sonic_rs::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
                assert_eq!(
                    v.get("event_name").and_then(|x| x.as_str()),
                    Some(ty.name())
                );
                let p = v.get("payload").unwrap();
                assert_eq!(p.get("type").and_then(|x| x.as_str()), Some(ty.name()));
                assert_eq!(v.get("seqno").and_then(|x| x.as_u64()), Some(42));
                assert_eq!(v.get("block_number").is_some(), ctx.block_number.is_some());
                assert_eq!(v.get("txn_idx").is_some(), ctx.txn_idx.is_some());
                // Optional fields are omitted, except the access events' `txn_index`, which
                // is `null` outside a transaction (the old gateway's shape).
                let access = matches!(
                    ty,
                    EventType::AccountAccessListHeader
                        | EventType::AccountAccess
                        | EventType::StorageAccess
                );
                let nulls = json.matches("null").count();
                let expected = usize::from(access && ctx.txn_idx.is_none());
                assert_eq!(nulls, expected, "nulls in {json}");
                if expected == 1 {
                    assert!(json.contains(r#""txn_index":null"#), "{json}");
                }
                if let Some(id) = ctx.block_id {
                    let want = crate::wire::json::to_hex(&id);
                    assert_eq!(
                        v.get("block_id").and_then(|x| x.as_str()),
                        Some(want.as_str())
                    );
                }
                match span {
                    Some(sp) => {
                        let stage = &json[sp.start as usize..sp.end as usize];
                        assert_eq!(v.get("commit_stage").and_then(|x| x.as_str()), Some(stage));
                    }
                    None => assert!(v.get("commit_stage").is_none()),
                }
            }
        }
    }

    #[test]
    fn consensus_events_carry_their_number_and_stage_with_its_span() {
        let tag = BlockTag {
            id: [1; 32],
            block_number: 99,
        };
        let ctx = EventContext {
            block_number: Some(99),
            block_id: Some([1; 32]),
            ..EventContext::default()
        };
        let mut memo = HexMemo::default();
        let (json, span) = encode(&ctx, &ExecEvent::BlockFinalized(tag), &mut memo);
        assert!(json.contains("\"block_number\":99"));
        let span = span.unwrap();
        assert_eq!(&json[span.start as usize..span.end as usize], "Finalized");
        let block = EventContext {
            block_seqno: 5,
            ..EventContext::default()
        };
        let evm_error = ExecEvent::EvmError(EvmError {
            domain_id: 1,
            status_code: -3,
        });
        assert_eq!(
            initial_stage(EventType::EvmError, &block),
            Some(CommitStage::Rejected)
        );
        let in_txn = EventContext {
            txn_idx: Some(0),
            ..block
        };
        assert_eq!(
            initial_stage(EventType::EvmError, &in_txn),
            Some(CommitStage::Proposed)
        );
        assert_eq!(
            initial_stage(EventType::TxnEnd, &EventContext::default()),
            None
        );
        let (json, _) = encode(&block, &evm_error, &mut memo);
        assert!(json.contains("\"status_code\":-3"));
    }
}
