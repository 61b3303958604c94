// A REAL gateway with a durable history (`--history-dir`) killed (SIGKILL) or stopped (SIGTERM)
// while the client consumes, the ring written while it is down, and started again on the same
// port with the same history dir and ring: the client reconnects by itself, resumes in the same
// epoch (the restarted gateway adopts the journal's epoch and continues its seqnos, see
// docs/decisions/0003-durable-history.md) and yields every ring event exactly once: no gap, no
// duplicate, no hole.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect } from "../dist/index.js";
import { requireBinary, sleep, startServer, within } from "./helpers.mjs";

let base;
before(async () => {
  // Its writer keeps writing the ring the gateways under test read.
  base = await startServer({ rate: 2000 });
});
after(async () => {
  await base?.stop();
});

/** The newest seqno the writer has put in the ring (`ringgate inspect`). */
async function ringLastSeqno(ring) {
  const { stdout } = await promisify(execFile)(requireBinary(), ["inspect", ring], { timeout: 30000 });
  const m = /^# last_seqno\s+(\d+)/m.exec(stdout);
  assert.ok(m, `no last_seqno in \`ringgate inspect\`:\n${stdout}`);
  return Number(m[1]);
}

async function until(what, cond, ms = 30000) {
  await within(ms, what, (async () => {
    while (!(await cond())) await sleep(10);
  })());
}

describe("a gateway restarted with its history dir", () => {
  for (const signal of ["SIGKILL", "SIGTERM"]) {
    test(`${signal} mid-stream, events written while down, restart on the same port: every event exactly once`, { timeout: 90000 }, async (t) => {
      const history = mkdtempSync(join(tmpdir(), "ringgate-ts-history-"));
      const serveArgs = ["--history-dir", history];
      const first = await startServer({ ring: base.ring, serveArgs });
      let again;
      const items = [];
      let stopAt = Infinity;
      const c = connect(first.url, { backoffInitialMs: 20, backoffMaxMs: 200 });
      const consumed = (async () => {
        for await (const it of c) {
          items.push(it);
          if (it.type === "event" && it.seqno >= stopAt) break;
        }
      })();
      consumed.catch(() => {});
      let atHalt, down;
      try {
        await until("500 events consumed", () => items.filter((i) => i.type === "event").length >= 500);
        // Mid-stream: the writer goes on, the client is reading.
        const exit = await first.halt(signal);
        if (signal === "SIGTERM") assert.equal(exit.code, 0, `SIGTERM exits cleanly: ${JSON.stringify(exit)}\n${first.log()}`);
        atHalt = await ringLastSeqno(base.ring);
        await until("the client saw the drop", () => items.some((i) => i.type === "reconnecting"));
        // 1,000 more events written while the gateway is down.
        await until("events written while down", async () => (down = await ringLastSeqno(base.ring)) >= atHalt + 1000);
        again = await startServer({ ring: base.ring, serveArgs, port: first.port });
        assert.equal(again.epoch, first.epoch, "the journal's epoch");
        // Then live events of the restarted gateway.
        stopAt = down + 2000;
        await within(45000, "the client reached the restarted gateway's live events", consumed);
      } finally {
        await c.close();
        await first.stop();
        await again?.stop();
        rmSync(history, { recursive: true, force: true });
      }

      const gaps = items.filter((i) => i.type === "gap");
      assert.deepEqual(gaps, [], "no gap");
      const back = items.filter((i) => i.type === "connected" && i.reconnect);
      assert.ok(back.length > 0 && back.every((h) => h.epoch === first.epoch), JSON.stringify(back.map((h) => h.epoch)));
      const resumed = items.filter((i) => i.type === "resumed" && i.requested);
      assert.ok(resumed.length > 0 && resumed.every((r) => r.recovered && r.mode === "resume"), JSON.stringify(resumed.map((r) => r.raw)));
      const seqs = items.filter((i) => i.type === "event").map((e) => e.seqno);
      const gone = items.findIndex((i) => i.type === "reconnecting");
      const before = items.slice(0, gone).filter((i) => i.type === "event").map((e) => e.seqno);
      // The gateway never read past what the ring held when it went: the events written while
      // it was down, (atHalt, down], reached the client only after it reconnected.
      assert.ok(before.at(-1) <= atHalt && atHalt < down && down < seqs.at(-1), JSON.stringify({ before: before.at(-1), atHalt, down, last: seqs.at(-1) }));
      for (let i = 1; i < seqs.length; i++) {
        assert.equal(seqs[i], seqs[i - 1] + 1, `ring seqno ${seqs[i - 1]} followed by ${seqs[i]} (a ${seqs[i] <= seqs[i - 1] ? "duplicate" : "hole"})`);
      }
      t.diagnostic(`${signal}: ${seqs.length} events, ring seqnos ${seqs[0]}..${seqs.at(-1)} contiguous; the client had ${before.at(-1)} when the gateway went, the ring ${atHalt}, ${down} when it came back`);
    });
  }
});
