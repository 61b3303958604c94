//! The JetStream side of the bus: the stream's settings, its subjects, the envelope of one
//! frame (subject, headers, body), and the `$JS.API` requests ringgate makes (create or check
//! the stream, create an edge's consumer), as JSON request/reply over [`Connection`].
//!
//! One stream holds every frame of every epoch. A frame's subject is
//! `<stream>.<epoch>.<kind>` (kind: the event type's name, or `Tps`, `ContentionData`,
//! `TopAccesses`, `Lifecycle`, `Gap`, `Rpc`), so a consumer selects an epoch, a kind or both
//! server-side. The body is the frame's history record ([`crate::history::record`]): the same
//! bytes the journal stores, so an edge rebuilds the exact frame (seqno, keys, JSON). Headers
//! carry what a consumer filters on without decoding the body (docs/scale-out.md §2).

use std::io;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bus::client::{Connection, HeaderBlock, Message};
use crate::model::outbound::{MetaKind, Outbound};
use crate::wire::json::to_hex;

/// How long a `$JS.API` request may take.
pub const API_TIMEOUT: Duration = Duration::from_secs(5);

/// The stream's settings (flags `--nats-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Stream name, also the first token of every subject.
    pub name: String,
    /// Oldest message kept; 0 = no age limit.
    pub max_age: Duration,
    /// Most bytes kept; 0 = no byte limit. The oldest messages go first.
    pub max_bytes: u64,
    /// Copies kept by a NATS cluster (1 on a single server).
    pub replicas: u32,
    /// Window in which JetStream drops a re-published frame (same `Nats-Msg-Id`).
    pub duplicate_window: Duration,
}

/// The subject of `frame` on stream `stream` in `epoch`.
pub fn subject(stream: &str, epoch: u64, frame: &Outbound) -> String {
    let kind = match frame {
        Outbound::Event(e) => e.keys.event_type.name(),
        Outbound::Rpc(_) => "Rpc",
        Outbound::Meta(m) => match m.kind {
            MetaKind::Tps => "Tps",
            MetaKind::ContentionData => "ContentionData",
            MetaKind::TopAccesses => "TopAccesses",
            MetaKind::Lifecycle => "Lifecycle",
            MetaKind::Gap => "Gap",
        },
    };
    format!("{stream}.{epoch}.{kind}")
}

/// Header names (values are decimal numbers, names or `0x` hex).
pub mod header {
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const EPOCH: &str = "Ringgate-Epoch";
    pub const SEQNO: &str = "Ringgate-Seqno";
    pub const BLOCK: &str = "Ringgate-Block";
    pub const TXN: &str = "Ringgate-Txn";
    pub const STAGE: &str = "Ringgate-Stage";
    pub const ADDRESS: &str = "Ringgate-Address";
    pub const TOPIC: &str = "Ringgate-Topic";
}

/// The header block of `frame`: its dedup id (`<epoch>:<seqno>`), epoch and seqno, and for
/// an event its block number, transaction index, `min_stage` stream, addresses and topics.
pub fn headers(epoch: u64, frame: &Outbound) -> Vec<u8> {
    let seqno = frame.server_seqno();
    let mut h = HeaderBlock::new();
    h.add(header::MSG_ID, format_args!("{epoch}:{seqno}"))
        .add(header::EPOCH, epoch)
        .add(header::SEQNO, seqno);
    if let Outbound::Event(e) = frame {
        if let Some(b) = e.keys.block_number {
            h.add(header::BLOCK, b);
        }
        if let Some(t) = e.keys.txn_idx {
            h.add(header::TXN, t);
        }
        h.add(header::STAGE, e.gate.name());
        for a in e.keys.addresses() {
            h.add(header::ADDRESS, to_hex(a));
        }
        for t in e.keys.topics() {
            h.add(header::TOPIC, to_hex(t));
        }
    }
    h.finish()
}

/// An error answer of the JetStream API (`{"error":{"code":…,"description":…}}`).
fn api_error(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    Some(format!(
        "{} {}",
        e.get("code").and_then(Value::as_u64).unwrap_or(0),
        e.get("description").and_then(Value::as_str).unwrap_or("")
    ))
}

/// One `$JS.API` request: its JSON answer, or the API's error as an `Err`.
pub fn api(c: &mut Connection, subject: &str, body: &Value, sid: u64) -> io::Result<Value> {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let reply = c.request(subject, &body, sid, API_TIMEOUT)?;
    if reply.status() == Some(503) {
        return Err(io::Error::other("JetStream is not enabled on this server"));
    }
    let v: Value = serde_json::from_slice(&reply.payload)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    match api_error(&v) {
        Some(e) => Err(io::Error::other(format!("{subject}: {e}"))),
        None => Ok(v),
    }
}

/// Creates the stream, or checks an existing one and brings its limits to `s` (an update
/// keeps its messages). Returns the stream's last sequence.
pub fn ensure_stream(c: &mut Connection, s: &StreamSettings, sid: u64) -> io::Result<u64> {
    let nanos = |d: Duration| d.as_nanos().min(i64::MAX as u128) as i64;
    let config = json!({
        "name": s.name,
        "subjects": [format!("{}.>", s.name)],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "max_age": nanos(s.max_age),
        "max_bytes": if s.max_bytes == 0 { -1 } else { s.max_bytes.min(i64::MAX as u64) as i64 },
        "num_replicas": s.replicas.max(1),
        "duplicate_window": nanos(s.duplicate_window),
    });
    let info = api(
        c,
        &format!("$JS.API.STREAM.INFO.{}", s.name),
        &Value::Null,
        sid,
    );
    let v = match info {
        Ok(_) => api(
            c,
            &format!("$JS.API.STREAM.UPDATE.{}", s.name),
            &config,
            sid,
        )?,
        Err(e) if e.to_string().contains("404") => api(
            c,
            &format!("$JS.API.STREAM.CREATE.{}", s.name),
            &config,
            sid,
        )?,
        Err(e) => return Err(e),
    };
    Ok(v["state"]["last_seq"].as_u64().unwrap_or(0))
}

/// Where an edge's consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The stream's last message on the filter (to learn the current epoch).
    Last,
    /// From this stream sequence on (1 = the oldest kept).
    Sequence(u64),
}

/// Creates an ephemeral push consumer of `stream` delivering to `deliver` (already
/// subscribed): no acks, in order, flow control and idle heartbeats every `heartbeat`, gone
/// from the server when the edge is. This is what NATS clients call an ordered consumer; the
/// caller recreates it after any hole ([`AckInfo`]). Returns the messages pending at start.
pub fn create_consumer(
    c: &mut Connection,
    stream: &str,
    filter: &str,
    deliver: &str,
    start: Start,
    heartbeat: Duration,
    sid: u64,
) -> io::Result<u64> {
    let mut config = json!({
        "deliver_subject": deliver,
        "filter_subject": filter,
        "ack_policy": "none",
        "max_deliver": 1,
        "replay_policy": "instant",
        "flow_control": true,
        "idle_heartbeat": heartbeat.as_nanos() as u64,
        "inactive_threshold": (heartbeat * 10).as_nanos() as u64,
        "mem_storage": true,
        "num_replicas": 1,
    });
    match start {
        Start::Last => config["deliver_policy"] = "last".into(),
        Start::Sequence(seq) => {
            config["deliver_policy"] = "by_start_sequence".into();
            config["opt_start_seq"] = seq.max(1).into();
        }
    }
    let body = json!({ "stream_name": stream, "config": config });
    let v = api(c, &format!("$JS.API.CONSUMER.CREATE.{stream}"), &body, sid)?;
    Ok(v["num_pending"].as_u64().unwrap_or(0))
}

/// What a delivered message's reply subject says
/// (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckInfo {
    pub stream_seq: u64,
    pub consumer_seq: u64,
    pub pending: u64,
}

impl AckInfo {
    pub fn of(m: &Message) -> Option<AckInfo> {
        let reply = m.reply.as_deref()?;
        let t: Vec<&str> = reply.split('.').collect();
        if t.len() < 9 || t[0] != "$JS" || t[1] != "ACK" {
            return None;
        }
        let n = t.len();
        Some(AckInfo {
            stream_seq: t[n - 4].parse().ok()?,
            consumer_seq: t[n - 3].parse().ok()?,
            pending: t[n - 1].parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_subjects_give_the_sequences() {
        let m = Message {
            subject: "x".into(),
            sid: 1,
            reply: Some("$JS.ACK.RG.ME5wsz8E.1.3.2.1796416338752226041.7".into()),
            headers: Vec::new(),
            payload: Vec::new(),
        };
        assert_eq!(
            AckInfo::of(&m),
            Some(AckInfo {
                stream_seq: 3,
                consumer_seq: 2,
                pending: 7
            })
        );
        let plain = Message { reply: None, ..m };
        assert_eq!(AckInfo::of(&plain), None);
    }
}
