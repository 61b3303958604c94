//! The load client's WebSocket protocol core: the client handshake and server-frame parsing,
//! sans-IO (bytes in, outcomes out), so the load client stays cheap and this part is unit
//! tested without sockets.
//!
//! Runs on the load client's threads. Inputs: bytes read from a connection. Outputs: the
//! handshake outcome, then frames (`Parsed::Frame` with the payload's byte range).
//!
//! Invariants: server frames are unmasked (RFC 6455 §5.1), client frames are masked. A masked
//! server frame, a reserved opcode or a length past [`MAX_FRAME_LEN`] is a protocol error,
//! reported and never a panic: the bytes come from the server under test.
//!
//! Opcodes and the length field are ringgate's ([`OpCode`], [`read_payload_len`]: wire format
//! only); the rest stays the client's own, because ringgate's decoder enforces the server's
//! policy for the other direction (masked, text-only, 64 KiB messages) and its writer writes
//! unmasked headers only, while this side takes unmasked large frames in and writes masked
//! frames out.

use std::ops::Range;

use ringgate::wire::ws::frame::read_payload_len;
/// WebSocket opcodes (ringgate's: the wire values are the same both ways).
pub use ringgate::wire::ws::OpCode;

/// The largest frame payload the load client accepts (old-style unbounded batches reach a few
/// MB; anything past this is treated as a broken server).
pub const MAX_FRAME_LEN: u64 = 256 * 1024 * 1024;

/// The fixed `Sec-WebSocket-Key` the load client sends (any 16 bytes, base64): the accept value
/// is checked against it, so a non-WebSocket responder is caught.
const CLIENT_KEY: &str = "cmluZ2dhdGUtYmVuY2gtMQ==";

/// Errors in what the server sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WsError {
    #[error("server handshake: {0}")]
    Handshake(String),
    #[error("server sent a masked frame")]
    MaskedServerFrame,
    #[error("server sent reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("server frame of {0} bytes exceeds the load client's limit")]
    TooLong(u64),
}

/// The HTTP upgrade request for `path` on `host` (e.g. `127.0.0.1:8443`).
pub fn handshake_request(host: &str, path: &str, deflate: bool) -> String {
    let offer = if deflate { DEFLATE_OFFER } else { "" };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    )
}

/// The permessage-deflate offer of a `--deflate` client (Python `websockets`' default).
const DEFLATE_OFFER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// A compressed message's text (RFC 7692 §7.2.2; the server takes no context over, so each
/// message inflates alone), or `None` if it does not inflate.
pub fn inflate(payload: &[u8]) -> Option<Vec<u8>> {
    ringgate::wire::ws::deflate::inflate(payload, MAX_FRAME_LEN as usize).ok()
}

/// Result of feeding the bytes read so far to [`parse_handshake_response`].
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// The response head is not complete yet.
    NeedMore,
    /// `101 Switching Protocols` with the right accept key; frames start at this offset.
    Done(usize),
}

/// Checks the server's upgrade response.
pub fn parse_handshake_response(buf: &[u8]) -> Result<Handshake, WsError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(Handshake::NeedMore),
        Ok(httparse::Status::Complete(len)) => {
            if resp.code != Some(101) {
                return Err(WsError::Handshake(format!(
                    "status {:?} {:?}",
                    resp.code, resp.reason
                )));
            }
            let expected = tungstenite::handshake::derive_accept_key(CLIENT_KEY.as_bytes());
            let accept = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                .map(|h| h.value);
            if accept != Some(expected.as_bytes()) {
                return Err(WsError::Handshake("wrong Sec-WebSocket-Accept".into()));
            }
            Ok(Handshake::Done(len))
        }
        Err(e) => Err(WsError::Handshake(e.to_string())),
    }
}

/// One parsed server frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1: a permessage-deflate compressed message.
    pub rsv1: bool,
    pub opcode: OpCode,
    /// Payload position in the buffer given to [`parse_frame`].
    pub payload: Range<usize>,
}

/// Result of [`parse_frame`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The buffer holds no complete frame yet.
    NeedMore,
    /// A complete frame; the next one starts at `frame.payload.end`.
    Frame(Frame),
}

/// Parses the server frame at the start of `buf`.
pub fn parse_frame(buf: &[u8]) -> Result<Parsed, WsError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(Parsed::NeedMore);
    };
    let opcode = match b0 & 0x0f {
        0x0 => OpCode::Continuation,
        0x1 => OpCode::Text,
        0x2 => OpCode::Binary,
        0x8 => OpCode::Close,
        0x9 => OpCode::Ping,
        0xa => OpCode::Pong,
        other => return Err(WsError::ReservedOpcode(other)),
    };
    if b1 & 0x80 != 0 {
        return Err(WsError::MaskedServerFrame);
    }
    let Some((len, header)) = read_payload_len(buf) else {
        return Ok(Parsed::NeedMore);
    };
    if len > MAX_FRAME_LEN {
        return Err(WsError::TooLong(len));
    }
    // Bounded by MAX_FRAME_LEN above, so it fits usize on 64-bit.
    let end = header + len as usize;
    if buf.len() < end {
        return Ok(Parsed::NeedMore);
    }
    Ok(Parsed::Frame(Frame {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        opcode,
        payload: header..end,
    }))
}

/// A masked client frame (FIN set) carrying `payload`. The mask is fixed: masking exists to
/// protect proxies, not to hide anything, and the server must unmask whatever key it gets.
pub fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x8e];
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode.bits());
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_each_length_form_parse_only_when_complete() {
        for len in [0usize, 125, 126, 65535, 65536, 200_000] {
            let payload = vec![b'x'; len];
            // Written by ringgate's own server-frame writer.
            let mut f = Vec::new();
            ringgate::wire::ws::write_frame(OpCode::Text, &payload, &mut f);
            for cut in [0, 1, f.len() / 2, f.len() - 1] {
                if cut < f.len() {
                    assert_eq!(
                        parse_frame(&f[..cut]),
                        Ok(Parsed::NeedMore),
                        "len {len} cut {cut}"
                    );
                }
            }
            let Ok(Parsed::Frame(frame)) = parse_frame(&f) else {
                panic!("complete frame of {len} not parsed");
            };
            assert_eq!(frame.opcode, OpCode::Text);
            assert!(frame.fin);
            assert_eq!(frame.payload.len(), len);
            assert_eq!(frame.payload.end, f.len());
        }
    }

    #[test]
    fn masked_server_frames_and_reserved_opcodes_are_errors() {
        assert_eq!(parse_frame(&[0x81, 0x80]), Err(WsError::MaskedServerFrame));
        assert_eq!(parse_frame(&[0x83, 0x00]), Err(WsError::ReservedOpcode(3)));
    }

    #[test]
    fn client_frames_round_trip_through_tungstenite_server_side() {
        let frame = client_frame(OpCode::Text, br#"{"subscribe":["TxnLog"]}"#);
        let mut cursor = std::io::Cursor::new(frame);
        let mut ws = tungstenite::WebSocket::from_raw_socket(
            ReadWrite(&mut cursor),
            tungstenite::protocol::Role::Server,
            None,
        );
        let msg = ws.read().expect("tungstenite accepts the client frame");
        assert_eq!(
            msg.into_text().unwrap().as_str(),
            r#"{"subscribe":["TxnLog"]}"#
        );
    }

    /// Read + Write over a cursor for the round-trip test (tungstenite needs both).
    struct ReadWrite<'a>(&'a mut std::io::Cursor<Vec<u8>>);
    impl std::io::Read for ReadWrite<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl std::io::Write for ReadWrite<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn handshake_accepts_a_correct_101_and_rejects_others() {
        let accept = tungstenite::handshake::derive_accept_key(CLIENT_KEY.as_bytes());
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let head_len = ok.len();
        let mut with_frame = ok.clone().into_bytes();
        with_frame.extend_from_slice(&[0x81, 0x00]);
        assert_eq!(
            parse_handshake_response(&with_frame),
            Ok(Handshake::Done(head_len))
        );
        assert_eq!(
            parse_handshake_response(&ok.as_bytes()[..20]),
            Ok(Handshake::NeedMore)
        );
        let bad = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            parse_handshake_response(bad.as_bytes()),
            Err(WsError::Handshake(_))
        ));
    }

    #[test]
    fn a_compressed_frame_is_marked_and_inflates_to_its_text() {
        let text = br#"{"server_seqno":7,"Events":[{"event_name":"TxnLog"}]}"#;
        let mut plain = Vec::new();
        ringgate::wire::ws::write_frame(OpCode::Text, text, &mut plain);
        let mut wire = Vec::new();
        ringgate::wire::ws::deflate::Deflater::default().compress_frames(&plain, &mut wire);
        let Ok(Parsed::Frame(frame)) = parse_frame(&wire) else {
            panic!("compressed frame not parsed");
        };
        assert!(frame.rsv1 && frame.fin);
        assert_eq!(inflate(&wire[frame.payload]).as_deref(), Some(&text[..]));
        let Ok(Parsed::Frame(frame)) = parse_frame(&plain) else {
            panic!("plain frame not parsed");
        };
        assert!(!frame.rsv1);
        assert!(handshake_request("h", "/", true).contains("permessage-deflate"));
        assert!(!handshake_request("h", "/", false).contains("Extensions"));
    }
}
