//! HTTP/1.x in front of the WebSocket upgrade: request heads, routing, responses and the
//! connection-admission policy.
//!
//! Runs on every shard core, once per accepted connection; runtime-free (takes bytes and the
//! peer address, returns typed values and response bytes), so it is unit-tested and
//! property-tested on arbitrary input (tests/fuzz_parsers.rs) without sockets.
//!
//! Life of a connection's first bytes:
//! [`parse_request`] (431 / 400) → [`route()`] (404 / 405 / 400 on bad query values) →
//! [`ConnectionLimits::client_ip`] + [`ShardAdmission::admit`] (503 / 429) → for a
//! [`Route::Ws`], the handshake in [`crate::wire::ws::handshake`] (400 / 426) → `101`; for a
//! [`Route::Rest`], the runtime renders the body and calls [`Response::encode`].
//!
//! - [`request`]: incremental head parsing (httparse).
//! - [`mod@route`]: paths, methods and WebSocket query parameters.
//! - [`response`]: status lines, headers and bodies.
//! - [`limits`]: client IP (trusted proxies) and connection counting.
//! - [`auth`]: access keys: token hashes, per-key quotas and channels, reload.
//!
//! Never: read a body (no endpoint takes one), trust `X-Forwarded-For` from an untrusted
//! peer, or panic on client bytes.

pub mod auth;
pub mod limits;
pub mod request;
pub mod response;
pub mod route;

pub use limits::{Admission, ConnectionLimits, GlobalConnections, Refusal, ShardAdmission};
pub use request::{parse_request, Headers, Method, Parsed, Request, RequestLimits};
pub use response::{Response, Status};
pub use route::{route, route_rpc_port, RestRoute, Route, WsQuery};

/// Why a request was refused before any upgrade. Each maps to one HTTP status
/// ([`HttpError::status`]) and renders as a JSON error body ([`HttpError::response`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("request head larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("more than {limit} header lines")]
    TooManyHeaders { limit: usize },
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    #[error("header {name} is not valid UTF-8")]
    NonUtf8Header { name: String },
    #[error("no such path: {path}")]
    NotFound { path: String },
    #[error("method not allowed (allowed: {allow})")]
    MethodNotAllowed { allow: &'static str },
    #[error("bad query parameter {param}: {message}")]
    BadQuery { param: String, message: String },
}

impl HttpError {
    /// The status this error is answered with.
    pub fn status(&self) -> Status {
        match self {
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. } => {
                Status::HeaderFieldsTooLarge
            }
            HttpError::Malformed(_) | HttpError::NonUtf8Header { .. } => Status::BadRequest,
            HttpError::BadQuery { .. } => Status::BadRequest,
            HttpError::NotFound { .. } => Status::NotFound,
            HttpError::MethodNotAllowed { .. } => Status::MethodNotAllowed,
        }
    }

    /// The complete response: `{"error":"<message>"}` with the right status, plus `Allow`
    /// for a 405.
    pub fn response(&self) -> Response {
        let mut r = Response::error(self.status(), &self.to_string());
        if let HttpError::MethodNotAllowed { allow } = self {
            r = r.header("Allow", allow);
        }
        r
    }
}
