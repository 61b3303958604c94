//! REST answers on the WebSocket port: `/health`, `/v1/status`, `/metrics`.
//!
//! Runs on whichever shard accepted the request; reads only the atomics in [`StatsHub`]
//! (single-writer counters of the tailer and every shard), so answering never locks or
//! touches another shard's data. Runtime-free: takes the hub, config and `now`, returns a
//! [`Response`].
//!
//! `/health` never exits the process (the anchor gateway called `exit(1)` from its health
//! handler). It answers 200 while the ring is live (or a replay is being served) and has
//! produced an event within `Config::stale_after` (or has produced none yet, i.e. the node is
//! starting); 503 when the writer is gone, the ring is missing, or the ring went stale, so a
//! load balancer drains this instance while the node restarts.
//!
//! `/v1/tps`, `/v1/contention` and `/v1/blocks/...` belong to the chain analytics; until the
//! chain tracker is wired into the tailer they are answered 404 (not routed), never with
//! invented data. Must never: block, or panic on any counter value.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::config::Config;
use crate::http::{Response, RestRoute, Status};
use crate::metrics::{render_prometheus, RingState, StatsHub};

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

fn opt_f64(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v:.3}");
        }
        None => out.push_str("null"),
    }
}

/// The response for a REST route, or `None` when that route is not served by this build
/// (answered 404 by the caller).
pub fn answer(route: RestRoute, hub: &StatsHub, config: &Config, now_ns: u64) -> Option<Response> {
    match route {
        RestRoute::Health => {
            let h = health(hub, config, now_ns);
            let mut body = String::with_capacity(160);
            let _ = write!(
                body,
                "{{\"success\":{},\"status\":\"{}\",\"ring\":\"{}\",\"last_event_age_secs\":",
                h == Health::Healthy,
                h.label(),
                hub.tailer.ring_state().label()
            );
            opt_f64(&mut body, hub.last_event_age(now_ns));
            body.push('}');
            let status = if h == Health::Healthy {
                Status::Ok
            } else {
                Status::ServiceUnavailable
            };
            Some(Response::json(status, body.into_bytes()))
        }
        RestRoute::Status => Some(Response::json(Status::Ok, status_json(hub, config, now_ns))),
        RestRoute::Metrics => Some(Response::new(
            Status::Ok,
            "text/plain; version=0.0.4",
            render_prometheus(hub, now_ns).into_bytes(),
        )),
        RestRoute::Tps
        | RestRoute::Contention
        | RestRoute::BlocksLifecycle
        | RestRoute::BlockLifecycle(_) => None,
    }
}

/// `/v1/status`: the anchor gateway's fields plus ring state, lag and per-shard drops.
fn status_json(hub: &StatsHub, config: &Config, now_ns: u64) -> Vec<u8> {
    let t = &hub.tailer;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "{{\"status\":\"{}\",\"ring\":\"{}\",\"server_seqno\":{},\"head_ring_seqno\":{},\
         \"connected_clients\":{},\"uptime_secs\":{},\"last_event_age_secs\":",
        health(hub, config, now_ns).label(),
        t.ring_state().label(),
        ld(&t.head_server_seqno),
        ld(&t.head_ring_seqno),
        hub.clients(),
        now_ns.saturating_sub(hub.started_ns) / 1_000_000_000,
    );
    opt_f64(&mut s, hub.last_event_age(now_ns));
    s.push_str(",\"tailer_lag_secs\":");
    opt_f64(&mut s, hub.tailer_lag(now_ns));
    let _ = write!(
        s,
        ",\"events_in\":{},\"ring_gaps\":{},\"writer_restarts\":{},\"shards\":[",
        t.events_in_total(),
        ld(&t.ring_gaps),
        ld(&t.writer_restarts)
    );
    for (i, sh) in hub.shards.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"shard\":{i},\"connections\":{},\"queue_full\":{},\"drops\":{},\"slow_disconnects\":{}}}",
            ld(&sh.connections_open),
            ld(&sh.spsc_full),
            ld(&sh.drops),
            ld(&sh.slow_disconnects)
        );
    }
    s.push_str("]}");
    s.into_bytes()
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
    fn status_is_valid_json_with_the_anchor_fields() {
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
    fn analytics_routes_are_not_served_without_the_chain_tracker() {
        let hub = StatsHub::new(1, 0);
        assert!(answer(RestRoute::Tps, &hub, &Config::default(), 0).is_none());
    }
}
