// The live dashboard (/dashboard) in a real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) against a real `ringgate demo` on a free port: what the page
// shows after a few seconds of a synthetic chain, the filter box, and what it says when the
// gateway goes away and comes back (a new server run: it reconnects and resumes).
// Screenshots are kept as test artefacts under target/ (not committed).
//
//   RINGGATE_BIN=target/debug/ringgate node --test dashboard.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const BIN = process.env.RINGGATE_BIN || path.join(root, "target/debug/ringgate");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTEFACTS = process.env.DASHBOARD_ARTEFACTS || path.join(root, "target");
// Generous: the CI machine has two cores shared with the gateway and the browser.
const WAIT = { timeout: 30000, polling: 200 };

async function freePort() {
  const srv = net.createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

async function startDemo(port, extra = []) {
  const child = spawn(BIN, ["demo", "--listen", `127.0.0.1:${port}`, "--shards", "1", "--no-pin",
                            "--rate", "3000", ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ringgate demo exited ${child.exitCode}: ${stderr}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`); // open even with keys on
      if (r.ok) return child;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`ringgate demo not healthy within 30 s: ${stderr}`);
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 10000);
  await once(child, "exit");
  clearTimeout(killer);
}

const text = (page, sel) => page.locator(sel).textContent();

async function openBrowser(t, colorScheme = "light") {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ringgate-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 1000 },
    colorScheme,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(async () => {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  });
  const page = browser.pages()[0] || await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { page, errors };
}
const number = (s) => Number(String(s).replace(/[^0-9.]/g, ""));

test("the dashboard shows the chain moving, filters its tail and survives a gateway restart", async (t) => {
  assert.ok(fs.existsSync(BIN), `no ringgate binary at ${BIN} (cargo build first)`);
  assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (.ci/install installs it)`);
  fs.mkdirSync(ARTEFACTS, { recursive: true });
  const port = await freePort();
  let gateway = await startDemo(port);
  t.after(() => stop(gateway));
  const { page, errors: pageErrors } = await openBrowser(t, "dark");

  const res = await page.goto(`http://127.0.0.1:${port}/dashboard`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-type"], /^text\/html/);
  await page.waitForFunction(() => document.getElementById("conn").dataset.state === "live", null, WAIT);

  // The head block advances.
  await page.waitForFunction(() => /#\d/.test(document.getElementById("head-block").textContent), null, WAIT);
  const first = number(await text(page, "#head-block"));
  await page.waitForFunction((n) => Number(document.getElementById("head-block").textContent.replace(/\D/g, "")) > n,
    first, WAIT);
  // A block reaches Finalized or beyond, in the blocks table.
  await page.waitForFunction(() => [...document.querySelectorAll("#blocks .stage")]
    .some((s) => s.textContent === "Finalized" || s.textContent === "Verified"), null, WAIT);
  assert.match(await text(page, "#head-final"), /finalized #[\d,]+/);
  // TPS above zero, events/s by kind, clients (this page at least), the tail.
  await page.waitForFunction(() => Number(document.getElementById("tps").textContent.replace(/[^0-9.]/g, "")) > 0,
    null, WAIT);
  await page.waitForFunction(() => document.querySelectorAll("#kinds tr").length > 3, null, WAIT);
  assert.ok(number(await text(page, "#clients")) >= 1, "the page's own connection counts as a client");
  assert.match(await text(page, "#lag"), /\d s$/);
  assert.match(await text(page, "#gaps"), /^\d/);
  assert.match(await text(page, "#drops"), /^\d/);
  await page.waitForFunction(() => new Set([...document.querySelectorAll("#tail tbody tr td:nth-child(2)")]
    .map((td) => td.textContent)).size > 2, null, WAIT);

  // The filter box narrows the tail to what matches, and an impossible filter empties it.
  await page.fill("#filter", "TxnLog");
  await page.waitForFunction(() => {
    const kinds = [...document.querySelectorAll("#tail tbody tr td:nth-child(2)")].map((td) => td.textContent);
    return kinds.length > 0 && kinds.every((k) => k === "TxnLog");
  }, null, WAIT);
  await page.fill("#filter", "no such event anywhere");
  await page.waitForFunction(() => document.querySelectorAll("#tail tbody tr").length === 0, null, WAIT);
  await page.fill("#filter", "");
  await page.waitForFunction(() => document.querySelectorAll("#tail tbody tr").length > 0, null, WAIT);
  // The subscription selector resubscribes (a resumed connection): soon the newest rows
  // are block events only.
  await page.selectOption("#tail-set", "blocks");
  await page.waitForFunction(() => {
    const kinds = [...document.querySelectorAll("#tail tbody tr td:nth-child(2)")].slice(0, 5).map((td) => td.textContent);
    return kinds.length === 5 && kinds.every((k) => k.startsWith("Block"));
  }, null, WAIT);
  await page.selectOption("#tail-set", "txs");
  await page.waitForFunction(() => document.querySelector("#tail tbody tr td:nth-child(2)")?.textContent.startsWith("Txn"),
    null, WAIT);
  assert.equal(await page.getAttribute("#conn", "data-state"), "live");
  await page.screenshot({ path: path.join(ARTEFACTS, "dashboard-screenshot.png"), fullPage: true });

  // The gateway goes away: the page says so, and that it is reconnecting.
  await stop(gateway);
  await page.waitForFunction(() => document.getElementById("conn").dataset.state === "reconnecting", null, WAIT);
  assert.match(await text(page, "#banner"), /Connection lost.*Reconnecting/);
  assert.ok(await page.locator("#banner").isVisible());
  await page.screenshot({ path: path.join(ARTEFACTS, "dashboard-disconnected.png") });

  // It comes back (a new server run on the same port): the page reconnects with its resume
  // cursor, is told the epoch changed, and the chain moves again.
  gateway = await startDemo(port);
  await page.waitForFunction(() => document.getElementById("conn").dataset.state === "live", null, WAIT);
  await page.waitForFunction(() => /Reconnected/.test(document.getElementById("banner").textContent), null, WAIT);
  assert.match(await text(page, "#banner"), /new epoch/);
  // The new run's chain replaces the old one's blocks, and moves.
  await page.waitForFunction(() => /#\d/.test(document.getElementById("head-block").textContent), null, WAIT);
  const again = number(await text(page, "#head-block"));
  await page.waitForFunction((n) => Number(document.getElementById("head-block").textContent.replace(/\D/g, "")) > n,
    again, WAIT);
  // The tail marks where the old run ended (found through the filter box).
  await page.fill("#filter", "new server epoch");
  await page.waitForFunction(() => {
    const kinds = [...document.querySelectorAll("#tail tbody tr.sys td:nth-child(2)")].map((td) => td.textContent);
    return kinds.length === 1 && kinds[0] === "Epoch";
  }, null, WAIT);
  await page.fill("#filter", "");
  const before = number(await text(page, "#meta").then((m) => m.match(/seqno ([\d,]+)/)?.[1] ?? "0"));
  await page.waitForFunction((n) => {
    const m = document.getElementById("meta").textContent.match(/seqno ([\d,]+)/);
    return m && Number(m[1].replace(/,/g, "")) > n;
  }, before, WAIT);

  // The root serves the page to a browser too.
  const rootRes = await page.goto(`http://127.0.0.1:${port}/`);
  assert.equal(rootRes.status(), 200);
  assert.equal(await page.title(), "ringgate · live");

  assert.deepEqual(pageErrors, [], "the page's script threw");
});

test("with access keys on, the page needs a key and passes it to its stream and REST reads", async (t) => {
  const token = "dashboard-secret";
  const keys = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ringgate-keys-")), "keys.toml");
  const sha = crypto.createHash("sha256").update(token).digest("hex");
  fs.writeFileSync(keys, `[[key]]\nname = "wall"\ntoken_sha256 = "${sha}"\n`);
  const port = await freePort();
  const gateway = await startDemo(port, ["--auth-keys", keys]);
  t.after(async () => {
    await stop(gateway);
    fs.rmSync(path.dirname(keys), { recursive: true, force: true });
  });
  const { page, errors } = await openBrowser(t);

  const refused = await page.goto(`http://127.0.0.1:${port}/dashboard`);
  assert.equal(refused.status(), 401);
  const res = await page.goto(`http://127.0.0.1:${port}/dashboard?token=${token}`);
  assert.equal(res.status(), 200);
  await page.waitForFunction(() => document.getElementById("conn").dataset.state === "live", null, WAIT);
  await page.waitForFunction(() => Number(document.getElementById("tps").textContent.replace(/[^0-9.]/g, "")) > 0,
    null, WAIT);
  // /v1/status and /metrics answered the page's Bearer token.
  await page.waitForFunction(() => document.querySelectorAll("#kinds tr").length > 3, null, WAIT);
  assert.ok(number(await text(page, "#clients")) >= 1);
  assert.deepEqual(errors, [], "the page's script threw");
});
