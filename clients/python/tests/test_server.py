"""Against the real ringgate binary: subscriptions, exact resume through a cutting proxy,
gaps, and clear errors for bad requests and servers that are not ringgate."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import time

import pytest

from ringgate_client import (
    ConnectError,
    Connected,
    Cursor,
    Event,
    Gap,
    NotRinggateError,
    Reconnecting,
    RequestRejected,
    Resumed,
    Shed,
    SubscriptionError,
    Tps,
    Warning,
    connect,
    field_filter,
)

from conftest import free_port, run, stop


async def collect(client, done, limit_s: float):
    """Items until done(items) or limit_s seconds (no failure on time-out: callers assert)."""
    items = []

    async def go():
        async for item in client:
            items.append(item)
            if done(items):
                return

    try:
        await asyncio.wait_for(go(), limit_s)
    except asyncio.TimeoutError:
        pass
    return items


def events_of(items):
    return [i for i in items if isinstance(i, Event)]


# --------------------------------------------------------------------------- (1) subscriptions


def test_events_and_field_filter_deliver_only_matches(chain):
    epoch = chain.status()["epoch"]
    start = Cursor(epoch, 0)

    async def main():
        # Reference: every TxnLog from the start of the stored history.
        async with connect(chain.url, events=["TxnLog"], from_cursor=start) as client:
            ref = events_of(await collect(client, lambda it: len(events_of(it)) >= 400, 15))
        assert len(ref) >= 400, len(ref)
        counts = collections.Counter(e.payload.address for e in ref)
        address, n = counts.most_common(1)[0]
        last = ref[-1].seqno
        expected = [e.seqno for e in ref if e.payload.address == address]

        flt = [{"event_name": "TxnLog",
                "field_filters": [field_filter("address", values=[address.upper().replace("0X", "0x")])]}]
        async with connect(chain.url, filters=flt, from_cursor=start) as client:
            got = await collect(client, lambda it: any(isinstance(e, Event) and e.seqno >= last for e in it), 15)
            # The subscription's ack may come after the replayed frames on a busy machine:
            # wait for it (what arrives meanwhile is not part of the checked stream).
            if client.subscription is None:
                await collect(client, lambda it: client.subscription is not None, 10)
            sub = client.subscription
        return address, expected, last, got, sub

    address, expected, last, got, sub = run(main(), 40)
    evs = events_of(got)
    assert evs, "no filtered events arrived"
    assert {e.event_name for e in evs} == {"TxnLog"}
    assert {e.payload.address for e in evs} == {address}
    assert [e.seqno for e in evs if e.seqno <= last] == expected
    assert sub is not None and sub["events"] == ["TxnLog"] and sub["filters"] == 1
    # Only TxnLog was subscribed: no meta frames either.
    assert not [i for i in got if isinstance(i, Tps)]


def test_channel_events_and_meta_items(chain):
    epoch = chain.status()["epoch"]

    async def main():
        async with connect(chain.url, channel="blocks", events="BlockStart,BlockEnd,TPS",
                           from_cursor=Cursor(epoch, 0)) as client:
            return await collect(client, lambda it: sum(isinstance(e, Event) and e.event_name == "BlockStart"
                                                        for e in it) >= 4, 15)

    items = run(main(), 20)
    assert isinstance(items[0], Connected) and items[0].channel == "blocks"
    assert {e.event_name for e in events_of(items)} == {"BlockStart", "BlockEnd"}
    assert {type(i).__name__ for i in items} <= {"Connected", "Resumed", "Event", "Tps"}


def test_min_stage_finalized(chain):
    epoch = chain.status()["epoch"]

    async def main():
        async with connect(chain.url, events=["BlockStart", "TxnHeaderStart", "BlockQC"], min_stage="Finalized",
                           from_cursor=Cursor(epoch, 0)) as client:
            return await collect(client, lambda it: sum(isinstance(e, Event) and e.event_name == "BlockStart"
                                                        for e in it) >= 3, 15)

    evs = events_of(run(main(), 20))
    assert sum(e.event_name == "BlockStart" for e in evs) >= 3
    for e in evs:
        # In-block events are released at the gate's stage; BlockQC is delivered live (Voted).
        assert e.commit_stage == ("Voted" if e.event_name == "BlockQC" else "Finalized"), e.raw


# --------------------------------------------------------------------------- (2) exactly once


class CuttingProxy:
    """A TCP proxy whose cut() aborts every open connection (both sides, no close frame)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.cuts = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.pairs.append((writer, up_w))

        async def pipe(r, w):
            try:
                while True:
                    data = await r.read(16384)
                    if not data:
                        break
                    w.write(data)
                    await w.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                w.transport.abort()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    def cut(self) -> None:
        for a, b in self.pairs:
            a.transport.abort()
            b.transport.abort()
        if self.pairs:
            self.cuts += 1
        self.pairs.clear()

    async def close(self):
        self.cut()
        self.server.close()
        await self.server.wait_closed()


def test_reconnect_resume_exactly_once_through_cutting_proxy(chain):
    st = chain.status()
    epoch = st["epoch"]
    # Start some way back so the run covers a replay burst and then the live stream.
    start = Cursor(epoch, max(0, st["server_seqno"] - 15000))
    stop_ring = st["head_ring_seqno"] + 2500  # ~2.5 s of live events at the chain's rate

    async def reader(url, out):
        async with connect(url, from_cursor=start, backoff_initial=0.02, backoff_max=0.2) as client:
            async for item in client:
                out.append(item)
                if isinstance(item, Event) and item.seqno >= stop_ring and item.last_in_frame:
                    return client

    async def main():
        proxy = CuttingProxy(chain.port)
        port = await proxy.start()
        cut_items, ref_items = [], []
        try:
            cut_task = asyncio.create_task(reader(f"ws://127.0.0.1:{port}", cut_items))
            ref_task = asyncio.create_task(reader(chain.url, ref_items))
            while not cut_task.done():
                await asyncio.sleep(0.35)
                # Not before the first connect got its Hello: a first connect fails fast by
                # design (a wrong URL must be an error, not a retry loop).
                if cut_items:
                    proxy.cut()
            cut_client = await cut_task
            await ref_task
        finally:
            await proxy.close()
        return cut_items, ref_items, cut_client, proxy.cuts

    cut_items, ref_items, cut_client, cuts = run(main(), 60)
    reconnects = [i for i in cut_items if isinstance(i, Reconnecting)]
    assert cuts >= 3 and len(reconnects) >= 3, (cuts, len(reconnects))
    assert not [i for i in ref_items if isinstance(i, Reconnecting)]
    resumed = [i for i in cut_items if isinstance(i, Resumed)]
    assert resumed and all(r.recovered for r in resumed), resumed

    def ring_seqnos(items):
        out, holes = [], []
        for i in items:
            if isinstance(i, Gap):
                holes.append(i)
            elif isinstance(i, Event):
                if out and i.seqno != out[-1] + 1 and not holes:
                    raise AssertionError(f"hole {out[-1]} -> {i.seqno} not covered by a Gap")
                holes.clear()
                out.append(i.seqno)
        return out

    cut_seq, ref_seq = ring_seqnos(cut_items), ring_seqnos(ref_items)
    print(f"\nexactly-once: {cuts} cuts, {len(reconnects)} reconnects, {len(cut_seq)} events "
          f"(ring seqnos {cut_seq[0]}..{cut_seq[-1]}), reference {len(ref_seq)}, "
          f"duplicates dropped {cut_client.stats['duplicates_dropped']}")
    assert all(b > a for a, b in zip(cut_seq, cut_seq[1:])), "not strictly increasing / duplicates"
    assert len(set(cut_seq)) == len(cut_seq)
    n = min(len(cut_seq), len(ref_seq))
    assert n > 2000 and cut_seq[:n] == ref_seq[:n]
    assert not [i for i in cut_items if isinstance(i, Gap)]
    # server_seqnos of the frames handed out never go back, and the cursor is the last one.
    ss = [i.server_seqno for i in cut_items if isinstance(i, Event)]
    assert all(b >= a for a, b in zip(ss, ss[1:]))
    assert cut_client.cursor == Cursor(epoch, ss[-1])


# --------------------------------------------------------------------------- (3) gaps


def test_cursor_from_another_epoch_yields_resume_failed_gap(chain):
    epoch = chain.status()["epoch"]

    async def main():
        async with connect(chain.url, from_cursor=f"{epoch - 1}:12345") as client:
            items = await collect(client, lambda it: any(isinstance(i, Event) for i in it), 15)
            return items, client.cursor

    items, cursor = run(main(), 20)
    kinds = [type(i) for i in items]
    assert kinds[:3] == [Connected, Resumed, Gap], kinds[:5]
    res, gap = items[1], items[2]
    assert res.reason == "other_epoch" and not res.recovered and res.epoch == epoch
    assert gap.reason == "resume_failed" and gap.synthetic and gap.previous_cursor == Cursor(epoch - 1, 12345)
    assert isinstance(items[-1], Event) and cursor.epoch == epoch


def test_cursor_too_old_yields_server_resume_window_gap(small_store):
    st = small_store.status()
    epoch = st["epoch"]

    async def main():
        async with connect(small_store.url, from_cursor=Cursor(epoch, 1)) as client:
            return await collect(client, lambda it: any(isinstance(i, Event) for i in it), 15)

    items = run(main(), 20)
    kinds = [type(i) for i in items]
    assert kinds[:3] == [Connected, Resumed, Gap], kinds[:5]
    res, gap = items[1], items[2]
    assert res.reason == "too_old" and not res.recovered
    assert gap.reason == "resume_window" and not gap.synthetic and gap.from_seqno == 2
    assert gap.to_seqno >= st["oldest_resumable_seqno"] - 1
    assert [g for g in items if isinstance(g, Gap)] == [gap]  # no extra synthetic gap
    first = next(i for i in items if isinstance(i, Event))
    assert first.server_seqno > gap.to_seqno


def test_cursor_ahead_of_head_resets_and_keeps_streaming(chain):
    epoch = chain.status()["epoch"]

    async def main():
        async with connect(chain.url, from_cursor=Cursor(epoch, 10**12)) as client:
            return await collect(client, lambda it: len(events_of(it)) >= 10, 10)

    items = run(main(), 15)
    assert items[1].reason == "ahead_of_head" and items[2].reason == "resume_failed"
    assert len(events_of(items)) >= 10  # frames after the reset are not taken for duplicates


# --------------------------------------------------------------------------- (4) clear errors


def _bounded(coro, limit=10.0):
    t0 = time.monotonic()
    try:
        run(coro, limit)
    finally:
        assert time.monotonic() - t0 < limit


def test_unknown_event_name_is_rejected(chain):
    async def main():
        async with connect(chain.url, events=["NoSuchEvent"]):
            pass

    with pytest.raises(RequestRejected, match="400.*events"):
        _bounded(main())


def test_item_not_on_channel_is_subscription_error(chain):
    async def main():
        async with connect(chain.url, channel="txs", events=["TPS"]) as client:
            async for _ in client:
                pass

    with pytest.raises(SubscriptionError) as ei:
        _bounded(main())
    assert ei.value.code == "not_allowed_on_channel"


def test_bad_filter_is_subscription_error(chain):
    flt = [{"event_name": "TxnLog", "field_filters": [{"field": "bogus", "filter": {"min": 1}}]}]

    async def main():
        async with connect(chain.url, filters=flt) as client:
            async for _ in client:
                pass

    with pytest.raises(SubscriptionError) as ei:
        _bounded(main())
    assert ei.value.code == "unknown_field"


@pytest.fixture
def http_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket

        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("http.server did not start")
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.mark.parametrize("path", ["", "/v1/ws/txs"])
def test_plain_http_server_is_not_ringgate(http_server, path):
    async def main():
        async with connect(http_server + path, reconnect=True) as client:
            async for _ in client:
                pass

    with pytest.raises(NotRinggateError, match="is this a ringgate gateway"):
        _bounded(main(), 10)


def test_connection_refused_is_a_clear_error():
    port = free_port()

    async def main():
        async with connect(f"ws://127.0.0.1:{port}"):
            pass

    with pytest.raises(ConnectError, match="cannot connect"):
        _bounded(main(), 10)


def _serve_help(binary: str) -> str:
    return subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=10).stdout


def test_bad_token_real_server(ringgate_bin, chain, workdir):
    if "--auth-keys" not in _serve_help(ringgate_bin):
        pytest.skip("this ringgate binary has no `serve --auth-keys`: token refusal is covered against a "
                    "scripted server (test_fake_server.py::test_token_header_and_401)")
    import hashlib

    from conftest import Server
    from ringgate_client import AuthenticationError

    keys = workdir / "keys.toml"
    keys.write_text('[[key]]\nname = "test"\ntoken_sha256 = "%s"\nmax_connections = 10\n'
                    % hashlib.sha256(b"good-token").hexdigest())
    server = Server(ringgate_bin, workdir / "chain.ring", "--auth-keys", str(keys))
    try:
        async def attempt(token):
            async with connect(server.url, token=token) as client:
                async for item in client:
                    return item

        with pytest.raises(AuthenticationError):
            _bounded(attempt("bad-token"))
        assert isinstance(run(attempt("good-token"), 10), Connected)
    finally:
        server.stop()


# --------------------------------------------------------------------------- slow client


class PausingProxy:
    """A TCP proxy that can stop forwarding server->client bytes, with a tiny upstream receive
    buffer, so the server's per-session queue fills and it drops frames for this client."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        import socket

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.target_port))
        except OSError:
            sock.close()
            writer.transport.abort()
            return
        up_r, up_w = await asyncio.open_connection(sock=sock)

        async def pipe(r, w, gated):
            try:
                while True:
                    if gated:
                        await self.flowing.wait()
                    data = await r.read(4096)
                    if not data:
                        break
                    w.write(data)
                    await w.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                w.transport.abort()

        await asyncio.gather(pipe(reader, up_w, False), pipe(up_r, writer, True))

    async def close(self):
        self.server.close()


@pytest.fixture(scope="module")
def slow_client_server(ringgate_bin, workdir):
    from conftest import Server, Writer

    writer = Writer(ringgate_bin, workdir / "fast.ring", 3000)
    server = None
    try:
        server = Server(ringgate_bin, writer.ring, "--session-queue", "16", "--drop-limit", "20",
                        "--resume-frames", "2000000")
        server.wait_until(lambda s: s.get("server_seqno", 0) > 0, what="first frame")
        yield server
    finally:
        if server is not None:
            server.stop()
        writer.stop()


def test_slow_client_drops_are_recovered_by_resume(slow_client_server):
    """Shed reports (priority lanes), backpressure drops (Warning) and slow-client closes (1008)
    are repaired by resuming."""
    server = slow_client_server

    async def main():
        proxy = PausingProxy(server.port)
        port = await proxy.start()
        items = []
        try:
            async with connect(f"ws://127.0.0.1:{port}", backoff_initial=0.01, backoff_max=0.1) as client:
                t0 = time.monotonic()
                paused = False
                async for item in client:
                    items.append(item)
                    now = time.monotonic() - t0
                    if not paused and now > 0.3:
                        paused = True
                        proxy.flowing.clear()
                        asyncio.get_running_loop().call_later(2.0, proxy.flowing.set)
                    if now > 4.0 and isinstance(item, Event) and item.last_in_frame:
                        break
        finally:
            await proxy.close()
        return items

    items = run(main(), 30)
    # With priority lanes (the default) a stalled client is usually shed, not dropped: `shed`
    # counts lower-lane frames reported in `Shed`, `drops` top-lane frames reported in `Warning`.
    shards = server.status()["shards"]
    drops = sum(s["drops"] for s in shards)
    shed = sum(s["shed"] for s in shards)
    assert drops + shed > 0, "the server dropped and shed nothing: the test did not exercise backpressure"
    backpressure = [i for i in items if isinstance(i, (Warning, Shed)) and i.recovering]
    slow_closes = [i for i in items if isinstance(i, Reconnecting) and i.close_code == 1008]
    assert backpressure or slow_closes
    assert all(r.recovered for r in items if isinstance(r, Resumed))
    assert not [g for g in items if isinstance(g, Gap)]
    seqs = [e.seqno for e in events_of(items)]
    holes = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    assert not holes, holes[:5]
    print(f"\nslow client: server drops {drops}, shed {shed}, warnings {len(backpressure)}, 1008 closes {len(slow_closes)}, "
          f"events {len(seqs)} contiguous")
