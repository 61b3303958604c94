/**
 * What a `Client` yields: a discriminated union on `type`.
 *
 * Frame-derived items carry `serverSeqno` (the frame's `server_seqno`), `epoch` (the server
 * epoch of the connection that received it), `receivedNs` (wall clock ns when the frame
 * arrived, see clock.ts) and `raw` (the parsed JSON object, with any keys this version does not
 * know).
 */
import type { Cursor } from "./cursor.js";
import type {
  CommitStage,
  ContentionDataBody,
  EventName,
  LifecycleBody,
  PayloadMap,
  TopAccessesBody,
  WireEvent,
} from "./types.js";
import { sliceEvents } from "./rawjson.js";

interface FrameInfo {
  /** `server_seqno` of the frame that carried the item. */
  serverSeqno: number;
  /** Server epoch (from `Hello`) of the connection that received the item. */
  epoch: number;
  /** Wall-clock ns when the frame arrived (see `latencyNs` and clock.ts for precision). */
  receivedNs: bigint;
}

/** One event of an `Events` frame, typed by `eventName`. */
export interface EventOf<K extends EventName> extends FrameInfo {
  type: "event";
  eventName: K;
  blockNumber: number | undefined;
  blockId: string | undefined;
  txnIdx: number | undefined;
  txnHash: string | undefined;
  commitStage: CommitStage | undefined;
  payload: PayloadMap[K];
  /** The ring's sequence number (`seqno`). */
  seqno: number;
  /** The ring's `timestamp_ns`, exact (`raw.timestamp_ns` is rounded by JSON.parse). */
  timestampNs: bigint;
  /** Position of this event in its `Events` frame, the frame's event count, and whether it is the last. */
  frameIndex: number;
  frameSize: number;
  lastInFrame: boolean;
  /** The event object as parsed. */
  raw: WireEvent<K>;
  /** The event object exactly as the server sent it (computed on first access). */
  readonly rawJson: string;
}

/**
 * An event; narrow on `eventName` to type `payload`. A newer server may send a kind this
 * version does not know: it is still yielded (with its raw payload); `isKnownEvent()` tells.
 */
export type RinggateEvent = { [K in EventName]: EventOf<K> }[EventName];

/** Data the stream will not deliver: the server's `Gap` frame, or a client-made one. */
export interface GapItem extends FrameInfo {
  type: "gap";
  /** Server reasons: ring_lapped, payload_expired, writer_restart, shard_queue_full,
   * stage_gate_overflow, resume_window, slow_client. Client-made: resume_failed. */
  reason: string;
  /** Inclusive `server_seqno` range that will not be received, when known. */
  fromSeqno: number | undefined;
  toSeqno: number | undefined;
  /** Inclusive ring `seqno` range never read, when the loss happened before the gateway. */
  ringFromSeqno: number | undefined;
  ringToSeqno: number | undefined;
  blockNumber: number | undefined;
  blockId: string | undefined;
  /** True for a gap the client made (a resume that could not recover everything). */
  synthetic: boolean;
  /** For a synthetic gap: the server's `Resume.reason` (other_epoch, ahead_of_head, disabled, ...). */
  resumeReason: string | undefined;
  /** For a synthetic gap: the cursor the client asked to resume from. */
  previousCursor: Cursor | undefined;
  raw: unknown;
}

/** Backpressure: the server dropped frames for this connection. */
export interface WarningItem extends FrameInfo {
  type: "warning";
  warningType: string;
  dropped: number;
  totalDropped: number | undefined;
  dropLimit: number;
  droppedFromSeqno: number | undefined;
  droppedToSeqno: number | undefined;
  /** True when the client is about to reconnect and resume to get the dropped frames back. */
  recovering: boolean;
  raw: unknown;
}

/**
 * Priority lanes: the server shed frames of a lower lane for this connection so that higher
 * lanes could be kept. Every frame of `lane` this subscription selected with `serverSeqno` in
 * `fromSeqno..=toSeqno` was shed, `dropped` of them, by event name in `kinds`.
 */
export interface ShedItem extends FrameInfo {
  type: "shed";
  lane: string;
  dropped: number;
  totalShed: number | undefined;
  fromSeqno: number | undefined;
  toSeqno: number | undefined;
  ringFromSeqno: number | undefined;
  ringToSeqno: number | undefined;
  kinds: Record<string, number>;
  /** True when the client is about to reconnect and resume to get the shed frames back (`recoverShed`). */
  recovering: boolean;
  raw: unknown;
}

interface MetaBase extends FrameInfo {
  /** True for the connect-time snapshot copies (they repeat the cursor and do not move it). */
  snapshot: boolean;
  raw: unknown;
}
export interface TpsItem extends MetaBase {
  type: "tps";
  tps: number;
}
export interface LifecycleItem extends MetaBase {
  type: "lifecycle";
  body: LifecycleBody;
}
export interface ContentionDataItem extends MetaBase {
  type: "contentionData";
  body: ContentionDataBody;
}
export interface TopAccessesItem extends MetaBase {
  type: "topAccesses";
  body: TopAccessesBody;
}

/** The server's `Resume` answer to a resume request. */
export interface ResumedItem extends FrameInfo {
  type: "resumed";
  mode: string;
  reason: string | undefined;
  fromSeqno: number | undefined;
  toSeqno: number | undefined;
  recovered: boolean;
  /** The cursor the client asked to resume from (null for a `fromBlock` request). */
  requested: Cursor | null;
  raw: unknown;
}

/** The connection dropped; the client waits `delayMs` and reconnects (attempt counts from 1). */
export interface ReconnectingItem {
  type: "reconnecting";
  attempt: number;
  delayMs: number;
  reason: string;
  closeCode: number | undefined;
}

/** A `Hello`: a connection is up (the first one, or a reconnection). */
export interface ConnectedItem extends FrameInfo {
  type: "connected";
  serverVersion: string;
  wireVersion: number;
  channel: string | undefined;
  features: string[];
  limits: Record<string, number>;
  /** True for every connection after the first. */
  reconnect: boolean;
  /** The WebSocket URL (token redacted). */
  url: string;
  raw: unknown;
}

export type Item =
  | RinggateEvent
  | GapItem
  | WarningItem
  | ShedItem
  | TpsItem
  | LifecycleItem
  | ContentionDataItem
  | TopAccessesItem
  | ResumedItem
  | ReconnectingItem
  | ConnectedItem;

// --------------------------------------------------------------------------------- decoding

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Shared per Events frame: the raw text, sliced on first `rawJson` access. */
class FrameText {
  private slices: string[] | null = null;
  constructor(
    private readonly text: string,
    private readonly events: readonly unknown[],
  ) {}
  get(i: number): string {
    if (this.slices === null) {
      const s = sliceEvents(this.text);
      this.slices = s !== null && s.length === this.events.length ? s : this.events.map((e) => JSON.stringify(e));
    }
    return this.slices[i]!;
  }
}

class EventImpl {
  readonly type = "event" as const;
  readonly eventName: string;
  readonly blockNumber: number | undefined;
  readonly blockId: string | undefined;
  readonly txnIdx: number | undefined;
  readonly txnHash: string | undefined;
  readonly commitStage: CommitStage | undefined;
  readonly payload: unknown;
  readonly seqno: number;
  readonly timestampNs: bigint;
  readonly serverSeqno: number;
  readonly epoch: number;
  readonly receivedNs: bigint;
  readonly frameIndex: number;
  readonly frameSize: number;
  readonly lastInFrame: boolean;
  readonly raw: Record<string, unknown>;
  readonly #frame: FrameText;
  constructor(
    raw: Record<string, unknown>,
    ts: bigint | undefined,
    frame: FrameText,
    i: number,
    n: number,
    serverSeqno: number,
    epoch: number,
    receivedNs: bigint,
  ) {
    this.eventName = String(raw.event_name);
    this.blockNumber = num(raw.block_number);
    this.blockId = str(raw.block_id);
    this.txnIdx = num(raw.txn_idx);
    this.txnHash = str(raw.txn_hash);
    this.commitStage = str(raw.commit_stage) as CommitStage | undefined;
    this.payload = raw.payload;
    this.seqno = num(raw.seqno) ?? 0;
    this.timestampNs = ts ?? (typeof raw.timestamp_ns === "number" ? BigInt(Math.round(raw.timestamp_ns)) : 0n);
    this.serverSeqno = serverSeqno;
    this.epoch = epoch;
    this.receivedNs = receivedNs;
    this.frameIndex = i;
    this.frameSize = n;
    this.lastInFrame = i === n - 1;
    this.raw = raw;
    this.#frame = frame;
  }
  get rawJson(): string {
    return this.#frame.get(this.frameIndex);
  }
}

const TS_RE = /"timestamp_ns"\s*:\s*(\d+)/g;

/** Decode the events of an `Events` frame (`events` = the parsed array, `text` = the frame text). */
export function decodeEvents(
  text: string,
  events: unknown[],
  serverSeqno: number,
  epoch: number,
  receivedNs: bigint,
): RinggateEvent[] {
  // Exact timestamps: one "timestamp_ns" key per event (payloads have none), in order.
  const ts: bigint[] = [];
  TS_RE.lastIndex = 0;
  for (let m = TS_RE.exec(text); m !== null; m = TS_RE.exec(text)) ts.push(BigInt(m[1]!));
  const exact = ts.length === events.length;
  const frame = new FrameText(text, events);
  if (!exact) {
    // A newer server with another "timestamp_ns" key somewhere: take each event's last one.
    ts.length = 0;
    for (let i = 0; i < events.length; i++) {
      const all = [...frame.get(i).matchAll(TS_RE)];
      const last = all[all.length - 1];
      ts.push(last ? BigInt(last[1]!) : -1n);
    }
  }
  const out: RinggateEvent[] = [];
  const n = events.length;
  for (let i = 0; i < n; i++) {
    const raw = events[i];
    if (raw === null || typeof raw !== "object") continue;
    out.push(
      new EventImpl(
        raw as Record<string, unknown>,
        ts[i]! >= 0n ? ts[i] : undefined,
        frame,
        i,
        n,
        serverSeqno,
        epoch,
        receivedNs,
      ) as unknown as RinggateEvent,
    );
  }
  return out;
}

export function decodeGap(body: unknown, raw: unknown, serverSeqno: number, epoch: number, receivedNs: bigint): GapItem {
  const b = (body ?? {}) as Record<string, unknown>;
  return {
    type: "gap",
    reason: str(b.reason) ?? "unknown",
    fromSeqno: num(b.from_seqno),
    toSeqno: num(b.to_seqno),
    ringFromSeqno: num(b.ring_from_seqno),
    ringToSeqno: num(b.ring_to_seqno),
    blockNumber: num(b.block_number),
    blockId: str(b.block_id),
    synthetic: false,
    resumeReason: undefined,
    previousCursor: undefined,
    serverSeqno,
    epoch,
    receivedNs,
    raw,
  };
}

export function decodeWarning(
  body: unknown,
  raw: unknown,
  serverSeqno: number,
  epoch: number,
  receivedNs: bigint,
): WarningItem {
  const b = (body ?? {}) as Record<string, unknown>;
  return {
    type: "warning",
    warningType: str(b.type) ?? "backpressure",
    dropped: num(b.dropped) ?? 0,
    totalDropped: num(b.total_dropped),
    dropLimit: num(b.drop_limit) ?? 0,
    droppedFromSeqno: num(b.dropped_from_seqno),
    droppedToSeqno: num(b.dropped_to_seqno),
    recovering: false,
    serverSeqno,
    epoch,
    receivedNs,
    raw,
  };
}

/** The meta frame keys and their item types. */
export const META_KEYS = {
  TPS: "tps",
  Lifecycle: "lifecycle",
  ContentionData: "contentionData",
  TopAccesses: "topAccesses",
} as const;

export function decodeMeta(
  key: keyof typeof META_KEYS,
  body: unknown,
  raw: unknown,
  serverSeqno: number,
  epoch: number,
  receivedNs: bigint,
  snapshot: boolean,
): TpsItem | LifecycleItem | ContentionDataItem | TopAccessesItem {
  const base = { serverSeqno, epoch, receivedNs, snapshot, raw };
  switch (key) {
    case "TPS":
      return { type: "tps", tps: typeof body === "number" ? body : Number(body), ...base };
    case "Lifecycle":
      return { type: "lifecycle", body: body as LifecycleBody, ...base };
    case "ContentionData":
      return { type: "contentionData", body: body as ContentionDataBody, ...base };
    case "TopAccesses":
      return { type: "topAccesses", body: body as TopAccessesBody, ...base };
  }
}

export function decodeShed(
  body: unknown,
  raw: unknown,
  serverSeqno: number,
  epoch: number,
  receivedNs: bigint,
): ShedItem {
  const b = (body ?? {}) as Record<string, unknown>;
  const kinds: Record<string, number> = {};
  if (b.kinds !== null && typeof b.kinds === "object") {
    for (const [k, v] of Object.entries(b.kinds as Record<string, unknown>)) {
      if (typeof v === "number") kinds[k] = v;
    }
  }
  return {
    type: "shed",
    lane: str(b.lane) ?? "",
    dropped: num(b.dropped) ?? 0,
    totalShed: num(b.total_shed),
    fromSeqno: num(b.from_seqno),
    toSeqno: num(b.to_seqno),
    ringFromSeqno: num(b.ring_from_seqno),
    ringToSeqno: num(b.ring_to_seqno),
    kinds,
    recovering: false,
    serverSeqno,
    epoch,
    receivedNs,
    raw,
  };
}
