/**
 * Exact text of the events inside an `Events` frame, and exact u64 values.
 *
 * `JSON.parse` turns integers above 2^53 (every `timestamp_ns`) into rounded doubles. The
 * client keeps each event's exact JSON text (`RinggateEvent.rawJson`) by slicing the frame
 * text, and reads u64 fields from it as `bigint`.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

/**
 * The exact text of every element of the top-level `"Events"` array of a frame, in order, or
 * `null` when the frame has no such array. Handles strings and escapes; does not validate JSON
 * (the caller has parsed the frame already).
 */
export function sliceEvents(text: string): string[] | null {
  let depth = 0;
  let i = 0;
  const n = text.length;
  let arrayDepth = -1;
  let elemStart = -1;
  const out: string[] = [];
  let lastKey: string | null = null;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i += 2;
        else if (d === QUOTE) break;
        else i++;
      }
      if (depth === 1 && arrayDepth < 0) lastKey = text.slice(start + 1, i);
      if (arrayDepth >= 0 && depth === arrayDepth && elemStart < 0) {
        // a string element (not an event object): keep it as is
        out.push(text.slice(start, i + 1));
      }
      i++;
      continue;
    }
    if (c === LBRACE || c === LBRACKET) {
      if (c === LBRACKET && depth === 1 && arrayDepth < 0 && lastKey === "Events") {
        arrayDepth = depth + 1;
      } else if (arrayDepth >= 0 && depth === arrayDepth && elemStart < 0) {
        elemStart = i;
      }
      depth++;
      i++;
      continue;
    }
    if (c === RBRACE || c === RBRACKET) {
      depth--;
      if (arrayDepth >= 0 && depth === arrayDepth && elemStart >= 0) {
        out.push(text.slice(elemStart, i + 1));
        elemStart = -1;
      } else if (arrayDepth >= 0 && depth === arrayDepth - 1 && c === RBRACKET) {
        return out;
      }
      i++;
      continue;
    }
    i++;
  }
  return arrayDepth >= 0 ? out : null;
}

const fieldRes = new Map<string, RegExp>();

/**
 * The exact value of the first integer field `field` in a JSON text, as a bigint (or
 * `undefined` when absent or not an integer). Use it on `RinggateEvent.rawJson` for u64
 * fields that can exceed 2^53 (`proposal_epoch_nanos`, `timestamp_ns`).
 */
export function exactU64(json: string | { rawJson: string }, field: string): bigint | undefined {
  const text = typeof json === "string" ? json : json.rawJson;
  let re = fieldRes.get(field);
  if (!re) {
    re = new RegExp(`"${field.replace(/[^A-Za-z0-9_]/g, "")}"\\s*:\\s*(-?\\d+)(?![.\\deE])`);
    if (fieldRes.size < 256) fieldRes.set(field, re);
  }
  const m = re.exec(text);
  return m ? BigInt(m[1]!) : undefined;
}

/** `"0x3b541e0b1"` → `0x3b541e0b1n` (u256 and any hex quantity); `"0x"` → `0n`. */
export function hexToBigInt(hex: string): bigint {
  if (!/^0x[0-9a-fA-F]*$/.test(hex)) throw new TypeError(`not a hex string: ${JSON.stringify(hex)}`);
  return hex.length === 2 ? 0n : BigInt(hex);
}

/** Split `TxnLog.topics` (32-byte words concatenated) into `["0x…", …]`. */
export function splitTopics(topics: string): string[] {
  const body = topics.startsWith("0x") ? topics.slice(2) : topics;
  const out: string[] = [];
  for (let i = 0; i + 64 <= body.length; i += 64) out.push("0x" + body.slice(i, i + 64));
  return out;
}
