"""Typed values decoded from ringgate's JSON (docs/events.md, docs/protocol.md, docs/analytics.md).

Three families:

* **Payloads** (``Event.payload``): one frozen dataclass per execution event kind, named like
  the kind (``TxnLog``, ``BlockStart``, ...). Field names, order and JSON types are those of
  docs/events.md: numbers are ``int`` (u64 may exceed 2**53), ``u256`` values and every hex
  field stay the server's ``"0x..."`` strings (use :func:`hex_to_int`), booleans ``bool``.
  Fields the docs mark as sometimes absent are ``X | None`` and default to ``None``.
* **Stream items** yielded by :class:`ringgate_client.Client`: :class:`Event`, :class:`Gap`,
  :class:`Warning`, :class:`Lifecycle`, :class:`Tps`, :class:`ContentionData`,
  :class:`TopAccesses`, :class:`Resumed`, :class:`Reconnecting`, :class:`Connected`.
* Nested analytics records (``ContendedSlot``, ``AccessCount``, ...).

Decoding is forward compatible: unknown keys are ignored (and kept in ``.raw``), an unknown
event kind decodes to :class:`UnknownPayload`. ``strict=True`` (used by the conformance
tests) additionally checks that every documented field is present and of its documented type.
"""

from __future__ import annotations

import json
import types as _types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Optional, Union

from .cursor import Cursor
from .errors import DecodeError

__all__ = [
    "hex_to_int",
    "Payload",
    "UnknownPayload",
    "PAYLOAD_TYPES",
    "EVENT_KINDS",
    "decode_payload",
    "Event",
    "Gap",
    "Warning",
    "BackpressureWarning",
    "Shed",
    "Tps",
    "ContentionData",
    "ContendedSlot",
    "ContendedContract",
    "ContractEdge",
    "TopAccesses",
    "AccessCount",
    "StorageCount",
    "Lifecycle",
    "Resumed",
    "Reconnecting",
    "Connected",
    "Item",
]

# --------------------------------------------------------------------------- helpers


def hex_to_int(value: str) -> int:
    """``"0x3b541e0b1"`` (a ``u256`` or any hex string) -> ``int``; ``"0x"`` -> 0."""
    v = value[2:] if value[:2] in ("0x", "0X") else value
    return int(v, 16) if v else 0


def _wire(**meta: Any) -> Any:
    """A field that is not read from the JSON body (client-side or envelope data)."""
    default = meta.pop("default", None)
    factory = meta.pop("default_factory", None)
    md = {"wire": False}
    if factory is not None:
        return field(default_factory=factory, repr=False, compare=False, metadata=md)
    return field(default=default, metadata=md, **meta)


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False, metadata={"wire": False})


_PLANS: dict[type, list[tuple[str, str, Any, bool]]] = {}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, _types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _plan(cls: type) -> list[tuple[str, str, Any, bool]]:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = []
        for f in fields(cls):
            if not f.metadata.get("wire", True):
                continue
            tp, optional = _unwrap_optional(hints[f.name])
            required = not optional and f.default is MISSING and f.default_factory is MISSING
            plan.append((f.name, f.metadata.get("name", f.name), tp, required))
        _PLANS[cls] = plan
    return plan


_RAW: dict[type, bool] = {}


def _has_raw(cls: type) -> bool:
    r = _RAW.get(cls)
    if r is None:
        r = _RAW[cls] = any(f.name == "raw" for f in fields(cls))
    return r


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _check(value: Any, tp: Any, path: str, problems: list[str]) -> None:
    origin = typing.get_origin(tp)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is str:
        ok = isinstance(value, str)
    elif tp is dict or origin is dict:
        ok = isinstance(value, dict)
    elif origin is list:
        ok = isinstance(value, list)
        if ok:
            (elem,) = typing.get_args(tp)
            for i, v in enumerate(value):
                _check(v, elem, f"{path}[{i}]", problems)
    elif origin is tuple:
        args = typing.get_args(tp)
        ok = isinstance(value, list) and len(value) == len(args)
        if ok:
            for i, (v, a) in enumerate(zip(value, args)):
                _check(v, a, f"{path}[{i}]", problems)
    elif isinstance(tp, type) and is_dataclass(tp):
        ok = isinstance(value, dict)
        if ok:
            _collect_problems(tp, value, path, problems)
    else:  # Any
        ok = True
    if not ok:
        problems.append(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r:.80}")


def _collect_problems(cls: type, d: dict, path: str, problems: list[str]) -> None:
    for _name, key, tp, required in _plan(cls):
        if key not in d:
            if required:
                problems.append(f"{path}.{key}: missing")
            continue
        if d[key] is None and not required:
            continue  # an optional field may be null (block-level access events' txn_index)
        _check(d[key], tp, f"{path}.{key}", problems)


def _convert(value: Any, tp: Any, strict: bool) -> Any:
    if value is None:
        return None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    origin = typing.get_origin(tp)
    if origin is list and isinstance(value, list):
        (elem,) = typing.get_args(tp)
        if isinstance(elem, type) and is_dataclass(elem):
            return [elem.from_dict(v, strict=strict) if isinstance(v, dict) else v for v in value]
        return value
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if isinstance(tp, type) and is_dataclass(tp) and isinstance(value, dict):
        return tp.from_dict(value, strict=strict)
    return value


class _Decodable:
    """Mixin: ``from_dict`` for the dataclasses below."""

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = False, **extra: Any):
        if not isinstance(d, dict):
            raise DecodeError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
        if strict:
            problems: list[str] = []
            _collect_problems(cls, d, cls.__name__, problems)
            if problems:
                raise DecodeError("; ".join(problems))
        kwargs = {}
        for name, key, tp, required in _plan(cls):
            if key in d:
                kwargs[name] = _convert(d[key], tp, strict)
            elif required:
                kwargs[name] = None  # lenient: a missing documented field reads as None
        if _has_raw(cls):
            kwargs["raw"] = d
        kwargs.update(extra)
        return cls(**kwargs)

    @classmethod
    def documented_fields(cls) -> list[tuple[str, Any, bool]]:
        """``(json_key, python_type, required)`` for every field read from the JSON body."""
        return [(key, tp, req) for _n, key, tp, req in _plan(cls)]


# --------------------------------------------------------------------------- payloads

_dc = dataclass(frozen=True, kw_only=True)


@_dc
class Payload(_Decodable):
    """Base of every payload: ``type`` equals the envelope's ``event_name``."""

    KIND: ClassVar[str] = ""
    CODE: ClassVar[int] = -1
    type: str
    raw: dict = _raw()


@_dc
class UnknownPayload(Payload):
    """An event kind this client version does not know: read ``raw``."""


@_dc
class RecordError(Payload):
    """Code 1: the writer could not record an event."""

    KIND: ClassVar[str] = "RecordError"
    CODE: ClassVar[int] = 1
    error_type: int
    dropped_event_type: int
    truncated_payload_size: int
    requested_payload_size: int
    error_name: Optional[str] = None
    dropped_event_name: Optional[str] = None
    truncated_payload: str


@_dc
class BlockStart(Payload):
    KIND: ClassVar[str] = "BlockStart"
    CODE: ClassVar[int] = 2
    block_number: int
    block_id: str
    round: int
    epoch: int
    parent_eth_hash: str
    timestamp: int
    beneficiary: str
    gas_limit: int
    base_fee_per_gas: str
    proposal_epoch_nanos: int
    chain_id: str
    author: str
    ommers_hash: str
    transactions_root: str
    difficulty: int
    number: int
    extra_data: str
    prev_randao: str
    nonce: str
    withdrawals_root: str
    txn_count: int
    base_fee_trend: str
    base_fee_moment: str


@_dc
class BlockReject(Payload):
    KIND: ClassVar[str] = "BlockReject"
    CODE: ClassVar[int] = 3
    reason: int
    reason_name: Optional[str] = None


@_dc
class BlockPerfEvmEnter(Payload):
    KIND: ClassVar[str] = "BlockPerfEvmEnter"
    CODE: ClassVar[int] = 4


@_dc
class BlockPerfEvmExit(Payload):
    KIND: ClassVar[str] = "BlockPerfEvmExit"
    CODE: ClassVar[int] = 5


@_dc
class BlockEnd(Payload):
    KIND: ClassVar[str] = "BlockEnd"
    CODE: ClassVar[int] = 6
    eth_block_hash: str
    state_root: str
    receipts_root: str
    logs_bloom: str
    gas_used: int


@_dc
class BlockQC(Payload):
    KIND: ClassVar[str] = "BlockQC"
    CODE: ClassVar[int] = 7
    block_id: str
    block_number: int
    round: int
    epoch: int


@_dc
class BlockFinalized(Payload):
    KIND: ClassVar[str] = "BlockFinalized"
    CODE: ClassVar[int] = 8
    block_id: str
    block_number: int


@_dc
class BlockVerified(Payload):
    KIND: ClassVar[str] = "BlockVerified"
    CODE: ClassVar[int] = 9
    block_number: int


@_dc
class TxnHeaderStart(Payload):
    KIND: ClassVar[str] = "TxnHeaderStart"
    CODE: ClassVar[int] = 10
    txn_index: int
    txn_hash: str
    sender: str
    txn_type: int
    chain_id: str
    nonce: int
    gas_limit: int
    max_fee_per_gas: str
    max_priority_fee_per_gas: str
    value: str
    data: str
    to: str
    is_contract_creation: bool
    r: str
    s: str
    y_parity: bool
    access_list_count: int
    auth_list_count: int
    max_fee_per_blob_gas: str
    blob_versioned_hashes: list[str]


@_dc
class TxnAccessListEntry(Payload):
    KIND: ClassVar[str] = "TxnAccessListEntry"
    CODE: ClassVar[int] = 11
    txn_index: int
    address: str
    storage_keys: str
    index: int

    @property
    def storage_key_list(self) -> list[str]:
        """``storage_keys`` split into 32-byte ``0x`` hex keys."""
        return _split32(self.storage_keys)


@_dc
class TxnAuthListEntry(Payload):
    KIND: ClassVar[str] = "TxnAuthListEntry"
    CODE: ClassVar[int] = 12
    txn_index: int
    address: str
    index: int
    chain_id: str
    nonce: int
    y_parity: bool
    r: str
    s: str
    authority: str
    is_valid_authority: bool


@_dc
class TxnHeaderEnd(Payload):
    KIND: ClassVar[str] = "TxnHeaderEnd"
    CODE: ClassVar[int] = 13


@_dc
class TxnReject(Payload):
    KIND: ClassVar[str] = "TxnReject"
    CODE: ClassVar[int] = 14
    txn_index: int
    reason: int
    reason_name: Optional[str] = None


@_dc
class TxnPerfEvmEnter(Payload):
    KIND: ClassVar[str] = "TxnPerfEvmEnter"
    CODE: ClassVar[int] = 15


@_dc
class TxnPerfEvmExit(Payload):
    KIND: ClassVar[str] = "TxnPerfEvmExit"
    CODE: ClassVar[int] = 16


@_dc
class TxnEvmOutput(Payload):
    KIND: ClassVar[str] = "TxnEvmOutput"
    CODE: ClassVar[int] = 17
    txn_index: int
    log_count: int
    status: bool
    gas_used: int
    call_frame_count: int


@_dc
class TxnLog(Payload):
    KIND: ClassVar[str] = "TxnLog"
    CODE: ClassVar[int] = 18
    txn_index: int
    log_index: int
    address: str
    topics: str
    data: str

    @property
    def topic_list(self) -> list[str]:
        """``topics`` (concatenated) split into 32-byte ``0x`` hex topics."""
        return _split32(self.topics)


@_dc
class TxnCallFrame(Payload):
    KIND: ClassVar[str] = "TxnCallFrame"
    CODE: ClassVar[int] = 19
    txn_index: int
    depth: int
    caller: str
    call_target: str
    value: str
    input: str
    output: str
    index: int
    opcode: int
    call_type: str
    gas: int
    gas_used: int
    status: int

    @property
    def is_native_transfer(self) -> bool:
        """A non-zero ``value``: what the ``NativeTransfer`` subscription item selects."""
        return hex_to_int(self.value) != 0


@_dc
class TxnEnd(Payload):
    KIND: ClassVar[str] = "TxnEnd"
    CODE: ClassVar[int] = 20


@_dc
class AccountAccessListHeader(Payload):
    KIND: ClassVar[str] = "AccountAccessListHeader"
    CODE: ClassVar[int] = 21
    txn_index: Optional[int] = None
    entry_count: int
    access_context: int


@_dc
class AccountAccess(Payload):
    KIND: ClassVar[str] = "AccountAccess"
    CODE: ClassVar[int] = 22
    txn_index: Optional[int] = None
    address: str
    balance: str
    nonce: int
    code_hash: str
    index: int
    access_context: int
    is_balance_modified: bool
    is_nonce_modified: bool
    modified_balance: str
    modified_nonce: int
    storage_key_count: int
    transient_count: int


@_dc
class StorageAccess(Payload):
    KIND: ClassVar[str] = "StorageAccess"
    CODE: ClassVar[int] = 23
    txn_index: Optional[int] = None
    account_index: int
    key: str
    value: str
    address: str
    index: int
    access_context: int
    modified: bool
    transient: bool
    start_value: str
    end_value: str


@_dc
class EvmError(Payload):
    KIND: ClassVar[str] = "EvmError"
    CODE: ClassVar[int] = 24
    domain_id: int
    status_code: int


def _split32(hexstr: str) -> list[str]:
    body = hexstr[2:] if hexstr.startswith("0x") else hexstr
    return ["0x" + body[i : i + 64] for i in range(0, len(body), 64)]


#: Event kind name -> payload class, in ring code order (codes 1..24; code 0 is never sent).
PAYLOAD_TYPES: dict[str, type[Payload]] = {
    c.KIND: c
    for c in (
        RecordError, BlockStart, BlockReject, BlockPerfEvmEnter, BlockPerfEvmExit, BlockEnd,
        BlockQC, BlockFinalized, BlockVerified, TxnHeaderStart, TxnAccessListEntry,
        TxnAuthListEntry, TxnHeaderEnd, TxnReject, TxnPerfEvmEnter, TxnPerfEvmExit,
        TxnEvmOutput, TxnLog, TxnCallFrame, TxnEnd, AccountAccessListHeader, AccountAccess,
        StorageAccess, EvmError,
    )
}
#: Every event kind name the server can send.
EVENT_KINDS: tuple[str, ...] = tuple(PAYLOAD_TYPES)


def decode_payload(event_name: str, d: dict, *, strict: bool = False) -> Payload:
    """Decode one ``payload`` object; an unknown kind gives :class:`UnknownPayload`."""
    cls = PAYLOAD_TYPES.get(event_name)
    if cls is None:
        if strict:
            raise DecodeError(f"unknown event kind {event_name!r}")
        return UnknownPayload(type=str(d.get("type", event_name)), raw=d)
    return cls.from_dict(d, strict=strict)


# --------------------------------------------------------------------------- events

_ENVELOPE_TYPES: tuple[tuple[str, Any, bool], ...] = (
    ("event_name", str, True),
    ("block_number", int, False),
    ("block_id", str, False),
    ("txn_idx", int, False),
    ("txn_hash", str, False),
    ("commit_stage", str, False),
    ("payload", dict, True),
    ("seqno", int, True),
    ("timestamp_ns", int, True),
)


class Event:
    """One execution event from an ``Events`` frame.

    Envelope fields (docs/events.md) are attributes; ``payload`` is the typed payload
    (decoded on first access). Client-side fields:

    * ``server_seqno``: the ``server_seqno`` of the ``Events`` frame that carried the event
      (the frame's highest seqno; individual events have none of their own on the wire).
    * ``epoch``: the server epoch of the connection.
    * ``frame_index`` / ``frame_size``: position of the event in its frame. The client's
      cursor moves to ``server_seqno`` when the last event of the frame is handed out.
    * ``received_ns``: ``time.time_ns()`` when the frame arrived (see :func:`latency_ns`).
    * ``raw``: the event object as a dict; ``raw_json``: exactly the text the server sent.
    """

    __slots__ = (
        "event_name", "block_number", "block_id", "txn_idx", "txn_hash", "commit_stage",
        "seqno", "timestamp_ns", "server_seqno", "epoch", "received_ns", "frame_index",
        "frame_size", "raw", "_raw_json", "_payload", "_strict",
    )

    ENVELOPE: ClassVar[tuple[tuple[str, Any, bool], ...]] = _ENVELOPE_TYPES

    def __init__(self, raw: dict, *, server_seqno: int = 0, epoch: int = 0, received_ns: int = 0,
                 frame_index: int = 0, frame_size: int = 1, raw_json: str | None = None,
                 strict: bool = False):
        if not isinstance(raw, dict):
            raise DecodeError(f"event: expected a JSON object, got {type(raw).__name__}")
        if strict:
            problems: list[str] = []
            for key, tp, required in _ENVELOPE_TYPES:
                if key not in raw:
                    if required:
                        problems.append(f"Event.{key}: missing")
                    continue
                _check(raw[key], tp, f"Event.{key}", problems)
            if problems:
                raise DecodeError("; ".join(problems))
        g = raw.get
        self.event_name: str = g("event_name", "")
        self.block_number: int | None = g("block_number")
        self.block_id: str | None = g("block_id")
        self.txn_idx: int | None = g("txn_idx")
        self.txn_hash: str | None = g("txn_hash")
        self.commit_stage: str | None = g("commit_stage")
        self.seqno: int = g("seqno", 0)
        self.timestamp_ns: int = g("timestamp_ns", 0)
        self.server_seqno = server_seqno
        self.epoch = epoch
        self.received_ns = received_ns
        self.frame_index = frame_index
        self.frame_size = frame_size
        self.raw = raw
        self._raw_json = raw_json
        self._payload: Payload | None = None
        self._strict = strict
        if strict:
            _ = self.payload

    @property
    def payload(self) -> Payload:
        p = self._payload
        if p is None:
            body = self.raw.get("payload")
            if not isinstance(body, dict):
                body = {"type": self.event_name}
            p = decode_payload(self.event_name, body, strict=self._strict)
            if self._strict and p.type != self.event_name:
                raise DecodeError(f"payload.type {p.type!r} != event_name {self.event_name!r}")
            self._payload = p
        return p

    @property
    def raw_json(self) -> str:
        """The event object exactly as the server encoded it."""
        if self._raw_json is None:
            self._raw_json = json.dumps(self.raw, separators=(",", ":"))
        return self._raw_json

    @property
    def last_in_frame(self) -> bool:
        return self.frame_index == self.frame_size - 1

    @property
    def kind(self) -> str:
        return self.event_name

    def __repr__(self) -> str:
        return (
            f"Event({self.event_name}, seqno={self.seqno}, block_number={self.block_number}, "
            f"txn_idx={self.txn_idx}, commit_stage={self.commit_stage}, "
            f"server_seqno={self.server_seqno}, frame={self.frame_index + 1}/{self.frame_size})"
        )


# --------------------------------------------------------------------------- data/meta frames


@_dc
class Gap(_Decodable):
    """Data the stream will not deliver (docs/protocol.md §3 ``Gap``).

    ``from_seqno``..``to_seqno`` are inclusive ``server_seqno`` ranges,
    ``ring_from_seqno``..``ring_to_seqno`` ring ``seqno`` ranges; absent ones are ``None``.

    ``synthetic`` gaps are made by the client: ``reason == "resume_failed"`` when a resume
    could not recover what followed ``previous_cursor`` (server restarted into another epoch,
    or answered ``Resume`` with ``recovered: false``; ``resume_reason`` is its ``reason``).
    """

    reason: str
    from_seqno: Optional[int] = None
    to_seqno: Optional[int] = None
    ring_from_seqno: Optional[int] = None
    ring_to_seqno: Optional[int] = None
    block_number: Optional[int] = None
    block_id: Optional[str] = None
    server_seqno: int = _wire(default=0)
    epoch: int = _wire(default=0)
    received_ns: int = _wire(default=0, repr=False)
    synthetic: bool = _wire(default=False)
    resume_reason: Optional[str] = _wire(default=None)
    previous_cursor: Optional[Cursor] = _wire(default=None)
    raw: dict = _raw()


@_dc
class Warning(_Decodable):  # noqa: A001 - the contract's name; also exported as BackpressureWarning
    """Backpressure (docs/protocol.md §7): the server dropped frames for this session.

    ``dropped_from_seqno``..``dropped_to_seqno`` is the dropped range. With ``recovering``
    the client is about to reconnect and resume from its cursor, which replays the dropped
    frames (so nothing is lost unless a ``Gap`` says otherwise).
    """

    type: str
    dropped: int
    total_dropped: Optional[int] = None
    drop_limit: Optional[int] = None
    dropped_from_seqno: Optional[int] = None
    dropped_to_seqno: Optional[int] = None
    server_seqno: int = _wire(default=0)
    epoch: int = _wire(default=0)
    received_ns: int = _wire(default=0, repr=False)
    recovering: bool = _wire(default=False)
    raw: dict = _raw()


BackpressureWarning = Warning


@_dc
class Shed(_Decodable):
    """Priority lanes (docs/protocol.md §3, §7): the server shed frames of a lower lane for
    this session so that higher lanes could be kept.

    Every frame of ``lane`` this subscription selected with ``server_seqno`` in
    ``from_seqno``..``to_seqno`` was shed, ``dropped`` of them, by event name in ``kinds``.
    With ``recovering`` the client is about to reconnect and resume from its cursor, which
    replays the shed frames (``recover_shed=True``, the default); without it they are lost to
    this client, and this item is how it is told.
    """

    lane: str
    dropped: int
    total_shed: Optional[int] = None
    from_seqno: Optional[int] = None
    to_seqno: Optional[int] = None
    ring_from_seqno: Optional[int] = None
    ring_to_seqno: Optional[int] = None
    kinds: Optional[dict] = None
    server_seqno: int = _wire(default=0)
    epoch: int = _wire(default=0)
    received_ns: int = _wire(default=0, repr=False)
    recovering: bool = _wire(default=False)
    raw: dict = _raw()


@_dc
class Tps(_Decodable):
    """``TPS`` frame: transactions per second of block time over finalized blocks.

    ``snapshot`` is true for the connect-time snapshot copy (stamped with the session cursor).
    """

    tps: int = _wire(default=0)
    server_seqno: int = _wire(default=0)
    epoch: int = _wire(default=0)
    received_ns: int = _wire(default=0, repr=False)
    snapshot: bool = _wire(default=False)
    raw: Any = _wire(default=None, repr=False, compare=False)


@_dc
class ContendedSlot(_Decodable):
    address: str
    slot: str
    txn_count: int
    access_count: int
    writer_count: int


@_dc
class ContendedContract(_Decodable):
    address: str
    total_slots: int
    contended_slots: int
    total_accesses: int
    contention_score: float


@_dc
class ContractEdge(_Decodable):
    contract_a: str
    contract_b: str
    shared_txn_count: int


@_dc
class ContentionData(_Decodable):
    """``ContentionData`` frame: one report per executed proposal (docs/analytics.md)."""

    block_number: int
    block_id: str
    block_wall_time_ns: int
    total_tx_time_ns: int
    parallel_efficiency_pct: float
    parallel_speedup: float
    total_unique_slots: int
    contended_slot_count: int
    contention_ratio: float
    total_txn_count: int
    timed_txn_count: int
    top_contended_slots: list[ContendedSlot]
    top_contended_contracts: list[ContendedContract]
    contract_edges: list[ContractEdge]
    server_seqno: int = _wire(default=0)
    epoch: int = _wire(default=0)
    received_ns: int = _wire(default=0, repr=False)
    snapshot: bool = _wire(default=False)
    raw: dict = _raw()


@_dc
class AccessCount(_Decodable):
    key: str
    count: int


@_dc
class StorageCount(_Decodable):
    key: tuple[str, str]
    count: int

    @property
    def address(self) -> str:
        return self.key[0]

    @property
    def slot(self) -> str:
        return self.key[1]


@_dc
class TopAccesses(_Decodable):
    """``TopAccesses`` frame: most accessed accounts and slots over a 5-minute window."""

    account: list[AccessCount]
    storage: list[StorageCount]
    server_seqno: int = _wire(default=0)
    epoch: int = _wire(default=0)
    received_ns: int = _wire(default=0, repr=False)
    snapshot: bool = _wire(default=False)
    raw: dict = _raw()


@_dc
class Lifecycle(_Decodable):
    """``Lifecycle`` frame: one block stage transition (docs/analytics.md)."""

    block_hash: str
    block_number: int
    from_stage: Optional[str] = None
    to_stage: str
    time_in_previous_stage_ms: Optional[float] = None
    block_age_ms: float
    txn_count: int
    gas_used: Optional[int] = None
    server_seqno: int = _wire(default=0)
    epoch: int = _wire(default=0)
    received_ns: int = _wire(default=0, repr=False)
    snapshot: bool = _wire(default=False)
    raw: dict = _raw()


# --------------------------------------------------------------------------- session items


@_dc
class Connected(_Decodable):
    """The server's ``Hello``: a connection (first or re-) is up.

    ``server_seqno`` is the session's starting cursor (the head for a fresh session, the
    resume position otherwise). ``reconnect`` is true for every connection after the first.
    """

    wire_version: int
    server_version: str
    epoch: int
    channel: Optional[str] = None
    features: list[str] = field(default_factory=list)
    limits: dict = field(default_factory=dict)
    server_seqno: int = _wire(default=0)
    url: str = _wire(default="")
    reconnect: bool = _wire(default=False)
    raw: dict = _raw()


@_dc
class Resumed(_Decodable):
    """The server's ``Resume`` answer to a resume request (docs/decisions/resume-rules.md).

    ``recovered`` false means data after the cursor is gone; the client then also yields a
    :class:`Gap` (the server's ``resume_window`` one, or a synthetic ``resume_failed``).
    """

    mode: str
    reason: Optional[str] = None
    epoch: Optional[int] = None
    from_seqno: Optional[int] = None
    to_seqno: Optional[int] = None
    recovered: bool = False
    server_seqno: int = _wire(default=0)
    requested: Optional[Cursor] = _wire(default=None)
    raw: dict = _raw()


@dataclass(frozen=True)
class Reconnecting:
    """Client-side: the connection dropped; the client waits ``delay`` seconds, then tries
    connection ``attempt`` (1, 2, ... since the last successful connection)."""

    attempt: int
    delay: float
    reason: str
    close_code: Optional[int] = None


#: Everything iterating a Client can yield.
Item = Union[Event, Gap, Warning, Shed, Lifecycle, Tps, ContentionData, TopAccesses, Resumed,
             Reconnecting, Connected]
