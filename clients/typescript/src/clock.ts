/**
 * Wall-clock time in nanoseconds (`bigint`), for `receivedNs` and `latencyNs`.
 *
 * Node: `process.hrtime.bigint()` (monotonic, ns resolution) anchored to the wall clock. The
 * anchor is taken at the instant `Date.now()` ticks to a new millisecond (a spin of at most
 * ~1 ms, once), so the absolute error is that of the system clock plus a few microseconds,
 * and successive readings have nanosecond resolution. When the wall clock is stepped (NTP,
 * manual change) by more than 2 ms against the monotonic clock, the anchor is taken again.
 *
 * Browsers: `performance.timeOrigin + performance.now()` (resolution 5 µs to 1 ms depending on
 * the browser's timer coarsening), falling back to `Date.now() * 1e6` (1 ms resolution) when it
 * disagrees with `Date.now()` by more than 2 ms (a suspended tab, a stepped clock).
 *
 * `timestamp_ns` is the ring writer's CLOCK_REALTIME: a latency is only meaningful when both
 * hosts' clocks are synchronized (same host, or NTP/PTP).
 */

const hr: (() => bigint) | undefined =
  typeof process !== "undefined" && typeof process.hrtime?.bigint === "function"
    ? () => process.hrtime.bigint()
    : undefined;

let anchorWall = 0n; // ns since 1970 at anchorHr
let anchorHr = 0n;

function anchor(): void {
  const h = hr!;
  const start = Date.now();
  let ms = start;
  let t = h();
  // Wait for the millisecond to tick (bounded at ~2 ms in case the clock is stuck).
  const limit = t + 2_000_000n;
  while (ms === start && t < limit) {
    ms = Date.now();
    t = h();
  }
  anchorWall = BigInt(ms) * 1_000_000n;
  anchorHr = t;
}

/** Nanoseconds since 1970 (see module notes for precision). */
export function nowNs(): bigint {
  if (hr) {
    if (anchorHr === 0n) anchor();
    const t = hr();
    const v = anchorWall + (t - anchorHr);
    const wall = BigInt(Date.now()) * 1_000_000n;
    const diff = v - wall;
    if (diff > 2_000_000n || diff < -2_000_000n) {
      anchor();
      return anchorWall + (hr() - anchorHr);
    }
    return v;
  }
  const wallMs = Date.now();
  const perf = (globalThis as { performance?: { timeOrigin?: number; now(): number } }).performance;
  if (perf && typeof perf.timeOrigin === "number") {
    const ms = perf.timeOrigin + perf.now();
    if (Math.abs(ms - wallMs) <= 2) {
      const whole = Math.floor(ms);
      return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
    }
  }
  return BigInt(wallMs) * 1_000_000n;
}
