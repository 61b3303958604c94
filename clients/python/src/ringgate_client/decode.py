"""Frame parsing: one server text frame -> ``Frame`` (envelope) and its typed contents.

Every server frame is ``{"server_seqno":N,"<Type>":body}`` (docs/protocol.md §2). For
``Events`` frames the exact text of every event object is kept (``Event.raw_json``), so tools
such as ``ringgate-tail`` can print the event exactly as the server sent it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError
from .types import (
    ContentionData,
    Event,
    Gap,
    Lifecycle,
    Shed,
    TopAccesses,
    Tps,
    Warning,
)

__all__ = ["Frame", "parse_frame", "DATA_TYPES", "META_TYPES", "decode_events", "decode_meta"]

#: Frame types that carry their own server_seqno (data frames).
DATA_TYPES = frozenset({"Events", "TPS", "ContentionData", "TopAccesses", "Lifecycle", "Gap"})
#: Meta frames (also data frames, except in the connect-time snapshot).
META_TYPES = frozenset({"TPS", "ContentionData", "TopAccesses", "Lifecycle"})

_decoder = json.JSONDecoder()
_EVENTS_HEAD = re.compile(r'\s*\{\s*"server_seqno"\s*:\s*(\d+)\s*,\s*"Events"\s*:\s*\[')
_WS = re.compile(r"\s*")


@dataclass
class Frame:
    type: str
    server_seqno: int
    body: Any
    #: For Events frames: the exact JSON text of each event (same order as ``body``).
    event_texts: list[str] | None = None


def parse_frame(text: str | bytes) -> Frame:
    """Parse one server frame. Raises :class:`ProtocolError` if it is not a ringgate envelope."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError(f"binary frame that is not UTF-8 JSON: {e}") from None
    m = _EVENTS_HEAD.match(text)
    if m is not None:
        try:
            return _parse_events_exact(text, int(m.group(1)), m.end())
        except (ValueError, IndexError):
            pass  # unusual layout: fall back to a plain parse below
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ProtocolError(f"frame is not JSON: {e}: {text[:120]!r}") from None
    if not isinstance(obj, dict) or "server_seqno" not in obj:
        raise ProtocolError(f"frame is not a ringgate envelope: {text[:120]!r}")
    seqno = obj["server_seqno"]
    if not isinstance(seqno, int) or isinstance(seqno, bool):
        raise ProtocolError(f"server_seqno is not an integer: {text[:120]!r}")
    keys = [k for k in obj if k != "server_seqno"]
    if len(keys) != 1:
        raise ProtocolError(f"frame must have exactly one message key, got {keys}: {text[:120]!r}")
    body = obj[keys[0]]
    texts = None
    if keys[0] == "Events":
        if not isinstance(body, list):
            raise ProtocolError("Events body is not an array")
        texts = [json.dumps(e, separators=(",", ":")) for e in body]
    return Frame(keys[0], seqno, body, texts)


def _parse_events_exact(text: str, seqno: int, pos: int) -> Frame:
    events: list[Any] = []
    texts: list[str] = []
    pos = _WS.match(text, pos).end()
    if text[pos] == "]":
        pos += 1
    else:
        while True:
            obj, end = _decoder.raw_decode(text, pos)
            events.append(obj)
            texts.append(text[pos:end])
            pos = _WS.match(text, end).end()
            ch = text[pos]
            pos += 1
            if ch == "]":
                break
            if ch != ",":
                raise ValueError("expected , or ]")
            pos = _WS.match(text, pos).end()
    pos = _WS.match(text, pos).end()
    if text[pos] != "}" or text[pos + 1 :].strip():
        raise ValueError("trailing data after Events")
    return Frame("Events", seqno, events, texts)


def decode_events(frame: Frame, *, epoch: int, received_ns: int, strict: bool = False) -> list[Event]:
    """The ``Event`` objects of an ``Events`` frame, all stamped with the frame's seqno."""
    body = frame.body
    n = len(body)
    texts = frame.event_texts or [None] * n
    return [
        Event(ev, server_seqno=frame.server_seqno, epoch=epoch, received_ns=received_ns,
              frame_index=i, frame_size=n, raw_json=texts[i], strict=strict)
        for i, ev in enumerate(body)
    ]


def decode_meta(frame: Frame, *, epoch: int, received_ns: int, snapshot: bool = False,
                strict: bool = False):
    """Decode a ``TPS``/``ContentionData``/``TopAccesses``/``Lifecycle``/``Gap``/``Warning``/``Shed`` frame."""
    common = {"server_seqno": frame.server_seqno, "epoch": epoch, "received_ns": received_ns}
    t = frame.type
    if t == "TPS":
        body = frame.body
        if strict and (not isinstance(body, int) or isinstance(body, bool)):
            from .errors import DecodeError

            raise DecodeError(f"TPS: expected int, got {body!r}")
        tps = body if isinstance(body, int) else (body.get("tps", 0) if isinstance(body, dict) else 0)
        return Tps(tps=tps, snapshot=snapshot, raw=body, **common)
    if t == "ContentionData":
        return ContentionData.from_dict(frame.body, strict=strict, snapshot=snapshot, **common)
    if t == "TopAccesses":
        return TopAccesses.from_dict(frame.body, strict=strict, snapshot=snapshot, **common)
    if t == "Lifecycle":
        return Lifecycle.from_dict(frame.body, strict=strict, snapshot=snapshot, **common)
    if t == "Gap":
        return Gap.from_dict(frame.body, strict=strict, **common)
    if t == "Warning":
        return Warning.from_dict(frame.body, strict=strict, **common)
    if t == "Shed":
        return Shed.from_dict(frame.body, strict=strict, **common)
    raise ValueError(f"not a meta frame: {t}")
