/**
 * The WebSocket under a client: the `ws` package under Node (it can send an `Authorization`
 * header, pause reading, and ping), the global `WebSocket` in browsers (and other runtimes
 * without Node's `process`). Picked at runtime; `ws` is only imported under Node.
 */
import { ConnectError, AuthenticationError, NotRinggateError, RequestRejected } from "./errors.js";
import { nowNs } from "./clock.js";

export type Incoming =
  | { kind: "message"; text: string; receivedNs: bigint }
  | { kind: "close"; code: number | undefined; reason: string; error?: Error };

export interface Transport {
  next(): Promise<Incoming>;
  send(text: string): void;
  /** Close handshake, bounded; then drop the TCP connection. */
  close(code?: number, reason?: string): void;
  /** Drop the connection now. */
  abort(): void;
}

export interface TransportOptions {
  token?: string | undefined;
  openTimeoutMs: number;
  /** Node only: ping interval; the connection is dropped after two silent intervals. */
  keepaliveMs: number;
  userAgent: string;
  maxPayload: number;
}

/** Statuses worth retrying on a reconnect. */
export const TRANSIENT_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export const isNode: boolean =
  typeof process !== "undefined" &&
  typeof process.versions === "object" &&
  typeof process.versions?.node === "string" &&
  typeof (globalThis as { window?: unknown }).window === "undefined";

export function redact(url: string): string {
  return url.replace(/([?&](?:token|access_token|key)=)[^&#]*/gi, "$1***");
}

/** Build the error for an HTTP answer other than 101. */
export function statusError(url: string, status: number, body: string): ConnectError {
  const where = redact(url);
  let message: string | undefined;
  try {
    const o = body ? (JSON.parse(body) as unknown) : undefined;
    if (o && typeof o === "object" && typeof (o as { error?: unknown }).error === "string") {
      message = (o as { error: string }).error;
    }
  } catch {
    /* not JSON */
  }
  const opts = { url: where, status, body };
  if (status === 401 || status === 403) {
    return new AuthenticationError(
      `${where}: HTTP ${status}: ${message ?? "token refused"}` +
        (status === 401 ? " (pass the access key as `token`)" : ""),
      opts,
    );
  }
  if (TRANSIENT_STATUS.has(status)) {
    return new ConnectError(`${where}: HTTP ${status}: ${message ?? body.slice(0, 100)}`, {
      ...opts,
      transient: true,
    });
  }
  if (message === undefined) {
    const snippet = body.replace(/\s+/g, " ").trim().slice(0, 100);
    return new NotRinggateError(
      `${where}: HTTP ${status} instead of a WebSocket upgrade, and no ringgate error body` +
        (snippet ? ` (${JSON.stringify(snippet)})` : "") +
        "; is this a ringgate gateway?",
      opts,
    );
  }
  return new RequestRejected(`${where}: HTTP ${status}: ${message}`, opts);
}

/**
 * A single-consumer queue of incoming frames. Above `highBytes` (or `highFrames`) of unread
 * frames it asks the socket to stop reading (`onHigh`); below a quarter of that it resumes
 * (`onLow`). A consumer slower than the stream thus makes the server's queue fill up: the
 * server drops frames and says so in a `Warning`, which the client repairs by resuming.
 */
class Inbox {
  private readonly items: Incoming[] = [];
  private head = 0;
  private bytes = 0;
  private waiter: ((v: Incoming) => void) | null = null;
  closed = false;
  paused = false;
  constructor(
    private readonly onHigh: () => void,
    private readonly onLow: () => void,
    private readonly highBytes = 16 * 1024 * 1024,
    private readonly highFrames = 8192,
  ) {}
  push(v: Incoming): void {
    if (this.closed) return;
    if (v.kind === "close") this.closed = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(v);
      return;
    }
    this.items.push(v);
    if (v.kind === "message") this.bytes += v.text.length;
    if (!this.paused && (this.bytes > this.highBytes || this.items.length - this.head > this.highFrames)) {
      this.paused = true;
      this.onHigh();
    }
  }
  next(): Promise<Incoming> {
    if (this.head < this.items.length) {
      const v = this.items[this.head++]!;
      if (v.kind === "message") this.bytes -= v.text.length;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items.splice(0, this.head);
        this.head = 0;
      }
      if (this.paused && this.bytes < this.highBytes / 4 && this.items.length - this.head < this.highFrames / 4) {
        this.paused = false;
        this.onLow();
      }
      return Promise.resolve(v);
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}

/** Open a WebSocket and wait for the upgrade. Rejects with a `ConnectError` (see `transient`). */
export async function openTransport(url: string, opts: TransportOptions): Promise<Transport> {
  return isNode ? openNode(url, opts) : openBrowser(url, opts);
}

const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ECONNABORTED",
]);

type WsModule = typeof import("ws");
let wsModule: Promise<WsModule> | undefined;

async function openNode(url: string, opts: TransportOptions): Promise<Transport> {
  wsModule ??= import("ws");
  const mod = await wsModule;
  const WS = (mod.default ?? (mod as unknown as { WebSocket: WsModule["default"] }).WebSocket) as WsModule["default"];
  const where = redact(url);
  const headers: Record<string, string> = { "User-Agent": opts.userAgent };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const ws = new WS(url, {
    headers,
    handshakeTimeout: opts.openTimeoutMs,
    perMessageDeflate: false,
    maxPayload: opts.maxPayload,
    followRedirects: false,
  });
  let lastActivity = Date.now();
  const inbox = new Inbox(
    () => ws.pause(),
    () => ws.resume(),
  );
  let keepalive: ReturnType<typeof setInterval> | undefined;
  let closeTimer: ReturnType<typeof setTimeout> | undefined;
  let pendingError: Error | undefined;

  // Listen before the upgrade completes: ws emits the first messages (Hello) synchronously
  // after 'open' when they came in the same read as the 101 answer.
  ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
    const receivedNs = nowNs();
    lastActivity = Date.now();
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString("utf8")
      : Buffer.isBuffer(data)
        ? data.toString("utf8")
        : Buffer.from(data).toString("utf8");
    inbox.push({ kind: "message", text, receivedNs });
  });
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (e: ConnectError) => {
      if (settled) return;
      settled = true;
      try {
        ws.terminate();
      } catch {
        /* already gone */
      }
      reject(e);
    };
    ws.once("open", () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    ws.once("unexpected-response", (req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        clearTimeout(t);
        req.destroy();
        fail(statusError(url, res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8")));
      };
      const t = setTimeout(done, 2000);
      res.on("data", (c: Buffer) => {
        if (size < 8192) chunks.push(c);
        size += c.length;
      });
      res.on("end", done);
      res.on("error", done);
    });
    ws.on("error", (err: Error & { code?: string }) => {
      if (settled) {
        pendingError = err;
        return;
      }
      const code = err.code ?? "";
      if (TRANSIENT_CODES.has(code) || /socket hang up|timed out|Opening handshake has timed out/i.test(err.message)) {
        fail(new ConnectError(`${where}: cannot connect: ${err.message}`, { url: where, transient: true }));
      } else {
        fail(
          new NotRinggateError(`${where}: WebSocket handshake failed (${err.message}); is this a ringgate gateway?`, {
            url: where,
          }),
        );
      }
    });
    ws.once("close", (code: number, reason: Buffer) => {
      fail(
        new ConnectError(`${where}: closed during the handshake (code ${code}${reason.length ? `: ${reason}` : ""})`, {
          url: where,
          transient: true,
        }),
      );
    });
  });

  ws.removeAllListeners("close");
  ws.on("ping", () => {
    lastActivity = Date.now();
  });
  ws.on("pong", () => {
    lastActivity = Date.now();
  });
  ws.on("close", (code: number, reason: Buffer) => {
    if (keepalive) clearInterval(keepalive);
    if (closeTimer) clearTimeout(closeTimer);
    const ev: Incoming = { kind: "close", code: code === 1005 ? undefined : code, reason: reason.toString("utf8") };
    if (pendingError) ev.error = pendingError;
    inbox.push(ev);
  });
  if (opts.keepaliveMs > 0) {
    keepalive = setInterval(() => {
      if (inbox.paused) {
        // Not reading (the consumer is behind): silence is ours, not the server's.
        lastActivity = Date.now();
        return;
      }
      if (Date.now() - lastActivity > 2 * opts.keepaliveMs) {
        pendingError = new Error(`no frame, ping or pong for ${Math.round((Date.now() - lastActivity) / 1000)} s`);
        ws.terminate();
        return;
      }
      try {
        ws.ping();
      } catch {
        /* closing */
      }
    }, opts.keepaliveMs);
    keepalive.unref?.();
  }

  return {
    next: () => inbox.next(),
    send: (text: string) => ws.send(text),
    close: (code = 1000, reason = "") => {
      try {
        ws.close(code, reason);
      } catch {
        ws.terminate();
        return;
      }
      closeTimer = setTimeout(() => ws.terminate(), 250);
      closeTimer.unref?.();
    },
    abort: () => ws.terminate(),
  };
}

interface BrowserWebSocket {
  readonly readyState: number;
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

async function openBrowser(url: string, opts: TransportOptions): Promise<Transport> {
  const Ctor = (globalThis as { WebSocket?: new (url: string) => BrowserWebSocket }).WebSocket;
  if (!Ctor) throw new ConnectError("no WebSocket implementation in this runtime", { url: redact(url) });
  const where = redact(url);
  let target = url;
  if (opts.token) {
    // Browsers cannot set headers: the access key goes as ?token= (docs/protocol.md §1).
    target += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(opts.token);
  }
  const ws = new Ctor(target);
  ws.binaryType = "arraybuffer";
  const decoder = new TextDecoder();
  const inbox = new Inbox(
    () => {},
    () => {},
  );
  ws.onmessage = (ev) => {
    const receivedNs = nowNs();
    const d = ev.data;
    const text = typeof d === "string" ? d : decoder.decode(d as ArrayBuffer);
    inbox.push({ kind: "message", text, receivedNs });
  };
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const t = setTimeout(() => {
      if (settled) return;
      settled = true;
      try {
        ws.close();
      } catch {
        /* ignore */
      }
      reject(new ConnectError(`${where}: no WebSocket upgrade within ${opts.openTimeoutMs} ms`, { url: where, transient: true }));
    }, opts.openTimeoutMs);
    ws.onopen = () => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      resolve();
    };
    const failed = (code?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      // Browsers hide the HTTP status of a refused upgrade: refused connection, 401 and a
      // non-ringgate server all look alike here.
      reject(
        new ConnectError(
          `${where}: WebSocket connection failed${code ? ` (close ${code})` : ""}; the browser does not tell why ` +
            "(server down, refused token, or not a ringgate gateway)",
          { url: where, transient: true },
        ),
      );
    };
    ws.onerror = () => failed();
    ws.onclose = (ev) => failed(ev.code);
  });
  ws.onerror = null;
  ws.onclose = (ev) => {
    inbox.push({ kind: "close", code: ev.code === 1005 ? undefined : ev.code, reason: ev.reason ?? "" });
  };
  return {
    next: () => inbox.next(),
    send: (text: string) => ws.send(text),
    close: (code = 1000, reason = "") => {
      try {
        ws.close(code, reason);
      } catch {
        /* ignore */
      }
      // The browser cannot abort a socket; deliver the close to the reader now.
      inbox.push({ kind: "close", code, reason: "closed by client" });
    },
    abort: () => {
      try {
        ws.close(1000);
      } catch {
        /* ignore */
      }
      inbox.push({ kind: "close", code: undefined, reason: "aborted by client" });
    },
  };
}
