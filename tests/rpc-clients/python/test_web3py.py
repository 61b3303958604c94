"""web3.py (AsyncWeb3 + WebSocketProvider) against ringgate's JSON-RPC: subscribe to newHeads
and to logs with an address and topic filter, read what web3.py hands the user, unsubscribe.
Run through tests/rpc-clients/run (RPC_URL, READY_FILE; the chain starts once READY_FILE
exists)."""

import asyncio
import os

from web3 import AsyncWeb3, WebSocketProvider

TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def ready():
    with open(os.environ["READY_FILE"], "w") as f:
        f.write("ready\n")


async def collect(w3, wanted, enough):
    """Notifications by subscription id until `enough(got)`."""
    got = {sid: [] for sid in wanted}
    async for msg in w3.socket.process_subscriptions():
        sid = msg["subscription"]
        if sid in got:
            got[sid].append(msg["result"])
        if enough(got):
            return got
    raise AssertionError("the subscription stream ended")


async def scenario():
    async with AsyncWeb3(WebSocketProvider(os.environ["RPC_URL"])) as w3:
        heads = await w3.eth.subscribe("newHeads")
        transfers = await w3.eth.subscribe("logs", {"topics": [TRANSFER]})
        assert heads.startswith("0x") and len(heads) == 34, heads
        ready()
        got = await collect(w3, [heads, transfers], lambda g: len(g[heads]) >= 10 and len(g[transfers]) >= 10)

        blocks = got[heads]
        numbers = [b["number"] for b in blocks]
        assert all(isinstance(n, int) for n in numbers), numbers
        for a, b in zip(numbers, numbers[1:]):
            assert b in (a, a + 1), f"heights {a} then {b}"
        hashes = [bytes(b["hash"]) for b in blocks]
        assert len(set(hashes)) == len(hashes), "a block delivered twice"
        assert all(len(h) == 32 for h in hashes)

        delivered = set()
        for log in got[transfers]:
            assert log["topics"][0].to_0x_hex() == TRANSFER, log
            assert isinstance(log["blockNumber"], int) and isinstance(log["logIndex"], int)
            key = (bytes(log["blockHash"]), log["logIndex"])
            if log["removed"]:
                # An abandoned proposal's log, retracted: it was delivered before.
                assert key in delivered, f"retraction of a log never delivered: {key}"
            else:
                assert key not in delivered, f"log {key} delivered twice"
                delivered.add(key)
        logs = [log for log in got[transfers] if not log["removed"]]

        # Narrow to one token: every log web3.py hands over is that token's.
        token = logs[0]["address"]
        one = await w3.eth.subscribe("logs", {"address": token, "topics": [TRANSFER]})
        assert await w3.eth.unsubscribe(transfers) is True
        got = await collect(w3, [one], lambda g: len(g[one]) >= 3)
        for log in got[one]:
            assert log["address"] == token, (log["address"], token)
        assert await w3.eth.unsubscribe(one) is True
        assert await w3.eth.unsubscribe(heads) is True


def test_web3py_subscribes_to_heads_and_filtered_logs():
    asyncio.run(asyncio.wait_for(scenario(), 120))
