//! Errors. Never retried: a refused token, a refused request, a peer that is not ringgate,
//! a rejected subscription. Retried while reconnecting: refused connections, timeouts, HTTP
//! 408/425/429/5xx (surfaced only from the first connection).

use std::fmt;

/// Everything the client can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad arguments (URL scheme, channel, stage, back-off).
    InvalidArgument(String),
    /// The server refused the token (HTTP 401 or 403).
    Authentication {
        /// 401 or 403.
        status: u16,
        /// The server's `{"error":…}` message, or a summary.
        message: String,
    },
    /// ringgate refused the request itself (400 bad query value, 404, 426…).
    RequestRejected {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The peer is not a ringgate gateway: no WebSocket upgrade, not JSON, no `Hello`.
    NotRinggate(String),
    /// The server answered the subscription with an `Error` frame.
    Subscription {
        /// Its `code` (`unknown_field`, `not_allowed_on_channel`, …).
        code: String,
        /// Its `message`.
        message: String,
    },
    /// The connection dropped and reconnecting is off.
    ConnectionLost {
        /// The close code (1006 when there was no close frame).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Could not connect (refused, timed out, reset, HTTP 429/5xx); retried on reconnects.
    Connect(String),
    /// A frame that is not ringgate's protocol.
    Protocol(String),
}

impl Error {
    /// Whether a reconnect loop should try again after this error.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Connect(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Authentication { status, message } => {
                write!(f, "authentication failed: HTTP {status}: {message}")
            }
            Error::RequestRejected { status, message } => {
                write!(f, "request rejected: HTTP {status}: {message}")
            }
            Error::NotRinggate(m) => write!(f, "not a ringgate gateway: {m}"),
            Error::Subscription { code, message } => {
                write!(f, "subscription rejected: {code}: {message}")
            }
            Error::ConnectionLost { code, reason } => {
                write!(f, "connection lost: close code {code}")?;
                if !reason.is_empty() {
                    write!(f, ": {reason}")?;
                }
                Ok(())
            }
            Error::Connect(m) => write!(f, "cannot connect: {m}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl std::error::Error for Error {}
