//! Malformed payloads never panic the decoder or the encoder, and fail with the right
//! `DecodeError` kind: NONE, unknown codes, short payloads, trailing-length mismatches,
//! random bytes of every length for every type.

use ringgate::ingest::event::decode::{decode, DecodeError};
use ringgate::ingest::event::encoder::Encoder;
use ringgate::ingest::event::payload::layout;
use ringgate::ingest::ring::layout::Descriptor;
use ringgate::model::kind::DecodeErrorKind;
use ringgate::model::kind::EventType;
use ringgate::tools::synth::rng::Rng;
use sonic_rs::JsonValueTrait;

/// The fixed size of each type's payload.
fn fixed_size(ty: EventType) -> usize {
    match ty {
        EventType::RecordError => layout::RECORD_ERROR,
        EventType::BlockStart => layout::BLOCK_START,
        EventType::BlockReject | EventType::TxnReject => 4,
        EventType::BlockEnd => layout::BLOCK_END,
        EventType::BlockQc => layout::BLOCK_QC,
        EventType::BlockFinalized => layout::BLOCK_TAG,
        EventType::BlockVerified => layout::BLOCK_VERIFIED,
        EventType::TxnHeaderStart => layout::TXN_HEADER_START,
        EventType::TxnAccessListEntry => layout::TXN_ACCESS_LIST_ENTRY,
        EventType::TxnAuthListEntry => layout::TXN_AUTH_LIST_ENTRY,
        EventType::TxnEvmOutput => layout::TXN_EVM_OUTPUT,
        EventType::TxnLog => layout::TXN_LOG,
        EventType::TxnCallFrame => layout::TXN_CALL_FRAME,
        EventType::AccountAccessListHeader => layout::ACCOUNT_ACCESS_LIST_HEADER,
        EventType::AccountAccess => layout::ACCOUNT_ACCESS,
        EventType::StorageAccess => layout::STORAGE_ACCESS,
        EventType::EvmError => layout::EVM_ERROR,
        EventType::None
        | EventType::BlockPerfEvmEnter
        | EventType::BlockPerfEvmExit
        | EventType::TxnHeaderEnd
        | EventType::TxnPerfEvmEnter
        | EventType::TxnPerfEvmExit
        | EventType::TxnEnd => 0,
    }
}

#[test]
fn none_and_unknown_codes_are_typed_errors() {
    assert_eq!(decode(0, &[]), Err(DecodeError::NoneType));
    assert_eq!(
        decode(0, &[]).unwrap_err().kind(),
        DecodeErrorKind::NoneType
    );
    for code in [25u16, 26, 100, u16::MAX] {
        let e = decode(code, &[0; 64]).unwrap_err();
        assert_eq!(e, DecodeError::UnknownType { code });
        assert_eq!(e.kind().name(), "unknown_type");
    }
}

#[test]
fn every_truncation_of_a_valid_payload_is_short_and_every_extension_a_mismatch() {
    for ty in &EventType::ALL[1..] {
        let size = fixed_size(*ty);
        let valid = vec![0u8; size];
        assert!(decode(ty.code(), &valid).is_ok(), "{ty:?} zero payload");
        for cut in 0..size {
            let e = decode(ty.code(), &valid[..cut]).unwrap_err();
            assert_eq!(e.kind(), DecodeErrorKind::Short, "{ty:?} cut at {cut}");
        }
        let mut longer = valid.clone();
        longer.push(0);
        let e = decode(ty.code(), &longer).unwrap_err();
        assert_eq!(
            e.kind(),
            DecodeErrorKind::LengthMismatch,
            "{ty:?} one byte long"
        );
    }
}

#[test]
fn trailing_lengths_must_match_the_payload_size_exactly() {
    // TXN_LOG announcing 2 topics and 5 data bytes: needs exactly 32 + 64 + 5.
    let mut log = vec![0u8; 32];
    log[24] = 2;
    log[28..32].copy_from_slice(&5u32.to_le_bytes());
    log.extend_from_slice(&[0xaa; 69]);
    assert!(decode(18, &log).is_ok());
    assert_eq!(
        decode(18, &log[..log.len() - 1]),
        Err(DecodeError::LengthMismatch {
            event: EventType::TxnLog,
            got: 100,
            expected: 101
        })
    );
    // TXN_CALL_FRAME with lengths that overflow u64 when added: a mismatch, not a panic.
    let mut frame = vec![0u8; 128];
    frame[112..120].copy_from_slice(&u64::MAX.to_le_bytes());
    frame[120..128].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        decode(19, &frame).unwrap_err().kind(),
        DecodeErrorKind::LengthMismatch
    );
    // TXN_HEADER_START announcing u32::MAX blob hashes.
    let mut hdr = vec![0u8; 352];
    hdr[340..344].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode(10, &hdr).unwrap_err().kind(),
        DecodeErrorKind::LengthMismatch
    );
}

#[test]
fn record_error_accepts_both_forms_and_keeps_the_truncated_bytes() {
    let mut short = vec![0u8; 16];
    short[0] = 3; // MISSING_EVENT
    short[2] = 18;
    assert!(decode(1, &short).is_ok());

    let mut long = vec![0u8; 8192];
    long[0] = 1; // OVERFLOW_4GB
    long[2] = 19;
    long[4..8].copy_from_slice(&8176u32.to_le_bytes());
    long[8..16].copy_from_slice(&(5u64 << 32).to_le_bytes());
    long[16] = 0x77;
    match decode(1, &long).unwrap() {
        ringgate::ingest::event::payload::ExecEvent::RecordError(e) => {
            assert_eq!((e.error_type, e.dropped_event_type), (1, 19));
            assert_eq!(e.truncated_payload_size, 8176);
            assert_eq!(e.requested_payload_size, 5u64 << 32);
            assert_eq!(e.truncated.len(), 8176);
            assert_eq!(e.truncated[0], 0x77);
        }
        other => panic!("decoded as {other:?}"),
    }
    assert_eq!(
        decode(1, &long[..8000]).unwrap_err().kind(),
        DecodeErrorKind::LengthMismatch
    );
}

#[test]
fn random_payloads_of_every_type_never_panic_and_encode_to_valid_json() {
    let mut r = Rng::new(0xbad_c0de);
    let mut enc = Encoder::default();
    let mut buf = vec![0u8; 9000];
    let (mut ok, mut err) = (0u64, 0u64);
    for round in 0..20_000u64 {
        let code = r.below(27) as u16;
        let size = EventType::from_code(code).map(fixed_size).unwrap_or(0);
        // Lengths around the fixed size are the interesting ones.
        let len = match r.below(4) {
            0 => size,
            1 => size.saturating_sub(r.below(8) as usize),
            2 => size + r.below(300) as usize,
            _ => r.below(9000) as usize,
        };
        r.fill(&mut buf[..len]);
        let desc = Descriptor {
            seqno: round + 1,
            event_type: code,
            payload_size: len as u32,
            record_epoch_nanos: r.next_u64(),
            payload_buf_offset: 0,
            content_ext: [r.below(4), r.below(3), r.below(3), 0],
        };
        let _ = decode(code, &buf[..len]);
        match enc.encode(&desc, &buf[..len]) {
            Ok(e) => {
                ok += 1;
                let v: sonic_rs::Value = sonic_rs::from_slice(&e.json)
                    .unwrap_or_else(|x| panic!("{x}: {}", String::from_utf8_lossy(&e.json)));
                assert_eq!(v.get("seqno").and_then(|s| s.as_u64()), Some(round + 1));
            }
            Err(_) => err += 1,
        }
    }
    assert!(ok > 1000 && err > 1000, "ok {ok} err {err}");
    assert_eq!(enc.failures().total(), err);
}
