//! The client: connect, subscribe, hand out typed items, reconnect and resume exactly.
//!
//! Cursor rules (docs/protocol.md §2, docs/decisions/resume-rules.md):
//!
//! - Data frames (`Events`, `TPS`, `ContentionData`, `TopAccesses`, `Lifecycle`, `Gap`) carry
//!   strictly increasing `server_seqno`s, unique within a server epoch; an `Events` frame
//!   carries the highest seqno of its events. Per-connection frames (`Hello`, `Resume`,
//!   `Subscribed`, `Error`, `Warning`, `Shed`, `Heartbeat`, the connect-time snapshot) repeat the
//!   session's cursor.
//! - [`Client::cursor`] is the `(epoch, server_seqno)` of the last data frame handed out; for
//!   an `Events` frame it moves when the frame's *last* event is handed out. It starts at the
//!   `Hello` seqno, so a connection that drops before its first data frame resumes exactly.
//! - A reconnect sends `resume_from=<seqno>&epoch=<epoch>` of everything already queued, and
//!   a data frame at or below that in the same epoch is dropped (de-duplication by
//!   `(epoch, server_seqno)`): nothing is handed out twice by one client.
//! - A resume that cannot recover (`Resume.recovered == false`) is surfaced as a `Gap`: the
//!   server's `resume_window` gap when it sends one, else a synthetic `resume_failed` gap.
//! - A backpressure `Warning` with a dropped range is handed out, then (with reconnect on and
//!   the server's `resume` feature) the client reconnects from its cursor, which replays the
//!   dropped frames.
//! - A priority-lane `Shed` report is handed out as [`Item::Shed`]; with reconnect on and
//!   [`Options::recover_shed`] (both default true) it is recovered the same way (the server
//!   announces a shed run before its cursor passes the run's first frame, so the replay holds
//!   every shed frame). With `recover_shed(false)` the connection is kept: the server's lanes
//!   keep block-level events flowing, and the shed frames are lost to this client, announced.
//!
//! [`Client::next`] is cancel safe between frames: dropping a pending call loses no item that
//! was already received (items are queued before they are handed out).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::filter::{query_events, subscribe_message, Matcher, META_ITEMS};
use crate::frame::{self, Frame};
use crate::types::*;
use crate::url::{build_url, redact};
use crate::{Cursor, Error};

/// The stages `min_stage` accepts.
pub const STAGES: &[&str] = &["Proposed", "Voted", "Finalized", "Verified"];

/// HTTP statuses worth retrying on a reconnect.
const TRANSIENT_STATUS: &[u16] = &[408, 425, 429, 500, 502, 503, 504];

/// What to connect to and how; the same names as the Python and TypeScript clients.
#[derive(Debug, Clone)]
pub struct Options {
    /// `all` (default), `blocks`, `txs`, `contention`, `lifecycle`.
    pub channel: Option<String>,
    /// Event names, `NativeTransfer` and meta items (`events=` query; `None`: the channel's set).
    pub events: Option<Vec<String>>,
    /// Filter specs (`{"event_name":…,"field_filters":[…]}`), sent as an advanced subscribe.
    pub filters: Vec<Value>,
    /// `Proposed`, `Voted`, `Finalized` or `Verified`.
    pub min_stage: Option<String>,
    /// Access key, sent as `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Resume the first connection from here.
    pub from_cursor: Option<Cursor>,
    /// Reconnect and resume after drops (default true).
    pub reconnect: bool,
    /// On a priority-lane `Shed` report, resume from the cursor so the shed frames are
    /// replayed and nothing is lost (default true). False keeps the connection: the server's
    /// lanes keep block-level events flowing to a reader that cannot take everything, and the
    /// shed frames are lost to it, announced by [`Item::Shed`].
    pub recover_shed: bool,
    /// First back-off cap (default 100 ms); doubles per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Largest back-off cap (default 5 s).
    pub backoff_max: Duration,
    /// TCP + WebSocket handshake timeout (default 10 s).
    pub open_timeout: Duration,
    /// Time to wait for `Hello` after the handshake (default 10 s).
    pub hello_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            channel: None,
            events: None,
            filters: Vec::new(),
            min_stage: None,
            token: None,
            from_cursor: None,
            reconnect: true,
            recover_shed: true,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            open_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
        }
    }
}

impl Options {
    /// Sets `channel`.
    pub fn channel(mut self, c: impl Into<String>) -> Options {
        self.channel = Some(c.into());
        self
    }
    /// Sets `events` (names, or one comma-separated string).
    pub fn events<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, names: I) -> Options {
        let v: Vec<String> = names
            .into_iter()
            .flat_map(|s| {
                s.as_ref()
                    .split(',')
                    .map(|p| p.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect();
        self.events = Some(v);
        self
    }
    /// Adds a filter spec.
    pub fn filter(mut self, spec: Value) -> Options {
        self.filters.push(spec);
        self
    }
    /// Sets `min_stage`.
    pub fn min_stage(mut self, s: impl Into<String>) -> Options {
        self.min_stage = Some(s.into());
        self
    }
    /// Sets the access token.
    pub fn token(mut self, t: impl Into<String>) -> Options {
        self.token = Some(t.into());
        self
    }
    /// Resume from a cursor (e.g. one persisted by an earlier run).
    pub fn from_cursor(mut self, c: Cursor) -> Options {
        self.from_cursor = Some(c);
        self
    }
    /// Turns reconnecting on or off.
    pub fn reconnect(mut self, on: bool) -> Options {
        self.reconnect = on;
        self
    }
    /// Sets `recover_shed`.
    pub fn recover_shed(mut self, on: bool) -> Options {
        self.recover_shed = on;
        self
    }
    /// Sets the back-off bounds.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Options {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }
}

/// Counters of what the client did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections opened (Hello received).
    pub connections: u64,
    /// Frames received.
    pub frames: u64,
    /// Events handed out.
    pub events: u64,
    /// Data frames dropped as already handed out (same epoch, seqno ≤ cursor).
    pub duplicates_dropped: u64,
    /// Events dropped by the local field filter before the server's acknowledgement.
    pub prefiltered: u64,
    /// Drops that started a reconnect.
    pub reconnects: u64,
    /// Gaps handed out (server and synthetic).
    pub gaps: u64,
    /// Backpressure warnings handed out.
    pub warnings: u64,
    /// Priority-lane `Shed` reports handed out.
    pub sheds: u64,
    /// Events whose payload did not decode as documented (handed out as `Payload::Unknown`).
    pub undecoded: u64,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Conn {
    ws: Ws,
    epoch: u64,
    hello_seqno: u64,
    live_seen: bool,
    acked: bool,
    expect_server_gap: bool,
    resume_gap: Option<Meta<Gap>>,
    recover: bool,
    features: Vec<String>,
}

struct Retry {
    attempt: u32,
    delay: Duration,
}

/// A subscription with automatic reconnect and exact resume. Made by [`connect`].
pub struct Client {
    opts: Options,
    url: String,
    matcher: Option<Matcher>,
    cursor: Option<Cursor>,
    /// The cursor once every queued item is handed out: the resume request and the
    /// de-duplication bound.
    horizon: Option<Cursor>,
    pending: VecDeque<(Option<Item>, Option<Cursor>)>,
    conn: Option<Conn>,
    retry: Option<Retry>,
    resume_requested: Option<Cursor>,
    closed: bool,
    subscription: Option<Value>,
    stats: Stats,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &redact(&self.url))
            .field("cursor", &self.cursor)
            .field("connected", &self.conn.is_some())
            .field("stats", &self.stats)
            .finish()
    }
}

/// Opens the first connection (its failures are returned here, connection refused
/// included) and returns the client; iterate with [`Client::next`] or [`Client::into_stream`].
pub async fn connect(url: &str, opts: Options) -> Result<Client, Error> {
    let mut c = Client::new(url, opts)?;
    c.open().await?;
    Ok(c)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Client {
    /// A client that has not connected yet (the first [`Client::next`] connects).
    pub fn new(url: &str, opts: Options) -> Result<Client, Error> {
        if let Some(s) = &opts.min_stage {
            if !STAGES.contains(&s.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "min_stage must be one of {}, got {s:?}",
                    STAGES.join(", ")
                )));
            }
        }
        if opts.backoff_initial.is_zero() || opts.backoff_max < opts.backoff_initial {
            return Err(Error::InvalidArgument(
                "need 0 < backoff_initial <= backoff_max".into(),
            ));
        }
        build_url(url, opts.channel.as_deref(), &[])?;
        let matcher =
            (!opts.filters.is_empty()).then(|| Matcher::new(opts.events.as_deref(), &opts.filters));
        Ok(Client {
            url: url.to_owned(),
            matcher,
            cursor: opts.from_cursor,
            horizon: opts.from_cursor,
            pending: VecDeque::new(),
            conn: None,
            retry: None,
            resume_requested: None,
            closed: false,
            subscription: None,
            stats: Stats::default(),
            opts,
        })
    }

    /// `(epoch, server_seqno)` of the last data frame handed out; `None` before `Hello`
    /// (unless started `from_cursor`). Persist it (`to_string()`) to resume after a restart.
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }

    /// The last `Subscribed` body (when filters were given).
    pub fn subscription(&self) -> Option<&Value> {
        self.subscription.as_ref()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The WebSocket URL without resume parameters.
    pub fn url(&self) -> String {
        build_url(&self.url, self.opts.channel.as_deref(), &self.query(None)).unwrap_or_default()
    }

    /// Closes the connection; [`Client::next`] then returns `None`.
    pub async fn close(&mut self) {
        self.closed = true;
        self.pending.clear();
        if let Some(mut c) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_millis(250), c.ws.close(None)).await;
        }
    }

    /// The client as a `Stream` of items (ends after `close` or a fatal error).
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Item, Error>> {
        futures_util::stream::unfold(self, |mut c| async move { c.next().await.map(|i| (i, c)) })
    }

    fn query(&self, cursor: Option<Cursor>) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(c) = cursor {
            q.push(("resume_from", c.seqno.to_string()));
            q.push(("epoch", c.epoch.to_string()));
        }
        if let Some(names) = query_events(self.opts.events.as_deref(), &self.opts.filters) {
            q.push(("events", names.join(",")));
        }
        if let Some(s) = &self.opts.min_stage {
            q.push(("min_stage", s.clone()));
        }
        // ringgate's extended meta shapes (docs/protocol.md §9).
        q.push(("extended", "1".into()));
        q
    }

    async fn open(&mut self) -> Result<(), Error> {
        let resume = self.horizon;
        let url = build_url(&self.url, self.opts.channel.as_deref(), &self.query(resume))?;
        let shown = redact(&url);
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::InvalidArgument(format!("{shown}: {e}")))?;
        if let Some(t) = &self.opts.token {
            let v = format!("Bearer {t}")
                .parse()
                .map_err(|_| Error::InvalidArgument("token is not a valid header value".into()))?;
            req.headers_mut().insert("authorization", v);
        }
        req.headers_mut().insert(
            "user-agent",
            concat!("ringgate-client-rust/", env!("CARGO_PKG_VERSION"))
                .parse()
                .expect("static header"),
        );
        let cfg = WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let connecting = tokio_tungstenite::connect_async_with_config(req, Some(cfg), true);
        let mut ws = match tokio::time::timeout(self.opts.open_timeout, connecting).await {
            Err(_) => return Err(Error::Connect(format!("{shown}: handshake timed out"))),
            Ok(Err(e)) => return Err(handshake_error(&shown, e)),
            Ok(Ok((ws, _))) => ws,
        };
        let hello_text =
            match tokio::time::timeout(self.opts.hello_timeout, next_text(&mut ws)).await {
                Err(_) => {
                    return Err(Error::NotRinggate(format!(
                        "{shown}: no Hello frame within {:?}; is this a ringgate gateway?",
                        self.opts.hello_timeout
                    )))
                }
                Ok(Err(why)) => {
                    return Err(Error::Connect(format!(
                        "{shown}: closed before Hello ({why})"
                    )))
                }
                Ok(Ok(t)) => t,
            };
        let f = frame::parse(&hello_text).map_err(|e| {
            Error::NotRinggate(format!("{shown}: first frame is not a ringgate Hello: {e}"))
        })?;
        if f.kind != "Hello" {
            return Err(Error::NotRinggate(format!(
                "{shown}: first frame is {:?}, expected Hello",
                f.kind
            )));
        }
        let hello: Hello = serde_json::from_str(f.body.get())
            .map_err(|e| Error::NotRinggate(format!("{shown}: Hello does not decode: {e}")))?;
        let mut acked = true;
        if !self.opts.filters.is_empty() {
            let msg = subscribe_message(
                self.opts.events.as_deref(),
                &self.opts.filters,
                self.opts.min_stage.as_deref(),
            );
            ws.send(Message::text(msg.to_string()))
                .await
                .map_err(|e| Error::Connect(format!("{shown}: closed after Hello ({e})")))?;
            acked = false;
        }
        let start = Cursor::new(hello.epoch, f.server_seqno);
        self.conn = Some(Conn {
            ws,
            epoch: hello.epoch,
            hello_seqno: f.server_seqno,
            live_seen: false,
            acked,
            expect_server_gap: false,
            resume_gap: None,
            recover: false,
            features: hello.features.clone(),
        });
        self.stats.connections += 1;
        let item = Item::Connected(Connected {
            hello,
            server_seqno: f.server_seqno,
            url: shown,
            reconnect: self.stats.connections > 1,
        });
        self.push(Some(item), Some(start));
        self.resume_requested = resume;
        Ok(())
    }

    fn push(&mut self, item: Option<Item>, advance: Option<Cursor>) {
        self.pending.push_back((item, advance));
        if advance.is_some() {
            self.horizon = advance;
        }
    }

    fn is_dup(&self, epoch: u64, seqno: u64) -> bool {
        self.horizon
            .is_some_and(|h| h.epoch == epoch && seqno <= h.seqno)
    }

    /// Whether a loss notice (`Warning`: dropped frames, `Shed`: shed frames) from `lost_from`
    /// is recovered by resuming from the cursor: reconnect is on, the loss has a range, the
    /// server can resume, and the caller `wanted` it. Marks the connection to reconnect if so.
    fn recover_loss(&mut self, lost_from: Option<u64>, wanted: bool) -> bool {
        let reconnect = self.opts.reconnect;
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let recover = wanted
            && reconnect
            && lost_from.is_some()
            && conn.features.iter().any(|x| x == "resume");
        conn.recover |= recover;
        recover
    }

    fn flush_resume_gap(&mut self) {
        let conn = self.conn.as_mut().expect("connected");
        conn.expect_server_gap = false;
        if let Some(g) = conn.resume_gap.take() {
            self.stats.gaps += 1;
            self.push(Some(Item::Gap(g)), None);
        }
    }

    /// Handles one text frame: queues its items.
    fn handle(&mut self, text: &str, received_ns: u64) -> Result<(), Error> {
        let f = frame::parse(text)?;
        self.stats.frames += 1;
        let conn = self.conn.as_ref().expect("connected");
        let (epoch, s) = (conn.epoch, f.server_seqno);
        let is_meta = META_ITEMS.contains(&f.kind.as_str());
        let st = Stamp {
            server_seqno: s,
            epoch,
            received_ns,
            raw_json: f.body.get().to_owned(),
        };
        match f.kind.as_str() {
            "Events" | "Gap" | "TPS" | "ContentionData" | "TopAccesses" | "Lifecycle" => {
                if is_meta && s == conn.hello_seqno && !conn.live_seen {
                    // Connect-time snapshot: a per-connection copy stamped with the cursor.
                    let item = decode_meta(&f, &st, true)?;
                    self.push(Some(item), None);
                    return Ok(());
                }
                if self.is_dup(epoch, s) {
                    self.stats.duplicates_dropped += 1;
                    return Ok(());
                }
                self.conn.as_mut().expect("connected").live_seen = true;
                let advance = Some(Cursor::new(epoch, s));
                if f.kind == "Gap" {
                    let gap: Gap = body(&f)?;
                    let conn = self.conn.as_mut().expect("connected");
                    if conn.expect_server_gap && gap.reason == "resume_window" {
                        conn.resume_gap = None; // the server's Gap says exactly what was lost
                    }
                    self.flush_resume_gap();
                    self.stats.gaps += 1;
                    self.push(Some(Item::Gap(st.wrap(gap, false))), advance);
                    return Ok(());
                }
                self.flush_resume_gap();
                if f.kind == "Events" {
                    return self.handle_events(&f, epoch, received_ns, advance);
                }
                let item = decode_meta(&f, &st, false)?;
                self.push(Some(item), advance);
            }
            "Resume" => {
                let resume: Resume = body(&f)?;
                let requested = self.resume_requested;
                let failed = requested.is_some() && !resume.recovered;
                if failed {
                    let too_old = resume.reason.as_deref() == Some("too_old");
                    let prev = requested.expect("requested");
                    let gap = Gap {
                        reason: "resume_failed".into(),
                        from_seqno: (prev.epoch == epoch).then_some(prev.seqno + 1),
                        to_seqno: None,
                        ring_from_seqno: None,
                        ring_to_seqno: None,
                        block_number: None,
                        block_id: None,
                        synthetic: true,
                        resume_reason: resume.reason.clone(),
                        previous_cursor: requested,
                    };
                    let g = Meta {
                        raw_json: String::new(),
                        ..st.wrap(gap, false)
                    };
                    let conn = self.conn.as_mut().expect("connected");
                    conn.resume_gap = Some(g);
                    conn.expect_server_gap = too_old; // its resume_window Gap comes next
                }
                self.push(
                    Some(Item::Resumed(Resumed {
                        resume,
                        server_seqno: s,
                        requested,
                    })),
                    None,
                );
                if failed && !self.conn.as_ref().expect("connected").expect_server_gap {
                    self.flush_resume_gap();
                }
            }
            "Warning" => {
                let mut w: Warning = body(&f)?;
                w.recovering = self.recover_loss(w.dropped_from_seqno, true);
                self.stats.warnings += 1;
                self.push(Some(Item::Warning(st.wrap(w, false))), None);
            }
            "Shed" => {
                let mut shed: Shed = body(&f)?;
                shed.recovering = self.recover_loss(shed.from_seqno, self.opts.recover_shed);
                self.stats.sheds += 1;
                self.push(Some(Item::Shed(st.wrap(shed, false))), None);
            }
            "Subscribed" => {
                self.conn.as_mut().expect("connected").acked = true;
                self.subscription = serde_json::from_str(f.body.get()).ok();
            }
            "Error" => {
                let v: Value = serde_json::from_str(f.body.get()).unwrap_or(Value::Null);
                let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                return Err(Error::Subscription {
                    code: field("code"),
                    message: field("message"),
                });
            }
            // Hello again, Heartbeat, and types this client does not know: nothing to hand out.
            _ => {}
        }
        Ok(())
    }

    fn handle_events(
        &mut self,
        f: &Frame<'_>,
        epoch: u64,
        received_ns: u64,
        advance: Option<Cursor>,
    ) -> Result<(), Error> {
        let raws = frame::events(f.body)?;
        let prefilter = match (&self.matcher, self.conn.as_ref().expect("connected").acked) {
            (Some(m), false) => Some(m),
            _ => None,
        };
        let mut kept = Vec::with_capacity(raws.len());
        for raw in raws {
            if let Some(m) = prefilter {
                let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                if !m.matches(&v) {
                    self.stats.prefiltered += 1;
                    continue;
                }
            }
            kept.push(raw);
        }
        let n = kept.len();
        if n == 0 {
            self.push(None, advance);
            return Ok(());
        }
        for (i, raw) in kept.into_iter().enumerate() {
            let mut ev = match serde_json::from_str::<Event>(raw.get()) {
                Ok(ev) => ev,
                Err(_) => {
                    self.stats.undecoded += 1;
                    loose_event(raw.get())?
                }
            };
            ev.server_seqno = f.server_seqno;
            ev.epoch = epoch;
            ev.received_ns = received_ns;
            ev.frame_index = i;
            ev.frame_size = n;
            ev.raw_json = raw.get().to_owned();
            self.stats.events += 1;
            self.push(
                Some(Item::Event(Box::new(ev))),
                (i + 1 == n).then_some(advance).flatten(),
            );
        }
        Ok(())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .opts
            .backoff_initial
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20))
            .min(self.opts.backoff_max);
        cap.mul_f64(fastrand::f64()) // full jitter
    }

    fn schedule(&mut self, attempt: u32, reason: String, close_code: Option<u16>) -> Item {
        let delay = self.backoff(attempt);
        self.retry = Some(Retry { attempt, delay });
        Item::Reconnecting(Reconnecting {
            attempt,
            delay,
            reason,
            close_code,
        })
    }

    /// The connection ended: reconnect, or end / fail when reconnecting is off.
    fn dropped(&mut self, code: u16, reason: String) -> Option<Result<Item, Error>> {
        self.conn = None;
        if !self.opts.reconnect {
            self.closed = true;
            return match code {
                1000 | 1001 => None,
                _ => Some(Err(Error::ConnectionLost { code, reason })),
            };
        }
        self.stats.reconnects += 1;
        let why = format!(
            "connection closed (code {code}{}{reason})",
            if reason.is_empty() { "" } else { ": " }
        );
        Some(Ok(self.schedule(1, why, Some(code))))
    }

    /// The next item; `None` once closed (or, with reconnect off, after a normal close).
    pub async fn next(&mut self) -> Option<Result<Item, Error>> {
        loop {
            if let Some((item, advance)) = self.pending.pop_front() {
                if advance.is_some() {
                    self.cursor = advance;
                }
                if let Some(item) = item {
                    return Some(Ok(item));
                }
                continue;
            }
            if self.closed {
                return None;
            }
            if let Some(r) = &self.retry {
                let attempt = r.attempt;
                tokio::time::sleep(r.delay).await;
                match self.open().await {
                    Ok(()) => self.retry = None,
                    Err(e) if e.is_transient() => {
                        return Some(Ok(self.schedule(attempt + 1, e.to_string(), None)))
                    }
                    Err(e) => {
                        self.retry = None;
                        self.closed = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            let Some(conn) = self.conn.as_mut() else {
                if let Err(e) = self.open().await {
                    self.closed = true;
                    return Some(Err(e));
                }
                continue;
            };
            if conn.recover {
                let _ = tokio::time::timeout(Duration::from_millis(250), conn.ws.close(None)).await;
                self.conn = None;
                self.stats.reconnects += 1;
                return Some(Ok(self.schedule(
                    1,
                    "resume after backpressure drops or shed frames".into(),
                    None,
                )));
            }
            match conn.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Err(e) = self.handle(t.as_str(), now_ns()) {
                        self.conn = None;
                        self.closed = true;
                        return Some(Err(e));
                    }
                }
                Some(Ok(Message::Close(cf))) => {
                    let (code, reason) = cf.map_or((1005, String::new()), |c| {
                        (u16::from(c.code), c.reason.to_string())
                    });
                    if let Some(r) = self.dropped(code, reason) {
                        return Some(r);
                    }
                }
                Some(Ok(_)) => {} // ping (answered by the library), pong, binary
                Some(Err(e)) => {
                    if let Some(r) = self.dropped(1006, e.to_string()) {
                        return Some(r);
                    }
                }
                None => {
                    if let Some(r) = self.dropped(1006, "no close frame".into()) {
                        return Some(r);
                    }
                }
            }
        }
    }
}

/// The next text message, skipping control frames; `Err` with why when the socket ends.
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(cf))) => {
                return Err(cf.map_or("close frame".into(), |c| {
                    format!("code {}: {}", u16::from(c.code), c.reason)
                }))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection ended".into()),
        }
    }
}

fn body<T: serde::de::DeserializeOwned>(f: &Frame<'_>) -> Result<T, Error> {
    serde_json::from_str(f.body.get())
        .map_err(|e| Error::Protocol(format!("{} frame does not decode: {e}", f.kind)))
}

/// What every meta item of one frame is stamped with.
struct Stamp {
    server_seqno: u64,
    epoch: u64,
    received_ns: u64,
    raw_json: String,
}

impl Stamp {
    fn wrap<T>(&self, body: T, snapshot: bool) -> Meta<T> {
        Meta {
            body,
            server_seqno: self.server_seqno,
            epoch: self.epoch,
            received_ns: self.received_ns,
            snapshot,
            raw_json: self.raw_json.clone(),
        }
    }
}

fn decode_meta(f: &Frame<'_>, st: &Stamp, snapshot: bool) -> Result<Item, Error> {
    Ok(match f.kind.as_str() {
        "TPS" => Item::Tps(st.wrap(body(f)?, snapshot)),
        "ContentionData" => Item::ContentionData(Box::new(st.wrap(body(f)?, snapshot))),
        "TopAccesses" => Item::TopAccesses(Box::new(st.wrap(body(f)?, snapshot))),
        "Lifecycle" => Item::Lifecycle(st.wrap(body(f)?, snapshot)),
        other => return Err(Error::Protocol(format!("{other} is not a meta frame"))),
    })
}

/// An event whose payload is not as documented: the envelope with `Payload::Unknown`.
fn loose_event(raw: &str) -> Result<Event, Error> {
    let mut v: Value = serde_json::from_str(raw)
        .map_err(|e| Error::Protocol(format!("event is not JSON: {e}")))?;
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "payload".into(),
            serde_json::json!({"type": "\u{0}unknown"}),
        );
    }
    serde_json::from_value(v)
        .map_err(|e| Error::Protocol(format!("event envelope does not decode: {e}")))
}

impl From<tungstenite::Error> for Error {
    fn from(e: tungstenite::Error) -> Error {
        Error::Connect(e.to_string())
    }
}

fn handshake_error(url: &str, e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = resp.status().as_u16();
            let text = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned));
            match status {
                401 | 403 => Error::Authentication {
                    status,
                    message: message.unwrap_or_else(|| "token refused".into()),
                },
                s if TRANSIENT_STATUS.contains(&s) => {
                    Error::Connect(format!("{url}: HTTP {s}: {}", message.unwrap_or(text)))
                }
                s => match message {
                    Some(m) => Error::RequestRejected { status: s, message: m },
                    None => Error::NotRinggate(format!(
                        "{url}: HTTP {s} instead of a WebSocket upgrade and no ringgate error body ({:?}); is this a ringgate gateway?",
                        text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(100).collect::<String>()
                    )),
                },
            }
        }
        tungstenite::Error::Io(e) => Error::Connect(format!("{url}: {e}")),
        // Closed before a whole HTTP response: a network error, e.g. a gateway that is
        // stopping or restarting (its listen backlog is closed unanswered), not proof of a
        // foreign server. Transient, so a reconnect retries it.
        tungstenite::Error::Protocol(tungstenite::error::ProtocolError::HandshakeIncomplete) => {
            Error::Connect(format!(
                "{url}: the connection closed before the HTTP response"
            ))
        }
        tungstenite::Error::Url(e) => Error::InvalidArgument(format!("{url}: {e}")),
        e @ (tungstenite::Error::Protocol(_)
        | tungstenite::Error::HttpFormat(_)
        | tungstenite::Error::Utf8(_)) => Error::NotRinggate(format!(
            "{url}: WebSocket handshake failed ({e}); is this a ringgate gateway?"
        )),
        e => Error::Connect(format!("{url}: {e}")),
    }
}
