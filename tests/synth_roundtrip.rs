//! The synthetic chain survives the real ring format end to end: generator → RingWriter →
//! RingReader → Encoder over many heights, including forks and rejected proposals, with zero
//! decode errors, exact per-proposal transaction and log counts, and correct flow tags.

mod real_data;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ringgate::ingest::event::encoder::Encoder;
use ringgate::ingest::event::payload::ExecEvent;
use ringgate::ingest::ring::layout::RingSizes;
use ringgate::ingest::ring::{scratch_dir, ReadOutcome, Ring, RingReader, RingWriter, StartAt};
use ringgate::model::kind::EventType;
use ringgate::tools::pacer::Pacer;
use ringgate::tools::synth::drive::run;
use ringgate::tools::synth::{write_ring, Generator, Source, SynthOptions, WriteOptions};
use sonic_rs::JsonValueTrait;

fn temp_ring(name: &str) -> std::path::PathBuf {
    scratch_dir().join(format!("ringgate-{name}-{}", std::process::id()))
}

const SMALL: RingSizes = RingSizes {
    descriptor_capacity: 1 << 16,
    payload_buf_size: 1 << 27,
    context_area_size: 0,
};

#[derive(Default, Debug)]
struct Proposal {
    number: u64,
    id: [u8; 32],
    txn_count: u64,
    headers: u64,
    announced_logs: u64,
    logs: u64,
    ended: Option<EventType>,
}

#[test]
fn generated_heights_read_back_with_exact_counts_and_flow_tags() {
    let path = temp_ring("synth-roundtrip");
    let mut writer = RingWriter::create(&path, SMALL).expect("create ring");
    let opts = SynthOptions {
        seed: 11,
        txns_per_block: 12,
        fork_probability: 0.35,
        reject_probability: 0.25,
        ..SynthOptions::default()
    };
    let mut generator = Generator::new(opts);
    let stop = AtomicBool::new(false);
    let written = run(
        &mut writer,
        &mut generator,
        &mut Pacer::new(None),
        &stop,
        Some(6_000),
    );
    assert_eq!(written.events, 6_000);
    assert!(!written.stopped);

    let ring = Arc::new(Ring::open(&path).expect("attach"));
    let mut reader = RingReader::new(ring, StartAt::First);
    let mut enc = Encoder::default();
    let mut proposals: HashMap<u64, Proposal> = HashMap::new();
    let mut read = 0u64;
    let mut rejected_json = 0;
    loop {
        let ev = match reader.try_next() {
            ReadOutcome::Ready(ev) => ev,
            ReadOutcome::NotReady => break,
            other => panic!("unexpected {other:?}"),
        };
        read += 1;
        let d = ev.descriptor;
        let block = d.content_ext[0];
        let (e, ()) = enc
            .encode_with(&d, ev.payload, |decoded, ctx| match decoded {
                ExecEvent::BlockStart(b) => {
                    assert_eq!(block, d.seqno, "BLOCK_START carries its own seqno");
                    proposals.insert(
                        d.seqno,
                        Proposal {
                            number: b.block_tag.block_number,
                            id: b.block_tag.id,
                            txn_count: b.eth_block_input.txn_count,
                            ..Proposal::default()
                        },
                    );
                }
                ExecEvent::BlockQc(_)
                | ExecEvent::BlockFinalized(_)
                | ExecEvent::BlockVerified { .. } => {
                    assert_eq!(d.content_ext, [0; 4], "consensus events are outside blocks");
                }
                other => {
                    let p = proposals
                        .get_mut(&block)
                        .expect("flow tag names a BLOCK_START");
                    assert!(p.ended.is_none(), "event after its block ended");
                    assert_eq!(ctx.block_number, Some(p.number));
                    assert_eq!(ctx.block_id, Some(p.id));
                    match other {
                        ExecEvent::TxnHeaderStart(_) => p.headers += 1,
                        ExecEvent::TxnEvmOutput(o) => p.announced_logs += u64::from(o.log_count),
                        ExecEvent::TxnLog(_) => {
                            p.logs += 1;
                            assert!(ctx.txn_hash.is_some(), "logs know their txn hash");
                        }
                        ExecEvent::BlockEnd(_) => p.ended = Some(EventType::BlockEnd),
                        ExecEvent::BlockReject(_) => p.ended = Some(EventType::BlockReject),
                        _ => {}
                    }
                    if d.content_ext[1] != 0 {
                        assert_eq!(ctx.txn_idx, Some(d.content_ext[1] as u32 - 1));
                        assert!((d.content_ext[1] - 1) < p.txn_count);
                    }
                }
            })
            .expect("every synthetic event decodes");
        if e.keys.event_type == EventType::BlockReject {
            let v: sonic_rs::Value = sonic_rs::from_slice(&e.json).unwrap();
            assert_eq!(
                v.get("commit_stage").and_then(|s| s.as_str()),
                Some("Rejected")
            );
            rejected_json += 1;
        }
    }
    assert_eq!(read, 6_000);
    assert_eq!(enc.failures().total(), 0);
    let ended: Vec<&Proposal> = proposals.values().filter(|p| p.ended.is_some()).collect();
    assert!(ended.len() >= 10, "{} proposals ended", ended.len());
    for p in &ended {
        assert_eq!(
            p.headers, p.txn_count,
            "txn_count exact for block {}",
            p.number
        );
        assert_eq!(
            p.logs, p.announced_logs,
            "log_count exact for block {}",
            p.number
        );
    }
    let rejects = ended
        .iter()
        .filter(|p| p.ended == Some(EventType::BlockReject))
        .count();
    assert!(rejects > 0 && rejects == rejected_json);
    let mut by_number: HashMap<u64, Vec<[u8; 32]>> = HashMap::new();
    for p in ended
        .iter()
        .filter(|p| p.ended == Some(EventType::BlockEnd))
    {
        by_number.entry(p.number).or_default().push(p.id);
    }
    assert!(
        by_number
            .values()
            .any(|ids| ids.len() == 2 && ids[0] != ids[1]),
        "a fork: two completed proposals at one height"
    );
    drop(writer);
    assert!(!path.exists(), "the writer unlinks its ring on exit");
}

#[test]
fn write_ring_stops_at_its_event_limit_and_removes_the_ring() {
    let path = temp_ring("write-ring-limit");
    let opts = WriteOptions {
        source: Source::Synthetic(SynthOptions {
            txns_per_block: 5,
            ..SynthOptions::default()
        }),
        sizes: SMALL,
        max_events: Some(2_500),
        ..WriteOptions::default()
    };
    let stats = write_ring(&path, &opts, &AtomicBool::new(false)).expect("write");
    assert_eq!(
        (stats.events, stats.last_seqno, stats.stopped),
        (2_500, 2_500, false)
    );
    assert!(stats.proposals > 10);
    assert!(!path.exists());
}

#[test]
fn write_ring_refuses_a_missing_snapshot_with_a_typed_error() {
    let path = temp_ring("write-ring-missing");
    let opts = WriteOptions {
        source: Source::Replay {
            snapshot: scratch_dir().join("ringgate-no-such-snapshot.zst"),
            loops: Some(1),
        },
        sizes: SMALL,
        ..WriteOptions::default()
    };
    let err = write_ring(&path, &opts, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(err, ringgate::tools::synth::WriteRingError::Snapshot(_)),
        "{err}"
    );
    assert!(!path.exists());
}

#[test]
fn write_ring_honours_the_stop_flag_and_the_duration() {
    let path = temp_ring("write-ring-stop");
    let opts = WriteOptions {
        sizes: SMALL,
        ..WriteOptions::default()
    };
    let stats = write_ring(&path, &opts, &AtomicBool::new(true)).expect("write");
    assert!(stats.stopped);
    assert_eq!(stats.events, 0);

    let paced = WriteOptions {
        sizes: SMALL,
        events_per_sec: Some(20_000.0),
        duration: Some(std::time::Duration::from_millis(200)),
        ..WriteOptions::default()
    };
    let stats = write_ring(&path, &paced, &AtomicBool::new(false)).expect("write");
    assert!(stats.stopped, "the duration ends an unlimited drive");
    assert!(stats.events > 0);
    assert!(!path.exists());
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn write_ring_replays_the_real_snapshot() {
    let snapshot = real_data::snapshot();
    let path = temp_ring("write-ring-replay");
    let opts = WriteOptions {
        source: Source::Replay {
            snapshot,
            loops: Some(2),
        },
        sizes: SMALL,
        ..WriteOptions::default()
    };
    let stats = write_ring(&path, &opts, &AtomicBool::new(false)).expect("replay");
    assert_eq!((stats.events, stats.last_seqno), (2 * 6597, 2 * 6597));
    assert!(!stats.stopped);
}
