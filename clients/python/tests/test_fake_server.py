"""The client's state machine against scripted WebSocket servers (no ringgate binary needed).

These pin the cursor / de-duplication / resume / error rules exactly, including server
misbehaviour a real ringgate never shows (re-sent frames), so they run everywhere.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import serve

from ringgate_client import (
    AuthenticationError,
    ConnectError,
    Connected,
    ConnectionLost,
    Cursor,
    Event,
    Gap,
    Lifecycle,
    NotRinggateError,
    Reconnecting,
    Resumed,
    Shed,
    SubscriptionError,
    Tps,
    Warning,
    connect,
)

from conftest import run

E1 = 1_700_000_000_000_000
E2 = 1_700_000_000_999_999


def hello(seqno: int, epoch: int = E1, channel: str = "all") -> str:
    return json.dumps({"server_seqno": seqno, "Hello": {
        "wire_version": 1, "server_version": "fake", "epoch": epoch, "channel": channel,
        "features": ["resume", "epoch"], "limits": {}, "future_field": {"x": 1}}})


def ev(ring_seqno: int, name: str = "TxnEnd", **payload) -> dict:
    return {"event_name": name, "block_number": 7, "txn_idx": 0, "commit_stage": "Proposed",
            "payload": {"type": name, **payload}, "seqno": ring_seqno, "timestamp_ns": 1_000 + ring_seqno}


def events(seqno: int, *evs: dict) -> str:
    return json.dumps({"server_seqno": seqno, "Events": list(evs)})


def frame(seqno: int, kind: str, body) -> str:
    return json.dumps({"server_seqno": seqno, kind: body})


class Scripted:
    """A WebSocket server running script[i] for its i-th connection; records requests."""

    def __init__(self, scripts, process_request=None):
        self.scripts = list(scripts)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.process_request = process_request
        self.server = None
        self.tasks: set[asyncio.Task] = set()

    async def handler(self, ws):
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            await self._handle(ws)
        except asyncio.CancelledError:
            pass
        finally:
            self.tasks.discard(task)

    async def _handle(self, ws):
        i = len(self.requests)
        parts = urlsplit(ws.request.path)
        self.requests.append({"path": parts.path, **{k: v[0] for k, v in parse_qs(parts.query).items()}})
        self.headers.append(dict(ws.request.headers))
        if i >= len(self.scripts):
            await asyncio.sleep(30)
            return
        await self.scripts[i](ws)

    async def __aenter__(self):
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.process_request,
                                  compression=None)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        for t in list(self.tasks):
            t.cancel()
        self.server.close()
        await self.server.wait_closed()


async def abort(ws):
    ws.transport.abort()  # a drop without a close frame: the client sees 1006


async def take(client, n: int, timeout: float = 5.0) -> list:
    out = []

    async def go():
        async for item in client:
            out.append((item, client.cursor))
            if len(out) >= n:
                return

    await asyncio.wait_for(go(), timeout)
    return out


def test_resume_dedup_and_epoch_change():
    async def c1(ws):
        await ws.send(hello(10))
        await ws.send(frame(10, "TPS", 42))  # connect-time snapshot: stamped with the cursor
        await ws.send(frame(10, "Lifecycle", {"block_hash": "0xaa", "block_number": 7, "to_stage": "Proposed",
                                               "block_age_ms": 1, "txn_count": 3}))
        await ws.send(events(12, ev(100), ev(101)))
        await ws.send(events(13, ev(102)))
        await asyncio.sleep(0.05)
        await abort(ws)

    async def c2(ws):
        await ws.send(hello(13))
        await ws.send(frame(13, "Resume", {"mode": "resume", "reason": "in_range", "epoch": E1,
                                            "from_seqno": 14, "to_seqno": 15, "recovered": True}))
        await ws.send(events(12, ev(100), ev(101)))  # re-sent: must be dropped
        await ws.send(events(13, ev(102)))  # re-sent: must be dropped
        await ws.send(events(15, ev(103), ev(104)))
        await ws.send(frame(16, "Gap", {"reason": "slow_client", "from_seqno": 16, "to_seqno": 16, "new": True}))
        await asyncio.sleep(0.05)
        await ws.close(1008, "slow client: 10000 frames dropped")

    async def c3(ws):
        await ws.send(hello(0, epoch=E2))  # the server restarted: another epoch
        await ws.send(frame(0, "Resume", {"mode": "snapshot", "reason": "other_epoch", "epoch": E2,
                                           "from_seqno": 1, "to_seqno": 3, "recovered": False}))
        await ws.send(events(3, ev(1)))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1, c2, c3]) as srv:
            async with connect(srv.url, backoff_initial=0.01, backoff_max=0.02) as client:
                got = await take(client, 16)
            return srv, got, client

    srv, got, client = run(main(), 20)
    kinds = [type(i).__name__ for i, _ in got]
    assert kinds == ["Connected", "Tps", "Lifecycle", "Event", "Event", "Event",
                     "Reconnecting", "Connected", "Resumed", "Event", "Event", "Gap",
                     "Reconnecting", "Connected", "Resumed", "Gap"] + kinds[16:]
    items = [i for i, _ in got]
    cursors = [c for _, c in got]
    # Hello sets the cursor to the session start; snapshot frames do not move it.
    assert cursors[0] == Cursor(E1, 10) and cursors[1] == cursors[2] == Cursor(E1, 10)
    assert items[1].snapshot and items[1].tps == 42 and items[2].snapshot
    # The cursor moves when the last event of a frame is handed out, not before.
    assert cursors[3] == Cursor(E1, 10) and cursors[4] == Cursor(E1, 12) and cursors[5] == Cursor(E1, 13)
    assert [e.server_seqno for e in items[3:6]] == [12, 12, 13]
    assert [(e.frame_index, e.frame_size) for e in items[3:6]] == [(0, 2), (1, 2), (0, 1)]
    assert items[6].close_code == 1006
    # Resume request carried the cursor and the epoch.
    assert srv.requests[1]["resume_from"] == "13" and srv.requests[1]["epoch"] == str(E1)
    assert [e.seqno for e in items[9:11]] == [103, 104]  # 100..102 re-sent and dropped
    assert client.stats["duplicates_dropped"] == 2
    assert items[11].reason == "slow_client" and items[11].raw["new"] is True
    assert items[12].close_code == 1008 and "slow client" in items[12].reason
    assert srv.requests[2]["resume_from"] == "16"
    # Another epoch: the Resume says recovered false and a synthetic resume_failed Gap follows.
    assert isinstance(items[14], Resumed) and items[14].reason == "other_epoch" and not items[14].recovered
    gap = items[15]
    assert isinstance(gap, Gap) and gap.reason == "resume_failed" and gap.synthetic
    assert gap.previous_cursor == Cursor(E1, 16) and gap.resume_reason == "other_epoch"
    assert cursors[13] == Cursor(E2, 0)


def test_new_epoch_event_after_gap_and_too_old_uses_server_gap():
    async def c1(ws):
        await ws.send(hello(5))
        await ws.send(frame(5, "Resume", {"mode": "snapshot", "reason": "too_old", "epoch": E1,
                                           "from_seqno": 50, "to_seqno": 60, "recovered": False}))
        await ws.send(frame(49, "Gap", {"reason": "resume_window", "from_seqno": 6, "to_seqno": 49}))
        await ws.send(events(51, ev(9)))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url, from_cursor="%d:5" % E1) as client:
                got = await take(client, 4)
            return srv, got

    srv, got = run(main(), 10)
    items = [i for i, _ in got]
    assert srv.requests[0]["resume_from"] == "5"
    assert [type(i) for i in items] == [Connected, Resumed, Gap, Event]
    assert items[2].reason == "resume_window" and not items[2].synthetic
    assert (items[2].from_seqno, items[2].to_seqno) == (6, 49)
    assert got[3][1] == Cursor(E1, 51)


def test_resume_failed_gap_when_server_sends_no_gap():
    async def c1(ws):
        await ws.send(hello(40))
        await ws.send(frame(40, "Resume", {"mode": "snapshot", "reason": "ahead_of_head", "epoch": E1,
                                            "recovered": False}))
        await ws.send(events(41, ev(9)))  # live from head: must not be taken for a duplicate
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url, from_cursor=Cursor(E1, 1000)) as client:
                return await take(client, 4)

    items = [i for i, _ in run(main(), 10)]
    assert [type(i) for i in items] == [Connected, Resumed, Gap, Event]
    assert items[2].reason == "resume_failed" and items[2].resume_reason == "ahead_of_head"


def test_backpressure_warning_triggers_resume_from_cursor():
    async def c1(ws):
        await ws.send(hello(5))
        await ws.send(events(6, ev(1)))
        await ws.send(frame(6, "Warning", {"type": "backpressure", "dropped": 3, "total_dropped": 3,
                                            "drop_limit": 10000, "dropped_from_seqno": 7, "dropped_to_seqno": 9}))
        await ws.send(events(10, ev(5)))  # after the loss: must not be yielded from this connection
        await asyncio.sleep(5)

    async def c2(ws):
        await ws.send(hello(6))
        await ws.send(frame(6, "Resume", {"mode": "resume", "reason": "in_range", "epoch": E1,
                                           "from_seqno": 7, "to_seqno": 10, "recovered": True}))
        await ws.send(events(9, ev(2), ev(3), ev(4)))
        await ws.send(events(10, ev(5)))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1, c2]) as srv:
            async with connect(srv.url, backoff_initial=0.01) as client:
                return srv, await take(client, 10)

    srv, got = run(main(), 10)
    items = [i for i, _ in got]
    assert isinstance(items[2], Warning) and items[2].recovering and items[2].dropped_from_seqno == 7
    assert srv.requests[1]["resume_from"] == "6"
    assert [e.seqno for e in items if isinstance(e, Event)] == [1, 2, 3, 4, 5]


SHED = {"lane": "detail", "dropped": 2, "total_shed": 2, "from_seqno": 7, "to_seqno": 9,
        "ring_from_seqno": 2, "ring_to_seqno": 4, "kinds": {"StorageAccess": 2}}


def test_a_shed_report_is_yielded_and_recovered_by_resume_from_cursor():
    async def c1(ws):
        await ws.send(hello(5))
        await ws.send(events(6, ev(1)))
        await ws.send(frame(6, "Shed", SHED))
        await ws.send(events(10, ev(5)))  # after the shed run: must not be yielded from this connection
        await asyncio.sleep(5)

    async def c2(ws):
        await ws.send(hello(6))
        await ws.send(frame(6, "Resume", {"mode": "resume", "reason": "in_range", "epoch": E1,
                                           "from_seqno": 7, "to_seqno": 10, "recovered": True}))
        await ws.send(events(9, ev(2, "StorageAccess"), ev(3, "BlockEnd"), ev(4, "StorageAccess")))
        await ws.send(events(10, ev(5)))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1, c2]) as srv:
            async with connect(srv.url, backoff_initial=0.01) as client:
                return srv, await take(client, 10), dict(client.stats)

    srv, got, stats = run(main(), 10)
    items = [i for i, _ in got]
    shed = items[2]
    assert isinstance(shed, Shed) and shed.recovering
    assert (shed.lane, shed.dropped, shed.from_seqno, shed.to_seqno) == ("detail", 2, 7, 9)
    assert shed.kinds == {"StorageAccess": 2} and shed.server_seqno == 6
    assert srv.requests[1]["resume_from"] == "6"
    assert [e.seqno for e in items if isinstance(e, Event)] == [1, 2, 3, 4, 5]
    assert stats["sheds"] == 1


def test_with_recover_shed_off_a_shed_report_is_yielded_and_the_connection_kept():
    async def c1(ws):
        await ws.send(hello(5))
        await ws.send(events(6, ev(1)))
        await ws.send(frame(6, "Shed", SHED))
        await ws.send(events(8, ev(3, "BlockEnd")))
        await ws.send(events(10, ev(5)))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url, recover_shed=False) as client:
                got = await take(client, 5)
                return srv, got, client.cursor

    srv, got, cursor = run(main(), 10)
    items = [i for i, _ in got]
    assert isinstance(items[2], Shed) and not items[2].recovering
    assert [e.seqno for e in items if isinstance(e, Event)] == [1, 3, 5]
    assert len(srv.requests) == 1
    assert cursor == Cursor(E1, 10)


def test_subscribe_message_and_prefilter_until_ack():
    addr = "0x" + "ab" * 20
    other = "0x" + "cd" * 20
    received = []

    async def c1(ws):
        await ws.send(hello(1))
        received.append(json.loads(await ws.recv()))
        # Before the ack the server still uses the connect-time subscription: the client filters.
        await ws.send(events(3, ev(1, "TxnLog", address=other, log_index=0, txn_index=0, topics="0x", data="0x"),
                             ev(2, "TxnLog", address=addr.upper().replace("0X", "0x"), log_index=0,
                                txn_index=0, topics="0x", data="0x"),
                             ev(3, "BlockStart")))
        await ws.send(frame(3, "Subscribed", {"channel": "all", "events": ["BlockStart", "TxnLog"],
                                               "filters": 1, "min_stage": "Proposed"}))
        await ws.send(events(4, ev(4, "TxnLog", address=addr)))
        await asyncio.sleep(5)

    flt = [{"event_name": "TxnLog", "field_filters": [{"field": "address", "filter": {"values": [addr]}}]}]

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url, events=["BlockStart"], filters=flt, min_stage="Proposed") as client:
                got = await take(client, 4)
                return srv, got, client

    srv, got, client = run(main(), 10)
    assert srv.requests[0]["events"] == "BlockStart,TxnLog" and srv.requests[0]["min_stage"] == "Proposed"
    assert received == [{"subscribe": {"events": ["BlockStart"], "filters": flt, "min_stage": "Proposed"}}]
    items = [i for i, _ in got]
    assert [e.seqno for e in items[1:]] == [2, 3, 4]
    assert client.subscription["filters"] == 1 and client.stats["prefiltered"] == 1


def test_error_frame_raises_subscription_error():
    async def c1(ws):
        await ws.send(hello(1, channel="txs"))
        await ws.send(frame(1, "Error", {"code": "not_allowed_on_channel",
                                          "message": "TPS is not carried by the txs channel"}))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url, channel="txs", events="TPS") as client:
                await take(client, 5)

    with pytest.raises(SubscriptionError) as ei:
        run(main(), 10)
    assert ei.value.code == "not_allowed_on_channel"


def test_no_hello_is_not_ringgate():
    async def c1(ws):
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            client = connect(srv.url)
            client.hello_timeout = 0.5
            async with client:
                pass

    with pytest.raises(NotRinggateError, match="no Hello"):
        run(main(), 10)


def test_non_json_first_frame_is_not_ringgate():
    async def c1(ws):
        await ws.send("hello there")
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url):
                pass

    with pytest.raises(NotRinggateError, match="not a ringgate Hello"):
        run(main(), 10)


def test_token_header_and_401():
    def reject(connection, request):
        return connection.respond(HTTPStatus.UNAUTHORIZED, '{"error":"invalid token"}\n')

    async def main():
        async with Scripted([], process_request=reject) as srv:
            seen = {}

            def capture(connection, request):
                seen.update(request.headers)
                seen["path"] = request.path
                return reject(connection, request)

            srv.server.process_request = capture  # type: ignore[attr-defined]
            async with connect(srv.url, token="s3cret", reconnect=True):
                pass
            return seen

    with pytest.raises(AuthenticationError, match="401.*invalid token"):
        run(main(), 10)


def test_token_sent_only_as_bearer_header():
    async def c1(ws):
        await ws.send(hello(1))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url, token="s3cret") as client:
                await take(client, 1)
            return srv

    srv = run(main(), 10)
    assert srv.headers[0]["authorization"] == "Bearer s3cret"
    assert "s3cret" not in json.dumps(srv.requests)


def test_no_reconnect_raises_connection_lost():
    async def c1(ws):
        await ws.send(hello(1))
        await ws.send(events(2, ev(1)))
        await asyncio.sleep(0.05)
        await abort(ws)

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url, reconnect=False) as client:
                await take(client, 5)

    with pytest.raises(ConnectionLost) as ei:
        run(main(), 10)
    assert ei.value.code == 1006


def test_backoff_full_jitter_and_retries_while_down():
    async def c1(ws):
        await ws.send(hello(1))
        await ws.send(events(2, ev(1)))
        await asyncio.sleep(0.05)
        await abort(ws)

    async def main():
        srv = Scripted([c1])
        await srv.__aenter__()
        client = connect(srv.url, backoff_initial=0.01, backoff_max=0.04)
        got = []
        async with client:
            async for item in client:
                got.append(item)
                if isinstance(item, Reconnecting) and item.attempt == 1:
                    await srv.__aexit__()  # the server goes away: further attempts fail
                if isinstance(item, Reconnecting) and item.attempt >= 5:
                    break
        return got

    got = run(main(), 10)
    recon = [i for i in got if isinstance(i, Reconnecting)]
    assert [r.attempt for r in recon] == [1, 2, 3, 4, 5]
    assert all(0 <= r.delay <= 0.04 for r in recon)
    assert "cannot connect" in recon[-1].reason


async def closing_server(port: int = 0):
    """A TCP server that closes every connection without an HTTP response (a gateway that is
    stopping: its listen backlog is closed unanswered)."""

    async def shut(reader, writer):
        writer.close()

    return await asyncio.start_server(shut, "127.0.0.1", port)


def test_connection_closed_before_the_http_response_is_retried_not_fatal():
    async def c1(ws):
        await ws.send(hello(1))
        await ws.send(events(2, ev(1)))
        await asyncio.sleep(0.05)
        await abort(ws)

    async def main():
        srv = Scripted([c1])
        await srv.__aenter__()
        port = int(srv.url.rsplit(":", 1)[1])
        closer = None
        got = []
        async with connect(srv.url, backoff_initial=0.01, backoff_max=0.04) as client:
            async for item in client:
                got.append(item)
                if isinstance(item, Reconnecting) and item.attempt == 1:
                    await srv.__aexit__()
                    closer = await closing_server(port)  # same port, before the next try
                if isinstance(item, Reconnecting) and item.attempt >= 4:
                    break
        closer.close()
        # A first connect fails fast, with a connect error (not "not a ringgate gateway").
        closer = await closing_server()
        first_port = closer.sockets[0].getsockname()[1]
        try:
            async with connect(f"ws://127.0.0.1:{first_port}"):
                pass
        except ConnectError as e:
            first = e
        closer.close()
        return got, first

    got, first = run(main(), 10)
    recon = [i for i in got if isinstance(i, Reconnecting)]
    assert [r.attempt for r in recon] == [1, 2, 3, 4]
    assert all("HTTP" in r.reason for r in recon[1:]), [r.reason for r in recon]
    assert not isinstance(first, NotRinggateError) and "cannot connect" in str(first), first


def test_close_from_another_task_ends_iteration():
    async def c1(ws):
        await ws.send(hello(1))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            client = connect(srv.url)
            got = []

            async def consume():
                async for item in client:
                    got.append(item)

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.3)
            await client.close()
            await asyncio.wait_for(task, 3)
            return got

    got = run(main(), 10)
    assert [type(i) for i in got] == [Connected]


def test_unknown_message_types_are_ignored():
    async def c1(ws):
        await ws.send(hello(1))
        await ws.send(frame(1, "SomethingNew", {"a": 1}))
        await ws.send(events(2, ev(1, "FutureKind", foo=1)))
        await asyncio.sleep(5)

    async def main():
        async with Scripted([c1]) as srv:
            async with connect(srv.url) as client:
                return await take(client, 2)

    items = [i for i, _ in run(main(), 10)]
    assert items[1].event_name == "FutureKind" and items[1].payload.raw["foo"] == 1
