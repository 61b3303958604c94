//! The live dashboard: one self-contained HTML page (`dashboard/index.html`: markup, CSS
//! and a small script, no framework, no external resource) compiled into the binary and
//! served at `/dashboard`, and at `/` to a browser (`crate::wire::http::route`).
//!
//! The page is a client like any other: it reads the public protocol only (the WebSocket
//! with `extended=1` for `Lifecycle`, `TPS` and the event tail, resuming with
//! `resume_from`/`epoch` after a drop; `/v1/status` and `/metrics` polled for clients, lag,
//! gaps, drops and events/s by kind), so it shows nothing a client could not see. It is
//! answered like the other REST endpoints (same CORS and access-key policy: with access
//! keys on, open it as `/dashboard?token=…`; the script passes the token on to every
//! request it makes). Invariant: the page writes every value it receives into the DOM as
//! text (`textContent`), never as markup.

use crate::wire::http::{Response, Status};

/// The page, as compiled in.
pub const PAGE: &str = include_str!("dashboard/index.html");

/// The `200` answer for the page. `no-cache`: a browser revalidates, so an upgraded binary's
/// page is picked up at once (the page is small). The security policy allows the page's own
/// inline script and style and connections to its own origin only; no referrer leaves it,
/// since its URL may carry an access key.
pub fn page() -> Response {
    Response::new(
        Status::Ok,
        "text/html; charset=utf-8",
        PAGE.as_bytes().to_vec(),
    )
    .header("Cache-Control", "no-cache")
    .header("X-Content-Type-Options", "nosniff")
    .header("Referrer-Policy", "no-referrer")
    .header(
        "Content-Security-Policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         connect-src 'self' ws: wss:; img-src data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained_html_with_its_headers() {
        let r = page();
        assert_eq!(r.content_type, "text/html; charset=utf-8");
        let text = String::from_utf8(r.encode(None)).unwrap();
        assert!(text.contains("\r\nCache-Control: no-cache\r\n"), "{text}");
        assert!(PAGE.starts_with("<!doctype html>"));
        // Nothing is loaded from anywhere else: no external script, style, font or image.
        for outside in ["http://", "https://", "//cdn", "@import", "src=\""] {
            assert!(!PAGE.contains(outside), "the page references {outside}");
        }
        // Received values never become markup.
        assert!(!PAGE.contains("innerHTML"), "the page must use textContent");
    }
}
