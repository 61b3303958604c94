// Scripted servers: the cursor and de-duplication rules, reconnect/back-off, synthetic gaps,
// backpressure recovery, and clear errors (401, not a ringgate server, silence, refused).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { WebSocketServer } from "ws";
import {
  connect,
  AuthenticationError,
  ConnectError,
  ConnectionLost,
  NotRinggateError,
  SubscriptionError,
} from "../dist/index.js";
import { freePort, within } from "./helpers.mjs";

const EPOCH = 1700000000000000;
const hello = (seqno, epoch = EPOCH) =>
  JSON.stringify({
    server_seqno: seqno,
    Hello: { wire_version: 1, server_version: "fake", epoch, channel: "all", features: ["resume"], limits: {} },
  });
const ev = (seqno, name = "TxnEnd") =>
  ({ event_name: name, block_number: 7, txn_idx: 0, commit_stage: "Proposed", payload: { type: name }, seqno, timestamp_ns: 1796390097238928437 + seqno });
const events = (serverSeqno, ...ringSeqnos) => {
  // Build the text by hand so timestamp_ns keeps its exact digits (JSON.stringify would round).
  const parts = ringSeqnos.map((s) => JSON.stringify(ev(s)).replace(/"timestamp_ns":\d+/, `"timestamp_ns":${1796390097238928437n + BigInt(s)}`));
  return `{"server_seqno":${serverSeqno},"Events":[${parts.join(",")}]}`;
};

const servers = [];
after(async () => {
  for (const s of servers) await new Promise((r) => s.close(() => r()));
});

/** A WebSocket server running `script(ws, req, n)` for the n-th connection (0-based). */
async function wsServer(script) {
  const port = await freePort();
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const requests = [];
  let n = 0;
  wss.on("connection", (ws, req) => {
    requests.push(req);
    script(ws, req, n++);
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  servers.push({
    close(cb) {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close(cb);
    },
  });
  return { url: `ws://127.0.0.1:${port}`, requests };
}

async function take(client, n, ms = 5000) {
  const out = [];
  await within(ms, `take ${n}`, (async () => {
    while (out.length < n) {
      const it = await client.next();
      if (it === undefined) break;
      out.push(it);
    }
  })());
  return out;
}

describe("cursor, de-duplication and resume (scripted server)", () => {
  test("cursor moves at the last event of a frame; duplicates dropped; resume query sent", { timeout: 15000 }, async () => {
    const srv = await wsServer((ws, req, n) => {
      if (n === 0) {
        ws.send(hello(10));
        ws.send(JSON.stringify({ server_seqno: 10, TPS: 42 })); // connect-time snapshot
        ws.send(events(13, 101, 102, 103));
        ws.send(JSON.stringify({ server_seqno: 14, Lifecycle: { block_hash: "0x" + "ab".repeat(32), block_number: 7, to_stage: "Proposed", block_age_ms: 0, txn_count: 1 } }));
        setTimeout(() => ws.close(1011, "internal error"), 50);
      } else if (n === 1) {
        ws.send(hello(14));
        ws.send(JSON.stringify({ server_seqno: 14, Resume: { mode: "resume", reason: "in_range", epoch: EPOCH, from_seqno: 15, to_seqno: 16, recovered: true } }));
        ws.send(events(13, 101, 102, 103)); // duplicate frame: dropped
        ws.send(events(16, 104, 105));
        setTimeout(() => ws.terminate(), 50); // 1006
      } else {
        // Restarted server: another epoch.
        ws.send(hello(0, EPOCH + 1));
        ws.send(JSON.stringify({ server_seqno: 0, Resume: { mode: "snapshot", reason: "other_epoch", epoch: EPOCH + 1, from_seqno: 1, to_seqno: 5, recovered: false } }));
        ws.send(events(3, 1, 2));
      }
    });
    const c = connect(srv.url, { backoffInitialMs: 5, backoffMaxMs: 20 });
    const seen = [];
    const cursors = [];
    for await (const it of c) {
      seen.push(it);
      cursors.push(c.cursor && `${c.cursor.epoch - EPOCH}:${c.cursor.seqno}`);
      if (it.type === "event" && it.epoch === EPOCH + 1 && it.lastInFrame) break;
    }
    const kinds = seen.map((i) => (i.type === "event" ? `e${i.seqno}` : i.type));
    assert.deepEqual(kinds, [
      "connected", "tps", "e101", "e102", "e103", "lifecycle", "reconnecting",
      "connected", "resumed", "e104", "e105", "reconnecting",
      "connected", "resumed", "gap", "e1", "e2",
    ]);
    assert.deepEqual(cursors, [
      "0:10", "0:10", "0:10", "0:10", "0:13", "0:14", "0:14",
      "0:14", "0:14", "0:14", "0:16", "0:16",
      "1:0", "1:0", "1:0", "1:0", "1:3",
    ]);
    assert.equal(seen[1].snapshot, true);
    assert.equal(seen[6].closeCode, 1011);
    assert.equal(seen[11].closeCode, 1006);
    const gap = seen[14];
    assert.equal(gap.reason, "resume_failed");
    assert.equal(gap.synthetic, true);
    assert.equal(gap.resumeReason, "other_epoch");
    assert.deepEqual(gap.previousCursor, { epoch: EPOCH, seqno: 16 });
    assert.equal(c.stats.duplicatesDropped, 1);
    // Exact timestamps and raw text.
    assert.equal(seen[2].timestampNs, 1796390097238928437n + 101n);
    assert.ok(seen[2].rawJson.endsWith(`"timestamp_ns":${1796390097238928437n + 101n}}`));
    const q = (i) => new URL(srv.requests[i].url, "ws://x").searchParams;
    assert.equal(q(0).get("resume_from"), null);
    assert.equal(q(1).get("resume_from"), "14");
    assert.equal(q(1).get("epoch"), String(EPOCH));
    assert.equal(q(2).get("resume_from"), "16");
  });

  test("a too-old resume yields the server's resume_window gap, not a synthetic one", { timeout: 10000 }, async () => {
    const srv = await wsServer((ws) => {
      ws.send(hello(5));
      ws.send(JSON.stringify({ server_seqno: 5, Resume: { mode: "snapshot", reason: "too_old", epoch: EPOCH, from_seqno: 100, to_seqno: 200, recovered: false } }));
      ws.send(JSON.stringify({ server_seqno: 99, Gap: { reason: "resume_window", from_seqno: 6, to_seqno: 99 } }));
      ws.send(events(101, 50));
    });
    const c = connect(srv.url, { fromCursor: `${EPOCH}:5` });
    const items = await take(c, 4);
    await c.close();
    assert.deepEqual(items.map((i) => i.type), ["connected", "resumed", "gap", "event"]);
    assert.equal(items[2].synthetic, false);
    assert.equal(items[2].fromSeqno, 6);
    assert.equal(items[2].toSeqno, 99);
  });

  test("backpressure Warning: yielded with recovering, then resume from the cursor", { timeout: 10000 }, async () => {
    const srv = await wsServer((ws, req, n) => {
      if (n === 0) {
        ws.send(hello(1));
        ws.send(events(3, 1, 2));
        ws.send(JSON.stringify({ server_seqno: 3, Warning: { type: "backpressure", dropped: 2, total_dropped: 2, drop_limit: 10000, dropped_from_seqno: 4, dropped_to_seqno: 5 } }));
        ws.send(events(7, 5)); // after the loss: must not be yielded before the resume
      } else {
        ws.send(hello(3));
        ws.send(JSON.stringify({ server_seqno: 3, Resume: { mode: "resume", reason: "in_range", epoch: EPOCH, from_seqno: 4, to_seqno: 7, recovered: true } }));
        ws.send(events(5, 3, 4));
        ws.send(events(7, 5));
      }
    });
    const c = connect(srv.url, { backoffInitialMs: 5 });
    const items = await take(c, 9);
    await c.close();
    assert.deepEqual(
      items.map((i) => (i.type === "event" ? `e${i.seqno}` : i.type)),
      ["connected", "e1", "e2", "warning", "reconnecting", "connected", "resumed", "e3", "e4"],
    );
    assert.equal(items[3].recovering, true);
    assert.equal(new URL(srv.requests[1].url, "ws://x").searchParams.get("resume_from"), "3");
  });

  const SHED = { lane: "detail", dropped: 2, total_shed: 2, from_seqno: 4, to_seqno: 6, ring_from_seqno: 3, ring_to_seqno: 5, kinds: { StorageAccess: 2 } };

  test("priority-lane Shed: yielded with recovering, then resume from the cursor", { timeout: 10000 }, async () => {
    const srv = await wsServer((ws, req, n) => {
      if (n === 0) {
        ws.send(hello(1));
        ws.send(events(3, 1, 2));
        ws.send(JSON.stringify({ server_seqno: 3, Shed: SHED }));
        ws.send(events(7, 5)); // after the shed run: must not be yielded before the resume
      } else {
        ws.send(hello(3));
        ws.send(JSON.stringify({ server_seqno: 3, Resume: { mode: "resume", reason: "in_range", epoch: EPOCH, from_seqno: 4, to_seqno: 7, recovered: true } }));
        ws.send(events(5, 3, 4));
        ws.send(events(7, 5));
      }
    });
    const c = connect(srv.url, { backoffInitialMs: 5 });
    const items = await take(c, 9);
    await c.close();
    assert.deepEqual(
      items.map((i) => (i.type === "event" ? `e${i.seqno}` : i.type)),
      ["connected", "e1", "e2", "shed", "reconnecting", "connected", "resumed", "e3", "e4"],
    );
    const shed = items[3];
    assert.equal(shed.recovering, true);
    assert.deepEqual([shed.lane, shed.dropped, shed.fromSeqno, shed.toSeqno, shed.serverSeqno], ["detail", 2, 4, 6, 3]);
    assert.deepEqual(shed.kinds, { StorageAccess: 2 });
    assert.equal(c.stats.sheds, 1);
    assert.equal(new URL(srv.requests[1].url, "ws://x").searchParams.get("resume_from"), "3");
  });

  test("priority-lane Shed with recoverShed: false: yielded, the connection kept", { timeout: 10000 }, async () => {
    const srv = await wsServer((ws) => {
      ws.send(hello(1));
      ws.send(events(3, 1, 2));
      ws.send(JSON.stringify({ server_seqno: 3, Shed: SHED }));
      ws.send(events(7, 5));
    });
    const c = connect(srv.url, { recoverShed: false });
    const items = await take(c, 5);
    await c.close();
    assert.deepEqual(
      items.map((i) => (i.type === "event" ? `e${i.seqno}` : i.type)),
      ["connected", "e1", "e2", "shed", "e5"],
    );
    assert.equal(items[3].recovering, false);
    assert.equal(srv.requests.length, 1);
    assert.deepEqual(c.cursor, { epoch: EPOCH, seqno: 7 });
  });

  test("filters: subscribe message after Hello, client-side filtering, Error frame -> SubscriptionError", { timeout: 10000 }, async () => {
    const got = [];
    const srv = await wsServer((ws) => {
      ws.on("message", (m) => {
        got.push(JSON.parse(m.toString()));
        ws.send(JSON.stringify({ server_seqno: 1, Error: { code: "unknown_field", message: "no field foo" } }));
      });
      ws.send(hello(1));
      const log = (addr, s) => ({ event_name: "TxnLog", txn_idx: 0, payload: { type: "TxnLog", txn_index: 0, log_index: 0, address: addr, topics: "0x", data: "0x" }, seqno: s, timestamp_ns: 1 });
      ws.send(JSON.stringify({ server_seqno: 3, Events: [log("0x" + "11".repeat(20), 1), log("0x" + "22".repeat(20), 2)] }));
    });
    const c = connect(srv.url, {
      filters: [{ event_name: "TxnLog", field_filters: [{ field: "address", filter: { values: ["0x" + "22".repeat(20)] } }] }],
      minStage: "Finalized",
    });
    const seen = [];
    await assert.rejects(
      within(5000, "SubscriptionError", (async () => {
        for await (const it of c) seen.push(it);
      })()),
      (e) => e instanceof SubscriptionError && e.code === "unknown_field",
    );
    assert.deepEqual(got[0], {
      subscribe: { events: [], filters: [{ event_name: "TxnLog", field_filters: [{ field: "address", filter: { values: ["0x" + "22".repeat(20)] } }] }], min_stage: "Finalized" },
    });
    const q = new URL(srv.requests[0].url, "ws://x").searchParams;
    assert.equal(q.get("events"), "TxnLog");
    assert.equal(q.get("min_stage"), "Finalized");
    assert.deepEqual(seen.filter((i) => i.type === "event").map((i) => i.seqno), [2]);
    assert.equal(c.stats.prefiltered, 1);
  });

  test("reconnect: false -> ConnectionLost on 1011; a normal close ends the iteration", { timeout: 10000 }, async () => {
    const srv = await wsServer((ws, req, n) => {
      ws.send(hello(1));
      setTimeout(() => ws.close(n === 0 ? 1011 : 1000), 20);
    });
    const c1 = connect(srv.url, { reconnect: false });
    await assert.rejects(
      within(5000, "ConnectionLost", (async () => {
        for await (const _ of c1) {
          /* */
        }
      })()),
      (e) => e instanceof ConnectionLost && e.closeCode === 1011,
    );
    const c2 = connect(srv.url, { reconnect: false });
    const items = [];
    await within(5000, "normal end", (async () => {
      for await (const it of c2) items.push(it);
    })());
    assert.deepEqual(items.map((i) => i.type), ["connected"]);
  });

  test("full-jitter back-off grows and close() interrupts it", { timeout: 15000 }, async () => {
    const srv = await wsServer((ws, req, n) => {
      if (n === 0) {
        ws.send(hello(1));
        setTimeout(() => ws.terminate(), 10);
      } else ws.terminate(); // every reconnect fails before Hello
    });
    const c = connect(srv.url, { backoffInitialMs: 10, backoffMaxMs: 80 });
    const recs = [];
    for await (const it of c) {
      if (it.type === "reconnecting") {
        recs.push(it);
        if (recs.length === 6) break;
      }
    }
    assert.deepEqual(recs.map((r) => r.attempt), [1, 2, 3, 4, 5, 6]);
    recs.forEach((r) => assert.ok(r.delayMs >= 0 && r.delayMs <= Math.min(80, 10 * 2 ** (r.attempt - 1)), JSON.stringify(r)));
    // close() while sleeping in a long back-off ends the iteration at once.
    const srv2 = await wsServer((ws, req, n) => {
      if (n === 0) {
        ws.send(hello(1));
        setTimeout(() => ws.terminate(), 10);
      } else ws.terminate();
    });
    const c2 = connect(srv2.url, { backoffInitialMs: 60000, backoffMaxMs: 60000 });
    const t0 = Date.now();
    await within(5000, "close during back-off", (async () => {
      for await (const it of c2) {
        if (it.type === "reconnecting") setTimeout(() => c2.close(), 50);
      }
    })());
    assert.ok(Date.now() - t0 < 3000);
  });
  test("close() while waiting for Hello ends the iteration at once", { timeout: 10000 }, async () => {
    const silent = await wsServer(() => {});
    const c = connect(silent.url, { openTimeoutMs: 8000 });
    const t0 = Date.now();
    setTimeout(() => c.close(), 100);
    assert.equal(await within(5000, "close during open", c.next()), undefined);
    assert.ok(Date.now() - t0 < 2000);
  });
});

describe("clear errors, never a hang", () => {
  test("HTTP 401 (bad token) -> AuthenticationError; the token goes as a Bearer header under Node", { timeout: 10000 }, async () => {
    const port = await freePort();
    let auth;
    const server = http.createServer((req, res) => {
      auth = req.headers.authorization;
      const body = JSON.stringify({ error: "unknown access key" });
      res.writeHead(401, { "Content-Type": "application/json", "Content-Length": body.length, "WWW-Authenticate": "Bearer", Connection: "close" });
      res.end(body);
    });
    await new Promise((r) => server.listen(port, "127.0.0.1", r));
    servers.push(server);
    const c = connect(`ws://127.0.0.1:${port}`, { token: "wrong-token" });
    await assert.rejects(within(5000, "401", c.next()), (e) => {
      assert.ok(e instanceof AuthenticationError, String(e));
      assert.equal(e.status, 401);
      assert.match(e.message, /unknown access key/);
      return true;
    });
    assert.equal(auth, "Bearer wrong-token");
  });

  test("a plain HTTP server -> NotRinggateError", { timeout: 10000 }, async () => {
    const port = await freePort();
    const server = http.createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end("<html>hello</html>");
    });
    await new Promise((r) => server.listen(port, "127.0.0.1", r));
    servers.push(server);
    const c = connect(`ws://127.0.0.1:${port}`);
    await assert.rejects(within(5000, "not ringgate", c.next()), (e) => {
      assert.ok(e instanceof NotRinggateError, String(e));
      assert.match(e.message, /HTTP 200.*ringgate/);
      return true;
    });
  });

  test("a WebSocket server that is not ringgate -> NotRinggateError (wrong first frame, or no Hello)", { timeout: 10000 }, async () => {
    const a = await wsServer((ws) => ws.send("hello there"));
    await assert.rejects(within(5000, "non-JSON", connect(a.url).next()), (e) => e instanceof NotRinggateError && /not JSON/.test(e.message));
    const b = await wsServer((ws) => ws.send(JSON.stringify({ type: "welcome" })));
    await assert.rejects(within(5000, "non-Hello", connect(b.url).next()), (e) => e instanceof NotRinggateError && /Hello/.test(e.message));
    const silent = await wsServer(() => {});
    await assert.rejects(
      within(5000, "no Hello", connect(silent.url, { openTimeoutMs: 300 }).next()),
      (e) => e instanceof NotRinggateError && /no Hello frame within 300 ms/.test(e.message),
    );
  });

  test("a TCP server that never answers, and a refused port -> ConnectError", { timeout: 10000 }, async () => {
    const port = await freePort();
    const sockets = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise((r) => server.listen(port, "127.0.0.1", r));
    servers.push({ close: (cb) => { sockets.forEach((s) => s.destroy()); server.close(cb); } });
    const t0 = Date.now();
    await assert.rejects(within(5000, "silent TCP", connect(`ws://127.0.0.1:${port}`, { openTimeoutMs: 400 }).next()), (e) => e instanceof ConnectError);
    assert.ok(Date.now() - t0 < 3000);
    const closed = await freePort();
    await assert.rejects(within(5000, "refused", connect(`ws://127.0.0.1:${closed}`).next()), (e) => {
      assert.ok(e instanceof ConnectError);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
  });

  test("a connection closed before the HTTP response (a stopping gateway) -> transient ConnectError", { timeout: 10000 }, async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    servers.push(server);
    const url = `ws://127.0.0.1:${server.address().port}`;
    await assert.rejects(within(5000, "closed handshake", connect(url).next()), (e) => {
      assert.ok(e instanceof ConnectError && !(e instanceof NotRinggateError), `${e}`);
      assert.equal(e.transient, true, "a reconnect retries it");
      return true;
    });
  });
});

describe("browser transport (simulated: global WebSocket, a `window`)", () => {
  test("token as ?token=, no Authorization header; items flow", { timeout: 15000 }, async () => {
    const srv = await wsServer((ws) => {
      ws.send(hello(1));
      ws.send(events(3, 1, 2));
    });
    const script = `
      import { WebSocket as WsImpl } from "ws";
      globalThis.window = {};
      globalThis.WebSocket = class extends WsImpl { constructor(url) { super(url); } };
      const { connect } = await import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)});
      const c = connect(${JSON.stringify(srv.url)}, { token: "br owser", events: ["TxnEnd"] });
      const seen = [];
      for await (const it of c) { seen.push(it.type === "event" ? it.seqno + ":" + it.timestampNs : it.type); if (seen.length === 3) break; }
      console.log(JSON.stringify(seen));
    `;
    const { spawn } = await import("node:child_process");
    const p = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: new URL("..", import.meta.url).pathname,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const code = await within(10000, "browser child", new Promise((r) => p.on("exit", r)));
    assert.equal(code, 0, err);
    assert.deepEqual(JSON.parse(out), ["connected", `1:${1796390097238928437n + 1n}`, `2:${1796390097238928437n + 2n}`]);
    const req = srv.requests[0];
    assert.equal(req.headers.authorization, undefined);
    const q = new URL(req.url, "ws://x").searchParams;
    assert.equal(q.get("token"), "br owser");
    assert.equal(q.get("events"), "TxnEnd");
  });
});
