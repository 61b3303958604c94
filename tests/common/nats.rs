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

/// One message of the stream as an edge would see it.
pub struct StreamFrame {
    pub subject: String,
    pub stream_seq: u64,
    pub epoch: u64,
    pub seqno: u64,
    pub msg_id: String,
    pub body: Vec<u8>,
}

/// Every message `stream` holds now, from its start (read until the consumer says none is
/// pending).
pub fn read_stream(url: &str, stream: &str) -> Vec<StreamFrame> {
    read_stream_as(url, None, stream)
}

/// [`read_stream`] with `creds`.
pub fn read_stream_as(url: &str, creds: Option<&Credentials>, stream: &str) -> Vec<StreamFrame> {
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
        let pending = AckInfo::of(&m).map(|a| a.pending);
        if let Some(f) = frame_of(&mut c, m) {
            out.push(f);
        }
        if pending == Some(0) {
            return out;
        }
    }
}

fn frame_of(c: &mut Connection, m: Message) -> Option<StreamFrame> {
    if m.status().is_some() {
        if let Some(reply) = &m.reply {
            c.publish(reply, None, &[], &[]);
            c.flush().expect("flow control reply");
        }
        return None;
    }
    let ack = AckInfo::of(&m)?;
    let num = |h: &str| m.header(h).and_then(|v| v.parse().ok()).unwrap_or(0);
    Some(StreamFrame {
        stream_seq: ack.stream_seq,
        epoch: num(header::EPOCH),
        seqno: num(header::SEQNO),
        msg_id: m.header(header::MSG_ID).unwrap_or("").to_owned(),
        subject: m.subject.clone(),
        body: m.payload,
    })
}
