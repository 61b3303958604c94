/**
 * Subscription filters (docs/protocol.md §4, advanced subscribe) and the client-side matcher
 * that applies them until the server acknowledges the subscription.
 *
 * Why a client-side matcher: `filters` can only be sent as a `subscribe` message, after
 * `Hello`. Until the server's `Subscribed` answer, it streams by the connect-time query
 * (`events=`), and a resume replay is filtered by that query too; a replay in progress even
 * applies the new subscription only from its next chunk, so frames filtered by the query can
 * follow the `Subscribed`. The client therefore applies the same rules as the server
 * (src/serve/filter.rs) to every event of a filtered subscription, so no event that the
 * filters exclude is ever yielded (`client.stats.prefiltered` counts what it removed).
 */
import type { EventName, MinStage, SubscribableName } from "./types.js";
import { EVENT_NAMES, META_NAMES } from "./types.js";

export type TopicSlot = string | null | string[];

/** One field filter of a spec (wire form). */
export type FieldFilter =
  | { field: "address"; filter: { values: string[] } }
  | { field: "selector"; filter: { values: string[] } }
  | { field: "topics"; filter: { values: TopicSlot[] } }
  | { field: "txn_index"; filter: { min?: number; max?: number } }
  | { field: "log_index"; filter: { min?: number; max?: number } };

/** A filter spec: one event kind (or `NativeTransfer`) and its ANDed field filters. Specs of one kind are ORed. */
export interface FilterSpec {
  event_name: EventName | "NativeTransfer";
  field_filters?: FieldFilter[];
}

/** Convenience builder: `fieldFilter("address", ["0x…"])`, `fieldFilter("txn_index", {min: 0, max: 9})`. */
export function fieldFilter(field: "address" | "selector", values: string[]): FieldFilter;
export function fieldFilter(field: "topics", values: TopicSlot[]): FieldFilter;
export function fieldFilter(field: "txn_index" | "log_index", range: { min?: number; max?: number }): FieldFilter;
export function fieldFilter(
  field: FieldFilter["field"],
  arg: string[] | TopicSlot[] | { min?: number; max?: number },
): FieldFilter {
  if (field === "txn_index" || field === "log_index") {
    const r = arg as { min?: number; max?: number };
    const filter: { min?: number; max?: number } = {};
    if (r.min !== undefined) filter.min = r.min;
    if (r.max !== undefined) filter.max = r.max;
    return { field, filter };
  }
  return { field, filter: { values: arg } } as FieldFilter;
}

const EVENT_SET = new Set<string>(EVENT_NAMES);
const META_SET = new Set<string>(META_NAMES);
const NAMEABLE = new Set<string>([...EVENT_NAMES, "NativeTransfer", ...META_NAMES]);

/** Normalize `events` (array or comma string) to a de-duplicated list; validates names. */
export function normalizeEvents(events: string | readonly string[] | undefined): SubscribableName[] | undefined {
  if (events === undefined || events === null) return undefined;
  const list = typeof events === "string" ? events.split(",") : [...events];
  const out: SubscribableName[] = [];
  for (const raw of list) {
    const n = raw.trim();
    if (n === "") continue;
    if (!NAMEABLE.has(n)) {
      throw new TypeError(
        `unknown event name ${JSON.stringify(n)} (names are case-sensitive: ${[...NAMEABLE].join(", ")})`,
      );
    }
    if (!out.includes(n as SubscribableName)) out.push(n as SubscribableName);
  }
  return out;
}

/** The connect-time `events=` list: `events` plus every spec's `event_name`; undefined = channel default. */
export function queryEvents(
  events: readonly SubscribableName[] | undefined,
  filters: readonly FilterSpec[] | undefined,
): SubscribableName[] | undefined {
  if (events === undefined && (!filters || filters.length === 0)) return undefined;
  const out: SubscribableName[] = [...(events ?? [])];
  for (const f of filters ?? []) if (!out.includes(f.event_name)) out.push(f.event_name);
  return out;
}

/** The advanced subscribe message sent right after `Hello` when `filters` are given. */
export function subscribeMessage(
  events: readonly SubscribableName[] | undefined,
  filters: readonly FilterSpec[],
  minStage: MinStage | undefined,
): string {
  const sub: Record<string, unknown> = { events: events ?? [], filters };
  if (minStage !== undefined) sub.min_stage = minStage;
  return JSON.stringify({ subscribe: sub });
}

// --------------------------------------------------------------------------------- matching

function normHex(s: unknown): string | null {
  if (typeof s !== "string") return null;
  const h = s.startsWith("0x") || s.startsWith("0X") ? s.slice(2) : s;
  return h.toLowerCase();
}

type Test = (ev: Record<string, unknown>, p: Record<string, unknown>) => boolean;

function addressesOf(name: string, p: Record<string, unknown>): unknown[] {
  switch (name) {
    case "TxnHeaderStart":
      return p.is_contract_creation === true ? [p.sender] : [p.sender, p.to];
    case "TxnCallFrame":
      return [p.caller, p.call_target];
    case "TxnAuthListEntry":
      return [p.address, p.authority];
    case "TxnAccessListEntry":
    case "TxnLog":
    case "AccountAccess":
    case "StorageAccess":
      return [p.address];
    default:
      return [];
  }
}

function selectorOf(name: string, p: Record<string, unknown>): string | null {
  const data = name === "TxnHeaderStart" ? p.data : name === "TxnCallFrame" ? p.input : undefined;
  const h = normHex(data);
  return h !== null && h.length >= 8 ? h.slice(0, 8) : null;
}

function compileTest(f: FieldFilter): Test {
  const fl = (f as { filter?: Record<string, unknown> }).filter ?? {};
  switch (f.field) {
    case "address": {
      const set = new Set((fl.values as unknown[] | undefined ?? []).map(normHex));
      return (ev, p) => addressesOf(ev.event_name as string, p).some((a) => set.has(normHex(a)));
    }
    case "selector": {
      const set = new Set((fl.values as unknown[] | undefined ?? []).map(normHex));
      return (ev, p) => {
        const s = selectorOf(ev.event_name as string, p);
        return s !== null && set.has(s);
      };
    }
    case "topics": {
      const slots = ((fl.values as TopicSlot[] | undefined) ?? []).map((s) =>
        s === null ? null : new Set((Array.isArray(s) ? s : [s]).map(normHex)),
      );
      return (_ev, p) => {
        const t = normHex(p.topics) ?? "";
        const n = Math.floor(t.length / 64);
        if (slots.length > n) return false;
        return slots.every((set, i) => set === null || set.has(t.slice(i * 64, i * 64 + 64)));
      };
    }
    case "txn_index":
    case "log_index": {
      const min = typeof fl.min === "number" ? fl.min : -Infinity;
      const max = typeof fl.max === "number" ? fl.max : Infinity;
      const key = f.field === "txn_index" ? "txn_idx" : "log_index";
      return (ev, p) => {
        const v = key === "txn_idx" ? (ev.txn_idx ?? p.txn_index) : p.log_index;
        return typeof v === "number" && v >= min && v <= max;
      };
    }
    default:
      // An unknown field: the server answers with an Error frame; match nothing meanwhile.
      return () => false;
  }
}

/** The server's matching rules for one subscription (events + specs), on parsed event objects. */
export class Matcher {
  private readonly unfiltered = new Set<string>();
  private readonly specs = new Map<string, Test[][]>();
  private readonly native: boolean;
  private readonly nativeUnfiltered: boolean;

  constructor(events: readonly SubscribableName[] | undefined, filters: readonly FilterSpec[]) {
    for (const f of filters) {
      const tests = (f.field_filters ?? []).map(compileTest);
      const list = this.specs.get(f.event_name) ?? [];
      list.push(tests);
      this.specs.set(f.event_name, list);
    }
    for (const e of events ?? []) {
      if ((EVENT_SET.has(e) || e === "NativeTransfer") && !this.specs.has(e)) this.unfiltered.add(e);
    }
    this.native = this.unfiltered.has("NativeTransfer") || this.specs.has("NativeTransfer");
    this.nativeUnfiltered = this.unfiltered.has("NativeTransfer");
  }

  private anySpec(name: string, ev: Record<string, unknown>, p: Record<string, unknown>): boolean {
    const list = this.specs.get(name);
    return list !== undefined && list.some((tests) => tests.every((t) => t(ev, p)));
  }

  /** Whether the server would deliver this event under the subscription. */
  matches(ev: Record<string, unknown>): boolean {
    const name = ev.event_name as string;
    const p = (ev.payload ?? {}) as Record<string, unknown>;
    if (this.unfiltered.has(name)) return true;
    if (this.anySpec(name, ev, p)) return true;
    if (this.native && name === "TxnCallFrame") {
      const v = normHex(p.value);
      const hasValue = v !== null && /[1-9a-f]/.test(v);
      return hasValue && (this.nativeUnfiltered || this.anySpec("NativeTransfer", ev, p));
    }
    return false;
  }
}

export function isMetaName(n: string): boolean {
  return META_SET.has(n);
}
