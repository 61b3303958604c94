// ethers v6 WebSocketProvider: network detection (eth_chainId), on("block"), a topic filter,
// a contract event filter, and a removed log (an abandoned proposal's, retracted by ringgate)
// reaching ethers' orphan path instead of the user's handler.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Contract, WebSocketProvider } from "ethers";
import { RPC_URL, TRANSFER, ready, until, assertHeights, assertLogs } from "./common.mjs";

const ABI = ["event Transfer(address indexed from, address indexed to, uint256 value)"];

test("ethers v6 detects the network, follows blocks and events, and orphans removed logs", async (t) => {
  const provider = new WebSocketProvider(RPC_URL);
  t.after(() => provider.destroy());
  // ethers holds every request until eth_chainId answers, which needs the first block:
  // start the chain now.
  ready();
  await provider._waitUntilReady(); // ethers retries eth_chainId every second until then
  const network = await provider.getNetwork();
  assert.equal(network.chainId, 143n, "the synthetic chain's id, from BLOCK_START");

  const heights = [];
  await provider.on("block", (n) => heights.push(n));
  const logs = [];
  const orphaned = [];
  await provider.on({ topics: [TRANSFER] }, (log) => {
    logs.push(log);
    // ethers routes a `removed: true` copy of this log to its "drop-log" orphan event.
    provider.on({ orphan: "drop-log", log: { ...log.toJSON(), removed: true } }, (l) => orphaned.push(l));
  });
  await until("20 blocks and 20 Transfer logs", () => heights.length >= 20 && logs.length >= 20);

  const token = new Contract(logs[0].address, ABI, provider);
  const transfers = [];
  await token.on("Transfer", (from, to, value, ev) => transfers.push({ from, to, value, log: ev.log }));
  await until("3 Transfers of one token", () => transfers.length >= 3);
  // The synthetic chain forks about once in twenty heights; the losing proposal's logs come
  // back removed when the winner is finalized.
  await until("a retracted log", () => orphaned.length >= 1);


  for (const n of heights) assert.equal(typeof n, "number");
  assertHeights(heights);
  for (const l of logs) {
    assert.equal(l.removed, false, "a removed log reached the user's handler");
    assert.equal(l.topics[0], TRANSFER);
    assert.equal(typeof l.blockNumber, "number");
  }
  assertLogs(logs.map((l) => ({ blockHash: l.blockHash, index: l.index })));
  for (const x of transfers) {
    assert.equal(x.log.address, logs[0].address, "the contract's address filter");
    assert.equal(typeof x.value, "bigint");
    assert.match(x.from, /^0x[0-9a-fA-F]{40}$/);
  }
  const delivered = new Set(logs.map((l) => `${l.blockHash}:${l.index}`));
  for (const o of orphaned) {
    assert.equal(o.removed, true);
    assert.ok(delivered.has(`${o.blockHash}:${o.index}`), "a retraction of a log that was delivered");
  }
});
