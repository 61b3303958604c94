//! The `ringgate` binary itself: `serve` over a real ring, SIGTERM → close 1001 and exit 0;
//! `demo` end to end (and its cleanup); `inspect` on a bad file; a startup failure (locked
//! memory) that states the limit and the remedy; `inspect --events | jq`; `--cors-origin`.

mod common;
mod real_data;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::*;

/// `serve` over `ring` on a free port, one unpinned shard, plus `extra` flags.
fn serve_args<'a>(ring: &'a TestRing, extra: &'a [&'a str]) -> Vec<&'a std::ffi::OsStr> {
    let mut args: Vec<&std::ffi::OsStr> = ["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"]
        .iter()
        .chain(extra)
        .map(std::ffi::OsStr::new)
        .collect();
    args.push(std::ffi::OsStr::new("--ring"));
    args.push(ring.path.as_os_str());
    args
}

fn ringgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringgate"))
}

#[test]
fn serve_exits_0_on_sigterm_after_closing_clients_with_1001() {
    let mut ring = TestRing::create("cli");
    let mut server = ServeProcess::start(&serve_args(&ring, &[]));
    let addr = server.addr;

    let mut client = WsClient::connect(addr, "/v1/ws");
    assert_eq!(kind_of(&client.next_json()), "Hello");
    let written = ring.write_block(1, 2).len();
    let mut last = 0;
    assert_eq!(
        collect_events(&mut client, written, &mut last).len(),
        written
    );

    let pid = libc::pid_t::try_from(server.child.id()).expect("pid");
    // SAFETY: sending SIGTERM to our own child process, which is still running.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(client.expect_close(), Some(1001));
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn too_little_locked_memory_fails_with_the_limit_and_the_remedy() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -l 100 && exec {} serve --listen 127.0.0.1:0 --shards 1 --no-pin --ring /nonexistent-ring",
            env!("CARGO_BIN_EXE_ringgate")
        ))
        .output()
        .expect("run sh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("RLIMIT_MEMLOCK) is 100 KiB"), "{err}");
    assert!(err.contains("LimitMEMLOCK=infinity"), "{err}");
}

/// Reads the banner lines until one names the WebSocket address.
fn banner_addr(stderr: &mut impl BufRead) -> (SocketAddr, String) {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).expect("stderr") > 0,
            "no address in {text}"
        );
        text.push_str(&line);
        if let Some(addr) = line
            .split("ws://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
        {
            return (addr, text);
        }
    }
}

#[test]
fn demo_streams_a_synthetic_chain_and_cleans_up_on_sigint() {
    let mut child = ringgate()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--no-pin",
            "--rate",
            "2000",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringgate demo");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (addr, banner) = banner_addr(&mut stderr);
    let ring_dir = banner
        .split("events/s into ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .map(|p| std::path::PathBuf::from(p.trim()))
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| panic!("no ring path in {banner}"));
    assert!(ring_dir.is_dir());

    let mut client = WsClient::connect(addr, "/v1/ws?events=BlockStart");
    assert_eq!(kind_of(&client.next_json()), "Hello");
    let events = client.next_of("Events");
    assert!(event_names(&events).iter().all(|n| n == "BlockStart"));

    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sending SIGINT to our own child process, which is still running.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    assert_eq!(client.expect_close(), Some(1001));
    assert!(child.wait().expect("wait").success());
    assert!(
        !ring_dir.exists(),
        "demo left {} behind",
        ring_dir.display()
    );
}

#[test]
fn inspect_rejects_a_file_that_is_not_a_ring_with_a_typed_error() {
    let path = std::env::temp_dir().join(format!("ringgate-not-a-ring-{}", std::process::id()));
    std::fs::write(&path, vec![0u8; 4 * 1024 * 1024]).expect("write file");
    let out = ringgate()
        .arg("inspect")
        .arg(&path)
        .output()
        .expect("run inspect");
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ringgate: "), "{err}");
    assert!(err.to_lowercase().contains("magic"), "{err}");
}

/// `ringgate inspect --events RING | jq -c .`: stdout is pure JSON Lines (one event object
/// per line, nothing else), the header and summary go to stderr.
#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn inspect_events_pipes_into_jq_as_pure_json_lines() {
    let snapshot = real_data::snapshot();
    let mut inspect = ringgate()
        .args(["inspect", "--events"])
        .arg(&snapshot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run inspect");
    let jq = Command::new("jq")
        .args(["-c", "."])
        .stdin(inspect.stdout.take().expect("inspect stdout"))
        .output()
        .expect("jq runs (.ci/run installs it)");
    assert!(
        jq.status.success(),
        "jq failed: {}",
        String::from_utf8_lossy(&jq.stderr)
    );
    let lines: Vec<&str> = std::str::from_utf8(&jq.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 6597);
    assert!(
        lines.iter().all(|l| l.starts_with("{\"event_name\":")),
        "{:?}",
        &lines[..3]
    );
    let mut report = String::new();
    std::io::Read::read_to_string(&mut inspect.stderr.take().expect("stderr"), &mut report)
        .unwrap();
    assert!(inspect.wait().expect("inspect exits").success());
    assert!(report.contains("# magic         RING01"), "{report}");
    assert!(report.contains("# decode failures: none"), "{report}");
}

#[test]
fn serve_sends_the_cors_origin_given_by_flag_and_refuses_one_with_a_line_break() {
    let ring = TestRing::create("cli-cors");
    let mut server = ServeProcess::start(&serve_args(
        &ring,
        &["--cors-origin", "https://dash.example"],
    ));
    let answer = RawClient::request(server.addr, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    assert!(
        answer.contains("\r\nAccess-Control-Allow-Origin: https://dash.example\r\n"),
        "{answer}"
    );
    let pid = libc::pid_t::try_from(server.child.id()).expect("pid");
    // SAFETY: sending SIGTERM to our own child process, which is still running.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(server.child.wait().expect("wait").success());

    let out = ringgate()
        .args(["serve", "--cors-origin", "x\r\nSet-Cookie: a=b", "--ring"])
        .arg(&ring.path)
        .output()
        .expect("run ringgate");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cors-origin"), "{err}");
}
