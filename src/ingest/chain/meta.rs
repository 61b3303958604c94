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
//! richer TPS figures are only in `/v1/tps`. The old gateway's Python SDK decodes
//! `ContentionData` and `Lifecycle` strictly (a dataclass per shape, an enum of stages), so
//! those frames also carry their old shape ([`MetaFrame::old`]: no `block_id`, `writer_count`,
//! `parallel_speedup`, `timed_txn_count`; `Abandoned` named `Rejected`), which sessions get
//! unless they ask for `extended=1`.
//!
//! Never: emit a non-finite float (written as `0.0`), or a field as `null`.

use crate::handoff::published::RestBody;
use crate::ingest::chain::contention::ContentionReport;
use crate::ingest::chain::topk::TopAccessesReport;
use crate::ingest::chain::tps::TpsSnapshot;
use crate::ingest::chain::tracker::{BlockLifecycleSummary, Transition};
use crate::model::outbound::{MetaFrame, MetaKind};
use crate::model::stage::CommitStage;
use crate::wire::json::{push_array, push_hex_quoted, push_u64, Obj};
use crate::wire::protocol::messages::meta_frame;

/// Writes a transition as the `Lifecycle` body.
pub fn write_transition(s: &mut Vec<u8>, t: &Transition) {
    write_transition_named(s, t, CommitStage::name);
}

/// The old gateway's stage names: it had no `Abandoned` (a proposal that lost its height);
/// `Rejected` is the nearest (the block will never be finalized).
fn old_stage_name(stage: CommitStage) -> &'static str {
    match stage {
        CommitStage::Abandoned => CommitStage::Rejected.name(),
        s => s.name(),
    }
}

fn write_transition_named(s: &mut Vec<u8>, t: &Transition, name: fn(CommitStage) -> &'static str) {
    let mut o = Obj::open(s);
    o.hex("block_hash", &t.block_id)
        .u64("block_number", t.block_number);
    if let Some(from) = t.from_stage {
        o.str("from_stage", name(from));
    }
    o.str("to_stage", name(t.to_stage));
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
    let frame = |name| {
        meta_frame(
            seqno,
            MetaKind::Lifecycle,
            Some(t.to_stage),
            "Lifecycle",
            |s| write_transition_named(s, t, name),
        )
    };
    let mut f = frame(CommitStage::name);
    if t.to_stage == CommitStage::Abandoned || t.from_stage == Some(CommitStage::Abandoned) {
        f.old = Some(frame(old_stage_name).frame);
    }
    f
}

/// `{"server_seqno":N,"TPS":n}`: a bare integer, as old clients parse it.
pub fn tps_frame(seqno: u64, tps: u64) -> MetaFrame {
    meta_frame(seqno, MetaKind::Tps, None, "TPS", |s| push_u64(s, tps))
}

/// Writes the `ContentionData` body (also the `/v1/contention` body).
pub fn write_contention(s: &mut Vec<u8>, r: &ContentionReport) {
    write_contention_shape(s, r, true);
}

/// The `ContentionData` body; `extended: false` is the old gateway's key set.
fn write_contention_shape(s: &mut Vec<u8>, r: &ContentionReport, extended: bool) {
    let mut o = Obj::open(s);
    o.u64("block_number", r.block_number);
    if extended {
        o.hex("block_id", &r.block_id);
    }
    o.u64("block_wall_time_ns", r.block_wall_time_ns)
        .u64("total_tx_time_ns", r.total_tx_time_ns)
        .f64("parallel_efficiency_pct", r.parallel_efficiency_pct);
    if extended {
        o.f64("parallel_speedup", r.parallel_speedup);
    }
    o.u64("total_unique_slots", r.total_unique_slots)
        .u64("contended_slot_count", r.contended_slot_count)
        .f64("contention_ratio", r.contention_ratio)
        .u64("total_txn_count", r.total_txn_count);
    if extended {
        o.u64("timed_txn_count", r.timed_txn_count);
    }
    push_array(
        o.key("top_contended_slots"),
        &r.top_contended_slots,
        |s, x| {
            let mut e = Obj::open(s);
            e.hex("address", &x.address)
                .hex("slot", &x.slot)
                .u64("txn_count", u64::from(x.txn_count))
                .u64("access_count", x.access_count);
            if extended {
                e.u64("writer_count", u64::from(x.writer_count));
            }
            e.close();
        },
    );
    push_array(
        o.key("top_contended_contracts"),
        &r.top_contended_contracts,
        |s, x| {
            let mut e = Obj::open(s);
            e.hex("address", &x.address)
                .u64("total_slots", u64::from(x.total_slots))
                .u64("contended_slots", u64::from(x.contended_slots))
                .u64("total_accesses", x.total_accesses)
                .f64("contention_score", x.contention_score);
            e.close();
        },
    );
    push_array(o.key("contract_edges"), &r.contract_edges, |s, x| {
        let mut e = Obj::open(s);
        e.hex("contract_a", &x.contract_a)
            .hex("contract_b", &x.contract_b)
            .u64("shared_txn_count", u64::from(x.shared_txn_count));
        e.close();
    });
    o.close();
}

/// `{"server_seqno":N,"ContentionData":{…}}`.
pub fn contention_frame(seqno: u64, r: &ContentionReport) -> MetaFrame {
    let frame = |extended| {
        meta_frame(
            seqno,
            MetaKind::ContentionData,
            None,
            "ContentionData",
            |s| write_contention_shape(s, r, extended),
        )
    };
    let mut f = frame(true);
    f.old = Some(frame(false).frame);
    f
}

/// `{"server_seqno":N,"TopAccesses":{"account":[{"key":"0x…","count":n}…],
/// "storage":[{"key":["0xaddr","0xslot"],"count":n}…]}}`.
pub fn top_accesses_frame(seqno: u64, r: &TopAccessesReport) -> MetaFrame {
    meta_frame(seqno, MetaKind::TopAccesses, None, "TopAccesses", |s| {
        let mut o = Obj::open(s);
        push_array(o.key("account"), &r.account, |s, c| {
            let mut e = Obj::open(s);
            e.hex("key", &c.key).u64("count", c.count);
            e.close();
        });
        push_array(o.key("storage"), &r.storage, |s, c| {
            let mut e = Obj::open(s);
            push_array(e.key("key"), [&c.key.0[..], &c.key.1[..]], push_hex_quoted);
            e.u64("count", c.count);
            e.close();
        });
        o.close();
    })
}

/// `/v1/tps`: `{"tps":n, …}`; `tps` as before, the rest added (docs/analytics.md).
pub fn tps_body(t: &TpsSnapshot) -> RestBody {
    let mut s = Vec::with_capacity(256);
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
            let mut s = Vec::with_capacity(4096);
            write_contention(&mut s, r);
            RestBody::ok(s)
        }
        None => RestBody::not_found("no contention data yet"),
    }
}

/// Writes one `BlockLifecycleSummary`.
pub fn write_summary(s: &mut Vec<u8>, b: &BlockLifecycleSummary) {
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
    let mut s = Vec::with_capacity(64 + list.len() * 400);
    push_array(&mut s, list, write_summary);
    RestBody::ok(s)
}

/// `/v1/blocks/{n}/lifecycle`: one summary, or 404 `{"error":"block not found"}`.
pub fn lifecycle_one_body(b: Option<&BlockLifecycleSummary>) -> RestBody {
    match b {
        Some(b) => {
            let mut s = Vec::with_capacity(400);
            write_summary(&mut s, b);
            RestBody::ok(s)
        }
        None => RestBody::not_found("block not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stage::CommitStage;

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
    fn not_found_bodies() {
        let nf = lifecycle_one_body(None);
        assert_eq!(nf.status, 404);
        assert_eq!(nf.body, r#"{"error":"block not found"}"#);
        assert_eq!(contention_body(None).status, 404);
    }
}
