//! A real `nats-server -js` for the scale-out tests (installed by .ci/install), and a reader
//! of the stream an origin publishes (with the crate's own NATS client).
//!
//! Each server gets a free port and a store dir of its own; it is killed on drop (and its
//! store removed). [`NatsServer::restart`] kills it and starts it again on the same port and
//! store, as an operator's restart would. [`NatsServer::start_with_auth`] starts one whose
//! config file requires credentials.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringgate::bus::client::{Connection, Message};
use ringgate::bus::creds::Credentials;
use ringgate::bus::stream::{create_consumer, header, AckInfo, Start};
use ringgate::history::record;

use super::{unique_name, DEADLINE};
use ringgate::ingest::ring::scratch_dir;

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    /// `-c FILE`: the server's config file, when it has one.
    conf: Option<PathBuf>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        NatsServer::start_conf(None)
    }

    /// A server whose config file holds `authorization` (the block's content, as
    /// `user: u\npassword: p` or `token: t`): clients must present those credentials.
    pub fn start_with_auth(authorization: &str) -> NatsServer {
        let conf = scratch_dir().join(unique_name("nats-conf"));
        std::fs::write(&conf, format!("authorization {{\n{authorization}\n}}\n"))
            .expect("write the nats-server config");
        NatsServer::start_conf(Some(conf))
    }

    fn start_conf(conf: Option<PathBuf>) -> NatsServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let store = scratch_dir().join(unique_name("nats-store"));
        let mut s = NatsServer {
            child: None,
            port,
            store,
            conf,
        };
        s.spawn();
        s
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut command = Command::new("nats-server");
        if let Some(conf) = &self.conf {
            command.arg("-c").arg(conf);
        }
        let child = command
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (installed by .ci/install) runs");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let end = Instant::now() + DEADLINE;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < end, "nats-server listens on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
        if let Some(conf) = &self.conf {
            let _ = std::fs::remove_file(conf);
        }
    }
}

/// One frame of the stream as an edge sees it: its message's subject, stream sequence,
/// headers, and its own record.
pub struct StreamFrame {
    pub subject: String,
    pub stream_seq: u64,
    pub epoch: u64,
    /// The frame's own `server_seqno` (from its record).
    pub seqno: u64,
    /// Its message's dedup id and first seqno.
    pub msg_id: String,
    pub message_seqno: u64,
    /// Its publish window (first seqno, frame count).
    pub window: u64,
    pub window_frames: u64,
    /// The frame's record alone (empty for a `min_stage` copy whose original the stream
    /// does not hold).
    pub body: Vec<u8>,
}

/// Every frame `stream` holds now, from its start (read until the consumer says none is
/// pending), as an edge puts them in order: windows in stream order, each window's frames
/// (spread over one message per subject) in seqno order.
pub fn read_stream(url: &str, stream: &str) -> Vec<StreamFrame> {
    read_stream_as(url, None, stream)
}

/// [`read_stream`] with `creds`.
pub fn read_stream_as(url: &str, creds: Option<&Credentials>, stream: &str) -> Vec<StreamFrame> {
    let mut originals = record::Originals::new();
    let mut out: Vec<StreamFrame> = Vec::new();
    let mut window_start = 0;
    for m in read_messages(url, creds, stream) {
        let ack = AckInfo::of(&m).expect("a stream message");
        let num = |h: &str| m.header(h).and_then(|v| v.parse().ok()).unwrap_or(0);
        let window = num(header::WINDOW);
        if out.last().is_some_and(|f| f.window != window) {
            out[window_start..].sort_by_key(|f| f.seqno);
            window_start = out.len();
        }
        let mut unresolved = Vec::new();
        let mut decoded = record::decode_lenient(&m.payload, &mut originals, &mut unresolved)
            .expect("the body is records")
            .into_iter()
            .peekable();
        for (seqno, _) in record::scan(&m.payload).expect("the body is records") {
            let mut body = Vec::new();
            if let Some(f) = decoded.next_if(|f| f.server_seqno() == seqno) {
                record::encode(&f, &mut body);
            }
            out.push(StreamFrame {
                subject: m.subject.clone(),
                stream_seq: ack.stream_seq,
                epoch: num(header::EPOCH),
                seqno,
                msg_id: m.header(header::MSG_ID).unwrap_or("").to_owned(),
                message_seqno: num(header::SEQNO),
                window,
                window_frames: num(header::WINDOW_FRAMES),
                body,
            });
        }
    }
    out[window_start..].sort_by_key(|f| f.seqno);
    out
}

/// Every message `stream` holds now, in stream order.
pub fn read_messages(url: &str, creds: Option<&Credentials>, stream: &str) -> Vec<Message> {
    let urls = [url.to_owned()];
    let mut c = Connection::connect(&urls, creds, "test-reader", Duration::from_secs(2))
        .expect("connect to nats-server");
    c.subscribe("_TEST.read", 1);
    let filter = format!("{stream}.>");
    create_consumer(
        &mut c,
        stream,
        &filter,
        "_TEST.read",
        Start::Sequence(1),
        Duration::from_secs(1),
        2,
    )
    .expect("consumer");
    let end = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < end, "read the whole stream in time");
        let Some(m) = c.next(Duration::from_millis(100)).expect("read") else {
            continue;
        };
        if m.status().is_some() {
            if let Some(reply) = &m.reply {
                // Flow control: answer, or the server stops delivering.
                c.publish(reply, None, &[], &[]);
                c.flush().expect("flow control reply");
            }
            continue;
        }
        let pending = AckInfo::of(&m).map(|a| a.pending);
        out.push(m);
        if pending == Some(0) {
            return out;
        }
    }
}

/// Deletes the message at `stream_seq` from `stream` (as retention or an operator would).
pub fn delete_message(url: &str, stream: &str, stream_seq: u64) {
    let urls = [url.to_owned()];
    let mut c = Connection::connect(&urls, None, "test-deleter", Duration::from_secs(2))
        .expect("connect to nats-server");
    let body = serde_json::json!({ "seq": stream_seq });
    let v = ringgate::bus::stream::api(
        &mut c,
        &format!("$JS.API.STREAM.MSG.DELETE.{stream}"),
        &body,
        1,
    )
    .expect("message deleted");
    assert_eq!(v["success"], true, "{v}");
}
