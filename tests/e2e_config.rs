//! `--config FILE` and `ringgate check`, run as an operator would: the file's keys are the
//! flags' names, flags on the command line override it, bad keys and values are refused with
//! the file and line; `check` passes on a good setup and fails, saying why and what to do, on
//! a low locked-memory limit, an absent ring and a busy port.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;
use sonic_rs::JsonValueTrait;

fn ringgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringgate"))
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ringgate-{}-{name}", std::process::id()));
    std::fs::write(&p, text).expect("write temp file");
    p
}

/// Starts `serve` with `args` over `ring`; returns once it listens.
fn serve(args: &[&str], ring: &std::path::Path) -> ServeProcess {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.push(std::ffi::OsStr::new("--ring"));
    all.push(ring.as_os_str());
    ServeProcess::start(&all)
}

/// The session queue size a server announces in `Hello` (`limits.client_send_buffer`).
fn announced_session_queue(addr: SocketAddr) -> u64 {
    let mut c = WsClient::connect(addr, "/v1/ws");
    let hello = c.next_json();
    hello
        .get("Hello")
        .and_then(|h| h.get("limits"))
        .and_then(|l| l.get("client_send_buffer"))
        .and_then(|v| v.as_u64())
        .expect("Hello.limits.client_send_buffer")
}

#[test]
fn the_file_configures_serve_and_the_command_line_overrides_it() {
    let ring = TestRing::create("config-file");
    let file = temp_file(
        "serve.toml",
        "# ringgate serve settings\nlisten = \"127.0.0.1:0\"\nshards = 1\nno-pin = true\n\
         session-queue = 1234\ngates = [\"voted\", \"finalized\"]\n",
    );
    let file_arg = file.to_string_lossy().into_owned();

    let server = serve(&["--config", &file_arg], &ring.path);
    assert_eq!(
        announced_session_queue(server.addr),
        1234,
        "the file's value is used"
    );
    drop(server);

    let server = serve(
        &["--config", &file_arg, "--session-queue", "777"],
        &ring.path,
    );
    assert_eq!(
        announced_session_queue(server.addr),
        777,
        "the command line wins"
    );
    drop(server);

    // Without either, the default (the one constant clap and Config::default share).
    let server = serve(
        &["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"],
        &ring.path,
    );
    assert_eq!(
        announced_session_queue(server.addr),
        ringgate::config::defaults::SESSION_QUEUE_FRAMES as u64
    );
    drop(server);
    let _ = std::fs::remove_file(file);
}

#[test]
fn bad_keys_and_values_are_refused_with_the_file_and_line() {
    let cases = [
        (
            "listen = \"127.0.0.1:0\"\n\nsesion-queue = 5\n",
            ":3: unknown key `sesion-queue`",
        ),
        (
            "listen = \"127.0.0.1:0\"\nshards = \"two\"\n",
            ":2: `shards` = \"two\"",
        ),
        ("no-pin = \"yes\"\n", ":1: `no-pin` is a switch"),
        ("[server]\nlisten = \"x\"\n", ":1: `server` is a table"),
        ("gates = [\"voted\", \"sometimes\"]\n", ":1: `gates`"),
    ];
    for (text, expected) in cases {
        let file = temp_file("bad.toml", text);
        let out = ringgate()
            .args(["serve", "--ring", "/nonexistent", "--config"])
            .arg(&file)
            .output()
            .expect("run serve");
        let _ = std::fs::remove_file(&file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text:?} was accepted");
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(
            err.contains(expected),
            "{text:?}: expected {expected:?} in {err}"
        );
    }
}

fn check(args: &[&str]) -> Output {
    ringgate()
        .arg("check")
        .args(args)
        .output()
        .expect("run check")
}

fn check_json(out: &Output) -> sonic_rs::Value {
    sonic_rs::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn verdict_of(v: &sonic_rs::Value, check: &str) -> String {
    use sonic_rs::JsonContainerTrait;
    v.get("checks")
        .and_then(|c| c.as_array())
        .and_then(|a| {
            a.iter()
                .find(|c| c.get("check").and_then(|n| n.as_str()) == Some(check))
                .and_then(|c| c.get("verdict").and_then(|x| x.as_str()).map(str::to_owned))
        })
        .unwrap_or_default()
}

#[test]
fn check_passes_on_a_good_setup_and_fails_with_the_remedy_on_a_broken_one() {
    let ring = TestRing::create("check");
    let ring_path = ring.path.to_string_lossy().into_owned();
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--no-pin",
        "--ring",
        ring_path.as_str(),
    ];

    let good = check(&base);
    let table = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{table}");
    assert!(table.contains("ok    ring"), "{table}");
    assert!(table.contains("check passed"), "{table}");

    // Absent ring: says which path and what to do.
    let out = check(&[
        "--json",
        "--listen",
        "127.0.0.1:0",
        "--ring",
        "/nonexistent/monad-exec-events",
    ]);
    assert!(!out.status.success());
    let v = check_json(&out);
    assert_eq!(verdict_of(&v, "ring"), "fail");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/nonexistent/monad-exec-events"));

    // Busy port.
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_addr = busy.local_addr().unwrap().to_string();
    let mut args = base.to_vec();
    args[1] = &busy_addr;
    args.push("--json");
    let out = check(&args);
    assert!(!out.status.success());
    assert_eq!(verdict_of(&check_json(&out), "listen"), "fail");
    drop(busy);

    // Low locked-memory limit, set on the process as an operator's shell would.
    let out = Command::new("prlimit")
        .arg("--memlock=64:64")
        .arg(env!("CARGO_BIN_EXE_ringgate"))
        .arg("check")
        .args(base)
        .arg("--json")
        .output()
        .expect("prlimit (util-linux) runs");
    assert!(!out.status.success());
    let v = check_json(&out);
    assert_eq!(verdict_of(&v, "locked_memory"), "fail");
    assert!(String::from_utf8_lossy(&out.stdout).contains("LimitMEMLOCK"));
}
