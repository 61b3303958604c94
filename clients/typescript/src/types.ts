/**
 * Wire types: the exact JSON objects ringgate sends (docs/events.md, docs/protocol.md,
 * docs/analytics.md). Field names are the server's (snake_case); values are what
 * `JSON.parse` gives:
 *
 * - u8..u64 and i32/i64 are `number`. Most fit in 2^53; `timestamp_ns` and
 *   `BlockStart.proposal_epoch_nanos` do not (nanoseconds since 1970 are ~1.8e18), so
 *   `JSON.parse` rounds them to a multiple of 256 ns. The client gives the exact envelope value
 *   as `RinggateEvent.timestampNs` (bigint) and `exactU64(event, field)` reads any other field
 *   exactly from the event's raw text.
 * - u256 values are the server's minimal lowercase hex strings (`"0x0"`, `"0x3b541e0b1"`);
 *   addresses, hashes and byte strings are full-length lowercase hex with `0x` (`"0x"` when
 *   empty). `hexToBigInt()` converts.
 *
 * The server may add keys in later versions: every interface here is open (extra keys are kept
 * on the object, never rejected), and the runtime validator (`schema.ts`) ignores them.
 * The compile-time check at the end of `schema.ts` keeps these interfaces and the validator's
 * field table in step.
 */

/** `0x`-prefixed lowercase hex, any length (`"0x"` when empty). */
export type Hex = string;
/** 32-byte hex (`0x` + 64 hex digits). */
export type Hex32 = string;
/** 20-byte address (`0x` + 40 hex digits). */
export type Address = string;
/** u256 as minimal lowercase hex (`"0x0"` for zero, no leading zeros). */
export type U256 = string;

/** The stage names of `commit_stage` (and `min_stage`, which excludes `Rejected`). */
export type CommitStage = "Proposed" | "Voted" | "Finalized" | "Verified" | "Rejected";
export type MinStage = "Proposed" | "Voted" | "Finalized" | "Verified";
/** Lifecycle stages (`Lifecycle.to_stage`, `from_stage`). */
export type LifecycleStage = "Proposed" | "Voted" | "Finalized" | "Verified" | "Rejected" | "Abandoned";

/** The 24 nameable event kinds, in ring code order (code 0, `None`, is never sent). */
export const EVENT_NAMES = [
  "RecordError",
  "BlockStart",
  "BlockReject",
  "BlockPerfEvmEnter",
  "BlockPerfEvmExit",
  "BlockEnd",
  "BlockQC",
  "BlockFinalized",
  "BlockVerified",
  "TxnHeaderStart",
  "TxnAccessListEntry",
  "TxnAuthListEntry",
  "TxnHeaderEnd",
  "TxnReject",
  "TxnPerfEvmEnter",
  "TxnPerfEvmExit",
  "TxnEvmOutput",
  "TxnLog",
  "TxnCallFrame",
  "TxnEnd",
  "AccountAccessListHeader",
  "AccountAccess",
  "StorageAccess",
  "EvmError",
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/** Meta items that can be subscribed to alongside events. */
export const META_NAMES = ["TPS", "ContentionData", "TopAccesses", "Lifecycle"] as const;
export type MetaName = (typeof META_NAMES)[number];

/** Everything a subscription (`events=`, `subscribe`) may name. */
export type SubscribableName = EventName | "NativeTransfer" | MetaName;

// --------------------------------------------------------------------------------- payloads

/** Code 1. The writer could not record an event (the dropped event's flow tags stay in the envelope). */
export interface RecordErrorPayload {
  type: "RecordError";
  /** 0 NONE, 1 OVERFLOW_4GB, 2 OVERFLOW_EXPIRE, 3 MISSING_EVENT */
  error_type: number;
  dropped_event_type: number;
  truncated_payload_size: number;
  requested_payload_size: number;
  /** Name of `error_type`, when known. */
  error_name?: string;
  /** Name of `dropped_event_type`, when known. */
  dropped_event_name?: string;
  truncated_payload: Hex;
}

/** Code 2. */
export interface BlockStartPayload {
  type: "BlockStart";
  block_number: number;
  block_id: Hex32;
  round: number;
  epoch: number;
  parent_eth_hash: Hex32;
  /** Block timestamp, seconds. */
  timestamp: number;
  beneficiary: Address;
  gas_limit: number;
  base_fee_per_gas: U256;
  /** Consensus header timestamp, ns. Above 2^53: use `exactU64(event, "proposal_epoch_nanos")`. */
  proposal_epoch_nanos: number;
  chain_id: U256;
  /** Compressed secp256k1 key of the proposer (33 bytes). */
  author: Hex;
  ommers_hash: Hex32;
  transactions_root: Hex32;
  difficulty: number;
  number: number;
  extra_data: Hex;
  prev_randao: Hex32;
  /** 8 bytes. */
  nonce: Hex;
  withdrawals_root: Hex32;
  txn_count: number;
  base_fee_trend: U256;
  base_fee_moment: U256;
}

/** Code 3. */
export interface BlockRejectPayload {
  type: "BlockReject";
  reason: number;
  reason_name?: string;
}

/** Code 4. */
export interface BlockPerfEvmEnterPayload {
  type: "BlockPerfEvmEnter";
}
/** Code 5. */
export interface BlockPerfEvmExitPayload {
  type: "BlockPerfEvmExit";
}

/** Code 6. */
export interface BlockEndPayload {
  type: "BlockEnd";
  eth_block_hash: Hex32;
  state_root: Hex32;
  receipts_root: Hex32;
  /** 256 bytes. */
  logs_bloom: Hex;
  gas_used: number;
}

/** Code 7. */
export interface BlockQCPayload {
  type: "BlockQC";
  block_id: Hex32;
  block_number: number;
  round: number;
  epoch: number;
}

/** Code 8. */
export interface BlockFinalizedPayload {
  type: "BlockFinalized";
  block_id: Hex32;
  block_number: number;
}

/** Code 9. */
export interface BlockVerifiedPayload {
  type: "BlockVerified";
  block_number: number;
}

/** Code 10. */
export interface TxnHeaderStartPayload {
  type: "TxnHeaderStart";
  txn_index: number;
  txn_hash: Hex32;
  sender: Address;
  /** 0 legacy, 1 EIP-2930, 2 EIP-1559, 3 EIP-4844, 4 EIP-7702 */
  txn_type: number;
  chain_id: U256;
  nonce: number;
  gas_limit: number;
  max_fee_per_gas: U256;
  max_priority_fee_per_gas: U256;
  value: U256;
  data: Hex;
  to: Address;
  is_contract_creation: boolean;
  r: U256;
  s: U256;
  y_parity: boolean;
  access_list_count: number;
  auth_list_count: number;
  max_fee_per_blob_gas: U256;
  blob_versioned_hashes: Hex32[];
}

/** Code 11. */
export interface TxnAccessListEntryPayload {
  type: "TxnAccessListEntry";
  txn_index: number;
  address: Address;
  /** The keys, 32 bytes each, concatenated. */
  storage_keys: Hex;
  index: number;
}

/** Code 12. */
export interface TxnAuthListEntryPayload {
  type: "TxnAuthListEntry";
  txn_index: number;
  address: Address;
  index: number;
  chain_id: U256;
  nonce: number;
  y_parity: boolean;
  r: U256;
  s: U256;
  authority: Address;
  is_valid_authority: boolean;
}

/** Code 13. */
export interface TxnHeaderEndPayload {
  type: "TxnHeaderEnd";
}

/** Code 14. */
export interface TxnRejectPayload {
  type: "TxnReject";
  txn_index: number;
  reason: number;
  reason_name?: string;
}

/** Code 15. */
export interface TxnPerfEvmEnterPayload {
  type: "TxnPerfEvmEnter";
}
/** Code 16. */
export interface TxnPerfEvmExitPayload {
  type: "TxnPerfEvmExit";
}

/** Code 17. */
export interface TxnEvmOutputPayload {
  type: "TxnEvmOutput";
  txn_index: number;
  log_count: number;
  status: boolean;
  gas_used: number;
  call_frame_count: number;
}

/** Code 18. */
export interface TxnLogPayload {
  type: "TxnLog";
  txn_index: number;
  log_index: number;
  address: Address;
  /** The topics, 32 bytes each, concatenated (`"0x"` for LOG0). `splitTopics()` splits them. */
  topics: Hex;
  data: Hex;
}

/** Code 19. */
export interface TxnCallFramePayload {
  type: "TxnCallFrame";
  txn_index: number;
  depth: number;
  caller: Address;
  call_target: Address;
  value: U256;
  input: Hex;
  output: Hex;
  index: number;
  /** 0xF1 CALL, 0xFA STATICCALL, 0xF2 CALLCODE, 0xF4 DELEGATECALL, 0xF0 CREATE, 0xF5 CREATE2, 0xFF SELFDESTRUCT */
  opcode: number;
  call_type: string;
  gas: number;
  gas_used: number;
  /** evmc status: 0 success, 1 failure, 2 revert, ... */
  status: number;
}

/** Code 20. */
export interface TxnEndPayload {
  type: "TxnEnd";
}

/** Code 21. */
export interface AccountAccessListHeaderPayload {
  type: "AccountAccessListHeader";
  /** `null` in the block prologue / epilogue. */
  txn_index?: number | null;
  entry_count: number;
  /** 0 block prologue, 1 transaction, 2 block epilogue */
  access_context: number;
}

/** Code 22. */
export interface AccountAccessPayload {
  type: "AccountAccess";
  txn_index?: number | null;
  address: Address;
  balance: U256;
  nonce: number;
  code_hash: Hex32;
  index: number;
  access_context: number;
  is_balance_modified: boolean;
  is_nonce_modified: boolean;
  modified_balance: U256;
  modified_nonce: number;
  storage_key_count: number;
  transient_count: number;
}

/** Code 23. */
export interface StorageAccessPayload {
  type: "StorageAccess";
  txn_index?: number | null;
  account_index: number;
  key: Hex32;
  value: Hex32;
  address: Address;
  index: number;
  access_context: number;
  modified: boolean;
  transient: boolean;
  start_value: Hex32;
  end_value: Hex32;
}

/** Code 24. */
export interface EvmErrorPayload {
  type: "EvmError";
  domain_id: number;
  /** Signed. */
  status_code: number;
}

/** Payload type by event name. */
export interface PayloadMap {
  RecordError: RecordErrorPayload;
  BlockStart: BlockStartPayload;
  BlockReject: BlockRejectPayload;
  BlockPerfEvmEnter: BlockPerfEvmEnterPayload;
  BlockPerfEvmExit: BlockPerfEvmExitPayload;
  BlockEnd: BlockEndPayload;
  BlockQC: BlockQCPayload;
  BlockFinalized: BlockFinalizedPayload;
  BlockVerified: BlockVerifiedPayload;
  TxnHeaderStart: TxnHeaderStartPayload;
  TxnAccessListEntry: TxnAccessListEntryPayload;
  TxnAuthListEntry: TxnAuthListEntryPayload;
  TxnHeaderEnd: TxnHeaderEndPayload;
  TxnReject: TxnRejectPayload;
  TxnPerfEvmEnter: TxnPerfEvmEnterPayload;
  TxnPerfEvmExit: TxnPerfEvmExitPayload;
  TxnEvmOutput: TxnEvmOutputPayload;
  TxnLog: TxnLogPayload;
  TxnCallFrame: TxnCallFramePayload;
  TxnEnd: TxnEndPayload;
  AccountAccessListHeader: AccountAccessListHeaderPayload;
  AccountAccess: AccountAccessPayload;
  StorageAccess: StorageAccessPayload;
  EvmError: EvmErrorPayload;
}
export type Payload = PayloadMap[EventName];

/** One event object exactly as the server sends it inside an `Events` frame (docs/events.md). */
export interface WireEvent<K extends EventName = EventName> {
  event_name: K;
  block_number?: number;
  block_id?: Hex32;
  txn_idx?: number;
  txn_hash?: Hex32;
  commit_stage?: CommitStage;
  payload: PayloadMap[K];
  /** The ring's sequence number. */
  seqno: number;
  /** Ring CLOCK_REALTIME ns; rounded by JSON.parse (use `RinggateEvent.timestampNs`). */
  timestamp_ns: number;
}

// --------------------------------------------------------------------------------- meta frames

/** `Lifecycle` frame body (docs/analytics.md). */
export interface LifecycleBody {
  /** The consensus block id (name kept from the old gateway). */
  block_hash: Hex32;
  block_number: number;
  /** Omitted only for the creating `Proposed` transition (and in the connect-time snapshot). */
  from_stage?: LifecycleStage;
  to_stage: LifecycleStage;
  time_in_previous_stage_ms?: number;
  block_age_ms: number;
  txn_count: number;
  /** From BLOCK_END, once seen. */
  gas_used?: number;
}

export interface ContendedSlot {
  address: Address;
  slot: Hex32;
  txn_count: number;
  access_count: number;
  writer_count: number;
}
export interface ContendedContract {
  address: Address;
  total_slots: number;
  contended_slots: number;
  total_accesses: number;
  contention_score: number;
}
export interface ContractEdge {
  contract_a: Address;
  contract_b: Address;
  shared_txn_count: number;
}
/** `ContentionData` frame body (docs/analytics.md). */
export interface ContentionDataBody {
  block_number: number;
  block_id: Hex32;
  block_wall_time_ns: number;
  total_tx_time_ns: number;
  parallel_efficiency_pct: number;
  parallel_speedup: number;
  total_unique_slots: number;
  contended_slot_count: number;
  contention_ratio: number;
  total_txn_count: number;
  timed_txn_count: number;
  top_contended_slots: ContendedSlot[];
  top_contended_contracts: ContendedContract[];
  contract_edges: ContractEdge[];
}

/** `TopAccesses` frame body. */
export interface TopAccessesBody {
  account: { key: Address; count: number }[];
  storage: { key: [Address, Hex32]; count: number }[];
}

/** `Gap` frame body (docs/protocol.md §3). Ranges are inclusive. */
export interface GapBody {
  reason: string;
  from_seqno?: number;
  to_seqno?: number;
  ring_from_seqno?: number;
  ring_to_seqno?: number;
  block_number?: number;
  block_id?: Hex32;
}

/** `Warning` frame body (backpressure, docs/protocol.md §7). */
export interface WarningBody {
  type: string;
  dropped: number;
  total_dropped?: number;
  drop_limit: number;
  dropped_from_seqno?: number;
  dropped_to_seqno?: number;
}

/** `Hello` frame body. */
export interface HelloBody {
  wire_version: number;
  server_version: string;
  epoch: number;
  channel?: string;
  features?: string[];
  limits?: Record<string, number>;
}

/** `Resume` frame body. */
export interface ResumeBody {
  mode: "resume" | "snapshot";
  reason?: string;
  epoch?: number;
  from_seqno?: number;
  to_seqno?: number;
  recovered?: boolean;
}

/** `Subscribed` frame body. */
export interface SubscribedBody {
  channel: string;
  events: string[];
  filters: number;
  min_stage: MinStage;
}

/** `Error` frame body. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** A server frame as parsed: `server_seqno` plus one key naming the message type. */
export type WireFrame = { server_seqno: number } & (
  | { Hello: HelloBody }
  | { Events: WireEvent[] }
  | { Gap: GapBody }
  | { Warning: WarningBody }
  | { Resume: ResumeBody }
  | { Subscribed: SubscribedBody }
  | { Error: ErrorBody }
  | { TPS: number }
  | { ContentionData: ContentionDataBody }
  | { TopAccesses: TopAccessesBody }
  | { Lifecycle: LifecycleBody }
);
