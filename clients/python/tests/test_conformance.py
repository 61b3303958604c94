"""Conformance: decode every event kind and meta frame from a real server, strictly.

The stream is a replay of the shared synthetic chain from its first stored frame. Every
event is re-decoded with ``strict=True`` (every field docs/events.md lists is present and of
its type), and payload keys the docs do not list are reported as a failure (docs drift).

The synthetic chain (`ringgate write`) makes 21 of the 24 kinds: it never produces
RecordError, TxnReject or EvmError, so those are covered by hand-made fixtures in
test_unit.py (test_rare_kinds_decode_strictly) instead.
"""

from __future__ import annotations

import asyncio
import time

from ringgate_client import (
    EVENT_KINDS,
    PAYLOAD_TYPES,
    Connected,
    ContentionData,
    Cursor,
    Event,
    Gap,
    Lifecycle,
    Resumed,
    TopAccesses,
    Tps,
    connect,
)

from conftest import run

NOT_IN_SYNTHETIC_CHAIN = {"RecordError", "TxnReject", "EvmError"}
META = {Tps, ContentionData, TopAccesses, Lifecycle}


def test_every_kind_from_real_server_decodes_strictly(chain):
    epoch = chain.status()["epoch"]
    wanted = set(EVENT_KINDS) - NOT_IN_SYNTHETIC_CHAIN
    seen: dict[str, int] = {}
    meta_seen: set[type] = set()
    undocumented: dict[str, set[str]] = {}
    problems: list[str] = []
    head: list = []

    async def go():
        async with connect(chain.url, from_cursor=Cursor(epoch, 0)) as client:
            async for item in client:
                if len(head) < 2:
                    head.append(item)
                if isinstance(item, Event):
                    check_event(item)
                elif type(item) in META:
                    check_meta(item)
                    meta_seen.add(type(item))
                elif isinstance(item, Gap):
                    Gap.from_dict(item.raw, strict=True)
                if set(seen) >= wanted and meta_seen == META:
                    return

    def check_event(ev: Event) -> None:
        strict = Event(ev.raw, strict=True)  # raises DecodeError listing every problem
        name = ev.event_name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 50:
            return
        p = strict.payload
        assert type(p) is PAYLOAD_TYPES[name] and p.type == name
        documented = {k for k, _t, _r in type(p).documented_fields()}
        extra = set(ev.raw["payload"]) - documented
        if extra:
            undocumented.setdefault(name, set()).update(extra)
        env_extra = set(ev.raw) - {k for k, _t, _r in Event.ENVELOPE}
        if env_extra:
            undocumented.setdefault(f"{name} (envelope)", set()).update(env_extra)
        if any(v is None for v in ev.raw.values()):
            problems.append(f"{name}: null envelope field (docs: omitted when unknown, never null)")
        if ev.commit_stage is None:
            problems.append(f"{name} seqno {ev.seqno}: no commit_stage")
        if name.startswith("Txn") and ev.txn_idx is None:
            problems.append(f"{name} seqno {ev.seqno}: no txn_idx")
        if name.startswith("Txn") and name != "TxnPerfEvmEnter" and ev.txn_hash is None:
            problems.append(f"{name} seqno {ev.seqno}: no txn_hash")
        if ev.block_number is None:
            problems.append(f"{name} seqno {ev.seqno}: no block_number")
        if ev.raw_json.startswith("{") is False or '"seqno"' not in ev.raw_json:
            problems.append(f"{name}: raw_json is not the event object")

    def check_meta(item) -> None:
        if isinstance(item, Tps):
            assert isinstance(item.raw, int) and not isinstance(item.raw, bool), item.raw
            return
        decoded = type(item).from_dict(item.raw, strict=True)
        if isinstance(decoded, Lifecycle) and (decoded.from_stage is None) != (decoded.time_in_previous_stage_ms is None):
            problems.append(f"Lifecycle: time_in_previous_stage_ms present iff from_stage: {item.raw}")

    t0 = time.monotonic()
    try:
        run(go(), 30)
    except asyncio.TimeoutError:
        missing = wanted - set(seen)
        raise AssertionError(f"after {time.monotonic() - t0:.1f}s still missing kinds {sorted(missing)}, "
                             f"meta {sorted(t.__name__ for t in META - meta_seen)}; seen {seen}") from None
    assert isinstance(head[0], Connected) and head[0].epoch == epoch
    assert isinstance(head[1], Resumed) and head[1].recovered and head[1].mode == "resume"
    assert not problems, problems[:20]
    assert not undocumented, f"payload keys not in docs/events.md: {undocumented}"
    print(f"\nconformance: kinds seen {len(seen)} {dict(sorted(seen.items()))}; "
          f"not produced by the synthetic chain (fixtures only): {sorted(NOT_IN_SYNTHETIC_CHAIN)}")
