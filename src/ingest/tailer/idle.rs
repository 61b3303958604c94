//! The tailer's idle policy: what to do after a poll of the ring found nothing.
//!
//! Runs on the tailer thread only; pure state (a count of consecutive idle polls), no
//! clock. [`IdleStrategy::BusySpin`] always spins; `SpinYieldPark` spins, then yields, then
//! sleeps with a doubling period capped at `max_park`. An event resets it to spinning.
//! Why 50 µs sleeps by default: docs/decisions/idle-strategy.md.

use std::time::Duration;

use crate::config::defaults;

/// What the tailer does when the ring has nothing new ([`crate::ingest::tailer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Spin `spins` polls, then `yield` `yields` times, then sleep: `park` at first, doubling
    /// per consecutive idle sleep up to `max_park`, until an event arrives (then back to
    /// spinning). The first event after an idle period waits at most the current sleep
    /// (plus timer slack); within a busy block the tailer never sleeps.
    SpinYieldPark {
        spins: u32,
        yields: u32,
        park: Duration,
        max_park: Duration,
    },
    /// Never sleep: lowest latency, one core at 100% forever. Only on a dedicated core.
    BusySpin,
}

impl Default for IdleStrategy {
    /// 100 spins, no yields, then fixed 50 µs sleeps (the tailer sets its
    /// timer slack to 1 ns, so a sleep really is 50 µs, not the default slack's ~100). The
    /// first event after any lull waits at most ~50 µs plus the wake-up. Costs: ~1/6 of the
    /// tailer's core while the ring is idle, which is that core's job (the tailer owns a
    /// core: docs/architecture.md). Measured trade-offs, and why not yields or a back-off:
    /// docs/decisions/idle-strategy.md. On a box that cannot spare it, raise
    /// `--idle-max-park-us` (sleeps double up to it); on a dedicated core, `--busy-spin`.
    fn default() -> IdleStrategy {
        IdleStrategy::SpinYieldPark {
            spins: defaults::IDLE_SPINS,
            yields: 0,
            park: Duration::from_micros(defaults::IDLE_PARK_US),
            max_park: Duration::from_micros(defaults::IDLE_MAX_PARK_US),
        }
    }
}

/// Counts idle polls and decides when to spin, yield or sleep.
#[derive(Debug, Clone)]
pub struct Idler {
    strategy: IdleStrategy,
    idle_polls: u64,
}

/// What to do after an idle poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    Spin,
    Yield,
    Sleep(Duration),
}

impl Idler {
    /// A fresh idler.
    pub fn new(strategy: IdleStrategy) -> Idler {
        Idler {
            strategy,
            idle_polls: 0,
        }
    }

    /// An event arrived: back to spinning.
    pub fn reset(&mut self) {
        self.idle_polls = 0;
    }

    /// One more idle poll: what to do now.
    pub fn idle(&mut self) -> IdleAction {
        self.idle_polls = self.idle_polls.saturating_add(1);
        match self.strategy {
            IdleStrategy::BusySpin => IdleAction::Spin,
            IdleStrategy::SpinYieldPark {
                spins,
                yields,
                park,
                max_park,
            } => {
                let busy = u64::from(spins) + u64::from(yields);
                if self.idle_polls <= u64::from(spins) {
                    IdleAction::Spin
                } else if self.idle_polls <= busy {
                    IdleAction::Yield
                } else {
                    // Doubling per consecutive sleep; the shift is capped so it cannot overflow.
                    let sleeps = (self.idle_polls - busy - 1).min(16) as u32;
                    let d = park.saturating_mul(1u32 << sleeps);
                    IdleAction::Sleep(d.min(max_park.max(park)))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idler_spins_then_yields_then_backs_off_and_resets_on_events() {
        let mut idler = Idler::new(IdleStrategy::SpinYieldPark {
            spins: 2,
            yields: 1,
            park: Duration::from_micros(7),
            max_park: Duration::from_micros(20),
        });
        assert_eq!(idler.idle(), IdleAction::Spin);
        assert_eq!(idler.idle(), IdleAction::Spin);
        assert_eq!(idler.idle(), IdleAction::Yield);
        assert_eq!(idler.idle(), IdleAction::Sleep(Duration::from_micros(7)));
        assert_eq!(idler.idle(), IdleAction::Sleep(Duration::from_micros(14)));
        assert_eq!(idler.idle(), IdleAction::Sleep(Duration::from_micros(20)));
        for _ in 0..100 {
            assert_eq!(idler.idle(), IdleAction::Sleep(Duration::from_micros(20)));
        }
        idler.reset();
        assert_eq!(idler.idle(), IdleAction::Spin);
        assert_eq!(Idler::new(IdleStrategy::BusySpin).idle(), IdleAction::Spin);
    }
}
