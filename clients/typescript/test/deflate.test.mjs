// permessage-deflate against a REAL ringgate (`--compression on`) on a synthetic ring, with
// Node's `ws` library doing the negotiation, the inflation and the compression of what it
// sends: the compressed stream carries exactly the uncompressed stream's data.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startServer, within } from "./helpers.mjs";

/** The stream's data in order: each event of an Events frame, each meta frame whole. */
function dataItems(frames) {
  const perConnection = ["Hello", "Resume", "Subscribed", "Heartbeat", "Error", "Warning"];
  const out = [];
  for (const f of frames) {
    if (Array.isArray(f.Events)) out.push(...f.Events);
    else if (!perConnection.some((k) => k in f)) out.push(f);
  }
  return out;
}

/** Opens `url` and collects frames until a data frame at or past `seqno`. */
function readUntil(url, options, seqno) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const frames = [];
    let answered = "";
    ws.on("upgrade", (res) => {
      answered = res.headers["sec-websocket-extensions"] ?? "";
    });
    ws.on("error", reject);
    ws.on("message", (data) => {
      const f = JSON.parse(data.toString());
      frames.push(f);
      if (f.server_seqno >= seqno && dataItems([f]).length > 0) {
        resolve({ frames, extensions: ws.extensions, answered });
        ws.close();
      }
    });
  });
}

describe("permessage-deflate with Node ws", () => {
  let server;
  before(async () => {
    server = await startServer({ serveArgs: ["--compression", "on", "--resume-frames", "1000000"] });
  });
  after(async () => {
    await server?.stop();
  });

  test("the compressed stream decodes to the uncompressed stream", async () => {
    const start = (await server.status()).server_seqno;
    const target = start + 2000;
    while ((await server.status()).server_seqno < target + 500) await new Promise((r) => setTimeout(r, 50));
    const url = `${server.url}/v1/ws?extended=1&epoch=${server.epoch}&resume_from=${start}`;
    const [z, p] = await within(30000, "both streams", Promise.all([
      readUntil(url, { perMessageDeflate: true }, target),
      readUntil(url, { perMessageDeflate: false }, target),
    ]));
    assert.equal(z.extensions, "permessage-deflate");
    assert.equal(z.answered, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    assert.equal(p.extensions, "");
    assert.equal(p.answered, "");
    const zi = dataItems(z.frames);
    const pi = dataItems(p.frames);
    const n = Math.min(zi.length, pi.length);
    assert.ok(n >= 1000, `${zi.length} and ${pi.length} items`);
    assert.deepEqual(zi.slice(0, n), pi.slice(0, n));
  });

  test("a compressed subscribe is read and answered", async () => {
    // threshold 0: ws compresses even this short message.
    const ws = new WebSocket(`${server.url}/v1/ws?extended=1`, { perMessageDeflate: { threshold: 0 } });
    try {
      const names = await within(15000, "subscribed events", new Promise((resolve, reject) => {
        let acked = false;
        const seen = new Set();
        ws.on("error", reject);
        ws.on("open", () => ws.send(JSON.stringify({ subscribe: { events: ["BlockStart", "TxnLog"] } })));
        ws.on("message", (data) => {
          const f = JSON.parse(data.toString());
          if ("Subscribed" in f) acked = true;
          if (acked && Array.isArray(f.Events)) for (const e of f.Events) seen.add(e.event_name);
          if (seen.has("BlockStart") && seen.has("TxnLog")) resolve(seen);
        });
      }));
      assert.match(ws.extensions, /permessage-deflate/);
      assert.deepEqual([...names].sort(), ["BlockStart", "TxnLog"]);
    } finally {
      ws.close();
    }
  });
});
