//! Behind the real reverse proxy of `tuning/nginx/ringgate.conf` (a real nginx with TLS,
//! installed by `.ci/install`): ringgate's per-IP connection limit sees the client's address
//! through the proxy it trusts (`--trusted-proxies 127.0.0.1`), and ignores `X-Forwarded-For`
//! from anyone else, including a client that sends its own through the proxy.
//!
//! Clients come from different loopback addresses (127.0.0.2, .3, .4) so each has its own
//! IP; `openssl s_client -bind` holds a WebSocket open through TLS, `curl --interface` makes
//! one-shot upgrades whose HTTP status says whether the limit let them in. Server-Sent Events
//! pass through the proxy's `/v1/sse` location event by event (`curl -N` over TLS). The
//! dashboard page passes through its `/` location, and `/` still reaches the WebSocket path
//! for a request that is not a browser's page load.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Nginx {
    child: Child,
    dir: PathBuf,
    tls_port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The shipped config, with the placeholders a deployment edits filled for this test:
/// loopback listen ports, a throw-away certificate, the gateway's address.
fn render_config(
    shipped: &str,
    dir: &Path,
    tls_port: u16,
    http_port: u16,
    upstream: SocketAddr,
) -> String {
    shipped
        .replace(
            "listen 443 ssl;",
            &format!("listen 127.0.0.1:{tls_port} ssl;"),
        )
        .replace("listen [::]:443 ssl;", "")
        .replace("listen 80;", &format!("listen 127.0.0.1:{http_port};"))
        .replace("listen [::]:80;", "")
        .replace(
            "/etc/ssl/ringgate/fullchain.pem",
            &dir.join("cert.pem").display().to_string(),
        )
        .replace(
            "/etc/ssl/ringgate/privkey.pem",
            &dir.join("key.pem").display().to_string(),
        )
        .replace("server 127.0.0.1:8443", &format!("server {upstream}"))
}

fn start_nginx(upstream: SocketAddr) -> Nginx {
    // One directory per nginx: the tests of this file run in parallel in one process.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringgate-nginx-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(ok.success(), "self-signed certificate");
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning/nginx/ringgate.conf"),
    )
    .expect("tuning/nginx/ringgate.conf");
    let (tls_port, http_port) = (free_port(), free_port());
    std::fs::write(
        dir.join("ringgate.conf"),
        render_config(&shipped, &dir, tls_port, http_port, upstream),
    )
    .expect("write site config");
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             \x20 include {d}/ringgate.conf;\n}}\n",
            d = dir.display()
        ),
    )
    .expect("write nginx.conf");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off; master_process off;"])
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (installed by .ci/install) starts");
    wait_until("nginx listens", || {
        std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
    });
    Nginx {
        child,
        dir,
        tls_port,
    }
}

const UPGRADE_HEADERS: [&str; 4] = [
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
];

/// One upgrade attempt with curl from `source`; the HTTP status.
fn upgrade_status(source: &str, url: &str, extra_header: Option<&str>) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sk",
        "--http1.1",
        "--max-time",
        "2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ])
    .args(["--interface", source]);
    for h in UPGRADE_HEADERS.iter().copied().chain(extra_header) {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// A WebSocket held open through the proxy's TLS from `source`.
struct HeldSession {
    child: Child,
    _stdin: ChildStdin,
    // Kept open: s_client exits on a closed stdout, which would end the session.
    _stdout: BufReader<ChildStdout>,
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hold_session(source: &str, tls_port: u16) -> HeldSession {
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-bind", &format!("{source}:0")])
        .args(["-connect", &format!("127.0.0.1:{tls_port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut request = String::from("GET /v1/ws HTTP/1.1\r\nHost: localhost\r\n");
    for h in UPGRADE_HEADERS {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stdin.write_all(request.as_bytes()).expect("send upgrade");
    let mut status = String::new();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    stdout.read_line(&mut status).expect("status line");
    assert!(
        status.contains(" 101 "),
        "the first session is admitted: {status:?}"
    );
    HeldSession {
        child,
        _stdin: stdin,
        _stdout: stdout,
    }
}

#[test]
fn per_ip_limits_see_the_client_through_the_trusted_proxy_and_ignore_anyone_elses_header() {
    let ring = TestRing::create("proxy");
    let mut config = test_config(&ring);
    config.connection_limits.max_per_ip = 1;
    config.connection_limits.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let gw = start_gateway(config);
    let nginx = start_nginx(gw.addr);
    let via_proxy = format!("https://127.0.0.1:{}/v1/ws", nginx.tls_port);
    let direct = format!("http://{}/v1/ws", gw.addr);

    // Client A (127.0.0.2) holds its one allowed connection through the proxy.
    let _a = hold_session("127.0.0.2", nginx.tls_port);
    gw.wait_for_clients(1);
    // A second connection of A through the proxy is refused: ringgate saw A's address, not
    // the proxy's.
    assert_eq!(upgrade_status("127.0.0.2", &via_proxy, None), 429);
    // Client B (127.0.0.3) through the same proxy is another IP: admitted.
    assert_eq!(upgrade_status("127.0.0.3", &via_proxy, None), 101);
    // A cannot hide behind a header of its own: nginx appends the real peer, and ringgate
    // takes the right-most untrusted entry.
    assert_eq!(
        upgrade_status("127.0.0.2", &via_proxy, Some("X-Forwarded-For: 127.0.0.9")),
        429
    );
    // A client that is not the proxy is judged by its socket address, whatever it claims:
    // C (127.0.0.4) claiming to be A is admitted as C...
    assert_eq!(
        upgrade_status("127.0.0.4", &direct, Some("X-Forwarded-For: 127.0.0.2")),
        101
    );
    // ...and A connecting directly with a header naming a fresh address is still A.
    assert_eq!(
        upgrade_status("127.0.0.2", &direct, Some("X-Forwarded-For: 127.0.0.8")),
        429
    );
}

#[test]
fn server_sent_events_pass_through_the_proxy_as_they_happen() {
    let mut ring = TestRing::create("proxy-sse");
    let gw = start_gateway(test_config(&ring));
    let nginx = start_nginx(gw.addr);
    // A channel path: the proxy's /v1/sse location covers all of them.
    let url = format!(
        "https://127.0.0.1:{}/v1/sse/blocks?extended=1",
        nginx.tls_port
    );
    // The block is written only after the stream is open through the proxy, and the read
    // ends at its BlockEnd while the stream stays open: a buffering proxy would hold it.
    let (head, lines) = curl_sse(
        &["-k", "--http1.1"],
        &url,
        || {
            gw.wait_for_clients(1);
            ring.write_block(3, 2);
        },
        "BlockEnd",
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(lines.iter().any(|l| l.starts_with("id: ")), "{lines:?}");
}

#[test]
fn the_dashboard_passes_through_the_proxy_and_the_root_still_upgrades_for_clients() {
    let ring = TestRing::create("proxy-dashboard");
    let gw = start_gateway(test_config(&ring));
    let nginx = start_nginx(gw.addr);
    let get = |path: &str, accept: &str| {
        let url = format!("https://127.0.0.1:{}{path}", nginx.tls_port);
        let out = Command::new("curl")
            .args(["-sk", "-i", "--http1.1", "-H", accept, &url])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = ringgate::serve::dashboard::PAGE;
    for (path, accept) in [("/dashboard", "Accept: */*"), ("/", "Accept: text/html")] {
        let response = get(path, accept);
        let (head, body) = response.split_once("\r\n\r\n").expect("a response");
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/html"),
            "{head}"
        );
        assert_eq!(body, page, "{path}");
    }
    // Without a browser's Accept, the root is still the WebSocket path (426 without upgrade).
    let response = get("/", "Accept: */*");
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
}
