//! Ping-flood policy: each client ping costs us a pong write, so pings are rate-limited with
//! a token bucket, and a client that exceeds it is closed with 1008.
//!
//! Runtime-free: takes `now` as an argument. One per session, on its shard.

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
}
