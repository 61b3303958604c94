//! Incremental HTTP/1.x request-head parsing over the connection's read buffer.
//!
//! Runs on a shard core, once per accepted connection, before any WebSocket upgrade.
//! Input: the bytes read so far. Output: [`Parsed::Complete`] with the fields the gateway
//! acts on, or [`Parsed::Partial`] when more bytes are needed, or an [`HttpError`] that maps
//! to a status code (431 for an oversized head, 400 for a malformed one).
//!
//! Invariants: never reads past `limits.max_head_bytes`; never panics on client bytes; copies
//! only the handful of headers the gateway uses (everything else is skipped).

use crate::wire::http::HttpError;

/// Bounds on a request head. Defaults suit browsers and load generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest request head (request line + headers + blank line) in bytes. Default 8 KiB;
    /// a larger head is refused with 431. Raise only for clients with huge cookies.
    pub max_head_bytes: usize,
    /// Most header lines parsed. Default 64; more is refused with 431.
    pub max_headers: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
        }
    }
}

/// The request method, as far as routing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    /// Any other token (`POST`, `PUT`, …), kept for the 405 log line.
    Other(String),
}

impl Method {
    fn parse(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        }
    }
}

/// The headers the gateway reads; all others are ignored. Values are trimmed, and when a
/// header repeats, the values are joined with `", "` (RFC 9110 list semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub host: Option<String>,
    pub upgrade: Option<String>,
    pub connection: Option<String>,
    pub sec_websocket_key: Option<String>,
    pub sec_websocket_version: Option<String>,
    /// `Sec-WebSocket-Extensions`: the client's permessage-deflate offers.
    pub sec_websocket_extensions: Option<String>,
    pub origin: Option<String>,
    pub x_forwarded_for: Option<String>,
    pub x_real_ip: Option<String>,
    /// `Authorization` (an access key: `Bearer TOKEN`); never logged.
    pub authorization: Option<String>,
    /// `Last-Event-ID`: where a reconnecting Server-Sent Events client resumes.
    pub last_event_id: Option<String>,
    /// `Accept`: only to tell a browser opening `/` (which wants the dashboard) from a
    /// client of the old gateway's WebSocket path.
    pub accept: Option<String>,
}

impl Headers {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        let slot = if name.eq_ignore_ascii_case("host") {
            &mut self.host
        } else if name.eq_ignore_ascii_case("upgrade") {
            &mut self.upgrade
        } else if name.eq_ignore_ascii_case("connection") {
            &mut self.connection
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            &mut self.sec_websocket_key
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            &mut self.sec_websocket_version
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            &mut self.sec_websocket_extensions
        } else if name.eq_ignore_ascii_case("origin") {
            &mut self.origin
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            &mut self.x_forwarded_for
        } else if name.eq_ignore_ascii_case("x-real-ip") {
            &mut self.x_real_ip
        } else if name.eq_ignore_ascii_case("authorization") {
            &mut self.authorization
        } else if name.eq_ignore_ascii_case("last-event-id") {
            &mut self.last_event_id
        } else if name.eq_ignore_ascii_case("accept") {
            &mut self.accept
        } else {
            return None;
        };
        Some(slot)
    }

    fn record(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError> {
        let Some(slot) = self.slot(name) else {
            return Ok(());
        };
        let value = std::str::from_utf8(value)
            .map_err(|_| HttpError::NonUtf8Header {
                name: name.to_ascii_lowercase(),
            })?
            .trim();
        match slot {
            Some(existing) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => *slot = Some(value.to_owned()),
        }
        Ok(())
    }
}

/// A complete request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Path without the query string, as sent (not percent-decoded).
    pub path: String,
    /// Raw query string after `?`, empty when absent.
    pub query: String,
    pub headers: Headers,
    /// Bytes of the head including the terminating blank line; anything after is body or
    /// (after an upgrade) WebSocket frames the client pipelined.
    pub head_len: usize,
}

/// Outcome of one parse attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Boxed: a request is a few hundred bytes and `Partial` is the common early answer.
    Complete(Box<Request>),
    /// The head is not complete yet and still within limits: read more and call again.
    Partial,
}

/// Parses the request head at the start of `buf`.
///
/// Call again with the grown buffer after each read until it returns `Complete` or an error;
/// parsing restarts from the beginning each time, which is cheap for heads of a few hundred
/// bytes and keeps no state between calls.
pub fn parse_request(buf: &[u8], limits: &RequestLimits) -> Result<Parsed, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let mut storage = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut storage);
    let status = match req.parse(window) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders {
                limit: limits.max_headers,
            })
        }
        Err(e) => return Err(HttpError::Malformed(e)),
    };
    let head_len = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if buf.len() >= limits.max_head_bytes => {
            return Err(HttpError::HeadTooLarge {
                limit: limits.max_head_bytes,
            })
        }
        httparse::Status::Partial => return Ok(Parsed::Partial),
    };
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HttpError::Malformed(httparse::Error::Token));
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut headers = Headers::default();
    for h in req.headers.iter() {
        headers.record(h.name, h.value)?;
    }
    Ok(Parsed::Complete(Box::new(Request {
        method: Method::parse(method),
        minor_version,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        head_len,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> Request {
        match parse_request(buf, &RequestLimits::default()) {
            Ok(Parsed::Complete(r)) => *r,
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    #[test]
    fn parses_an_upgrade_request_and_keeps_the_headers_we_use() {
        let raw = b"GET /v1/ws/txs?resume_from=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
            Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\
            Cookie: ignored\r\n\r\nextra";
        let r = complete(raw);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.minor_version, 1);
        assert_eq!(r.path, "/v1/ws/txs");
        assert_eq!(r.query, "resume_from=7");
        assert_eq!(r.headers.upgrade.as_deref(), Some("websocket"));
        assert_eq!(r.headers.connection.as_deref(), Some("keep-alive, Upgrade"));
        assert_eq!(
            r.headers.x_forwarded_for.as_deref(),
            Some("1.2.3.4, 5.6.7.8")
        );
        assert_eq!(r.head_len, raw.len() - b"extra".len());
    }

    #[test]
    fn an_incomplete_head_is_partial_at_every_prefix() {
        let raw = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(
                parse_request(&raw[..cut], &RequestLimits::default()).ok(),
                Some(Parsed::Partial),
                "prefix of {cut} bytes"
            );
        }
        assert_eq!(complete(raw).path, "/health");
    }

    #[test]
    fn an_oversized_head_is_431() {
        let mut raw = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        raw.resize(9000, b'a');
        let err = parse_request(&raw, &RequestLimits::default()).unwrap_err();
        assert_eq!(err, HttpError::HeadTooLarge { limit: 8192 });
        assert_eq!(err.status().code(), 431);
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..70 {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let err = parse_request(&raw, &RequestLimits::default()).unwrap_err();
        assert_eq!(err.status().code(), 431);
    }

    #[test]
    fn malformed_heads_are_400() {
        for raw in [
            &b"GET / HTTP/9.1\r\n\r\n"[..],
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"\x00\x01\x02\r\n\r\n",
        ] {
            let err = parse_request(raw, &RequestLimits::default()).unwrap_err();
            assert_eq!(err.status().code(), 400, "{raw:?}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 300) as usize;
            let mut buf = Vec::with_capacity(len + 20);
            buf.extend_from_slice(b"GET /");
            let mut y = x;
            for _ in 0..len {
                y = y
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                buf.push(match y >> 61 {
                    0 => b'\r',
                    1 => b'\n',
                    2 => b':',
                    _ => (y >> 33) as u8,
                });
            }
            let _ = parse_request(&buf, &RequestLimits::default());
        }
    }
}
