// Against a REAL ringgate server on a synthetic ring: conformance of every event kind the
// synthetic chain produces, subscriptions (events= and field filters), exact resume through a
// cutting proxy, and clear errors from the real server.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  connect,
  EVENT_NAMES,
  formatCursor,
  parseCursor,
  validateEvent,
  validateLifecycle,
  validateContentionData,
  validateTopAccesses,
  validateTps,
  validateGap,
  latencyNs,
  nowNs,
  RequestRejected,
  SubscriptionError,
  splitTopics,
} from "../dist/index.js";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertSameSeq, collect, startProxy, startServer, sleep, within } from "./helpers.mjs";

// Kinds the synthetic writer never produces (no code path emits them): checked against
// fixtures in unit.test.mjs instead.
const NOT_SYNTHESIZED = new Set(["RecordError", "TxnReject", "EvmError"]);

let srv;
before(async () => {
  srv = await startServer({ rate: 5000 });
});
after(async () => {
  await srv?.stop();
});

describe("real server", () => {
  test("conformance: every event kind of the synthetic chain matches docs/events.md", { timeout: 30000 }, async (t) => {
    // Replay from the start of this server epoch, then live, until every kind was seen.
    const want = EVENT_NAMES.filter((n) => !NOT_SYNTHESIZED.has(n));
    const seen = new Map();
    const meta = { tps: 0, lifecycle: 0, contentionData: 0, topAccesses: 0 };
    const problems = [];
    const extra = new Set();
    const client = connect(srv.url, { fromCursor: { epoch: srv.epoch, seqno: 0 } });
    let events = 0;
    await collect(
      client,
      25000,
      (it) => {
        let v;
        if (it.type === "event") {
          events++;
          v = validateEvent(it.raw);
          if (!seen.has(it.eventName)) seen.set(it.eventName, it);
          // The typed fields and the raw object agree.
          assert.equal(it.eventName, it.raw.event_name);
          assert.equal(it.payload, it.raw.payload);
          assert.equal(it.seqno, it.raw.seqno);
          assert.equal(JSON.parse(it.rawJson).seqno, it.seqno);
          assert.ok(it.rawJson.endsWith(`"timestamp_ns":${it.timestampNs}}`), it.rawJson.slice(-60));
        } else if (it.type === "lifecycle") {
          meta.lifecycle++;
          v = validateLifecycle(it.body);
        } else if (it.type === "contentionData") {
          meta.contentionData++;
          v = validateContentionData(it.body);
        } else if (it.type === "topAccesses") {
          meta.topAccesses++;
          v = validateTopAccesses(it.body);
        } else if (it.type === "tps") {
          meta.tps++;
          v = validateTps(it.tps);
        } else if (it.type === "gap") {
          v = validateGap(it.raw.Gap);
        }
        if (v) {
          for (const e of v.errors) if (problems.length < 20) problems.push(e);
          for (const x of v.extra) extra.add(x);
        }
        return want.every((n) => seen.has(n)) && meta.tps > 0 && meta.contentionData > 0 && meta.topAccesses > 0;
      },
      "all synthetic event kinds",
    ).catch((e) => {
      throw new Error(`${e.message}; missing kinds: ${want.filter((n) => !seen.has(n)).join(", ")}`);
    });
    assert.deepEqual(problems, [], "documented fields missing or mistyped");
    assert.deepEqual([...extra], [], "the server sends keys docs/events.md does not list");
    assert.deepEqual(
      want.filter((n) => !seen.has(n)),
      [],
    );
    // Payload typing smoke checks.
    const log = seen.get("TxnLog");
    assert.equal(typeof log.payload.log_index, "number");
    assert.ok(splitTopics(log.payload.topics).every((x) => x.length === 66));
    const bs = seen.get("BlockStart");
    assert.equal(bs.blockNumber, bs.payload.block_number);
    assert.equal(typeof latencyNs(bs, nowNs()), "number");
    t.diagnostic(
      `${events} events validated; kinds seen: ${seen.size}/${EVENT_NAMES.length} ` +
        `(not produced by the synthetic writer: ${[...NOT_SYNTHESIZED].join(", ")}); meta: ${JSON.stringify(meta)}`,
    );
  });

  test("events= and a field filter: only matching events arrive", { timeout: 30000 }, async () => {
    // The most active contract of the synthetic world (it is in every TopAccesses frame).
    const probe = await collect(
      connect(srv.url, { events: ["TopAccesses"] }),
      10000,
      (it) => it.type === "topAccesses",
      "a TopAccesses frame",
    );
    const addr = probe.find((i) => i.type === "topAccesses").body.account[0].key;
    const TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
    const filters = [
      { event_name: "TxnLog", field_filters: [{ field: "address", filter: { values: [addr.toUpperCase().replace("0X", "0x")] } }] },
      {
        event_name: "TxnCallFrame",
        field_filters: [
          { field: "txn_index", filter: { min: 0, max: 3 } },
          { field: "address", filter: { values: [addr] } },
        ],
      },
      { event_name: "TxnLog", field_filters: [{ field: "topics", filter: { values: [TRANSFER] } }] },
    ];
    // An independent statement of what the filters select.
    const wanted = (e) =>
      e.eventName === "BlockStart" ||
      (e.eventName === "TxnLog" && (e.payload.address === addr || splitTopics(e.payload.topics)[0] === TRANSFER)) ||
      (e.eventName === "TxnCallFrame" && e.txnIdx <= 3 && (e.payload.caller === addr || e.payload.call_target === addr));
    // Start in the past so the filtered replay (which the server filters by the connect-time
    // query until the subscribe applies) is exercised too.
    const from = { epoch: srv.epoch, seqno: Math.max(0, (await srv.status()).server_seqno - 3000) };
    const client = connect(srv.url, { events: ["BlockStart"], filters, fromCursor: from });
    let logs = 0;
    let blocks = 0;
    const items = await collect(client, 20000, (it) => {
      if (it.type === "event" && it.eventName === "TxnLog") logs++;
      if (it.type === "event" && it.eventName === "BlockStart") blocks++;
      return logs >= 30 && blocks >= 1 && client.subscription !== null && it.type === "event" && it.lastInFrame;
    });
    const got = items.filter((i) => i.type === "event");
    for (const e of got) assert.ok(wanted(e), `unexpected ${e.rawJson}`);
    assert.ok(client.subscription, "Subscribed was received");
    assert.equal(client.subscription.filters, 3);
    assert.deepEqual([...client.subscription.events].sort(), ["BlockStart", "TxnCallFrame", "TxnLog"]);
    // Nothing that matches is missing: compare with an unfiltered client over the same range.
    const last = got[got.length - 1].seqno;
    const ref = [];
    await collect(connect(srv.url, { events: ["BlockStart", "TxnLog", "TxnCallFrame"], fromCursor: from }), 20000, (it) => {
      if (it.type === "event" && wanted(it)) ref.push(it.seqno);
      return it.type === "event" && it.seqno >= last;
    });
    assertSameSeq(got.map((e) => e.seqno), ref.filter((s) => s <= last), "filtered vs unfiltered+predicate");
  });

  test("channel and min_stage: only the channel's events, released at the stage", { timeout: 20000 }, async () => {
    const client = connect(srv.url, { channel: "blocks", minStage: "Finalized" });
    const items = await collect(client, 15000, (_it, all) => all.filter((i) => i.type === "event").length >= 8);
    const hello = items.find((i) => i.type === "connected");
    assert.equal(hello.channel, "blocks");
    const allowed = new Set(["BlockStart", "BlockEnd", "BlockQC", "BlockFinalized", "BlockVerified", "BlockReject"]);
    for (const it of items) {
      if (it.type !== "event") continue;
      assert.ok(allowed.has(it.eventName), it.eventName);
      if (it.eventName === "BlockStart" || it.eventName === "BlockEnd") assert.equal(it.commitStage, "Finalized");
    }
  });

  test("reconnect + resume through a cutting proxy is exactly-once (vs an uninterrupted client)", { timeout: 40000 }, async (t) => {
    const proxy = await startProxy(srv.port);
    const head = (await srv.status()).server_seqno;
    const start = { epoch: srv.epoch, seqno: head };
    const opts = { fromCursor: formatCursor(start), backoffInitialMs: 20, backoffMaxMs: 200 };
    const ref = connect(srv.url, opts);
    const cut = connect(proxy.url, opts);
    const refData = [];
    const cutData = [];
    const record = (list, it) => {
      if (it.type === "event") list.push(["e", it.serverSeqno, it.seqno]);
      else if (it.type === "gap") list.push(["g", it.serverSeqno, it.reason]);
      else if (["tps", "lifecycle", "contentionData", "topAccesses"].includes(it.type) && !it.snapshot) {
        list.push(["m", it.serverSeqno, it.type]);
      }
    };
    let resumes = 0;
    let reconnects = 0;
    let connected = false;
    const refDone = (async () => {
      for await (const it of ref) record(refData, it);
    })();
    const cutDone = (async () => {
      for await (const it of cut) {
        record(cutData, it);
        if (it.type === "connected") connected = true;
        if (it.type === "resumed" && it.requested) {
          resumes++;
          assert.equal(it.recovered, true, `resume not recovered: ${JSON.stringify(it.raw)}`);
        }
        if (it.type === "reconnecting") reconnects++;
      }
    })();
    refDone.catch(() => {});
    cutDone.catch(() => {});
    let cuts = 0;
    let target;
    try {
      // The first connection's failures are thrown (by design): cut only once it is up.
      await within(10000, "first Hello", (async () => {
        while (!connected) await sleep(2);
      })());
      // Cut mid-stream several times: first during the initial replay, then 150-350 ms after
      // each resume (a cut before the new Hello would only test the back-off again).
      for (let i = 0; i < 8; i++) {
        if (proxy.cut() > 0) cuts++;
        await within(10000, "resume after a cut", (async () => {
          while (resumes < cuts + 1) await sleep(2); // the first connect resumes too (fromCursor)
        })());
        await sleep(150 + Math.random() * 200);
      }
      // Let the cut client catch up with the reference, then stop both at the same position.
      target = ref.cursor.seqno;
      await within(15000, "cut client catching up", (async () => {
        while (cut.cursor.seqno < target) await sleep(20);
      })());
      await sleep(200);
    } finally {
      await Promise.all([ref.close(), cut.close()]);
      await proxy.close();
    }
    await within(5000, "clients ending", Promise.all([refDone, cutDone]));

    // Events are compared by ring seqno (a replay batches events into other frames than the
    // live stream did, so frame seqnos of events differ), meta and gap frames by server seqno.
    const evs = (list) => list.filter((x) => x[0] === "e").map((x) => x[2]);
    const frames = (list) => list.filter((x) => x[0] !== "e" && x[1] <= target);
    const lastRing = Math.min(...[refData, cutData].map((l) => Math.max(...evs(l))));
    const a = evs(refData).filter((s) => s <= lastRing);
    const b = evs(cutData).filter((s) => s <= lastRing);
    assert.ok(cuts >= 5, `only ${cuts} cuts`);
    assert.ok(resumes >= cuts, `resumes ${resumes} < cuts ${cuts}`);
    // Ring seqnos strictly increasing (no duplicate), server seqnos never going back.
    for (let i = 1; i < b.length; i++) assert.ok(b[i] > b[i - 1], `ring seqno not increasing at ${i}: ${b[i - 1]} -> ${b[i]}`);
    for (let i = 1; i < cutData.length; i++) assert.ok(cutData[i][1] >= cutData[i - 1][1], `server seqno went back at ${i}`);
    // Identical to the uninterrupted client: no duplicate, no hole (and no gap was needed).
    assert.equal(cutData.filter((x) => x[0] === "g").length, 0, "a gap was reported");
    assertSameSeq(b, a, "ring seqnos, cut vs reference");
    assertSameSeq(frames(cutData), frames(refData), "meta frames, cut vs reference");
    assert.ok(a.length > 1000, `only ${a.length} events compared`);
    t.diagnostic(`${cuts} cuts, ${reconnects} reconnect attempts, ${resumes} resumes; ${a.length} events and ${frames(refData).length} meta frames identical`);
  });

  test("slow consumer: the server drops frames, the client repairs the loss by resuming", { timeout: 60000 }, async (t) => {
    // A second server on the same ring with a tiny session queue and drop limit, behind a
    // proxy that stops reading from it for a while.
    // A large resume store, so the repair never races the store's eviction on a busy machine;
    // no startup backlog: the ring has been written for a while, and loading 100,000 events
    // into a shard the loaded machine starves loses some (an announced `shard_queue_full`
    // Gap, not the loss under test).
    const slow = await startServer({
      ring: srv.ring,
      serveArgs: ["--session-queue", "64", "--drop-limit", "400", "--resume-frames", "1000000", "--backlog-events", "0"],
    });
    const proxy = await startProxy(slow.port);
    try {
      const opts = { backoffInitialMs: 20, backoffMaxMs: 200 };
      const ref = connect(srv.url, opts);
      const cut = connect(proxy.url, opts);
      const a = [];
      const b = [];
      let warnings = 0;
      let closes1008 = 0;
      const refDone = (async () => {
        for await (const it of ref) if (it.type === "event") a.push(it.seqno);
      })();
      refDone.catch(() => {});
      const gaps = [];
      const t0 = Date.now();
      let stalled = false;
      const cutDone = (async () => {
        for await (const it of cut) {
          if (it.type === "event") b.push(it.seqno);
          else if (it.type === "warning" || it.type === "shed") warnings += it.recovering ? 1 : 0;
          else if (it.type === "reconnecting" && it.closeCode === 1008) closes1008++;
          else if (it.type === "gap") gaps.push(it.reason);
          if (!stalled && Date.now() - t0 > 300) {
            stalled = true;
            proxy.stall(1500);
          }
        }
      })();
      cutDone.catch(() => {});
      try {
        await sleep(3000);
        await within(30000, "slow client catching up", (async () => {
          while (b.length === 0 || a.length === 0 || b[b.length - 1] < a[a.length - 1] - 2000) await sleep(20);
        })());
      } finally {
        await Promise.all([ref.close(), cut.close()]);
      }
      await within(5000, "clients ending", Promise.all([refDone, cutDone]));
      assert.deepEqual(gaps, []);
      assert.ok(warnings + closes1008 > 0, "the server never dropped anything: the test did not test");
      // Same ring seqnos over the common range: nothing twice, nothing missing.
      const lo = Math.max(a[0], b[0]);
      const hi = Math.min(a[a.length - 1], b[b.length - 1]);
      const ra = a.filter((x) => x >= lo && x <= hi);
      const rb = b.filter((x) => x >= lo && x <= hi);
      assert.ok(ra.length > 1000, `only ${ra.length} events in common`);
      assertSameSeq(rb, ra, "ring seqnos, slow vs reference");
      t.diagnostic(`${warnings} backpressure warnings and shed reports repaired by resuming, ${closes1008} slow-client closes (1008); ${ra.length} events identical`);
    } finally {
      await proxy.close();
      await slow.stop();
    }
  });

  test("real server errors: unknown event name (400) and an event the channel does not carry", { timeout: 15000 }, async () => {
    // An unknown name is refused by the client itself (names are checked locally) ...
    assert.throws(() => connect(srv.url, { events: ["Foo"] }), /unknown event name "Foo"/);
    // ... and by the server when sent in the URL.
    const bad = connect(`${srv.url}/v1/ws?events=Foo`, {});
    await assert.rejects(within(5000, "400", bad.next()), (e) => {
      assert.ok(e instanceof RequestRejected, e.stack);
      assert.equal(e.status, 400);
      assert.match(e.message, /events/);
      return true;
    });
    const c = connect(srv.url, { channel: "txs", events: ["BlockStart"] });
    await assert.rejects(
      within(5000, "Error frame", (async () => {
        for await (const _ of c) {
          /* until the Error frame */
        }
      })()),
      (e) => e instanceof SubscriptionError && e.code === "not_allowed_on_channel",
    );
  });

  test("cursor strings round-trip and fromCursor accepts both forms", { timeout: 15000 }, async () => {
    const first = connect(srv.url, { events: ["BlockStart", "BlockEnd", "TxnEnd"] });
    await collect(first, 10000, (it) => it.type === "event" && it.lastInFrame);
    const c = first.cursor;
    assert.deepEqual(parseCursor(formatCursor(c)), c);
    for (const from of [c, formatCursor(c)]) {
      const again = connect(srv.url, { events: ["BlockStart", "BlockEnd", "TxnEnd"], fromCursor: from });
      const items = await collect(again, 10000, (it) => it.type === "event");
      const resumed = items.find((i) => i.type === "resumed");
      assert.equal(resumed.recovered, true);
      assert.equal(resumed.mode, "resume");
      assert.ok(items.find((i) => i.type === "event").serverSeqno > c.seqno);
    }
  });
});

describe("ringgate-tail", () => {
  const TAIL = new URL("../dist/tail.js", import.meta.url).pathname;
  const run = (cmd, ms) =>
    new Promise((resolve, reject) => {
      const p = spawn("bash", ["-o", "pipefail", "-c", cmd], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      p.stdout.on("data", (d) => (out += d));
      p.stderr.on("data", (d) => (err += d));
      const t = setTimeout(() => {
        p.kill("SIGKILL");
        reject(new Error(`timed out: ${cmd}\n${err}`));
      }, ms);
      p.on("exit", (code) => {
        clearTimeout(t);
        resolve({ code, out, err });
      });
    });

  test("events as JSON lines through `jq -c .`, exact bytes, cursor file resume", { timeout: 40000 }, async (t) => {
    const jq = spawnSync("jq", ["--version"], { encoding: "utf8" });
    if (jq.error) {
      t.skip("jq is not installed (apt-get install -y jq)");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "ringgate-ts-tail-"));
    try {
      const head = (await srv.status()).server_seqno;
      const from = formatCursor({ epoch: srv.epoch, seqno: head });
      const cf = join(dir, "cursor");
      const args = `${srv.url} --events TxnLog,BlockStart --cursor-file ${cf}`;
      const r1 = await run(`node ${TAIL} ${args} --from-cursor ${from} --limit 200 | tee ${dir}/raw1 | jq -c .`, 20000);
      assert.equal(r1.code, 0, r1.err);
      const c1 = parseCursor(readFileSync(cf, "utf8"));
      const r2 = await run(`node ${TAIL} ${args} --limit 100 | tee ${dir}/raw2 | jq -c .`, 20000);
      assert.equal(r2.code, 0, r2.err);
      assert.match(r2.err, new RegExp(`resuming from ${formatCursor(c1)}`));
      const lines = (s) => s.split("\n").filter((l) => l !== "");
      const j1 = lines(r1.out).map((l) => JSON.parse(l));
      const j2 = lines(r2.out).map((l) => JSON.parse(l));
      assert.ok(j1.length >= 200 && j2.length >= 100, `${j1.length} + ${j2.length} lines`);
      for (const o of [...j1, ...j2]) assert.ok(["TxnLog", "BlockStart"].includes(o.event_name), JSON.stringify(o));
      const raw = [...lines(readFileSync(`${dir}/raw1`, "utf8")), ...lines(readFileSync(`${dir}/raw2`, "utf8"))];
      assert.equal(raw.length, j1.length + j2.length);
      // The same events, byte for byte, as an uninterrupted client from the same cursor.
      const seqnos = raw.map((l) => JSON.parse(l).seqno);
      const last = seqnos[seqnos.length - 1];
      const ref = [];
      await collect(connect(srv.url, { events: "TxnLog,BlockStart", fromCursor: from }), 15000, (it) => {
        if (it.type === "event") ref.push(it.rawJson);
        return it.type === "event" && it.seqno >= last;
      });
      assertSameSeq(raw, ref, "ringgate-tail lines vs direct client rawJson");
      for (let i = 1; i < seqnos.length; i++) assert.ok(seqnos[i] > seqnos[i - 1]);
      t.diagnostic(`${j1.length} + ${j2.length} lines identical to a direct client; cursor ${formatCursor(c1)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("SIGTERM: exit 0 with the cursor saved; a bad URL: exit 1 with a clear message", { timeout: 20000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "ringgate-ts-tail-"));
    try {
      const cf = join(dir, "cursor");
      const p = spawn(process.execPath, [TAIL, srv.url, "--events", "BlockStart,BlockEnd", "--cursor-file", cf], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      p.stdout.on("data", (d) => (out += d));
      await within(10000, "first lines", (async () => {
        while (!out.includes("\n")) await sleep(20);
      })());
      const code = await within(5000, "exit after SIGTERM", new Promise((r) => {
        p.on("exit", (c) => r(c));
        p.kill("SIGTERM");
      }));
      assert.equal(code, 0);
      const c = parseCursor(readFileSync(cf, "utf8"));
      assert.equal(c.epoch, srv.epoch);
      const bad = await run(`node ${TAIL} ${srv.url}/v1/ws?events=Nope`, 10000);
      assert.equal(bad.code, 1);
      assert.match(bad.err, /HTTP 400/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
