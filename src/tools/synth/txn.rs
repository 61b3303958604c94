//! One synthetic transaction: its content (kind, header, logs, call frames, state accesses)
//! and its events, split into the two phases the Monad writer records them in (docs/ring-format.md#s4-2):
//! phase A at execution start (PERF_ENTER, HEADER_START, access/auth list entries,
//! HEADER_END) and phase B at commit (EVM_OUTPUT, LOGs, CALL_FRAMEs, account and storage
//! accesses, TXN_END, PERF_EXIT).
//!
//! Runs on the synthetic writer's thread. Kinds: native transfers, ERC-20 transfers (real
//! `Transfer` topic0 `ddf252ad…`), router swaps (nested frames at depths 0–2, STATICCALL,
//! Transfer/Sync/Swap logs, pool storage shared by every swap on that pool, a transient
//! reentrancy lock), and EIP-7702 delegations (auth list entries). About one in ten token
//! transactions carries an access list; a few swaps revert.
//! Counts are exact: `log_count` / `call_frame_count` equal the events emitted, account
//! `storage_key_count` / `transient_count` equal the STORAGE_ACCESS events that follow.

use std::ops::Range;

use crate::ingest::event::payload::*;
use crate::tools::synth::batch::{PayloadArena, Pending};
use crate::tools::synth::plan::{amount, emit_commit, TxnScratch};
use crate::tools::synth::rng::Rng;
use crate::tools::synth::world::{
    mapping_key, plain_key, word_address, word_u128, World, EMPTY_CODE_HASH,
};

/// ERC-20 `Transfer(address,address,uint256)`.
pub const TRANSFER_TOPIC: Bytes32 = [
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
];
/// Uniswap V2 `Sync(uint112,uint112)`.
const SYNC_TOPIC: Bytes32 = [
    0x1c, 0x41, 0x1e, 0x9a, 0x96, 0xe0, 0x71, 0x24, 0x1c, 0x2f, 0x21, 0xf7, 0x72, 0x6b, 0x17, 0xae,
    0x89, 0xe3, 0xca, 0xb4, 0xc7, 0x8b, 0xe5, 0x0e, 0x06, 0x2b, 0x03, 0xa9, 0xff, 0xfb, 0xba, 0xd1,
];
/// Uniswap V2 `Swap(address,uint256,uint256,uint256,uint256,address)`.
const SWAP_TOPIC: Bytes32 = [
    0xd7, 0x8a, 0xd9, 0x5f, 0xa4, 0x6c, 0x99, 0x4b, 0x65, 0x51, 0xd0, 0xda, 0x85, 0xfc, 0x27, 0x5f,
    0xe6, 0x13, 0xce, 0x37, 0x65, 0x7f, 0xb8, 0xd5, 0xe3, 0xd1, 0x30, 0x84, 0x01, 0x59, 0xd8, 0x22,
];
const SEL_TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
const SEL_TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
const SEL_SWAP_EXACT: [u8; 4] = [0x38, 0xed, 0x17, 0x39];
const SEL_GET_RESERVES: [u8; 4] = [0x09, 0x02, 0xf1, 0xac];
const SEL_PAIR_SWAP: [u8; 4] = [0x02, 0x2c, 0x0d, 0x9f];
const SEL_EXECUTE: [u8; 4] = [0xe9, 0xae, 0x5c, 0x53];

/// `Error(string)`: the head of a revert reason.
const ERROR_SELECTOR: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];

/// Intrinsic gas of a transaction, spent before its outer call frame runs.
const INTRINSIC_GAS: u64 = 21_000;

const OP_CALL: u8 = 0xf1;
const OP_STATICCALL: u8 = 0xfa;

/// Block-level facts a transaction needs.
#[derive(Debug, Clone, Copy)]
pub struct BlockFacts {
    pub chain_id: u64,
    pub base_fee: u128,
}

/// Where one transaction's events are in the staging list, and its gas.
#[derive(Debug, Clone)]
pub struct TxnEvents {
    pub phase_a: Range<usize>,
    pub phase_b: Range<usize>,
    pub gas_used: u64,
    pub log_count: u32,
}

/// The kinds of transaction the generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Native,
    Erc20,
    Swap,
    Delegation,
}

/// Plans transaction `idx` and appends its events (phase A then phase B) to `staging`,
/// payloads built into `batch`.
pub fn generate(
    world: &mut World,
    rng: &mut Rng,
    facts: BlockFacts,
    idx: u32,
    batch: &mut PayloadArena,
    staging: &mut Vec<Pending>,
    s: &mut TxnScratch,
) -> TxnEvents {
    s.clear();
    let kind = match rng.below(100) {
        0..=27 => Kind::Native,
        28..=72 => Kind::Erc20,
        73..=95 => Kind::Swap,
        _ => Kind::Delegation,
    };
    let sender_i = world.pick_eoa(rng);
    let sender = world.eoas[sender_i];
    let nonce = world.take_nonce(sender_i);
    let priority = amount(rng, 1_000_000_000, 2_000_000_000);
    let sender_balance = amount(rng, 1 << 60, 1 << 75);
    let mut value: u128 = 0;
    let mut to: Address;
    let mut status = true;
    let mut txn_type = 2u8;
    let data: Range<usize>;
    let gas_used: u64;
    s.account(sender, EMPTY_CODE_HASH, nonce, sender_balance);
    match kind {
        Kind::Native => {
            let r = world.eoas[world.pick_eoa(rng)];
            to = r;
            value = amount(rng, 1_000_000_000_000_000, 10_000_000_000_000_000_000);
            gas_used = INTRINSIC_GAS;
            data = 0..0;
            s.frame(sender, r, OP_CALL, 0, 0, 0, &[], &[]);
            if let Some(f) = s.frames.last_mut() {
                f.value = value;
            }
            s.account(r, EMPTY_CODE_HASH, world.nonces[0], amount(rng, 0, 1 << 70));
            if let Some(a) = s.accts.last_mut() {
                a.post_balance = a.pre_balance + value;
            }
        }
        Kind::Erc20 => {
            let token = world.tokens[World::hot_index(rng, world.tokens.len())];
            let recipient = world.eoas[world.pick_eoa(rng)];
            let amt = word_u128(amount(rng, 1_000_000, 1 << 80));
            to = token.address;
            gas_used = rng.range(34_000, 52_000);
            data = s.put(&[&SEL_TRANSFER, &word_address(&recipient), &amt]);
            outer_call(s, sender, to, gas_used, data.clone(), &[&word_u128(1)]);
            s.log(
                to,
                &[
                    TRANSFER_TOPIC,
                    word_address(&sender),
                    word_address(&recipient),
                ],
                &[&amt],
            );
            s.account(token.address, token.code_hash, 1, 0);
            let (k_from, k_to) = (mapping_key(&sender, 0), mapping_key(&recipient, 0));
            s.write(world, rng, k_from);
            s.write(world, rng, k_to);
            if rng.chance(0.1) {
                txn_type = 1;
                let keys = s.put(&[&k_from, &k_to]);
                s.access.push((token.address, keys));
            }
        }
        Kind::Swap => {
            let pool = world.pools[World::hot_index(rng, world.pools.len())];
            let token_a = world.tokens[World::hot_index(rng, world.tokens.len())];
            let token_b = world.tokens[rng.below(world.tokens.len() as u64) as usize];
            let router = world.router;
            to = router.address;
            let amount_in = amount(rng, 1_000_000, 1 << 80);
            let amount_out = amount(rng, 1_000_000, 1 << 80);
            let (w_in, w_out) = (word_u128(amount_in), word_u128(amount_out));
            let deadline = word_u128(u128::from(rng.range(1_700_000_000, 1_900_000_000)));
            data = s.put(&[
                &SEL_SWAP_EXACT,
                &w_in,
                &w_out,
                &word_u128(0xa0),
                &word_address(&sender),
                &deadline,
            ]);
            status = !rng.chance(0.04);
            if status {
                gas_used = rng.range(90_000, 180_000);
                let g = gas_used - INTRINSIC_GAS;
                outer_call(
                    s,
                    sender,
                    to,
                    gas_used,
                    data.clone(),
                    &[&word_u128(0x40), &w_out],
                );
                let reserves: [u8; 96] = rng.array();
                s.frame(
                    to,
                    pool.address,
                    OP_STATICCALL,
                    1,
                    g,
                    2_400,
                    &[&SEL_GET_RESERVES],
                    &[&reserves],
                );
                s.frame(
                    to,
                    token_a.address,
                    OP_CALL,
                    1,
                    g,
                    rng.range(20_000, 30_000),
                    &[
                        &SEL_TRANSFER_FROM,
                        &word_address(&sender),
                        &word_address(&pool.address),
                        &w_in,
                    ],
                    &[&word_u128(1)],
                );
                s.frame(
                    to,
                    pool.address,
                    OP_CALL,
                    1,
                    g,
                    rng.range(40_000, 60_000),
                    &[
                        &SEL_PAIR_SWAP,
                        &word_u128(0),
                        &w_out,
                        &word_address(&sender),
                        &word_u128(0x80),
                    ],
                    &[],
                );
                s.frame(
                    pool.address,
                    token_b.address,
                    OP_CALL,
                    2,
                    g / 2,
                    rng.range(20_000, 30_000),
                    &[&SEL_TRANSFER, &word_address(&sender), &w_out],
                    &[&word_u128(1)],
                );
                let (pa, pb) = (word_address(&pool.address), word_address(&sender));
                s.log(token_a.address, &[TRANSFER_TOPIC, pb, pa], &[&w_in]);
                s.log(token_b.address, &[TRANSFER_TOPIC, pa, pb], &[&w_out]);
                s.log(pool.address, &[SYNC_TOPIC], &[&reserves[..64]]);
                s.log(
                    pool.address,
                    &[SWAP_TOPIC, word_address(&router.address), pb],
                    &[&w_in, &word_u128(0), &word_u128(0), &w_out],
                );
                s.account(router.address, router.code_hash, 1, 0);
                s.account(pool.address, pool.code_hash, 1, 0);
                s.write(world, rng, plain_key(8));
                s.write(world, rng, plain_key(9));
                s.write(world, rng, plain_key(10));
                s.transient(plain_key(0));
                s.account(token_a.address, token_a.code_hash, 1, 0);
                s.write(world, rng, mapping_key(&sender, 0));
                s.write(world, rng, mapping_key(&pool.address, 0));
                s.write(world, rng, mapping_key(&sender, 1));
                if token_b.address != token_a.address {
                    s.account(token_b.address, token_b.code_hash, 1, 0);
                    s.write(world, rng, mapping_key(&pool.address, 0));
                    s.write(world, rng, mapping_key(&sender, 0));
                }
            } else {
                gas_used = rng.range(30_000, 60_000);
                outer_call(s, sender, to, gas_used, data.clone(), &[&ERROR_SELECTOR]);
                if let Some(f) = s.frames.last_mut() {
                    f.status = 2;
                }
                s.account(pool.address, pool.code_hash, 1, 0);
                s.read(world, rng, plain_key(8));
            }
            if rng.chance(0.1) {
                txn_type = 1;
                let keys = s.put(&[&plain_key(8)]);
                s.access.push((pool.address, keys));
                let keys = s.put(&[&mapping_key(&sender, 0), &mapping_key(&pool.address, 0)]);
                s.access.push((token_a.address, keys));
            }
        }
        Kind::Delegation => {
            txn_type = 4;
            to = sender;
            let token = world.tokens[World::hot_index(rng, world.tokens.len())];
            let recipient = world.eoas[world.pick_eoa(rng)];
            let amt = word_u128(amount(rng, 1_000_000, 1 << 80));
            gas_used = rng.range(50_000, 80_000);
            for i in 0..rng.range(1, 2) {
                let valid = rng.chance(0.9);
                s.auths.push(TxnAuthListEntry {
                    index: i as u32,
                    chain_id: U256::from_u64(facts.chain_id),
                    address: world.delegate.address,
                    nonce: nonce + 1 + i,
                    y_parity: rng.bool(),
                    r: U256(rng.array()),
                    s: U256(rng.array()),
                    authority: if valid { sender } else { rng.array() },
                    is_valid_authority: valid,
                });
            }
            data = s.put(&[
                &SEL_EXECUTE,
                &word_address(&token.address),
                &word_u128(0x40),
            ]);
            outer_call(s, sender, sender, gas_used, data.clone(), &[]);
            s.frame(
                sender,
                token.address,
                OP_CALL,
                1,
                gas_used,
                rng.range(20_000, 30_000),
                &[&SEL_TRANSFER, &word_address(&recipient), &amt],
                &[&word_u128(1)],
            );
            s.log(
                token.address,
                &[
                    TRANSFER_TOPIC,
                    word_address(&sender),
                    word_address(&recipient),
                ],
                &[&amt],
            );
            s.account(token.address, token.code_hash, 1, 0);
            s.write(world, rng, mapping_key(&sender, 0));
            s.write(world, rng, mapping_key(&recipient, 0));
        }
    }
    let fee = u128::from(gas_used) * (facts.base_fee + priority);
    if let Some(a) = s.accts.first_mut() {
        a.post_nonce = nonce + 1;
        a.post_balance = a.pre_balance.saturating_sub(fee + value);
    }
    if kind == Kind::Native {
        to = s.accts.get(1).map_or(to, |a| a.address);
    }
    let header = TxnHeaderStart {
        txn_hash: rng.array(),
        sender,
        txn_header: TxnHeader {
            txn_type,
            chain_id: U256::from_u64(facts.chain_id),
            nonce,
            gas_limit: gas_used + gas_used / 4,
            max_fee_per_gas: U256::from_u128(facts.base_fee * 2 + priority),
            max_priority_fee_per_gas: U256::from_u128(priority),
            value: U256::from_u128(value),
            to,
            is_contract_creation: false,
            r: U256(rng.array()),
            s: U256(rng.array()),
            y_parity: rng.bool(),
            max_fee_per_blob_gas: U256::ZERO,
            access_list_count: s.access.len() as u32,
            auth_list_count: s.auths.len() as u32,
        },
        data: &s.bytes[data],
        blob_versioned_hashes: &[],
    };
    let txn_id = u64::from(idx) + 1;
    let a_start = staging.len();
    staging.push(batch.build(&ExecEvent::TxnPerfEvmEnter, txn_id, 0));
    staging.push(batch.build(&ExecEvent::TxnHeaderStart(header), txn_id, 0));
    for (i, (address, keys)) in s.access.iter().enumerate() {
        let entry = TxnAccessListEntry {
            index: i as u32,
            address: *address,
            storage_keys: &s.bytes[keys.clone()],
        };
        staging.push(batch.build(&ExecEvent::TxnAccessListEntry(entry), txn_id, 0));
    }
    for auth in &s.auths {
        staging.push(batch.build(&ExecEvent::TxnAuthListEntry(*auth), txn_id, 0));
    }
    staging.push(batch.build(&ExecEvent::TxnHeaderEnd, txn_id, 0));
    let phase_a = a_start..staging.len();
    let b_start = staging.len();
    emit_commit(s, batch, staging, txn_id, status, gas_used);
    staging.push(batch.build(&ExecEvent::TxnEnd, txn_id, 0));
    staging.push(batch.build(&ExecEvent::TxnPerfEvmExit, txn_id, 0));
    TxnEvents {
        phase_a,
        phase_b: b_start..staging.len(),
        gas_used,
        log_count: s.logs.len() as u32,
    }
}

/// The transaction's outer call frame: depth 0, CALL from `sender` to `to` with the
/// transaction's calldata (`data` in the scratch bytes) as input; its gas is twice the
/// transaction's gas used, and it uses that minus the intrinsic gas.
fn outer_call(
    s: &mut TxnScratch,
    sender: Address,
    to: Address,
    gas_used: u64,
    data: Range<usize>,
    output: &[&[u8]],
) {
    let input = s.bytes[data].to_vec();
    s.frame(
        sender,
        to,
        OP_CALL,
        0,
        gas_used * 2,
        gas_used - INTRINSIC_GAS,
        &[&input],
        output,
    );
}
