//! JSON-RPC `eth_subscribe` through the real gateway (`server::start`, real ring, real
//! sockets): the plain methods and Monad's error codes, what each kind receives at which
//! commit state, the retraction of an abandoned proposal, the `commitState` and
//! `fromBlock` extensions, the byte-bounded queue, pings, `--rpc-listen` and shutdown.
//!
//! Blocks are hand-built with chosen ids, addresses and topics, so forks are deterministic.

mod common;

use std::net::SocketAddr;

use common::*;
use ringgate::config::Config;
use ringgate::ingest::event::payload::layout as pl;
use ringgate::model::kind::EventType;
use ringgate::model::stage::CommitStage;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

const CHAIN_ID: u64 = 143;

/// One log: emitter `[address; 20]`, topics `[t; 32]` for each `t`.
struct Log(u8, &'static [u8]);

/// A complete block: id `[id; 32]`, hash `[!id; 32]`, one transaction per log.
fn block(ring: &mut TestRing, id: u8, number: u64, logs: &[Log]) {
    let mut start = vec![0u8; pl::BLOCK_START];
    start[pl::block_start::ID..pl::block_start::ID + 32].copy_from_slice(&[id; 32]);
    start[pl::block_start::NUMBER..pl::block_start::NUMBER + 8]
        .copy_from_slice(&number.to_le_bytes());
    start[pl::block_start::ETH_NUMBER..pl::block_start::ETH_NUMBER + 8]
        .copy_from_slice(&number.to_le_bytes());
    start[pl::block_start::CHAIN_ID..pl::block_start::CHAIN_ID + 8]
        .copy_from_slice(&CHAIN_ID.to_le_bytes());
    let next = ring.next_seqno();
    let bs = ring.write(EventType::BlockStart, [next, 0, 0, 0], &start);
    for (i, Log(address, topics)) in logs.iter().enumerate() {
        let ext = [bs, i as u64 + 1, 0, 0];
        let mut header = vec![0u8; pl::TXN_HEADER_START];
        header[..32].copy_from_slice(&[i as u8 + 1; 32]);
        ring.write(EventType::TxnHeaderStart, ext, &header);
        let mut log = vec![0u8; pl::TXN_LOG];
        log[4..24].copy_from_slice(&[*address; 20]);
        log[24] = topics.len() as u8;
        for t in topics.iter() {
            log.extend_from_slice(&[*t; 32]);
        }
        ring.write(EventType::TxnLog, ext, &log);
        ring.write(EventType::TxnEnd, ext, &[]);
    }
    let mut end = vec![0u8; pl::BLOCK_END];
    end[..32].copy_from_slice(&[!id; 32]);
    ring.write(EventType::BlockEnd, [bs, 0, 0, 0], &end);
}

fn hex(b: u8, n: usize) -> String {
    format!("0x{}", format!("{b:02x}").repeat(n))
}

struct Rpc {
    c: WsClient,
    next_id: u64,
    /// Notifications read while waiting for a response.
    pending: Vec<Value>,
}

impl Rpc {
    fn connect(addr: SocketAddr, path: &str) -> Rpc {
        Rpc {
            c: WsClient::connect(addr, path),
            next_id: 1,
            pending: Vec::new(),
        }
    }

    /// Sends `method(params)` and returns its response (notifications are kept).
    fn call(&mut self, method: &str, params: &str) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.c.send_text(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        ));
        self.response(Some(id))
    }

    fn response(&mut self, id: Option<u64>) -> Value {
        loop {
            let v = self.c.next_json();
            if v.get("method").is_some() {
                self.pending.push(v);
                continue;
            }
            if let Some(id) = id {
                assert_eq!(v["id"].as_u64(), Some(id), "{v:?}");
            }
            return v;
        }
    }

    fn subscribe(&mut self, params: &str) -> String {
        let v = self.call("eth_subscribe", params);
        v["result"]
            .as_str()
            .unwrap_or_else(|| panic!("{v:?}"))
            .to_owned()
    }

    /// The next notification: (subscription id, result).
    fn note(&mut self) -> (String, Value) {
        let v = if self.pending.is_empty() {
            self.c.next_json()
        } else {
            self.pending.remove(0)
        };
        assert_eq!(v["method"].as_str(), Some("eth_subscription"), "{v:?}");
        let p = &v["params"];
        (
            p["subscription"].as_str().unwrap().to_owned(),
            p["result"].clone(),
        )
    }
}

fn rpc_gateway(tag: &str, f: impl FnOnce(&mut Config)) -> (TestRing, TestGateway) {
    let ring = TestRing::create(tag);
    let mut config = test_config(&ring);
    config.rpc = true;
    f(&mut config);
    let gw = start_gateway(config);
    (ring, gw)
}

fn wait_rpc_sessions(gw: &TestGateway, n: u64) {
    wait_until(&format!("{n} JSON-RPC sessions"), || {
        gw.stats()
            .shards
            .iter()
            .map(|s| s.rpc_sessions.load(std::sync::atomic::Ordering::Relaxed))
            .sum::<u64>()
            == n
    });
}

#[test]
fn plain_methods_and_errors_are_answered_as_monads_server_does() {
    let (mut ring, gw) = rpc_gateway("rpc-methods", |c| c.rpc_max_subscriptions = 2);
    let mut r = Rpc::connect(gw.addr, "/rpc");
    // No block yet: the chain id is answered when the first block brings it (ethers waits
    // for it and gives up on an error).
    r.c.send_text(r#"{"jsonrpc":"2.0","id":"early","method":"eth_chainId"}"#);
    let heads = r.subscribe(r#"["newHeads"]"#);
    block(&mut ring, 1, 10, &[]);
    let v = r.response(None);
    assert_eq!(v["id"].as_str(), Some("early"));
    assert_eq!(v["result"].as_str(), Some("0x8f"));
    r.note();
    assert_eq!(r.call("eth_chainId", "[]")["result"].as_str(), Some("0x8f"));
    assert_eq!(
        r.call("eth_blockNumber", "[]")["result"].as_str(),
        Some("0xa")
    );
    let v = r.call("web3_clientVersion", "[]");
    assert!(v["result"].as_str().unwrap().starts_with("ringgate/"));
    // viem's keep-alive: id null, answered, connection kept.
    r.c.send_text(r#"{"jsonrpc":"2.0","id":null,"method":"net_version","params":[]}"#);
    let v = r.response(None);
    assert!(v["id"].is_null());
    assert_eq!(v["result"].as_str(), Some("143"));
    for (method, params, code) in [
        ("eth_getBalance", "[]", -32601),
        ("eth_subscribe", r#"["newPendingTransactions"]"#, -32602),
        ("eth_subscribe", r#"["logs",true]"#, -32602),
        (
            "eth_subscribe",
            r#"["logs",{"topics":[null,null,null,null,null]}]"#,
            -32602,
        ),
        ("eth_unsubscribe", r#"["not-an-id"]"#, -32602),
    ] {
        let v = r.call(method, params);
        assert_eq!(
            v["error"]["code"].as_i64(),
            Some(code),
            "{method} {params}: {v:?}"
        );
    }
    // A batch: -32602 with id null, connection kept.
    r.c.send_text(r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]"#);
    let v = r.response(None);
    assert_eq!(v["error"]["code"].as_i64(), Some(-32602));
    assert!(v["id"].is_null());
    // The per-connection limit (2 here): -32603.
    let second = r.subscribe(r#"["logs"]"#);
    let v = r.call("eth_subscribe", r#"["newHeads"]"#);
    assert_eq!(v["error"]["code"].as_i64(), Some(-32603));
    assert_eq!(
        v["error"]["message"].as_str(),
        Some("WebSocket subscription limit reached")
    );
    // Ids are 0x + 32 hex digits and compared numerically: without leading zeros too.
    for id in [&heads, &second] {
        assert_eq!(id.len(), 34);
        assert!(u128::from_str_radix(&id[2..], 16).is_ok());
    }
    let short = format!("0x{}", second[2..].trim_start_matches('0'));
    assert_eq!(
        r.call("eth_unsubscribe", &format!("[\"{short}\"]"))["result"].as_bool(),
        Some(true)
    );
    assert_eq!(
        r.call("eth_unsubscribe", &format!("[\"{second}\"]"))["result"].as_bool(),
        Some(false)
    );
    // A freed slot can be used again.
    r.subscribe(r#"["logs"]"#);
}

#[test]
fn each_kind_gets_its_states_and_an_abandoned_proposal_is_retracted() {
    let (mut ring, gw) = rpc_gateway("rpc-fork", |_| {});
    let mut r = Rpc::connect(gw.addr, "/rpc");
    let heads = r.subscribe(r#"["newHeads"]"#);
    let logs = r.subscribe(&format!(r#"["logs",{{"address":"{}"}}]"#, hex(0xaa, 20)));
    let monad_heads = r.subscribe(r#"["monadNewHeads"]"#);
    let monad_logs = r.subscribe(&format!(
        r#"["monadLogs",{{"topics":[null,["{}","{}"]]}}]"#,
        hex(2, 32),
        hex(3, 32)
    ));
    let finalized_logs = r.subscribe(r#"["logs",{"commitState":"Finalized"}]"#);
    // Two proposals at height 10: A (id 1) is abandoned, B (id 2) finalized.
    block(
        &mut ring,
        1,
        10,
        &[Log(0xaa, &[1, 2]), Log(0xbb, &[1, 3]), Log(0xaa, &[9])],
    );
    block(&mut ring, 2, 10, &[Log(0xaa, &[1, 3])]);
    ring.write_qc(2, 10);
    ring.write_finalized(2, 10);
    block(&mut ring, 3, 11, &[]); // a sentinel: its Proposed header ends the story
    let mut got: Vec<(String, Value)> = Vec::new();
    loop {
        let (sub, v) = r.note();
        let end = sub == heads && v["number"].as_str() == Some("0xb");
        got.push((sub, v));
        if end {
            break;
        }
    }
    let of = |sub: &str| -> Vec<&Value> {
        got.iter()
            .filter(|(s, _)| s == sub)
            .map(|(_, v)| v)
            .collect()
    };
    let hash_a = hex(!1, 32);
    let hash_b = hex(!2, 32);
    // newHeads: each proposal once at Proposed (as Monad), no retraction form.
    let h: Vec<_> = of(&heads)
        .iter()
        .map(|v| v["hash"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(h, [hash_a.clone(), hash_b.clone(), hex(!3, 32)]);
    // logs (address 0xaa): A's two logs, B's one, then A's again with removed: true.
    let l: Vec<_> = of(&logs)
        .iter()
        .map(|v| {
            (
                v["blockHash"].as_str().unwrap().to_owned(),
                v["logIndex"].as_str().unwrap().to_owned(),
                v["removed"].as_bool().unwrap(),
            )
        })
        .collect();
    let e = |h: &str, i: &str, rm: bool| (h.to_owned(), i.to_owned(), rm);
    assert_eq!(
        l,
        [
            e(&hash_a, "0x0", false),
            e(&hash_a, "0x2", false),
            e(&hash_b, "0x0", false),
            e(&hash_a, "0x0", true),
            e(&hash_a, "0x2", true),
        ]
    );
    // monadNewHeads: every state of each proposal, blockId and commitState first, and the
    // abandoned one again as "Abandoned".
    let m: Vec<_> = of(&monad_heads)
        .iter()
        .map(|v| {
            let keys: Vec<&str> = v
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, _)| k)
                .take(2)
                .collect();
            assert_eq!(keys, ["blockId", "commitState"]);
            (
                v["blockId"].as_str().unwrap()[2..4].to_owned(),
                v["commitState"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let s = |id: &str, st: &str| (id.to_owned(), st.to_owned());
    assert_eq!(
        m,
        [
            s("01", "Proposed"),
            s("02", "Proposed"),
            s("02", "Voted"),
            s("02", "Finalized"),
            s("01", "Abandoned"),
            s("03", "Proposed"),
        ]
    );
    // monadLogs (topic 1 in {2, 3}): per state; the abandoned block's retracted.
    let ml: Vec<_> = of(&monad_logs)
        .iter()
        .map(|v| {
            (
                v["commitState"].as_str().unwrap().to_owned(),
                v["blockHash"].as_str().unwrap() == hash_a,
                v["removed"].as_bool().unwrap(),
            )
        })
        .collect();
    let t = |st: &str, a: bool, rm: bool| (st.to_owned(), a, rm);
    assert_eq!(
        ml,
        [
            t("Proposed", true, false),
            t("Proposed", true, false),
            t("Proposed", false, false),
            t("Voted", false, false),
            t("Finalized", false, false),
            t("Abandoned", true, true),
            t("Abandoned", true, true),
        ]
    );
    // The commitState extension: only B's log, once, at Finalized; never A's.
    let f = of(&finalized_logs);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["blockHash"].as_str(), Some(&*hash_b));
    assert!(f[0].get("commitState").is_none());
    drop(gw);
}

#[test]
fn heads_stage_finalized_sends_newheads_only_for_finalized_blocks() {
    let (mut ring, gw) = rpc_gateway("rpc-heads-stage", |c| {
        c.rpc_heads_stage = CommitStage::Finalized
    });
    let mut r = Rpc::connect(gw.addr, "/rpc");
    let heads = r.subscribe(r#"["newHeads"]"#);
    block(&mut ring, 1, 10, &[]);
    block(&mut ring, 2, 10, &[]);
    ring.write_finalized(2, 10);
    let (sub, v) = r.note();
    assert_eq!(sub, heads);
    assert_eq!(
        v["hash"].as_str(),
        Some(&*hex(!2, 32)),
        "only the finalized proposal"
    );
    assert_eq!(
        r.call("eth_blockNumber", "[]")["result"].as_str(),
        Some("0xa")
    );
    assert!(r.pending.is_empty(), "{:?}", r.pending);
}

#[test]
fn a_logs_from_block_in_the_past_replays_stored_blocks_then_goes_live() {
    let (mut ring, gw) = rpc_gateway("rpc-from-block", |_| {});
    let mut watcher = Rpc::connect(gw.addr, "/rpc");
    watcher.subscribe(r#"["newHeads"]"#);
    for n in 10..13u64 {
        block(&mut ring, n as u8, n, &[Log(0xaa, &[1])]);
        watcher.note();
    }
    let mut r = Rpc::connect(gw.addr, "/rpc");
    let sub = r.subscribe(r#"["logs",{"fromBlock":"0xb"}]"#);
    block(&mut ring, 13, 13, &[Log(0xaa, &[1])]);
    let numbers: Vec<String> = (0..3)
        .map(|_| {
            let (s, v) = r.note();
            assert_eq!(s, sub);
            v["blockNumber"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(numbers, ["0xb", "0xc", "0xd"]);
}

#[test]
fn a_client_over_its_queue_bound_is_closed_with_a_reason_others_keep_going() {
    let (mut ring, gw) = rpc_gateway("rpc-slow", |c| c.rpc_queue_bytes = 3_000);
    let mut slow = Rpc::connect(gw.addr, "/rpc");
    slow.subscribe(r#"["logs"]"#);
    let mut fine = Rpc::connect(gw.addr, "/rpc");
    let heads = fine.subscribe(r#"["newHeads"]"#);
    let logs: Vec<Log> = (0..10).map(|_| Log(0xaa, &[1])).collect();
    block(&mut ring, 1, 10, &logs);
    match slow.c.next() {
        ServerFrame::Close(code, reason) => {
            assert_eq!(code, Some(1008));
            assert!(reason.starts_with("slow client"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    assert_eq!(fine.note().0, heads);
}

#[test]
fn with_no_rpc_the_path_is_404() {
    let (_ring, gw) = rpc_gateway("rpc-off", |c| c.rpc = false);
    let answer = RawClient::request(
        gw.addr,
        "GET /rpc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

#[test]
fn client_pings_are_answered_at_once() {
    let (_ring, gw) = rpc_gateway("rpc-ping", |_| {});
    let mut raw = RawClient::upgraded(gw.addr, "/rpc");
    raw.send(&RawClient::frame(0x9, b"are-you-there", true));
    let (opcode, payload) = raw.read_raw_frame().expect("a pong");
    assert_eq!((opcode, payload.as_slice()), (0xA, &b"are-you-there"[..]));
}

#[test]
fn the_rpc_port_speaks_json_rpc_on_any_path_and_shutdown_closes_with_1001() {
    let (mut ring, mut gw) = rpc_gateway("rpc-listen", |c| {
        c.rpc_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)))
    });
    let rpc = gw
        .server
        .as_ref()
        .unwrap()
        .rpc_addr()
        .expect("an rpc address");
    assert_ne!(rpc.port(), 0);
    let mut r = Rpc::connect(rpc, "/");
    let mut other = Rpc::connect(rpc, "/anything");
    let heads = r.subscribe(r#"["newHeads"]"#);
    other.subscribe(r#"["newHeads"]"#);
    wait_rpc_sessions(&gw, 2);
    block(&mut ring, 1, 10, &[]);
    assert_eq!(r.note().0, heads);
    gw.shutdown();
    assert_eq!(r.c.expect_close(), Some(1001));
}
