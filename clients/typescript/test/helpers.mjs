// Test helpers: a real ringgate server (synthetic ring written by `ringgate write` in a temp
// dir, served by `ringgate serve` on a free port), a cutting TCP proxy, and time bounds.
// Every child process is killed when the test file ends (after() hooks plus an exit hook).
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import http from "node:http";

export const RINGGATE_BIN = process.env.RINGGATE_BIN || "/work/bin/ringgate";

/** The server binary, or a clear failure. */
export function requireBinary() {
  try {
    accessSync(RINGGATE_BIN, constants.X_OK);
  } catch {
    throw new Error(
      `ringgate server binary not found or not executable: RINGGATE_BIN=${RINGGATE_BIN}. ` +
        "Build it (cargo build --release) and point RINGGATE_BIN at target/release/ringgate.",
    );
  }
  return RINGGATE_BIN;
}

/** Whether `ringgate serve` has a flag (the prebuilt binary may predate some). */
export function serveSupports(flag) {
  const r = spawnSync(requireBinary(), ["serve", "--help"], { encoding: "utf8", timeout: 5000 });
  return (r.stdout || "").includes(flag);
}

const children = new Set();
/** SIGKILL a child; under `timeout` (its own process group) the whole group. */
function hardKill(c) {
  try {
    if (c.group) process.kill(-c.pid, "SIGKILL");
    else c.kill("SIGKILL");
  } catch {
    /* gone */
  }
}
function killAll() {
  for (const c of children) hardKill(c);
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, () => {
    killAll();
    process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
  });
}

// Every server process runs under `timeout -s KILL`: if this test process is killed outright
// (SIGKILL, a runner timeout), its children still die. (An orphaned ringgate whose stdio pipes
// are gone does not exit on SIGTERM, so nothing else would stop it.)
const CHILD_LIFETIME_S = 180;
const TIMEOUT_BIN = ["/usr/bin/timeout", "/bin/timeout"].find((p) => existsSync(p));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Reject after `ms` with `what` in the message. */
export function within(ms, what, p) {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

export function httpGetJson(url, timeoutMs = 2000, token) {
  return new Promise((resolve, reject) => {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const req = http.get(url, { timeout: timeoutMs, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode, body: JSON.parse(body) });
        } catch {
          resolve({ status: res.statusCode, body });
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

function spawnChild(args, label) {
  const child = TIMEOUT_BIN
    ? spawn(TIMEOUT_BIN, ["-s", "KILL", String(CHILD_LIFETIME_S), requireBinary(), ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(requireBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
  // GNU timeout puts itself and the command in a new process group (pgid = its pid).
  child.group = Boolean(TIMEOUT_BIN);
  children.add(child);
  let log = "";
  const keep = (d) => {
    log += d;
    if (log.length > 20000) log = log.slice(-10000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.on("exit", () => children.delete(child));
  child.log = () => `${label}: ${log}`;
  return child;
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => hardKill(child), 2000);
  await exited;
  clearTimeout(t);
}

/**
 * Start `ringgate write` (synthetic chain) and `ringgate serve` on a free port (or `port`).
 * Returns {url, port, http, epoch, status(), halt(signal), stop()}.
 */
export async function startServer({ rate = 5000, serveArgs = [], waitHead = 1, ring: sharedRing, token, port: fixedPort } = {}) {
  requireBinary();
  // With `ring`, serve an existing ring (another server's writer keeps writing it).
  const dir = sharedRing ? null : mkdtempSync(join(tmpdir(), "ringgate-ts-test-"));
  const ring = sharedRing ?? join(dir, "ring");
  let writer = null;
  let server = null;
  const stop = async () => {
    await Promise.all([server && stopChild(server), writer && stopChild(writer)]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (!sharedRing) writer = spawnChild(["write", "--ring", ring, "--rate", String(rate)], "writer");
    const deadline = Date.now() + 15000;
    while (!existsSync(ring)) {
      if (writer && writer.exitCode !== null) throw new Error(`ringgate write exited: ${writer.log()}`);
      if (Date.now() > deadline) throw new Error(`ring file not created: ${writer?.log()}`);
      await sleep(20);
    }
    const port = fixedPort ?? (await freePort());
    server = spawnChild(
      ["serve", "--ring", ring, "--listen", `127.0.0.1:${port}`, "--shards", "1", "--no-pin", ...serveArgs],
      "server",
    );
    const httpUrl = `http://127.0.0.1:${port}`;
    let status;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`ringgate serve exited (${server.exitCode}): ${server.log()}`);
      if (Date.now() > deadline) throw new Error(`ringgate serve not ready: ${server.log()}`);
      try {
        const r = await httpGetJson(`${httpUrl}/v1/status`, 500, token);
        if (r.status === 200 && typeof r.body.epoch === "number" && (r.body.server_seqno ?? 0) >= waitHead) {
          status = r.body;
          break;
        }
      } catch {
        /* not listening yet */
      }
      await sleep(50);
    }
    return {
      url: `ws://127.0.0.1:${port}`,
      http: httpUrl,
      port,
      ring,
      epoch: status.epoch,
      async status() {
        return (await httpGetJson(`${httpUrl}/v1/status`, 2000, token)).body;
      },
      /** Signal the server (SIGKILL: with its `timeout` wrapper) and wait: {code, signal}. */
      async halt(signal) {
        const exited = new Promise((r) => server.once("exit", (code, sig) => r({ code, signal: sig })));
        if (signal === "SIGKILL") hardKill(server);
        else server.kill(signal); // GNU timeout hands the signal on to ringgate
        return exited;
      },
      stop,
      log: () => (server ? server.log() : "") + (writer ? "\n" + writer.log() : ""),
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A TCP proxy to 127.0.0.1:targetPort whose connections can be cut (TCP reset). */
export async function startProxy(targetPort) {
  const pairs = new Set();
  let target = targetPort;
  const server = net.createServer((c) => {
    const u = net.connect(target, "127.0.0.1");
    const pair = { c, u };
    pairs.add(pair);
    c.pipe(u);
    u.pipe(c);
    const end = () => {
      c.destroy();
      u.destroy();
      pairs.delete(pair);
    };
    c.on("error", end);
    u.on("error", end);
    c.on("close", end);
    u.on("close", end);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    get connections() {
      return pairs.size;
    },
    /** Stop reading from the server for `ms` (the server's queue for the client fills up). */
    stall(ms) {
      for (const { u } of pairs) u.pause();
      setTimeout(() => {
        for (const { u } of pairs) u.resume();
      }, ms);
    },
    /** Send new connections to another port. */
    retarget(port) {
      target = port;
    },
    /** Reset every open connection; returns how many were cut. */
    cut() {
      const n = pairs.size;
      for (const { c, u } of pairs) {
        c.resetAndDestroy();
        u.resetAndDestroy();
      }
      pairs.clear();
      return n;
    },
    close() {
      this.cut();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Collect items from a client until `until(item, items)` is true (or `ms` elapses: error). */
export async function collect(client, ms, until, what = "collect") {
  const items = [];
  await within(
    ms,
    what,
    (async () => {
      for await (const it of client) {
        items.push(it);
        if (until(it, items)) break;
      }
    })(),
  ).finally(() => client.close());
  return items;
}

/**
 * Assert two long sequences are equal, reporting only the first difference (a full diff of
 * thousands of items makes megabytes of test output).
 */
export function assertSameSeq(actual, expected, what = "sequence") {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    const x = JSON.stringify(actual[i]);
    const y = JSON.stringify(expected[i]);
    if (x !== y) {
      const ctx = (l) => JSON.stringify(l.slice(Math.max(0, i - 2), i + 3)).slice(0, 400);
      throw new Error(`${what}: first difference at index ${i}: got ${x.slice(0, 300)}, expected ${y.slice(0, 300)}\n  got around it: ${ctx(actual)}\n  expected: ${ctx(expected)}`);
    }
  }
  if (actual.length !== expected.length) {
    throw new Error(`${what}: lengths differ (${actual.length} vs ${expected.length}); equal for the first ${n}`);
  }
}
