//! Property tests ("fuzzing on stable Rust") of the three parsers that take bytes from outside
//! the process, each against an oracle or an invariant:
//!
//! - the ring payload decoder (`ingest::event::decode`): never panics on any type code and
//!   any bytes; what it accepts is canonical under `build` (decode ∘ build ∘ decode = decode);
//!   every payload of the seeded synthetic chain (all 25 kinds) round-trips byte for byte;
//! - the WebSocket client-frame decoder (`wire::ws::FrameDecoder`): agrees with tungstenite's
//!   header parser on every input tungstenite can parse, decodes frames tungstenite formats
//!   (any length form, any mask, fed in any chunking) to the same payload, and never panics;
//! - the client-message, request-head and URL-query parsers
//!   (`wire::subscription::parse_client_message`, `wire::http::{parse_request, route}`,
//!   `WsQuery::parse`): never panic on arbitrary text or on JSON shaped like a subscribe; a
//!   normalized subscription re-parses to itself; well-formed cursors are kept exactly.
//!
//! cargo-fuzz needs a nightly toolchain these machines cannot fetch, so this uses proptest on
//! stable. `cargo test --test fuzz_parsers` runs 256 cases per property (proptest's default);
//! a longer run is one command (docs/testing.md):
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz_parsers`.

use std::io::Cursor;

use proptest::prelude::*;
use ringgate::ingest::event::build::build;
use ringgate::ingest::event::decode::decode;
use ringgate::ingest::event::payload::{EvmError, ExecEvent, RecordError};
use ringgate::model::kind::EventType;
use ringgate::tools::synth::{Generator, SynthOptions};
use ringgate::wire::http::{parse_request, route, Parsed, RequestLimits, WsQuery};
use ringgate::wire::subscription::channel::Channel;
use ringgate::wire::subscription::{parse_client_message, ClientMessage, SubscriptionLimits};
use ringgate::wire::ws::{Decoded, DecoderLimits, FrameDecoder};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

// ---------------------------------------------------------------- ring payload decoder

/// `build(decode(bytes))`, or `None` when the decoder refuses the bytes.
fn canonical(code: u16, bytes: &[u8]) -> Option<Vec<u8>> {
    let event = decode(code, bytes).ok()?;
    let mut out = Vec::new();
    build(&event, &mut out).expect("whatever decodes can be built");
    Some(out)
}

/// One payload of each of the first `n` events of the seeded synthetic chain.
fn synthetic_payloads(n: usize) -> Vec<(u16, Vec<u8>)> {
    let mut g = Generator::new(SynthOptions {
        seed: 7,
        ..SynthOptions::default()
    });
    (0..n)
        .map(|_| {
            let e = g.next_event();
            (e.event_type.code(), e.payload.to_vec())
        })
        .collect()
}

#[test]
fn every_synthetic_payload_round_trips_byte_for_byte() {
    let payloads = synthetic_payloads(20_000);
    let mut kinds = std::collections::BTreeSet::new();
    for (code, bytes) in &payloads {
        let back = canonical(*code, bytes).expect("the synthetic chain is valid");
        assert_eq!(&back, bytes, "{:?}", EventType::from_code(*code));
        kinds.insert(*code);
    }
    // The synthetic chain never emits RECORD_ERROR, TXN_REJECT or EVM_ERROR (no writer
    // overflow, no rejected transactions, no EVM errors) and rarely BLOCK_REJECT: those are
    // built from typed values below. NONE (code 0) is never a valid event.
    let missing: Vec<&str> = EventType::ALL
        .iter()
        .filter(|t| !kinds.contains(&t.code()))
        .map(|t| t.spec_name())
        .collect();
    assert_eq!(
        missing,
        [
            "NONE",
            "RECORD_ERROR",
            "BLOCK_REJECT",
            "TXN_REJECT",
            "EVM_ERROR"
        ]
    );
}

proptest! {
    #[test]
    fn kinds_the_chain_never_emits_round_trip_from_typed_values(
        reject in any::<u32>(),
        domain_id in any::<u64>(),
        status_code in any::<i64>(),
        error_type in 0u16..4,
        dropped in 0u16..26,
        truncated in proptest::collection::vec(any::<u8>(), 0..64),
        requested in any::<u64>(),
    ) {
        let events = [
            ExecEvent::BlockReject(reject),
            ExecEvent::TxnReject(reject),
            ExecEvent::EvmError(EvmError { domain_id, status_code }),
            ExecEvent::RecordError(RecordError {
                error_type,
                dropped_event_type: dropped,
                truncated_payload_size: truncated.len() as u32,
                requested_payload_size: requested,
                truncated: &truncated,
            }),
        ];
        for event in events {
            let mut bytes = Vec::new();
            build(&event, &mut bytes).expect("a typed event builds");
            let code = event.event_type().code();
            prop_assert_eq!(decode(code, &bytes).ok(), Some(event));
            prop_assert_eq!(canonical(code, &bytes), Some(bytes));
        }
    }
}

proptest! {
    #[test]
    fn the_payload_decoder_never_panics_and_what_it_accepts_is_canonical(
        code in 0u16..32,
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        if let Some(once) = canonical(code, &bytes) {
            let twice = canonical(code, &once);
            prop_assert_eq!(Some(once), twice);
        }
    }

    #[test]
    fn mutated_synthetic_payloads_never_panic_the_decoder(
        pick in 0usize..2_000,
        cut in 0usize..600,
        flip in proptest::collection::vec((0usize..600, any::<u8>()), 0..8),
        extra in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        thread_local! {
            static PAYLOADS: Vec<(u16, Vec<u8>)> = synthetic_payloads(2_000);
        }
        let (code, mut bytes) = PAYLOADS.with(|p| p[pick].clone());
        for (at, x) in flip {
            if let Some(b) = bytes.get_mut(at) {
                *b ^= x;
            }
        }
        bytes.truncate(cut.max(bytes.len().saturating_sub(cut)));
        bytes.extend_from_slice(&extra);
        if let Some(once) = canonical(code, &bytes) {
            prop_assert_eq!(Some(once.clone()), canonical(code, &once));
        }
    }
}

// ---------------------------------------------------------------- WebSocket frame decoder

/// A client frame as tungstenite formats it: header, then the payload masked with `mask`.
fn tungstenite_frame(opcode: OpCode, fin: bool, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        is_final: fin,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: Some(mask),
    };
    let mut out = Vec::new();
    header
        .format(payload.len() as u64, &mut out)
        .expect("formatting into a Vec");
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// What the decoder made of a buffer: (kind, payload, bytes consumed).
type Outcome = (&'static str, Vec<u8>, usize);

/// Feeds `bytes` to a fresh decoder in chunks ending at `cuts`, as a session's reads would;
/// returns the first complete outcome.
fn decode_chunked(bytes: &[u8], cuts: &[usize]) -> Result<Option<Outcome>, String> {
    let mut d = FrameDecoder::new(DecoderLimits::default());
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    ends.push(bytes.len());
    ends.sort_unstable();
    for end in ends {
        match d.decode(&bytes[..end]) {
            Err(e) => return Err(e.to_string()),
            Ok(Decoded::NeedMore) => continue,
            Ok(Decoded::Text { text, consumed }) => {
                return Ok(Some(("text", text.as_bytes().to_vec(), consumed)))
            }
            Ok(Decoded::Ping { payload, consumed }) => {
                return Ok(Some(("ping", payload.to_vec(), consumed)))
            }
            Ok(Decoded::Pong { consumed }) => return Ok(Some(("pong", Vec::new(), consumed))),
            Ok(Decoded::Close { consumed, .. }) => {
                return Ok(Some(("close", Vec::new(), consumed)))
            }
            Ok(Decoded::Partial { consumed }) => {
                return Ok(Some(("partial", Vec::new(), consumed)))
            }
        }
    }
    Ok(None)
}

proptest! {
    #[test]
    fn text_and_ping_frames_tungstenite_formats_decode_to_the_same_payload(
        text in "\\PC{0,300}",
        long in 0usize..3,
        mask in any::<[u8; 4]>(),
        ping in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        // Exercise the 7-bit, 16-bit and 64-bit length forms (control frames stay ≤ 125).
        let body = match long {
            0 => text.clone(),
            1 => text.repeat(1 + 200 / (text.len() + 1)),
            _ => text.repeat(1 + 70_000 / (text.len() + 1)),
        };
        let (opcode, expect_kind, payload) = if ping {
            let p: Vec<u8> = body.bytes().take(125).collect();
            (OpCode::Control(Control::Ping), "ping", p)
        } else {
            (OpCode::Data(Data::Text), "text", body.into_bytes())
        };
        let frame = tungstenite_frame(opcode, true, mask, &payload);
        let got = decode_chunked(&frame, &cuts);
        if payload.len() > DecoderLimits::default().max_message_bytes {
            prop_assert!(got.is_err(), "an oversized message must be refused (1009)");
        } else {
            let len = frame.len();
            prop_assert_eq!(got, Ok(Some((expect_kind, payload, len))));
        }
    }

    #[test]
    fn the_frame_decoder_agrees_with_tungstenite_on_every_header_it_parses(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let ours = decode_chunked(&bytes, &[]);
        let theirs = FrameHeader::parse(&mut Cursor::new(&bytes));
        match (&ours, theirs) {
            // A complete frame we decoded must be one tungstenite parses the same way.
            (Ok(Some((kind, _, consumed))), Ok(Some((h, len)))) => {
                prop_assert!(h.mask.is_some(), "we accepted an unmasked client frame");
                prop_assert!(!h.rsv1 && !h.rsv2 && !h.rsv3);
                let expected = match h.opcode {
                    OpCode::Data(Data::Text) if h.is_final => "text",
                    OpCode::Data(Data::Text) | OpCode::Data(Data::Continue) => "partial",
                    OpCode::Control(Control::Ping) => "ping",
                    OpCode::Control(Control::Pong) => "pong",
                    OpCode::Control(Control::Close) => "close",
                    other => return Err(TestCaseError::fail(format!("accepted {other:?}"))),
                };
                prop_assert_eq!(*kind, expected);
                // The same frame boundary: header, then exactly the announced payload.
                prop_assert_eq!(*consumed as u64, h.len(len) as u64 + len);
            }
            (Ok(Some(_)), other) => {
                return Err(TestCaseError::fail(format!(
                    "we decoded a frame tungstenite does not parse: {other:?}"
                )));
            }
            // Needing more bytes, or refusing with a close code, are both fine answers to
            // noise; what matters is that neither side panicked.
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- client messages and queries

const NAMES: &[&str] = &[
    "BlockStart",
    "BlockEnd",
    "TxnHeaderStart",
    "TxnLog",
    "TxnCallFrame",
    "AccountAccess",
    "StorageAccess",
    "NativeTransfer",
    "TPS",
    "Lifecycle",
    "ContentionData",
    "TopAccesses",
    "Nope",
    "",
    "txnlog",
];

fn json_str(s: &str) -> String {
    format!("{s:?}")
}

fn subscribe_text() -> impl Strategy<Value = String> {
    let name = proptest::sample::select(NAMES).prop_map(json_str);
    let names = proptest::collection::vec(name, 0..6).prop_map(|v| v.join(","));
    let stage =
        proptest::sample::select(&["Proposed", "Voted", "Finalized", "Verified", "Bad"][..]);
    let hex = "0x[0-9a-f]{0,44}";
    (names, proptest::option::of(stage), proptest::option::of(hex), any::<u8>()).prop_map(
        |(names, stage, address, form)| match form % 4 {
            0 => format!("{{\"subscribe\":[{names}]}}"),
            1 => format!(
                "{{\"subscribe\":{{\"events\":[{names}]{}}}}}",
                stage.map(|s| format!(",\"min_stage\":\"{s}\"")).unwrap_or_default()
            ),
            2 => format!(
                "{{\"subscribe\":{{\"events\":[{names}],\"filters\":[{{\"event_name\":\"TxnLog\",\
                 \"field_filters\":[{{\"field\":\"address\",\"filter\":{{\"values\":[{}]}}}}]}}]}}}}",
                address.map(|a| json_str(&a)).unwrap_or_default()
            ),
            _ => format!("{{\"subscribe\":{names}}}"),
        },
    )
}

proptest! {
    #[test]
    fn the_client_message_parser_never_panics_on_any_text(text in "\\PC{0,400}") {
        for channel in Channel::ALL {
            let _ = parse_client_message(&text, channel, &SubscriptionLimits::default());
        }
    }

    #[test]
    fn subscribe_shaped_json_parses_or_is_refused_and_normal_forms_reparse_to_themselves(
        text in subscribe_text(),
    ) {
        let limits = SubscriptionLimits::default();
        for channel in Channel::ALL {
            if let Ok(ClientMessage::Subscribe(sub)) = parse_client_message(&text, channel, &limits) {
                // The acknowledged, normalized names are themselves a valid simple subscribe
                // on the same channel, selecting the same names.
                let names: Vec<String> = sub.names().map(json_str).collect();
                let again = format!("{{\"subscribe\":[{}]}}", names.join(","));
                match parse_client_message(&again, channel, &limits) {
                    Ok(ClientMessage::Subscribe(back)) => {
                        let a: Vec<&str> = sub.names().collect();
                        let b: Vec<&str> = back.names().collect();
                        prop_assert_eq!(a, b);
                    }
                    other => {
                        return Err(TestCaseError::fail(format!("{again} -> {other:?}")));
                    }
                }
            }
        }
    }

    #[test]
    fn the_request_head_parser_and_router_never_panic(
        path in "/[a-z0-9/_]{0,30}",
        query in "[a-z_=&%0-9,]{0,60}",
        junk in proptest::collection::vec(any::<u8>(), 0..300),
        headers in proptest::collection::vec(("[A-Za-z-]{1,20}", "[ -~]{0,40}"), 0..10),
    ) {
        let limits = RequestLimits::default();
        let _ = parse_request(&junk, &limits);
        let mut head = format!("GET {path}?{query} HTTP/1.1\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if let Ok(Parsed::Complete(request)) = parse_request(head.as_bytes(), &limits) {
            let _ = route(&request);
        }
    }

    #[test]
    fn the_url_query_parser_never_panics_and_keeps_what_it_accepts(
        resume in proptest::option::of(any::<u64>()),
        epoch in proptest::option::of(any::<u64>()),
        junk in "[a-z_=&%0-9,]{0,60}",
    ) {
        let mut q = String::new();
        if let Some(r) = resume {
            q.push_str(&format!("resume_from={r}&"));
        }
        if let Some(e) = epoch {
            q.push_str(&format!("epoch={e}&"));
        }
        let clean = WsQuery::parse(q.trim_end_matches('&'));
        let parsed = clean.expect("well-formed numbers parse");
        prop_assert_eq!(parsed.resume_from, resume);
        prop_assert_eq!(parsed.epoch, epoch);
        let _ = WsQuery::parse(&junk);
        let _ = WsQuery::parse(&format!("{q}{junk}"));
    }
}
