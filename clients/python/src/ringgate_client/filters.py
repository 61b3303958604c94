"""Subscription helpers: the subscribe message and a local matcher for field filters.

The server applies the subscription; the local matcher only covers the short window between
``Hello`` and the server's ``Subscribed`` acknowledgement, when frames are still selected by
the connect-time query (``events=``, ``min_stage=``) and not yet by the field filters sent in
the subscribe message. It implements docs/protocol.md §4 (address, topics, selector,
txn_index, log_index; specs of one event ORed, field filters of a spec ANDed;
``NativeTransfer`` is ``TxnCallFrame`` with a non-zero value). Where in doubt it lets an event
through rather than drop it.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

__all__ = ["META_ITEMS", "normalize_events", "subscribe_message", "query_events", "Matcher", "field_filter"]

META_ITEMS = ("TPS", "ContentionData", "TopAccesses", "Lifecycle")


def normalize_events(events: str | Iterable[str] | None) -> list[str] | None:
    if events is None:
        return None
    if isinstance(events, str):
        items = [e.strip() for e in events.split(",")]
    else:
        items = [str(e).strip() for e in events]
    return [e for e in items if e]


def field_filter(field: str, *, values: Sequence[Any] | None = None, min: int | None = None,
                 max: int | None = None) -> dict:
    """Build one field filter: ``field_filter("address", values=[...])`` or
    ``field_filter("txn_index", min=0, max=10)``."""
    f: dict[str, Any] = {}
    if values is not None:
        f["values"] = list(values)
    if min is not None:
        f["min"] = min
    if max is not None:
        f["max"] = max
    return {"field": field, "filter": f}


def _spec_names(filters: Sequence[Mapping[str, Any]] | None) -> list[str]:
    out: list[str] = []
    for spec in filters or ():
        name = spec.get("event_name")
        if isinstance(name, str) and name not in out:
            out.append(name)
    return out


def query_events(events: list[str] | None, filters: Sequence[Mapping[str, Any]] | None) -> list[str] | None:
    """The ``events=`` query parameter: the names, plus the names of filter specs."""
    if events is None and not filters:
        return None
    names = list(events or [])
    for n in _spec_names(filters):
        if n not in names:
            names.append(n)
    return names


def subscribe_message(events: list[str] | None, filters: Sequence[Mapping[str, Any]],
                      min_stage: str | None) -> dict:
    """The advanced subscribe: ``{"subscribe":{"events":[...],"filters":[...],"min_stage":...}}``.

    ``events=None`` sends ``[]``: only the events the specs name are subscribed.
    """
    body: dict[str, Any] = {"events": list(events or []), "filters": [dict(s) for s in filters]}
    if min_stage is not None:
        body["min_stage"] = min_stage
    return {"subscribe": body}


# --------------------------------------------------------------------------- matcher


def _norm_hex(v: Any, width: int | None = None) -> str | None:
    if not isinstance(v, str):
        return None
    s = v.lower()
    if s.startswith("0x"):
        s = s[2:]
    if width is not None:
        s = s[-width:].rjust(width, "0") if len(s) <= width else s
    return s


_ADDRESS_FIELDS = {
    "TxnHeaderStart": ("sender", "to"),
    "TxnAccessListEntry": ("address",),
    "TxnAuthListEntry": ("address", "authority"),
    "TxnLog": ("address",),
    "TxnCallFrame": ("caller", "call_target"),
    "AccountAccess": ("address",),
    "StorageAccess": ("address",),
}
_SELECTOR_FIELDS = {"TxnHeaderStart": "data", "TxnCallFrame": "input"}


def _pred(field: str, flt: Mapping[str, Any]):
    values = flt.get("values")
    lo, hi = flt.get("min"), flt.get("max")

    if field == "address":
        wanted = {_norm_hex(v, 40) for v in values or ()}

        def address(name: str, ev: dict, p: dict) -> bool:
            keys = _ADDRESS_FIELDS.get(name)
            if keys is None:
                return True
            return any(_norm_hex(p.get(k), 40) in wanted for k in keys)

        return address

    if field == "topics":
        slots: list[set[str] | None] = []
        for slot in values or ():
            if slot is None:
                slots.append(None)
            elif isinstance(slot, list):
                slots.append({_norm_hex(t, 64) for t in slot})
            else:
                slots.append({_norm_hex(slot, 64)})

        def topics(name: str, ev: dict, p: dict) -> bool:
            if name != "TxnLog":
                return True
            body = _norm_hex(p.get("topics")) or ""
            have = [body[i : i + 64] for i in range(0, len(body), 64)]
            if len(have) < len(slots):
                return False
            return all(s is None or have[i] in s for i, s in enumerate(slots))

        return topics

    if field == "selector":
        sels = {_norm_hex(v, 8) for v in values or ()}

        def selector(name: str, ev: dict, p: dict) -> bool:
            key = _SELECTOR_FIELDS.get(name)
            if key is None:
                return True
            data = _norm_hex(p.get(key)) or ""
            return len(data) >= 8 and data[:8] in sels

        return selector

    if field in ("txn_index", "log_index"):

        def rng(name: str, ev: dict, p: dict) -> bool:
            v = p.get(field)
            if v is None and field == "txn_index":
                v = ev.get("txn_idx")
            if not isinstance(v, int):
                return False
            return (lo is None or v >= lo) and (hi is None or v <= hi)

        return rng

    return lambda name, ev, p: True  # unknown field: the server will say; let it through


class Matcher:
    """Does a raw event dict match ``events`` + ``filters``? (See the module docstring.)"""

    def __init__(self, events: list[str] | None, filters: Sequence[Mapping[str, Any]]):
        self.plain = set(events or ())
        self.specs: dict[str, list[list]] = {}
        for spec in filters:
            name = spec.get("event_name")
            preds = [_pred(ff.get("field", ""), ff.get("filter") or {}) for ff in spec.get("field_filters") or ()]
            self.specs.setdefault(name, []).append(preds)
        # An event named in `events` with a spec is filtered by its specs.
        self.plain -= set(self.specs)

    def _spec_ok(self, key: str, name: str, ev: dict, p: dict) -> bool:
        return any(all(pr(name, ev, p) for pr in preds) for preds in self.specs.get(key, ()))

    def matches(self, ev: dict) -> bool:
        name = ev.get("event_name")
        if name in self.plain:
            return True
        p = ev.get("payload") or {}
        if name in self.specs and self._spec_ok(name, name, ev, p):
            return True
        if name == "TxnCallFrame" and ("NativeTransfer" in self.plain or "NativeTransfer" in self.specs):
            value = _norm_hex(p.get("value")) or ""
            if value.strip("0"):
                if "NativeTransfer" in self.plain:
                    return True
                return self._spec_ok("NativeTransfer", name, ev, p)
        return False
