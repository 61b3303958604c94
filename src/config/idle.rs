//! Idle profiles: one name for how every waiting thread waits, the tailer (an empty ring) and
//! the shards (an empty inbox), so an operator picks a trade-off instead of four numbers.
//!
//! Runs on the main thread while the configuration is built; a profile only fills
//! [`Config::idle`] and [`Config::inbox_spin`], which the fine-grained flags
//! (`--busy-spin`, `--idle-park-us`, `--idle-max-park-us`, `--inbox-spin-us`) may then
//! override one by one. Measured idle CPU and first-event-after-a-lull latency of each:
//! docs/operations.md ("Idle profiles"); why these numbers: docs/decisions/idle-strategy.md.

use std::time::Duration;

use crate::config::{defaults, Config};
use crate::ingest::tailer::IdleStrategy;

/// How the gateway's threads wait when there is nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IdleProfile {
    /// The tailer never sleeps and a shard polls its empty inbox for 1 ms before it parks:
    /// the lowest wake-up latency for a whole core per thread. Only on isolated cores.
    Latency,
    /// The tailer spins 100 polls, then sleeps 50 µs at a time; a shard polls its empty
    /// inbox for 20 µs before it parks. The first event after a lull waits at most ~50 µs
    /// plus a wake-up; a quiet gateway costs a fraction of the tailer's core.
    #[default]
    Balanced,
    /// The tailer spins 100 polls, then sleeps 50 µs doubling up to 1 ms; a shard parks at
    /// once. Near-zero CPU when quiet; the first event after a lull waits up to ~1 ms more.
    Frugal,
}

/// `Frugal`'s longest tailer sleep.
const FRUGAL_MAX_PARK: Duration = Duration::from_millis(1);
/// `Latency`'s shard inbox polling before a park.
const LATENCY_INBOX_SPIN: Duration = Duration::from_millis(1);

impl IdleProfile {
    /// The tailer's strategy under this profile.
    pub fn tailer(self) -> IdleStrategy {
        let park = Duration::from_micros(defaults::IDLE_PARK_US);
        match self {
            IdleProfile::Latency => IdleStrategy::BusySpin,
            IdleProfile::Balanced => IdleStrategy::default(),
            IdleProfile::Frugal => IdleStrategy::SpinYieldPark {
                spins: 100,
                yields: 0,
                park,
                max_park: FRUGAL_MAX_PARK,
            },
        }
    }

    /// How long a shard polls its empty inbox before parking, under this profile.
    pub fn inbox_spin(self) -> Duration {
        match self {
            IdleProfile::Latency => LATENCY_INBOX_SPIN,
            IdleProfile::Balanced => Duration::from_micros(defaults::INBOX_SPIN_US),
            IdleProfile::Frugal => Duration::ZERO,
        }
    }

    /// Sets `config`'s tailer and shard waiting to this profile.
    pub fn apply(self, config: &mut Config) {
        self.apply_with(&IdleOverrides::default(), config);
    }

    /// Sets `config`'s tailer and shard waiting to this profile, then applies each override
    /// given. A sleep asked of the `Latency` profile's tailer gets `Balanced`'s spins first.
    pub fn apply_with(self, o: &IdleOverrides, config: &mut Config) {
        config.idle = self.tailer();
        config.inbox_spin = o
            .inbox_spin_us
            .map_or(self.inbox_spin(), Duration::from_micros);
        if o.busy_spin {
            config.idle = IdleStrategy::BusySpin;
            return;
        }
        if o.park_us.is_none() && o.max_park_us.is_none() {
            return;
        }
        let base = match config.idle {
            IdleStrategy::BusySpin => IdleProfile::Balanced.tailer(),
            sleeping => sleeping,
        };
        if let IdleStrategy::SpinYieldPark {
            spins,
            yields,
            park,
            max_park,
        } = base
        {
            let us = Duration::from_micros;
            config.idle = IdleStrategy::SpinYieldPark {
                spins,
                yields,
                park: o.park_us.map_or(park, us),
                max_park: o.max_park_us.map_or(max_park, us),
            };
        }
    }
}

/// The fine-grained flags, each overriding one part of a profile (`None`/`false`: keep it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleOverrides {
    /// `--busy-spin`: the tailer never sleeps.
    pub busy_spin: bool,
    /// `--idle-park-us`: the tailer's first sleep.
    pub park_us: Option<u64>,
    /// `--idle-max-park-us`: the tailer's longest sleep.
    pub max_park_us: Option<u64>,
    /// `--inbox-spin-us`: a shard's polling of its empty inbox before it parks.
    pub inbox_spin_us: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_is_the_configs_default_and_the_others_trade_each_way() {
        let mut c = Config::default();
        let (idle, spin) = (c.idle, c.inbox_spin);
        IdleProfile::default().apply(&mut c);
        assert_eq!((c.idle, c.inbox_spin), (idle, spin));
        IdleProfile::Latency.apply(&mut c);
        assert_eq!(c.idle, IdleStrategy::BusySpin);
        assert!(c.inbox_spin > spin);
        IdleProfile::Frugal.apply(&mut c);
        assert_eq!(c.inbox_spin, Duration::ZERO);
        match c.idle {
            IdleStrategy::SpinYieldPark { park, max_park, .. } => assert!(max_park > park),
            other => panic!("frugal never sleeps: {other:?}"),
        }
    }

    #[test]
    fn each_override_replaces_only_its_own_part_of_the_profile() {
        let mut c = Config::default();
        let o = IdleOverrides {
            max_park_us: Some(400),
            ..IdleOverrides::default()
        };
        IdleProfile::Frugal.apply_with(&o, &mut c);
        assert_eq!(c.inbox_spin, Duration::ZERO);
        assert_eq!(
            c.idle,
            IdleStrategy::SpinYieldPark {
                spins: 100,
                yields: 0,
                park: Duration::from_micros(50),
                max_park: Duration::from_micros(400),
            }
        );
        let o = IdleOverrides {
            park_us: Some(10),
            inbox_spin_us: Some(7),
            ..IdleOverrides::default()
        };
        IdleProfile::Latency.apply_with(&o, &mut c);
        assert_eq!(c.inbox_spin, Duration::from_micros(7));
        let IdleStrategy::SpinYieldPark { park, spins, .. } = c.idle else {
            panic!("a park was asked for: {:?}", c.idle);
        };
        assert_eq!(
            (park, spins),
            (Duration::from_micros(10), defaults::IDLE_SPINS)
        );
        let o = IdleOverrides {
            busy_spin: true,
            park_us: Some(10),
            ..IdleOverrides::default()
        };
        IdleProfile::Frugal.apply_with(&o, &mut c);
        assert_eq!(c.idle, IdleStrategy::BusySpin);
    }
}
