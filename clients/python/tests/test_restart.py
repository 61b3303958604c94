"""A real gateway with a durable history (`--history-dir`) killed (SIGKILL) or stopped
(SIGTERM) while the client consumes, the ring written while it is down, and started again on
the same port with the same history dir and ring: the client reconnects by itself, resumes in
the same epoch (the restarted gateway adopts the journal's epoch and continues its seqnos, see
docs/decisions/0003-durable-history.md) and yields every ring event exactly once: no Gap, no
duplicate, no hole."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess

import pytest

from ringgate_client import Connected, Event, Gap, Reconnecting, Resumed, connect

from conftest import Server, run


def ring_last_seqno(binary: str, ring) -> int:
    """The newest seqno the writer has put in the ring (`ringgate inspect`)."""
    out = subprocess.run([binary, "inspect", str(ring)], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"^# last_seqno\s+(\d+)", out, re.M)
    assert m, f"no last_seqno in `ringgate inspect`:\n{out}"
    return int(m.group(1))


def halt(server: Server, how: signal.Signals) -> None:
    """SIGKILL, or SIGTERM with a clean exit."""
    server.proc.send_signal(how)
    code = server.proc.wait(15)
    if how == signal.SIGTERM:
        assert code == 0, f"SIGTERM exits cleanly: {code}\n{''.join(server.lines)}"


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_restart_with_history_dir_resumes_every_event_exactly_once(ringgate_bin, chain, workdir, how):
    ring = workdir / "chain.ring"  # the chain fixture's writer keeps writing it
    history = workdir / f"history-{how.name}"
    first = Server(ringgate_bin, ring, "--history-dir", str(history))
    servers = [first]
    first.wait_until(lambda s: s.get("ring") == "live" and s.get("server_seqno", 0) > 0, what="live")
    epoch = first.status()["epoch"]
    items: list = []

    async def wait_for(cond, what: str, limit_s: float = 30):
        async def poll():
            while not cond():
                await asyncio.sleep(0.01)

        try:
            await asyncio.wait_for(poll(), limit_s)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out waiting until {what}") from None

    async def main():
        client = connect(first.url, backoff_initial=0.02, backoff_max=0.2)
        stop_at: list[int] = []

        async def consume():
            async with client:
                async for item in client:
                    items.append(item)
                    if stop_at and isinstance(item, Event) and item.seqno >= stop_at[0]:
                        return

        task = asyncio.create_task(consume())
        try:
            await wait_for(lambda: sum(isinstance(i, Event) for i in items) >= 500, "500 events consumed")
            # Mid-stream: the writer goes on, the client is reading.
            await asyncio.to_thread(halt, first, how)
            at_halt = await asyncio.to_thread(ring_last_seqno, ringgate_bin, ring)
            await wait_for(lambda: any(isinstance(i, Reconnecting) for i in items), "the client saw the drop")
            # 500 more events written while the gateway is down.
            down = at_halt
            while down < at_halt + 500:
                await asyncio.sleep(0.05)
                down = await asyncio.to_thread(ring_last_seqno, ringgate_bin, ring)
            again = await asyncio.to_thread(
                Server, ringgate_bin, ring, "--history-dir", str(history), "--listen", f"127.0.0.1:{first.port}")
            servers.append(again)
            assert again.port == first.port
            assert (await asyncio.to_thread(again.status))["epoch"] == epoch, "the journal's epoch"
            # Then live events of the restarted gateway.
            stop_at.append(down + 1000)
            await asyncio.wait_for(task, 45)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return at_halt, down

    try:
        at_halt, down = run(main(), 80)
    finally:
        for s in servers:
            s.stop()

    gaps = [i for i in items if isinstance(i, Gap)]
    assert not gaps, gaps
    back = [i for i in items if isinstance(i, Connected) and i.reconnect]
    assert back and all(c.epoch == epoch for c in back), back
    resumed = [i for i in items if isinstance(i, Resumed) and i.requested is not None]
    assert resumed and all(r.recovered and r.mode == "resume" for r in resumed), resumed
    seqs = [i.seqno for i in items if isinstance(i, Event)]
    gone = next(n for n, i in enumerate(items) if isinstance(i, Reconnecting))
    before = [i.seqno for i in items[:gone] if isinstance(i, Event)]
    # The gateway never read past what the ring held when it went: the events written while
    # it was down (at_halt, down] reached the client only after it reconnected.
    assert before[-1] <= at_halt < down < seqs[-1], (before[-1], at_halt, down, seqs[-1])
    dups = len(seqs) - len(set(seqs))
    holes = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    assert not dups and not holes, f"{dups} duplicates, holes {holes[:5]}"
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    print(f"\nrestart ({how.name}): {len(seqs)} events, ring seqnos {seqs[0]}..{seqs[-1]} contiguous; "
          f"client had {before[-1]} when the gateway went, ring at {at_halt}, {down} when it came back")
