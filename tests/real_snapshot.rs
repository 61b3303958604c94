//! The real `emn-1b-15m` snapshot (Ethereum block 15,000,001 replayed by Monad, current
//! interleaved order) decodes without a single error, in the counts observed, and its first
//! transaction and first log encode to the same values as the official RPC golden JSON.

mod real_data;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use ringgate::ingest::event::encoder::Encoder;
use ringgate::ingest::ring::layout::{
    header_offset, Descriptor, RingSizes, DESCRIPTOR_SIZE, HEADER_SIZE,
};
use ringgate::model::kind::EventType;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

fn data_dir() -> PathBuf {
    real_data::monad_dir()
}

type Events = Vec<(Descriptor, Vec<u8>)>;

/// Every committed event of the snapshot: (descriptor, payload), read directly from the
/// decompressed image (the snapshot never gaps and its window start is 0). Decompressed once
/// per test binary.
fn snapshot_events() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(|| load_snapshot().expect("the real snapshot decompresses"))
}

fn load_snapshot() -> Option<Events> {
    let path = data_dir().join("emn-1b-15m.snapshot.zst");
    let compressed = std::fs::read(path).ok()?;
    let mut image = zstd::decode_all(compressed.as_slice()).expect("zstd snapshot");
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let sizes = RingSizes {
        descriptor_capacity: u64_at(&image, header_offset::DESCRIPTOR_CAPACITY),
        payload_buf_size: u64_at(&image, header_offset::PAYLOAD_BUF_SIZE),
        context_area_size: u64_at(&image, header_offset::CONTEXT_AREA_SIZE),
    };
    image.resize(sizes.file_size() as usize, 0);
    let last = u64_at(&image, header_offset::LAST_SEQNO);
    let mut out = Vec::with_capacity(last as usize);
    for seqno in 1..=last {
        let slot = (seqno - 1) & (sizes.descriptor_capacity - 1);
        let at = (HEADER_SIZE + slot * DESCRIPTOR_SIZE) as usize;
        let d = Descriptor::from_bytes(image[at..at + 64].try_into().unwrap());
        assert_eq!(d.seqno, seqno);
        let off = sizes.payload_offset() + (d.payload_buf_offset & (sizes.payload_buf_size - 1));
        let p = image[off as usize..off as usize + d.payload_size as usize].to_vec();
        out.push((d, p));
    }
    Some(out)
}

fn golden(name: &str) -> Value {
    let text = std::fs::read_to_string(data_dir().join(name)).expect("golden json");
    sonic_rs::from_str(&text).expect("golden parses")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(|x| x.as_str())
        .unwrap_or_else(|| panic!("no string {k}"))
}

fn n(v: &Value, k: &str) -> u64 {
    v.get(k)
        .and_then(|x| x.as_u64())
        .unwrap_or_else(|| panic!("no number {k}"))
}

fn hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn every_event_decodes_in_the_observed_counts() {
    let events = snapshot_events();
    assert_eq!(events.len(), 6597);
    let mut enc = Encoder::default();
    let mut counts: BTreeMap<EventType, u64> = BTreeMap::new();
    let mut block_txn_count = None;
    let mut gas_used = None;
    for (d, p) in events {
        let (e, ()) = enc
            .encode_with(d, p, |ev, _| match ev {
                ringgate::ingest::event::payload::ExecEvent::BlockStart(b) => {
                    block_txn_count = Some(b.eth_block_input.txn_count)
                }
                ringgate::ingest::event::payload::ExecEvent::BlockEnd(b) => {
                    gas_used = Some(b.gas_used)
                }
                _ => {}
            })
            .unwrap_or_else(|err| panic!("seqno {}: {err}", d.seqno));
        *counts.entry(e.keys.event_type).or_default() += 1;
        let v: Value = sonic_rs::from_slice(&e.json).expect("json line parses");
        assert_eq!(n(&v, "seqno"), d.seqno);
        if e.keys.event_type == EventType::TxnLog {
            assert_eq!(n(&v, "block_number"), 15_000_001);
            assert!(s(&v, "txn_hash").len() == 66);
        }
    }
    assert_eq!(enc.failures().total(), 0);
    assert_eq!(block_txn_count, Some(229));
    assert_eq!(gas_used, Some(22_516_578));
    let c = |t: EventType| counts.get(&t).copied().unwrap_or(0);
    assert_eq!(c(EventType::BlockStart), 1);
    assert_eq!(c(EventType::BlockEnd), 1);
    assert_eq!(c(EventType::TxnHeaderStart), 229);
    assert_eq!(c(EventType::TxnEnd), 229);
    let observed: Vec<(&str, u64)> = counts.iter().map(|(t, n)| (t.spec_name(), *n)).collect();
    assert_eq!(observed, EXPECTED_COUNTS.to_vec());
}

/// Counts per type observed in the snapshot (spec order of codes).
const EXPECTED_COUNTS: [(&str, u64); 17] = [
    ("BLOCK_START", 1),
    ("BLOCK_PERF_EVM_ENTER", 1),
    ("BLOCK_PERF_EVM_EXIT", 1),
    ("BLOCK_END", 1),
    ("BLOCK_QC", 1),
    ("BLOCK_FINALIZED", 1),
    ("TXN_HEADER_START", 229),
    ("TXN_HEADER_END", 229),
    ("TXN_PERF_EVM_ENTER", 229),
    ("TXN_PERF_EVM_EXIT", 229),
    ("TXN_EVM_OUTPUT", 229),
    ("TXN_LOG", 483),
    ("TXN_CALL_FRAME", 1179),
    ("TXN_END", 229),
    ("ACCOUNT_ACCESS_LIST_HEADER", 231),
    ("ACCOUNT_ACCESS", 1079),
    ("STORAGE_ACCESS", 2245),
];

/// The encoded JSON of the first event of `ty` (in ring order) matching `pick`.
fn first_json(
    events: &[(Descriptor, Vec<u8>)],
    ty: EventType,
    pick: impl Fn(&Value) -> bool,
) -> Value {
    let mut enc = Encoder::default();
    for (d, p) in events {
        let e = enc.encode(d, p).expect("decodes");
        if e.keys.event_type == ty {
            let v: Value = sonic_rs::from_slice(&e.json).unwrap();
            if pick(&v) {
                return v;
            }
        }
    }
    panic!("no {ty:?} found");
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn first_transaction_matches_the_rpc_golden_field_by_field() {
    let events = snapshot_events();
    let tx = golden("block-15000001.0.tx.0.json");
    let v = first_json(events, EventType::TxnHeaderStart, |v| n(v, "txn_idx") == 0);
    let p = v.get("payload").unwrap();
    assert_eq!(n(&v, "block_number"), hex_u64(s(&tx, "blockNumber")));
    assert_eq!(s(&v, "txn_hash"), s(&tx, "hash"));
    assert_eq!(s(p, "txn_hash"), s(&tx, "hash"));
    assert_eq!(s(p, "sender"), s(&tx, "from"));
    assert_eq!(s(p, "to"), s(&tx, "to"));
    assert_eq!(s(p, "data"), s(&tx, "input"));
    assert_eq!(s(p, "value"), s(&tx, "value"));
    assert_eq!(s(p, "chain_id"), s(&tx, "chainId"));
    assert_eq!(s(p, "max_fee_per_gas"), s(&tx, "maxFeePerGas"));
    assert_eq!(
        s(p, "max_priority_fee_per_gas"),
        s(&tx, "maxPriorityFeePerGas")
    );
    assert_eq!(s(p, "r"), s(&tx, "r"));
    assert_eq!(s(p, "s"), s(&tx, "s"));
    assert_eq!(n(p, "nonce"), hex_u64(s(&tx, "nonce")));
    assert_eq!(n(p, "gas_limit"), hex_u64(s(&tx, "gas")));
    assert_eq!(n(p, "txn_type"), hex_u64(s(&tx, "type")));
    assert_eq!(n(p, "txn_index"), hex_u64(s(&tx, "transactionIndex")));
    let y = p.get("y_parity").and_then(|b| b.as_bool()).unwrap();
    assert_eq!(u64::from(y), hex_u64(s(&tx, "yParity")));
    assert_eq!(
        n(p, "access_list_count"),
        tx.get("accessList")
            .and_then(|a| a.as_array())
            .unwrap()
            .len() as u64
    );
    assert_eq!(s(&v, "commit_stage"), "Proposed");
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn first_log_matches_the_rpc_golden_field_by_field() {
    let events = snapshot_events();
    let log = golden("block-15000001.0.log.0.json");
    let v = first_json(events, EventType::TxnLog, |_| true);
    let p = v.get("payload").unwrap();
    assert_eq!(s(p, "address"), s(&log, "address"));
    let topics: String = log
        .get("topics")
        .and_then(|t| t.as_array())
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().trim_start_matches("0x").to_string())
        .collect();
    assert_eq!(s(p, "topics"), format!("0x{topics}"));
    assert_eq!(s(p, "data"), s(&log, "data"));
    assert_eq!(s(&v, "txn_hash"), s(&log, "transactionHash"));
    assert_eq!(n(&v, "txn_idx"), hex_u64(s(&log, "transactionIndex")));
    assert_eq!(n(p, "log_index"), hex_u64(s(&log, "logIndex")));
    assert_eq!(n(&v, "block_number"), hex_u64(s(&log, "blockNumber")));
    let monad = golden("block-15000001.0.monad-log.0.json");
    assert_eq!(s(&v, "block_id"), s(&monad, "blockId"));
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn block_start_and_end_match_the_header_golden() {
    let events = snapshot_events();
    let h = golden("block-15000001.0.header.json");
    let start = first_json(events, EventType::BlockStart, |_| true);
    let p = start.get("payload").unwrap();
    assert_eq!(s(p, "parent_eth_hash"), s(&h, "parentHash"));
    assert_eq!(s(p, "beneficiary"), s(&h, "miner"));
    assert_eq!(s(p, "ommers_hash"), s(&h, "sha3Uncles"));
    assert_eq!(s(p, "transactions_root"), s(&h, "transactionsRoot"));
    assert_eq!(s(p, "extra_data"), s(&h, "extraData"));
    assert_eq!(s(p, "prev_randao"), s(&h, "mixHash"));
    assert_eq!(s(p, "nonce"), s(&h, "nonce"));
    assert_eq!(s(p, "base_fee_per_gas"), s(&h, "baseFeePerGas"));
    assert_eq!(n(p, "gas_limit"), hex_u64(s(&h, "gasLimit")));
    assert_eq!(n(p, "timestamp"), hex_u64(s(&h, "timestamp")));
    assert_eq!(n(p, "difficulty"), hex_u64(s(&h, "difficulty")));
    assert_eq!(n(p, "number"), hex_u64(s(&h, "number")));
    assert_eq!(n(p, "txn_count"), 229);
    assert_eq!(s(p, "chain_id"), "0x1");
    let end = first_json(events, EventType::BlockEnd, |_| true);
    let p = end.get("payload").unwrap();
    assert_eq!(s(p, "eth_block_hash"), s(&h, "hash"));
    assert_eq!(s(p, "state_root"), s(&h, "stateRoot"));
    assert_eq!(s(p, "receipts_root"), s(&h, "receiptsRoot"));
    assert_eq!(s(p, "logs_bloom"), s(&h, "logsBloom"));
    assert_eq!(n(p, "gas_used"), hex_u64(s(&h, "gasUsed")));
    let fin = first_json(events, EventType::BlockFinalized, |_| true);
    assert_eq!(s(&fin, "commit_stage"), "Finalized");
    assert_eq!(n(&fin, "block_number"), 15_000_001);
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn inspect_reports_the_snapshot_and_prints_every_event_as_a_json_line() {
    let path = data_dir().join("emn-1b-15m.snapshot.zst");
    let (mut report, mut out) = (Vec::new(), Vec::new());
    let opts = ringgate::tools::inspect::InspectOptions { events: true };
    let s = ringgate::tools::inspect::run(&path, opts, &mut report, &mut out).expect("inspect");
    assert_eq!((s.first_seqno, s.last_seqno, s.events), (1, 6597, 6597));
    assert_eq!(s.header.last_seqno, 6597);
    assert_eq!(s.failures.total(), 0);
    assert!(s.gaps.is_empty());
    for (name, n) in EXPECTED_COUNTS {
        let t = EventType::ALL
            .iter()
            .find(|t| t.spec_name() == name)
            .unwrap();
        assert_eq!(s.count(*t), n, "{name}");
    }
    let text = String::from_utf8(out).unwrap();
    let mut lines = 0;
    for line in text.lines() {
        let v: Value = sonic_rs::from_str(line).expect("every line of the events stream is JSON");
        assert!(v.get("event_name").is_some());
        lines += 1;
    }
    assert_eq!(lines, 6597);
    let text = String::from_utf8(report).unwrap();
    assert!(text.contains("# magic         RING01"));
    assert!(text.contains("65536 descriptors"));
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn filter_keys_of_the_first_txn_and_log_name_their_addresses_topics_and_selector() {
    let events = snapshot_events();
    let tx = golden("block-15000001.0.tx.0.json");
    let log = golden("block-15000001.0.log.0.json");
    let hex = |b: &[u8]| ringgate::wire::json::to_hex(b);
    let mut enc = Encoder::default();
    let (mut saw_txn, mut saw_log) = (false, false);
    for (d, p) in events {
        let k = enc.encode(d, p).expect("decodes").keys;
        assert_eq!(k.block_seqno, d.content_ext[0]);
        if k.event_type == EventType::TxnHeaderStart && k.txn_idx == Some(0) {
            let addrs: Vec<String> = k.addresses().iter().map(|a| hex(a)).collect();
            assert_eq!(addrs, [s(&tx, "from"), s(&tx, "to")]);
            assert_eq!(
                k.selector.map(|x| hex(&x)),
                Some(s(&tx, "input")[..10].to_string())
            );
            assert_eq!(k.block_number, Some(15_000_001));
            saw_txn = true;
        }
        if k.event_type == EventType::TxnLog && !saw_log {
            assert_eq!(k.log_index, Some(0));
            assert_eq!(k.txn_idx, Some(1));
            assert_eq!(hex(&k.addresses()[0]), s(&log, "address"));
            let topics: Vec<String> = k.topics().iter().map(|t| hex(t)).collect();
            let want: Vec<String> = log
                .get("topics")
                .and_then(|t| t.as_array())
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            assert_eq!(topics, want);
            saw_log = true;
        }
    }
    assert!(saw_txn && saw_log);
}
