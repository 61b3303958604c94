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

use std::collections::BTreeSet;
use std::io;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bus::client::{Connection, HeaderBlock, Message};
use crate::history::record;
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

/// The subject kind of `frame`: its event type's name, or the meta frame's kind.
fn kind_of(frame: &Outbound) -> &'static str {
    match frame {
        Outbound::Event(e) => e.keys.event_type.name(),
        Outbound::Rpc(_) => "Rpc",
        Outbound::Meta(m) => match m.kind {
            MetaKind::Tps => "Tps",
            MetaKind::ContentionData => "ContentionData",
            MetaKind::TopAccesses => "TopAccesses",
            MetaKind::Lifecycle => "Lifecycle",
            MetaKind::Gap => "Gap",
        },
    }
}

/// Header names (values are decimal numbers, names or `0x` hex).
pub mod header {
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const EPOCH: &str = "Ringgate-Epoch";
    /// The first frame's `server_seqno` in the message.
    pub const SEQNO: &str = "Ringgate-Seqno";
    /// Frames in the message.
    pub const FRAMES: &str = "Ringgate-Frames";
    /// The first `server_seqno` of the publish window the message belongs to.
    pub const WINDOW: &str = "Ringgate-Window";
    /// Frames in that whole window (all its messages together).
    pub const WINDOW_FRAMES: &str = "Ringgate-Window-Frames";
    pub const BLOCK: &str = "Ringgate-Block";
    pub const TXN: &str = "Ringgate-Txn";
    pub const STAGE: &str = "Ringgate-Stage";
    pub const ADDRESS: &str = "Ringgate-Address";
    pub const TOPIC: &str = "Ringgate-Topic";
}

/// One message to publish: the frames of one publish window that share a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub subject: String,
    pub headers: Vec<u8>,
    /// The frames' history records, in seqno order.
    pub body: Vec<u8>,
    pub first_seqno: u64,
    pub last_seqno: u64,
    pub frames: usize,
}

/// The messages of one publish window: `window`'s frames (in seqno order) grouped by subject,
/// one message per subject, in the order of each subject's first frame. Consecutive frames
/// of different kinds go to different subjects, so a consumer selecting kinds server-side
/// still gets only those; an edge, which reads them all, puts the window back in seqno order
/// from the window headers (docs/scale-out.md §2).
///
/// Headers: the dedup id `<epoch>:<first seqno>` (each frame is in one message, so it is
/// unique and the same when the message is published again), epoch, first seqno, frame
/// count, the window's first seqno and frame count, and for events each distinct block
/// number, transaction index, stage, address and log topic of the message's frames (a
/// consumer filters on them as a pre-filter, then reads the records' keys).
pub fn envelopes(stream: &str, epoch: u64, window: &[Outbound]) -> Vec<Envelope> {
    let Some(first) = window.first() else {
        return Vec::new();
    };
    let window_first = first.server_seqno();
    let mut groups: Vec<(&'static str, Vec<&Outbound>)> = Vec::new();
    for frame in window {
        let kind = kind_of(frame);
        match groups.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, g)) => g.push(frame),
            None => groups.push((kind, vec![frame])),
        }
    }
    groups
        .into_iter()
        .map(|(kind, frames)| {
            let first_seqno = frames[0].server_seqno();
            let last_seqno = frames[frames.len() - 1].server_seqno();
            let mut body = Vec::with_capacity(frames.iter().map(|f| f.byte_len() + 64).sum());
            for f in &frames {
                record::encode(f, &mut body);
            }
            let mut h = HeaderBlock::new();
            h.add(header::MSG_ID, format_args!("{epoch}:{first_seqno}"))
                .add(header::EPOCH, epoch)
                .add(header::SEQNO, first_seqno)
                .add(header::FRAMES, frames.len())
                .add(header::WINDOW, window_first)
                .add(header::WINDOW_FRAMES, window.len());
            add_event_keys(&mut h, &frames);
            Envelope {
                subject: format!("{stream}.{epoch}.{kind}"),
                headers: h.finish(),
                body,
                first_seqno,
                last_seqno,
                frames: frames.len(),
            }
        })
        .collect()
}

/// Each distinct block, transaction index, stage, address and topic of the events among
/// `frames`, as repeated headers.
fn add_event_keys(h: &mut HeaderBlock, frames: &[&Outbound]) {
    let mut blocks = BTreeSet::new();
    let mut txns = BTreeSet::new();
    let mut stages = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    let mut topics = BTreeSet::new();
    for f in frames {
        let Outbound::Event(e) = f else { continue };
        blocks.extend(e.keys.block_number);
        txns.extend(e.keys.txn_idx);
        stages.insert(e.gate.name());
        addresses.extend(e.keys.addresses().iter().map(|a| &a[..]));
        topics.extend(e.keys.topics().iter().map(|t| &t[..]));
    }
    for b in blocks {
        h.add(header::BLOCK, b);
    }
    for t in txns {
        h.add(header::TXN, t);
    }
    for s in stages {
        h.add(header::STAGE, s);
    }
    for a in addresses {
        h.add(header::ADDRESS, to_hex(a));
    }
    for t in topics {
        h.add(header::TOPIC, to_hex(t));
    }
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
    let v = create_or_update(c, &s.name, &config, sid)?;
    Ok(v["state"]["last_seq"].as_u64().unwrap_or(0))
}

/// Creates stream `name` with `config`, or brings an existing one to it (an update keeps its
/// messages). Returns the API's answer (the stream's info).
pub fn create_or_update(
    c: &mut Connection,
    name: &str,
    config: &Value,
    sid: u64,
) -> io::Result<Value> {
    match api(c, &format!("$JS.API.STREAM.INFO.{name}"), &Value::Null, sid) {
        Ok(_) => api(c, &format!("$JS.API.STREAM.UPDATE.{name}"), config, sid),
        Err(e) if e.to_string().contains("404") => {
            api(c, &format!("$JS.API.STREAM.CREATE.{name}"), config, sid)
        }
        Err(e) => Err(e),
    }
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
    use std::sync::Arc;

    use super::*;
    use crate::model::kind::EventType;
    use crate::model::outbound::{EncodedEvent, EventBody, FilterKeys, MetaFrame};
    use crate::model::stage::CommitStage;

    fn event(seqno: u64, kind: EventType, block: u64, address: u8) -> Outbound {
        let mut keys = FilterKeys::new(kind);
        keys.block_number = Some(block);
        keys.push_address([address; 20]);
        Outbound::Event(EncodedEvent {
            server_seqno: seqno,
            gate: CommitStage::Proposed,
            body: Arc::new(EventBody {
                origin_seqno: seqno,
                ring_seqno: seqno,
                timestamp_ns: 1,
                keys,
                json: br#"{"event_name":"x","commit_stage":"Proposed"}"#.as_slice().into(),
                stage_span: Some(34..42),
            }),
        })
    }

    fn message(e: &Envelope) -> Message {
        Message {
            subject: e.subject.clone(),
            sid: 1,
            reply: None,
            headers: e.headers.clone(),
            payload: e.body.clone(),
        }
    }

    #[test]
    fn a_window_is_one_message_per_subject_with_the_window_in_its_headers() {
        let gap = Outbound::Meta(Arc::new(MetaFrame {
            server_seqno: 13,
            kind: MetaKind::Gap,
            stage: None,
            frame: br#"{"server_seqno":13,"Gap":{}}"#.as_slice().into(),
            old: None,
        }));
        let window = [
            event(10, EventType::TxnLog, 5, 0xaa),
            event(11, EventType::TxnEnd, 5, 0xbb),
            event(12, EventType::TxnLog, 6, 0xaa),
            gap,
            event(14, EventType::TxnLog, 6, 0xcc),
        ];
        let out = envelopes("RG", 7, &window);
        let subjects: Vec<&str> = out.iter().map(|e| e.subject.as_str()).collect();
        assert_eq!(subjects, ["RG.7.TxnLog", "RG.7.TxnEnd", "RG.7.Gap"]);
        let logs = message(&out[0]);
        assert_eq!(
            (out[0].first_seqno, out[0].last_seqno, out[0].frames),
            (10, 14, 3)
        );
        assert_eq!(logs.header(header::MSG_ID), Some("7:10"));
        assert_eq!(logs.header(header::SEQNO), Some("10"));
        assert_eq!(logs.header(header::FRAMES), Some("3"));
        assert_eq!(logs.header(header::WINDOW), Some("10"));
        assert_eq!(logs.header(header::WINDOW_FRAMES), Some("5"));
        let text = String::from_utf8(logs.headers.clone()).unwrap();
        // Each distinct value once: blocks 5 and 6, addresses 0xaa and 0xcc.
        assert_eq!(text.matches("Ringgate-Block:").count(), 2);
        assert_eq!(text.matches("Ringgate-Address:").count(), 2);
        assert!(text.contains(&format!("Ringgate-Address: {}", to_hex(&[0xcc; 20]))));
        assert_eq!(message(&out[2]).header(header::MSG_ID), Some("7:13"));
        // The bodies are the frames' records, in seqno order within each message.
        let mut originals = record::Originals::new();
        let mut unresolved = Vec::new();
        let seqnos: Vec<u64> =
            record::decode_lenient(&out[0].body, &mut originals, &mut unresolved)
                .unwrap()
                .iter()
                .map(Outbound::server_seqno)
                .collect();
        assert_eq!(seqnos, [10, 12, 14]);
        assert!(envelopes("RG", 7, &[]).is_empty());
    }

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
