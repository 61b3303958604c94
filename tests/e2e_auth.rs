//! Access keys against a real `ringgate serve` (the binary, so SIGHUP is the real signal):
//! no key or an unknown key is 401 before the upgrade; a key in the header or the query is
//! admitted; a key over its quota gets 429 until one of its connections closes; a key limited
//! to some channels gets 403 on others; `/health` stays open, other REST and `/metrics` need a
//! key (unless `--metrics-open`), and so does the dashboard page (`?token=`); per-key counters are in `/metrics`; SIGHUP reloads the file
//! without dropping the sessions of keys that remain, and closes those of removed keys with
//! 1008 "key revoked".

mod common;

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;

use common::*;
use tungstenite::client::IntoClientRequest;

struct Gateway {
    server: ServeProcess,
    addr: SocketAddr,
    keys: PathBuf,
    _ring: TestRing,
}

impl Gateway {
    fn start(keys_text: &str, extra: &[&str]) -> Gateway {
        let ring = TestRing::create("auth");
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let keys =
            std::env::temp_dir().join(format!("ringgate-keys-{}-{n}.toml", std::process::id()));
        std::fs::write(&keys, keys_text).expect("write keys");
        let mut args: Vec<&OsStr> = ["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"]
            .iter()
            .chain(extra)
            .map(OsStr::new)
            .collect();
        args.extend([OsStr::new("--auth-keys"), keys.as_os_str()]);
        args.extend([OsStr::new("--ring"), ring.path.as_os_str()]);
        let server = ServeProcess::start(&args);
        Gateway {
            addr: server.addr,
            server,
            keys,
            _ring: ring,
        }
    }

    /// Upgrades on `path` with an optional bearer token; the HTTP status when refused.
    fn connect(&self, path: &str, bearer: Option<&str>) -> Result<WsClient, u16> {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("request");
        if let Some(token) = bearer {
            request.headers_mut().insert(
                "Authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        match tungstenite::client(request, stream) {
            Ok((ws, _)) => Ok(WsClient {
                ws,
                show_all: false,
            }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                Err(r.status().as_u16())
            }
            Err(e) => panic!("handshake: {e}"),
        }
    }

    fn get(&self, path: &str, bearer: Option<&str>) -> (u16, String) {
        let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        self.server.get(path, &auth)
    }

    fn sighup(&self) {
        let pid = libc::pid_t::try_from(self.server.child.id()).expect("pid");
        // SAFETY: signalling our own child, which is running.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.keys);
    }
}

fn hello(c: &mut WsClient) {
    assert_eq!(kind_of(&c.next_json()), "Hello");
}

#[test]
fn the_auth_matrix_no_key_bad_key_header_query_quota_channel_and_rest() {
    let keys = access_key("desk", "desk-secret", "max_connections = 1")
        + &access_key("dash", "dash-secret", "channels = [\"blocks\"]");
    let gw = Gateway::start(&keys, &[]);

    assert_eq!(gw.connect("/v1/ws", None).err(), Some(401), "no key");
    assert_eq!(
        gw.connect("/v1/ws", Some("wrong")).err(),
        Some(401),
        "unknown key"
    );
    assert_eq!(gw.connect("/v1/ws?token=wrong", None).err(), Some(401));

    let mut desk = gw
        .connect("/v1/ws", Some("desk-secret"))
        .expect("header key admitted");
    hello(&mut desk);
    assert_eq!(
        gw.connect("/v1/ws?token=desk-secret", None).err(),
        Some(429),
        "over quota"
    );
    drop(desk);
    // The slot is released when the server sees the connection end.
    wait_until("the quota slot is released", || {
        gw.connect("/v1/ws?token=desk-secret", None).is_ok()
    });

    let mut dash = gw
        .connect("/v1/ws/blocks?token=dash-secret", None)
        .expect("query key");
    hello(&mut dash);
    assert_eq!(
        gw.connect("/v1/ws/txs", Some("dash-secret")).err(),
        Some(403),
        "channel"
    );

    // REST: /health is open; the rest needs a key.
    assert_ne!(gw.get("/health", None).0, 401);
    assert_eq!(gw.get("/v1/status", None).0, 401);
    assert_eq!(gw.get("/metrics", None).0, 401);
    assert_eq!(gw.get("/v1/status", Some("dash-secret")).0, 200);
    let (status, metrics) = gw.get("/metrics?token=dash-secret", None);
    assert_eq!(status, 200);
    // dash: its WebSocket plus this very request (a REST request is a connection too).
    assert!(
        metrics.contains("ringgate_key_connections{key=\"dash\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ringgate_key_over_quota_total{key=\"desk\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ringgate_auth_failures_total{reason=\"unknown\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains("desk-secret") && !metrics.contains("dash-secret"));
}

#[test]
fn the_dashboard_needs_a_key_like_rest_and_takes_it_in_the_query() {
    let gw = Gateway::start(&access_key("a", "alpha", ""), &["--metrics-open"]);
    let browser = "Accept: text/html\r\n";
    assert_eq!(gw.get("/dashboard", None).0, 401);
    assert_eq!(gw.server.get("/", browser).0, 401, "the root's page too");
    assert_eq!(gw.get("/dashboard?token=wrong", None).0, 401);
    let (status, page) = gw.get("/dashboard?token=alpha", None);
    assert_eq!(status, 200);
    assert_eq!(page, ringgate::serve::dashboard::PAGE);
    assert_eq!(gw.get("/dashboard", Some("alpha")).0, 200);
    assert_eq!(gw.server.get("/?token=alpha", browser).0, 200);
    // What the page then asks for with the same key: the stream and the REST endpoints.
    let mut c = gw
        .connect("/v1/ws?extended=1&token=alpha", None)
        .expect("key");
    hello(&mut c);
    assert_eq!(gw.get("/v1/status", Some("alpha")).0, 200);
}

#[test]
fn metrics_open_leaves_only_metrics_open() {
    let gw = Gateway::start(&access_key("a", "alpha", ""), &["--metrics-open"]);
    assert_eq!(gw.get("/metrics", None).0, 200);
    assert_eq!(gw.get("/v1/status", None).0, 401);
    assert_eq!(gw.connect("/v1/ws", None).err(), Some(401));
}

#[test]
fn sighup_reloads_keys_revoking_removed_ones_and_keeping_the_rest() {
    let gw = Gateway::start(
        &(access_key("stay", "stay-secret", "") + &access_key("go", "go-secret", "")),
        &[],
    );
    let mut stay = gw.connect("/v1/ws", Some("stay-secret")).expect("stay");
    hello(&mut stay);
    let mut go = gw.connect("/v1/ws", Some("go-secret")).expect("go");
    hello(&mut go);
    assert_eq!(gw.connect("/v1/ws", Some("new-secret")).err(), Some(401));

    std::fs::write(
        &gw.keys,
        access_key("stay", "stay-secret", "") + &access_key("new", "new-secret", ""),
    )
    .expect("rewrite keys");
    gw.sighup();

    // The removed key's session is closed with 1008 and the reason.
    loop {
        match go.next() {
            ServerFrame::Close(code, reason) => {
                assert_eq!(code, Some(1008));
                assert_eq!(reason, "key revoked");
                break;
            }
            ServerFrame::Ended => panic!("closed without a close frame"),
            ServerFrame::Json(_) => continue,
        }
    }
    wait_until("the new key is admitted", || {
        gw.connect("/v1/ws", Some("new-secret")).is_ok()
    });
    assert_eq!(gw.connect("/v1/ws", Some("go-secret")).err(), Some(401));
    // The remaining key's session is still served: it answers a subscribe.
    stay.send_text(r#"{"subscribe":["BlockStart"]}"#);
    assert_eq!(kind_of(&stay.next_of("Subscribed")), "Subscribed");
}
