"""Offline unit tests: cursor, URLs, frame parsing, typed decoding, local filter matching."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest

from ringgate_client import (
    EVENT_KINDS,
    PAYLOAD_TYPES,
    ContentionData,
    Cursor,
    DecodeError,
    Event,
    EvmError,
    RecordError,
    TxnLog,
    TxnReject,
    UnknownPayload,
    connect,
    field_filter,
    hex_to_int,
    latency_ns,
)
from ringgate_client.client import build_url
from ringgate_client.decode import decode_meta, parse_frame
from ringgate_client.filters import Matcher, query_events, subscribe_message

DOCS = Path(__file__).resolve().parents[3] / "docs"


# --------------------------------------------------------------------------- cursor


def test_cursor_roundtrip():
    c = Cursor(1796388211650773, 42)
    assert str(c) == "1796388211650773:42"
    assert Cursor.parse(str(c)) == c
    assert Cursor.parse(" 1:2\n") == Cursor(1, 2)
    assert Cursor.parse(c) is c
    for bad in ("", "1", "1:2:3", "a:b", "-1:2", "1:-2", "1.5:2"):
        with pytest.raises(ValueError):
            Cursor.parse(bad)
    with pytest.raises(ValueError):
        Cursor(-1, 0)


def test_connect_accepts_cursor_string_and_validates():
    assert connect("ws://h:1", from_cursor="5:6").cursor == Cursor(5, 6)
    with pytest.raises(ValueError):
        connect("ws://h:1", channel="nope")
    with pytest.raises(ValueError):
        connect("ws://h:1", min_stage="finalized")
    with pytest.raises(ValueError):
        connect("ftp://h:1")


# --------------------------------------------------------------------------- urls


@pytest.mark.parametrize("url,channel,expected", [
    ("ws://h:1", None, "ws://h:1/v1/ws"),
    ("ws://h:1/", "txs", "ws://h:1/v1/ws/txs"),
    ("ws://h:1", "all", "ws://h:1/v1/ws"),
    ("ws://h:1/v1/ws/blocks", None, "ws://h:1/v1/ws/blocks"),
    ("ws://h:1/v1/ws/blocks", "lifecycle", "ws://h:1/v1/ws/lifecycle"),
    ("ws://h:1/v1/ws", "contention", "ws://h:1/v1/ws/contention"),
    ("https://gw.example/ringgate/", "txs", "wss://gw.example/ringgate/v1/ws/txs"),
])
def test_build_url_paths(url, channel, expected):
    assert build_url(url, channel, {}) == expected


def test_build_url_query_is_managed():
    u = build_url("ws://h:1/v1/ws?resume_from=9&keep=1&events=X", None,
                  {"resume_from": "5", "epoch": "7", "events": "TxnLog,TPS", "min_stage": "Finalized"})
    assert u == "ws://h:1/v1/ws?keep=1&resume_from=5&epoch=7&events=TxnLog,TPS&min_stage=Finalized"


def test_query_events_adds_filter_names():
    flt = [{"event_name": "TxnLog", "field_filters": []}]
    assert query_events(None, None) is None
    assert query_events(["BlockStart"], flt) == ["BlockStart", "TxnLog"]
    assert query_events(None, flt) == ["TxnLog"]
    assert subscribe_message(None, flt, None) == {"subscribe": {"events": [], "filters": flt}}


# --------------------------------------------------------------------------- frames


def test_events_frame_keeps_exact_event_text():
    e1 = '{"event_name":"TxnEnd","payload":{"type":"TxnEnd"},"seqno":1,"timestamp_ns":5}'
    e2 = '{ "event_name" : "TxnLog", "payload": {"type":"TxnLog","x":[1, 2]}, "seqno": 2, "timestamp_ns": 6 }'
    text = '{"server_seqno":77,"Events":[' + e1 + " , " + e2 + "]}"
    f = parse_frame(text)
    assert (f.type, f.server_seqno, f.event_texts) == ("Events", 77, [e1, e2])
    assert parse_frame('{"server_seqno":3,"Events":[]}').body == []
    # A differently laid out envelope still parses (re-encoded compactly).
    g = parse_frame('{"Events":[{"a":1}],"server_seqno":4}')
    assert g.server_seqno == 4 and g.event_texts == ['{"a":1}']


def test_event_decoding_and_forward_compat():
    raw = {"event_name": "TxnLog", "block_number": 1, "txn_idx": 0, "commit_stage": "Proposed",
           "payload": {"type": "TxnLog", "txn_index": 0, "log_index": 1, "address": "0x" + "11" * 20,
                       "topics": "0x" + "aa" * 32 + "bb" * 32, "data": "0x", "brand_new": [1]},
           "seqno": 9, "timestamp_ns": 1000, "another_new_key": True}
    e = Event(raw, server_seqno=10, epoch=3, received_ns=1500)
    assert isinstance(e.payload, TxnLog) and e.payload.log_index == 1
    assert e.payload.topic_list == ["0x" + "aa" * 32, "0x" + "bb" * 32]
    assert e.payload.raw["brand_new"] == [1] and e.raw["another_new_key"] is True
    assert e.block_id is None and e.txn_hash is None
    assert latency_ns(e) == 500 and latency_ns(e, now_ns=2000) == 1000
    Event(raw, strict=True)  # extra keys are fine in strict mode too
    unknown = Event({"event_name": "Future", "payload": {"type": "Future", "z": 1}, "seqno": 1, "timestamp_ns": 1})
    assert isinstance(unknown.payload, UnknownPayload) and unknown.payload.raw["z"] == 1


def test_strict_decoding_reports_missing_and_mistyped():
    raw = {"event_name": "TxnLog", "payload": {"type": "TxnLog", "txn_index": "0", "address": "0x"},
           "seqno": 1, "timestamp_ns": 1}
    with pytest.raises(DecodeError) as ei:
        Event(raw, strict=True)
    msg = str(ei.value)
    assert "txn_index: expected int" in msg and "log_index: missing" in msg
    with pytest.raises(DecodeError, match="seqno: missing"):
        Event({"event_name": "TxnEnd", "payload": {"type": "TxnEnd"}, "timestamp_ns": 1}, strict=True)
    # Non-strict decoding never fails on a missing field.
    assert Event(raw).payload.log_index is None


def test_meta_frames_decode_and_int_floats():
    body = {"block_number": 1, "block_id": "0x01", "block_wall_time_ns": 5, "total_tx_time_ns": 5,
            "parallel_efficiency_pct": 0, "parallel_speedup": 1, "total_unique_slots": 0,
            "contended_slot_count": 0, "contention_ratio": 0, "total_txn_count": 0, "timed_txn_count": 0,
            "top_contended_slots": [], "top_contended_contracts": [
                {"address": "0x1", "total_slots": 1, "contended_slots": 1, "total_accesses": 2,
                 "contention_score": 1}],
            "contract_edges": []}
    f = parse_frame(json.dumps({"server_seqno": 5, "ContentionData": body}))
    c = decode_meta(f, epoch=1, received_ns=2, strict=True)
    assert isinstance(c, ContentionData) and c.parallel_efficiency_pct == 0.0
    assert isinstance(c.parallel_efficiency_pct, float)
    assert c.top_contended_contracts[0].contention_score == 1.0
    t = decode_meta(parse_frame('{"server_seqno":5,"TPS":12}'), epoch=1, received_ns=2, strict=True)
    assert t.tps == 12 and t.server_seqno == 5


# Hand-made from the encoder (src/ingest/event/json.rs): the synthetic chain never produces
# these three kinds, so they cannot come from real server output (see test_conformance.py).
RARE = {
    "RecordError": {"event_name": "RecordError", "block_number": 1000001, "txn_idx": 3,
                    "payload": {"type": "RecordError", "error_type": 1, "dropped_event_type": 18,
                                "truncated_payload_size": 8176, "requested_payload_size": 9000000,
                                "error_name": "OVERFLOW_4GB", "dropped_event_name": "TxnLog",
                                "truncated_payload": "0x0001"},
                    "seqno": 5, "timestamp_ns": 1769023529012366455},
    "TxnReject": {"event_name": "TxnReject", "block_number": 1000001, "block_id": "0x" + "ab" * 32,
                  "txn_idx": 2, "txn_hash": "0x" + "cd" * 32, "commit_stage": "Proposed",
                  "payload": {"type": "TxnReject", "txn_index": 2, "reason": 4, "reason_name": "BadNonce"},
                  "seqno": 6, "timestamp_ns": 1769023529012366456},
    "EvmError": {"event_name": "EvmError", "block_number": 1000001, "block_id": "0x" + "ab" * 32,
                 "commit_stage": "Rejected",
                 "payload": {"type": "EvmError", "domain_id": 7, "status_code": -3},
                 "seqno": 7, "timestamp_ns": 1769023529012366457},
}


@pytest.mark.parametrize("kind", sorted(RARE))
def test_rare_kinds_decode_strictly(kind):
    e = Event(RARE[kind], strict=True)
    assert type(e.payload) is PAYLOAD_TYPES[kind]
    if kind == "EvmError":
        assert isinstance(e.payload, EvmError) and e.payload.status_code == -3
    if kind == "TxnReject":
        assert isinstance(e.payload, TxnReject) and e.payload.reason_name == "BadNonce"
    if kind == "RecordError":
        assert isinstance(e.payload, RecordError) and e.payload.dropped_event_name == "TxnLog"
    # Optional names may be absent ("when known").
    trimmed = json.loads(json.dumps(RARE[kind]))
    for k in ("reason_name", "error_name", "dropped_event_name"):
        trimmed["payload"].pop(k, None)
    Event(trimmed, strict=True)


def test_hex_to_int():
    assert hex_to_int("0x0") == 0 and hex_to_int("0x") == 0 and hex_to_int("0x3b541e0b1") == 0x3B541E0B1


# --------------------------------------------------------------------------- docs cross-check

_DOC_TYPES = {
    "number": int, "string": str, "bool": bool, "hex32": str, "address": str, "hex": str, "u256": str,
    "array of hex32": list,
}


def _doc_tables() -> dict[str, dict[str, tuple[type, bool]]]:
    text = (DOCS / "events.md").read_text()
    out: dict[str, dict[str, tuple[type, bool]]] = {}
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    for sec in sections:
        head, _, body = sec.partition("\n")
        if not re.search(r"\(\w*\s*\d+\)", head):
            continue
        names = re.findall(r"([A-Z][A-Za-z]+) \((?:code )?\d+\)", head)
        fields: dict[str, tuple[type, bool]] = {}
        for row in re.findall(r"^\|(.+)\|$", body, flags=re.M):
            cells = [c.strip() for c in row.split("|")]
            if len(cells) < 2 or not cells[0].startswith("`"):
                continue
            tdesc = cells[1]
            optional = "optional" in tdesc
            base = re.sub(r"\s*\(.*?\)|,\s*optional", "", tdesc).strip()
            for fname in re.findall(r"`([a-z_0-9]+)`", cells[0]):
                fields[fname] = (_DOC_TYPES[base], optional)
        for n in names:
            out[n] = fields
    return out


@pytest.mark.skipif(not (DOCS / "events.md").exists(), reason="docs/events.md not found next to clients/")
def test_payload_classes_match_docs_events_md():
    docs = _doc_tables()
    assert set(docs) == set(EVENT_KINDS), set(docs) ^ set(EVENT_KINDS)
    for kind, fields in docs.items():
        cls = PAYLOAD_TYPES[kind]
        ours = {k: (tp, req) for k, tp, req in cls.documented_fields() if k != "type"}
        assert set(ours) == set(fields), (kind, set(ours) ^ set(fields))
        for fname, (dtype, optional) in fields.items():
            tp, required = ours[fname]
            assert (typing.get_origin(tp) or tp) is dtype, (kind, fname, tp, dtype)
            # "when known" names are optional in ours even where the table does not say so.
            if optional:
                assert not required, (kind, fname)


# --------------------------------------------------------------------------- matcher


def _log(address, topics=(), txn_index=0, log_index=0):
    return {"event_name": "TxnLog", "txn_idx": txn_index,
            "payload": {"type": "TxnLog", "txn_index": txn_index, "log_index": log_index, "address": address,
                        "topics": "0x" + "".join(t[2:] for t in topics), "data": "0x"}}


def test_matcher_semantics():
    a, b = "0x" + "11" * 20, "0x" + "22" * 20
    t1, t2, t3 = ("0x" + c * 64 for c in "123")
    spec = lambda *ffs: {"event_name": "TxnLog", "field_filters": list(ffs)}  # noqa: E731
    m = Matcher(None, [spec(field_filter("address", values=[a.upper().replace("0X", "0x")]))])
    assert m.matches(_log(a)) and not m.matches(_log(b))
    assert not m.matches({"event_name": "BlockStart", "payload": {}})
    # Topics: positional with null and any-of lists; the log must have enough topics.
    m = Matcher(None, [spec(field_filter("topics", values=[t1, None, [t2, t3]]))])
    assert m.matches(_log(a, [t1, t1, t3])) and not m.matches(_log(a, [t1, t1]))
    assert not m.matches(_log(a, [t2, t1, t3]))
    # Specs ORed, field filters ANDed; an event named without a spec passes unfiltered.
    m = Matcher(["BlockStart"], [spec(field_filter("address", values=[a]), field_filter("log_index", min=1)),
                                 spec(field_filter("txn_index", max=0))])
    assert m.matches({"event_name": "BlockStart", "payload": {}})
    assert m.matches(_log(a, log_index=2)) and m.matches(_log(b, txn_index=0))
    assert not m.matches(_log(b, txn_index=3, log_index=2))
    # NativeTransfer: TxnCallFrame with a non-zero value.
    m = Matcher(["NativeTransfer"], [])
    call = lambda v: {"event_name": "TxnCallFrame", "payload": {"type": "TxnCallFrame", "value": v}}  # noqa: E731
    assert m.matches(call("0x5")) and not m.matches(call("0x0"))
    m = Matcher(None, [{"event_name": "TxnHeaderStart", "field_filters": [field_filter("selector", values=["a9059cbb"])]}])
    assert m.matches({"event_name": "TxnHeaderStart", "payload": {"data": "0xA9059CBB0000"}})
    assert not m.matches({"event_name": "TxnHeaderStart", "payload": {"data": "0x12"}})
