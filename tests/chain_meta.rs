//! Meta frames and REST bodies: valid JSON, the old gateway's envelope and field names, the
//! added fields, omitted (never null) optionals.

mod chain_support;

use chain_support::Sim;
use ringgate::ingest::chain::meta::{
    contention_body, lifecycle_list_body, lifecycle_one_body, top_accesses_frame, tps_body,
};
use ringgate::ingest::chain::pipeline::ChainConfig;
use ringgate::ingest::chain::topk::{Counted, TopAccessesReport};
use ringgate::model::outbound::{MetaKind, Outbound};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

fn parse(s: &str) -> Value {
    match sonic_rs::from_str::<Value>(s) {
        Ok(v) => v,
        Err(e) => panic!("invalid JSON ({e}): {s}"),
    }
}

fn run() -> Sim {
    let mut sim = Sim::new(ChainConfig::default());
    sim.block(1, 10, 3);
    sim.block(2, 10, 2);
    sim.qc(1, 10);
    sim.finalized(1, 10);
    sim.verified(10);
    sim
}

#[test]
fn every_meta_frame_is_one_keyed_envelope_of_valid_json() {
    let sim = run();
    let mut kinds = std::collections::HashSet::new();
    for f in &sim.frames {
        let Outbound::Meta(m) = f else { continue };
        let text = std::str::from_utf8(&m.frame).unwrap_or("");
        assert!(!text.contains("null"), "{text}");
        let v = parse(text);
        let obj = v.as_object().expect("object");
        assert_eq!(obj.len(), 2, "server_seqno plus one message key: {text}");
        assert!(text.starts_with(&format!("{{\"server_seqno\":{},", m.server_seqno)));
        let name = match m.kind {
            MetaKind::Tps => "TPS",
            MetaKind::ContentionData => "ContentionData",
            MetaKind::TopAccesses => "TopAccesses",
            MetaKind::Lifecycle => "Lifecycle",
            MetaKind::Gap => "Gap",
        };
        assert!(v.get(name).is_some(), "{text}");
        kinds.insert(name);
    }
    for k in ["TPS", "ContentionData", "TopAccesses", "Lifecycle"] {
        assert!(kinds.contains(k), "{k} emitted");
    }
}

#[test]
fn contention_frame_has_the_old_fields_and_the_added_ones() {
    let sim = run();
    let frames = sim.metas(MetaKind::ContentionData);
    assert_eq!(frames.len(), 2, "one per executed proposal");
    let v = parse(&frames[0]);
    let c = v.get("ContentionData").expect("body");
    for field in [
        "block_number",
        "block_wall_time_ns",
        "total_tx_time_ns",
        "parallel_efficiency_pct",
        "total_unique_slots",
        "contended_slot_count",
        "contention_ratio",
        "total_txn_count",
        "top_contended_slots",
        "top_contended_contracts",
        "contract_edges",
        "block_id",
        "parallel_speedup",
    ] {
        assert!(c.get(field).is_some(), "{field}");
    }
    // Three transactions all writing one slot: it is contended.
    assert_eq!(
        c.get("contended_slot_count").and_then(|x| x.as_u64()),
        Some(1)
    );
    let slot = c
        .get("top_contended_slots")
        .and_then(|l| l.get(0))
        .expect("one slot");
    assert_eq!(slot.get("txn_count").and_then(|x| x.as_u64()), Some(3));
    assert_eq!(slot.get("writer_count").and_then(|x| x.as_u64()), Some(3));
    assert_eq!(
        slot.get("address").and_then(|x| x.as_str()),
        Some("0x0707070707070707070707070707070707070707")
    );
}

#[test]
fn top_accesses_shape_matches_the_old_gateway() {
    let r = TopAccessesReport {
        account: vec![Counted {
            key: [0xab; 20],
            count: 4,
            error: 0,
        }],
        storage: vec![Counted {
            key: ([1; 20], [2; 32]),
            count: 2,
            error: 1,
        }],
    };
    let f = top_accesses_frame(9, &r);
    let text = std::str::from_utf8(&f.frame).unwrap_or("");
    let v = parse(text);
    let body = v.get("TopAccesses").expect("body");
    let acct = body.get("account").and_then(|l| l.get(0)).expect("account");
    assert_eq!(acct.get("count").and_then(|x| x.as_u64()), Some(4));
    let st = body.get("storage").and_then(|l| l.get(0)).expect("storage");
    let key = st
        .get("key")
        .and_then(|k| k.as_array())
        .expect("[addr, slot]");
    assert_eq!(key.len(), 2);
    assert_eq!(
        key.get(1).and_then(|x| x.as_str()).map(str::len),
        Some(66),
        "0x + 64 hex"
    );
}

#[test]
fn rest_bodies_are_valid_json() {
    let sim = run();
    let now = sim.pipe.last_ns();
    let tps = tps_body(&sim.pipe.tps().snapshot());
    assert_eq!(tps.status, 200);
    let v = parse(&tps.body);
    assert!(v.get("tps").and_then(|x| x.as_u64()).is_some());
    assert_eq!(v.get("finalized_blocks").and_then(|x| x.as_u64()), Some(1));

    let c = contention_body(sim.pipe.contention().latest());
    assert_eq!(c.status, 200);
    parse(&c.body);

    let list = sim.pipe.tracker().summaries(now);
    let body = lifecycle_list_body(&list);
    let v = parse(&body.body);
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2, "the verified block and its abandoned sibling");
    let one = sim.pipe.tracker().summary_for_number(10, now);
    let body = lifecycle_one_body(one.as_ref());
    let v = parse(&body.body);
    assert_eq!(
        v.get("current_stage").and_then(|x| x.as_str()),
        Some("Verified")
    );
    let timings = v.get("stage_timings_ms").expect("timings");
    for stage in ["Voted", "Finalized", "Verified"] {
        assert!(timings.get(stage).is_some(), "{stage}");
    }
    assert!(v.get("eth_block_hash").is_some());
    assert!(v.get("execution_time_ms").is_some());
}
