//! Server messages: the per-connection `Hello`, `Subscribed`, `Error`, `Warning`, `Shed`, `Resume`,
//! the `Gap` frame ([`gap_frame`], the one gap encoder, for the tailer and sessions alike),
//! and [`meta_frame`], the envelope every pre-encoded meta frame is written in.
//!
//! Runs on shard cores, a few times per connection (never per event). Each encoder returns
//! the JSON envelope `{"server_seqno":N,"<Type>":{…}}`; [`write_message`] frames it.
//!
//! Seqno rule: a per-connection message carries the session's **cursor**, the last data
//! `server_seqno` this session was sent (for `Hello`, the cursor the session starts from:
//! the head at connect, or the client's `resume_from`). So a client that tracks
//! `server_seqno` never moves backwards and never skips; data frames (`Events`, meta
//! frames) carry their own strictly increasing seqnos. The existing gateway stamped these
//! messages with 0 or the head, which reset or advanced SDK cursors wrongly.

use crate::model::gap::Gap;
use crate::model::kind::{EventType, EVENT_TYPE_COUNT};
use crate::model::lane::Lane;
use crate::model::outbound::{MetaFrame, MetaKind};
use crate::model::stage::CommitStage;
use crate::wire::json::{push_array, write_str, Obj};
use crate::wire::subscription::{ClientError, Subscription};
use crate::wire::ws::{write_frame, OpCode};

/// The `mode` of the `Resume` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeMode {
    /// The cursor is honoured: everything after it is replayed (or there is nothing).
    Resume,
    /// The cursor cannot be honoured exactly: the client should rebuild its state from
    /// the connect-time snapshot; whatever the store still holds after it is replayed.
    Snapshot,
}

impl ResumeMode {
    /// Wire name (`"resume"` / `"snapshot"`).
    pub fn name(self) -> &'static str {
        match self {
            ResumeMode::Resume => "resume",
            ResumeMode::Snapshot => "snapshot",
        }
    }
}

/// Which rule decided (for logs, metrics and the `Resume` frame's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeReason {
    /// No cursor: a fresh connection, live from the head.
    Fresh,
    /// `oldest − 1 ≤ cursor < head`: every later frame is stored.
    InRange,
    /// `cursor == head`: nothing was missed.
    AtHead,
    /// `cursor < oldest − 1`: frames `cursor+1 .. oldest−1` were evicted.
    TooOld,
    /// The cursor's epoch is not ours: the server restarted since.
    OtherEpoch,
    /// `cursor > head` in our epoch (or without an epoch): not a position of this run.
    AheadOfHead,
    /// `from_block` is stored from its first frame.
    BlockInRange,
    /// `from_block` is at or below the highest block seen but its first frame is gone.
    BlockTooOld,
    /// `from_block` is above every block seen: it has not happened yet.
    BlockAhead,
    /// The server keeps no resume store (`resume_store_frames = 0`).
    Disabled,
}

impl ResumeReason {
    /// Wire name (snake case).
    pub fn name(self) -> &'static str {
        match self {
            ResumeReason::Fresh => "fresh",
            ResumeReason::InRange => "in_range",
            ResumeReason::AtHead => "at_head",
            ResumeReason::TooOld => "too_old",
            ResumeReason::OtherEpoch => "other_epoch",
            ResumeReason::AheadOfHead => "ahead_of_head",
            ResumeReason::BlockInRange => "block_in_range",
            ResumeReason::BlockTooOld => "block_too_old",
            ResumeReason::BlockAhead => "block_ahead",
            ResumeReason::Disabled => "disabled",
        }
    }
}

/// A pre-encoded meta frame `{"server_seqno":N,"<name>":` body `}` with its own seqno, of
/// `kind`, tagged with the stage a `Lifecycle` reached.
pub fn meta_frame(
    seqno: u64,
    kind: MetaKind,
    stage: Option<CommitStage>,
    name: &str,
    body: impl FnOnce(&mut Vec<u8>),
) -> MetaFrame {
    MetaFrame {
        server_seqno: seqno,
        kind,
        stage,
        frame: message(seqno, name, body).into_boxed_slice(),
        old: None,
    }
}

/// `{"server_seqno":N,"Gap":{"reason":…,"from_seqno"?,"to_seqno"?,"ring_from_seqno"?,
/// "ring_to_seqno"?,"block_number"?,"block_id"?}}`: delivered to every session regardless of
/// subscription. A tailer-made gap is a data frame with its own seqno; a session-made one
/// carries the session's cursor.
pub fn gap_frame(seqno: u64, g: &Gap) -> MetaFrame {
    meta_frame(seqno, MetaKind::Gap, None, "Gap", |s| {
        let mut o = Obj::open(s);
        o.str("reason", g.reason.name());
        for (k, v) in [
            ("from_seqno", g.from_seqno),
            ("to_seqno", g.to_seqno),
            ("ring_from_seqno", g.ring_from_seqno),
            ("ring_to_seqno", g.ring_to_seqno),
        ] {
            if let Some(v) = v {
                o.u64(k, v);
            }
        }
        if let Some(n) = g.block_number {
            o.u64("block_number", n);
        }
        if let Some(id) = &g.block_id {
            o.hex("block_id", id);
        }
        o.close();
    })
}

/// Wire version announced in `Hello` (the existing gateway's later version used 1).
pub const WIRE_VERSION: u64 = 1;

/// Features announced in `Hello`: the existing gateway's list plus ringgate's additions.
pub const FEATURES: [&str; 15] = [
    "lifecycle",
    "contention",
    "resume",
    "heartbeat",
    "stage_filter",
    "backpressure_notify",
    "epoch",
    "resume_from_block",
    "gap_notify",
    "subscribe_ack",
    "error_frames",
    "server_ping",
    "bounded_batches",
    "field_filters",
    "priority_lanes",
];

/// Limits announced in `Hello` so clients can size buffers and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertisedLimits {
    pub resume_buffer_size: u64,
    pub client_send_buffer: u64,
    pub slow_client_drop_limit: u64,
    pub heartbeat_interval_secs: u64,
    pub heartbeat_timeout_secs: u64,
    pub max_batch_events: u64,
    pub max_batch_bytes: u64,
    pub max_message_bytes: u64,
}

/// Contents of `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello<'a> {
    pub server_version: &'a str,
    /// Server epoch: resume cursors are only valid within one epoch.
    pub epoch: u64,
    /// Channel name (`all`, `blocks`, …).
    pub channel: &'a str,
    /// Whether this server keeps a resume store: without one, the `resume` and
    /// `resume_from_block` features are not announced.
    pub resume: bool,
    pub limits: AdvertisedLimits,
}

/// The features that need the resume store.
const RESUME_FEATURES: [&str; 2] = ["resume", "resume_from_block"];

/// `{"server_seqno":N,"<kind>":` … `}`: the envelope of every server message, with the body
/// written by `body` (one JSON value).
fn message(seqno: u64, kind: &str, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    let mut o = Obj::open(&mut out);
    o.u64("server_seqno", seqno);
    body(o.key(kind));
    o.close();
    out
}

/// `{"server_seqno":cursor,"Hello":{wire_version, server_version, epoch, channel,
/// features, limits}}`.
pub fn hello(cursor: u64, h: &Hello<'_>) -> Vec<u8> {
    message(cursor, "Hello", |out| {
        let mut o = Obj::open(out);
        o.u64("wire_version", WIRE_VERSION)
            .str("server_version", h.server_version)
            .u64("epoch", h.epoch)
            .str("channel", h.channel);
        let features = FEATURES
            .iter()
            .filter(|f| h.resume || !RESUME_FEATURES.contains(f));
        push_array(o.key("features"), features, |out, f| write_str(out, f));
        let l = &h.limits;
        let mut limits = Obj::open(o.key("limits"));
        limits
            .u64("resume_buffer_size", l.resume_buffer_size)
            .u64("client_send_buffer", l.client_send_buffer)
            .u64("slow_client_drop_limit", l.slow_client_drop_limit)
            .u64("heartbeat_interval_secs", l.heartbeat_interval_secs)
            .u64("heartbeat_timeout_secs", l.heartbeat_timeout_secs)
            .u64("max_batch_events", l.max_batch_events)
            .u64("max_batch_bytes", l.max_batch_bytes)
            .u64("max_message_bytes", l.max_message_bytes);
        limits.close();
        o.close();
    })
}

/// `{"server_seqno":cursor,"Subscribed":{"channel":…,"events":[names],"filters":n,
/// "min_stage":…}}`: the normalized subscription now in force.
pub fn subscribed(cursor: u64, sub: &Subscription) -> Vec<u8> {
    message(cursor, "Subscribed", |out| {
        let mut o = Obj::open(out);
        o.str("channel", sub.channel.name());
        push_array(o.key("events"), sub.names(), write_str);
        o.u64("filters", sub.specs.len() as u64)
            .str("min_stage", sub.min_stage.name());
        if let Some(lane) = sub.priority {
            o.str("priority", lane.name());
        }
        if !sub.rejected.is_empty() {
            push_array(o.key("rejected"), &sub.rejected, |s, (item, e)| {
                let mut r = Obj::open(s);
                r.str("item", item)
                    .str("code", e.code.as_str())
                    .str("message", &e.message);
                r.close();
            });
        }
        o.close();
    })
}

/// `{"server_seqno":cursor,"Error":{"code":…,"message":…}}`.
pub fn error(cursor: u64, e: &ClientError) -> Vec<u8> {
    message(cursor, "Error", |out| {
        let mut o = Obj::open(out);
        o.str("code", e.code.as_str()).str("message", &e.message);
        o.close();
    })
}

/// One backpressure warning: frames for this session were dropped because its queue was
/// full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarningInfo {
    /// Frames dropped in this range.
    pub dropped: u64,
    /// Frames dropped on this connection so far, including these.
    pub total_dropped: u64,
    /// Total drops at which the connection is closed.
    pub drop_limit: u64,
    /// `server_seqno` of the first and last dropped frame (inclusive; frames of other
    /// sessions' subscriptions in between were never this session's).
    pub dropped_from_seqno: u64,
    pub dropped_to_seqno: u64,
}

/// `{"server_seqno":cursor,"Warning":{"type":"backpressure","dropped":…,"total_dropped":…,
/// "drop_limit":…,"dropped_from_seqno":…,"dropped_to_seqno":…}}`.
pub fn warning(cursor: u64, w: &WarningInfo) -> Vec<u8> {
    message(cursor, "Warning", |out| {
        let mut o = Obj::open(out);
        o.str("type", "backpressure")
            .u64("dropped", w.dropped)
            .u64("total_dropped", w.total_dropped)
            .u64("drop_limit", w.drop_limit)
            .u64("dropped_from_seqno", w.dropped_from_seqno)
            .u64("dropped_to_seqno", w.dropped_to_seqno);
        o.close();
    })
}

/// One priority-lane shed report: frames of one lane were dropped so that frames of higher
/// lanes could be kept (docs/protocol.md §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShedInfo {
    pub lane: Lane,
    /// Frames shed in this report.
    pub dropped: u64,
    /// Frames shed on this connection so far, all lanes, including these.
    pub total_shed: u64,
    /// `server_seqno` of the first and last shed frame (inclusive): every frame of `lane`
    /// this session selected in the range was shed; frames of other lanes in it were not.
    pub from_seqno: u64,
    pub to_seqno: u64,
    /// Ring `seqno` of the first and last shed event.
    pub ring_from_seqno: u64,
    pub ring_to_seqno: u64,
    /// Shed events per type, indexed by type code.
    pub kinds: [u32; EVENT_TYPE_COUNT],
}

impl ShedInfo {
    /// An empty report of `lane` (ranges inverted until the first frame is counted).
    pub fn new(lane: Lane) -> ShedInfo {
        ShedInfo {
            lane,
            dropped: 0,
            total_shed: 0,
            from_seqno: u64::MAX,
            to_seqno: 0,
            ring_from_seqno: u64::MAX,
            ring_to_seqno: 0,
            kinds: [0; EVENT_TYPE_COUNT],
        }
    }
}

/// `{"server_seqno":cursor,"Shed":{"lane":…,"dropped":…,"total_shed":…,"from_seqno":…,
/// "to_seqno":…,"ring_from_seqno":…,"ring_to_seqno":…,"kinds":{"TxnCallFrame":n,…}}}`.
pub fn shed(cursor: u64, s: &ShedInfo) -> Vec<u8> {
    message(cursor, "Shed", |out| {
        let mut o = Obj::open(out);
        o.str("lane", s.lane.name())
            .u64("dropped", s.dropped)
            .u64("total_shed", s.total_shed)
            .u64("from_seqno", s.from_seqno)
            .u64("to_seqno", s.to_seqno);
        if s.ring_to_seqno >= s.ring_from_seqno {
            o.u64("ring_from_seqno", s.ring_from_seqno)
                .u64("ring_to_seqno", s.ring_to_seqno);
        }
        let mut kinds = Obj::open(o.key("kinds"));
        for (t, n) in EventType::ALL.iter().zip(s.kinds) {
            if n > 0 {
                kinds.u64(t.name(), u64::from(n));
            }
        }
        kinds.close();
        o.close();
    })
}

/// Contents of `Resume` (built by [`crate::serve::resume::ResumeDecision::info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeInfo {
    /// `resume` (the cursor is honoured) or `snapshot` (rebuild state).
    pub mode: ResumeMode,
    /// Which rule decided (`in_range`, `too_old`, `other_epoch`, …).
    pub reason: ResumeReason,
    pub epoch: u64,
    /// First and last `server_seqno` of the stored frames the replay covers (the session's
    /// filter picks among them); `None` when nothing is replayed.
    pub from_seqno: Option<u64>,
    pub to_seqno: Option<u64>,
    /// Whether everything after the cursor is in the replay. `false` means data was lost
    /// (cursor too old, or from another epoch): rebuild state.
    pub recovered: bool,
}

/// The `Resume` of a connection that gave no cursor: `snapshot` (the old gateway's word for
/// "start from the current state"), reason `fresh`, nothing asked for is missing.
pub fn fresh_resume(epoch: u64) -> ResumeInfo {
    ResumeInfo {
        mode: ResumeMode::Snapshot,
        reason: ResumeReason::Fresh,
        epoch,
        from_seqno: None,
        to_seqno: None,
        recovered: true,
    }
}

/// `{"server_seqno":cursor,"Resume":{"mode":…,"reason":…,"epoch":…,"from_seqno"?,
/// "to_seqno"?,"recovered":…}}`.
pub fn resume(cursor: u64, r: &ResumeInfo) -> Vec<u8> {
    message(cursor, "Resume", |out| {
        let mut o = Obj::open(out);
        o.str("mode", r.mode.name())
            .str("reason", r.reason.name())
            .u64("epoch", r.epoch);
        for (name, v) in [("from_seqno", r.from_seqno), ("to_seqno", r.to_seqno)] {
            if let Some(v) = v {
                o.u64(name, v);
            }
        }
        o.bool("recovered", r.recovered);
        o.close();
    })
}

/// `{"server_seqno":cursor,"Heartbeat":{}}`: a per-connection frame that only says the
/// stream is alive (for the old SDKs' no-data watchdog).
pub fn heartbeat(cursor: u64) -> Vec<u8> {
    message(cursor, "Heartbeat", |out| out.extend_from_slice(b"{}"))
}

/// Appends `json` as one WebSocket text frame.
pub fn write_message(json: &[u8], out: &mut Vec<u8>) {
    write_frame(OpCode::Text, json, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gap::GapReason;

    #[test]
    fn gap_frames_omit_absent_ranges() {
        let text = |f: &MetaFrame| String::from_utf8_lossy(&f.frame).into_owned();
        let g = Gap::seqnos(GapReason::ResumeWindow, 3, 9);
        assert_eq!(
            text(&gap_frame(10, &g)),
            r#"{"server_seqno":10,"Gap":{"reason":"resume_window","from_seqno":3,"to_seqno":9}}"#
        );
        let g = Gap::from_range(GapReason::ResumeWindow, &(3..10));
        assert_eq!(
            g.map(|g| (g.from_seqno, g.to_seqno)),
            Some((Some(3), Some(9)))
        );
        let lap = Gap {
            ring_from_seqno: Some(4),
            ring_to_seqno: Some(8),
            block_number: Some(2),
            ..Gap::new(GapReason::RingLapped)
        };
        assert_eq!(
            text(&gap_frame(11, &lap)),
            r#"{"server_seqno":11,"Gap":{"reason":"ring_lapped","ring_from_seqno":4,"ring_to_seqno":8,"block_number":2}}"#
        );
        assert_eq!(Gap::from_range(GapReason::ResumeWindow, &(4..4)), None);
    }
    use crate::wire::subscription::channel::Channel;
    use crate::wire::subscription::ErrorCode;
    use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

    fn parse(bytes: &[u8]) -> Value {
        sonic_rs::from_slice(bytes).unwrap()
    }

    fn only_key(v: &Value) -> String {
        let obj = v.as_object().unwrap();
        let keys: Vec<&str> = obj.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert_eq!(keys[0], "server_seqno");
        keys[1].to_owned()
    }

    #[test]
    fn hello_has_the_old_gateways_fields_plus_epoch_and_channel() {
        let limits = AdvertisedLimits {
            resume_buffer_size: 100_000,
            client_send_buffer: 4096,
            slow_client_drop_limit: 10_000,
            heartbeat_interval_secs: 30,
            heartbeat_timeout_secs: 60,
            max_batch_events: 256,
            max_batch_bytes: 262_144,
            max_message_bytes: 65_536,
        };
        let msg = Hello {
            server_version: "0.1.0",
            epoch: 1_700_000_000_000,
            channel: "txs",
            resume: true,
            limits,
        };
        let v = parse(&hello(41, &msg));
        assert_eq!(only_key(&v), "Hello");
        assert_eq!(v["server_seqno"].as_u64(), Some(41));
        let h = &v["Hello"];
        assert_eq!(h["wire_version"].as_u64(), Some(1));
        assert_eq!(h["epoch"].as_u64(), Some(1_700_000_000_000));
        assert_eq!(h["channel"].as_str(), Some("txs"));
        assert_eq!(h["features"].as_array().unwrap().len(), FEATURES.len());
        assert_eq!(h["limits"]["slow_client_drop_limit"].as_u64(), Some(10_000));
        assert_eq!(h["limits"]["max_batch_events"].as_u64(), Some(256));

        // Without a resume store the resume features are not announced.
        let v = parse(&hello(
            41,
            &Hello {
                resume: false,
                ..msg
            },
        ));
        let names: Vec<&str> = v["Hello"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        assert_eq!(names.len(), FEATURES.len() - 2);
        assert!(!names.contains(&"resume") && !names.contains(&"resume_from_block"));
    }

    #[test]
    fn subscribed_error_warning_and_resume_parse() {
        let sub = Subscription::default_for(Channel::Blocks);
        let v = parse(&subscribed(7, &sub));
        assert_eq!(only_key(&v), "Subscribed");
        assert_eq!(v["Subscribed"]["events"].as_array().unwrap().len(), 8);
        assert_eq!(v["Subscribed"]["min_stage"].as_str(), Some("Proposed"));
        assert_eq!(v["Subscribed"]["filters"].as_u64(), Some(0));

        let e = ClientError {
            code: ErrorCode::UnknownEvent,
            message: "unknown event \"Tx\\nLog\"".into(),
        };
        let v = parse(&error(7, &e));
        assert_eq!(v["Error"]["code"].as_str(), Some("unknown_event"));
        assert_eq!(v["Error"]["message"].as_str(), Some(e.message.as_str()));

        let w = WarningInfo {
            dropped: 1000,
            total_dropped: 2000,
            drop_limit: 10_000,
            dropped_from_seqno: 100,
            dropped_to_seqno: 1200,
        };
        let v = parse(&warning(99, &w));
        assert_eq!(v["server_seqno"].as_u64(), Some(99));
        assert_eq!(v["Warning"]["type"].as_str(), Some("backpressure"));
        assert_eq!(v["Warning"]["dropped_to_seqno"].as_u64(), Some(1200));

        let r = ResumeInfo {
            mode: ResumeMode::Resume,
            reason: ResumeReason::InRange,
            epoch: 5,
            from_seqno: Some(10),
            to_seqno: Some(20),
            recovered: true,
        };
        let v = parse(&resume(9, &r));
        assert_eq!(v["Resume"]["mode"].as_str(), Some("resume"));
        assert_eq!(v["Resume"]["recovered"].as_bool(), Some(true));
        assert_eq!(v["Resume"]["reason"].as_str(), Some("in_range"));
        let snap = ResumeInfo {
            mode: ResumeMode::Snapshot,
            from_seqno: None,
            to_seqno: None,
            recovered: false,
            ..r
        };
        let v = parse(&resume(9, &snap));
        assert!(v["Resume"].get("from_seqno").is_none());
    }

    #[test]
    fn write_message_frames_as_text() {
        let mut out = Vec::new();
        write_message(b"{}", &mut out);
        assert_eq!(out, [0x81, 2, b'{', b'}']);
    }
}
