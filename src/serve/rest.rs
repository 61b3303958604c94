//! REST answers on the WebSocket port: `/health`, `/v1/status`, `/metrics`, `/v1/tps`,
//! `/v1/contention`, `/v1/blocks/lifecycle`, `/v1/blocks/{n}/lifecycle`, and the
//! dashboard page ([`crate::serve::dashboard`]).
//!
//! Runs on whichever shard accepted the request; reads the atomics in [`StatsHub`]
//! (single-writer counters of the tailer and every shard) and, for the chain endpoints, the
//! bodies the tailer pre-encoded into [`StatsHub::chain`] (one uncontended pointer clone, see
//! [`crate::handoff::published`]), so answering never touches another shard's data or formats chain
//! state. Runtime-free: takes the hub, config and `now`, returns a [`Response`].
//!
//! `/health` never exits the process (the old gateway called `exit(1)` from its health
//! handler). It answers 200 while the ring is live (or a replay is being served) and has
//! produced an event within `Config::stale_after` (or has produced none yet, i.e. the node is
//! starting); 503 when the writer is gone, the ring is missing, or the ring went stale, so a
//! load balancer drains this instance while the node restarts. While the ring cannot be
//! attached, `/health` carries the reason (`reason`) and `/v1/status` the typed error
//! (`ring_error: {kind, message}`), as the tailer last saw it.
//!
//! `/v1/contention` is 404 until the first contention report, `/v1/blocks/{n}/lifecycle` 404
//! for a block number not tracked. Must never: block, or panic on any counter value.

use std::sync::atomic::Ordering;

use crate::config::Config;
use crate::handoff::published::RestBody;
use crate::metrics::{render_prometheus, RingState, StatsHub};
use crate::wire::http::{Response, RestRoute, Status};
use crate::wire::json::{push_array, Obj};

/// Whether the gateway is serving fresh data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// No event for longer than `stale_after` while the writer claims to be alive.
    Stale,
    /// Ring missing or its writer gone.
    Down,
}

impl Health {
    fn label(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Stale => "degraded",
            Health::Down => "down",
        }
    }
}

/// Computes health from the tailer's counters.
pub fn health(hub: &StatsHub, config: &Config, now_ns: u64) -> Health {
    match hub.tailer.ring_state() {
        RingState::Waiting | RingState::Gone => Health::Down,
        RingState::Replay | RingState::ReplayDone => Health::Healthy,
        RingState::Live => match hub.last_event_age(now_ns) {
            Some(age) if age > config.stale_after.as_secs_f64() => Health::Stale,
            _ => Health::Healthy,
        },
    }
}

fn chain_response(b: &RestBody) -> Response {
    let status = if b.status == 200 {
        Status::Ok
    } else {
        Status::NotFound
    };
    Response::json(status, b.body.clone().into_bytes())
}

/// The response for a REST route (`None` would be a route this build does not serve,
/// answered 404 by the caller; every route is served now).
pub fn answer(route: RestRoute, hub: &StatsHub, config: &Config, now_ns: u64) -> Option<Response> {
    match route {
        RestRoute::Health => {
            let h = health(hub, config, now_ns);
            let mut body = Vec::with_capacity(160);
            let mut o = Obj::open(&mut body);
            o.bool("success", h == Health::Healthy)
                .str("status", h.label())
                .str("ring", hub.tailer.ring_state().label())
                .opt_f64_3("last_event_age_secs", hub.last_event_age(now_ns));
            if let Some(e) = hub.tailer.ring_error() {
                o.str("reason", &e.message);
            }
            o.close();
            let status = if h == Health::Healthy {
                Status::Ok
            } else {
                Status::ServiceUnavailable
            };
            Some(Response::json(status, body))
        }
        RestRoute::Status => Some(Response::json(Status::Ok, status_json(hub, config, now_ns))),
        RestRoute::Metrics => Some(Response::new(
            Status::Ok,
            "text/plain; version=0.0.4",
            render_prometheus(hub, now_ns).into_bytes(),
        )),
        RestRoute::Tps => Some(chain_response(&hub.chain.get().tps)),
        RestRoute::Contention => Some(chain_response(&hub.chain.get().contention)),
        RestRoute::BlocksLifecycle => Some(chain_response(&hub.chain.get().lifecycle)),
        RestRoute::BlockLifecycle(n) => Some(chain_response(&hub.chain.get().block(n))),
        RestRoute::Dashboard => Some(crate::serve::dashboard::page()),
    }
}

/// `/v1/status`: the old gateway's fields (`status`, `block_number`, `connected_clients`,
/// `uptime_secs`, `last_event_age_secs`, `server_seqno`, `oldest_seqno`, `newest_seqno`)
/// plus the epoch, the resumable range under its own names, tracked blocks, ring state, lag
/// and per-shard drops.
fn status_json(hub: &StatsHub, config: &Config, now_ns: u64) -> Vec<u8> {
    let t = &hub.tailer;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut s = Vec::with_capacity(512);
    let mut o = Obj::open(&mut s);
    o.str("status", health(hub, config, now_ns).label())
        .str("ring", t.ring_state().label())
        .u64("epoch", hub.epoch)
        .u64("server_seqno", ld(&t.head_server_seqno))
        .u64("head_ring_seqno", ld(&t.head_ring_seqno))
        .u64("connected_clients", hub.clients())
        .u64(
            "uptime_secs",
            now_ns.saturating_sub(hub.started_ns) / 1_000_000_000,
        )
        .opt_f64_3("last_event_age_secs", hub.last_event_age(now_ns))
        .opt_f64_3("tailer_lag_secs", hub.tailer_lag(now_ns));
    if let Some(e) = t.ring_error() {
        let mut err = Obj::open(o.key("ring_error"));
        err.str("kind", e.kind).str("message", &e.message);
        err.close();
    }
    if let Some((oldest, newest)) = hub.resumable() {
        o.u64("oldest_resumable_seqno", oldest)
            .u64("newest_resumable_seqno", newest);
        // The old gateway's names for the same range (its SDKs check the resume window
        // with them).
        o.u64("oldest_seqno", oldest).u64("newest_seqno", newest);
    }
    if let Some(h) = &hub.history {
        let w = h.window();
        let st = &h.stats;
        if let Some(b) = w.oldest_block {
            o.u64("oldest_resumable_block", b);
        }
        o.opt_f64_3("history_span_secs", Some(w.span_secs));
        let mut hist = Obj::open(o.key("history"));
        hist.str(
            "storage",
            if config.history_dir.is_some() {
                "disk"
            } else {
                "memory"
            },
        )
        .u64("oldest_seqno", w.oldest_seqno)
        .u64("newest_seqno", w.newest_seqno)
        .opt_f64_3("span_secs", Some(w.span_secs))
        .u64("chunks", w.chunks)
        .u64("memory_bytes", ld(&st.memory_bytes))
        .u64("disk_bytes", ld(&st.disk_bytes))
        .u64("dropped_frames", ld(&st.dropped_frames))
        .u64("corrupt_chunks", ld(&st.corrupt_chunks))
        .u64("disk_errors", ld(&st.disk_errors));
        hist.close();
    }
    if let Some((lo, hi)) = hub.chain.get().block_range {
        o.u64("oldest_block", lo).u64("newest_block", hi);
        // The old gateway's `block_number`: the newest block it had seen.
        o.u64("block_number", hi);
    }
    o.u64("backlog_events", ld(&t.backlog_events))
        .u64("events_in", t.events_in_total())
        .u64("ring_gaps", ld(&t.ring_gaps))
        .u64("writer_restarts", ld(&t.writer_restarts));
    push_array(
        o.key("shards"),
        hub.shards.iter().enumerate(),
        |out, (i, sh)| {
            let mut s = Obj::open(out);
            s.u64("shard", i as u64)
                .u64("connections", ld(&sh.connections_open))
                .u64("queue_full", ld(&sh.spsc_full))
                .u64("queue_full_repaired", ld(&sh.repaired_frames))
                .u64("drops", ld(&sh.drops))
                .u64("shed", ld(&sh.shed))
                .u64("slow_disconnects", ld(&sh.slow_disconnects));
            s.close();
        },
    );
    o.close();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn health_is_503_until_a_ring_is_attached_and_200_when_live() {
        let hub = StatsHub::new(1, 0);
        let config = Config::default();
        let r = answer(RestRoute::Health, &hub, &config, 1).unwrap();
        assert_eq!(r.status, Status::ServiceUnavailable);
        hub.tailer.set_ring_state(RingState::Live);
        let r = answer(RestRoute::Health, &hub, &config, 1).unwrap();
        assert_eq!(r.status, Status::Ok);
        assert!(body(&r).contains("\"success\":true"));
    }

    #[test]
    fn an_unattachable_ring_is_explained_in_health_and_status() {
        let hub = StatsHub::new(1, 0);
        let config = Config::default();
        hub.tailer.set_ring_error(Some(crate::metrics::RingError {
            kind: "wrong_schema",
            message: "ring file /x was written by a different Monad version".into(),
        }));
        let r = answer(RestRoute::Health, &hub, &config, 1).unwrap();
        assert_eq!(r.status, Status::ServiceUnavailable);
        assert!(body(&r)
            .contains("\"reason\":\"ring file /x was written by a different Monad version\""));
        let s = body(&answer(RestRoute::Status, &hub, &config, 1).unwrap());
        let v: sonic_rs::Value = sonic_rs::from_str(&s).unwrap();
        use sonic_rs::JsonValueTrait;
        let kind = v
            .get("ring_error")
            .and_then(|e| e.get("kind"))
            .and_then(|k| k.as_str());
        assert_eq!(kind, Some("wrong_schema"), "{s}");
        hub.tailer.set_ring_error(None);
        assert!(!body(&answer(RestRoute::Status, &hub, &config, 1).unwrap()).contains("ring_error"));
    }

    #[test]
    fn health_goes_stale_after_the_configured_silence() {
        let hub = StatsHub::new(1, 0);
        let config = Config::default();
        hub.tailer.set_ring_state(RingState::Live);
        hub.tailer.last_event_read_ns.store(1, Ordering::Relaxed);
        let late = 1 + config.stale_after.as_nanos() as u64 + 1_000_000_000;
        let r = answer(RestRoute::Health, &hub, &config, late).unwrap();
        assert_eq!(r.status, Status::ServiceUnavailable);
        assert!(body(&r).contains("\"status\":\"degraded\""));
    }

    #[test]
    fn status_is_valid_json_with_the_old_gateways_fields() {
        let hub = StatsHub::new(2, 0);
        let r = answer(RestRoute::Status, &hub, &Config::default(), 5_000_000_000).unwrap();
        use sonic_rs::{JsonContainerTrait, JsonValueTrait};
        let v: sonic_rs::Value = sonic_rs::from_slice(&r.body).unwrap();
        for key in ["status", "server_seqno", "connected_clients", "uptime_secs"] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["shards"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn status_keeps_the_old_gateways_names_for_the_window_and_the_block() {
        let hub = StatsHub::new(1, 0);
        hub.tailer.head_server_seqno.store(900, Ordering::Relaxed);
        hub.tailer.oldest_server_seqno.store(100, Ordering::Relaxed);
        hub.chain.publish(crate::handoff::published::ChainBodies {
            block_range: Some((7, 9)),
            ..Default::default()
        });
        let r = answer(RestRoute::Status, &hub, &Config::default(), 1).unwrap();
        use sonic_rs::JsonValueTrait;
        let v: sonic_rs::Value = sonic_rs::from_slice(&r.body).unwrap();
        let n = |k: &str| v.get(k).and_then(|x| x.as_u64());
        assert_eq!(
            (n("oldest_seqno"), n("newest_seqno")),
            (Some(100), Some(900))
        );
        assert_eq!(
            (n("oldest_resumable_seqno"), n("newest_resumable_seqno")),
            (Some(100), Some(900))
        );
        assert_eq!(n("block_number"), Some(9));
    }

    #[test]
    fn chain_routes_serve_the_published_bodies_and_404_what_is_unknown() {
        let hub = StatsHub::new(1, 0);
        let c = Config::default();
        // What the server publishes before the tailer's first event (see `server::start`).
        let empty = crate::ingest::chain::pipeline::ChainPipeline::new(c.chain);
        hub.chain.publish(empty.rest_bodies());
        let tps = answer(RestRoute::Tps, &hub, &c, 0).unwrap();
        assert_eq!(tps.status, Status::Ok);
        assert!(body(&tps).contains("\"tps\":0"));
        let con = answer(RestRoute::Contention, &hub, &c, 0).unwrap();
        assert_eq!(con.status, Status::NotFound);
        let list = answer(RestRoute::BlocksLifecycle, &hub, &c, 0).unwrap();
        assert_eq!(body(&list), "[]");
        let one = answer(RestRoute::BlockLifecycle(3), &hub, &c, 0).unwrap();
        assert_eq!(one.status, Status::NotFound);
        let status = answer(RestRoute::Status, &hub, &c, 0).unwrap();
        assert!(body(&status).contains(&format!("\"epoch\":{},", hub.epoch)));
    }
}
