//! The JSON-RPC result objects of one block, in the exact shapes of Monad's RPC server:
//! the `newHeads` header (alloy's `rpc::Header` serialization) and the `logs` log objects.
//!
//! Runs on the tailer core, once per executed block at BLOCK_END. Runtime-free; appends to
//! a caller's buffer. Field sets, order and encodings follow the server's golden files for
//! mainnet block 15,000,001 (checked by `tests/rpc_golden.rs`): 32-byte values as `0x` + 64
//! lowercase hex digits, quantities as minimal hex (`0x0` for zero), `withdrawalsRoot`
//! omitted when zero, the constant post-merge fields, `totalDifficulty` `0x0`.
//!
//! `size` is what the server's alloy version reports, not an RLP size: alloy's in-memory
//! estimate `size_of::<Header>() + extraData.len()`, 768 + the extra data for the alloy
//! of current Monad nodes (docs/rpc.md).

use crate::ingest::event::payload::{BlockEnd, BlockStart};
use crate::model::types::{Address, Bytes32};
use crate::wire::json::{push_hex_quoted, push_u256_quoted};

/// `size_of::<alloy_consensus::Header>()` in the alloy the current Monad RPC server links
/// (the `size` of its golden header is this plus the extra data's length).
pub const ALLOY_HEADER_SIZE: u64 = 768;

const ZERO_HASH: Bytes32 = [0; 32];

/// Appends a quoted minimal-hex quantity.
pub fn push_quantity(out: &mut Vec<u8>, v: u64) {
    let mut le = [0u8; 32];
    le[..8].copy_from_slice(&v.to_le_bytes());
    push_u256_quoted(out, &le);
}

fn key(out: &mut Vec<u8>, first: bool, k: &str) {
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn hex(out: &mut Vec<u8>, k: &str, v: &[u8]) {
    key(out, false, k);
    push_hex_quoted(out, v);
}

fn qty(out: &mut Vec<u8>, k: &str, v: u64) {
    key(out, false, k);
    push_quantity(out, v);
}

/// Appends the `newHeads` result object of the block `start` opened and `end` closed.
pub fn write_header(out: &mut Vec<u8>, start: &BlockStart, end: &BlockEnd) {
    let input = &start.eth_block_input;
    out.push(b'{');
    key(out, true, "hash");
    push_hex_quoted(out, &end.eth_block_hash);
    hex(out, "parentHash", &start.parent_eth_hash);
    hex(out, "sha3Uncles", &input.ommers_hash);
    hex(out, "miner", &input.beneficiary);
    hex(out, "stateRoot", &end.state_root);
    hex(out, "transactionsRoot", &input.transactions_root);
    hex(out, "receiptsRoot", &end.receipts_root);
    hex(out, "logsBloom", &end.logs_bloom);
    qty(out, "difficulty", input.difficulty);
    qty(out, "number", input.number);
    qty(out, "gasLimit", input.gas_limit);
    qty(out, "gasUsed", end.gas_used);
    qty(out, "timestamp", input.timestamp);
    hex(out, "extraData", input.extra_data());
    hex(out, "mixHash", &input.prev_randao);
    hex(out, "nonce", &input.nonce);
    key(out, false, "baseFeePerGas");
    push_u256_quoted(out, &input.base_fee_per_gas.0);
    if input.withdrawals_root != ZERO_HASH {
        hex(out, "withdrawalsRoot", &input.withdrawals_root);
    }
    qty(out, "blobGasUsed", 0);
    qty(out, "excessBlobGas", 0);
    hex(out, "parentBeaconBlockRoot", &ZERO_HASH);
    hex(out, "requestsHash", &ZERO_HASH);
    qty(out, "totalDifficulty", 0);
    qty(
        out,
        "size",
        ALLOY_HEADER_SIZE + input.extra_data().len() as u64,
    );
    out.push(b'}');
}

/// Appends what follows the header's fields in an `eth_getBlockByNumber(n, false)` block:
/// `,"uncles":[],"transactions":["0x…",…]}` (alloy's `Block` field order).
pub fn write_block_tail<'a>(out: &mut Vec<u8>, txn_hashes: impl Iterator<Item = &'a Bytes32>) {
    out.extend_from_slice(b",\"uncles\":[],\"transactions\":[");
    for (i, h) in txn_hashes.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_hex_quoted(out, h);
    }
    out.extend_from_slice(b"]}");
}

/// One log and where it sits in its block.
#[derive(Debug, Clone, Copy)]
pub struct LogPlace<'a> {
    pub address: &'a Address,
    pub topics: &'a [Bytes32],
    pub data: &'a [u8],
    pub block_hash: &'a Bytes32,
    pub block_number: u64,
    /// Seconds (the header's `timestamp`).
    pub block_timestamp: u64,
    pub txn_hash: &'a Bytes32,
    pub txn_index: u64,
    /// Block-wide.
    pub log_index: u64,
}

/// Appends the `logs` result object of one log; it ends in
/// [`crate::model::rpc::LOG_TAIL_LIVE`].
pub fn write_log(out: &mut Vec<u8>, log: &LogPlace<'_>) {
    out.push(b'{');
    key(out, true, "address");
    push_hex_quoted(out, log.address);
    key(out, false, "topics");
    out.push(b'[');
    for (i, t) in log.topics.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_hex_quoted(out, t);
    }
    out.push(b']');
    hex(out, "data", log.data);
    hex(out, "blockHash", log.block_hash);
    qty(out, "blockNumber", log.block_number);
    qty(out, "blockTimestamp", log.block_timestamp);
    hex(out, "transactionHash", log.txn_hash);
    qty(out, "transactionIndex", log.txn_index);
    qty(out, "logIndex", log.log_index);
    out.extend_from_slice(b",\"removed\":false}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_minimal_hex() {
        let mut out = Vec::new();
        push_quantity(&mut out, 0);
        push_quantity(&mut out, 0x1c9c380);
        push_quantity(&mut out, u64::MAX);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "\"0x0\"\"0x1c9c380\"\"0xffffffffffffffff\""
        );
    }

    #[test]
    fn a_log_ends_in_the_live_tail_and_lists_its_topics_in_order() {
        let mut out = Vec::new();
        write_log(
            &mut out,
            &LogPlace {
                address: &[0x11; 20],
                topics: &[[1; 32], [2; 32]],
                data: &[],
                block_hash: &[3; 32],
                block_number: 10,
                block_timestamp: 0,
                txn_hash: &[4; 32],
                txn_index: 0,
                log_index: 7,
            },
        );
        assert!(out.ends_with(crate::model::rpc::LOG_TAIL_LIVE));
        let v: sonic_rs::Value = sonic_rs::from_slice(&out).unwrap();
        use sonic_rs::JsonValueTrait;
        assert_eq!(v["data"].as_str(), Some("0x"));
        assert_eq!(v["logIndex"].as_str(), Some("0x7"));
        assert_eq!(
            v["topics"][1].as_str(),
            Some(&*format!("0x{}", "02".repeat(32)))
        );
    }
}
