//! Keep-alive policy of a session, both directions:
//! - [`Heartbeat`]: server pings every interval, and a client silent (no pong, no message)
//!   for the timeout is closed;
//! - [`PingLimiter`]: each client ping costs us a pong write, so pings are rate-limited with
//!   a token bucket, and a client that exceeds it is closed with 1008.
//!
//! Runtime-free: takes `now` as an argument. One of each per session, on its shard.

use std::time::{Duration, Instant};

/// Outcome of one client ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingVerdict {
    /// Within the rate: answer with a pong.
    Allowed,
    /// Over the rate: close with 1008 ([`crate::wire::ws::WsError::PingFlood`]).
    Flood,
}

/// A token bucket over client pings.
#[derive(Debug, Clone)]
pub struct PingLimiter {
    per_sec: u32,
    burst: u32,
    /// Tokens available, in units of 1/`per_sec` seconds-worth (nanoseconds of credit).
    credit_ns: u128,
    last: Instant,
}

impl PingLimiter {
    /// Default sustained rate: 10 pings per second.
    pub const DEFAULT_PER_SEC: u32 = 10;
    /// Default burst: 20 pings back to back.
    pub const DEFAULT_BURST: u32 = 20;

    /// A full bucket allowing `per_sec` pings per second sustained and `burst` at once
    /// (both at least 1).
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> PingLimiter {
        let per_sec = per_sec.max(1);
        let burst = burst.max(1);
        PingLimiter {
            per_sec,
            burst,
            credit_ns: u128::from(burst) * Self::cost_ns(per_sec),
            last: now,
        }
    }

    fn cost_ns(per_sec: u32) -> u128 {
        Duration::from_secs(1).as_nanos() / u128::from(per_sec)
    }

    /// Sustained pings per second allowed (for the close reason).
    pub fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// Accounts one ping received at `now`.
    pub fn on_ping(&mut self, now: Instant) -> PingVerdict {
        let cost = Self::cost_ns(self.per_sec);
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        self.credit_ns = (self.credit_ns + elapsed).min(u128::from(self.burst) * cost);
        if self.credit_ns >= cost {
            self.credit_ns -= cost;
            PingVerdict::Allowed
        } else {
            PingVerdict::Flood
        }
    }
}

/// What the heartbeat wants now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Nothing to do until [`Heartbeat::next_deadline`].
    Idle,
    /// Send a ping now (the heartbeat records it as sent).
    SendPing,
    /// No pong (or other client traffic) within the timeout: close with 1008.
    TimedOut,
}

/// Server-driven liveness: ping every `interval`, and close a client from which nothing has
/// arrived for `timeout`. Any client frame counts as liveness ([`Heartbeat::on_activity`]),
/// so a passive client that answers pings (every WebSocket stack does) is never dropped,
/// unlike the existing gateway, which never pinged and dropped passive clients.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    last_heard: Instant,
    last_ping: Instant,
}

impl Heartbeat {
    /// Default ping interval: 30 s (below common load-balancer idle timeouts of 60 s).
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
    /// Default timeout: 60 s, two missed pongs.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// A heartbeat for a session that connected at `now`.
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Heartbeat {
        Heartbeat {
            interval,
            timeout,
            last_heard: now,
            last_ping: now,
        }
    }

    /// A pong arrived.
    pub fn on_pong(&mut self, now: Instant) {
        self.on_activity(now);
    }

    /// Any frame arrived from the client.
    pub fn on_activity(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    /// Decides what to do at `now`.
    pub fn poll(&mut self, now: Instant) -> Beat {
        if now.saturating_duration_since(self.last_heard) >= self.timeout {
            return Beat::TimedOut;
        }
        if now.saturating_duration_since(self.last_ping) >= self.interval {
            self.last_ping = now;
            return Beat::SendPing;
        }
        Beat::Idle
    }

    /// When [`Heartbeat::poll`] next has something to do (the session's timer deadline).
    pub fn next_deadline(&self) -> Instant {
        (self.last_ping + self.interval).min(self.last_heard + self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_a_flood_is_caught_and_time_refills() {
        let t0 = Instant::now();
        let mut l = PingLimiter::new(10, 3, t0);
        for _ in 0..3 {
            assert_eq!(l.on_ping(t0), PingVerdict::Allowed);
        }
        assert_eq!(l.on_ping(t0), PingVerdict::Flood);
        assert_eq!(
            l.on_ping(t0 + Duration::from_millis(100)),
            PingVerdict::Allowed
        );
        assert_eq!(
            l.on_ping(t0 + Duration::from_millis(150)),
            PingVerdict::Flood
        );
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(l.on_ping(later), PingVerdict::Allowed);
        }
        assert_eq!(l.on_ping(later), PingVerdict::Flood);
    }

    #[test]
    fn a_steady_client_at_the_rate_is_never_closed() {
        let t0 = Instant::now();
        let mut l = PingLimiter::new(PingLimiter::DEFAULT_PER_SEC, 1, t0);
        for i in 1..1000u64 {
            assert_eq!(
                l.on_ping(t0 + Duration::from_millis(100 * i)),
                PingVerdict::Allowed
            );
        }
    }

    #[test]
    fn heartbeat_pings_on_interval_and_times_out_silent_clients() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut hb = Heartbeat::new(s(30), s(60), t0);
        assert_eq!(hb.poll(t0 + s(10)), Beat::Idle);
        assert_eq!(hb.next_deadline(), t0 + s(30));
        assert_eq!(hb.poll(t0 + s(30)), Beat::SendPing);
        assert_eq!(hb.poll(t0 + s(31)), Beat::Idle);
        hb.on_pong(t0 + s(31));
        assert_eq!(hb.poll(t0 + s(60)), Beat::SendPing);
        assert_eq!(hb.poll(t0 + s(90)), Beat::SendPing);
        assert_eq!(hb.poll(t0 + s(91)), Beat::TimedOut);
        let mut chatty = Heartbeat::new(s(30), s(60), t0);
        for i in 1..100 {
            chatty.on_activity(t0 + s(i * 20));
            assert_ne!(chatty.poll(t0 + s(i * 20 + 1)), Beat::TimedOut);
        }
    }
}
