//! WebSocket framing: an incremental decoder for client frames and header writers for
//! server frames.
//!
//! Runs on shard cores, per session. [`FrameDecoder::decode`] looks at the start of the
//! session's read buffer and either needs more bytes (consumes nothing: a partial frame is
//! re-examined on the next read, which is cheap because frames are bounded by
//! [`DecoderLimits::max_message_bytes`]) or consumes one whole frame. Client payloads are
//! unmasked into the decoder's own buffer, where fragments are reassembled.
//!
//! Server frames are written unmasked and unfragmented: [`write_frame_header`] appends just
//! the 2–10 header bytes so a session can append a pre-encoded payload right after it
//! without copying twice.
//!
//! Never: accept an unmasked client frame, a binary message (unless configured, for JSON-RPC), a control frame over 125 bytes,
//! or a message over the limit; never panic on client bytes.

use crate::wire::ws::{CloseCode, WsError};

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Result<OpCode, WsError> {
        Ok(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(WsError::ReservedOpcode(other)),
        })
    }

    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// Decoder bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest client message (after reassembly) in bytes. Default 64 KiB: subscribe
    /// messages are small, and the bound also caps the session's read buffer. Exceeding it
    /// closes with 1009.
    pub max_message_bytes: usize,
    /// Read binary messages as text (UTF-8 checked) instead of closing with 1003. Off for
    /// the native protocol; on for JSON-RPC sessions, since web3.py's WebSocket stack sends
    /// its requests as binary frames (geth and Monad's server accept them).
    pub binary_as_text: bool,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_message_bytes: 64 * 1024,
            binary_as_text: false,
        }
    }
}

/// What one call to [`FrameDecoder::decode`] found. Every variant but `NeedMore` consumed
/// `consumed` bytes from the front of the buffer: drain them before the next call.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// No complete frame yet; nothing consumed.
    NeedMore,
    /// A non-final fragment of a text message was consumed and buffered.
    Partial { consumed: usize },
    /// A complete text message (reassembled if it was fragmented), valid UTF-8.
    Text { text: &'a str, consumed: usize },
    /// A ping; answer with a pong carrying `payload`.
    Ping { payload: &'a [u8], consumed: usize },
    /// A pong (counts as liveness).
    Pong { consumed: usize },
    /// The client is closing; `code` is `None` for an empty close payload.
    Close {
        code: Option<u16>,
        reason: &'a str,
        consumed: usize,
    },
}

impl Decoded<'_> {
    /// Bytes consumed from the buffer (0 for `NeedMore`).
    pub fn consumed(&self) -> usize {
        match self {
            Decoded::NeedMore => 0,
            Decoded::Partial { consumed }
            | Decoded::Text { consumed, .. }
            | Decoded::Ping { consumed, .. }
            | Decoded::Pong { consumed }
            | Decoded::Close { consumed, .. } => *consumed,
        }
    }
}

/// Incremental decoder for one session's client frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    limits: DecoderLimits,
    /// The text message being reassembled (unmasked).
    message: Vec<u8>,
    /// A fragmented text message is in progress.
    in_message: bool,
    /// `message` was handed out by the previous call and must be cleared first.
    delivered: bool,
    /// The last control frame's unmasked payload (≤ 125 bytes).
    control: Vec<u8>,
    /// permessage-deflate was negotiated: RSV1 on a message's first frame marks it
    /// compressed ([`crate::wire::ws::deflate`]).
    deflate: bool,
    /// The message being reassembled is compressed.
    compressed: bool,
}

fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn unmask_into(out: &mut Vec<u8>, payload: &[u8], key: [u8; 4]) {
    out.reserve(payload.len());
    out.extend(
        payload
            .iter()
            .zip(key.iter().cycle())
            .map(|(byte, k)| byte ^ k),
    );
}

impl FrameDecoder {
    /// A decoder with `limits`.
    pub fn new(limits: DecoderLimits) -> FrameDecoder {
        FrameDecoder {
            limits,
            ..FrameDecoder::default()
        }
    }

    /// Accepts compressed messages (RSV1) as negotiated by permessage-deflate, inflated
    /// within [`DecoderLimits::max_message_bytes`].
    pub fn with_deflate(mut self, on: bool) -> FrameDecoder {
        self.deflate = on;
        self
    }

    /// Examines the front of `buf` (the session's unread bytes).
    pub fn decode(&mut self, buf: &[u8]) -> Result<Decoded<'_>, WsError> {
        if self.delivered {
            self.message.clear();
            self.delivered = false;
        }
        let [b0, b1, ..] = *buf else {
            return Ok(Decoded::NeedMore);
        };
        let fin = b0 & 0x80 != 0;
        let opcode = OpCode::from_bits(b0 & 0x0f)?;
        // RSV1 is permessage-deflate's "compressed" bit, valid only when negotiated and only
        // on a message's first frame (RFC 7692 §6); RSV2 and RSV3 are never valid.
        let rsv1 = b0 & 0x40 != 0;
        if b0 & 0x30 != 0
            || (rsv1 && !(self.deflate && matches!(opcode, OpCode::Text | OpCode::Binary)))
        {
            return Err(WsError::ReservedBits);
        }
        if b1 & 0x80 == 0 {
            return Err(WsError::Unmasked);
        }
        let Some((len, len_end)) = read_payload_len(buf) else {
            return Ok(Decoded::NeedMore);
        };
        if len >> 63 != 0 {
            return Err(WsError::BadLength);
        }
        if opcode.is_control() {
            if !fin {
                return Err(WsError::FragmentedControl);
            }
            if len > 125 {
                return Err(WsError::ControlTooLong(len));
            }
        } else {
            match opcode {
                OpCode::Binary if !self.limits.binary_as_text => return Err(WsError::Binary),
                OpCode::Binary if self.in_message => return Err(WsError::Interleaved),
                OpCode::Continuation if !self.in_message => {
                    return Err(WsError::UnexpectedContinuation)
                }
                OpCode::Text if self.in_message => return Err(WsError::Interleaved),
                _ => {}
            }
            let size = self.message.len() as u64 + len;
            if size > self.limits.max_message_bytes as u64 {
                return Err(WsError::MessageTooLarge {
                    size,
                    limit: self.limits.max_message_bytes,
                });
            }
        }
        let header_len = len_end + 4;
        // Bounded above: control ≤ 125, data ≤ max_message_bytes.
        let len = len as usize;
        let Some(frame) = buf.get(..header_len + len) else {
            return Ok(Decoded::NeedMore);
        };
        let key = [
            frame[header_len - 4],
            frame[header_len - 3],
            frame[header_len - 2],
            frame[header_len - 1],
        ];
        let payload = &frame[header_len..];
        let consumed = frame.len();
        if opcode.is_control() {
            self.control.clear();
            unmask_into(&mut self.control, payload, key);
            return match opcode {
                OpCode::Ping => Ok(Decoded::Ping {
                    payload: &self.control,
                    consumed,
                }),
                OpCode::Pong => Ok(Decoded::Pong { consumed }),
                _ => self.close(consumed),
            };
        }
        if opcode != OpCode::Continuation {
            self.compressed = rsv1;
        }
        unmask_into(&mut self.message, payload, key);
        if !fin {
            self.in_message = true;
            return Ok(Decoded::Partial { consumed });
        }
        self.in_message = false;
        self.delivered = true;
        if self.compressed {
            self.message =
                crate::wire::ws::deflate::inflate(&self.message, self.limits.max_message_bytes)?;
        }
        let text = std::str::from_utf8(&self.message).map_err(|_| WsError::InvalidUtf8)?;
        Ok(Decoded::Text { text, consumed })
    }

    fn close(&self, consumed: usize) -> Result<Decoded<'_>, WsError> {
        match self.control.as_slice() {
            [] => Ok(Decoded::Close {
                code: None,
                reason: "",
                consumed,
            }),
            [_] => Err(WsError::BadClosePayload),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !close_code_allowed(code) {
                    return Err(WsError::BadCloseCode(code));
                }
                let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
                Ok(Decoded::Close {
                    code: Some(code),
                    reason,
                    consumed,
                })
            }
        }
    }
}

/// The payload length declared by the frame header at the start of `buf`, and where that
/// length field ends (2, 4 or 10: a masking key, if any, follows); `None` until those bytes
/// have arrived. Wire format only (RFC 6455 §5.2): whether the frame must be masked, its
/// opcodes and its length limits are the caller's policy.
pub fn read_payload_len(buf: &[u8]) -> Option<(u64, usize)> {
    match buf.get(1)? & 0x7f {
        126 => {
            let b = buf.get(2..4)?;
            Some((u64::from(u16::from_be_bytes([b[0], b[1]])), 4))
        }
        127 => {
            let b = <[u8; 8]>::try_from(buf.get(2..10)?).ok()?;
            Some((u64::from_be_bytes(b), 10))
        }
        n => Some((u64::from(n), 2)),
    }
}

/// Header bytes [`write_frame_header`] writes for a payload of `len` bytes.
pub fn frame_header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    }
}

/// Appends the header of one unmasked, final server frame with a `len`-byte payload; the
/// caller appends exactly `len` payload bytes next.
pub fn write_frame_header(opcode: OpCode, len: usize, out: &mut Vec<u8>) {
    out.push(0x80 | opcode.bits());
    match len {
        0..=125 => out.push(len as u8),
        126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Appends one complete server frame (header + `payload`).
pub fn write_frame(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    write_frame_header(opcode, payload.len(), out);
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason`, the reason cut at a character boundary
/// to fit the 125-byte control-frame limit.
pub fn write_close(code: CloseCode, reason: &str, out: &mut Vec<u8>) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    write_frame_header(OpCode::Close, 2 + reason.len(), out);
    out.extend_from_slice(&code.code().to_be_bytes());
    out.extend_from_slice(reason);
}

#[cfg(test)]
mod tests;
