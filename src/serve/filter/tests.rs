//! Unit tests of compiled filters, including the property test against a naive oracle.

use super::*;
use crate::model::outbound::EventBody;
use crate::wire::subscription::channel::Channel;
use crate::wire::subscription::FilterSpec;
use std::sync::Arc;

/// xorshift64: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const TYPES: [EventType; 8] = [
    EventType::TxnLog,
    EventType::TxnCallFrame,
    EventType::TxnHeaderStart,
    EventType::StorageAccess,
    EventType::BlockStart,
    EventType::BlockQc,
    EventType::BlockFinalized,
    EventType::TxnEnd,
];

fn addr(i: u64) -> [u8; 20] {
    [i as u8; 20]
}
fn topic(i: u64) -> [u8; 32] {
    [i as u8 + 100; 32]
}
fn selector(i: u64) -> [u8; 4] {
    [i as u8; 4]
}

fn event(keys: FilterKeys, gate: CommitStage) -> EncodedEvent {
    EncodedEvent {
        server_seqno: 1,
        gate,
        body: Arc::new(EventBody {
            origin_seqno: 1,
            ring_seqno: 1,
            timestamp_ns: 0,
            keys,
            json: Box::from(&b"{}"[..]),
            stage_span: None,
        }),
    }
}

fn random_event(r: &mut Rng) -> EncodedEvent {
    let t = TYPES[r.below(TYPES.len() as u64) as usize];
    let mut k = FilterKeys::new(t);
    k.block_seqno = if r.chance(20) { 0 } else { 1 + r.below(100) };
    for _ in 0..r.below(3) {
        k.push_address(addr(r.below(16)));
    }
    let topics = r.below(5) as usize;
    for i in 0..topics {
        k.topics[i] = topic(r.below(12));
    }
    k.topic_count = topics as u8;
    if r.chance(60) {
        k.selector = Some(selector(r.below(12)));
    }
    if r.chance(80) {
        k.txn_idx = Some(r.below(8) as u32);
    }
    if r.chance(70) {
        k.log_index = Some(r.below(8) as u32);
    }
    k.has_value = r.chance(50);
    let gate = CommitStage::GATES[r.below(4) as usize];
    event(k, gate)
}

fn random_range(r: &mut Rng) -> IndexRange {
    IndexRange {
        min: r.chance(50).then(|| r.below(6) as u32),
        max: r.chance(50).then(|| r.below(8) as u32),
    }
}

fn random_values<T>(r: &mut Rng, max_len: u64, f: impl Fn(u64) -> T, pool: u64) -> Vec<T> {
    (0..1 + r.below(max_len))
        .map(|_| f(r.below(pool)))
        .collect()
}

fn random_field(r: &mut Rng) -> FieldFilter {
    match r.below(5) {
        0 => FieldFilter::Address(random_values(r, 12, addr, 16)),
        1 => FieldFilter::Topics(
            (0..1 + r.below(4))
                .map(|_| {
                    if r.chance(30) {
                        TopicSlot::Any
                    } else {
                        TopicSlot::AnyOf(random_values(r, 10, topic, 12))
                    }
                })
                .collect(),
        ),
        2 => FieldFilter::Selector(random_values(r, 10, selector, 12)),
        3 => FieldFilter::TxnIndex(random_range(r)),
        _ => FieldFilter::LogIndex(random_range(r)),
    }
}

fn random_subscription(r: &mut Rng) -> Subscription {
    let mut events = 0;
    for t in TYPES {
        if r.chance(40) {
            events |= t.bit();
        }
    }
    let specs = (0..r.below(5))
        .map(|_| FilterSpec {
            target: if r.chance(15) {
                SpecTarget::NativeTransfer
            } else {
                SpecTarget::Event(TYPES[r.below(TYPES.len() as u64) as usize])
            },
            fields: (0..r.below(4)).map(|_| random_field(r)).collect(),
        })
        .collect();
    Subscription {
        channel: Channel::All,
        events,
        native_transfer: r.chance(30),
        meta: MetaMask::EMPTY,
        specs,
        min_stage: CommitStage::GATES[r.below(4) as usize],
        priority: None,
        rejected: Vec::new(),
    }
}

/// The obvious implementation, straight from the documented semantics.
fn oracle(sub: &Subscription, e: &EncodedEvent) -> bool {
    let k = &e.keys;
    let gate_ok = if k.block_seqno == 0 {
        e.gate == CommitStage::Proposed
    } else {
        e.gate == sub.min_stage
    };
    if !gate_ok {
        return false;
    }
    let field_ok = |f: &FieldFilter| match f {
        FieldFilter::Address(v) => k.addresses().iter().any(|a| v.contains(a)),
        FieldFilter::Topics(slots) => slots.iter().enumerate().all(|(i, s)| {
            i < usize::from(k.topic_count)
                && match s {
                    TopicSlot::Any => true,
                    TopicSlot::AnyOf(v) => v.contains(&k.topics[i]),
                }
        }),
        FieldFilter::Selector(v) => k.selector.is_some_and(|s| v.contains(&s)),
        FieldFilter::TxnIndex(r) => k
            .txn_idx
            .is_some_and(|i| r.min.is_none_or(|m| i >= m) && r.max.is_none_or(|m| i <= m)),
        FieldFilter::LogIndex(r) => k
            .log_index
            .is_some_and(|i| r.min.is_none_or(|m| i >= m) && r.max.is_none_or(|m| i <= m)),
    };
    let passes = |target: SpecTarget| {
        let specs: Vec<_> = sub.specs.iter().filter(|s| s.target == target).collect();
        specs.is_empty() || specs.iter().any(|s| s.fields.iter().all(field_ok))
    };
    let t = k.event_type;
    let direct = sub.events & t.bit() != 0 && passes(SpecTarget::Event(t));
    let native = sub.native_transfer
        && t == EventType::TxnCallFrame
        && k.has_value
        && passes(SpecTarget::NativeTransfer);
    direct || native
}

#[test]
fn compiled_filter_agrees_with_the_naive_oracle() {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    let mut delivered = 0;
    for _ in 0..3000 {
        let sub = random_subscription(&mut r);
        let f = CompiledFilter::new(&sub);
        for _ in 0..60 {
            let e = random_event(&mut r);
            let want = oracle(&sub, &e);
            assert_eq!(
                f.matches_event(&e),
                want,
                "{sub:?}\n{:?} gate {:?}",
                e.keys,
                e.gate
            );
            delivered += usize::from(want);
        }
    }
    // The generator must exercise both outcomes substantially.
    assert!(delivered > 5_000 && delivered < 170_000, "{delivered}");
}

fn txn_log(address: u64, topics: &[u64], gate: CommitStage) -> EncodedEvent {
    let mut k = FilterKeys::new(EventType::TxnLog);
    k.block_seqno = 7;
    k.push_address(addr(address));
    for (i, t) in topics.iter().enumerate() {
        k.topics[i] = topic(*t);
    }
    k.topic_count = topics.len() as u8;
    event(k, gate)
}

fn subscribe(text: &str, channel: Channel) -> Subscription {
    match crate::wire::subscription::parse_client_message(
        text,
        channel,
        &crate::wire::subscription::SubscriptionLimits::default(),
    ) {
        Ok(crate::wire::subscription::ClientMessage::Subscribe(s)) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_event_named_without_a_spec_passes_unfiltered() {
    // The existing gateway's examples/track-storage.ts: BlockStart next to a filtered type.
    let sub = subscribe(
        &format!(
            r#"{{"subscribe":{{"events":["BlockStart","TxnLog"],"filters":[{{"event_name":"TxnLog",
            "field_filters":[{{"field":"address","filter":{{"values":["0x{}"]}}}}]}}]}}}}"#,
            "01".repeat(20)
        ),
        Channel::All,
    );
    let f = CompiledFilter::new(&sub);
    let mut start = FilterKeys::new(EventType::BlockStart);
    start.block_seqno = 7;
    assert!(f.matches_event(&event(start, CommitStage::Proposed)));
    assert!(f.matches_event(&txn_log(1, &[], CommitStage::Proposed)));
    assert!(!f.matches_event(&txn_log(2, &[], CommitStage::Proposed)));
}

#[test]
fn gates_select_one_stream_but_consensus_events_reach_every_gate() {
    let sub = subscribe(
        r#"{"subscribe":{"events":["TxnLog","BlockFinalized"],"min_stage":"Finalized"}}"#,
        Channel::All,
    );
    let f = CompiledFilter::new(&sub);
    assert!(!f.matches_event(&txn_log(1, &[], CommitStage::Proposed)));
    assert!(!f.matches_event(&txn_log(1, &[], CommitStage::Verified)));
    assert!(f.matches_event(&txn_log(1, &[], CommitStage::Finalized)));
    let fin = FilterKeys::new(EventType::BlockFinalized);
    assert!(f.matches_event(&event(fin.clone(), CommitStage::Proposed)));
    assert!(!f.matches_event(&event(fin, CommitStage::Finalized)));
}

#[test]
fn meta_frames_follow_the_subscription_and_gaps_go_to_everyone() {
    let meta = |kind| MetaFrame {
        old: None,
        server_seqno: 1,
        kind,
        stage: None,
        frame: Box::from(&b"{}"[..]),
    };
    let f = CompiledFilter::new(&Subscription::default_for(Channel::Lifecycle));
    assert!(f.matches_meta(&meta(MetaKind::Lifecycle)));
    assert!(f.matches_meta(&meta(MetaKind::Gap)));
    assert!(!f.matches_meta(&meta(MetaKind::Tps)));
    assert!(!f.wants_events());
    for t in EventType::ALL {
        let mut k = FilterKeys::new(t);
        k.block_seqno = 1;
        assert!(!f.matches_event(&event(k, CommitStage::Proposed)), "{t:?}");
    }
}

#[test]
fn large_address_sets_use_binary_search_correctly() {
    let values: Vec<String> = (0..200u64)
        .map(|i| format!("\"0x{}\"", hex(&addr(i * 3 % 250))))
        .collect();
    let sub = subscribe(
        &format!(
            r#"{{"subscribe":{{"filters":[{{"event_name":"TxnLog","field_filters":[{{"field":"address","filter":{{"values":[{}]}}}}]}}]}}}}"#,
            values.join(",")
        ),
        Channel::All,
    );
    let f = CompiledFilter::new(&sub);
    for i in 0..=255u64 {
        let want = (0..200u64).any(|j| j * 3 % 250 == i);
        assert_eq!(
            f.matches_event(&txn_log(i, &[], CommitStage::Proposed)),
            want,
            "{i}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
