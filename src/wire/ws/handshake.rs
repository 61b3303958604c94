//! The WebSocket opening handshake (RFC 6455 §4.2), server side.
//!
//! Runs on shard cores, once per upgrade, after routing and admission. Input: the parsed
//! request head. Output: the `101 Switching Protocols` bytes, or a refusal response: 405 for
//! a method other than GET, 400 for a malformed handshake, 426 (with
//! `Sec-WebSocket-Version: 13`) for another protocol version or a plain HTTP request on a
//! WebSocket path. No subprotocol is negotiated; the one extension, permessage-deflate, is
//! negotiated by [`crate::wire::ws::deflate::negotiate`] and answered here.

use crate::wire::http::{Method, Request, Response, Status};
use crate::wire::ws::deflate::Agreed;

/// A valid upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// `Sec-WebSocket-Accept` value derived from the client's key.
    pub accept_key: String,
    /// permessage-deflate as agreed (set by the caller when the operator allows it).
    pub deflate: Option<Agreed>,
}

/// Why an upgrade request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("WebSocket upgrade must use GET")]
    NotGet,
    #[error("WebSocket upgrade needs HTTP/1.1")]
    NotHttp11,
    #[error("this path serves WebSocket only: send Upgrade: websocket")]
    NotUpgrade,
    #[error("Connection header must contain the upgrade token")]
    NoConnectionUpgrade,
    #[error("Sec-WebSocket-Key must be the base64 encoding of 16 bytes")]
    BadKey,
    #[error("unsupported Sec-WebSocket-Version (only 13)")]
    BadVersion,
}

impl HandshakeError {
    /// The refusal response.
    pub fn response(&self) -> Response {
        let status = match self {
            HandshakeError::NotGet => Status::MethodNotAllowed,
            HandshakeError::NotHttp11
            | HandshakeError::NoConnectionUpgrade
            | HandshakeError::BadKey => Status::BadRequest,
            HandshakeError::NotUpgrade | HandshakeError::BadVersion => Status::UpgradeRequired,
        };
        let r = Response::error(status, &self.to_string());
        match self {
            HandshakeError::NotGet => r.header("Allow", "GET"),
            HandshakeError::NotUpgrade | HandshakeError::BadVersion => r
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13"),
            _ => r,
        }
    }
}

fn has_token(list: &str, token: &str) -> bool {
    list.split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether `key` is base64 (standard alphabet, padded) of exactly 16 bytes: 22 symbols, the
/// last carrying only 2 data bits, then `==`.
fn is_key_of_16_bytes(key: &str) -> bool {
    let b = key.as_bytes();
    if b.len() != 24 || &b[22..] != b"==" {
        return false;
    }
    let sym = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    if !b[..22].iter().all(|&c| sym(c)) {
        return false;
    }
    // The 22nd symbol holds the last 2 bits of byte 16; its low 4 bits must be zero, so it is
    // one of A Q g w (values 0, 16, 32, 48).
    matches!(b[21], b'A' | b'Q' | b'g' | b'w')
}

/// Validates an upgrade request.
pub fn accept(req: &Request) -> Result<Accept, HandshakeError> {
    if req.method != Method::Get {
        return Err(HandshakeError::NotGet);
    }
    if req.minor_version != 1 {
        return Err(HandshakeError::NotHttp11);
    }
    let h = &req.headers;
    if !h
        .upgrade
        .as_deref()
        .is_some_and(|u| has_token(u, "websocket"))
    {
        return Err(HandshakeError::NotUpgrade);
    }
    if !h
        .connection
        .as_deref()
        .is_some_and(|c| has_token(c, "upgrade"))
    {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if h.sec_websocket_version.as_deref() != Some("13") {
        return Err(HandshakeError::BadVersion);
    }
    let key = h
        .sec_websocket_key
        .as_deref()
        .filter(|k| is_key_of_16_bytes(k))
        .ok_or(HandshakeError::BadKey)?;
    Ok(Accept {
        accept_key: tungstenite::handshake::derive_accept_key(key.as_bytes()),
        deflate: None,
    })
}

/// The `101 Switching Protocols` response bytes for an accepted upgrade.
pub fn switching_protocols(accept: &Accept) -> Vec<u8> {
    let extensions = match &accept.deflate {
        Some(agreed) => format!("Sec-WebSocket-Extensions: {}\r\n", agreed.header_value()),
        None => String::new(),
    };
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extensions}\r\n",
        accept.accept_key
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::http::{parse_request, Parsed, RequestLimits};

    fn req(raw: &str) -> Request {
        match parse_request(raw.as_bytes(), &RequestLimits::default()) {
            Ok(Parsed::Complete(r)) => *r,
            other => panic!("{other:?}"),
        }
    }

    const GOOD: &str = "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn accepts_the_rfc_example_and_derives_its_accept_key() {
        let a = accept(&req(GOOD)).unwrap();
        assert_eq!(a.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let text = String::from_utf8(switching_protocols(&a)).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn an_agreed_deflate_is_answered_and_none_leaves_the_response_as_it_was() {
        let mut a = accept(&req(GOOD)).unwrap();
        let plain = switching_protocols(&a);
        assert!(!String::from_utf8_lossy(&plain).contains("Extensions"));
        a.deflate = crate::wire::ws::deflate::negotiate(Some("permessage-deflate"));
        let text = String::from_utf8(switching_protocols(&a)).unwrap();
        assert!(text.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover\r\n\r\n"
        ));
    }

    #[test]
    fn refusals_have_the_right_status() {
        let cases = [
            (GOOD.replacen("GET", "POST", 1), 405),
            (GOOD.replacen("HTTP/1.1", "HTTP/1.0", 1), 400),
            (GOOD.replacen("Upgrade: WebSocket", "Upgrade: h2c", 1), 426),
            (GOOD.replacen("keep-alive, Upgrade", "keep-alive", 1), 400),
            (
                GOOD.replacen("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 1),
                400,
            ),
            (
                GOOD.replacen("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR==", 1),
                400,
            ),
            (GOOD.replacen("Version: 13", "Version: 8", 1), 426),
            ("GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(), 426),
        ];
        for (raw, status) in cases {
            let err = accept(&req(&raw)).unwrap_err();
            let resp = err.response();
            assert_eq!(resp.status.code(), status, "{err}");
            if status == 426 {
                let text = String::from_utf8(resp.encode(None)).unwrap();
                assert!(text.contains("Sec-WebSocket-Version: 13\r\n"), "{text}");
            }
        }
    }
}
