//! Resume: the decision rules, `from_block`, and a 100,000-frame flow-controlled replay that
//! joins the live stream with no duplicate and no hole.

mod chain_support;

use std::collections::HashSet;
use std::sync::Arc;

use chain_support::encoded;
use ringgate::ingest::chain::meta;
use ringgate::model::kind::EventType;
use ringgate::model::outbound::{EncodedEvent, Outbound};
use ringgate::model::seqno::Epoch;
use ringgate::serve::resume::{
    ReplayCursor, ResumeConfig, ResumeDecision, ResumeRequest, ResumeStore, StoreOutcome,
};
use ringgate::wire::protocol::messages::{self, ResumeMode, ResumeReason};

const EPOCH: Epoch = Epoch::new(1_700_000_000_000_000);

/// An event frame of `ty` with `seqno`, in block `number` (0: outside blocks).
fn frame(seqno: u64, ty: EventType, number: u64) -> Outbound {
    let block = (number != 0).then_some(([1; 32], number));
    let mut e = encoded(ty, seqno, if number != 0 { 1 } else { 0 }, block, None);
    e.origin_seqno = seqno;
    Outbound::Event(EncodedEvent::original(e))
}

/// A store holding seqnos `first..=last` (earlier ones evicted by a 100-frame cap).
fn store_with(first: u64, last: u64) -> ResumeStore {
    let mut s = ResumeStore::new(ResumeConfig {
        max_frames: usize::try_from(last - first + 1).unwrap_or(1),
        max_bytes: usize::MAX,
    });
    for n in 1..=last {
        assert!(matches!(
            s.push(frame(n, EventType::TxnLog, 0)),
            StoreOutcome::Stored { .. }
        ));
    }
    assert_eq!((s.oldest_seqno(), s.head()), (first, last));
    s
}

fn req(resume_from: u64, epoch: Option<u64>) -> ResumeRequest {
    ResumeRequest {
        resume_from: Some(resume_from),
        epoch,
        from_block: None,
    }
}

#[test]
fn cursor_in_range_resumes_and_recovers() {
    let s = store_with(101, 200);
    let d = s.decide(&req(150, Some(EPOCH.get())), EPOCH);
    assert_eq!(
        d,
        ResumeDecision {
            mode: ResumeMode::Resume,
            start_after: 150,
            gap: None,
            recovered: true,
            reason: ResumeReason::InRange,
        }
    );
    // The frame right before the oldest is still a complete position.
    let d = s.decide(&req(100, None), EPOCH);
    assert_eq!(
        (d.mode, d.start_after, d.recovered),
        (ResumeMode::Resume, 100, true)
    );
}

#[test]
fn cursor_at_head_is_resume_with_nothing_to_replay() {
    let s = store_with(101, 200);
    let d = s.decide(&req(200, Some(EPOCH.get())), EPOCH);
    assert_eq!(
        d.mode,
        ResumeMode::Resume,
        "the old gateway said snapshot here"
    );
    assert_eq!((d.start_after, d.gap, d.recovered), (200, None, true));
    assert_eq!(d.reason, ResumeReason::AtHead);
}

#[test]
fn cursor_too_old_is_snapshot_with_gap_then_what_is_left() {
    let s = store_with(101, 200);
    let d = s.decide(&req(40, Some(EPOCH.get())), EPOCH);
    assert_eq!(d.mode, ResumeMode::Snapshot);
    assert_eq!(d.gap, Some(41..101));
    assert_eq!(d.start_after, 100, "everything still stored is replayed");
    assert!(!d.recovered);
    assert_eq!(d.reason, ResumeReason::TooOld);
}

#[test]
fn cursor_from_another_epoch_is_snapshot() {
    let s = store_with(101, 200);
    let d = s.decide(&req(150, Some(EPOCH.get() - 1)), EPOCH);
    assert_eq!(d.mode, ResumeMode::Snapshot);
    assert!(!d.recovered);
    assert_eq!(d.reason, ResumeReason::OtherEpoch);
    assert_eq!(
        d.gap,
        Some(1..101),
        "this epoch's evicted frames are lost to it too"
    );
    assert_eq!(d.start_after, 100);
    // Nothing evicted in this epoch yet: everything since restart is replayed, no gap.
    let fresh = store_with(1, 50);
    let d = fresh.decide(&req(9_999, Some(1)), EPOCH);
    assert_eq!(
        (d.start_after, d.gap.clone(), d.recovered),
        (0, None, false)
    );
}

#[test]
fn cursor_ahead_of_head_is_snapshot_from_head() {
    let s = store_with(101, 200);
    for epoch in [None, Some(EPOCH.get())] {
        let d = s.decide(&req(5_000, epoch), EPOCH);
        assert_eq!(d.mode, ResumeMode::Snapshot);
        assert_eq!(
            (d.start_after, d.gap.clone(), d.recovered),
            (200, None, false)
        );
        assert_eq!(d.reason, ResumeReason::AheadOfHead);
    }
}

#[test]
fn no_cursor_is_a_fresh_live_start() {
    let s = store_with(101, 200);
    let d = s.decide(&ResumeRequest::default(), EPOCH);
    assert_eq!(
        (d.mode, d.start_after, d.reason),
        (ResumeMode::Snapshot, 200, ResumeReason::Fresh)
    );
}

#[test]
fn from_block_starts_at_the_blocks_first_frame() {
    let mut s = ResumeStore::new(ResumeConfig {
        max_frames: 30,
        max_bytes: usize::MAX,
    });
    let mut seqno = 0;
    let mut push = |s: &mut ResumeStore, ty, number| {
        seqno += 1;
        s.push(frame(seqno, ty, number));
        seqno
    };
    // Blocks 10..=14, ten in-block events each, plus a consensus event between blocks.
    let mut first_of = Vec::new();
    for number in 10..=14u64 {
        first_of.push(push(&mut s, EventType::BlockStart, number));
        for _ in 0..9 {
            push(&mut s, EventType::TxnLog, number);
        }
        push(&mut s, EventType::BlockQc, 0);
    }
    // 55 frames pushed, 30 kept: blocks 10, 11 and the start of 12 are gone.
    assert_eq!(s.oldest_seqno(), 26);
    let d = s.decide(
        &ResumeRequest {
            from_block: Some(13),
            ..ResumeRequest::default()
        },
        EPOCH,
    );
    assert_eq!(d.reason, ResumeReason::BlockInRange);
    assert_eq!(
        (d.mode, d.start_after, d.recovered),
        (ResumeMode::Resume, first_of[3] - 1, true)
    );
    for gone in [10, 12] {
        let d = s.decide(
            &ResumeRequest {
                from_block: Some(gone),
                ..ResumeRequest::default()
            },
            EPOCH,
        );
        assert_eq!(d.reason, ResumeReason::BlockTooOld, "block {gone}");
        assert_eq!(
            (d.mode, d.start_after, d.recovered),
            (ResumeMode::Snapshot, 25, false)
        );
    }
    let d = s.decide(
        &ResumeRequest {
            from_block: Some(99),
            ..ResumeRequest::default()
        },
        EPOCH,
    );
    assert_eq!(d.reason, ResumeReason::BlockAhead);
    assert_eq!(
        (d.mode, d.start_after, d.recovered),
        (ResumeMode::Resume, 55, true)
    );
    // resume_from wins over from_block.
    let d = s.decide(
        &ResumeRequest {
            resume_from: Some(50),
            epoch: None,
            from_block: Some(13),
        },
        EPOCH,
    );
    assert_eq!(d.reason, ResumeReason::InRange);
}

#[test]
fn out_of_order_pushes_are_refused_and_bytes_bound_the_store() {
    let mut s = ResumeStore::new(ResumeConfig {
        max_frames: 1_000,
        max_bytes: 1_000,
    });
    assert!(matches!(
        s.push(frame(5, EventType::TxnLog, 0)),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(
        s.push(frame(5, EventType::TxnLog, 0)),
        StoreOutcome::OutOfOrder
    );
    assert_eq!(s.out_of_order(), 1);
    for n in 6..200 {
        s.push(frame(n, EventType::TxnLog, 0));
    }
    assert!(s.bytes() <= 1_000, "{}", s.bytes());
    assert_eq!(s.head(), 199);
    assert!(s.evicted() > 0);
    // Meta frames count too.
    s.push(Outbound::Meta(Arc::new(meta::tps_frame(200, 7))));
    assert_eq!(s.head(), 200);
}

/// The session filter of the replay test: only logs of even blocks, plus every meta frame.
fn matches(f: &Outbound) -> bool {
    match f {
        Outbound::Event(e) => {
            e.keys.event_type == EventType::TxnLog
                && e.keys.block_number.is_some_and(|n| n % 2 == 0)
        }
        Outbound::Meta(_) => true,
        Outbound::Rpc(_) => false,
    }
}

fn mixed(seqno: u64) -> Outbound {
    match seqno % 5 {
        0 => Outbound::Meta(Arc::new(meta::tps_frame(seqno, seqno))),
        1 => frame(seqno, EventType::StorageAccess, 1 + seqno / 1000),
        _ => frame(seqno, EventType::TxnLog, 1 + seqno / 1000),
    }
}

#[test]
fn replay_of_100k_frames_in_chunks_equals_the_filtered_store_then_joins_live() {
    let mut s = ResumeStore::new(ResumeConfig::default());
    for n in 1..=100_000 {
        s.push(mixed(n));
    }
    assert_eq!((s.len(), s.oldest_seqno(), s.head()), (100_000, 1, 100_000));
    let d = s.decide(&req(0, Some(EPOCH.get())), EPOCH);
    assert_eq!(
        (d.mode, d.start_after, d.recovered),
        (ResumeMode::Resume, 0, true)
    );

    let mut cursor = ReplayCursor::new(d.start_after);
    let mut delivered: Vec<u64> = Vec::new();
    let mut chunk = Vec::new();
    let mut calls = 0;
    let mut next_live = 100_001;
    loop {
        chunk.clear();
        let step = cursor.next_chunk(&s, 512, 4_096, matches, &mut chunk);
        calls += 1;
        assert!(step.lost.is_none());
        assert!(chunk.len() <= 512, "bounded step");
        assert_eq!(step.delivered, chunk.len());
        delivered.extend(chunk.iter().map(Outbound::server_seqno));
        // Live traffic keeps arriving while the session replays (stored first, as shards do).
        for _ in 0..50 {
            if next_live <= 100_500 {
                s.push(mixed(next_live));
                next_live += 1;
            }
        }
        if step.caught_up {
            break;
        }
        assert!(calls < 10_000, "replay terminates");
    }
    // Join live: the session delivers live frames with seqno > position only.
    let position = cursor.position();
    for n in next_live..=100_600 {
        let f = mixed(n);
        s.push(f.clone());
        if f.server_seqno() > position && matches(&f) {
            delivered.push(f.server_seqno());
        }
    }
    let expected: Vec<u64> = (1..=100_600).filter(|n| matches(&mixed(*n))).collect();
    let unique: HashSet<u64> = delivered.iter().copied().collect();
    assert_eq!(unique.len(), delivered.len(), "no duplicate");
    assert_eq!(delivered, expected, "no hole, in order");
    assert!(calls > 50, "the replay really was chunked ({calls} calls)");
}

#[test]
fn slow_replay_overtaken_by_eviction_reports_the_loss() {
    let mut s = ResumeStore::new(ResumeConfig {
        max_frames: 100,
        max_bytes: usize::MAX,
    });
    for n in 1..=100 {
        s.push(mixed(n));
    }
    let mut cursor = ReplayCursor::new(0);
    let mut out = Vec::new();
    let step = cursor.next_chunk(&s, 10, 10, |_| true, &mut out);
    assert_eq!((step.delivered, cursor.position()), (10, 10));
    for n in 101..=150 {
        s.push(mixed(n)); // evicts 1..=50
    }
    out.clear();
    let step = cursor.next_chunk(&s, 10, 10, |_| true, &mut out);
    assert_eq!(step.lost, Some(11..51));
    assert_eq!(out.first().map(Outbound::server_seqno), Some(51));
    // A filter that matches nothing still advances in bounded steps.
    let mut none = ReplayCursor::new(50);
    let step = none.next_chunk(&s, 10, 25, |_| false, &mut out);
    assert_eq!(
        (step.delivered, none.position(), step.caught_up),
        (0, 75, false)
    );
    let step = none.next_chunk(&s, 10, 1_000, |_| false, &mut out);
    assert!(step.caught_up);
    assert_eq!(none.position(), 150);
}

#[test]
fn resume_message_carries_the_cursor_not_the_head() {
    let s = store_with(101, 200);
    let d = s.decide(&req(150, Some(EPOCH.get())), EPOCH);
    let f = messages::resume(d.cursor(), &d.info(EPOCH.get(), s.head()));
    assert_eq!(
        std::str::from_utf8(&f).ok(),
        Some(
            "{\"server_seqno\":150,\"Resume\":{\"mode\":\"resume\",\"reason\":\"in_range\",\
             \"epoch\":1700000000000000,\"from_seqno\":151,\"to_seqno\":200,\"recovered\":true}}"
        )
    );
    // Too old: the cursor stays the client's own until the Gap frame (stamped with the last
    // lost seqno) announces 41..=100.
    let d = s.decide(&req(40, None), EPOCH);
    assert_eq!((d.cursor(), d.start_after), (40, 100));
    let gap = d.gap.as_ref().and_then(|r| {
        ringgate::model::gap::Gap::from_range(ringgate::model::gap::GapReason::ResumeWindow, r)
    });
    assert_eq!(
        gap.map(|g| (g.from_seqno, g.to_seqno)),
        Some((Some(41), Some(100)))
    );
    // At head: nothing to replay, no range.
    let d = s.decide(&req(200, None), EPOCH);
    let info = d.info(EPOCH.get(), s.head());
    assert_eq!(
        (d.cursor(), info.from_seqno, info.recovered),
        (200, None, true)
    );
}

#[test]
fn sealed_frames_leave_the_store_a_few_per_push_not_all_in_the_push_after_the_seal() {
    use ringgate::config::Config;
    use ringgate::history::meta::ChunkMeta;
    use ringgate::history::store::History;

    let history = Arc::new(History::new(
        Config::default().history_setup().config,
        EPOCH.get(),
    ));
    let mut store = ResumeStore::new(ResumeConfig::default()).with_history(Arc::clone(&history));
    for s in 1..=1_000 {
        store.push(frame(s, EventType::TxnLog, 1));
    }
    assert_eq!(store.len(), 1_000, "nothing sealed yet: all kept");
    // The history seals 1..=1000 (the chunk's bytes do not matter to the store).
    let meta = ChunkMeta {
        epoch: EPOCH.get(),
        first_seqno: 1,
        last_seqno: 1_000,
        first_block: Some(1),
        last_block: Some(1),
        first_time_ns: 1,
        last_time_ns: 2,
        last_ring_seqno: 1_000,
        frames: 1_000,
        raw_len: 1,
    };
    history.add_sealed(meta, zstd::bulk::compress(b"x", 1).unwrap(), 3);
    assert_eq!(history.sealed_head(), 1_000);
    // One push frees a few of them, not the thousand (that held the live frame back).
    let StoreOutcome::Stored { evicted } = store.push(frame(1_001, EventType::TxnLog, 1)) else {
        panic!("in order");
    };
    assert!((1..=8).contains(&evicted), "evicted {evicted}");
    // Later pushes free the rest; only unsealed frames remain.
    for s in 1_002..=1_200 {
        store.push(frame(s, EventType::TxnLog, 1));
    }
    assert_eq!(store.len(), 200);
    assert_eq!(store.memory_oldest_seqno(), 1_001);
    assert_eq!(
        store.oldest_seqno(),
        1,
        "the history still provides 1..=1000"
    );
}
