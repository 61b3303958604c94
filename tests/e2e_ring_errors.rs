//! A ring that cannot be attached is explained where the operator looks: at once on stderr
//! (one log line per change of reason), in `/v1/status` (`ring_error`) and in `/health` (503
//! with the reason). A snapshot that cannot be read makes `serve` exit non-zero with the same
//! message. The binary is run as an operator would.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use ringgate::ingest::ring::layout::header_offset;

fn ringgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringgate"))
}

/// `serve` over `ring` on a free port, one unpinned shard, plus `extra` flags.
fn serve_args<'a>(ring: &'a Path, extra: &'a [&'a str]) -> Vec<&'a OsStr> {
    let mut args: Vec<&OsStr> = ["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"]
        .iter()
        .chain(extra)
        .map(OsStr::new)
        .collect();
    args.push(OsStr::new("--ring"));
    args.push(ring.as_os_str());
    args
}

struct Serve(ServeProcess);

impl Serve {
    fn start(ring: &Path, extra: &[&str]) -> Serve {
        Serve(ServeProcess::start(&serve_args(ring, extra)))
    }

    /// `serve` run by `command` (a wrapper such as `setpriv` that then runs the binary).
    fn start_with(command: Command, ring: &Path, extra: &[&str]) -> Serve {
        Serve(ServeProcess::start_with(command, &serve_args(ring, extra)))
    }

    fn log(&self) -> String {
        self.0.log()
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.0.get(path, "")
    }
}

fn json(body: &str) -> sonic_rs::Value {
    sonic_rs::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn ring_error_kind(body: &str) -> Option<String> {
    use sonic_rs::JsonValueTrait;
    json(body)
        .get("ring_error")
        .and_then(|e| e.get("kind"))
        .and_then(|k| k.as_str().map(str::to_owned))
}

/// A copy of a live ring's image with another exec schema hash (as an older Monad writes).
fn old_schema_image(tag: &str) -> Vec<u8> {
    let ring = TestRing::create(tag);
    let mut image = std::fs::read(&ring.path).expect("read ring image");
    image[header_offset::SCHEMA_HASH..header_offset::SCHEMA_HASH + 32].fill(0xdd);
    image
}

fn temp_path(name: &str) -> PathBuf {
    ringgate::ingest::ring::scratch_dir()
        .join(format!("ringgate-test-{}-{name}", std::process::id()))
}

#[test]
fn a_missing_ring_is_reported_at_once_in_the_log_status_and_health() {
    let missing = temp_path("no-such-ring");
    let serve = Serve::start(&missing, &[]);
    wait_until("the tailer reports the missing ring", || {
        ring_error_kind(&serve.get("/v1/status").1).as_deref() == Some("not_found")
    });
    let (status, body) = serve.get("/v1/status");
    assert_eq!(status, 200);
    assert!(body.contains(&missing.display().to_string()), "{body}");
    assert!(body.contains("is the execution daemon running"), "{body}");
    let (status, body) = serve.get("/health");
    assert_eq!(status, 503);
    assert!(json(&body).to_string().contains("does not exist"), "{body}");
    wait_until("the attach error is logged", || {
        serve.log().contains("attach_error")
    });
    // Logged once per change of reason, not once per retry (the tailer retries every 100 ms).
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = serve.log();
    assert_eq!(log.matches("attach_error").count(), 1, "{log}");
    assert!(log.contains("kind=not_found"), "{log}");
    assert!(log.contains(&missing.display().to_string()), "{log}");
}

#[test]
fn a_live_ring_of_another_schema_is_named_with_both_hashes_and_serving_goes_on() {
    let path = temp_path("old-schema-ring");
    std::fs::write(&path, old_schema_image("old-schema")).expect("write image");
    let serve = Serve::start(&path, &[]);
    wait_until("the tailer reports the schema", || {
        ring_error_kind(&serve.get("/v1/status").1).as_deref() == Some("wrong_schema")
    });
    let (_, body) = serve.get("/v1/status");
    assert!(body.contains("different Monad version"), "{body}");
    assert!(body.contains("dddddddd"), "the found hash is named: {body}");
    assert!(
        body.contains("8933f907"),
        "the expected hash is named: {body}"
    );
    assert_eq!(serve.get("/health").0, 503);
    drop(serve);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_file_that_is_not_a_ring_and_a_truncated_ring_are_named_as_such() {
    let not_a_ring = temp_path("not-a-ring");
    std::fs::write(&not_a_ring, vec![7u8; 4 << 20]).expect("write");
    let truncated = temp_path("truncated-ring");
    let mut image = old_schema_image("truncated");
    // A valid header (this build's schema) but the file ends early.
    image[header_offset::SCHEMA_HASH..header_offset::SCHEMA_HASH + 32]
        .copy_from_slice(&ringgate::ingest::ring::layout::EXEC_SCHEMA_HASH);
    image.truncate(image.len() / 2);
    std::fs::write(&truncated, image).expect("write");
    for (path, kind, says) in [
        (&not_a_ring, "not_a_ring", "is not an event ring"),
        (&truncated, "truncated", "is truncated"),
    ] {
        let serve = Serve::start(path, &[]);
        wait_until(&format!("the tailer reports {kind}"), || {
            ring_error_kind(&serve.get("/v1/status").1).as_deref() == Some(kind)
        });
        let (_, body) = serve.get("/health");
        assert!(body.contains(says), "{kind}: {body}");
        wait_until("the reason is logged", || {
            serve.log().contains(&format!("kind={kind}"))
        });
    }
    let _ = std::fs::remove_file(not_a_ring);
    let _ = std::fs::remove_file(truncated);
}

#[test]
fn a_ring_the_gateway_user_may_not_read_says_so_and_how_to_fix_it() {
    // The gateway runs as `nobody` (setpriv, util-linux); the ring is root's, mode 0600.
    let path = temp_path("private-ring");
    std::fs::write(&path, vec![0u8; 4 << 20]).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let mut as_nobody = Command::new("setpriv");
    as_nobody
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_ringgate"));
    let serve = Serve::start_with(as_nobody, &path, &[]);
    wait_until("the tailer reports permission_denied", || {
        ring_error_kind(&serve.get("/v1/status").1).as_deref() == Some("permission_denied")
    });
    let (status, body) = serve.get("/health");
    assert_eq!(status, 503);
    assert!(body.contains("needs read access"), "{body}");
    drop(serve);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn an_unreadable_snapshot_exits_non_zero_with_the_reason() {
    let path = temp_path("old-schema.snapshot.zst");
    let image = old_schema_image("old-schema-snap");
    std::fs::write(&path, zstd::encode_all(image.as_slice(), 1).expect("zstd")).expect("write");
    let out = ringgate()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--no-pin",
            "--ring",
        ])
        .arg(&path)
        .output()
        .expect("run serve");
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different Monad version"), "{err}");
    assert!(!err.contains("serving"), "{err}");

    let missing = temp_path("missing.snapshot.zst");
    let out = ringgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-pin", "--ring"])
        .arg(&missing)
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn json_logs_are_one_object_per_line_with_the_lifecycle_events() {
    let mut ring = TestRing::create("json-log");
    let mut child = ringgate()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--no-pin",
            "--log-format",
            "json",
            "--ring",
        ])
        .arg(&ring.path)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringgate");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut events = Vec::new();
    let mut line = String::new();
    while events.len() < 2 {
        line.clear();
        assert!(
            err.read_line(&mut line).expect("stderr") > 0,
            "log ended: {events:?}"
        );
        if let Ok(v) = sonic_rs::from_str::<sonic_rs::Value>(&line) {
            use sonic_rs::JsonValueTrait;
            let ev = v
                .get("event")
                .and_then(|e| e.as_str())
                .unwrap_or("")
                .to_owned();
            assert!(v.get("ts").is_some() && v.get("level").is_some(), "{line}");
            if ev == "attach" || ev == "start" {
                events.push(ev);
            }
        }
    }
    ring.write_block(1, 1);
    let _ = child.kill();
    let _ = child.wait();
    events.sort();
    assert_eq!(events, ["attach", "start"]);
}
