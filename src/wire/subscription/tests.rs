//! Unit tests of client message parsing, channel rules and limits.

use super::*;
use crate::model::outbound::MetaKind;

fn parse(text: &str, channel: Channel) -> Result<ClientMessage, ClientError> {
    parse_client_message(text, channel, &SubscriptionLimits::default())
}

fn sub(text: &str, channel: Channel) -> Subscription {
    match parse(text, channel) {
        Ok(ClientMessage::Subscribe(s)) => s,
        other => panic!("{text}: {other:?}"),
    }
}

fn code(text: &str, channel: Channel) -> ErrorCode {
    match parse(text, channel) {
        Err(e) => e.code,
        other => panic!("{text}: expected an error, got {other:?}"),
    }
}

#[test]
fn the_old_gateways_simple_subscribe() {
    let s = sub(
        r#"{"subscribe":["BlockStart","TxnLog","TPS","ContentionData","TopAccesses","Lifecycle"]}"#,
        Channel::All,
    );
    assert_eq!(
        s.events,
        EventType::BlockStart.bit() | EventType::TxnLog.bit()
    );
    assert_eq!(s.meta, MetaMask::ALL);
    assert_eq!(s.min_stage, CommitStage::Proposed);
    assert!(s.specs.is_empty());
    assert_eq!(
        s.names().collect::<Vec<_>>(),
        [
            "BlockStart",
            "TxnLog",
            "TPS",
            "ContentionData",
            "TopAccesses",
            "Lifecycle"
        ]
    );
}

#[test]
fn the_old_gateways_advanced_subscribe() {
    let s = sub(
        r#"{"subscribe":{"events":["TxnLog","BlockStart"],"filters":[{"event_name":"TxnLog","field_filters":[
            {"field":"address","filter":{"values":["0x3bd359C1119dA7Da1D913D1C4D2B7c461115433A"]}},
            {"field":"topics","filter":{"values":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]}},
            {"field":"txn_index","filter":{"min":0,"max":100}},
            {"field":"log_index","filter":{"min":1}}]}],"min_stage":"Finalized"}}"#,
        Channel::All,
    );
    assert_eq!(s.min_stage, CommitStage::Finalized);
    assert_eq!(s.specs.len(), 1);
    let spec = &s.specs[0];
    assert_eq!(spec.target, SpecTarget::Event(EventType::TxnLog));
    let FieldFilter::Address(a) = &spec.fields[0] else {
        panic!("{spec:?}")
    };
    assert_eq!(a[0][0], 0x3b);
    assert_eq!(a[0][19], 0x3a);
    let FieldFilter::Topics(t) = &spec.fields[1] else {
        panic!("{spec:?}")
    };
    assert!(matches!(&t[0], TopicSlot::AnyOf(v) if v.len() == 1 && v[0][0] == 0xdd));
    assert_eq!(
        spec.fields[2],
        FieldFilter::TxnIndex(IndexRange {
            min: Some(0),
            max: Some(100)
        })
    );
    assert_eq!(
        spec.fields[3],
        FieldFilter::LogIndex(IndexRange {
            min: Some(1),
            max: None
        })
    );
}

#[test]
fn positional_topics_with_wildcards_and_alternatives() {
    let t0 = format!("0x{}", "11".repeat(32));
    let t2a = format!("0x{}", "22".repeat(32));
    let t2b = format!("0x{}", "AA".repeat(32));
    let s = sub(
        &format!(
            r#"{{"subscribe":{{"filters":[{{"event_name":"TxnLog","field_filters":[
                {{"field":"topics","filter":{{"values":["{t0}",null,["{t2b}","{t2a}"]]}}}}]}}]}}}}"#
        ),
        Channel::Txs,
    );
    assert_eq!(
        s.events,
        EventType::TxnLog.bit(),
        "a spec subscribes its event"
    );
    let FieldFilter::Topics(slots) = &s.specs[0].fields[0] else {
        panic!()
    };
    assert_eq!(slots[1], TopicSlot::Any);
    assert_eq!(slots[2], TopicSlot::AnyOf(vec![[0x22; 32], [0xaa; 32]]));
}

#[test]
fn native_transfer_selector_and_hello() {
    let s = sub(
        r#"{"subscribe":{"events":["NativeTransfer"],"filters":[{"event_name":"TxnCallFrame",
            "field_filters":[{"field":"selector","filter":{"values":["0xa9059cbb"]}}]}]}}"#,
        Channel::Txs,
    );
    assert!(s.native_transfer);
    assert_eq!(s.events, EventType::TxnCallFrame.bit());
    assert_eq!(
        s.specs[0].fields[0],
        FieldFilter::Selector(vec![[0xa9, 0x05, 0x9c, 0xbb]])
    );
    assert_eq!(
        parse(
            r#"{"hello":{"wire_version":1,"client_name":"sdk","client_version":"0.2"}}"#,
            Channel::All
        ),
        Ok(ClientMessage::Hello(ClientHello {
            wire_version: Some(1),
            client_name: Some("sdk".into()),
            client_version: Some("0.2".into())
        }))
    );
}

#[test]
fn meta_only_subscription_has_no_raw_events() {
    let s = sub(r#"{"subscribe":["TPS"]}"#, Channel::All);
    assert_eq!(s.events, 0);
    assert!(!s.native_transfer);
    assert!(s.meta.contains(MetaKind::Tps));
    let empty = sub(r#"{"subscribe":[]}"#, Channel::All);
    assert_eq!((empty.events, empty.meta), (0, MetaMask::EMPTY));
}

#[test]
fn channel_defaults_and_rules() {
    let d = Subscription::default_for(Channel::Lifecycle);
    assert_eq!(d.events, 0);
    assert_eq!(d.meta.kinds().collect::<Vec<_>>(), [MetaKind::Lifecycle]);
    let d = Subscription::default_for(Channel::Contention);
    assert_eq!(d.events, 0);
    assert_eq!(
        d.meta.kinds().collect::<Vec<_>>(),
        [MetaKind::ContentionData]
    );
    assert_eq!(
        code(r#"{"subscribe":["TxnLog"]}"#, Channel::Lifecycle),
        ErrorCode::NotAllowedOnChannel
    );
    assert_eq!(
        code(r#"{"subscribe":["TPS"]}"#, Channel::Txs),
        ErrorCode::NotAllowedOnChannel
    );
    assert_eq!(
        code(
            r#"{"subscribe":{"filters":[{"event_name":"StorageAccess","field_filters":[]}]}}"#,
            Channel::Blocks
        ),
        ErrorCode::NotAllowedOnChannel
    );
    assert!(matches!(
        parse(r#"{"subscribe":["Lifecycle"]}"#, Channel::Lifecycle),
        Ok(ClientMessage::Subscribe(_))
    ));
}

#[test]
fn the_connect_query_form() {
    let limits = SubscriptionLimits::default();
    let s = Subscription::from_query(
        Channel::Blocks,
        Some(&[
            Item::Event(EventType::BlockStart),
            Item::Meta(MetaKind::Tps),
        ]),
        Some(CommitStage::Voted),
        &limits,
    )
    .unwrap();
    assert_eq!(s.events, EventType::BlockStart.bit());
    assert_eq!(s.min_stage, CommitStage::Voted);
    let d = Subscription::from_query(Channel::Txs, None, None, &limits).unwrap();
    assert_eq!(d, Subscription::default_for(Channel::Txs));
    let e = Subscription::from_query(
        Channel::Contention,
        Some(&[Item::Event(EventType::TxnLog)]),
        None,
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotAllowedOnChannel);
}

#[test]
fn every_bad_message_gets_its_code() {
    let addr = |n: usize| format!("\"0x{:040x}\"", n);
    let many_addrs = (0..1025).map(addr).collect::<Vec<_>>().join(",");
    let many_names = vec!["\"TxnLog\""; 65].join(",");
    let spec = r#"{"event_name":"TxnLog","field_filters":[]}"#;
    let many_specs = vec![spec; 33].join(",");
    let field = r#"{"field":"txn_index","filter":{}}"#;
    let many_fields = [field; 9].join(",");
    let cases: Vec<(String, ErrorCode)> = vec![
        ("not json".into(), ErrorCode::InvalidJson),
        ("[".repeat(10_000), ErrorCode::InvalidJson),
        ("[1]".into(), ErrorCode::UnknownMessage),
        (r#"{"unsubscribe":[]}"#.into(), ErrorCode::UnknownMessage),
        (r#"{"subscribe":[],"hello":{}}"#.into(), ErrorCode::UnknownMessage),
        (r#"{"subscribe":["Bogus"]}"#.into(), ErrorCode::UnknownEvent),
        (r#"{"subscribe":[7]}"#.into(), ErrorCode::BadValue),
        (r#"{"subscribe":"TxnLog"}"#.into(), ErrorCode::BadValue),
        (r#"{"subscribe":{"evnts":[]}}"#.into(), ErrorCode::UnknownField),
        (r#"{"subscribe":{"min_stage":"Rejected"}}"#.into(), ErrorCode::BadValue),
        (r#"{"subscribe":{"min_stage":"finalized"}}"#.into(), ErrorCode::BadValue),
        (
            r#"{"subscribe":{"filters":[{"event_name":"TxnLog","field_filters":[{"field":"emitter","filter":{"values":[]}}]}]}}"#.into(),
            ErrorCode::UnknownField,
        ),
        (
            r#"{"subscribe":{"filters":[{"event_name":"TxnLog","field_filters":[{"field":"address","filter":{"values":["0x12"]}}]}]}}"#.into(),
            ErrorCode::BadValue,
        ),
        (
            r#"{"subscribe":{"filters":[{"event_name":"TxnLog","field_filters":[{"field":"txn_index","filter":{"min":5,"max":1}}]}]}}"#.into(),
            ErrorCode::BadValue,
        ),
        (
            r#"{"subscribe":{"filters":[{"event_name":"TxnLog","field_filters":[{"field":"txn_index","filter":{"min":-1}}]}]}}"#.into(),
            ErrorCode::BadValue,
        ),
        (
            r#"{"subscribe":{"filters":[{"event_name":"TxnLog","field_filters":[{"field":"txn_index","filter":{"mn":1}}]}]}}"#.into(),
            ErrorCode::UnknownField,
        ),
        (
            r#"{"subscribe":{"filters":[{"event_name":"TxnCallFrame","field_filters":[{"field":"topics","filter":{"values":[null]}}]}]}}"#.into(),
            ErrorCode::FieldNotApplicable,
        ),
        (
            r#"{"subscribe":{"filters":[{"event_name":"BlockStart","field_filters":[{"field":"address","filter":{"values":[]}}]}]}}"#.into(),
            ErrorCode::FieldNotApplicable,
        ),
        (
            r#"{"subscribe":{"filters":[{"event_name":"TPS","field_filters":[]}]}}"#.into(),
            ErrorCode::BadValue,
        ),
        (
            r#"{"subscribe":{"filters":[{"field_filters":[]}]}}"#.into(),
            ErrorCode::BadValue,
        ),
        (
            r#"{"subscribe":{"filters":[{"event_name":"TxnLog","field_filters":[{"field":"topics","filter":{"values":[null,null,null,null,null]}}]}]}}"#.into(),
            ErrorCode::BadValue,
        ),
        (format!(r#"{{"subscribe":[{many_names}]}}"#), ErrorCode::TooManyNames),
        (
            format!(r#"{{"subscribe":{{"filters":[{many_specs}]}}}}"#),
            ErrorCode::TooManyFilters,
        ),
        (
            format!(
                r#"{{"subscribe":{{"filters":[{{"event_name":"TxnLog","field_filters":[{many_fields}]}}]}}}}"#
            ),
            ErrorCode::TooManyFilters,
        ),
        (
            format!(
                r#"{{"subscribe":{{"filters":[{{"event_name":"TxnLog","field_filters":[{{"field":"address","filter":{{"values":[{many_addrs}]}}}}]}}]}}}}"#
            ),
            ErrorCode::TooManyValues,
        ),
        (
            format!(r#"{{"subscribe":["{}"]}}"#, "x".repeat(70_000)),
            ErrorCode::MessageTooLarge,
        ),
    ];
    for (text, want) in cases {
        let got = code(&text, Channel::All);
        assert_eq!(got, want, "{}", &text[..text.len().min(120)]);
        assert!(!want.as_str().is_empty());
    }
}

#[test]
fn mutated_messages_never_panic_and_always_answer() {
    let seeds = [
        r#"{"subscribe":["BlockStart","TxnLog","TPS","ContentionData","TopAccesses","Lifecycle"]}"#,
        r#"{"subscribe":{"events":["TxnLog"],"filters":[{"event_name":"TxnLog","field_filters":[{"field":"topics","filter":{"values":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",null]}},{"field":"txn_index","filter":{"min":1,"max":2}}]}],"min_stage":"Voted"}}"#,
        r#"{"hello":{"wire_version":1,"client_name":"x"}}"#,
    ];
    let alphabet = br#"{}[]",:0123456789abcdefxnul "#;
    let mut x: u64 = 0x0dd_ba11_cafe;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut answered = 0;
    for i in 0..6000 {
        let mut bytes = seeds[i % seeds.len()].as_bytes().to_vec();
        for _ in 0..1 + next() % 4 {
            let pos = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[pos] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    bytes.remove(pos);
                }
                _ => bytes.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
            }
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        // Either a valid message or a coded error with a message: never a panic.
        match parse(text, Channel::All) {
            Ok(_) => answered += 1,
            Err(e) => {
                assert!(!e.message.is_empty());
                answered += 1;
            }
        }
    }
    assert!(answered > 5000);
}

#[test]
fn min_stage_on_a_disabled_gate_is_refused_with_the_gates_that_are_on() {
    let limits = SubscriptionLimits {
        enabled_gates: [false, true, false],
        ..SubscriptionLimits::default()
    };
    let msg = r#"{"subscribe":{"events":["TxnLog"],"min_stage":"Voted"}}"#;
    let e = parse_client_message(msg, Channel::All, &limits).unwrap_err();
    assert_eq!(e.code, ErrorCode::StageNotEnabled);
    assert!(
        e.message.contains("enabled: Proposed, Finalized"),
        "{}",
        e.message
    );
    let ok = r#"{"subscribe":{"events":["TxnLog"],"min_stage":"Finalized"}}"#;
    assert!(parse_client_message(ok, Channel::All, &limits).is_ok());
    let q = Subscription::from_query(Channel::All, None, Some(CommitStage::Verified), &limits);
    assert_eq!(q.unwrap_err().code, ErrorCode::StageNotEnabled);
    let proposed =
        Subscription::from_query(Channel::All, None, Some(CommitStage::Proposed), &limits);
    assert!(proposed.is_ok());
}

#[test]
fn a_priority_cap_unsubscribes_the_lanes_below_it() {
    use crate::model::lane::Lane;
    let s = sub(
        r#"{"subscribe":{"events":["BlockStart","TxnLog","StorageAccess","NativeTransfer","TPS"],
            "filters":[{"event_name":"TxnCallFrame","field_filters":[]}],"priority":"txn"}}"#,
        Channel::All,
    );
    assert_eq!(s.priority, Some(Lane::Txn));
    assert_eq!(
        s.events,
        EventType::BlockStart.bit() | EventType::TxnLog.bit(),
        "the detail lane (StorageAccess, TxnCallFrame) is not selected"
    );
    assert!(!s.native_transfer);
    assert!(s.specs.is_empty());
    assert_eq!(s.meta, sub(r#"{"subscribe":["TPS"]}"#, Channel::All).meta);
    let block = Subscription::default_for(Channel::All)
        .with_priority(Some(Lane::Block), &SubscriptionLimits::default());
    assert_eq!(block.events & EventType::TxnLog.bit(), 0);
    assert_ne!(block.events & EventType::BlockEnd.bit(), 0);
    // The server's own lanes decide: with TxnLog moved to the top lane it stays selected.
    let limits = SubscriptionLimits {
        lanes: crate::model::lane::LaneMap::DEFAULT.with(EventType::TxnLog, Lane::Block),
        ..SubscriptionLimits::default()
    };
    let moved = Subscription::default_for(Channel::All).with_priority(Some(Lane::Block), &limits);
    assert_ne!(moved.events & EventType::TxnLog.bit(), 0);
    assert_eq!(
        Subscription::default_for(Channel::All).with_priority(None, &limits),
        Subscription::default_for(Channel::All)
    );
    assert_eq!(
        code(
            r#"{"subscribe":{"events":["TxnLog"],"priority":"high"}}"#,
            Channel::All
        ),
        ErrorCode::BadValue
    );
    assert_eq!(
        code(
            r#"{"subscribe":{"events":["TxnLog"],"priority":2}}"#,
            Channel::All
        ),
        ErrorCode::BadValue
    );
}
