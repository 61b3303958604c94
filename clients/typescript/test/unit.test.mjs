// Unit tests (no server): cursors, URLs, exact JSON slicing, filters, the validator against the
// tables of docs/events.md, and fixtures for the kinds the synthetic chain never produces.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import {
  buildUrl,
  ENVELOPE_FIELDS,
  EVENT_NAMES,
  exactU64,
  formatCursor,
  hexToBigInt,
  latencyNs,
  Matcher,
  nowNs,
  parseCursor,
  PAYLOAD_FIELDS,
  splitTopics,
  toCursor,
  validateEvent,
  VERSION,
  connect,
} from "../dist/index.js";
import { sliceEvents } from "../dist/rawjson.js";

describe("cursor", () => {
  test("format / parse round trip and errors", () => {
    const c = { epoch: 1796390065076871, seqno: 24939 };
    assert.equal(formatCursor(c), "1796390065076871:24939");
    assert.deepEqual(parseCursor("1796390065076871:24939\n"), c);
    assert.deepEqual(toCursor("1:2"), { epoch: 1, seqno: 2 });
    assert.deepEqual(toCursor({ epoch: 1, seqno: 2 }), { epoch: 1, seqno: 2 });
    for (const bad of ["", "1", "1:", ":2", "a:b", "1:2:3", "-1:2", "99999999999999999:1", "1.5:2"]) {
      assert.throws(() => parseCursor(bad), TypeError, bad);
    }
    assert.throws(() => toCursor({ epoch: 1.5, seqno: 1 }), TypeError);
    assert.throws(() => connect("ws://x", { fromCursor: "nope" }), TypeError);
  });
});

describe("urls", () => {
  test("base, full paths, channels and query", () => {
    assert.equal(buildUrl("ws://h:1", undefined, []), "ws://h:1/v1/ws");
    assert.equal(buildUrl("ws://h:1/", "txs", []), "ws://h:1/v1/ws/txs");
    assert.equal(buildUrl("http://h:1/v1/ws/blocks", undefined, []), "ws://h:1/v1/ws/blocks");
    assert.equal(buildUrl("https://h/v1/ws/blocks", "all", []), "wss://h/v1/ws");
    assert.equal(buildUrl("ws://h/prefix", "lifecycle", []), "ws://h/prefix/v1/ws/lifecycle");
    assert.equal(
      buildUrl("ws://h/v1/ws?resume_from=5&epoch=1&x=y&events=A", undefined, [["events", "TxnLog,BlockStart"], ["min_stage", "Voted"]]),
      "ws://h/v1/ws?x=y&events=TxnLog,BlockStart&min_stage=Voted",
    );
    assert.equal(buildUrl("ws://h/v1/ws?events=TxnLog", undefined, []), "ws://h/v1/ws?events=TxnLog");
    assert.throws(() => buildUrl("ftp://h", undefined, []), TypeError);
    assert.throws(() => buildUrl("ws://h", "nope", []), TypeError);
    assert.throws(() => connect("ws://h", { minStage: "Soon" }), TypeError);
    assert.throws(() => connect("ws://h", { events: "TxnLog,txnlog" }), /unknown event name "txnlog"/);
  });
});

describe("exact JSON", () => {
  test("sliceEvents keeps each event's exact text; exactU64 reads u64 beyond 2^53", () => {
    const e1 = '{"event_name":"BlockStart","payload":{"type":"BlockStart","proposal_epoch_nanos":1756684802050000001,"extra_data":"0x"},"seqno":1,"timestamp_ns":1796390097238909437}';
    const e2 = '{"event_name":"X","payload":{"s":"a}]\\"[{","n":[1,{"a":[]}]},"seqno":2,"timestamp_ns":1796390097238909999}';
    const frame = `{"server_seqno":9,"Events":[${e1}, ${e2}]}`;
    assert.deepEqual(sliceEvents(frame), [e1, e2]);
    assert.deepEqual(sliceEvents('{"server_seqno":1,"Events":[]}'), []);
    assert.equal(sliceEvents('{"server_seqno":1,"TPS":3}'), null);
    assert.equal(exactU64(e1, "timestamp_ns"), 1796390097238909437n);
    assert.equal(exactU64({ rawJson: e1 }, "proposal_epoch_nanos"), 1756684802050000001n);
    assert.equal(exactU64(e1, "missing"), undefined);
    assert.equal(hexToBigInt("0x3b541e0b1"), 0x3b541e0b1n);
    assert.equal(hexToBigInt("0x"), 0n);
    assert.deepEqual(splitTopics("0x" + "aa".repeat(32) + "bb".repeat(32)), ["0x" + "aa".repeat(32), "0x" + "bb".repeat(32)]);
    assert.deepEqual(splitTopics("0x"), []);
  });

  test("latencyNs and nowNs", () => {
    const t0 = nowNs();
    const wall = BigInt(Date.now()) * 1_000_000n;
    assert.ok(t0 - wall < 3_000_000n && wall - t0 < 3_000_000n, `${t0} vs ${wall}`);
    const t1 = nowNs();
    assert.ok(t1 >= t0);
    const ev = { timestampNs: 1_000_000_000_000_000_000n, receivedNs: 1_000_000_000_000_250_000n };
    assert.equal(latencyNs(ev), 250_000);
    assert.equal(latencyNs(ev, 1_000_000_000_001_000_000n), 1_000_000);
  });
});

describe("filters (client-side matcher mirrors src/serve/filter.rs)", () => {
  const A = "0x" + "aa".repeat(20);
  const B = "0x" + "bb".repeat(20);
  const T1 = "0x" + "11".repeat(32);
  const T2 = "0x" + "22".repeat(32);
  const log = (address, topics, txn = 0, logIndex = 0) => ({
    event_name: "TxnLog",
    txn_idx: txn,
    payload: { type: "TxnLog", txn_index: txn, log_index: logIndex, address, topics: "0x" + topics.map((t) => t.slice(2)).join(""), data: "0x" },
  });
  const call = (caller, target, value, input = "0x") => ({
    event_name: "TxnCallFrame",
    txn_idx: 5,
    payload: { type: "TxnCallFrame", txn_index: 5, caller, call_target: target, value, input },
  });

  test("events without specs pass; specs OR, field filters AND; hex any case", () => {
    const m = new Matcher(["BlockStart"], [
      { event_name: "TxnLog", field_filters: [{ field: "address", filter: { values: [A.toUpperCase().replace("0X", "0x")] } }, { field: "log_index", filter: { min: 1 } }] },
      { event_name: "TxnLog", field_filters: [{ field: "topics", filter: { values: [null, [T1, T2]] } }] },
    ]);
    assert.ok(m.matches({ event_name: "BlockStart", payload: {} }));
    assert.ok(!m.matches({ event_name: "BlockEnd", payload: {} }));
    assert.ok(m.matches(log(A, [], 0, 1)));
    assert.ok(!m.matches(log(A, [], 0, 0)));
    assert.ok(m.matches(log(B, [T2, T1])));
    assert.ok(m.matches(log(B, [T1, T2, T2])));
    assert.ok(!m.matches(log(B, [T1])), "fewer topics than slots");
    assert.ok(!m.matches(log(B, [T1, "0x" + "33".repeat(32)])));
  });

  test("NativeTransfer is TxnCallFrame with a non-zero value; selector and txn_index", () => {
    const m = new Matcher(["NativeTransfer"], []);
    assert.ok(m.matches(call(A, B, "0x1")));
    assert.ok(!m.matches(call(A, B, "0x0")));
    const s = new Matcher(undefined, [
      { event_name: "TxnCallFrame", field_filters: [{ field: "selector", filter: { values: ["A9059CBB"] } }, { field: "txn_index", filter: { max: 5 } }] },
    ]);
    assert.ok(s.matches(call(A, B, "0x0", "0xa9059cbb00")));
    assert.ok(!s.matches(call(A, B, "0x0", "0xa9059c")));
    const h = new Matcher(undefined, [{ event_name: "TxnHeaderStart", field_filters: [{ field: "address", filter: { values: [B] } }] }]);
    const hdr = (create) => ({ event_name: "TxnHeaderStart", payload: { sender: A, to: B, is_contract_creation: create, data: "0x" } });
    assert.ok(h.matches(hdr(false)));
    assert.ok(!h.matches(hdr(true)), "`to` of a contract creation is not an address of the event");
  });
});

describe("schema", () => {
  const docsPath = new URL("../../../docs/events.md", import.meta.url);

  test("the validator's field tables equal docs/events.md", (t) => {
    if (!existsSync(docsPath)) {
      t.skip("docs/events.md not found (not running inside the ringgate repository)");
      return;
    }
    const md = readFileSync(docsPath, "utf8");
    const sections = md.split(/^### /m).slice(1);
    const documented = new Map();
    for (const sec of sections) {
      const heading = sec.split("\n", 1)[0];
      const names = [...heading.matchAll(/([A-Za-z]+) \((?:code )?\d+\)/g)].map((m) => m[1]);
      const fields = {};
      for (const line of sec.split("\n")) {
        if (!line.startsWith("| `")) continue;
        const cells = line.split("|").map((c) => c.trim());
        const optional = /optional/.test(cells[2]) || /when known/.test(cells[3] ?? "");
        for (const m of cells[1].matchAll(/`([a-z_0-9]+)`/g)) fields[m[1]] = optional;
      }
      for (const n of names) documented.set(n, fields);
    }
    assert.deepEqual([...documented.keys()].sort(), [...EVENT_NAMES].sort());
    for (const name of EVENT_NAMES) {
      const ours = Object.fromEntries(Object.entries(PAYLOAD_FIELDS[name]).map(([k, v]) => [k, v.endsWith("?")]));
      assert.deepEqual(ours, documented.get(name), `${name} fields/optionality differ from docs/events.md`);
    }
    // Envelope.
    const env = md.slice(md.indexOf("## Envelope"), md.indexOf("## Payloads"));
    const envFields = {};
    for (const line of env.split("\n")) {
      if (!line.startsWith("| `")) continue;
      const cells = line.split("|").map((c) => c.trim());
      envFields[cells[1].replaceAll("`", "")] = cells[3] !== "always";
    }
    const oursEnv = Object.fromEntries(Object.entries(ENVELOPE_FIELDS).map(([k, v]) => [k, v.endsWith("?")]));
    delete envFields.payload;
    assert.deepEqual(oursEnv, envFields);
  });

  // Kinds the synthetic chain never produces, written from docs/events.md.
  const H32 = "0x" + "ab".repeat(32);
  const fixtures = [
    {
      event_name: "RecordError",
      block_number: 15000001,
      txn_idx: 3,
      payload: {
        type: "RecordError",
        error_type: 1,
        dropped_event_type: 18,
        truncated_payload_size: 8176,
        requested_payload_size: 20000,
        error_name: "OVERFLOW_4GB",
        dropped_event_name: "TxnLog",
        truncated_payload: "0x00ff",
      },
      seqno: 10,
      timestamp_ns: 1769023529012366455,
    },
    {
      event_name: "TxnReject",
      block_number: 15000001,
      block_id: H32,
      txn_idx: 2,
      txn_hash: H32,
      commit_stage: "Proposed",
      payload: { type: "TxnReject", txn_index: 2, reason: 3, reason_name: "BadNonce" },
      seqno: 11,
      timestamp_ns: 1769023529012366456,
    },
    {
      event_name: "EvmError",
      block_number: 15000001,
      block_id: H32,
      commit_stage: "Rejected",
      payload: { type: "EvmError", domain_id: 7, status_code: -2 },
      seqno: 12,
      timestamp_ns: 1769023529012366457,
    },
  ];

  test("fixtures of RecordError, TxnReject, EvmError validate; wrong ones do not", () => {
    for (const f of fixtures) assert.deepEqual(validateEvent(f), { errors: [], extra: [] }, f.event_name);
    const missing = structuredClone(fixtures[1]);
    delete missing.payload.reason;
    assert.deepEqual(validateEvent(missing).errors, ["TxnReject.payload.reason: missing"]);
    const noName = structuredClone(fixtures[1]);
    delete noName.payload.reason_name; // optional ("when known")
    assert.deepEqual(validateEvent(noName).errors, []);
    const wrong = structuredClone(fixtures[2]);
    wrong.payload.status_code = "x";
    wrong.commit_stage = "Maybe";
    assert.equal(validateEvent(wrong).errors.length, 2);
    const extra = structuredClone(fixtures[0]);
    extra.payload.future_field = 1;
    extra.new_envelope_key = true;
    const v = validateEvent(extra);
    assert.deepEqual(v.errors, [], "unknown keys are not errors");
    assert.deepEqual(v.extra.sort(), ["RecordError.payload.future_field", "event.new_envelope_key"]);
    assert.match(validateEvent({ ...fixtures[0], event_name: "Nope" }).errors[0], /unknown kind/);
    assert.match(validateEvent({ ...fixtures[0], event_name: "TxnEnd" }).errors.join(), /differs from event_name/);
  });
});

test("VERSION equals package.json", () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(VERSION, pkg.version);
});
