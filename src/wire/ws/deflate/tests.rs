//! Unit tests of permessage-deflate: offer negotiation (accepted, declined, client order),
//! messages that round-trip and inflate on their own (no context takeover), the cache of
//! identical payloads, client messages of any window size, decompression bombs and garbage,
//! RSV1 handling in the frame decoder (fragments, 1009), and which frames get compressed.

use super::*;
use crate::wire::ws::{Decoded, DecoderLimits, FrameDecoder};

fn agreed(offer: &str) -> Option<String> {
    negotiate(Some(offer)).map(|a| a.header_value())
}

const BOTH: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

#[test]
fn the_usual_client_offers_are_accepted_without_context_takeover_either_way() {
    // Python websockets' and Node ws's default offer; a browser's; a bare one.
    for offer in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=15",
        "permessage-deflate",
        "PerMessage-Deflate ; Client_Max_Window_Bits",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; client_max_window_bits=\"10\"",
    ] {
        assert_eq!(agreed(offer).as_deref(), Some(BOTH), "{offer}");
    }
    assert_eq!(
        agreed("permessage-deflate; server_max_window_bits=15").as_deref(),
        Some(&*format!("{BOTH}; server_max_window_bits=15"))
    );
}

#[test]
fn offers_we_cannot_honour_or_that_are_malformed_are_declined() {
    for offer in [
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=x",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; mystery",
        "x-webkit-deflate-frame",
        "",
    ] {
        assert_eq!(agreed(offer), None, "{offer}");
    }
    assert_eq!(negotiate(None), None);
}

#[test]
fn the_first_acceptable_offer_in_the_clients_order_wins() {
    let offers = "permessage-deflate; server_max_window_bits=10, \
                  permessage-deflate; server_max_window_bits=15, permessage-deflate";
    assert_eq!(
        agreed(offers).as_deref(),
        Some(&*format!("{BOTH}; server_max_window_bits=15"))
    );
    assert_eq!(
        agreed("foo, permessage-deflate; client_max_window_bits").as_deref(),
        Some(BOTH)
    );
}

fn sample_json(n: usize) -> Vec<u8> {
    let mut s = String::from("{\"server_seqno\":9,\"Events\":[");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"event_name\":\"TXN_LOG\",\"block_number\":{},\"txn_idx\":{i},\
             \"payload\":{{\"address\":\"0x{:040x}\",\"topics\":[\"0x{:064x}\"]}}}}",
            1000 + i / 7,
            i * 31,
            i * 17
        ));
    }
    s.push_str("]}");
    s.into_bytes()
}

#[test]
fn a_message_round_trips_and_is_smaller() {
    let mut d = Deflater::default();
    for payload in [Vec::new(), b"{}".to_vec(), sample_json(1), sample_json(200)] {
        let compressed = d.compress(&payload).to_vec();
        assert!(
            !compressed.ends_with(&SYNC_TAIL),
            "the sync tail is stripped"
        );
        assert_eq!(inflate(&compressed, 1 << 20).unwrap(), payload);
        if payload.len() > 1000 {
            assert!(compressed.len() * 3 < payload.len(), "{}", compressed.len());
        }
    }
}

#[test]
fn each_message_is_independent_of_the_ones_before_it() {
    // No context takeover: a message inflates alone, and compresses to the same bytes
    // whatever the compressor did before (what lets one compression serve every session).
    let (a, b) = (sample_json(50), sample_json(51));
    let mut first = Deflater::default();
    let b_alone = first.compress(&b).to_vec();
    let mut second = Deflater::default();
    second.compress(&a);
    let b_after_a = second.compress(&b).to_vec();
    assert_eq!(b_alone, b_after_a);
    assert_eq!(inflate(&b_after_a, 1 << 20).unwrap(), b);
}

#[test]
fn identical_payloads_are_compressed_once_and_large_ones_are_not_cached() {
    let mut d = Deflater::default();
    let p = sample_json(20);
    let once = d.compress(&p).to_vec();
    for _ in 0..5 {
        assert_eq!(d.compress(&p), once.as_slice());
    }
    assert_eq!((d.stats.compressed, d.stats.reused), (1, 5));
    // Past the cache's payload cap: compressed each time, and never answered for another
    // payload (an empty one after it must not match the large one's entry).
    let big = sample_json(8000);
    assert!(big.len() > CACHE_MAX_PAYLOAD);
    let big_c = d.compress(&big).to_vec();
    assert_eq!(inflate(&big_c, 1 << 22).unwrap(), big);
    let empty = d.compress(b"").to_vec();
    assert_eq!(inflate(&empty, 16).unwrap(), b"");
    // More distinct payloads than entries: the oldest is evicted, results stay right.
    for i in 0..(CACHE_ENTRIES + 3) {
        let p = sample_json(i + 1);
        let c = d.compress(&p).to_vec();
        assert_eq!(inflate(&c, 1 << 20).unwrap(), p);
    }
    assert!(d.cache.len() <= CACHE_ENTRIES);
}

#[test]
fn client_messages_compressed_with_any_window_size_inflate() {
    let payload = sample_json(100);
    for window_bits in [9u8, 12, 15] {
        let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(
            6,
            -i32::from(window_bits),
            0,
        ));
        let mut out = Vec::new();
        deflate_into(&mut c, &payload, &mut out);
        assert_eq!(inflate(&out, 1 << 20).unwrap(), payload, "{window_bits}");
    }
}

#[test]
fn a_decompression_bomb_stops_at_the_limit_and_garbage_is_refused() {
    let zeros = vec![0u8; 4 << 20];
    let mut d = Deflater::default();
    let bomb = d.compress(&zeros).to_vec();
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    assert_eq!(
        inflate(&bomb, 64 * 1024),
        Err(WsError::InflatedTooLarge { limit: 64 * 1024 })
    );
    // Reserved block type 11: invalid deflate.
    assert_eq!(inflate(&[0xff, 0xff, 0xff], 1024), Err(WsError::BadDeflate));
}

/// A masked client frame.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut f = vec![b0];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    f
}

#[test]
fn the_decoder_inflates_rsv1_messages_only_when_negotiated() {
    let text = br#"{"subscribe":{"events":["BlockStart"]}}"#;
    let compressed = Deflater::default().compress(text).to_vec();
    let frame = client_frame(0x80 | 0x40 | 0x1, &compressed);
    let mut on = FrameDecoder::new(DecoderLimits::default()).with_deflate(true);
    match on.decode(&frame).unwrap() {
        Decoded::Text { text: t, consumed } => {
            assert_eq!((t.as_bytes(), consumed), (&text[..], frame.len()))
        }
        other => panic!("{other:?}"),
    }
    // An uncompressed message on the same session still reads as it is.
    let plain = client_frame(0x81, text);
    assert!(matches!(on.decode(&plain), Ok(Decoded::Text { .. })));
    let mut off = FrameDecoder::new(DecoderLimits::default());
    assert_eq!(off.decode(&frame), Err(WsError::ReservedBits));
}

#[test]
fn a_fragmented_compressed_message_carries_rsv1_on_its_first_frame_only() {
    let text = sample_json(10);
    let compressed = Deflater::default().compress(&text).to_vec();
    let (a, b) = compressed.split_at(compressed.len() / 2);
    let mut dec = FrameDecoder::new(DecoderLimits::default()).with_deflate(true);
    let first = client_frame(0x40 | 0x1, a);
    assert!(matches!(dec.decode(&first), Ok(Decoded::Partial { .. })));
    let second = client_frame(0x80, b);
    match dec.decode(&second).unwrap() {
        Decoded::Text { text: t, .. } => assert_eq!(t.as_bytes(), text.as_slice()),
        other => panic!("{other:?}"),
    }
    // RSV1 on a continuation or a control frame is a protocol error.
    let mut dec = FrameDecoder::new(DecoderLimits::default()).with_deflate(true);
    dec.decode(&first).unwrap();
    assert_eq!(
        dec.decode(&client_frame(0x80 | 0x40, b)),
        Err(WsError::ReservedBits)
    );
    let mut dec = FrameDecoder::new(DecoderLimits::default()).with_deflate(true);
    assert_eq!(
        dec.decode(&client_frame(0x80 | 0x40 | 0x9, b"")),
        Err(WsError::ReservedBits)
    );
}

#[test]
fn a_bomb_from_a_client_closes_with_1009() {
    let bomb = Deflater::default().compress(&vec![b' '; 4 << 20]).to_vec();
    assert!(bomb.len() < 60 * 1024);
    let mut dec = FrameDecoder::new(DecoderLimits::default()).with_deflate(true);
    let err = dec
        .decode(&client_frame(0x80 | 0x40 | 0x1, &bomb))
        .unwrap_err();
    assert_eq!(err.close_code().code(), 1009, "{err}");
}

#[test]
fn compress_frames_compresses_data_frames_and_keeps_control_frames() {
    use crate::wire::ws::{write_close, write_frame, CloseCode, OpCode};
    let big = sample_json(30);
    let mut plain = Vec::new();
    write_frame(OpCode::Text, &big, &mut plain);
    write_frame(OpCode::Pong, b"hi", &mut plain);
    write_frame(OpCode::Text, b"{}", &mut plain);
    write_close(CloseCode::Normal, "bye", &mut plain);
    let mut out = Vec::new();
    Deflater::default().compress_frames(&plain, &mut out);
    // Walk the result: (first byte, payload).
    let mut frames = Vec::new();
    let mut rest = out.as_slice();
    while let Some((len, hl)) = read_payload_len(rest) {
        let len = len as usize;
        frames.push((rest[0], rest[hl..hl + len].to_vec()));
        rest = &rest[hl + len..];
    }
    assert!(rest.is_empty());
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[0].0, 0xC1);
    assert_eq!(inflate(&frames[0].1, 1 << 20).unwrap(), big);
    assert_eq!(frames[1], (0x8A, b"hi".to_vec()));
    assert_eq!(frames[2].0, 0xC1);
    assert_eq!(inflate(&frames[2].1, 1 << 20).unwrap(), b"{}");
    assert_eq!(frames[3].0, 0x88);
    assert!(out.len() < plain.len());
}
