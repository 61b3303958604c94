//! [`Framing`]: how one server frame (a complete JSON envelope, `{"server_seqno":N,…}`)
//! is put on the wire: as a WebSocket text frame, or as a Server-Sent Events message.
//!
//! Runs on shard cores, for every frame a session writes; runtime-free. The session machinery
//! (queue, batches, per-connection messages, the close) is the same for both transports:
//! only these few calls differ, so an SSE client gets exactly the JSON a WebSocket client
//! gets, from the same pre-encoded bytes, and the same backpressure.
//!
//! Invariant: [`Framing::frame_len`] is exactly what [`Framing::open`] + payload +
//! [`Framing::end`] append (batches size their header before writing the payload).

use crate::wire::sse;
use crate::wire::ws::{self, CloseCode, OpCode};

/// A session's transport framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// RFC 6455 text frames (unmasked, final), the close frame at the end.
    #[default]
    WebSocket,
    /// The same text frames, which the session writer then compresses with
    /// permessage-deflate ([`crate::wire::ws::deflate::Deflater::compress_frames`]): every
    /// length here is before compression.
    WebSocketDeflate,
    /// `text/event-stream` messages `id: <epoch>:<seqno>` + `data: <json>`, an
    /// `event: close` message at the end ([`crate::wire::sse`]).
    Sse {
        /// The server epoch, written into every id.
        epoch: u64,
    },
}

impl Framing {
    /// Bytes a frame of `payload` bytes stamped `seqno` takes on the wire.
    pub fn frame_len(self, payload: usize, seqno: u64) -> usize {
        match self {
            Framing::WebSocket | Framing::WebSocketDeflate => {
                ws::frame_header_len(payload) + payload
            }
            Framing::Sse { epoch } => {
                sse::message_head_len(epoch, seqno) + payload + sse::MESSAGE_END.len()
            }
        }
    }

    /// A WebSocket framing, compressed or not (the reader reads client frames).
    pub fn is_websocket(self) -> bool {
        matches!(self, Framing::WebSocket | Framing::WebSocketDeflate)
    }

    /// Appends what precedes a frame's JSON.
    pub fn open(self, payload: usize, seqno: u64, out: &mut Vec<u8>) {
        match self {
            Framing::WebSocket | Framing::WebSocketDeflate => {
                ws::write_frame_header(OpCode::Text, payload, out)
            }
            Framing::Sse { epoch } => sse::write_message_head(epoch, seqno, out),
        }
    }

    /// What follows a frame's JSON (nothing for WebSocket).
    pub fn end(self) -> &'static [u8] {
        match self {
            Framing::WebSocket | Framing::WebSocketDeflate => b"",
            Framing::Sse { .. } => sse::MESSAGE_END,
        }
    }

    /// Appends one complete frame of `json` (a per-connection message carrying `seqno`).
    pub fn message(self, seqno: u64, json: &[u8], out: &mut Vec<u8>) {
        self.open(json.len(), seqno, out);
        out.extend_from_slice(json);
        out.extend_from_slice(self.end());
    }

    /// Appends the last thing a closing session sends: the close frame, or the SSE
    /// `event: close` message, with `code` and `reason`.
    pub fn close(self, code: CloseCode, reason: &str, out: &mut Vec<u8>) {
        match self {
            Framing::WebSocket | Framing::WebSocketDeflate => ws::write_close(code, reason, out),
            Framing::Sse { .. } => sse::write_close(code, reason, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_is_what_open_and_end_write_for_both_framings() {
        for framing in [Framing::WebSocket, Framing::Sse { epoch: 1_234_567 }] {
            for (len, seqno) in [(0, 0), (125, 9), (126, 10_000), (70_000, u64::MAX)] {
                let json = vec![b'x'; len];
                let mut out = Vec::new();
                framing.message(seqno, &json, &mut out);
                assert_eq!(
                    out.len(),
                    framing.frame_len(len, seqno),
                    "{framing:?} {len}"
                );
            }
        }
    }

    #[test]
    fn a_websocket_message_is_a_text_frame_and_an_sse_message_an_id_and_data() {
        let mut ws_out = Vec::new();
        Framing::WebSocket.message(3, b"{}", &mut ws_out);
        assert_eq!(ws_out, [0x81, 2, b'{', b'}']);
        let mut sse_out = Vec::new();
        Framing::Sse { epoch: 7 }.message(3, b"{}", &mut sse_out);
        assert_eq!(sse_out, b"id: 7:3\ndata: {}\n\n");
    }
}
