// Shared by the library tests: the URL and readiness file given by tests/rpc-clients/run,
// time bounds, and the checks every library's output must pass.
import { writeFileSync } from "node:fs";
import assert from "node:assert/strict";

export const RPC_URL = process.env.RPC_URL;
if (!RPC_URL) throw new Error("run through tests/rpc-clients/run (RPC_URL is not set)");

/** The Transfer(address,address,uint256) topic the synthetic chain's tokens emit. */
export const TRANSFER =
  "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/** Tells the harness to start the ring writer (the subscriptions are in place). */
export function ready() {
  writeFileSync(process.env.READY_FILE, "ready\n");
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `cond()` holds; fails after `ms` naming `what`. */
export async function until(what, cond, ms = 150000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** Block numbers as the library delivered them: never decreasing, and no height skipped
 *  (a height appears twice only when two proposals competed for it). */
export function assertHeights(numbers) {
  const ns = numbers.map(Number);
  for (let i = 1; i < ns.length; i++) {
    assert.ok(ns[i] === ns[i - 1] || ns[i] === ns[i - 1] + 1, `heights ${ns[i - 1]} then ${ns[i]}`);
  }
}

/** Logs: each (blockHash, index) once, indexes increasing within a block, each in a block
 *  the heads subscription delivered. */
export function assertLogs(logs, headHashes) {
  const seen = new Set();
  const lastIndex = new Map();
  for (const l of logs) {
    const key = `${l.blockHash}:${l.index}`;
    assert.ok(!seen.has(key), `log ${key} delivered twice`);
    seen.add(key);
    const prev = lastIndex.get(l.blockHash);
    assert.ok(prev === undefined || l.index > prev, `log index ${l.index} after ${prev} in ${l.blockHash}`);
    lastIndex.set(l.blockHash, l.index);
    if (headHashes) assert.ok(headHashes.has(l.blockHash), `log of block ${l.blockHash} that newHeads never announced`);
  }
}
