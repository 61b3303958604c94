//! The `logs` / `monadLogs` filter of `eth_subscribe`: parsed as Monad's server (alloy's
//! `Filter`) accepts it, and matched on a log's precomputed keys.
//!
//! Accepted keys: `address` (one or an array; empty or absent = any), `topics` (up to 4
//! positions; each `null`, one hash, or an array = any of; `null` or `[]` = any; missing
//! trailing positions = any; a log with fewer topics than a non-wildcard position does not
//! match), `fromBlock` / `toBlock` (inclusive numeric bounds; the tags `latest`, `safe`,
//! `finalized`, `pending` impose no bound, `earliest` is block 0), `blockHash` (not with
//! `fromBlock`/`toBlock`). Extension: `commitState` (one state only, see
//! [`super::Subscribe::only_state`]). Anything else (another key, a bad hex value, five topic
//! positions) is `-32602 Invalid params`, as on Monad's server.
//!
//! Runtime-free; runs on shard cores once per subscribe, and per log per matching session
//! ([`LogFilter::matches`]: slice compares, no JSON).

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::model::rpc::RpcLog;
use crate::model::stage::CommitStage;
use crate::model::types::{Address, Bytes32};

/// Most topic positions a filter may name.
pub const MAX_TOPIC_POSITIONS: usize = 4;

/// A parsed log filter. Empty sets are wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub addresses: Vec<Address>,
    /// Per position, the topics any of which matches; an empty set is a wildcard.
    pub topics: Vec<Vec<Bytes32>>,
    pub from_block: Option<u64>,
    pub to_block: Option<u64>,
    pub block_hash: Option<Bytes32>,
}

/// What a filter object holds: the log filter and the `commitState` extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterParams {
    pub filter: LogFilter,
    pub only_state: Option<CommitStage>,
}

/// Why a filter was refused (always answered `-32602`; the text goes into `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

fn bad(message: impl Into<String>) -> FilterError {
    FilterError(message.into())
}

impl LogFilter {
    /// Whether a block of `number` and `hash` is within the range (checked once per block).
    pub fn wants_block(&self, number: u64, hash: &Bytes32) -> bool {
        self.from_block.is_none_or(|f| number >= f)
            && self.to_block.is_none_or(|t| number <= t)
            && self.block_hash.is_none_or(|h| &h == hash)
    }

    /// Whether `log` passes the address and topic sets.
    pub fn matches(&self, log: &RpcLog) -> bool {
        if !self.addresses.is_empty() && !self.addresses.contains(&log.address) {
            return false;
        }
        let have = log.topics();
        self.topics
            .iter()
            .enumerate()
            .all(|(i, set)| set.is_empty() || have.get(i).is_some_and(|t| set.contains(t)))
    }
}

/// Parses `0x` + exactly `N` bytes of hex (either case).
pub fn parse_fixed<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.as_bytes().chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Parses a hex quantity (`0x` + 1 to 16 digits) as a u64.
pub fn parse_quantity(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

fn hash_of(v: &Value, what: &str) -> Result<Bytes32, FilterError> {
    v.as_str()
        .and_then(parse_fixed::<32>)
        .ok_or_else(|| bad(format!("{what}: expected 0x + 64 hex digits")))
}

fn address_of(v: &Value) -> Result<Address, FilterError> {
    v.as_str()
        .and_then(parse_fixed::<20>)
        .ok_or_else(|| bad("address: expected 0x + 40 hex digits"))
}

/// A block bound: `None` for a tag without a bound.
fn block_of(v: &Value, what: &str) -> Result<Option<u64>, FilterError> {
    if v.is_null() {
        return Ok(None);
    }
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{what}: expected a block number or tag")))?;
    match s {
        "latest" | "safe" | "finalized" | "pending" => Ok(None),
        "earliest" => Ok(Some(0)),
        _ => parse_quantity(s)
            .map(Some)
            .ok_or_else(|| bad(format!("{what}: {s:?} is not a block number or tag"))),
    }
}

fn topic_set(v: &Value) -> Result<Vec<Bytes32>, FilterError> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    if let Some(list) = v.as_array() {
        let mut set = Vec::with_capacity(list.len());
        for t in list.iter() {
            if t.is_null() {
                // `[A, null]` means any topic at this position.
                return Ok(Vec::new());
            }
            set.push(hash_of(t, "topics")?);
        }
        return Ok(set);
    }
    Ok(vec![hash_of(v, "topics")?])
}

/// Parses the filter object of `eth_subscribe("logs", {…})`.
pub fn parse_filter(v: &Value) -> Result<FilterParams, FilterError> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the filter must be an object"))?;
    let mut p = FilterParams::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut range = false;
    for (key, value) in obj.iter() {
        if seen.contains(&key) {
            return Err(bad(format!("duplicate key {key:?}")));
        }
        seen.push(key);
        match key {
            "address" => {
                p.filter.addresses = if value.is_null() {
                    Vec::new()
                } else if let Some(list) = value.as_array() {
                    list.iter().map(address_of).collect::<Result<_, _>>()?
                } else {
                    vec![address_of(value)?]
                };
            }
            "topics" => {
                if value.is_null() {
                    continue;
                }
                let list = value
                    .as_array()
                    .ok_or_else(|| bad("topics: expected an array"))?;
                if list.len() > MAX_TOPIC_POSITIONS {
                    return Err(bad("exceeded maximum topics len"));
                }
                p.filter.topics = list.iter().map(topic_set).collect::<Result<_, _>>()?;
            }
            "fromBlock" => {
                range = true;
                p.filter.from_block = block_of(value, "fromBlock")?;
            }
            "toBlock" => {
                range = true;
                p.filter.to_block = block_of(value, "toBlock")?;
            }
            "blockHash" => p.filter.block_hash = Some(hash_of(value, "blockHash")?),
            "commitState" => {
                let name = value.as_str().unwrap_or("");
                p.only_state = Some(
                    CommitStage::from_name(name)
                        .filter(|s| s.rank().is_some())
                        .ok_or_else(|| {
                            bad("commitState: one of Proposed, Voted, Finalized, Verified")
                        })?,
                );
            }
            other => return Err(bad(format!("unknown filter key {other:?}"))),
        }
    }
    if range && p.filter.block_hash.is_some() {
        return Err(bad("blockHash cannot be combined with fromBlock/toBlock"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FilterParams, FilterError> {
        parse_filter(&sonic_rs::from_str::<Value>(text).unwrap())
    }

    fn log(address: u8, topics: &[u8]) -> RpcLog {
        let mut t = [[0u8; 32]; 4];
        for (slot, b) in t.iter_mut().zip(topics) {
            *slot = [*b; 32];
        }
        RpcLog {
            address: [address; 20],
            topics: t,
            topic_count: topics.len() as u8,
            json: Box::default(),
        }
    }

    fn h(b: u8) -> String {
        format!("\"0x{}\"", format!("{b:02x}").repeat(32))
    }

    fn a(b: u8) -> String {
        format!("\"0x{}\"", format!("{b:02x}").repeat(20))
    }

    #[test]
    fn addresses_are_one_or_any_of_many() {
        let one = parse(&format!("{{\"address\":{}}}", a(1))).unwrap().filter;
        assert!(one.matches(&log(1, &[])) && !one.matches(&log(2, &[])));
        let many = parse(&format!("{{\"address\":[{},{}]}}", a(1), a(2)))
            .unwrap()
            .filter;
        assert!(many.matches(&log(2, &[])) && !many.matches(&log(3, &[])));
        let any = parse("{\"address\":[]}").unwrap().filter;
        assert!(any.matches(&log(9, &[])));
    }

    #[test]
    fn topics_are_positional_with_wildcards_and_or_sets() {
        let f = parse(&format!(
            "{{\"topics\":[{},null,[{},{}],[]]}}",
            h(1),
            h(3),
            h(4)
        ))
        .unwrap()
        .filter;
        assert!(f.matches(&log(0, &[1, 9, 3])));
        assert!(f.matches(&log(0, &[1, 9, 4, 7])));
        assert!(!f.matches(&log(0, &[1, 9, 5])));
        assert!(!f.matches(&log(0, &[2, 9, 3])));
        // Fewer topics than a non-wildcard position: no match.
        assert!(!f.matches(&log(0, &[1, 9])));
        let prefix = parse(&format!("{{\"topics\":[{}]}}", h(1))).unwrap().filter;
        assert!(prefix.matches(&log(0, &[1, 2, 3])));
        assert!(!prefix.matches(&log(0, &[])));
    }

    #[test]
    fn block_range_and_hash_bound_the_blocks() {
        let f = parse("{\"fromBlock\":\"0xa\",\"toBlock\":\"latest\"}")
            .unwrap()
            .filter;
        assert!(!f.wants_block(9, &[0; 32]) && f.wants_block(10, &[0; 32]));
        assert!(f.wants_block(u64::MAX, &[0; 32]));
        let e = parse("{\"toBlock\":\"earliest\"}").unwrap().filter;
        assert!(!e.wants_block(1, &[0; 32]));
        let by_hash = parse(&format!("{{\"blockHash\":{}}}", h(5)))
            .unwrap()
            .filter;
        assert!(by_hash.wants_block(3, &[5; 32]) && !by_hash.wants_block(3, &[6; 32]));
    }

    #[test]
    fn what_monads_server_refuses_is_refused() {
        for text in [
            "{\"foo\":1}".to_owned(),
            format!("{{\"topics\":[null,null,null,null,{}]}}", h(1)),
            format!("{{\"blockHash\":{},\"fromBlock\":\"0x1\"}}", h(1)),
            "{\"address\":\"0x12\"}".to_owned(),
            "{\"fromBlock\":\"one\"}".to_owned(),
            "{\"topics\":\"0x00\"}".to_owned(),
            "[]".to_owned(),
            "{\"commitState\":\"Abandoned\"}".to_owned(),
        ] {
            assert!(parse(&text).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn commit_state_is_an_extension_key() {
        let p = parse("{\"commitState\":\"Finalized\"}").unwrap();
        assert_eq!(p.only_state, Some(CommitStage::Finalized));
    }
}
