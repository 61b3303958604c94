//! JSON of the meta frames (`Lifecycle`, `TPS`, `ContentionData`, `TopAccesses`, `Gap`) and of
//! the REST bodies built from the same figures.
//!
//! Runs on the tailer core (frames, once per message, shared by every session) and on the
//! REST path (bodies, per request). Hand-written: the shapes are small and fixed, and this
//! keeps field order and number formatting exactly as the old gateway's serde output
//! (`server_seqno` first, then one key naming the message; optional fields omitted, never
//! `null`; hashes and addresses as lowercase `0x` hex).
//!
//! Compatibility: the `TPS` frame stays a bare integer (`{"server_seqno":2,"TPS":250}`);
//! richer TPS figures are only in `/v1/tps`. Added fields (`block_id`, `writer_count`,
//! `parallel_speedup`, `timed_txn_count`) are additive; old clients ignore them.
//!
//! Never: emit a non-finite float (written as `0.0`), or a field as `null`.

use std::fmt::Write as _;

use crate::chain::contention::ContentionReport;
use crate::chain::input::BlockId;
use crate::chain::stage::CommitStage;
use crate::chain::topk::TopAccessesReport;
use crate::chain::tps::TpsSnapshot;
use crate::chain::tracker::{BlockLifecycleSummary, Transition};
use crate::frame::{MetaFrame, MetaKind};

/// Why data is missing; the `reason` of a `Gap` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GapReason {
    /// The tailer was lapped by the writer: ring events were overwritten unread.
    RingLapped,
    /// An event's payload was overwritten before it was copied.
    PayloadExpired,
    /// The writer restarted (a new ring).
    #[default]
    WriterRestart,
    /// A shard's queue was full: frames were dropped for every session of that shard.
    ShardQueueFull,
    /// A held block was pushed out of the stage gate before its release: sessions with
    /// `min_stage` above `Proposed` will not receive it (the `Proposed` originals are
    /// `from_seqno..=to_seqno`).
    StageGateOverflow,
    /// A resume cursor older than the resume store: these seqnos cannot be replayed.
    ResumeWindow,
    /// A session's own send queue overflowed.
    SlowClient,
}

impl GapReason {
    /// Every reason, in the order of [`GapReason::index`] (metrics label order).
    pub const ALL: [GapReason; 7] = [
        GapReason::RingLapped,
        GapReason::PayloadExpired,
        GapReason::WriterRestart,
        GapReason::ShardQueueFull,
        GapReason::StageGateOverflow,
        GapReason::ResumeWindow,
        GapReason::SlowClient,
    ];

    /// Position in [`GapReason::ALL`] (for per-reason counters).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl GapReason {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            GapReason::RingLapped => "ring_lapped",
            GapReason::PayloadExpired => "payload_expired",
            GapReason::WriterRestart => "writer_restart",
            GapReason::ShardQueueFull => "shard_queue_full",
            GapReason::StageGateOverflow => "stage_gate_overflow",
            GapReason::ResumeWindow => "resume_window",
            GapReason::SlowClient => "slow_client",
        }
    }
}

/// The body of a `Gap` frame, the one gap type of the gateway (tailer, gate and sessions).
///
/// `from_seqno..=to_seqno` (inclusive) are the `server_seqno`s a stream will not receive:
/// frames lost for a shard or a session, or the `Proposed` originals of a block whose gated
/// copies will never come. `ring_from_seqno..=ring_to_seqno` are ring `seqno`s never read
/// (a lap, an expired payload), which had no `server_seqno` yet. Either range is omitted when
/// it does not apply (a writer restart has neither). `block_number`/`block_id` name the block
/// the loss cut short, when one was being executed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gap {
    pub reason: GapReason,
    pub from_seqno: Option<u64>,
    pub to_seqno: Option<u64>,
    pub ring_from_seqno: Option<u64>,
    pub ring_to_seqno: Option<u64>,
    pub block_number: Option<u64>,
    pub block_id: Option<BlockId>,
}

impl Gap {
    /// A gap with only a reason (e.g. a writer restart: nothing numbered is known lost).
    pub fn new(reason: GapReason) -> Gap {
        Gap {
            reason,
            ..Gap::default()
        }
    }

    /// The gap of an inclusive `server_seqno` range.
    pub fn seqnos(reason: GapReason, from: u64, to: u64) -> Gap {
        Gap {
            reason,
            from_seqno: Some(from),
            to_seqno: Some(to),
            ..Gap::default()
        }
    }

    /// The gap of a half-open seqno range (as in `ResumeDecision::gap` and
    /// `ReplayChunk::lost`), `None` when the range is empty.
    pub fn from_range(reason: GapReason, range: &std::ops::Range<u64>) -> Option<Gap> {
        (range.start < range.end).then(|| Gap::seqnos(reason, range.start, range.end - 1))
    }
}

impl From<&crate::chain::gate::Overflow> for Gap {
    fn from(o: &crate::chain::gate::Overflow) -> Gap {
        Gap {
            reason: GapReason::StageGateOverflow,
            from_seqno: (o.events > 0).then_some(o.from_seqno),
            to_seqno: (o.events > 0).then_some(o.to_seqno),
            ring_from_seqno: None,
            ring_to_seqno: None,
            block_number: Some(o.block_number),
            block_id: Some(o.block_id),
        }
    }
}

/// A small JSON object writer: keys in call order, commas handled.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
        self.out
    }

    fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        let _ = write!(self.key(k), "{v}");
        self
    }

    fn f64(&mut self, k: &str, v: f64) -> &mut Self {
        let o = self.key(k);
        push_f64(o, v);
        self
    }

    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let o = self.key(k);
        o.push('"');
        o.push_str(v);
        o.push('"');
        self
    }

    fn hex(&mut self, k: &str, v: &[u8]) -> &mut Self {
        let o = self.key(k);
        push_hex(o, v);
        self
    }

    fn close(self) {
        self.out.push('}');
    }
}

fn push_f64(o: &mut String, v: f64) {
    if v.is_finite() {
        // Debug formatting is the shortest round-trip form and always a valid JSON number
        // for finite values ("0.0", "245.52", "1e-7").
        let _ = write!(o, "{v:?}");
    } else {
        o.push_str("0.0");
    }
}

fn push_hex(o: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    o.reserve(bytes.len() * 2 + 4);
    o.push_str("\"0x");
    for b in bytes {
        o.push(char::from(HEX[usize::from(b >> 4)]));
        o.push(char::from(HEX[usize::from(b & 15)]));
    }
    o.push('"');
}

/// `{"server_seqno":N,"<Name>":` … `}`: the envelope around a body written by `body`.
fn envelope(seqno: u64, name: &str, body: impl FnOnce(&mut String)) -> Box<[u8]> {
    let mut s = String::with_capacity(256);
    let _ = write!(s, "{{\"server_seqno\":{seqno},\"{name}\":");
    body(&mut s);
    s.push('}');
    s.into_bytes().into_boxed_slice()
}

fn meta(seqno: u64, kind: MetaKind, stage: Option<CommitStage>, frame: Box<[u8]>) -> MetaFrame {
    MetaFrame {
        server_seqno: seqno,
        kind,
        stage,
        frame,
    }
}

/// Writes a transition as the `Lifecycle` body.
pub fn write_transition(s: &mut String, t: &Transition) {
    let mut o = Obj::open(s);
    o.hex("block_hash", &t.block_id)
        .u64("block_number", t.block_number);
    if let Some(from) = t.from_stage {
        o.str("from_stage", from.name());
    }
    o.str("to_stage", t.to_stage.name());
    if let Some(ms) = t.time_in_previous_stage_ms {
        o.f64("time_in_previous_stage_ms", ms);
    }
    o.f64("block_age_ms", t.block_age_ms)
        .u64("txn_count", t.txn_count);
    if let Some(g) = t.gas_used {
        o.u64("gas_used", g);
    }
    o.close();
}

/// `{"server_seqno":N,"Lifecycle":{…}}`, tagged with the stage reached.
pub fn lifecycle_frame(seqno: u64, t: &Transition) -> MetaFrame {
    let frame = envelope(seqno, "Lifecycle", |s| write_transition(s, t));
    meta(seqno, MetaKind::Lifecycle, Some(t.to_stage), frame)
}

/// `{"server_seqno":N,"TPS":n}`: a bare integer, as old clients parse it.
pub fn tps_frame(seqno: u64, tps: u64) -> MetaFrame {
    let frame = envelope(seqno, "TPS", |s| {
        let _ = write!(s, "{tps}");
    });
    meta(seqno, MetaKind::Tps, None, frame)
}

/// Writes the `ContentionData` body (also the `/v1/contention` body).
pub fn write_contention(s: &mut String, r: &ContentionReport) {
    let mut o = Obj::open(s);
    o.u64("block_number", r.block_number)
        .hex("block_id", &r.block_id)
        .u64("block_wall_time_ns", r.block_wall_time_ns)
        .u64("total_tx_time_ns", r.total_tx_time_ns)
        .f64("parallel_efficiency_pct", r.parallel_efficiency_pct)
        .f64("parallel_speedup", r.parallel_speedup)
        .u64("total_unique_slots", r.total_unique_slots)
        .u64("contended_slot_count", r.contended_slot_count)
        .f64("contention_ratio", r.contention_ratio)
        .u64("total_txn_count", r.total_txn_count)
        .u64("timed_txn_count", r.timed_txn_count);
    let list = o.key("top_contended_slots");
    list.push('[');
    for (i, x) in r.top_contended_slots.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let mut e = Obj::open(list);
        e.hex("address", &x.address)
            .hex("slot", &x.slot)
            .u64("txn_count", u64::from(x.txn_count))
            .u64("access_count", x.access_count)
            .u64("writer_count", u64::from(x.writer_count));
        e.close();
    }
    list.push(']');
    let list = o.key("top_contended_contracts");
    list.push('[');
    for (i, x) in r.top_contended_contracts.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let mut e = Obj::open(list);
        e.hex("address", &x.address)
            .u64("total_slots", u64::from(x.total_slots))
            .u64("contended_slots", u64::from(x.contended_slots))
            .u64("total_accesses", x.total_accesses)
            .f64("contention_score", x.contention_score);
        e.close();
    }
    list.push(']');
    let list = o.key("contract_edges");
    list.push('[');
    for (i, x) in r.contract_edges.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let mut e = Obj::open(list);
        e.hex("contract_a", &x.contract_a)
            .hex("contract_b", &x.contract_b)
            .u64("shared_txn_count", u64::from(x.shared_txn_count));
        e.close();
    }
    list.push(']');
    o.close();
}

/// `{"server_seqno":N,"ContentionData":{…}}`.
pub fn contention_frame(seqno: u64, r: &ContentionReport) -> MetaFrame {
    let frame = envelope(seqno, "ContentionData", |s| write_contention(s, r));
    meta(seqno, MetaKind::ContentionData, None, frame)
}

/// `{"server_seqno":N,"TopAccesses":{"account":[{"key":"0x…","count":n}…],
/// "storage":[{"key":["0xaddr","0xslot"],"count":n}…]}}`.
pub fn top_accesses_frame(seqno: u64, r: &TopAccessesReport) -> MetaFrame {
    let frame = envelope(seqno, "TopAccesses", |s| {
        s.push_str("{\"account\":[");
        for (i, c) in r.account.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let mut e = Obj::open(s);
            e.hex("key", &c.key).u64("count", c.count);
            e.close();
        }
        s.push_str("],\"storage\":[");
        for (i, c) in r.storage.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"key\":[");
            push_hex(s, &c.key.0);
            s.push(',');
            push_hex(s, &c.key.1);
            let _ = write!(s, "],\"count\":{}}}", c.count);
        }
        s.push_str("]}");
    });
    meta(seqno, MetaKind::TopAccesses, None, frame)
}

/// `{"server_seqno":N,"Gap":{"reason":…,"from_seqno"?,"to_seqno"?,"ring_from_seqno"?,
/// "ring_to_seqno"?,"block_number"?,"block_id"?}}`: delivered to every session regardless of
/// subscription. A tailer-made gap is a data frame with its own seqno; a session-made one
/// carries the session's cursor.
pub fn gap_frame(seqno: u64, g: &Gap) -> MetaFrame {
    let frame = envelope(seqno, "Gap", |s| {
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
    });
    meta(seqno, MetaKind::Gap, None, frame)
}

/// A REST response body with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestBody {
    pub status: u16,
    pub body: String,
}

impl RestBody {
    fn ok(body: String) -> RestBody {
        RestBody { status: 200, body }
    }

    fn not_found(message: &str) -> RestBody {
        RestBody {
            status: 404,
            body: format!("{{\"error\":\"{message}\"}}"),
        }
    }
}

/// `/v1/tps`: `{"tps":n, …}`; `tps` as before, the rest added (docs/analytics.md).
pub fn tps_body(t: &TpsSnapshot) -> RestBody {
    let mut s = String::with_capacity(256);
    let mut o = Obj::open(&mut s);
    o.u64("tps", t.tps)
        .f64("tps_exact", t.tps_exact)
        .u64("window_ms", t.window_ms)
        .f64("span_ms", t.span_ms)
        .u64("blocks_in_window", t.blocks_in_window)
        .u64("txns_in_window", t.txns_in_window);
    if let Some(n) = t.last_block_number {
        o.u64("last_block_number", n);
    }
    if let Some(n) = t.last_block_txn_count {
        o.u64("last_block_txn_count", n);
    }
    o.u64("finalized_blocks", t.finalized_blocks)
        .u64("finalized_txns", t.finalized_txns);
    o.close();
    RestBody::ok(s)
}

/// `/v1/contention`: the latest report, or 404 `{"error":"no contention data yet"}` (the old
/// gateway answered that with HTTP 200).
pub fn contention_body(r: Option<&ContentionReport>) -> RestBody {
    match r {
        Some(r) => {
            let mut s = String::with_capacity(4096);
            write_contention(&mut s, r);
            RestBody::ok(s)
        }
        None => RestBody::not_found("no contention data yet"),
    }
}

/// Writes one `BlockLifecycleSummary`.
pub fn write_summary(s: &mut String, b: &BlockLifecycleSummary) {
    let mut o = Obj::open(s);
    o.hex("block_hash", &b.block_hash)
        .u64("block_number", b.block_number)
        .str("current_stage", b.current_stage.name())
        .u64("txn_count", b.txn_count);
    if let Some(g) = b.gas_used {
        o.u64("gas_used", g);
    }
    if let Some(h) = &b.eth_block_hash {
        o.hex("eth_block_hash", h);
    }
    let timings = o.key("stage_timings_ms");
    let mut t = Obj::open(timings);
    for (stage, ms) in &b.stage_timings_ms {
        t.f64(stage.name(), *ms);
    }
    t.close();
    if let Some(ms) = b.execution_time_ms {
        o.f64("execution_time_ms", ms);
    }
    if let Some(ms) = b.total_age_ms {
        o.f64("total_age_ms", ms);
    }
    o.close();
}

/// `/v1/blocks/lifecycle`: an array of summaries, in the order given.
pub fn lifecycle_list_body(list: &[BlockLifecycleSummary]) -> RestBody {
    let mut s = String::with_capacity(64 + list.len() * 400);
    s.push('[');
    for (i, b) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write_summary(&mut s, b);
    }
    s.push(']');
    RestBody::ok(s)
}

/// `/v1/blocks/{n}/lifecycle`: one summary, or 404 `{"error":"block not found"}`.
pub fn lifecycle_one_body(b: Option<&BlockLifecycleSummary>) -> RestBody {
    match b {
        Some(b) => {
            let mut s = String::with_capacity(400);
            write_summary(&mut s, b);
            RestBody::ok(s)
        }
        None => RestBody::not_found("block not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: &MetaFrame) -> &str {
        std::str::from_utf8(&f.frame).unwrap_or("")
    }

    #[test]
    fn tps_is_a_bare_integer() {
        let f = tps_frame(2, 250);
        assert_eq!(text(&f), r#"{"server_seqno":2,"TPS":250}"#);
        assert_eq!((f.kind, f.server_seqno), (MetaKind::Tps, 2));
    }

    #[test]
    fn lifecycle_omits_absent_fields() {
        let t = Transition {
            block_id: [0xab; 32],
            block_number: 7,
            from_stage: None,
            to_stage: CommitStage::Proposed,
            time_in_previous_stage_ms: None,
            block_age_ms: 0.0,
            txn_count: 0,
            gas_used: None,
            block_time_ns: 0,
        };
        let f = lifecycle_frame(5, &t);
        let s = text(&f);
        assert!(s.starts_with(r#"{"server_seqno":5,"Lifecycle":{"block_hash":"0xabab"#));
        assert!(s.ends_with(
            r#""block_number":7,"to_stage":"Proposed","block_age_ms":0.0,"txn_count":0}}"#
        ));
        assert_eq!(f.stage, Some(CommitStage::Proposed));
        let t2 = Transition {
            from_stage: Some(CommitStage::Proposed),
            to_stage: CommitStage::Voted,
            time_in_previous_stage_ms: Some(245.52),
            block_age_ms: 245.52,
            gas_used: Some(22_516_578),
            ..t
        };
        let f2 = lifecycle_frame(6, &t2);
        assert!(text(&f2).ends_with(
            r#""block_number":7,"from_stage":"Proposed","to_stage":"Voted","time_in_previous_stage_ms":245.52,"block_age_ms":245.52,"txn_count":0,"gas_used":22516578}}"#
        ));
    }

    #[test]
    fn gap_and_not_found_bodies() {
        let g = Gap::seqnos(GapReason::ResumeWindow, 3, 9);
        assert_eq!(
            text(&gap_frame(10, &g)),
            r#"{"server_seqno":10,"Gap":{"reason":"resume_window","from_seqno":3,"to_seqno":9}}"#
        );
        let nf = lifecycle_one_body(None);
        assert_eq!(nf.status, 404);
        assert_eq!(nf.body, r#"{"error":"block not found"}"#);
        assert_eq!(contention_body(None).status, 404);
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
}
