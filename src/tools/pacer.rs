//! Rate pacing for event producers (snapshot replay, the synthetic chain): hold a target rate
//! in events per second without busy-spinning a core.
//!
//! Runs on the producer's thread. Input: "n more events were produced" and the current time.
//! Output: how long to sleep (or a sleep, with [`Pacer::pace`]).
//!
//! Policy, chosen to be burst-friendly and cheap:
//! - The schedule is absolute: event `i` is due at `start + i / rate`, so rounding errors and
//!   sleep overshoot do not accumulate.
//! - A producer ahead of schedule by less than [`Pacer::SLACK`] continues without sleeping;
//!   beyond that it sleeps until due. Events therefore come in bursts of about
//!   `rate × SLACK` events followed by one sleep, never in a spin loop.
//! - A producer that fell behind (a stall, a slow consumer) may burst to catch up, but by at
//!   most [`Pacer::MAX_LAG`]: older debt is forgiven by moving the schedule, so a long stall
//!   is not followed by an unbounded flood.
//! - `None` (or a rate that is not a positive finite number) means flat out: never sleeps.
//!
//! Never: spin, assert timing.

use std::time::{Duration, Instant};

/// Paces a producer to a target event rate.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Seconds per event; `None` = flat out.
    interval: Option<f64>,
    /// Time of event 0 of the current schedule (set on first use).
    start: Option<Instant>,
    /// Events produced since `start`.
    produced: u64,
}

impl Pacer {
    /// How far ahead of schedule a producer may run before it sleeps.
    pub const SLACK: Duration = Duration::from_millis(2);
    /// How far behind schedule a producer may catch up by bursting.
    pub const MAX_LAG: Duration = Duration::from_secs(1);

    /// A pacer for `events_per_sec` (`None` = unpaced).
    pub fn new(events_per_sec: Option<f64>) -> Pacer {
        let interval = events_per_sec
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| 1.0 / r);
        Pacer {
            interval,
            start: None,
            produced: 0,
        }
    }

    /// True when no rate is set.
    pub fn is_unpaced(&self) -> bool {
        self.interval.is_none()
    }

    /// Records `events` more events produced at `now`; returns how long to sleep before the
    /// next one (`None` = continue now).
    pub fn delay(&mut self, now: Instant, events: u64) -> Option<Duration> {
        let interval = self.interval?;
        let start = *self.start.get_or_insert(now);
        self.produced += events;
        let due = start + Duration::from_secs_f64(self.produced as f64 * interval);
        if due > now {
            let ahead = due - now;
            return (ahead > Self::SLACK).then_some(ahead);
        }
        if now - due > Self::MAX_LAG {
            // Forgive the debt beyond MAX_LAG: restart the schedule MAX_LAG behind now.
            self.start = Some(now.checked_sub(Self::MAX_LAG).unwrap_or(now));
            self.produced = 0;
        }
        None
    }

    /// Records `events` more events and sleeps if ahead of schedule.
    pub fn pace(&mut self, events: u64) {
        if self.interval.is_none() {
            return;
        }
        if let Some(d) = self.delay(Instant::now(), events) {
            std::thread::sleep(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_never_sleeps() {
        let mut p = Pacer::new(None);
        assert!(p.is_unpaced());
        assert_eq!(p.delay(Instant::now(), 1_000_000), None);
        assert!(Pacer::new(Some(0.0)).is_unpaced());
        assert!(Pacer::new(Some(f64::NAN)).is_unpaced());
    }

    #[test]
    fn sleeps_only_when_ahead_by_more_than_the_slack() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(1000.0)); // 1 ms per event
        assert_eq!(p.delay(t0, 1), None); // 1 ms ahead: within slack
        assert_eq!(p.delay(t0, 1), None); // 2 ms ahead: still within slack
        let d = p.delay(t0, 8).unwrap(); // 10 ms ahead
        assert_eq!(d, Duration::from_millis(10));
        // After sleeping until due, the next event is on time.
        assert_eq!(p.delay(t0 + Duration::from_millis(10), 1), None);
    }

    #[test]
    fn a_long_stall_is_not_followed_by_an_unbounded_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(1000.0));
        p.delay(t0, 1);
        // 10 s stall: only MAX_LAG (1 s = 1000 events) may be caught up.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(p.delay(t1, 1), None);
        assert_eq!(p.delay(t1, 999), None);
        assert!(p.delay(t1, 10).is_some(), "catch-up is capped at MAX_LAG");
    }
}
