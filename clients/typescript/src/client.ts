/**
 * The ringgate client: connect, subscribe, iterate typed items, reconnect and resume exactly.
 *
 * Cursor rules (docs/protocol.md §2, docs/decisions/resume-rules.md):
 *
 * - Data frames (`Events`, `TPS`, `ContentionData`, `TopAccesses`, `Lifecycle`, `Gap`) carry
 *   strictly increasing `server_seqno`s, unique within a server epoch; an `Events` frame
 *   carries the highest seqno of its events. Per-connection messages (`Hello`, `Resume`,
 *   `Subscribed`, `Error`, `Warning`, the connect-time snapshot) repeat the session's cursor.
 * - `client.cursor` is `{epoch, seqno}` of the last data frame handed to the user. For an
 *   `Events` frame it moves when the frame's last event is handed out (`lastInFrame`). It
 *   starts at the `Hello` seqno, so a connection that drops before its first data frame still
 *   resumes exactly.
 * - On reconnect the client sends `resume_from=<seqno>&epoch=<epoch>` and drops every data
 *   frame whose seqno is <= the cursor in the same epoch.
 * - A resume that cannot recover (`Resume.recovered` false: other epoch, too old, ahead of
 *   head, resume disabled) is surfaced as a `gap`: the server's `resume_window` Gap when it
 *   sends one (too old), else a client-made gap with reason `resume_failed`.
 * - A backpressure `Warning` naming a dropped range is yielded with `recovering: true`, then the
 *   client reconnects and resumes from its cursor (the last frame before the loss), so the
 *   server replays the dropped frames (a replay is flow controlled and never dropped).
 * - A priority-lane `Shed` report is yielded as a `shed` item; with `reconnect` and
 *   `recoverShed` (both default true) it is recovered the same way (the server announces a
 *   shed run before its cursor passes the run's first frame, so the replay holds every shed
 *   frame). `recoverShed: false` keeps the connection: the server's lanes keep block-level
 *   events flowing to a reader that cannot take everything, and the shed frames are lost to
 *   it, announced by the item.
 */
import type { Cursor } from "./cursor.js";
import { toCursor } from "./cursor.js";
import {
  ConnectError,
  ConnectionLost,
  NotRinggateError,
  ProtocolError,
  RinggateError,
  SubscriptionError,
} from "./errors.js";
import type { FilterSpec } from "./filters.js";
import { Matcher, normalizeEvents, queryEvents, subscribeMessage } from "./filters.js";
import type { ConnectedItem, GapItem, Item, ReconnectingItem, ResumedItem, RinggateEvent, ShedItem, WarningItem } from "./items.js";
import { META_KEYS, decodeEvents, decodeGap, decodeMeta, decodeShed, decodeWarning } from "./items.js";
import type { Transport } from "./transport.js";
import { isNode, openTransport, redact } from "./transport.js";
import type { MinStage, SubscribableName, SubscribedBody } from "./types.js";
import { EVENT_NAMES } from "./types.js";
import { nowNs } from "./clock.js";
import { VERSION } from "./version.js";

export const CHANNELS = ["all", "blocks", "txs", "contention", "lifecycle"] as const;
export type Channel = (typeof CHANNELS)[number];
export const MIN_STAGES = ["Proposed", "Voted", "Finalized", "Verified"] as const;

export interface ConnectOptions {
  /** `all` (default), `blocks`, `txs`, `contention` or `lifecycle`: selects `/v1/ws/<channel>`. */
  channel?: Channel;
  /** Event names, `NativeTransfer` and meta items (`TPS`, `ContentionData`, `TopAccesses`,
   * `Lifecycle`), as an array or a comma string. Sent as `events=` at connect. */
  events?: readonly SubscribableName[] | string;
  /** Filter specs (advanced subscribe), sent as a `subscribe` message right after `Hello`. */
  filters?: readonly FilterSpec[];
  /** Release gate, sent as `min_stage=` at connect (and in the subscribe message). */
  minStage?: MinStage;
  /** Access key: `Authorization: Bearer` under Node, `?token=` in browsers. */
  token?: string;
  /** Resume from this cursor (`{epoch, seqno}` or `"EPOCH:SEQNO"`) on the first connection. */
  fromCursor?: Cursor | string;
  /** Start from the first stored event of this block (only without `fromCursor`). */
  fromBlock?: number;
  /** Reconnect and resume on any drop (default true). */
  reconnect?: boolean;
  /** Resume from the cursor on a priority-lane `Shed` report, so nothing is lost (default true). */
  recoverShed?: boolean;
  /** Full-jitter back-off: delay = random(0, min(max, initial * 2^(attempt-1))). Defaults 100 / 5000 ms. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** TCP + WebSocket handshake timeout, and then the wait for `Hello` (default 10000 ms each). */
  openTimeoutMs?: number;
  /** Node only: ping interval; the connection is dropped after two silent intervals (default 15000, 0 = off). */
  keepaliveMs?: number;
  /** Largest frame accepted (Node), default 64 MiB. */
  maxFrameBytes?: number;
}

/** Counters, for monitoring. */
export interface ClientStats {
  connections: number;
  reconnects: number;
  frames: number;
  events: number;
  gaps: number;
  warnings: number;
  sheds: number;
  duplicatesDropped: number;
  prefiltered: number;
}

/** `(nowNs ?? event.receivedNs) - event.timestampNs`: ring timestamp to receive time, in ns. */
export function latencyNs(event: Pick<RinggateEvent, "receivedNs" | "timestampNs">, nowNs?: bigint | number): number {
  const end = nowNs === undefined ? event.receivedNs : typeof nowNs === "bigint" ? nowNs : BigInt(Math.round(nowNs));
  return Number(end - event.timestampNs);
}

const KNOWN_EVENTS = new Set<string>(EVENT_NAMES);
/** Whether this client version knows the event's kind (a newer server may send more). */
export function isKnownEvent(ev: { eventName: string }): boolean {
  return KNOWN_EVENTS.has(ev.eventName);
}

const RESUME_QUERY = new Set(["resume_from", "epoch", "from_block"]);

/** The WebSocket URL for a base (`ws://host:port`) or full (`…/v1/ws/txs`) URL, channel and query. */
export function buildUrl(url: string, channel: Channel | undefined, params: [string, string][]): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(url)}`);
  }
  const scheme = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" }[u.protocol];
  if (!scheme) throw new TypeError(`url must be ws://, wss://, http:// or https://, got ${JSON.stringify(url)}`);
  if (channel !== undefined && !(CHANNELS as readonly string[]).includes(channel)) {
    throw new TypeError(`channel must be one of ${CHANNELS.join(", ")}, got ${JSON.stringify(channel)}`);
  }
  const segs = u.pathname.replace(/\/+$/, "").split("/");
  let prefix: string;
  let current: string | undefined;
  const n = segs.length;
  if (n >= 2 && segs[n - 2] === "v1" && segs[n - 1] === "ws") {
    prefix = segs.slice(0, -2).join("/");
  } else if (n >= 3 && segs[n - 3] === "v1" && segs[n - 2] === "ws") {
    prefix = segs.slice(0, -3).join("/");
    current = segs[n - 1];
  } else {
    prefix = segs.join("/");
  }
  const ch = channel ?? current ?? "all";
  const path = `${prefix}/v1/ws${ch === "all" ? "" : `/${ch}`}`;
  const query: string[] = [];
  const ours = new Set(params.map(([k]) => k));
  for (const [k, v] of new URLSearchParams(u.search)) {
    // The client owns the resume parameters; `events` / `min_stage` written in the URL are
    // kept unless the options set them.
    if (RESUME_QUERY.has(k) || ours.has(k)) continue;
    query.push(`${encodeURIComponent(k)}=${encodeURIComponent(v).replace(/%2C/gi, ",")}`);
  }
  for (const [k, v] of params) query.push(`${k}=${encodeURIComponent(v).replace(/%2C/gi, ",")}`);
  return `${scheme}//${u.host}${path}${query.length ? `?${query.join("&")}` : ""}`;
}

/** Create a client. Nothing is sent until it is iterated; connection errors surface from the iteration. */
export function connect(url: string, options: ConnectOptions = {}): Client {
  return new Client(url, options);
}

interface Conn {
  transport: Transport;
  url: string;
  epoch: number;
  helloSeqno: number;
  liveSeen: boolean;
  acked: boolean;
  expectServerGap: boolean;
  resumeGap: GapItem | null;
  recover: boolean;
  features: Set<string>;
}

interface Pending {
  item: Item | null;
  advance: Cursor | null;
}

export class Client implements AsyncIterable<Item> {
  private readonly baseUrl: string;
  private readonly channel: Channel | undefined;
  private readonly events: SubscribableName[] | undefined;
  private readonly filters: FilterSpec[] | undefined;
  private readonly minStage: MinStage | undefined;
  private readonly token: string | undefined;
  private readonly fromBlock: number | undefined;
  private readonly reconnect: boolean;
  private readonly recoverShed: boolean;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly openTimeoutMs: number;
  private readonly keepaliveMs: number;
  private readonly maxFrameBytes: number;
  private readonly matcher: Matcher | null;

  /** Last data frame handed to the user. */
  private _cursor: Cursor | null;
  /** The cursor once every queued item is handed out (de-duplication and resume use it). */
  private horizon: Cursor | null;
  private readonly pending: Pending[] = [];
  private pendingHead = 0;
  private conn: Conn | null = null;
  private gen: AsyncGenerator<Item, void, undefined> | null = null;
  private resumeRequested: Cursor | null = null;
  private closing = false;
  private wakeSleeper: (() => void) | null = null;
  private opening: Transport | null = null;
  private connections = 0;

  /** The last `Subscribed` body (when `filters` were given). */
  subscription: SubscribedBody | null = null;
  /** Counters. */
  readonly stats: ClientStats = {
    connections: 0,
    reconnects: 0,
    frames: 0,
    events: 0,
    gaps: 0,
    warnings: 0,
    sheds: 0,
    duplicatesDropped: 0,
    prefiltered: 0,
  };

  constructor(url: string, options: ConnectOptions = {}) {
    const o = options;
    if (o.minStage !== undefined && !(MIN_STAGES as readonly string[]).includes(o.minStage)) {
      throw new TypeError(`minStage must be one of ${MIN_STAGES.join(", ")}, got ${JSON.stringify(o.minStage)}`);
    }
    this.backoffInitialMs = o.backoffInitialMs ?? 100;
    this.backoffMaxMs = o.backoffMaxMs ?? 5000;
    if (!(this.backoffInitialMs > 0) || !(this.backoffMaxMs >= this.backoffInitialMs)) {
      throw new TypeError("need 0 < backoffInitialMs <= backoffMaxMs");
    }
    this.baseUrl = url;
    this.channel = o.channel;
    this.events = normalizeEvents(o.events as string | readonly string[] | undefined);
    this.filters = o.filters && o.filters.length ? o.filters.map((f) => ({ ...f })) : undefined;
    this.minStage = o.minStage;
    this.token = o.token;
    this.fromBlock = o.fromBlock;
    this.reconnect = o.reconnect ?? true;
    this.recoverShed = o.recoverShed ?? true;
    this.openTimeoutMs = o.openTimeoutMs ?? 10_000;
    this.keepaliveMs = o.keepaliveMs ?? 15_000;
    this.maxFrameBytes = o.maxFrameBytes ?? 64 * 1024 * 1024;
    this.matcher = this.filters ? new Matcher(this.events, this.filters) : null;
    this._cursor = o.fromCursor !== undefined && o.fromCursor !== null ? toCursor(o.fromCursor) : null;
    this.horizon = this._cursor;
    buildUrl(url, this.channel, []); // validate early
  }

  // ------------------------------------------------------------------ public API

  /** `{epoch, seqno}` of the last data frame handed out (null before the first `Hello`). */
  get cursor(): Cursor | null {
    return this._cursor;
  }

  /** The epoch of the current connection (undefined when not connected). */
  get epoch(): number | undefined {
    return this.conn?.epoch;
  }

  /** The WebSocket URL without resume parameters. */
  get url(): string {
    return redact(buildUrl(this.baseUrl, this.channel, this.query(null)));
  }

  [Symbol.asyncIterator](): AsyncGenerator<Item, void, undefined> {
    this.gen ??= this.run();
    return this.gen;
  }

  /** The next item (same as one step of `for await`); `undefined` once the client is closed. */
  async next(): Promise<Item | undefined> {
    const r = await this[Symbol.asyncIterator]().next();
    return r.done ? undefined : r.value;
  }

  /** Close the connection. A pending or later iteration step ends the iteration. */
  async close(): Promise<void> {
    this.closing = true;
    this.wakeSleeper?.();
    this.opening?.abort();
    this.conn?.transport.close(1000, "client closing");
  }

  // ------------------------------------------------------------------ connection

  private query(resume: Cursor | null): [string, string][] {
    const q: [string, string][] = [];
    if (resume !== null) {
      q.push(["resume_from", String(resume.seqno)], ["epoch", String(resume.epoch)]);
    } else if (this.fromBlock !== undefined && this.connections === 0) {
      q.push(["from_block", String(this.fromBlock)]);
    }
    const names = queryEvents(this.events, this.filters);
    if (names !== undefined) q.push(["events", names.join(",")]);
    if (this.minStage !== undefined) q.push(["min_stage", this.minStage]);
    // ringgate's meta shapes (block_id, parallel_speedup, ...; docs/protocol.md §9).
    q.push(["extended", "1"]);
    return q;
  }

  private async open(): Promise<void> {
    const resume = this.horizon;
    const url = buildUrl(this.baseUrl, this.channel, this.query(resume));
    const where = redact(url);
    const transport = await openTransport(url, {
      token: this.token,
      openTimeoutMs: this.openTimeoutMs,
      keepaliveMs: this.keepaliveMs,
      userAgent: `ringgate-client-typescript/${VERSION} (${isNode ? `node ${process.version}` : "browser"})`,
      maxPayload: this.maxFrameBytes,
    });
    if (this.closing) {
      transport.abort();
      return;
    }
    this.opening = transport; // close() while waiting for Hello drops it
    let hello: { server_seqno: number; Hello: Record<string, unknown> };
    try {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const first = await Promise.race([
        transport.next(),
        new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), this.openTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (first === "timeout") {
        throw new NotRinggateError(
          `${where}: no Hello frame within ${this.openTimeoutMs} ms; is this a ringgate gateway?`,
          { url: where, transient: this.connections > 0 },
        );
      }
      if (first.kind === "close") {
        throw new ConnectError(
          `${where}: closed before Hello (${closeText(first.code, first.reason, first.error)})`,
          { url: where, transient: true },
        );
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(first.text);
      } catch {
        throw new NotRinggateError(
          `${where}: first frame is not JSON (${JSON.stringify(first.text.slice(0, 80))}); is this a ringgate gateway?`,
          { url: where },
        );
      }
      const h = parsed as { server_seqno?: unknown; Hello?: unknown };
      if (
        parsed === null ||
        typeof parsed !== "object" ||
        typeof h.server_seqno !== "number" ||
        h.Hello === null ||
        typeof h.Hello !== "object"
      ) {
        throw new NotRinggateError(
          `${where}: first frame is not a ringgate Hello (${JSON.stringify(first.text.slice(0, 80))})`,
          { url: where },
        );
      }
      hello = parsed as typeof hello;
      if (typeof hello.Hello.epoch !== "number") {
        throw new NotRinggateError(`${where}: Hello without an epoch (server too old for this client)`, { url: where });
      }
      if (this.filters) {
        transport.send(subscribeMessage(this.events, this.filters, this.minStage));
      }
      const conn: Conn = {
        transport,
        url: where,
        epoch: hello.Hello.epoch as number,
        helloSeqno: hello.server_seqno,
        liveSeen: false,
        acked: !this.filters,
        expectServerGap: false,
        resumeGap: null,
        recover: false,
        features: new Set(Array.isArray(hello.Hello.features) ? (hello.Hello.features as string[]) : []),
      };
      const body = hello.Hello;
      const item: ConnectedItem = {
        type: "connected",
        epoch: conn.epoch,
        serverVersion: String(body.server_version ?? ""),
        wireVersion: typeof body.wire_version === "number" ? body.wire_version : 0,
        channel: typeof body.channel === "string" ? body.channel : undefined,
        features: [...conn.features],
        limits: (body.limits as Record<string, number> | undefined) ?? {},
        serverSeqno: hello.server_seqno,
        reconnect: this.connections > 0,
        url: where,
        receivedNs: first.receivedNs,
        raw: parsed,
      };
      this.conn = conn;
      this.connections++;
      this.stats.connections++;
      this.resumeRequested = resume;
      // Hello carries the session's starting cursor: where this session resumes from.
      this.push(item, { epoch: conn.epoch, seqno: hello.server_seqno });
    } catch (e) {
      transport.abort();
      if (this.closing) return;
      throw e;
    } finally {
      this.opening = null;
    }
  }

  // ------------------------------------------------------------------ frames

  private push(item: Item | null, advance: Cursor | null): void {
    this.pending.push({ item, advance });
    if (advance !== null) this.horizon = advance;
  }

  private isDup(epoch: number, seqno: number): boolean {
    const h = this.horizon;
    return h !== null && h.epoch === epoch && seqno <= h.seqno;
  }

  /**
   * Hands out a `Warning` (dropped frames) or `Shed` (shed frames) notice, marked `recovering`
   * when the client will resume from its cursor to get the lost frames back: reconnecting, the
   * loss has a range, the server can resume, and the caller wants it.
   */
  private lossNotice(conn: Conn, notice: WarningItem | ShedItem, lostFrom: number | undefined, wanted: boolean): void {
    if (wanted && this.reconnect && lostFrom !== undefined && !this.closing && conn.features.has("resume")) {
      notice.recovering = true;
      conn.recover = true;
    }
    this.push(notice, null);
  }

  private flushResumeGap(conn: Conn): void {
    if (conn.resumeGap !== null) {
      this.push(conn.resumeGap, null);
      this.stats.gaps++;
      conn.resumeGap = null;
    }
    conn.expectServerGap = false;
  }

  private handle(conn: Conn, text: string, receivedNs: bigint): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ProtocolError(`${conn.url}: frame is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
    }
    if (frame === null || typeof frame !== "object" || Array.isArray(frame)) {
      throw new ProtocolError(`${conn.url}: frame is not a JSON object`);
    }
    const s = frame.server_seqno;
    let key: string | undefined;
    for (const k in frame) {
      if (k !== "server_seqno") {
        key = k;
        break;
      }
    }
    if (typeof s !== "number" || key === undefined) {
      throw new ProtocolError(`${conn.url}: frame without server_seqno or message: ${JSON.stringify(text.slice(0, 80))}`);
    }
    const body = frame[key];
    const epoch = conn.epoch;
    this.stats.frames++;

    if (key === "Events" || key === "Gap" || key in META_KEYS) {
      if (key in META_KEYS && s === conn.helloSeqno && !conn.liveSeen) {
        // Connect-time snapshot: a per-connection copy stamped with the cursor.
        this.push(decodeMeta(key as keyof typeof META_KEYS, body, frame, s, epoch, receivedNs, true), null);
        return;
      }
      if (this.isDup(epoch, s)) {
        this.stats.duplicatesDropped++;
        return;
      }
      conn.liveSeen = true;
      const advance: Cursor = { epoch, seqno: s };
      if (key === "Gap") {
        const gap = decodeGap(body, frame, s, epoch, receivedNs);
        if (conn.expectServerGap && gap.reason === "resume_window") conn.resumeGap = null; // the server's Gap says exactly what was lost
        this.flushResumeGap(conn);
        this.stats.gaps++;
        this.push(gap, advance);
        return;
      }
      this.flushResumeGap(conn);
      if (key === "Events") {
        if (!Array.isArray(body)) throw new ProtocolError(`${conn.url}: Events body is not an array`);
        let evs = decodeEvents(text, body, s, epoch, receivedNs);
        // The filters are applied here too, for every frame: before the server's `Subscribed`
        // it streams by the connect-time query, and during a resume replay frames filtered by
        // that query can still follow the `Subscribed` (the replay applies a new subscription
        // from its next chunk only). The matcher mirrors src/serve/filter.rs.
        if (this.matcher !== null) {
          const m = this.matcher;
          const kept = evs.filter((e) => m.matches(e.raw as unknown as Record<string, unknown>));
          this.stats.prefiltered += evs.length - kept.length;
          evs = kept;
        }
        if (evs.length === 0) {
          this.push(null, advance);
          return;
        }
        this.stats.events += evs.length;
        const last = evs.length - 1;
        for (let i = 0; i < evs.length; i++) this.push(evs[i]!, i === last ? advance : null);
        return;
      }
      this.push(decodeMeta(key as keyof typeof META_KEYS, body, frame, s, epoch, receivedNs, false), advance);
      return;
    }

    switch (key) {
      case "Resume": {
        const b = (body ?? {}) as Record<string, unknown>;
        const requested = this.resumeRequested;
        const recovered = b.recovered === true || (b.recovered === undefined && b.mode === "resume");
        const res: ResumedItem = {
          type: "resumed",
          mode: String(b.mode ?? ""),
          reason: typeof b.reason === "string" ? b.reason : undefined,
          fromSeqno: typeof b.from_seqno === "number" ? b.from_seqno : undefined,
          toSeqno: typeof b.to_seqno === "number" ? b.to_seqno : undefined,
          recovered,
          requested,
          serverSeqno: s,
          epoch: typeof b.epoch === "number" ? b.epoch : epoch,
          receivedNs,
          raw: frame,
        };
        this.push(res, null);
        if (!recovered) {
          const sameEpoch = requested !== null && requested.epoch === epoch;
          conn.resumeGap = {
            type: "gap",
            reason: "resume_failed",
            fromSeqno: sameEpoch ? requested.seqno + 1 : undefined,
            toSeqno: undefined,
            ringFromSeqno: undefined,
            ringToSeqno: undefined,
            blockNumber: undefined,
            blockId: undefined,
            synthetic: true,
            resumeReason: res.reason,
            previousCursor: requested ?? undefined,
            serverSeqno: s,
            epoch,
            receivedNs,
            raw: {},
          };
          if (res.reason === "too_old") conn.expectServerGap = true; // its resume_window Gap comes next
          else this.flushResumeGap(conn);
        }
        return;
      }
      case "Warning": {
        const w = decodeWarning(body, frame, s, epoch, receivedNs);
        this.stats.warnings++;
        this.lossNotice(conn, w, w.droppedFromSeqno, true);
        return;
      }
      case "Shed": {
        const shed = decodeShed(body, frame, s, epoch, receivedNs);
        this.stats.sheds++;
        this.lossNotice(conn, shed, shed.fromSeqno, this.recoverShed);
        return;
      }
      case "Subscribed":
        conn.acked = true;
        this.subscription = body as SubscribedBody;
        return;
      case "Error": {
        const b = (body ?? {}) as Record<string, unknown>;
        throw new SubscriptionError(String(b.code ?? "error"), String(b.message ?? JSON.stringify(body)), body);
      }
      default:
        return; // Hello repeated, or a message type this version does not know
    }
  }

  // ------------------------------------------------------------------ main loop

  private backoff(attempt: number): number {
    const cap = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** Math.min(attempt - 1, 30));
    return Math.random() * cap; // full jitter
  }

  /** Sleep `ms`; resolves true when `close()` interrupted it. */
  private sleep(ms: number): Promise<boolean> {
    if (this.closing) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeSleeper = null;
        resolve(false);
      }, ms);
      this.wakeSleeper = () => {
        clearTimeout(t);
        this.wakeSleeper = null;
        resolve(true);
      };
    });
  }

  private async *run(): AsyncGenerator<Item, void, undefined> {
    try {
      yield* this.items();
    } finally {
      // Also reached on `break` out of a for-await: never leak the socket.
      this.closing = true;
      this.conn?.transport.abort();
      this.wakeSleeper?.();
    }
  }

  private async *items(): AsyncGenerator<Item, void, undefined> {
    if (this.closing) return;
    await this.open();
    for (;;) {
      while (this.pendingHead < this.pending.length) {
        const p = this.pending[this.pendingHead++]!;
        if (p.advance !== null) this._cursor = p.advance;
        if (p.item !== null) yield p.item;
      }
      this.pending.length = 0;
      this.pendingHead = 0;
      if (this.closing) return;
      const conn = this.conn!;
      let reason: string;
      let code: number | undefined;
      if (conn.recover) {
        reason = "resume after backpressure drops or shed frames";
        code = undefined;
        conn.transport.close(1000, "resuming");
      } else {
        const msg = await conn.transport.next();
        if (msg.kind === "message") {
          try {
            this.handle(conn, msg.text, msg.receivedNs);
          } catch (e) {
            conn.transport.abort();
            throw e;
          }
          continue;
        }
        if (this.closing) return;
        code = msg.code;
        reason = `connection closed (${closeText(msg.code, msg.reason, msg.error)})`;
        if (!this.reconnect) {
          if (code === 1000 || code === 1001) return;
          throw new ConnectionLost(`${conn.url}: ${reason}`, code, msg.reason);
        }
      }

      // ---- reconnect with full-jitter back-off
      this.stats.reconnects++;
      for (let attempt = 1; ; attempt++) {
        const delayMs = this.backoff(attempt);
        const r: ReconnectingItem = { type: "reconnecting", attempt, delayMs, reason, closeCode: code };
        yield r;
        if (this.closing) return;
        if (await this.sleep(delayMs)) return;
        try {
          await this.open();
          break;
        } catch (e) {
          if (e instanceof ConnectError && e.transient && !this.closing) {
            reason = e.message;
            code = undefined;
            continue;
          }
          if (this.closing) return;
          throw e;
        }
      }
      if (this.closing) return;
    }
  }
}

function closeText(code: number | undefined, reason: string, error?: Error): string {
  let s = code === undefined ? "no close code" : `code ${code}`;
  if (code === 1006) s += ", abnormal closure";
  if (reason) s += `: ${reason}`;
  if (error) s += `; ${error.message}`;
  return s;
}

export { RinggateError };
