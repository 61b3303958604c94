//! The `ringgate` binary itself: `serve` over a real ring, SIGTERM → close 1001 and exit 0,
//! and a startup failure (locked memory) that states the limit and the remedy.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::*;

fn ringgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringgate"))
}

#[test]
fn serve_exits_0_on_sigterm_after_closing_clients_with_1001() {
    let mut ring = TestRing::create("cli");
    let mut child = ringgate()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--no-pin",
            "--ring",
        ])
        .arg(&ring.path)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringgate");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("banner");
    let addr: SocketAddr = line
        .split("ws://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    let mut client = WsClient::connect(addr, "/v1/ws");
    assert_eq!(kind_of(&client.next_json()), "Hello");
    let written = ring.write_block(1, 2).len();
    let mut last = 0;
    assert_eq!(
        collect_events(&mut client, written, &mut last).len(),
        written
    );

    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sending SIGTERM to our own child process, which is still running.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(client.expect_close(), Some(1001));
    let status = child.wait().expect("wait");
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
