"""The ringgate WebSocket client: connect, subscribe, iterate typed items, resume exactly.

Cursor rules (docs/protocol.md §2, docs/decisions/resume-rules.md):

* Data frames (``Events``, ``TPS``, ``ContentionData``, ``TopAccesses``, ``Lifecycle``,
  ``Gap``) carry strictly increasing ``server_seqno``s, unique within a server epoch; an
  ``Events`` frame carries the highest seqno of its events. Per-connection messages
  (``Hello``, ``Resume``, ``Subscribed``, ``Error``, ``Warning``, ``Shed`` and the connect-time
  snapshot of meta frames) repeat the session's cursor.
* ``client.cursor`` is ``Cursor(epoch, seqno)`` of the last data frame handed to the user. For
  an ``Events`` frame it moves when the frame's *last* event is handed out. It starts at the
  ``Hello`` seqno (the session's starting position), so even a connection that drops before
  its first data frame resumes exactly.
* On reconnect the client sends ``resume_from=<cursor.seqno>&epoch=<cursor.epoch>`` and drops
  any data frame whose seqno is ``<=`` the cursor in the same epoch.
* A resume that cannot recover (``Resume.recovered == false``: other epoch, too old, ahead of
  head, resume disabled) is surfaced as a ``Gap``: the server's ``resume_window`` Gap when it
  sends one, else a client-made ``Gap(reason="resume_failed", synthetic=True)``.
* A backpressure ``Warning`` with a dropped range is yielded, then (with ``reconnect=True``)
  the client reconnects and resumes from its cursor, which replays the dropped frames.
* A priority-lane ``Shed`` report is yielded as a :class:`Shed`; with ``reconnect=True`` and
  ``recover_shed=True`` (the defaults) the client then resumes from its cursor the same way
  (the server announces a shed run before its cursor passes the run's first frame, so the
  replay holds every shed frame). ``recover_shed=False`` keeps the connection: the server's
  lanes keep block-level events flowing to a client that cannot take everything, and the
  shed frames are lost to it, announced by the item.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import random
import time
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ._version import __version__
from .cursor import Cursor
from .decode import META_TYPES, Frame, decode_events, decode_meta, parse_frame
from .errors import (
    AuthenticationError,
    ConnectError,
    ConnectionLost,
    NotRinggateError,
    ProtocolError,
    RequestRejected,
    RinggateError,
    SubscriptionError,
)
from .filters import Matcher, normalize_events, query_events, subscribe_message
from .types import Connected, Event, Gap, Item, Reconnecting, Resumed, Shed, Warning

__all__ = ["connect", "Client", "latency_ns", "CHANNELS"]

log = logging.getLogger("ringgate_client")

CHANNELS = ("all", "blocks", "txs", "contention", "lifecycle")
STAGES = ("Proposed", "Voted", "Finalized", "Verified")
_MANAGED_QUERY = {"resume_from", "epoch", "from_block", "events", "min_stage", "extended"}
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def latency_ns(event: Event, now_ns: int | None = None) -> int:
    """Ring timestamp -> receive time: ``(now_ns or event.received_ns) - event.timestamp_ns``.

    ``timestamp_ns`` is the ring's CLOCK_REALTIME when the writer reserved the event;
    ``received_ns`` is ``time.time_ns()`` when the frame reached this client. Meaningful when
    both clocks are synchronized (same host, or NTP/PTP).
    """
    end = event.received_ns if now_ns is None else now_ns
    return end - event.timestamp_ns


def build_url(url: str, channel: str | None, params: Mapping[str, str]) -> str:
    """The WebSocket URL: ``url`` is a base (``ws://host:port``) or a full ``/v1/ws...`` path."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"url must be ws://, wss://, http:// or https://, got {url!r}")
    if channel is not None and channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    path = parts.path or ""
    segs = path.rstrip("/").split("/")
    # A full ws path ends with /v1/ws or /v1/ws/<channel>.
    if len(segs) >= 2 and segs[-2:] == ["v1", "ws"]:
        prefix, current = "/".join(segs[:-2]), None
    elif len(segs) >= 3 and segs[-3:-1] == ["v1", "ws"]:
        prefix, current = "/".join(segs[:-3]), segs[-1]
    else:
        prefix, current = path.rstrip("/"), None
        if channel is None:
            channel = "all"
    if channel is None:
        channel = current or "all"
    path = f"{prefix}/v1/ws" + ("" if channel == "all" else f"/{channel}")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _MANAGED_QUERY]
    query.extend(params.items())
    q = urlencode(query, safe=",", quote_via=quote)
    return urlunsplit((scheme, parts.netloc, path, q, ""))


def connect(
    url: str,
    *,
    channel: str | None = None,
    events: str | Iterable[str] | None = None,
    filters: Sequence[Mapping[str, Any]] | None = None,
    min_stage: str | None = None,
    token: str | None = None,
    from_cursor: Cursor | str | None = None,
    reconnect: bool = True,
    backoff_initial: float = 0.1,
    backoff_max: float = 5.0,
    recover_shed: bool = True,
) -> "Client":
    """Create a :class:`Client` (nothing is sent until it is entered or iterated).

    ``async with connect(url, ...) as client:`` opens the first connection (raising
    :class:`ConnectError` subclasses if it fails) and ``async for item in client`` yields
    typed items. ``async for item in connect(...)`` works too (the first connection is then
    opened by the first iteration step).
    """
    return Client(
        url, channel=channel, events=events, filters=filters, min_stage=min_stage, token=token,
        from_cursor=from_cursor, reconnect=reconnect, backoff_initial=backoff_initial,
        backoff_max=backoff_max, recover_shed=recover_shed,
    )


class _Conn:
    """Per-connection state."""

    __slots__ = ("ws", "epoch", "hello_seqno", "live_seen", "acked", "expect_server_gap",
                 "resume_gap", "recover", "url", "features")

    def __init__(self, ws, url: str):
        self.ws = ws
        self.url = url
        self.epoch = 0
        self.hello_seqno = 0
        self.live_seen = False
        self.acked = True
        self.expect_server_gap = False
        self.resume_gap: Gap | None = None
        self.recover = False
        self.features: frozenset[str] = frozenset()


class Client:
    """A ringgate subscription with automatic reconnect and exact resume. See :func:`connect`."""

    #: Seconds to wait for the TCP + WebSocket handshake, and then for ``Hello``.
    open_timeout: float = 10.0
    hello_timeout: float = 10.0
    #: Largest frame accepted (the server caps batches at 256 KiB; one huge event goes alone).
    max_frame_bytes: int = 64 * 1024 * 1024

    def __init__(
        self,
        url: str,
        *,
        channel: str | None = None,
        events: str | Iterable[str] | None = None,
        filters: Sequence[Mapping[str, Any]] | None = None,
        min_stage: str | None = None,
        token: str | None = None,
        from_cursor: Cursor | str | None = None,
        reconnect: bool = True,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        recover_shed: bool = True,
    ):
        if min_stage is not None and min_stage not in STAGES:
            raise ValueError(f"min_stage must be one of {', '.join(STAGES)}, got {min_stage!r}")
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("need 0 < backoff_initial <= backoff_max")
        self._url = url
        self._channel = channel
        self._events = normalize_events(events)
        self._filters = [dict(f) for f in filters] if filters else None
        self._min_stage = min_stage
        self._token = token
        self._reconnect = reconnect
        self._recover_shed = recover_shed
        self._backoff_initial = float(backoff_initial)
        self._backoff_max = float(backoff_max)
        build_url(url, channel, {})  # validate early
        self._matcher = Matcher(self._events, self._filters) if self._filters else None

        # _cursor: last data seqno handed to the user. _horizon: the cursor once every
        # queued item is handed (used for de-duplication and for the resume request).
        self._cursor: Cursor | None = Cursor.parse(from_cursor) if from_cursor is not None else None
        self._horizon: Cursor | None = self._cursor
        self._pending: collections.deque[tuple[Item | None, Cursor | None]] = collections.deque()
        self._conn: _Conn | None = None
        self._gen: AsyncIterator[Item] | None = None
        self._resume_requested: Cursor | None = None
        self._closing = False
        self._close_event = asyncio.Event()
        self._connections = 0
        self.subscription: dict | None = None
        """The last ``Subscribed`` body the server sent (when ``filters`` were given)."""
        self.stats = collections.Counter()
        """Counters: frames, events, duplicates_dropped, prefiltered, reconnects, gaps."""

    # ------------------------------------------------------------------ public API

    @property
    def cursor(self) -> Cursor | None:
        """``Cursor(epoch, seqno)`` of the last data frame handed out (``None`` before ``Hello``)."""
        return self._cursor

    @property
    def epoch(self) -> int | None:
        return self._conn.epoch if self._conn is not None else None

    @property
    def url(self) -> str:
        """The WebSocket URL (without resume parameters) this client connects to."""
        return build_url(self._url, self._channel, self._query(None))

    async def __aenter__(self) -> "Client":
        if self._conn is None and not self._closing:
            await self._open(first=True)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def __aiter__(self) -> "Client":
        return self

    async def __anext__(self) -> Item:
        if self._gen is None:
            self._gen = self._run()
        return await self._gen.__anext__()

    async def close(self) -> None:
        """Close the connection; a pending or later iteration step ends the iteration."""
        self._closing = True
        self._close_event.set()
        conn = self._conn
        if conn is not None:
            # A close handshake can stall while the server is still streaming (a replay) and
            # the receive queue is full: give it a moment, then drop the TCP connection.
            await _abort(conn.ws, graceful=True, timeout=0.25)
        gen = self._gen
        if gen is not None:
            try:
                await gen.aclose()  # type: ignore[attr-defined]
            except (RuntimeError, Exception):  # running in another task: it ends on its own
                pass

    # ------------------------------------------------------------------ connection

    def _query(self, cursor: Cursor | None) -> dict[str, str]:
        q: dict[str, str] = {}
        if cursor is not None:
            q["resume_from"] = str(cursor.seqno)
            q["epoch"] = str(cursor.epoch)
        names = query_events(self._events, self._filters)
        if names is not None:
            q["events"] = ",".join(names)
        if self._min_stage is not None:
            q["min_stage"] = self._min_stage
        q["extended"] = "1"  # ringgate's meta shapes (docs/protocol.md §9)
        return q

    async def _open(self, *, first: bool) -> None:
        resume = self._horizon
        url = build_url(self._url, self._channel, self._query(resume))
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        try:
            ws = await ws_connect(
                url,
                additional_headers=headers,
                open_timeout=self.open_timeout,
                max_size=self.max_frame_bytes,
                compression=None,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
                user_agent_header=f"ringgate-client-python/{__version__} websockets/{websockets.__version__}",
            )
        except InvalidStatus as e:
            raise _status_error(url, e) from None
        except (InvalidHandshake, ValueError) as e:
            if isinstance(e.__cause__, EOFError):
                # Closed before a whole HTTP response: a network error (websockets' own retry
                # rule says so), e.g. a gateway that is stopping or restarting, whose listen
                # backlog is closed unanswered. Not proof of a foreign server: a reconnect
                # retries it.
                raise _TransientConnect(f"{_redact(url)}: cannot connect: {e.__cause__}") from None
            detail = f"{e}: {e.__cause__}" if e.__cause__ is not None else str(e)
            raise NotRinggateError(f"{_redact(url)}: WebSocket handshake failed ({detail}); is this a ringgate gateway?",
                                   url=url) from None
        except (OSError, asyncio.TimeoutError, TimeoutError) as e:
            raise _TransientConnect(f"{_redact(url)}: cannot connect: {e or type(e).__name__}") from None

        conn = _Conn(ws, url)
        try:
            try:
                text = await asyncio.wait_for(ws.recv(), self.hello_timeout)
            except asyncio.TimeoutError:
                raise NotRinggateError(
                    f"{_redact(url)}: no Hello frame within {self.hello_timeout:g}s; is this a ringgate gateway?",
                    url=url) from None
            except ConnectionClosed as e:
                raise _TransientConnect(f"{_redact(url)}: closed before Hello ({_close_text(e)})") from None
            try:
                frame = parse_frame(text)
            except ProtocolError as e:
                raise NotRinggateError(f"{_redact(url)}: first frame is not a ringgate Hello: {e}", url=url) from None
            if frame.type != "Hello" or not isinstance(frame.body, dict):
                raise NotRinggateError(f"{_redact(url)}: first frame is {frame.type!r}, expected Hello", url=url)
            hello = Connected.from_dict(frame.body, server_seqno=frame.server_seqno, url=_redact(url),
                                        reconnect=self._connections > 0)
            if not isinstance(hello.epoch, int):
                raise NotRinggateError(f"{_redact(url)}: Hello without an epoch", url=url)
            if self._filters:
                conn.acked = False
                try:
                    await ws.send(json.dumps(subscribe_message(self._events, self._filters, self._min_stage)))
                except ConnectionClosed as e:
                    raise _TransientConnect(f"{_redact(url)}: closed after Hello ({_close_text(e)})") from None
        except BaseException:
            await _abort(ws)
            raise

        conn.epoch = hello.epoch
        conn.features = frozenset(f for f in hello.features or () if isinstance(f, str))
        conn.hello_seqno = frame.server_seqno
        self._conn = conn
        self._connections += 1
        self.stats["connections"] += 1
        # Hello carries the session's starting cursor: the position this session resumes from.
        start = Cursor(hello.epoch, frame.server_seqno)
        self._push(hello, start)
        if resume is not None and resume.epoch != hello.epoch:
            log.info("server epoch changed %s -> %s", resume.epoch, hello.epoch)
        self._resume_requested = resume

    # ------------------------------------------------------------------ items

    def _push(self, item: Item | None, advance: Cursor | None) -> None:
        self._pending.append((item, advance))
        if advance is not None:
            self._horizon = advance

    def _is_dup(self, epoch: int, seqno: int) -> bool:
        h = self._horizon
        return h is not None and h.epoch == epoch and seqno <= h.seqno

    def _flush_resume_gap(self, conn: _Conn) -> None:
        if conn.resume_gap is not None:
            self._push(conn.resume_gap, None)
            self.stats["gaps"] += 1
            conn.resume_gap = None
        conn.expect_server_gap = False

    def _handle(self, conn: _Conn, text: str | bytes, received_ns: int) -> None:
        frame = parse_frame(text)
        t, s, epoch = frame.type, frame.server_seqno, conn.epoch
        self.stats["frames"] += 1

        if t == "Events" or t == "Gap" or t in META_TYPES:
            if t in META_TYPES and s == conn.hello_seqno and not conn.live_seen:
                # Connect-time snapshot: a per-connection copy stamped with the cursor.
                self._push(decode_meta(frame, epoch=epoch, received_ns=received_ns, snapshot=True), None)
                return
            if self._is_dup(epoch, s):
                self.stats["duplicates_dropped"] += 1
                log.debug("dropping duplicate %s frame %s:%s", t, epoch, s)
                return
            conn.live_seen = True
            advance = Cursor(epoch, s)
            if t == "Gap":
                gap = decode_meta(frame, epoch=epoch, received_ns=received_ns)
                if conn.expect_server_gap and gap.reason == "resume_window":
                    conn.resume_gap = None  # the server's Gap says exactly what was lost
                self._flush_resume_gap(conn)
                self.stats["gaps"] += 1
                self._push(gap, advance)
                return
            self._flush_resume_gap(conn)
            if t == "Events":
                if not isinstance(frame.body, list):
                    raise ProtocolError("Events body is not an array")
                evs = decode_events(frame, epoch=epoch, received_ns=received_ns)
                if not conn.acked and self._matcher is not None:
                    kept = [e for e in evs if self._matcher.matches(e.raw)]
                    self.stats["prefiltered"] += len(evs) - len(kept)
                    evs = kept
                if not evs:
                    self._push(None, advance)
                    return
                self.stats["events"] += len(evs)
                last = len(evs) - 1
                for i, ev in enumerate(evs):
                    self._push(ev, advance if i == last else None)
                return
            self._push(decode_meta(frame, epoch=epoch, received_ns=received_ns), advance)
            return

        if t == "Resume":
            body = frame.body if isinstance(frame.body, dict) else {}
            requested = self._resume_requested
            res = Resumed.from_dict(body, server_seqno=s, requested=requested)
            self._push(res, None)
            if not res.recovered:
                same_epoch = requested is not None and requested.epoch == epoch
                conn.resume_gap = Gap(
                    reason="resume_failed",
                    from_seqno=requested.seqno + 1 if same_epoch else None,
                    server_seqno=s,
                    epoch=epoch,
                    received_ns=received_ns,
                    synthetic=True,
                    resume_reason=res.reason,
                    previous_cursor=requested,
                    raw={},
                )
                if res.reason == "too_old":
                    conn.expect_server_gap = True  # its resume_window Gap comes next
                else:
                    self._flush_resume_gap(conn)
            return

        if t == "Warning":
            w = decode_meta(frame, epoch=epoch, received_ns=received_ns)
            self._loss_notice(conn, w, w.dropped_from_seqno, True, "warnings")
            return

        if t == "Shed":
            shed = decode_meta(frame, epoch=epoch, received_ns=received_ns)
            self._loss_notice(conn, shed, shed.from_seqno, self._recover_shed, "sheds")
            return

        if t == "Subscribed":
            conn.acked = True
            self.subscription = frame.body if isinstance(frame.body, dict) else {"raw": frame.body}
            return

        if t == "Error":
            body = frame.body if isinstance(frame.body, dict) else {}
            raise SubscriptionError(str(body.get("code", "error")), str(body.get("message", frame.body)), body)

        if t == "Hello":
            return
        log.debug("ignoring unknown message type %s", t)

    def _loss_notice(self, conn: _Conn, notice: Any, lost_from: int | None, wanted: bool, stat: str) -> None:
        """Hands out a `Warning` (dropped frames) or `Shed` (shed frames) notice, marked
        ``recovering`` when the client will resume from its cursor to get the lost frames
        back: reconnecting, the loss has a range, the server can resume, and the caller wants it."""
        if (wanted and self._reconnect and lost_from is not None and not self._closing
                and "resume" in conn.features):
            notice = dataclasses.replace(notice, recovering=True)
            conn.recover = True
        self.stats[stat] += 1
        self._push(notice, None)

    # ------------------------------------------------------------------ main loop

    def _backoff(self, attempt: int) -> float:
        cap = min(self._backoff_max, self._backoff_initial * (2 ** min(attempt - 1, 30)))
        return random.uniform(0, cap)  # full jitter

    async def _run(self) -> AsyncIterator[Item]:
        try:
            async for item in self._items():
                yield item
        finally:
            # Also reached when an abandoned iterator is finalized: never leak the socket.
            conn = self._conn
            if conn is not None and getattr(conn.ws, "transport", None) is not None:
                conn.ws.transport.abort()

    async def _items(self) -> AsyncIterator[Item]:
        if self._conn is None:
            if self._closing:
                return
            await self._open(first=True)
        while True:
            while self._pending:
                item, advance = self._pending.popleft()
                if advance is not None:
                    self._cursor = advance
                if item is not None:
                    yield item
            if self._closing:
                return
            conn = self._conn
            assert conn is not None
            if conn.recover:
                reason, code = "resume after backpressure drops or shed frames", None
                await _abort(conn.ws, graceful=True)
            else:
                try:
                    text = await conn.ws.recv()
                except ConnectionClosed as e:
                    if self._closing:
                        return
                    code = e.rcvd.code if e.rcvd is not None else 1006
                    reason = f"connection closed ({_close_text(e)})"
                    if not self._reconnect:
                        if code in (1000, 1001):
                            return
                        raise ConnectionLost(reason, code=code,
                                             reason=e.rcvd.reason if e.rcvd is not None else "") from None
                else:
                    try:
                        self._handle(conn, text, time.time_ns())
                    except RinggateError:
                        await _abort(conn.ws)
                        raise
                    continue

            # ---- reconnect with back-off
            self.stats["reconnects"] += 1
            attempt = 0
            while True:
                attempt += 1
                delay = self._backoff(attempt)
                log.info("reconnecting (attempt %d) in %.3fs: %s", attempt, delay, reason)
                yield Reconnecting(attempt=attempt, delay=delay, reason=reason, close_code=code)
                if self._closing:
                    return
                try:
                    await asyncio.wait_for(self._close_event.wait(), delay)
                    return  # closed while waiting
                except asyncio.TimeoutError:
                    pass
                try:
                    await self._open(first=False)
                    break
                except _TransientConnect as e:
                    reason, code = str(e), None
                except ConnectError as e:
                    if e.status in _TRANSIENT_STATUS:
                        reason, code = str(e), None
                        continue
                    raise


class _TransientConnect(ConnectError):
    """Connection refused / reset / timed out: worth retrying on a reconnect."""


def _close_text(e: ConnectionClosed) -> str:
    if e.rcvd is None:
        return "code 1006, no close frame"
    return f"code {e.rcvd.code}" + (f": {e.rcvd.reason}" if e.rcvd.reason else "")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    q = [(k, "***" if k in ("token", "access_token", "key") else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q, safe=",*"), ""))


def _status_error(url: str, e: InvalidStatus) -> ConnectError:
    resp = e.response
    status = resp.status_code
    try:
        body = bytes(resp.body or b"").decode("utf-8", "replace")
    except Exception:  # pragma: no cover
        body = ""
    message = None
    try:
        obj = json.loads(body) if body else None
        if isinstance(obj, dict) and isinstance(obj.get("error"), str):
            message = obj["error"]
    except ValueError:
        pass
    where = _redact(url)
    if status in (401, 403):
        return AuthenticationError(
            f"{where}: HTTP {status}: {message or 'token refused'}", url=where, status=status, body=body)
    if message is None and status not in _TRANSIENT_STATUS:
        snippet = " ".join(body.split())[:100]
        return NotRinggateError(
            f"{where}: HTTP {status} instead of a WebSocket upgrade and no ringgate error body "
            f"({snippet!r}); is this a ringgate gateway?", url=where, status=status, body=body)
    cls = ConnectError if status in _TRANSIENT_STATUS else RequestRejected
    return cls(f"{where}: HTTP {status}: {message or body[:100]}", url=where, status=status, body=body)


async def _abort(ws, graceful: bool = False, timeout: float = 0.25) -> None:
    """Close ``ws``: a close handshake bounded by ``timeout`` when ``graceful``, then a TCP abort."""
    if graceful:
        try:
            await asyncio.wait_for(asyncio.shield(ws.close()), timeout)
            return
        except (asyncio.TimeoutError, Exception):
            pass
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()
