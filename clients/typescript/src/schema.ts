/**
 * The documented field lists (docs/events.md, docs/analytics.md) as data, and a small runtime
 * validator per event kind and meta frame built from them. The TypeScript interfaces in
 * `types.ts` mirror these tables: the type-level check at the bottom of this file fails to
 * compile when a field, its optionality or its type differs between the two.
 */
import type {
  ContentionDataBody,
  EventName,
  GapBody,
  LifecycleBody,
  PayloadMap,
  TopAccessesBody,
} from "./types.js";
import { EVENT_NAMES } from "./types.js";

/**
 * Field kinds. A trailing `?` marks an optional field.
 *
 * uint: non-negative integer number; int: integer number; num: finite number;
 * u256: minimal lowercase hex; hex: even-length lowercase hex (`0x` allowed);
 * hexN (hex8, hex32, hex33, hex256): exactly N bytes; address: 20 bytes;
 * words: concatenated 32-byte words; topics: 0..4 words; hexle32: at most 32 bytes;
 * hex32list: array of hex32; bool; string; stage; lstage (lifecycle stage).
 */
export type FieldKind =
  | "uint"
  | "int"
  | "num"
  | "u256"
  | "hex"
  | "hex8"
  | "hex32"
  | "hex33"
  | "hex256"
  | "address"
  | "words"
  | "topics"
  | "hexle32"
  | "hex32list"
  | "bool"
  | "string"
  | "stage"
  | "lstage";
export type FieldSpec = FieldKind | `${FieldKind}?`;

/** Payload fields per kind (`type` excluded: it must equal `event_name`). */
export const PAYLOAD_FIELDS = {
  RecordError: {
    error_type: "uint",
    dropped_event_type: "uint",
    truncated_payload_size: "uint",
    requested_payload_size: "uint",
    error_name: "string?",
    dropped_event_name: "string?",
    truncated_payload: "hex",
  },
  BlockStart: {
    block_number: "uint",
    block_id: "hex32",
    round: "uint",
    epoch: "uint",
    parent_eth_hash: "hex32",
    timestamp: "uint",
    beneficiary: "address",
    gas_limit: "uint",
    base_fee_per_gas: "u256",
    proposal_epoch_nanos: "uint",
    chain_id: "u256",
    author: "hex33",
    ommers_hash: "hex32",
    transactions_root: "hex32",
    difficulty: "uint",
    number: "uint",
    extra_data: "hexle32",
    prev_randao: "hex32",
    nonce: "hex8",
    withdrawals_root: "hex32",
    txn_count: "uint",
    base_fee_trend: "u256",
    base_fee_moment: "u256",
  },
  BlockReject: { reason: "uint", reason_name: "string?" },
  BlockPerfEvmEnter: {},
  BlockPerfEvmExit: {},
  BlockEnd: {
    eth_block_hash: "hex32",
    state_root: "hex32",
    receipts_root: "hex32",
    logs_bloom: "hex256",
    gas_used: "uint",
  },
  BlockQC: { block_id: "hex32", block_number: "uint", round: "uint", epoch: "uint" },
  BlockFinalized: { block_id: "hex32", block_number: "uint" },
  BlockVerified: { block_number: "uint" },
  TxnHeaderStart: {
    txn_index: "uint",
    txn_hash: "hex32",
    sender: "address",
    txn_type: "uint",
    chain_id: "u256",
    nonce: "uint",
    gas_limit: "uint",
    max_fee_per_gas: "u256",
    max_priority_fee_per_gas: "u256",
    value: "u256",
    data: "hex",
    to: "address",
    is_contract_creation: "bool",
    r: "u256",
    s: "u256",
    y_parity: "bool",
    access_list_count: "uint",
    auth_list_count: "uint",
    max_fee_per_blob_gas: "u256",
    blob_versioned_hashes: "hex32list",
  },
  TxnAccessListEntry: { txn_index: "uint", address: "address", storage_keys: "words", index: "uint" },
  TxnAuthListEntry: {
    txn_index: "uint",
    address: "address",
    index: "uint",
    chain_id: "u256",
    nonce: "uint",
    y_parity: "bool",
    r: "u256",
    s: "u256",
    authority: "address",
    is_valid_authority: "bool",
  },
  TxnHeaderEnd: {},
  TxnReject: { txn_index: "uint", reason: "uint", reason_name: "string?" },
  TxnPerfEvmEnter: {},
  TxnPerfEvmExit: {},
  TxnEvmOutput: {
    txn_index: "uint",
    log_count: "uint",
    status: "bool",
    gas_used: "uint",
    call_frame_count: "uint",
  },
  TxnLog: { txn_index: "uint", log_index: "uint", address: "address", topics: "topics", data: "hex" },
  TxnCallFrame: {
    txn_index: "uint",
    depth: "uint",
    caller: "address",
    call_target: "address",
    value: "u256",
    input: "hex",
    output: "hex",
    index: "uint",
    opcode: "uint",
    call_type: "string",
    gas: "uint",
    gas_used: "uint",
    status: "uint",
  },
  TxnEnd: {},
  AccountAccessListHeader: { txn_index: "uint?", entry_count: "uint", access_context: "uint" },
  AccountAccess: {
    txn_index: "uint?",
    address: "address",
    balance: "u256",
    nonce: "uint",
    code_hash: "hex32",
    index: "uint",
    access_context: "uint",
    is_balance_modified: "bool",
    is_nonce_modified: "bool",
    modified_balance: "u256",
    modified_nonce: "uint",
    storage_key_count: "uint",
    transient_count: "uint",
  },
  StorageAccess: {
    txn_index: "uint?",
    account_index: "uint",
    key: "hex32",
    value: "hex32",
    address: "address",
    index: "uint",
    access_context: "uint",
    modified: "bool",
    transient: "bool",
    start_value: "hex32",
    end_value: "hex32",
  },
  EvmError: { domain_id: "uint", status_code: "int" },
} as const satisfies { [K in EventName]: Record<string, FieldSpec> };

/** Envelope fields of every event object (docs/events.md, "Envelope"). */
export const ENVELOPE_FIELDS = {
  event_name: "string",
  block_number: "uint?",
  block_id: "hex32?",
  txn_idx: "uint?",
  txn_hash: "hex32?",
  commit_stage: "stage?",
  seqno: "uint",
  timestamp_ns: "uint",
} as const satisfies Record<string, FieldSpec>;

/** Meta frame bodies (docs/analytics.md). */
export const LIFECYCLE_FIELDS = {
  block_hash: "hex32",
  block_number: "uint",
  from_stage: "lstage?",
  to_stage: "lstage",
  time_in_previous_stage_ms: "num?",
  block_age_ms: "num",
  txn_count: "uint",
  gas_used: "uint?",
} as const satisfies Record<string, FieldSpec>;

export const CONTENTION_FIELDS = {
  block_number: "uint",
  block_id: "hex32",
  block_wall_time_ns: "uint",
  total_tx_time_ns: "uint",
  parallel_efficiency_pct: "num",
  parallel_speedup: "num",
  total_unique_slots: "uint",
  contended_slot_count: "uint",
  contention_ratio: "num",
  total_txn_count: "uint",
  timed_txn_count: "uint",
} as const satisfies Record<string, FieldSpec>;
const CONTENDED_SLOT_FIELDS = {
  address: "address",
  slot: "hex32",
  txn_count: "uint",
  access_count: "uint",
  writer_count: "uint",
} as const satisfies Record<string, FieldSpec>;
const CONTENDED_CONTRACT_FIELDS = {
  address: "address",
  total_slots: "uint",
  contended_slots: "uint",
  total_accesses: "uint",
  contention_score: "num",
} as const satisfies Record<string, FieldSpec>;
const CONTRACT_EDGE_FIELDS = {
  contract_a: "address",
  contract_b: "address",
  shared_txn_count: "uint",
} as const satisfies Record<string, FieldSpec>;

export const GAP_FIELDS = {
  reason: "string",
  from_seqno: "uint?",
  to_seqno: "uint?",
  ring_from_seqno: "uint?",
  ring_to_seqno: "uint?",
  block_number: "uint?",
  block_id: "hex32?",
} as const satisfies Record<string, FieldSpec>;

// --------------------------------------------------------------------------------- checks

const RE = {
  hex: /^0x(?:[0-9a-f]{2})*$/,
  hex8: /^0x[0-9a-f]{16}$/,
  hex32: /^0x[0-9a-f]{64}$/,
  hex33: /^0x[0-9a-f]{66}$/,
  hex256: /^0x[0-9a-f]{512}$/,
  address: /^0x[0-9a-f]{40}$/,
  u256: /^0x(?:0|[1-9a-f][0-9a-f]{0,63})$/,
  words: /^0x(?:[0-9a-f]{64})*$/,
  topics: /^0x(?:[0-9a-f]{64}){0,4}$/,
  hexle32: /^0x(?:[0-9a-f]{2}){0,32}$/,
};
const STAGES = new Set(["Proposed", "Voted", "Finalized", "Verified", "Rejected"]);
const LSTAGES = new Set(["Proposed", "Voted", "Finalized", "Verified", "Rejected", "Abandoned"]);

function checkKind(kind: FieldKind, v: unknown): boolean {
  switch (kind) {
    case "uint":
      return typeof v === "number" && Number.isInteger(v) && v >= 0;
    case "int":
      return typeof v === "number" && Number.isInteger(v);
    case "num":
      return typeof v === "number" && Number.isFinite(v);
    case "bool":
      return typeof v === "boolean";
    case "string":
      return typeof v === "string";
    case "stage":
      return typeof v === "string" && STAGES.has(v);
    case "lstage":
      return typeof v === "string" && LSTAGES.has(v);
    case "hex32list":
      return Array.isArray(v) && v.every((x) => typeof x === "string" && RE.hex32.test(x));
    default:
      return typeof v === "string" && RE[kind].test(v);
  }
}

/** Result of a validation: `errors` (documented fields missing or of the wrong type) and
 * `extra` (keys the documentation does not list; never an error for the client). */
export interface Validation {
  errors: string[];
  extra: string[];
}

function checkFields(
  where: string,
  obj: unknown,
  fields: Record<string, FieldSpec>,
  out: Validation,
  ignore: readonly string[] = [],
): obj is Record<string, unknown> {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    out.errors.push(`${where}: not an object`);
    return false;
  }
  const o = obj as Record<string, unknown>;
  for (const [name, spec] of Object.entries(fields)) {
    const optional = spec.endsWith("?");
    const kind = (optional ? spec.slice(0, -1) : spec) as FieldKind;
    if (!(name in o)) {
      if (!optional) out.errors.push(`${where}.${name}: missing`);
      continue;
    }
    if (optional && o[name] === null) continue; // block-level access events' txn_index
    if (!checkKind(kind, o[name])) {
      out.errors.push(`${where}.${name}: expected ${kind}, got ${JSON.stringify(o[name])?.slice(0, 80)}`);
    }
  }
  for (const k of Object.keys(o)) {
    if (!(k in fields) && !ignore.includes(k)) out.extra.push(`${where}.${k}`);
  }
  return true;
}

const KNOWN = new Set<string>(EVENT_NAMES);

/** Validate one event object (envelope and payload) against docs/events.md. */
export function validateEvent(ev: unknown): Validation {
  const out: Validation = { errors: [], extra: [] };
  if (!checkFields("event", ev, ENVELOPE_FIELDS, out, ["payload"])) return out;
  const name = ev.event_name;
  if (typeof name !== "string" || !KNOWN.has(name)) {
    out.errors.push(`event.event_name: unknown kind ${JSON.stringify(name)}`);
    return out;
  }
  const p = ev.payload as Record<string, unknown> | undefined;
  if (!checkFields(`${name}.payload`, p, PAYLOAD_FIELDS[name as EventName], out, ["type"])) return out;
  if (p!.type !== name) out.errors.push(`${name}.payload.type: ${JSON.stringify(p!.type)} differs from event_name`);
  if ("txn_index" in p! && "txn_idx" in ev && p!.txn_index !== ev.txn_idx) {
    out.errors.push(`${name}: payload.txn_index ${String(p!.txn_index)} != txn_idx ${String(ev.txn_idx)}`);
  }
  return out;
}

/** Validate a `Lifecycle` body. */
export function validateLifecycle(body: unknown): Validation {
  const out: Validation = { errors: [], extra: [] };
  checkFields("Lifecycle", body, LIFECYCLE_FIELDS, out);
  return out;
}

/** Validate a `ContentionData` body (with its slot, contract and edge lists). */
export function validateContentionData(body: unknown): Validation {
  const out: Validation = { errors: [], extra: [] };
  const lists = ["top_contended_slots", "top_contended_contracts", "contract_edges"];
  if (!checkFields("ContentionData", body, CONTENTION_FIELDS, out, lists)) return out;
  const sub: [string, Record<string, FieldSpec>][] = [
    ["top_contended_slots", CONTENDED_SLOT_FIELDS],
    ["top_contended_contracts", CONTENDED_CONTRACT_FIELDS],
    ["contract_edges", CONTRACT_EDGE_FIELDS],
  ];
  for (const [key, fields] of sub) {
    const v = body[key];
    if (!Array.isArray(v)) {
      out.errors.push(`ContentionData.${key}: expected array`);
      continue;
    }
    v.forEach((x, i) => checkFields(`ContentionData.${key}[${i}]`, x, fields, out));
  }
  return out;
}

/** Validate a `TopAccesses` body. */
export function validateTopAccesses(body: unknown): Validation {
  const out: Validation = { errors: [], extra: [] };
  if (!checkFields("TopAccesses", body, {}, out, ["account", "storage"])) return out;
  const acc = body.account;
  const sto = body.storage;
  if (!Array.isArray(acc)) out.errors.push("TopAccesses.account: expected array");
  else acc.forEach((x, i) => checkFields(`TopAccesses.account[${i}]`, x, { key: "address", count: "uint" }, out));
  if (!Array.isArray(sto)) out.errors.push("TopAccesses.storage: expected array");
  else
    sto.forEach((x, i) => {
      if (!checkFields(`TopAccesses.storage[${i}]`, x, { count: "uint" }, out, ["key"])) return;
      const k = x.key;
      if (!Array.isArray(k) || k.length !== 2 || !checkKind("address", k[0]) || !checkKind("hex32", k[1])) {
        out.errors.push(`TopAccesses.storage[${i}].key: expected [address, hex32]`);
      }
    });
  return out;
}

/** Validate a `Gap` body. */
export function validateGap(body: unknown): Validation {
  const out: Validation = { errors: [], extra: [] };
  checkFields("Gap", body, GAP_FIELDS, out);
  return out;
}

/** Validate a `TPS` value. */
export function validateTps(v: unknown): Validation {
  return { errors: checkKind("uint", v) ? [] : [`TPS: expected uint, got ${JSON.stringify(v)}`], extra: [] };
}

// ------------------------------------------------- compile-time: types.ts mirrors these tables

type KindType<S> = S extends `${infer K}?`
  ? KindType<K>
  : S extends "uint" | "int" | "num"
    ? number
    : S extends "bool"
      ? boolean
      : S extends "hex32list"
        ? string[]
        : S extends "lstage"
          ? string
          : string;
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type RequiredKeys<T> = { [P in keyof T]-?: object extends Pick<T, P> ? never : P }[keyof T];
type OptionalSpecKeys<S> = { [P in keyof S]: S[P] extends `${string}?` ? P : never }[keyof S];
type Widen<T> = T extends string ? string : T;
type Mirrors<T, S> =
  Equal<Exclude<keyof T, "type">, keyof S> extends true
    ? Equal<Exclude<keyof T, RequiredKeys<T> | "type">, OptionalSpecKeys<S>> extends true
      ? { [P in keyof S]: P extends keyof T ? Equal<Widen<NonNullable<T[P]>>, KindType<S[P]>> : false }[keyof S] extends true
        ? true
        : false
      : false
    : false;
type PayloadMirror = { [K in EventName]: Mirrors<PayloadMap[K], (typeof PAYLOAD_FIELDS)[K]> };
type MetaMirror = {
  Lifecycle: Mirrors<LifecycleBody, typeof LIFECYCLE_FIELDS>;
  Gap: Mirrors<GapBody, typeof GAP_FIELDS>;
  ContentionData: Mirrors<Omit<ContentionDataBody, "top_contended_slots" | "top_contended_contracts" | "contract_edges">, typeof CONTENTION_FIELDS>;
  TopAccesses: Equal<keyof TopAccessesBody, "account" | "storage">;
};
// A compile error here means types.ts and the tables above disagree (name, optionality or type).
const payloadTypesMirrorSchema: { [K in EventName]: true } = null as unknown as PayloadMirror;
const metaTypesMirrorSchema: { [K in keyof MetaMirror]: true } = null as unknown as MetaMirror;
void payloadTypesMirrorSchema;
void metaTypesMirrorSchema;
