//! Typed events and meta frames, decoded from the exact JSON the server sends
//! (docs/events.md for event payloads, docs/protocol.md §3 and docs/analytics.md for the
//! frames).
//!
//! Decoding is forward compatible: unknown keys are ignored (the exact text stays in
//! `raw_json`), an unknown event kind decodes to [`Payload::Unknown`]. Every type serializes
//! back to the server's shape (optional fields omitted, never `null`), which is what the
//! conformance tests compare. Numbers are `u64`/`i64`/`f64` as documented; `u256` values and
//! every hex string stay the server's `"0x…"` text.

use serde::{Deserialize, Serialize};

use crate::Cursor;

/// The envelope of one event of an `Events` frame, plus what the client knows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// PascalCase kind (equals the payload's `type`).
    pub event_name: String,
    /// The event's block number, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_number: Option<u64>,
    /// Consensus id of the proposal the event belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_id: Option<String>,
    /// Transaction index (transaction events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_idx: Option<u64>,
    /// Transaction hash (after its `TxnHeaderStart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_hash: Option<String>,
    /// Commit stage at encoding or `min_stage` release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_stage: Option<String>,
    /// The typed payload.
    pub payload: Payload,
    /// The ring's sequence number.
    pub seqno: u64,
    /// The ring's CLOCK_REALTIME nanoseconds when the writer reserved the event.
    pub timestamp_ns: u64,
    /// Client side: the `server_seqno` of the `Events` frame that carried this event.
    #[serde(skip)]
    pub server_seqno: u64,
    /// Client side: the server epoch of the connection.
    #[serde(skip)]
    pub epoch: u64,
    /// Client side: wall-clock nanoseconds when the frame arrived.
    #[serde(skip)]
    pub received_ns: u64,
    /// Client side: position in its frame.
    #[serde(skip)]
    pub frame_index: usize,
    /// Client side: events in its frame (after any local pre-filtering).
    #[serde(skip)]
    pub frame_size: usize,
    /// Client side: the exact JSON text of the event object the server sent.
    #[serde(skip)]
    pub raw_json: String,
}

impl Event {
    /// Whether this is the last event of its frame: the cursor moves when it is handed out.
    pub fn last_in_frame(&self) -> bool {
        self.frame_index + 1 == self.frame_size
    }

    /// The cursor after this event's frame.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.epoch, self.server_seqno)
    }
}

macro_rules! payloads {
    ($( $(#[$m:meta])* $name:ident $({ $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? })? ; )*) => {
        $(
            $(#[$m])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            #[allow(missing_docs)]
            pub struct $name { $($( $(#[$fm])* pub $field: $ty ),*)? }
        )*

        /// An event payload, tagged by `type` (the 24 kinds of docs/events.md).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        #[allow(missing_docs)]
        pub enum Payload {
            $( $name($name), )*
            /// A kind this client does not know (a newer server); see `Event::raw_json`.
            #[serde(other)]
            Unknown,
        }

        /// Every event kind this client decodes, in type-code order.
        pub const EVENT_KINDS: &[&str] = &[$(stringify!($name)),*];
    };
}

payloads! {
    /// The writer could not record an event (code 1).
    RecordError { error_type: u64, dropped_event_type: u64, truncated_payload_size: u64,
        requested_payload_size: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")] error_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] dropped_event_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] truncated_payload: Option<String> };
    /// Start of a block proposal (code 2).
    BlockStart { block_number: u64, block_id: String, round: u64, epoch: u64,
        parent_eth_hash: String, timestamp: u64, beneficiary: String, gas_limit: u64,
        base_fee_per_gas: String,
        #[serde(default, skip_serializing_if = "Option::is_none")] proposal_epoch_nanos: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] chain_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] author: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] ommers_hash: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] transactions_root: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] difficulty: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] number: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] extra_data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] prev_randao: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] nonce: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] withdrawals_root: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] txn_count: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] base_fee_trend: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] base_fee_moment: Option<String> };
    /// A proposal rejected by execution (code 3).
    BlockReject { reason: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")] reason_name: Option<String> };
    /// Code 4 (no fields).
    BlockPerfEvmEnter {};
    /// Code 5 (no fields).
    BlockPerfEvmExit {};
    /// End of a block's execution (code 6).
    BlockEnd { eth_block_hash: String, state_root: String, receipts_root: String,
        logs_bloom: String, gas_used: u64 };
    /// A quorum certificate: the proposal is voted (code 7).
    BlockQC { block_id: String, block_number: u64, round: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")] epoch: Option<u64> };
    /// The proposal is finalized (code 8).
    BlockFinalized { block_id: String, block_number: u64 };
    /// The block's execution outputs are verified (code 9).
    BlockVerified { block_number: u64 };
    /// A transaction's header (code 10).
    TxnHeaderStart { txn_index: u64, txn_hash: String, sender: String, txn_type: u64,
        chain_id: String, nonce: u64, gas_limit: u64, max_fee_per_gas: String,
        max_priority_fee_per_gas: String, value: String, data: String, to: String,
        is_contract_creation: bool, r: String, s: String, y_parity: bool,
        access_list_count: u64, auth_list_count: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")] max_fee_per_blob_gas: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] blob_versioned_hashes: Option<Vec<String>> };
    /// One EIP-2930 access list entry (code 11).
    TxnAccessListEntry { txn_index: u64, address: String, storage_keys: String,
        #[serde(default, skip_serializing_if = "Option::is_none")] index: Option<u64> };
    /// One EIP-7702 authorization (code 12).
    TxnAuthListEntry { txn_index: u64, address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")] index: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] chain_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] nonce: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] y_parity: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")] r: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] s: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] authority: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] is_valid_authority: Option<bool> };
    /// Code 13 (no fields).
    TxnHeaderEnd {};
    /// A transaction rejected by execution (code 14).
    TxnReject { txn_index: u64, reason: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")] reason_name: Option<String> };
    /// Code 15 (no fields).
    TxnPerfEvmEnter {};
    /// Code 16 (no fields).
    TxnPerfEvmExit {};
    /// A transaction's receipt figures (code 17).
    TxnEvmOutput { txn_index: u64, log_count: u64, status: bool, gas_used: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")] call_frame_count: Option<u64> };
    /// One log (code 18); `topics` are the 32-byte topics concatenated.
    TxnLog { txn_index: u64, log_index: u64, address: String, topics: String, data: String };
    /// One call frame (code 19); a non-zero `value` is a native transfer.
    TxnCallFrame { txn_index: u64, depth: u64, caller: String, call_target: String,
        value: String, input: String, output: String,
        #[serde(default, skip_serializing_if = "Option::is_none")] index: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] opcode: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] call_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] gas: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] gas_used: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] status: Option<u64> };
    /// Code 20 (no fields).
    TxnEnd {};
    /// Header of an account access list (code 21); `txn_index` absent in prologue/epilogue.
    AccountAccessListHeader {
        /// `null` (written, not omitted) in a block's prologue or epilogue.
        #[serde(default)] txn_index: Option<u64>,
        entry_count: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")] access_context: Option<u64> };
    /// One account access (code 22).
    AccountAccess {
        /// `null` (written, not omitted) in a block's prologue or epilogue.
        #[serde(default)] txn_index: Option<u64>,
        address: String, balance: String, nonce: u64, code_hash: String,
        #[serde(default, skip_serializing_if = "Option::is_none")] index: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] access_context: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] is_balance_modified: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")] is_nonce_modified: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")] modified_balance: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] modified_nonce: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] storage_key_count: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] transient_count: Option<u64> };
    /// One storage slot access (code 23).
    StorageAccess {
        /// `null` (written, not omitted) in a block's prologue or epilogue.
        #[serde(default)] txn_index: Option<u64>,
        account_index: u64, key: String, value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")] address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] index: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] access_context: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")] modified: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")] transient: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")] start_value: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] end_value: Option<String> };
    /// An EVM error (code 24).
    EvmError { domain_id: u64, status_code: i64 };
}

/// A meta or session frame's body with the client's stamps.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta<T> {
    /// The decoded body.
    pub body: T,
    /// The frame's `server_seqno`.
    pub server_seqno: u64,
    /// The connection's server epoch.
    pub epoch: u64,
    /// Wall-clock nanoseconds when the frame arrived.
    pub received_ns: u64,
    /// A connect-time snapshot copy (stamped with the cursor; it does not move it).
    pub snapshot: bool,
    /// The exact JSON text of the body the server sent.
    pub raw_json: String,
}

impl<T> std::ops::Deref for Meta<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.body
    }
}

/// `ContentionData`: one report per executed proposal (docs/analytics.md). The fields marked
/// optional are ringgate's extensions, sent to clients that ask for them (the Rust, Python
/// and TypeScript clients do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ContentionData {
    pub block_number: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_id: Option<String>,
    pub block_wall_time_ns: u64,
    pub total_tx_time_ns: u64,
    pub parallel_efficiency_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_speedup: Option<f64>,
    pub total_unique_slots: u64,
    pub contended_slot_count: u64,
    pub contention_ratio: f64,
    pub total_txn_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_txn_count: Option<u64>,
    pub top_contended_slots: Vec<ContendedSlot>,
    pub top_contended_contracts: Vec<ContendedContract>,
    pub contract_edges: Vec<ContractEdge>,
}

/// One of `ContentionData.top_contended_slots`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ContendedSlot {
    pub address: String,
    pub slot: String,
    pub txn_count: u64,
    pub access_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_count: Option<u64>,
}

/// One of `ContentionData.top_contended_contracts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ContendedContract {
    pub address: String,
    pub total_slots: u64,
    pub contended_slots: u64,
    pub total_accesses: u64,
    pub contention_score: f64,
}

/// One of `ContentionData.contract_edges`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ContractEdge {
    pub contract_a: String,
    pub contract_b: String,
    pub shared_txn_count: u64,
}

/// `TopAccesses`: most accessed accounts and slots over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TopAccesses {
    pub account: Vec<AccessCount>,
    pub storage: Vec<StorageCount>,
}

/// An account and its access count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct AccessCount {
    pub key: String,
    pub count: u64,
}

/// A storage slot (`key` = `[address, slot]`) and its access count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct StorageCount {
    pub key: (String, String),
    pub count: u64,
}

/// `Lifecycle`: one block stage transition (`block_hash` is the consensus block id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Lifecycle {
    pub block_hash: String,
    pub block_number: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_stage: Option<String>,
    pub to_stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_in_previous_stage_ms: Option<f64>,
    pub block_age_ms: f64,
    pub txn_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_used: Option<u64>,
}

/// Data the stream will not deliver: the server's `Gap` frame, or one the client makes when a
/// resume cannot recover (`synthetic`, reason `resume_failed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Gap {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_from_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_to_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_number: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_id: Option<String>,
    /// Client side: made by the client (a resume that could not recover).
    #[serde(skip)]
    pub synthetic: bool,
    /// Client side, synthetic gaps: the server's `Resume.reason`.
    #[serde(skip)]
    pub resume_reason: Option<String>,
    /// Client side, synthetic gaps: the cursor the client asked to resume from.
    #[serde(skip)]
    pub previous_cursor: Option<Cursor>,
}

/// `Warning`: backpressure drops on this connection (docs/protocol.md §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Warning {
    #[serde(rename = "type")]
    pub kind: String,
    pub dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_dropped: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_from_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_to_seqno: Option<u64>,
    /// Client side: the client will reconnect and resume to get the dropped frames back.
    #[serde(skip)]
    pub recovering: bool,
}

/// `Shed`: frames of a lower priority lane shed on this connection so that higher lanes could
/// be kept (docs/protocol.md §3, §7). Every frame of `lane` this subscription selected with
/// `server_seqno` in `from_seqno..=to_seqno` was shed, `dropped` of them, by event name in
/// `kinds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Shed {
    pub lane: String,
    pub dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_shed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_from_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_to_seqno: Option<u64>,
    #[serde(default)]
    pub kinds: std::collections::BTreeMap<String, u64>,
    /// Client side: the client will reconnect and resume to get the shed frames back
    /// ([`Options::recover_shed`](crate::Options::recover_shed)).
    #[serde(skip)]
    pub recovering: bool,
}

/// `Hello`, the first frame of every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Hello {
    pub wire_version: u64,
    pub server_version: String,
    pub epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub limits: serde_json::Map<String, serde_json::Value>,
}

/// `Resume`: the server's answer to a resume request (and, for old clients, to every
/// fresh connect: `mode` `snapshot`, `recovered` true).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Resume {
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seqno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seqno: Option<u64>,
    #[serde(default)]
    pub recovered: bool,
}

/// Each `Hello`: the first connection and every reconnection.
#[derive(Debug, Clone, PartialEq)]
pub struct Connected {
    /// The `Hello` body.
    pub hello: Hello,
    /// The session's starting cursor (`Hello.server_seqno`).
    pub server_seqno: u64,
    /// The URL connected to (without the token).
    pub url: String,
    /// A reconnection (not the first connection).
    pub reconnect: bool,
}

/// The server's `Resume`, with the cursor the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// The `Resume` body.
    pub resume: Resume,
    /// Its `server_seqno` (the session's starting cursor).
    pub server_seqno: u64,
    /// The cursor the client sent (`None` on a fresh connect).
    pub requested: Option<Cursor>,
}

/// Client side: the connection dropped; the client waits `delay` and reconnects.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnecting {
    /// 1 for the first try after a drop.
    pub attempt: u32,
    /// The full-jitter delay before this try.
    pub delay: std::time::Duration,
    /// Why (close code and reason, or the connect error).
    pub reason: String,
    /// The close code, when the server sent one.
    pub close_code: Option<u16>,
}

/// One item of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Each `Hello`.
    Connected(Connected),
    /// The server's `Resume`.
    Resumed(Resumed),
    /// One event of an `Events` frame.
    Event(Box<Event>),
    /// Data that will not be delivered (never skipped silently).
    Gap(Meta<Gap>),
    /// Backpressure drops on this connection.
    Warning(Meta<Warning>),
    /// Priority-lane frames shed on this connection.
    Shed(Meta<Shed>),
    /// `TPS` (a bare integer).
    Tps(Meta<u64>),
    /// `ContentionData`.
    ContentionData(Box<Meta<ContentionData>>),
    /// `TopAccesses`.
    TopAccesses(Box<Meta<TopAccesses>>),
    /// `Lifecycle`.
    Lifecycle(Meta<Lifecycle>),
    /// Client side: reconnecting after a drop.
    Reconnecting(Reconnecting),
}

/// Ring timestamp to receive time, in nanoseconds: `received_ns - timestamp_ns` (negative
/// when the clocks disagree). Meaningful when both hosts' clocks are synchronized.
pub fn latency_ns(event: &Event) -> i64 {
    event.received_ns as i64 - event.timestamp_ns as i64
}
