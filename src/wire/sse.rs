//! Server-Sent Events (`text/event-stream`, the WHATWG HTML standard's "Server-sent
//! events"), sans-IO: the response head, the message framing around one JSON frame, the
//! comment heartbeat, the final `close` event, and the `Last-Event-ID` value.
//!
//! Runs on shard cores; takes seqnos and bytes, appends to the caller's buffer. What goes
//! inside a message is decided elsewhere: [`crate::wire::protocol::Framing::Sse`] wraps
//! exactly the JSON frame a WebSocket session would get (`Events` batches, meta frames,
//! per-connection messages) in [`write_message_head`] … [`MESSAGE_END`], so the shard writes
//! the same pre-encoded event bytes for both transports.
//!
//! Wire form of one message: `id: <epoch>:<server_seqno>\ndata: <json>\n\n`. Our JSON never
//! contains a raw line break (strings are escaped, no whitespace between tokens), so one
//! `data:` line always holds one frame. The id carries the epoch because an `EventSource`
//! reconnects on its own with only `Last-Event-ID` (its URL is fixed at construction), and a
//! bare seqno from a previous server run would look like a position of the new one
//! (docs/decisions/sse.md).
//!
//! The stream is HTTP/1.1 with `Connection: close` and no `Content-Length`: the body ends
//! when the server closes the connection, so the session's writes go to the socket as they
//! are, with no chunk framing around each write.

use crate::wire::json::{push_u64, u64_len, write_str};
use crate::wire::ws::CloseCode;

/// The bytes before a message's JSON: `id: `, epoch, `:`, seqno, newline, `data: `.
pub fn write_message_head(epoch: u64, seqno: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"id: ");
    push_u64(out, epoch);
    out.push(b':');
    push_u64(out, seqno);
    out.extend_from_slice(b"\ndata: ");
}

/// Length of [`write_message_head`]'s output.
pub fn message_head_len(epoch: u64, seqno: u64) -> usize {
    b"id: ".len() + u64_len(epoch) + 1 + u64_len(seqno) + b"\ndata: ".len()
}

/// Ends a message (the blank line that dispatches it).
pub const MESSAGE_END: &[u8] = b"\n\n";

/// The heartbeat: a comment line, ignored by every SSE parser, that shows the stream is
/// alive and keeps idle proxies from timing the connection out.
pub const PING: &[u8] = b": ping\n\n";

/// The last message of a stream the server ends: `event: close` (not the default `message`
/// type, so `EventSource.onmessage` handlers see only protocol frames) with
/// `{"code":<close code>,"reason":"…"}`, the code and reason a WebSocket session would get in
/// its close frame. No `id`: it is not a position in the stream.
pub fn write_close(code: CloseCode, reason: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: close\ndata: {\"code\":");
    push_u64(out, u64::from(code.code()));
    out.extend_from_slice(b",\"reason\":");
    write_str(out, reason);
    out.extend_from_slice(b"}\n\n");
}

/// The `200` head that starts a stream. `Cache-Control: no-cache` and `X-Accel-Buffering:
/// no` keep caches and nginx-style buffering proxies from holding events back.
pub fn response_head(cors_origin: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
          Connection: close\r\nX-Accel-Buffering: no\r\n",
    );
    if let Some(origin) = cors_origin {
        out.extend_from_slice(b"Access-Control-Allow-Origin: ");
        out.extend_from_slice(origin.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A parsed event id: what the client last saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    /// The server epoch of `seqno`, when the id carried one (`<epoch>:<seqno>`, as the
    /// server writes it); `None` for a bare `<seqno>`.
    pub epoch: Option<u64>,
    pub seqno: u64,
}

/// Parses a `Last-Event-ID` value: `<epoch>:<seqno>` or `<seqno>`, decimal u64s. `Ok(None)`
/// for an empty value (an `EventSource` that saw no id sends none, but an empty header is
/// harmless). Anything else is an error message naming what is wrong.
pub fn parse_event_id(value: &str) -> Result<Option<EventId>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{value:?} is not <epoch>:<server_seqno> or <server_seqno>"))
    };
    let id = match value.split_once(':') {
        Some((epoch, seqno)) => EventId {
            epoch: Some(number(epoch)?),
            seqno: number(seqno)?,
        },
        None => EventId {
            epoch: None,
            seqno: number(value)?,
        },
    };
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_id_then_one_data_line_then_a_blank_line() {
        let mut out = Vec::new();
        write_message_head(1_700_000_000_000_000, 42, &mut out);
        assert_eq!(out.len(), message_head_len(1_700_000_000_000_000, 42));
        out.extend_from_slice(br#"{"server_seqno":42,"TPS":7}"#);
        out.extend_from_slice(MESSAGE_END);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "id: 1700000000000000:42\ndata: {\"server_seqno\":42,\"TPS\":7}\n\n"
        );
    }

    #[test]
    fn the_close_event_carries_the_websocket_code_and_an_escaped_reason() {
        let mut out = Vec::new();
        write_close(CloseCode::Policy, "slow \"client\"", &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "event: close\ndata: {\"code\":1008,\"reason\":\"slow \\\"client\\\"\"}\n\n"
        );
    }

    #[test]
    fn the_head_says_event_stream_no_cache_and_close_delimited() {
        let head = String::from_utf8(response_head(Some("https://a.example"))).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        for line in [
            "Content-Type: text/event-stream",
            "Cache-Control: no-cache",
            "Connection: close",
            "Access-Control-Allow-Origin: https://a.example",
        ] {
            assert!(
                head.contains(&format!("\r\n{line}\r\n")),
                "{line} in {head}"
            );
        }
        assert!(!head.contains("Content-Length"));
        assert!(head.ends_with("\r\n\r\n"));
        assert!(!String::from_utf8(response_head(None))
            .unwrap()
            .contains("Access-Control"));
    }

    #[test]
    fn event_ids_parse_with_or_without_the_epoch() {
        assert_eq!(
            parse_event_id("17:42"),
            Ok(Some(EventId {
                epoch: Some(17),
                seqno: 42
            }))
        );
        assert_eq!(
            parse_event_id(" 42 "),
            Ok(Some(EventId {
                epoch: None,
                seqno: 42
            }))
        );
        assert_eq!(parse_event_id(""), Ok(None));
        for bad in [
            "x",
            "1:",
            ":1",
            "1:2:3",
            "-1",
            "1:-2",
            "18446744073709551616",
        ] {
            assert!(parse_event_id(bad).is_err(), "{bad}");
        }
    }
}
