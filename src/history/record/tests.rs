//! Round trips, 18-byte copies, and garbage that must be an error, never a panic.

use super::*;
use crate::model::kind::EventType;
use crate::model::outbound::{EventBody, FilterKeys, MAX_LOG_TOPICS};
use crate::model::rpc::{LiveBytes, RpcBlock, RpcLog};

/// Decodes `raw` whole: an unresolved copy is an error here.
fn decode_all(raw: &[u8], originals: &mut Originals) -> Result<Vec<Outbound>, Vec<u64>> {
    let mut unresolved = Vec::new();
    let frames = decode_lenient(raw, originals, &mut unresolved).map_err(|_| Vec::new())?;
    if unresolved.is_empty() {
        Ok(frames)
    } else {
        Err(unresolved)
    }
}

fn original(seqno: u64) -> EncodedEvent {
    let mut keys = FilterKeys::new(EventType::TxnLog);
    keys.block_seqno = 7;
    keys.block_number = Some(15_000_001);
    keys.txn_idx = Some(3);
    keys.log_index = Some(1);
    keys.push_address([0xaa; 20]);
    keys.topics[0] = [0x11; 32];
    keys.topics[1] = [0x22; 32];
    keys.topic_count = 2;
    keys.selector = Some([1, 2, 3, 4]);
    let json = br#"{"event_name":"TxnLog","commit_stage":"Proposed","payload":{}}"#;
    EncodedEvent {
        server_seqno: seqno,
        gate: CommitStage::Proposed,
        body: Arc::new(EventBody {
            origin_seqno: seqno,
            ring_seqno: 99,
            timestamp_ns: 1_700_000_000_000_000_000,
            keys,
            json: json.as_slice().into(),
            stage_span: Some(39..47),
        }),
    }
}

#[test]
fn events_copies_and_meta_frames_round_trip_and_copies_cost_18_bytes() {
    let o = original(10);
    let copy = o.restaged(CommitStage::Finalized, 12);
    let meta = Arc::new(MetaFrame {
        server_seqno: 11,
        kind: MetaKind::Lifecycle,
        stage: Some(CommitStage::Voted),
        frame: br#"{"server_seqno":11,"Lifecycle":{}}"#.as_slice().into(),
        old: Some(br#"{"server_seqno":11,"Lifecycle":{"old":1}}"#.as_slice().into()),
    });
    let frames = [
        Outbound::Event(o.clone()),
        Outbound::Meta(meta),
        Outbound::Event(copy.clone()),
    ];
    let mut raw = Vec::new();
    for f in &frames[..2] {
        encode(f, &mut raw);
    }
    let before = raw.len();
    encode(&frames[2], &mut raw);
    assert_eq!(raw.len() - before, 18);

    let back = decode_all(&raw, &mut Originals::new()).unwrap();
    assert_eq!(back.len(), 3);
    let (Outbound::Event(e), Outbound::Meta(m), Outbound::Event(c)) =
        (&back[0], &back[1], &back[2])
    else {
        panic!("kinds changed: {back:?}");
    };
    assert_eq!(*e, o);
    assert_eq!(
        (m.server_seqno, m.kind, m.stage),
        (11, MetaKind::Lifecycle, Some(CommitStage::Voted))
    );
    assert!(m
        .old
        .as_deref()
        .is_some_and(|o| o.ends_with(b"{\"old\":1}}")));
    assert_eq!(*c, copy);
    let mut sent = Vec::new();
    c.write_json(&mut sent);
    assert!(std::str::from_utf8(&sent)
        .unwrap()
        .contains(r#""commit_stage":"Finalized""#));
    assert_eq!(
        scan(&raw).unwrap(),
        vec![(10, None), (11, None), (12, Some(10))]
    );
}

#[test]
fn json_rpc_block_frames_round_trip() {
    let mut topics = [[0u8; 32]; MAX_LOG_TOPICS];
    topics[0] = [7; 32];
    let header: Box<[u8]> = br#"{"number":"0xe4e1c1"}"#.as_slice().into();
    let logs = vec![RpcLog {
        address: [9; 20],
        topics,
        topic_count: 1,
        json: br#"{"logIndex":"0x0","removed":false}"#.as_slice().into(),
    }];
    let block_tail: Box<[u8]> = br#","transactions":[]}"#.as_slice().into();
    let block = Arc::new(RpcBlock {
        live: LiveBytes::of(&header, &logs, &block_tail),
        number: 15_000_001,
        hash: [1; 32],
        id: [2; 32],
        chain_id: 143,
        header,
        logs,
        block_tail,
    });
    let frame = Outbound::Rpc(Arc::new(RpcFrame {
        server_seqno: 33,
        stage: CommitStage::Abandoned,
        reached: CommitStage::Voted,
        timestamp_ns: 5,
        block: block.clone(),
    }));
    let mut raw = Vec::new();
    encode(&frame, &mut raw);
    let back = decode_all(&raw, &mut Originals::new()).unwrap();
    let Outbound::Rpc(r) = &back[0] else {
        panic!("{back:?}");
    };
    assert_eq!(
        (r.server_seqno, r.stage, r.reached, r.timestamp_ns),
        (33, CommitStage::Abandoned, CommitStage::Voted, 5)
    );
    assert_eq!(*r.block, *block);
    assert_eq!(scan(&raw).unwrap(), vec![(33, None)]);
    for cut in 1..raw.len() {
        assert!(decode_all(&raw[..cut], &mut Originals::new()).is_err());
    }
}

#[test]
fn a_copy_needs_its_original_and_garbage_is_an_error_never_a_panic() {
    let copy = Outbound::Event(original(10).restaged(CommitStage::Voted, 20));
    let mut raw = Vec::new();
    encode(&copy, &mut raw);
    assert_eq!(
        decode_all(&raw, &mut Originals::new()).unwrap_err(),
        [20],
        "the copy is left out and listed"
    );
    let mut originals = Originals::new();
    originals.insert(10, original(10));
    assert_eq!(decode_all(&raw, &mut originals).unwrap().len(), 1);

    let mut full = Vec::new();
    encode(&Outbound::Event(original(1)), &mut full);
    for cut in 0..full.len() {
        assert!(decode_all(&full[..cut], &mut Originals::new()).is_err() || cut == 0);
        let _ = scan(&full[..cut]);
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2_000 {
        let mut bytes = full.clone();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let i = (rng as usize) % bytes.len();
        bytes[i] ^= (rng >> 32) as u8 | 1;
        let _ = decode_all(&bytes, &mut Originals::new());
        let _ = scan(&bytes);
    }
}
