// viem over webSocket(): watchBlocks (newHeads), watchEvent and watchContractEvent (logs with
// an address/topic filter), against a real ringgate serving a synthetic chain.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicClient, webSocket, parseAbiItem } from "viem";
import { RPC_URL, TRANSFER, ready, sleep, until, assertHeights, assertLogs } from "./common.mjs";

const transfer = parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)");

test("viem watchBlocks, watchEvent and watchContractEvent get the chain as ringgate serves it", async (t) => {
  const client = createPublicClient({ transport: webSocket(RPC_URL) });
  const unwatch = [];
  t.after(async () => {
    for (const u of unwatch) u();
    (await client.transport.getRpcClient()).close();
  });
  const blocks = [];
  const events = [];
  const unwatchBlocks = client.watchBlocks({ onBlock: (b) => blocks.push(b), onError: (e) => assert.fail(e) });
  const unwatchEvents = client.watchEvent({ event: transfer, onLogs: (ls) => events.push(...ls), onError: (e) => assert.fail(e) });
  unwatch.push(unwatchBlocks, unwatchEvents);
  // Requests on one socket are answered in order: once this returns, the subscriptions are in.
  assert.equal(await client.request({ method: "web3_clientVersion" }).then((v) => v.startsWith("ringgate/")), true);
  await sleep(200);
  ready();

  await until("25 blocks and 25 Transfer logs", () => blocks.length >= 25 && events.length >= 25);
  const token = events[0].address;
  const contractLogs = [];
  const unwatchContract = client.watchContractEvent({
    address: token,
    abi: [transfer],
    eventName: "Transfer",
    onLogs: (ls) => contractLogs.push(...ls),
    onError: (e) => assert.fail(e),
  });
  await until("3 logs of one token", () => contractLogs.length >= 3);
  unwatch.push(unwatchContract);

  // viem fetches each announced block by number (eth_getBlockByNumber): a height two
  // proposals competed for is fetched twice, so heights may repeat; none may be skipped.
  for (const b of blocks) {
    assert.equal(typeof b.number, "bigint");
    assert.match(b.hash, /^0x[0-9a-f]{64}$/);
    assert.match(b.parentHash, /^0x[0-9a-f]{64}$/);
    assert.equal(typeof b.timestamp, "bigint");
    assert.ok(b.transactions.length > 0, "the synthetic blocks have transactions");
    for (const h of b.transactions) assert.match(h, /^0x[0-9a-f]{64}$/);
  }
  assertHeights(blocks.map((b) => b.number));
  const numbers = blocks.map((b) => b.number);
  const [lo, hi] = [numbers[0], numbers[numbers.length - 1]];

  const live = events.filter((l) => !l.removed);
  for (const l of live) {
    assert.equal(l.eventName, "Transfer");
    assert.equal(l.topics[0], TRANSFER);
    assert.equal(typeof l.args.value, "bigint");
    assert.match(l.args.from, /^0x[0-9a-fA-F]{40}$/);
    assert.equal(typeof l.blockNumber, "bigint");
    assert.equal(typeof l.logIndex, "number");
  }
  assertLogs(live.map((l) => ({ blockHash: l.blockHash, index: l.logIndex })));
  const within = live.filter((l) => l.blockNumber >= lo && l.blockNumber <= hi);
  assert.ok(within.length > 0, "logs of the blocks watchBlocks saw");
  for (const l of contractLogs) {
    assert.equal(l.address.toLowerCase(), token.toLowerCase(), "the address filter reached the server");
    assert.equal(l.eventName, "Transfer");
  }
});
