//! Unit tests of the client-frame decoder and server frame writers.

use super::*;

/// A masked client frame, as a browser would send it.
fn client_frame(b0: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    out
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn text(payload: &[u8]) -> Vec<u8> {
    client_frame(0x81, payload, KEY)
}

fn decode_err(bytes: &[u8]) -> WsError {
    FrameDecoder::default().decode(bytes).unwrap_err()
}

#[test]
fn decodes_a_masked_text_frame_at_every_length_class() {
    for len in [0usize, 5, 125, 126, 300, 65535, 65536 - 1] {
        let payload = "a".repeat(len);
        let bytes = text(payload.as_bytes());
        let mut d = FrameDecoder::default();
        match d.decode(&bytes).unwrap() {
            Decoded::Text { text, consumed } => {
                assert_eq!(text, payload);
                assert_eq!(consumed, bytes.len());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn needs_more_at_every_prefix_and_consumes_nothing() {
    let bytes = text(br#"{"subscribe":["TxnLog"]}"#);
    let mut d = FrameDecoder::default();
    for cut in 0..bytes.len() {
        assert_eq!(d.decode(&bytes[..cut]).unwrap(), Decoded::NeedMore, "{cut}");
    }
    assert_eq!(d.decode(&bytes).unwrap().consumed(), bytes.len());
}

#[test]
fn reassembles_fragments_with_a_ping_in_between() {
    let mut stream = client_frame(0x01, b"{\"subscribe\":", KEY);
    stream.extend(client_frame(0x89, b"hi", [1, 2, 3, 4]));
    stream.extend(client_frame(0x00, b"[\"TxnLog\"", [9, 8, 7, 6]));
    stream.extend(client_frame(0x80, b"]}", [5, 5, 5, 5]));
    stream.extend(text(b"next"));
    let mut d = FrameDecoder::default();
    let mut seen = Vec::new();
    let mut buf = &stream[..];
    while !buf.is_empty() {
        let decoded = d.decode(buf).unwrap();
        let n = decoded.consumed();
        seen.push(format!("{decoded:?}"));
        if let Decoded::Text { text, .. } = decoded {
            seen.push(text.to_owned());
        }
        buf = &buf[n..];
    }
    assert!(seen[0].starts_with("Partial"));
    assert!(seen[1].contains("Ping") && seen[1].contains("[104, 105]"));
    assert!(seen[2].starts_with("Partial"));
    assert_eq!(seen[4], r#"{"subscribe":["TxnLog"]}"#);
    assert_eq!(seen[6], "next");
}

#[test]
fn close_frames_parse_code_and_reason() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    let bytes = client_frame(0x88, &payload, KEY);
    let mut d = FrameDecoder::default();
    assert_eq!(
        d.decode(&bytes).unwrap(),
        Decoded::Close {
            code: Some(1000),
            reason: "bye",
            consumed: bytes.len()
        }
    );
    let empty = client_frame(0x88, b"", KEY);
    assert!(matches!(
        d.decode(&empty).unwrap(),
        Decoded::Close { code: None, .. }
    ));
    let pong = client_frame(0x8A, b"x", KEY);
    assert_eq!(d.decode(&pong).unwrap(), Decoded::Pong { consumed: 7 });
}

#[test]
fn every_error_maps_to_its_close_code() {
    let mut unmasked = text(b"hi");
    unmasked[1] &= 0x7f;
    let mut huge_len = vec![0x81, 0x80 | 127];
    huge_len.extend_from_slice(&u64::MAX.to_be_bytes());
    let too_big = client_frame(0x81, &vec![b'a'; 64 * 1024 + 1], KEY);
    let cases: Vec<(Vec<u8>, WsError, u16)> = vec![
        (unmasked, WsError::Unmasked, 1002),
        (client_frame(0xC1, b"x", KEY), WsError::ReservedBits, 1002),
        (
            client_frame(0x83, b"x", KEY),
            WsError::ReservedOpcode(3),
            1002,
        ),
        (
            client_frame(0x8B, b"x", KEY),
            WsError::ReservedOpcode(0xB),
            1002,
        ),
        (
            client_frame(0x89, &[0; 126], KEY),
            WsError::ControlTooLong(126),
            1002,
        ),
        (
            client_frame(0x09, b"x", KEY),
            WsError::FragmentedControl,
            1002,
        ),
        (
            client_frame(0x80, b"x", KEY),
            WsError::UnexpectedContinuation,
            1002,
        ),
        (huge_len, WsError::BadLength, 1002),
        (
            client_frame(0x88, &[3], KEY),
            WsError::BadClosePayload,
            1002,
        ),
        (
            client_frame(0x88, &1005u16.to_be_bytes(), KEY),
            WsError::BadCloseCode(1005),
            1002,
        ),
        (
            too_big,
            WsError::MessageTooLarge {
                size: 64 * 1024 + 1,
                limit: 64 * 1024,
            },
            1009,
        ),
        (text(&[0xff, 0xfe]), WsError::InvalidUtf8, 1007),
        (client_frame(0x82, b"\x00\x01", KEY), WsError::Binary, 1003),
    ];
    for (bytes, err, code) in cases {
        let got = decode_err(&bytes);
        assert_eq!(got, err);
        assert_eq!(got.close_code().code(), code, "{err}");
    }
    assert_eq!(WsError::PingFlood { per_sec: 10 }.close_code().code(), 1008);

    let mut d = FrameDecoder::default();
    let first = client_frame(0x01, b"ab", KEY);
    assert!(matches!(d.decode(&first).unwrap(), Decoded::Partial { .. }));
    assert_eq!(d.decode(&text(b"x")).unwrap_err(), WsError::Interleaved);

    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.push(0xff);
    assert_eq!(
        decode_err(&client_frame(0x88, &bad_reason, KEY)),
        WsError::InvalidUtf8
    );
}

#[test]
fn oversize_is_refused_from_the_header_before_the_payload_arrives() {
    let bytes = client_frame(0x81, &vec![b'a'; 70_000], KEY);
    let err = decode_err(&bytes[..14]);
    assert_eq!(err.close_code().code(), 1009);
    let mut d = FrameDecoder::new(DecoderLimits {
        max_message_bytes: 10,
        binary_as_text: false,
    });
    assert!(matches!(
        d.decode(&client_frame(0x01, b"123456", KEY)).unwrap(),
        Decoded::Partial { .. }
    ));
    assert_eq!(
        d.decode(&client_frame(0x80, b"12345", KEY)).unwrap_err(),
        WsError::MessageTooLarge {
            size: 11,
            limit: 10
        }
    );
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias towards plausible headers so the deeper paths are exercised too.
        if let Some(b1) = bytes.get_mut(1) {
            if next() % 2 == 0 {
                *b1 |= 0x80;
            }
        }
        if let Some(b0) = bytes.get_mut(0) {
            if next() % 2 == 0 {
                *b0 = (*b0 & 0x8f) | 0x80;
            }
        }
        let mut d = FrameDecoder::default();
        let mut buf = &bytes[..];
        while let Ok(decoded) = d.decode(buf) {
            let n = decoded.consumed();
            if n == 0 {
                break;
            }
            assert!(n <= buf.len());
            buf = &buf[n..];
        }
    }
}

#[test]
fn server_headers_have_the_minimal_length_encoding() {
    for (len, expect) in [
        (0usize, vec![0x81, 0]),
        (125, vec![0x81, 125]),
        (126, vec![0x81, 126, 0, 126]),
        (65535, vec![0x81, 126, 0xff, 0xff]),
        (65536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let mut out = Vec::new();
        write_frame_header(OpCode::Text, len, &mut out);
        assert_eq!(out, expect);
        assert_eq!(frame_header_len(len), expect.len());
    }
    let mut out = Vec::new();
    write_frame(OpCode::Pong, b"hi", &mut out);
    assert_eq!(out, [0x8A, 2, b'h', b'i']);
}

#[test]
fn close_reason_is_cut_to_fit_a_control_frame() {
    let mut out = Vec::new();
    write_close(CloseCode::Policy, &"é".repeat(100), &mut out);
    assert_eq!(out[0], 0x88);
    let len = usize::from(out[1]);
    assert!(len <= 125);
    assert_eq!(out.len(), 2 + len);
    assert_eq!(u16::from_be_bytes([out[2], out[3]]), 1008);
    assert!(std::str::from_utf8(&out[4..]).is_ok());
}

#[test]
fn binary_messages_are_text_only_when_configured() {
    let bytes = client_frame(0x82, b"{\"id\":1}", KEY);
    assert_eq!(decode_err(&bytes).close_code().code(), 1003);
    let mut d = FrameDecoder::new(DecoderLimits {
        binary_as_text: true,
        ..DecoderLimits::default()
    });
    assert!(matches!(
        d.decode(&bytes).unwrap(),
        Decoded::Text {
            text: "{\"id\":1}",
            ..
        }
    ));
    let mut d = FrameDecoder::new(DecoderLimits {
        binary_as_text: true,
        ..DecoderLimits::default()
    });
    let bad = client_frame(0x82, &[0xff, 0xfe], KEY);
    assert_eq!(d.decode(&bad).unwrap_err().close_code().code(), 1007);
}
