//! WebSocket (RFC 6455), sans-IO: the upgrade handshake, the client-frame decoder, server
//! frame headers, and the keep-alive policy.
//!
//! Runs on shard cores, per session; takes bytes and `now`, returns typed outcomes and
//! appends bytes to the caller's output buffer, so it is property-tested against
//! tungstenite (tests/fuzz_parsers.rs) and benched without sockets.
//! Server frames are unmasked (RFC 6455 §5.1), which is what lets one pre-encoded event be
//! copied into every session's buffer unchanged (docs/invariants.md#fast-2).
//!
//! - [`handshake`]: request validation (400 / 405 / 426) and the `101` response.
//! - [`frame`]: [`FrameDecoder`] for client frames and [`write_frame_header`] for ours.
//! - [`deflate`]: permessage-deflate (RFC 7692): negotiation, the shard's compressor,
//!   bounded inflation of client messages.
//! - [`keepalive`]: [`Heartbeat`] (server pings, silent clients closed) and [`PingLimiter`]
//!   (the token bucket that closes ping floods with 1008).
//!
//! Every protocol violation is a [`WsError`] that maps to the close code the session sends
//! ([`WsError::close_code`]); nothing a client sends can panic.

pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod keepalive;

pub use frame::{
    frame_header_len, write_close, write_frame, write_frame_header, Decoded, DecoderLimits,
    FrameDecoder, OpCode,
};
pub use handshake::{accept, switching_protocols, Accept, HandshakeError};
pub use keepalive::{Beat, Heartbeat, PingLimiter, PingVerdict};

/// Close codes the gateway sends (RFC 6455 §7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1002: the client broke the framing protocol.
    Protocol,
    /// 1003: the client sent a data type we do not accept (binary).
    Unsupported,
    /// 1007: a text message was not UTF-8.
    InvalidPayload,
    /// 1008: a policy was violated (ping flood, slow client, heartbeat timeout).
    Policy,
    /// 1009: a message exceeded the size limit.
    TooBig,
    /// 1011: the server hit an internal error.
    Internal,
}

impl CloseCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Internal => 1011,
        }
    }
}

/// A client broke the WebSocket protocol or a session policy. The session sends a close
/// frame with [`WsError::close_code`] and the error's text as reason, then closes. The
/// decoder's state is unspecified after an error: do not call it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("client frame not masked")]
    Unmasked,
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("control frame of {0} bytes (limit 125)")]
    ControlTooLong(u64),
    #[error("fragmented control frame")]
    FragmentedControl,
    #[error("continuation frame with no message to continue")]
    UnexpectedContinuation,
    #[error("new data frame before the fragmented message finished")]
    Interleaved,
    #[error("64-bit frame length with the top bit set")]
    BadLength,
    #[error("close frame with a 1-byte payload")]
    BadClosePayload,
    #[error("close code {0} is not allowed on the wire")]
    BadCloseCode(u16),
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    MessageTooLarge { size: u64, limit: usize },
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    #[error("binary messages are not supported: the protocol is JSON text")]
    Binary,
    #[error("compressed message inflates past the {limit}-byte limit")]
    InflatedTooLarge { limit: usize },
    #[error("compressed message is not valid deflate data")]
    BadDeflate,
    #[error("ping flood: more than {per_sec} pings per second")]
    PingFlood { per_sec: u32 },
}

impl WsError {
    /// The close code this error is answered with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            WsError::Unmasked
            | WsError::ReservedBits
            | WsError::ReservedOpcode(_)
            | WsError::ControlTooLong(_)
            | WsError::FragmentedControl
            | WsError::UnexpectedContinuation
            | WsError::Interleaved
            | WsError::BadLength
            | WsError::BadClosePayload
            | WsError::BadCloseCode(_)
            | WsError::BadDeflate => CloseCode::Protocol,
            WsError::MessageTooLarge { .. } | WsError::InflatedTooLarge { .. } => CloseCode::TooBig,
            WsError::InvalidUtf8 => CloseCode::InvalidPayload,
            WsError::Binary => CloseCode::Unsupported,
            WsError::PingFlood { .. } => CloseCode::Policy,
        }
    }
}
