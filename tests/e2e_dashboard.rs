//! The dashboard's routing against a real gateway on a real socket: `/dashboard` is `200`
//! `text/html` with the page compiled into the binary and its caching and security headers;
//! `/` with `Accept: text/html` and no upgrade is the same page; `/` without it keeps the old
//! gateway's behaviour (a plain request is 426, an upgrade is a WebSocket session); `HEAD`
//! is 405 like every endpoint. What the page shows is tested in a real Chromium
//! (tests/dashboard/, run by .ci/dashboard-tests); the access-key policy in e2e_auth.rs.

mod common;

use common::*;
use ringgate::serve::dashboard::PAGE;

/// (status line, head lower-cased, body) of one raw request.
fn ask(gw: &TestGateway, request_line: &str, headers: &str) -> (String, String, String) {
    let raw = RawClient::request(
        gw.addr,
        &format!("{request_line}\r\nHost: x\r\n{headers}\r\n"),
    );
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let status = head.lines().next().unwrap_or("").to_owned();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn the_dashboard_is_served_at_its_path_and_to_browsers_at_the_root() {
    let ring = TestRing::create("dashboard");
    let gw = start_gateway(test_config(&ring));
    let browser = "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n";

    for (line, headers) in [
        ("GET /dashboard HTTP/1.1", ""),
        ("GET /dashboard?token=x&utm=y HTTP/1.1", ""),
        ("GET / HTTP/1.1", browser),
    ] {
        let (status, head, body) = ask(&gw, line, headers);
        assert_eq!(status, "HTTP/1.1 200 OK", "{line}");
        assert!(
            head.contains("\r\ncontent-type: text/html; charset=utf-8"),
            "{head}"
        );
        assert!(head.contains("\r\ncache-control: no-cache"), "{head}");
        assert!(head.contains("\r\ncontent-security-policy: "), "{head}");
        assert!(
            head.contains(&format!("\r\ncontent-length: {}", PAGE.len())),
            "{head}"
        );
        assert_eq!(body, PAGE, "{line}: the compiled-in page, whole");
        assert!(body.contains("<title>ringgate · live</title>"));
    }

    // `/` for anything but a browser page load is the old gateway's WebSocket path.
    let (status, head, _) = ask(&gw, "GET / HTTP/1.1", "");
    assert!(status.starts_with("HTTP/1.1 426"), "{status}");
    assert!(head.contains("\r\nupgrade: websocket"), "{head}");
    let (status, _, _) = ask(&gw, "GET / HTTP/1.1", "Accept: */*\r\n");
    assert!(status.starts_with("HTTP/1.1 426"), "{status}");
    let mut ws = RawClient::upgraded(gw.addr, "/").into_ws();
    assert_eq!(kind_of(&ws.next_json()), "Hello");
    drop(ws);

    let (status, head, _) = ask(&gw, "HEAD /dashboard HTTP/1.1", "");
    assert!(status.starts_with("HTTP/1.1 405"), "{status}");
    assert!(head.contains("\r\nallow: get"), "{head}");
    let (status, _, _) = ask(&gw, "GET /dashboard/x HTTP/1.1", browser);
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
}
