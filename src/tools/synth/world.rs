//! The synthetic chain's state: accounts, contracts, validators, nonces and storage values.
//!
//! Runs on the synthetic writer's thread. Deterministic from the seed. Popular accounts,
//! tokens and pools are picked more often than the rest, so transactions of one block share
//! storage slots (contention exists, as on a real chain). Memory is bounded: the storage-value
//! map is cleared when it grows past [`MAX_TRACKED_SLOTS`].

use std::collections::HashMap;

use crate::ingest::event::payload::{Address, Bytes32};
use crate::tools::synth::rng::Rng;

/// Storage values remembered (so a slot's start value is the previous writer's end value).
pub const MAX_TRACKED_SLOTS: usize = 200_000;

/// keccak256 of empty code: the code hash of every EOA.
pub const EMPTY_CODE_HASH: Bytes32 = [
    0xc5, 0xd2, 0x46, 0x01, 0x86, 0xf7, 0x23, 0x3c, 0x92, 0x7e, 0x7d, 0xb2, 0xdc, 0xc7, 0x03, 0xc0,
    0xe5, 0x00, 0xb6, 0x53, 0xca, 0x82, 0x27, 0x3b, 0x7b, 0xfa, 0xd8, 0x04, 0x5d, 0x85, 0xa4, 0x70,
];

/// EIP-2935 block-hash history contract, written in every block prologue.
pub const HISTORY_CONTRACT: Address = [
    0x00, 0x00, 0xf9, 0x08, 0x27, 0xf1, 0xc5, 0x3a, 0x10, 0xcb, 0x7a, 0x02, 0x33, 0x5b, 0x17, 0x53,
    0x20, 0x00, 0x29, 0x35,
];

/// A contract: address and code hash.
#[derive(Debug, Clone, Copy)]
pub struct Contract {
    pub address: Address,
    pub code_hash: Bytes32,
}

/// A block producer.
#[derive(Debug, Clone, Copy)]
pub struct Validator {
    pub beneficiary: Address,
    /// Compressed secp256k1 key (0x02/0x03 then x).
    pub author: [u8; 33],
}

/// Everything the generator remembers between blocks.
#[derive(Debug)]
pub struct World {
    pub eoas: Vec<Address>,
    pub nonces: Vec<u64>,
    pub tokens: Vec<Contract>,
    pub pools: Vec<Contract>,
    pub router: Contract,
    /// EIP-7702 delegation target.
    pub delegate: Contract,
    pub validators: Vec<Validator>,
    slots: HashMap<(Address, Bytes32), Bytes32>,
}

fn contract(rng: &mut Rng) -> Contract {
    Contract {
        address: rng.array(),
        code_hash: rng.array(),
    }
}

impl World {
    /// A world of `eoa_count` accounts, 24 tokens, 8 pools, one router, 10 validators.
    pub fn new(rng: &mut Rng, eoa_count: usize) -> World {
        let eoa_count = eoa_count.max(16);
        World {
            eoas: (0..eoa_count).map(|_| rng.array()).collect(),
            nonces: (0..eoa_count).map(|_| rng.below(1000)).collect(),
            tokens: (0..24).map(|_| contract(rng)).collect(),
            pools: (0..8).map(|_| contract(rng)).collect(),
            router: contract(rng),
            delegate: contract(rng),
            validators: (0..10)
                .map(|_| {
                    let mut author: [u8; 33] = rng.array();
                    author[0] = 2 + (author[0] & 1);
                    Validator {
                        beneficiary: rng.array(),
                        author,
                    }
                })
                .collect(),
            slots: HashMap::new(),
        }
    }

    /// An index in `0..n`, skewed: half the picks go to the first tenth ("hot" entries).
    pub fn hot_index(rng: &mut Rng, n: usize) -> usize {
        let n = n.max(1) as u64;
        if rng.bool() {
            rng.below((n / 10).max(1)) as usize
        } else {
            rng.below(n) as usize
        }
    }

    /// A (skewed) EOA index.
    pub fn pick_eoa(&self, rng: &mut Rng) -> usize {
        World::hot_index(rng, self.eoas.len())
    }

    /// The current nonce of an EOA, then increments it.
    pub fn take_nonce(&mut self, eoa: usize) -> u64 {
        let n = self.nonces[eoa];
        self.nonces[eoa] = n + 1;
        n
    }

    /// The current value of a slot (a fresh random one the first time).
    pub fn slot_value(&mut self, rng: &mut Rng, address: Address, key: Bytes32) -> Bytes32 {
        if self.slots.len() >= MAX_TRACKED_SLOTS {
            self.slots.clear();
        }
        *self.slots.entry((address, key)).or_insert_with(|| {
            let mut v = [0u8; 32];
            rng.fill(&mut v[20..]);
            v
        })
    }

    /// Records a write.
    pub fn set_slot(&mut self, address: Address, key: Bytes32, value: Bytes32) {
        self.slots.insert((address, key), value);
    }
}

/// A storage key derived from a contract-specific slot number and a holder address (the
/// shape of a Solidity mapping slot; not a real keccak, but stable per (holder, slot)).
pub fn mapping_key(holder: &Address, slot: u64) -> Bytes32 {
    let mut r = Rng::new(slot ^ 0x6d61_7070_696e_6721);
    let mut acc = r.next_u64();
    for chunk in holder.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        acc = Rng::new(acc ^ u64::from_le_bytes(w)).next_u64();
    }
    let mut out = [0u8; 32];
    let mut r = Rng::new(acc);
    r.fill(&mut out);
    out
}

/// A plain numbered slot (`0x…0n`).
pub fn plain_key(slot: u64) -> Bytes32 {
    let mut k = [0u8; 32];
    k[24..].copy_from_slice(&slot.to_be_bytes());
    k
}

/// An address left-padded to 32 bytes (topic / ABI word).
pub fn word_address(a: &Address) -> Bytes32 {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a);
    w
}

/// A u128 as a big-endian 32-byte ABI word.
pub fn word_u128(v: u128) -> Bytes32 {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&v.to_be_bytes());
    w
}
