/**
 * Resume cursors: `{epoch, seqno}`, written `"EPOCH:SEQNO"`.
 *
 * Both are plain `number`s. A ringgate epoch is the server's start time in microseconds since
 * 1970 (below 2^53 until the year 2255) and a `server_seqno` counts frames of one server run,
 * so both are exact JavaScript numbers (docs/protocol.md §3). `parseCursor` rejects anything
 * that is not a non-negative safe integer.
 */

/** A position in one server epoch: the last data `server_seqno` handed to the user. */
export interface Cursor {
  readonly epoch: number;
  readonly seqno: number;
}

/** `"EPOCH:SEQNO"`. */
export function formatCursor(c: Cursor): string {
  return `${c.epoch}:${c.seqno}`;
}

const CURSOR_RE = /^\s*(\d{1,16}):(\d{1,16})\s*$/;

/** Parse `"EPOCH:SEQNO"` (surrounding whitespace allowed). Throws `TypeError` on anything else. */
export function parseCursor(s: string): Cursor {
  const m = CURSOR_RE.exec(s);
  if (!m) throw new TypeError(`not a ringgate cursor (expected "EPOCH:SEQNO"): ${JSON.stringify(s)}`);
  const epoch = Number(m[1]);
  const seqno = Number(m[2]);
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(seqno)) {
    throw new TypeError(`cursor out of range: ${JSON.stringify(s)}`);
  }
  return Object.freeze({ epoch, seqno });
}

/** A cursor from either form (`Cursor` object or its string); validates the object form too. */
export function toCursor(c: Cursor | string): Cursor {
  if (typeof c === "string") return parseCursor(c);
  if (
    c === null ||
    typeof c !== "object" ||
    !Number.isSafeInteger(c.epoch) ||
    !Number.isSafeInteger(c.seqno) ||
    c.epoch < 0 ||
    c.seqno < 0
  ) {
    throw new TypeError(`not a ringgate cursor: ${JSON.stringify(c)}`);
  }
  return Object.freeze({ epoch: c.epoch, seqno: c.seqno });
}

export function cursorEquals(a: Cursor | null | undefined, b: Cursor | null | undefined): boolean {
  if (!a || !b) return a === b;
  return a.epoch === b.epoch && a.seqno === b.seqno;
}
