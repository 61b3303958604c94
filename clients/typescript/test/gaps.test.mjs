// Gaps surfaced as values, against a REAL server with a small resume store: a cursor of
// another epoch, a too-old cursor, a cursor ahead of the head, and a reconnect that lands on
// a restarted server (new epoch). Plus the real server's access keys when the binary has them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, formatCursor, AuthenticationError } from "../dist/index.js";
import { collect, serveSupports, sleep, startProxy, startServer, within } from "./helpers.mjs";

let srv;
before(async () => {
  // 2,000 frames of resume store: a few hundred ms of this chain, so cursors age out fast.
  srv = await startServer({ rate: 5000, serveArgs: ["--resume-frames", "2000", "--history-mib", "0"] });
});
after(async () => {
  await srv?.stop();
});

const untilEvent = (it) => it.type === "event";

describe("gaps are values", () => {
  test("fromCursor of another epoch: resume_failed gap, then the stream of the new epoch", { timeout: 15000 }, async () => {
    const old = { epoch: srv.epoch - 1_000_000, seqno: 12345 };
    const c = connect(srv.url, { fromCursor: old });
    const items = await collect(c, 10000, untilEvent);
    const resumed = items.find((i) => i.type === "resumed");
    assert.equal(resumed.reason, "other_epoch");
    assert.equal(resumed.recovered, false);
    assert.deepEqual(resumed.requested, old);
    const gaps = items.filter((i) => i.type === "gap");
    assert.ok(gaps.length >= 1);
    assert.equal(gaps[0].reason, "resume_failed");
    assert.equal(gaps[0].synthetic, true);
    assert.deepEqual(gaps[0].previousCursor, old);
    assert.equal(c.cursor.epoch, srv.epoch);
    // Gaps come before any data of the new epoch.
    assert.ok(items.findIndex((i) => i.type === "gap") < items.findIndex((i) => i.type === "event"));
  });

  test("a too-old cursor: the server's resume_window gap names the lost range", { timeout: 15000 }, async () => {
    await within(10000, "store eviction", (async () => {
      while (((await srv.status()).oldest_resumable_seqno ?? 0) < 100) await sleep(100);
    })());
    const c = connect(srv.url, { fromCursor: formatCursor({ epoch: srv.epoch, seqno: 10 }) });
    const items = await collect(c, 10000, untilEvent);
    const resumed = items.find((i) => i.type === "resumed");
    assert.equal(resumed.reason, "too_old");
    assert.equal(resumed.recovered, false);
    const gaps = items.filter((i) => i.type === "gap");
    assert.equal(gaps.length, 1, JSON.stringify(gaps.map((g) => [g.reason, g.fromSeqno, g.toSeqno, g.synthetic, g.serverSeqno])) + JSON.stringify(resumed.raw));
    assert.equal(gaps[0].reason, "resume_window");
    assert.equal(gaps[0].synthetic, false);
    assert.equal(gaps[0].fromSeqno, 11);
    assert.ok(gaps[0].toSeqno >= 100);
    const firstEvent = items.find((i) => i.type === "event");
    assert.ok(firstEvent.serverSeqno > gaps[0].toSeqno);
  });

  test("a cursor ahead of the head: resume_failed gap, and the stream continues from the head", { timeout: 15000 }, async () => {
    const head = (await srv.status()).server_seqno;
    const c = connect(srv.url, { fromCursor: { epoch: srv.epoch, seqno: head + 10_000_000 } });
    const items = await collect(c, 10000, (it, all) => all.filter(untilEvent).length >= 50);
    const resumed = items.find((i) => i.type === "resumed");
    assert.equal(resumed.reason, "ahead_of_head");
    const gap = items.find((i) => i.type === "gap");
    assert.equal(gap.reason, "resume_failed");
    assert.equal(gap.resumeReason, "ahead_of_head");
    // The events after it are not mistaken for duplicates of the bogus cursor.
    assert.ok(items.filter(untilEvent).length >= 50);
    assert.ok(c.cursor.seqno < head + 10_000_000);
  });

  test("a reconnect that lands on a restarted server (new epoch) yields a gap", { timeout: 30000 }, async () => {
    const other = await startServer({ ring: srv.ring, serveArgs: ["--resume-frames", "2000", "--history-mib", "0"] });
    try {
      assert.notEqual(other.epoch, srv.epoch);
      const proxy = await startProxy(srv.port);
      const c = connect(proxy.url, { backoffInitialMs: 10, backoffMaxMs: 50 });
      const items = [];
      let switched = false;
      await within(20000, "epoch change", (async () => {
        for await (const it of c) {
          items.push(it);
          if (!switched && it.type === "event") {
            switched = true;
            proxy.retarget(other.port);
            proxy.cut();
          }
          if (it.type === "event" && it.epoch === other.epoch) break;
        }
      })()).finally(() => c.close());
      await proxy.close();
      const i = items.findIndex((x) => x.type === "connected" && x.epoch === other.epoch);
      assert.ok(i > 0, "reconnected to the other server");
      const after = items.slice(i);
      const resumed = after.find((x) => x.type === "resumed");
      assert.equal(resumed.reason, "other_epoch");
      assert.deepEqual(resumed.requested.epoch, srv.epoch);
      const gap = after.find((x) => x.type === "gap");
      assert.equal(gap.reason, "resume_failed");
      assert.equal(gap.previousCursor.epoch, srv.epoch);
      assert.ok(after.findIndex((x) => x.type === "gap") < after.findIndex((x) => x.type === "event"));
    } finally {
      await other.stop();
    }
  });

  test("access keys on the real server: a bad token is refused with a clear error", { timeout: 20000 }, async (t) => {
    if (!serveSupports("--auth-keys")) {
      t.skip("this ringgate binary has no --auth-keys (see fake.test.mjs for the 401 path)");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "ringgate-ts-keys-"));
    const token = "good-token-123";
    const keys = join(dir, "keys.toml");
    writeFileSync(keys, `[[key]]\nname = "test"\ntoken_sha256 = "${createHash("sha256").update(token).digest("hex")}"\n`);
    let authed;
    try {
      authed = await startServer({ ring: srv.ring, serveArgs: ["--auth-keys", keys], token });
      await assert.rejects(within(5000, "401", connect(authed.url, { token: "wrong" }).next()), (e) => e instanceof AuthenticationError && e.status === 401);
      await assert.rejects(within(5000, "401", connect(authed.url).next()), (e) => e instanceof AuthenticationError);
      const ok = await collect(connect(authed.url, { token }), 10000, untilEvent);
      assert.ok(ok.some((i) => i.type === "event"));
    } finally {
      await authed?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
