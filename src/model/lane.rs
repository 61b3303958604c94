//! Priority lanes: which frames a slow session keeps when it cannot take everything.
//!
//! Runs anywhere; pure data. Every frame a session can be sent belongs to one [`Lane`]:
//! meta frames (`TPS`, `ContentionData`, `TopAccesses`, `Lifecycle`, `Gap`) always to
//! [`Lane::Block`], events by their type through a [`LaneMap`]. The default map
//! ([`LaneMap::DEFAULT`], docs/decisions/priority-lanes.md) puts block-level events in the top
//! lane, the transaction skeleton (header, output, logs, end, rejects) in the middle one, and
//! the bulky detail (access lists, call frames, account and storage accesses, perf events) in
//! the lowest. [`LaneMap::SINGLE`] puts everything in the top lane: the queue then behaves
//! exactly as it did before lanes.

use crate::model::kind::{EventType, EVENT_TYPE_COUNT};

/// Number of lanes.
pub const LANE_COUNT: usize = 3;

/// One priority lane, highest first (`Block < Txn < Detail` in the derived order: a lower
/// value is a higher priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Never shed: overflowing it is what a slow client is warned about and closed for.
    Block = 0,
    Txn = 1,
    Detail = 2,
}

impl Lane {
    /// Every lane, highest priority first; `ALL[i] as usize == i`.
    pub const ALL: [Lane; LANE_COUNT] = [Lane::Block, Lane::Txn, Lane::Detail];

    /// The wire name (`priority=`, `Shed.lane`).
    pub fn name(self) -> &'static str {
        match self {
            Lane::Block => "block",
            Lane::Txn => "txn",
            Lane::Detail => "detail",
        }
    }

    /// The lane a wire name stands for.
    pub fn from_name(name: &str) -> Option<Lane> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The lane of every event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneMap([Lane; EVENT_TYPE_COUNT]);

impl LaneMap {
    /// The built-in classification (docs/decisions/priority-lanes.md).
    pub const DEFAULT: LaneMap = LaneMap(default_lanes());

    /// Everything in the top lane: lanes off.
    pub const SINGLE: LaneMap = LaneMap([Lane::Block; EVENT_TYPE_COUNT]);

    /// The lane of events of type `t`.
    pub fn lane(&self, t: EventType) -> Lane {
        self.0[usize::from(t.code())]
    }

    /// This map with events of type `t` moved to `lane`.
    pub fn with(mut self, t: EventType, lane: Lane) -> LaneMap {
        self.0[usize::from(t.code())] = lane;
        self
    }

    /// Parses `--lanes`: a comma list of `on` (start from [`LaneMap::DEFAULT`], the start
    /// anyway), `off` (start from [`LaneMap::SINGLE`]) and `EventName=lane` overrides, applied
    /// in order (`off,TxnCallFrame=detail`: only call frames can be shed).
    pub fn parse(spec: &str) -> Result<LaneMap, String> {
        let mut map = LaneMap::DEFAULT;
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "on" => map = LaneMap::DEFAULT,
                "off" => map = LaneMap::SINGLE,
                _ => {
                    let (name, lane) = item
                        .split_once('=')
                        .ok_or_else(|| format!("`{item}`: expected on, off or EventName=lane"))?;
                    let t = EventType::from_name(name.trim())
                        .ok_or_else(|| format!("`{name}` is not an event name"))?;
                    let lane = Lane::from_name(lane.trim())
                        .ok_or_else(|| format!("`{lane}`: lanes are block, txn, detail"))?;
                    map = map.with(t, lane);
                }
            }
        }
        Ok(map)
    }

    /// Whether every type is in the top lane (nothing can be shed).
    pub fn is_single(&self) -> bool {
        self.0.iter().all(|l| *l == Lane::Block)
    }
}

impl Default for LaneMap {
    fn default() -> Self {
        LaneMap::DEFAULT
    }
}

const fn default_lanes() -> [Lane; EVENT_TYPE_COUNT] {
    let mut lanes = [Lane::Detail; EVENT_TYPE_COUNT];
    let mut code = 0;
    while code < EVENT_TYPE_COUNT {
        lanes[code] = default_lane(EventType::ALL[code]);
        code += 1;
    }
    lanes
}

const fn default_lane(t: EventType) -> Lane {
    match t {
        EventType::BlockStart
        | EventType::BlockReject
        | EventType::BlockEnd
        | EventType::BlockQc
        | EventType::BlockFinalized
        | EventType::BlockVerified
        | EventType::RecordError
        | EventType::EvmError
        | EventType::None => Lane::Block,
        EventType::TxnHeaderStart
        | EventType::TxnHeaderEnd
        | EventType::TxnReject
        | EventType::TxnEvmOutput
        | EventType::TxnLog
        | EventType::TxnEnd => Lane::Txn,
        EventType::BlockPerfEvmEnter
        | EventType::BlockPerfEvmExit
        | EventType::TxnAccessListEntry
        | EventType::TxnAuthListEntry
        | EventType::TxnPerfEvmEnter
        | EventType::TxnPerfEvmExit
        | EventType::TxnCallFrame
        | EventType::AccountAccessListHeader
        | EventType::AccountAccess
        | EventType::StorageAccess => Lane::Detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_map_keeps_block_events_on_top_and_bulk_at_the_bottom() {
        let m = LaneMap::DEFAULT;
        assert_eq!(m.lane(EventType::BlockEnd), Lane::Block);
        assert_eq!(m.lane(EventType::BlockFinalized), Lane::Block);
        assert_eq!(m.lane(EventType::TxnLog), Lane::Txn);
        assert_eq!(m.lane(EventType::TxnEnd), Lane::Txn);
        assert_eq!(m.lane(EventType::StorageAccess), Lane::Detail);
        assert_eq!(m.lane(EventType::TxnCallFrame), Lane::Detail);
        assert!(!m.is_single());
        assert!(LaneMap::SINGLE.is_single());
        let moved = m.with(EventType::TxnLog, Lane::Detail);
        assert_eq!(moved.lane(EventType::TxnLog), Lane::Detail);
        assert_eq!(moved.lane(EventType::TxnEnd), Lane::Txn);
    }

    #[test]
    fn parse_applies_items_in_order_and_names_bad_ones() {
        assert_eq!(LaneMap::parse("on"), Ok(LaneMap::DEFAULT));
        assert_eq!(LaneMap::parse("off"), Ok(LaneMap::SINGLE));
        let m = LaneMap::parse("off, TxnCallFrame=detail").unwrap();
        assert_eq!(m.lane(EventType::TxnCallFrame), Lane::Detail);
        assert_eq!(m.lane(EventType::StorageAccess), Lane::Block);
        let m = LaneMap::parse("TxnLog=block").unwrap();
        assert_eq!(m.lane(EventType::TxnLog), Lane::Block);
        assert_eq!(m.lane(EventType::StorageAccess), Lane::Detail);
        assert!(LaneMap::parse("TxnLogs=block")
            .unwrap_err()
            .contains("TxnLogs"));
        assert!(LaneMap::parse("TxnLog=top").unwrap_err().contains("top"));
        assert!(LaneMap::parse("maybe").is_err());
    }

    #[test]
    fn names_round_trip() {
        for l in Lane::ALL {
            assert_eq!(Lane::from_name(l.name()), Some(l));
            assert_eq!(Lane::ALL[l.index()], l);
        }
        assert_eq!(Lane::from_name("Block"), None);
    }
}
