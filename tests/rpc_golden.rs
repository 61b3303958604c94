//! The real mainnet snapshot (block 15,000,001) served through `/rpc`: the `newHeads`,
//! `logs`, `monadNewHeads` and `monadLogs` notifications equal Monad's golden JSON for that
//! block byte for byte (field set, order and encoding), and the `monad*` kinds see the block
//! at each state the snapshot reaches.

mod common;
mod real_data;

use std::collections::BTreeMap;

use common::{test_config_for, wait_until, TestGateway, WsClient};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};
use tungstenite::Message;

fn golden(name: &str) -> String {
    std::fs::read_to_string(real_data::monad_dir().join(name))
        .expect("golden json")
        .trim()
        .to_owned()
}

/// Next text frame, raw.
fn next_text(c: &mut WsClient) -> String {
    loop {
        match c.ws.read().expect("a frame") {
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => continue,
        }
    }
}

fn request(c: &mut WsClient, id: u64, method: &str, params: &str) -> Value {
    c.send_text(&format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
    ));
    // Notifications already on their way may come first.
    loop {
        let v: Value = sonic_rs::from_str(&next_text(c)).expect("json");
        if v.get("method").is_none() {
            assert_eq!(v["id"].as_u64(), Some(id), "{v:?}");
            return v;
        }
    }
}

/// The `result` object of a notification, as the bytes the server sent, and its id.
fn split_notification(text: &str) -> (String, String) {
    let head = r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":""#;
    let rest = text.strip_prefix(head).expect("notification envelope");
    let (id, rest) = rest.split_at(34);
    let result = rest
        .strip_prefix(r#"","result":"#)
        .and_then(|r| r.strip_suffix("}}"))
        .expect("envelope tail");
    (id.to_owned(), result.to_owned())
}

/// Field by field (names the first difference), then the exact bytes.
fn assert_same(got: &str, want: &str, what: &str) {
    let g: Value = sonic_rs::from_str(got).expect("got parses");
    let w: Value = sonic_rs::from_str(want).expect("golden parses");
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .expect("object")
            .iter()
            .map(|(k, _)| k.to_owned())
            .collect()
    };
    assert_eq!(keys(&g), keys(&w), "{what}: field set and order");
    for (k, wv) in w.as_object().unwrap().iter() {
        assert_eq!(&g[k], wv, "{what}: field {k}");
    }
    assert_eq!(got, want, "{what}: bytes");
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn block_15000001_through_rpc_equals_monads_golden_notifications() {
    let data = real_data::snapshot();
    let path = ringgate::ingest::ring::scratch_dir().join(format!(
        "ringgate-test-rpc-golden-{}.zst",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let config = ringgate::config::Config {
        rpc: true,
        ..test_config_for(&path)
    };
    let server = ringgate::server::start(config).expect("start");
    let gw = TestGateway {
        addr: server.local_addr(),
        server: Some(server),
    };
    let mut c = WsClient::connect(gw.addr, "/rpc");
    let mut kinds = BTreeMap::new();
    for (i, params) in [
        r#"["newHeads"]"#,
        r#"["logs",{}]"#,
        r#"["monadNewHeads"]"#,
        r#"["monadLogs",{"address":"0x58124619a4ea38d215d36c962ac5cd73462acdd6"}]"#,
    ]
    .iter()
    .enumerate()
    {
        let v = request(&mut c, i as u64 + 1, "eth_subscribe", params);
        let id = v["result"].as_str().expect("an id").to_owned();
        assert_eq!(id.len(), 34, "0x + 32 hex digits: {id}");
        kinds.insert(id, i);
    }
    std::os::unix::fs::symlink(&data, &path).expect("link the snapshot into place");

    let (header, log0) = (
        golden("block-15000001.0.header.json"),
        golden("block-15000001.0.log.0.json"),
    );
    let monad_header = golden("block-15000001.0.monad-header.json");
    let monad_log0 = golden("block-15000001.0.monad-log.0.json");
    let mut plain_heads = 0;
    let mut plain_logs = Vec::new();
    let mut monad_states = Vec::new();
    let mut monad_logs = BTreeMap::<String, usize>::new();
    // The snapshot's block goes Proposed → Voted → Finalized.
    while monad_states.len() < 3 {
        let (id, result) = split_notification(&next_text(&mut c));
        let v: Value = sonic_rs::from_str(&result).expect("result parses");
        match kinds[&id] {
            0 => {
                assert_same(&result, &header, "newHeads");
                plain_heads += 1;
            }
            1 => {
                if plain_logs.is_empty() {
                    assert_same(&result, &log0, "logs[0]");
                }
                plain_logs.push(v);
            }
            2 => {
                let state = v["commitState"].as_str().unwrap().to_owned();
                if state == "Proposed" {
                    assert_same(&result, &monad_header, "monadNewHeads");
                } else {
                    let expect = monad_header.replace("\"Proposed\"", &format!("\"{state}\""));
                    assert_same(&result, &expect, "monadNewHeads, later state");
                }
                monad_states.push(state);
            }
            _ => {
                if monad_logs.is_empty() {
                    assert_same(&result, &monad_log0, "monadLogs[0]");
                }
                let address = v["address"].as_str();
                assert_eq!(address, Some("0x58124619a4ea38d215d36c962ac5cd73462acdd6"));
                let state = v["commitState"].as_str().unwrap().to_owned();
                *monad_logs.entry(state).or_default() += 1;
            }
        }
    }
    assert_eq!(monad_states, ["Proposed", "Voted", "Finalized"]);
    assert_eq!(plain_heads, 1, "newHeads once per block, at Proposed");
    // Block-wide log indexes 0..n, in order, all from this block.
    for (i, l) in plain_logs.iter().enumerate() {
        assert_eq!(l["logIndex"].as_str(), Some(&*format!("0x{i:x}")));
        assert_eq!(l["blockNumber"].as_str(), Some("0xe4e1c1"));
        assert_eq!(l["removed"].as_bool(), Some(false));
    }
    assert!(plain_logs.len() > 100, "{} logs", plain_logs.len());
    // The filtered monadLogs saw that address's logs once per state (the loop stopped at
    // the Finalized header, which comes before the Finalized logs).
    assert!(monad_logs["Proposed"] > 0);
    assert_eq!(
        monad_logs["Proposed"], monad_logs["Voted"],
        "{monad_logs:?}"
    );

    let v = request(&mut c, 9, "eth_chainId", "[]");
    assert_eq!(
        v["result"].as_str(),
        Some("0x1"),
        "mainnet's chain id from BLOCK_START"
    );
    let v = request(&mut c, 10, "eth_blockNumber", "[]");
    assert_eq!(v["result"].as_str(), Some("0xe4e1c1"));
    wait_until("the replay finished", || {
        gw.stats().tailer.ring_state() == ringgate::metrics::RingState::ReplayDone
    });
    let _ = std::fs::remove_file(&path);
}
