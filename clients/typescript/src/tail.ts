#!/usr/bin/env node
/**
 * ringgate-tail: every event as one JSON line on stdout (exactly the event object the server
 * sent), status and gaps on stderr. Reconnects and resumes; `--cursor-file` persists the cursor
 * so a restart resumes where the last run stopped.
 */
import { parseArgs } from "node:util";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { connect, CHANNELS, MIN_STAGES } from "./client.js";
import type { Channel } from "./client.js";
import { formatCursor, parseCursor } from "./cursor.js";
import type { Cursor } from "./cursor.js";
import { RinggateError } from "./errors.js";
import type { FilterSpec } from "./filters.js";
import type { MinStage } from "./types.js";
import { VERSION } from "./version.js";

const USAGE = `usage: ringgate-tail [URL] [options]

Print every event of a ringgate stream as one JSON line on stdout (the event object exactly as
the server sent it); status, gaps and warnings go to stderr. Reconnects and resumes exactly.

  URL                     gateway base or full path (default ws://127.0.0.1:8443)
  --channel C             ${CHANNELS.join(", ")}
  --events LIST           comma-separated event names (and NativeTransfer, TPS, ContentionData,
                          TopAccesses, Lifecycle)
  --min-stage S           ${MIN_STAGES.join(", ")}
  --filter JSON           a filter spec {"event_name":…,"field_filters":[…]} (repeatable)
  --token T               access key (default: $RINGGATE_TOKEN)
  --cursor-file F         resume from the cursor in F (if it exists) and keep it up to date
  --from-cursor E:S       resume from this cursor (when there is no cursor file)
  --from-block N          start from the first stored event of block N
  --meta                  also print meta frames (TPS, Lifecycle, ...) as the server's frame
                          (implied when --events names one)
  --limit N               stop after the frame holding the N-th event
  --duration S            stop after S seconds
  --no-reconnect          exit on the first drop
  --quiet                 only gaps and errors on stderr
  -h, --help | --version

Exit status: 0 done (limit, duration, signal, closed pipe), 1 fatal error, 2 usage.`;

function usage(msg: string): never {
  process.stderr.write(`ringgate-tail: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function writeCursorFile(file: string, c: Cursor): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, formatCursor(c) + "\n");
  renameSync(tmp, file);
}

function readCursorFile(file: string): Cursor | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  if (text.trim() === "") return undefined;
  return parseCursor(text.trim());
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        channel: { type: "string" },
        events: { type: "string" },
        "min-stage": { type: "string" },
        filter: { type: "string", multiple: true },
        token: { type: "string" },
        "cursor-file": { type: "string" },
        "from-cursor": { type: "string" },
        "from-block": { type: "string" },
        meta: { type: "boolean" },
        limit: { type: "string" },
        duration: { type: "string" },
        "no-reconnect": { type: "boolean" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (e) {
    usage((e as Error).message);
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (v.version) {
    process.stdout.write(`ringgate-tail ${VERSION}\n`);
    return 0;
  }
  if (args.positionals.length > 1) usage("at most one URL");
  const url = args.positionals[0] ?? "ws://127.0.0.1:8443";
  if (v.channel !== undefined && !(CHANNELS as readonly string[]).includes(v.channel)) usage(`bad --channel ${v.channel}`);
  if (v["min-stage"] !== undefined && !(MIN_STAGES as readonly string[]).includes(v["min-stage"])) {
    usage(`bad --min-stage ${v["min-stage"]}`);
  }
  const filters: FilterSpec[] = [];
  for (const f of v.filter ?? []) {
    try {
      filters.push(JSON.parse(f) as FilterSpec);
    } catch {
      usage(`--filter is not JSON: ${f}`);
    }
  }
  const intArg = (name: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) usage(`bad --${name} ${s}`);
    return n;
  };
  const limit = intArg("limit", v.limit);
  const duration = intArg("duration", v.duration);
  const fromBlock = intArg("from-block", v["from-block"]);
  const cursorFile = v["cursor-file"];
  const quiet = v.quiet === true;
  const metaNamed = (v.events ?? "").split(",").some((n) => ["TPS", "ContentionData", "TopAccesses", "Lifecycle"].includes(n.trim()));
  const meta = v.meta === true || metaNamed;
  const status = (s: string) => {
    if (!quiet) process.stderr.write(`ringgate-tail: ${s}\n`);
  };

  let fromCursor: Cursor | undefined;
  try {
    if (cursorFile !== undefined) fromCursor = readCursorFile(cursorFile);
    if (fromCursor === undefined && v["from-cursor"] !== undefined) fromCursor = parseCursor(v["from-cursor"]);
  } catch (e) {
    usage((e as Error).message);
  }
  if (fromCursor) status(`resuming from ${formatCursor(fromCursor)}`);

  let client;
  try {
    client = connect(url, {
      channel: v.channel as Channel | undefined,
      events: v.events,
      filters: filters.length ? filters : undefined,
      minStage: v["min-stage"] as MinStage | undefined,
      token: v.token ?? process.env.RINGGATE_TOKEN ?? undefined,
      fromCursor,
      fromBlock,
      reconnect: v["no-reconnect"] !== true,
    });
  } catch (e) {
    usage((e as Error).message);
  }

  // stdout: one write per frame; the cursor file moves only once the frame's lines are written.
  let out = "";
  let pipeClosed = false;
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") {
      pipeClosed = true;
      void client.close();
    }
  });
  const flush = (): Promise<void> => {
    if (out === "" || pipeClosed) return Promise.resolve();
    const chunk = out;
    out = "";
    return new Promise((resolve) => {
      process.stdout.write(chunk, () => resolve());
    });
  };
  let saved: string | undefined = fromCursor ? formatCursor(fromCursor) : undefined;
  const saveCursor = () => {
    const c = client.cursor;
    if (cursorFile === undefined || c === null || pipeClosed) return;
    const s = formatCursor(c);
    if (s !== saved) {
      writeCursorFile(cursorFile, c);
      saved = s;
    }
  };

  let stopping = false;
  const stop = () => {
    stopping = true;
    void client.close();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (duration !== undefined) timer = setTimeout(stop, duration * 1000);

  let count = 0;
  try {
    for await (const item of client) {
      switch (item.type) {
        case "event":
          out += item.rawJson + "\n";
          count++;
          if (item.lastInFrame) {
            await flush();
            saveCursor();
            if (limit !== undefined && count >= limit) stop();
          }
          break;
        case "gap":
          process.stderr.write(
            `ringgate-tail: GAP reason=${item.reason}` +
              (item.fromSeqno !== undefined ? ` from_seqno=${item.fromSeqno}` : "") +
              (item.toSeqno !== undefined ? ` to_seqno=${item.toSeqno}` : "") +
              (item.ringFromSeqno !== undefined ? ` ring_from_seqno=${item.ringFromSeqno}` : "") +
              (item.ringToSeqno !== undefined ? ` ring_to_seqno=${item.ringToSeqno}` : "") +
              (item.blockNumber !== undefined ? ` block_number=${item.blockNumber}` : "") +
              (item.synthetic ? ` synthetic=true resume_reason=${item.resumeReason ?? ""}` : "") +
              ` epoch=${item.epoch} server_seqno=${item.serverSeqno}\n`,
          );
          await flush();
          saveCursor();
          break;
        case "warning":
          process.stderr.write(
            `ringgate-tail: BACKPRESSURE dropped=${item.dropped} total=${item.totalDropped ?? "?"} ` +
              `range=${item.droppedFromSeqno ?? "?"}..${item.droppedToSeqno ?? "?"}` +
              (item.recovering ? " (resuming to recover)" : "") +
              "\n",
          );
          break;
        case "shed":
          process.stderr.write(
            `ringgate-tail: SHED lane=${item.lane} dropped=${item.dropped} total_shed=${item.totalShed ?? "?"} ` +
              `range=${item.fromSeqno ?? "?"}..${item.toSeqno ?? "?"}` +
              (item.recovering ? " (resuming to recover)" : "") +
              "\n",
          );
          break;
        case "connected":
          status(
            `connected to ${item.url} (server ${item.serverVersion}, epoch ${item.epoch}, channel ${item.channel ?? "?"}, seqno ${item.serverSeqno})`,
          );
          break;
        case "resumed":
          status(
            `resume mode=${item.mode} reason=${item.reason ?? "?"} recovered=${item.recovered}` +
              (item.fromSeqno !== undefined ? ` replay=${item.fromSeqno}..${item.toSeqno}` : ""),
          );
          break;
        case "reconnecting":
          status(`reconnecting (attempt ${item.attempt}) in ${Math.round(item.delayMs)} ms: ${item.reason}`);
          break;
        default:
          // Meta frames (tps, lifecycle, contentionData, topAccesses).
          if (meta) out += JSON.stringify(item.raw) + "\n";
          if (!item.snapshot) {
            await flush();
            saveCursor();
          }
          break;
      }
      if (stopping && (item.type !== "event" || item.lastInFrame)) break;
    }
  } catch (e) {
    await flush();
    saveCursor();
    if (e instanceof RinggateError || e instanceof TypeError) {
      process.stderr.write(`ringgate-tail: error: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    if (timer) clearTimeout(timer);
  }
  await flush();
  saveCursor();
  status(`done: ${count} events` + (client.cursor ? `, cursor ${formatCursor(client.cursor)}` : ""));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Do not wait for timers or sockets of a closing client.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (e: unknown) => {
    process.stderr.write(`ringgate-tail: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
