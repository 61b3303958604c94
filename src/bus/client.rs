//! A minimal blocking NATS client: the text protocol over one `std` TCP socket, for one
//! plain thread (the origin's publisher, an edge's consumer). No async runtime, no threads
//! of its own (docs/decisions/nats-client.md).
//!
//! Speaks what ringgate needs and nothing more: `INFO`/`CONNECT` (with headers and
//! no-responders), `PUB`/`HPUB`, `SUB`/`UNSUB`, `MSG`/`HMSG`, `PING`/`PONG`, `+OK`/`-ERR`.
//! Writes are buffered and go out on [`Connection::flush`] (one `write` per batch); reads are
//! parsed from a growing buffer so a read timeout mid-message loses nothing.
//!
//! Invariants: a server `PING` is answered before [`Connection::next`] returns; an `-ERR`
//! from the server is an `Err` (the caller reconnects); bad bytes from the server are an
//! `Err`, never a panic.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::bus::creds::Credentials;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 << 10;
/// The longest control line accepted from the server.
const MAX_LINE: usize = 64 << 10;

/// One message delivered to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub sid: u64,
    pub reply: Option<String>,
    /// The raw header block (`NATS/1.0 …\r\nKey: Value\r\n\r\n`), empty for a plain `MSG`.
    pub headers: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The status code on a header block's first line (`NATS/1.0 100 Idle Heartbeat`).
    pub fn status(&self) -> Option<u16> {
        let line = self.headers.split(|b| *b == b'\n').next()?;
        let text = std::str::from_utf8(line).ok()?;
        text.split_whitespace().nth(1)?.parse().ok()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let text = std::str::from_utf8(&self.headers).ok()?;
        text.split("\r\n").skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A connected client.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// Messages that arrived while [`Connection::request`] waited for its reply (a push
    /// consumer delivers before its creation is answered): [`Connection::next`] returns them
    /// first, in order.
    stash: std::collections::VecDeque<Message>,
}

/// `nats://[user:password@ | token@]host:port` (or without the scheme) → the `host:port`,
/// and the `CONNECT` fields of its credentials (empty without).
pub fn address(url: &str) -> (&str, String) {
    let rest = url.strip_prefix("nats://").unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return (rest, String::new());
    };
    let fields = match auth.split_once(':') {
        Some((user, pass)) => format!(
            ",\"user\":{},\"pass\":{}",
            serde_json::Value::from(user),
            serde_json::Value::from(pass)
        ),
        None => format!(",\"auth_token\":{}", serde_json::Value::from(auth)),
    };
    (host, fields)
}

/// Whether `url` carries credentials (`user:password@` or `token@`).
pub fn has_credentials(url: &str) -> bool {
    !address(url).1.is_empty()
}

impl Connection {
    /// Connects to the first of `urls` that answers, within `timeout` each, with `creds`
    /// (`--nats-creds`) or else the credentials in the URL. A server that refuses the
    /// credentials is an `Err` of kind `PermissionDenied`.
    pub fn connect(
        urls: &[String],
        creds: Option<&Credentials>,
        name: &str,
        timeout: Duration,
    ) -> io::Result<Connection> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no NATS url given");
        for url in urls {
            let (addr, in_url) = address(url);
            let auth = creds.map_or(in_url, Credentials::connect_fields);
            match Connection::connect_one(addr, &auth, name, timeout) {
                Ok(c) => return Ok(c),
                Err(e) => last = io::Error::new(e.kind(), format!("{url}: {e}")),
            }
        }
        Err(last)
    }

    fn connect_one(
        addr: &str,
        auth: &str,
        name: &str,
        timeout: Duration,
    ) -> io::Result<Connection> {
        let sock = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let stream = TcpStream::connect_timeout(&sock, timeout)?;
        stream.set_nodelay(true)?;
        let mut c = Connection {
            stream,
            rbuf: Vec::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(READ_CHUNK),
            stash: Default::default(),
        };
        let deadline = Instant::now() + timeout;
        let info = c.read_line(deadline)?;
        if !info.starts_with("INFO ") {
            return Err(bad(format!("expected INFO, got {info:.80}")));
        }
        let connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\
             \"no_responders\":true,\"protocol\":1,\"lang\":\"rust\",\"version\":\"{}\",\
             \"name\":\"{name}\"{auth}}}\r\nPING\r\n",
            env!("CARGO_PKG_VERSION")
        );
        c.wbuf.extend_from_slice(connect.as_bytes());
        c.flush()?;
        loop {
            let line = c.read_line(deadline)?;
            match line.as_str() {
                "PONG" => return Ok(c),
                "+OK" => {}
                l if l.starts_with("INFO ") => {}
                l if l.contains("Authorization Violation") => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("credentials refused by the server ({l:.200})"),
                    ))
                }
                l => return Err(bad(format!("connect refused: {l:.200}"))),
            }
        }
    }

    /// Queues a `SUB`.
    pub fn subscribe(&mut self, subject: &str, sid: u64) {
        self.wbuf
            .extend_from_slice(format!("SUB {subject} {sid}\r\n").as_bytes());
    }

    /// Queues an `UNSUB`.
    pub fn unsubscribe(&mut self, sid: u64) {
        self.wbuf
            .extend_from_slice(format!("UNSUB {sid}\r\n").as_bytes());
    }

    /// Queues a `PUB` (or an `HPUB` when `headers` is not empty; it must be a whole header
    /// block, see [`HeaderBlock`]).
    pub fn publish(&mut self, subject: &str, reply: Option<&str>, headers: &[u8], payload: &[u8]) {
        let w = &mut self.wbuf;
        let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
        if headers.is_empty() {
            w.extend_from_slice(format!("PUB {subject}{reply} {}\r\n", payload.len()).as_bytes());
        } else {
            let total = headers.len() + payload.len();
            w.extend_from_slice(
                format!("HPUB {subject}{reply} {} {total}\r\n", headers.len()).as_bytes(),
            );
            w.extend_from_slice(headers);
        }
        w.extend_from_slice(payload);
        w.extend_from_slice(b"\r\n");
    }

    /// Bytes queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.stream
            .set_write_timeout(Some(Duration::from_secs(5)))?;
        let r = self.stream.write_all(&self.wbuf);
        self.wbuf.clear();
        r
    }

    /// The next message, waiting at most `timeout`; `Ok(None)` when none came. Answers
    /// server `PING`s and skips `+OK`, `PONG` and `INFO` on the way.
    pub fn next(&mut self, timeout: Duration) -> io::Result<Option<Message>> {
        if let Some(m) = self.stash.pop_front() {
            return Ok(Some(m));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.parse_one()? {
                return Ok(Some(m));
            }
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Parses one message from the buffer, handling control lines; `None` when more bytes
    /// are needed.
    fn parse_one(&mut self) -> io::Result<Option<Message>> {
        loop {
            let Some(end) = find_crlf(&self.rbuf) else {
                if self.rbuf.len() > MAX_LINE {
                    return Err(bad("control line too long".into()));
                }
                return Ok(None);
            };
            let line = std::str::from_utf8(&self.rbuf[..end])
                .map_err(|_| bad("control line is not UTF-8".into()))?
                .to_owned();
            let mut words = line.split_whitespace();
            let op = words.next().unwrap_or("").to_ascii_uppercase();
            match op.as_str() {
                "MSG" | "HMSG" => {
                    let args: Vec<&str> = words.collect();
                    let m = self.take_message(&op, &args, end + 2)?;
                    return Ok(m);
                }
                "PING" => {
                    self.rbuf.drain(..end + 2);
                    self.wbuf.extend_from_slice(b"PONG\r\n");
                    self.flush()?;
                }
                "PONG" | "+OK" | "INFO" | "" => {
                    self.rbuf.drain(..end + 2);
                }
                "-ERR" => return Err(bad(format!("server error: {line:.200}"))),
                _ => return Err(bad(format!("unknown operation: {line:.80}"))),
            }
        }
    }

    /// `MSG <subject> <sid> [reply] <size>` / `HMSG <subject> <sid> [reply] <hdr> <size>`
    /// whose control line ends at `body`: the message, or `None` until all of it is here.
    fn take_message(
        &mut self,
        op: &str,
        args: &[&str],
        body: usize,
    ) -> io::Result<Option<Message>> {
        let with_headers = op == "HMSG";
        let sizes = if with_headers { 2 } else { 1 };
        if args.len() < 2 + sizes || args.len() > 3 + sizes {
            return Err(bad(format!("{op} with {} arguments", args.len())));
        }
        let num = |s: &str| -> io::Result<usize> {
            s.parse().map_err(|_| bad(format!("bad size {s:.20}")))
        };
        let total = num(args[args.len() - 1])?;
        let hdr = if with_headers {
            num(args[args.len() - 2])?
        } else {
            0
        };
        if hdr > total {
            return Err(bad("header size above total".into()));
        }
        if self.rbuf.len() < body + total + 2 {
            return Ok(None);
        }
        let reply = (args.len() == 3 + sizes).then(|| args[2].to_owned());
        let sid = args[1].parse().map_err(|_| bad("bad sid".into()))?;
        let m = Message {
            subject: args[0].to_owned(),
            sid,
            reply,
            headers: self.rbuf[body..body + hdr].to_vec(),
            payload: self.rbuf[body + hdr..body + total].to_vec(),
        };
        self.rbuf.drain(..body + total + 2);
        Ok(Some(m))
    }

    /// Reads more bytes; `false` when the deadline passed with none.
    fn fill(&mut self, deadline: Instant) -> io::Result<bool> {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        self.stream
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
        let len = self.rbuf.len();
        self.rbuf.resize(len + READ_CHUNK, 0);
        let r = self.stream.read(&mut self.rbuf[len..]);
        match r {
            Ok(0) => {
                self.rbuf.truncate(len);
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed",
                ))
            }
            Ok(n) => {
                self.rbuf.truncate(len + n);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.rbuf.truncate(len);
                Ok(false)
            }
            Err(e) => {
                self.rbuf.truncate(len);
                Err(e)
            }
        }
    }

    fn read_line(&mut self, deadline: Instant) -> io::Result<String> {
        loop {
            if let Some(end) = find_crlf(&self.rbuf) {
                let line = String::from_utf8_lossy(&self.rbuf[..end]).into_owned();
                self.rbuf.drain(..end + 2);
                return Ok(line);
            }
            if !self.fill(deadline)? {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"));
            }
        }
    }

    /// Sends `body` to `subject` and waits up to `timeout` for the one reply, on a reply
    /// subject of its own (`sid` must be unused); other messages that arrive meanwhile are
    /// kept for [`Connection::next`].
    pub fn request(
        &mut self,
        subject: &str,
        body: &[u8],
        sid: u64,
        timeout: Duration,
    ) -> io::Result<Message> {
        let inbox = format!("_INBOX.rg{}.{sid}", std::process::id());
        self.subscribe(&inbox, sid);
        self.publish(subject, Some(&inbox), &[], body);
        self.flush()?;
        let deadline = Instant::now() + timeout;
        let mut arrived = std::mem::take(&mut self.stash);
        let result = loop {
            let m = match self.parse_one()? {
                Some(m) => m,
                None if self.fill(deadline)? => continue,
                None => break Err(io::Error::new(io::ErrorKind::TimedOut, "no reply")),
            };
            if m.sid == sid {
                break Ok(m);
            }
            arrived.push_back(m);
        };
        self.stash = arrived;
        self.unsubscribe(sid);
        self.flush()?;
        result
    }
}

/// A header block being built: `NATS/1.0\r\n`, `Key: Value\r\n` lines, a closing `\r\n`.
#[derive(Debug, Default)]
pub struct HeaderBlock {
    buf: Vec<u8>,
}

impl HeaderBlock {
    pub fn new() -> HeaderBlock {
        HeaderBlock {
            buf: b"NATS/1.0\r\n".to_vec(),
        }
    }

    /// Adds one header; `value` must not contain CR or LF (callers pass numbers, names, hex).
    pub fn add(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        use std::io::Write as _;
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    /// The finished block.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_status_are_read_from_the_block() {
        let m = Message {
            subject: "x".into(),
            sid: 1,
            reply: None,
            headers: b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Stream: 3\r\n\r\n".to_vec(),
            payload: Vec::new(),
        };
        assert_eq!(m.status(), Some(100));
        assert_eq!(m.header("nats-last-stream"), Some("3"));
        assert_eq!(m.header("Nats-Last-Consumer"), None);
        let mut h = HeaderBlock::new();
        h.add("A", 1).add("B", "x");
        assert_eq!(h.finish(), b"NATS/1.0\r\nA: 1\r\nB: x\r\n\r\n".to_vec());
    }
}
