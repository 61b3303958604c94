//! HTTP responses: status line, the headers every answer carries, and the body.
//!
//! Runs on shard cores for REST answers and refusals. Every response closes the connection
//! (`Connection: close`): the gateway serves one request per TCP connection except for
//! WebSocket upgrades, which keeps the connection state machine trivial.

/// The statuses the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    SwitchingProtocols,
    Ok,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    UpgradeRequired,
    TooManyRequests,
    HeaderFieldsTooLarge,
    InternalServerError,
    ServiceUnavailable,
}

impl Status {
    /// Numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::SwitchingProtocols => 101,
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::UpgradeRequired => 426,
            Status::TooManyRequests => 429,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalServerError => 500,
            Status::ServiceUnavailable => 503,
        }
    }

    /// Reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::SwitchingProtocols => "Switching Protocols",
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::UpgradeRequired => "Upgrade Required",
            Status::TooManyRequests => "Too Many Requests",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalServerError => "Internal Server Error",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }
}

/// A response under construction. Build with [`Response::new`] / [`Response::json`] /
/// [`Response::error`], add headers, then [`Response::encode`] with the configured CORS
/// origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub content_type: &'static str,
    /// Extra headers beyond Content-Type, Content-Length, Connection and CORS.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `body` of `content_type`.
    pub fn new(status: Status, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// A JSON response (`application/json`).
    pub fn json(status: Status, body: Vec<u8>) -> Response {
        Response::new(status, "application/json", body)
    }

    /// `{"error":"<message>"}` with `status` (the message is JSON-escaped).
    pub fn error(status: Status, message: &str) -> Response {
        let mut body = Vec::with_capacity(message.len() + 12);
        body.extend_from_slice(b"{\"error\":");
        crate::wire::json::write_str(&mut body, message);
        body.push(b'}');
        Response::json(status, body)
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: &str) -> Response {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// The bytes to write: status line, `Content-Type`, `Content-Length`,
    /// `Connection: close`, `Access-Control-Allow-Origin` when `cors_origin` is set, extra
    /// headers, blank line, body.
    pub fn encode(&self, cors_origin: Option<&str>) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(160 + self.body.len());
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status.code(),
            self.status.reason(),
            self.content_type,
            self.body.len()
        );
        if let Some(origin) = cors_origin {
            let _ = write!(out, "Access-Control-Allow-Origin: {origin}\r\n");
        }
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_status_headers_and_body() {
        let bytes = Response::error(Status::MethodNotAllowed, "say \"GET\"")
            .header("Allow", "GET")
            .encode(Some("*"));
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, r#"{"error":"say \"GET\""}"#);
        assert!(head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(head.contains("Connection: close"));
        assert!(head.contains("Access-Control-Allow-Origin: *"));
        assert!(head.contains("Allow: GET"));
    }

    #[test]
    fn cors_header_is_absent_when_not_configured() {
        let text =
            String::from_utf8(Response::json(Status::Ok, b"{}".to_vec()).encode(None)).unwrap();
        assert!(!text.contains("Access-Control"));
    }
}
