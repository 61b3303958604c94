//! The baseline server's subscriptions: the protocol subset the benchmark uses (upgrade paths
//! `/`, `/v1/ws`, `/v1/ws/blocks`, `/v1/ws/txs`; simple `{"subscribe":[names]}` and advanced
//! `{"subscribe":{"events":[…],"filters":[{"event_name":…,"field_filters":[address]}]}}`),
//! matched per client per event the way the existing gateway does it.
//!
//! Runs on the baseline's tokio workers, inside each client task. Input: the path and the
//! client's JSON text; output: a [`Filter`] tested against every event's [`FilterKeys`].
//! Unparsable subscribe messages are ignored, as in the existing gateway.
//!
//! The blocks and txs paths take ringgate's own [`Channel`] event sets, so both servers
//! filter those channels to the same kinds; the paths, subscribe syntax and matching stay
//! the baseline's own.

use ringgate::model::kind::EventType;
use ringgate::model::outbound::FilterKeys;
use ringgate::model::types::Address;
use ringgate::wire::subscription::channel::Channel;
use serde::Deserialize;

/// One client's compiled subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Event-kind bits the client takes; `None` = every kind.
    kinds: Option<u32>,
    /// When non-empty, an event must also match one spec.
    specs: Vec<Spec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    event: Option<EventType>,
    /// Log emitter addresses, any of (empty = any).
    addresses: Vec<Address>,
    /// A field filter this subset does not implement: the spec never matches.
    unsupported: bool,
}

impl Filter {
    /// The channel default for an upgrade path, or `None` for a path the baseline rejects.
    pub fn for_path(path: &str) -> Option<Filter> {
        let path = path.split('?').next().unwrap_or(path);
        let kinds = match path {
            "/" | "/v1/ws" => None,
            "/v1/ws/blocks" => Some(Channel::Blocks.allowed_events()),
            "/v1/ws/txs" => Some(Channel::Txs.allowed_events()),
            _ => return None,
        };
        Some(Filter {
            kinds,
            specs: Vec::new(),
        })
    }

    /// The filter a subscribe message asks for, or `None` if the text is not one.
    pub fn from_subscribe(text: &str) -> Option<Filter> {
        let msg: SubscribeMsg = sonic_rs::from_str(text).ok()?;
        let (names, specs) = match msg.subscribe {
            Body::Names(n) => (n, Vec::new()),
            Body::Advanced(a) => (a.events, a.filters),
        };
        let kinds: Vec<EventType> = names
            .iter()
            .filter_map(|n| EventType::from_name(n))
            .collect();
        Some(Filter {
            // As in the existing gateway, an empty list means every kind.
            kinds: (!kinds.is_empty()).then(|| bits(&kinds)),
            specs: specs.into_iter().map(Spec::compile).collect(),
        })
    }

    /// Whether the client takes an event with these keys.
    pub fn matches(&self, keys: &FilterKeys) -> bool {
        if self.kinds.is_some_and(|k| k & keys.event_type.bit() == 0) {
            return false;
        }
        self.specs.is_empty() || self.specs.iter().any(|s| s.matches(keys))
    }
}

impl Spec {
    fn compile(j: SpecJson) -> Spec {
        let mut s = Spec {
            event: EventType::from_name(&j.event_name),
            addresses: Vec::new(),
            unsupported: false,
        };
        for f in j.field_filters {
            match f.field.as_str() {
                "address" => s
                    .addresses
                    .extend(f.filter.values.iter().filter_map(|v| parse_address(v))),
                _ => s.unsupported = true,
            }
        }
        s
    }

    fn matches(&self, keys: &FilterKeys) -> bool {
        !self.unsupported
            && self.event == Some(keys.event_type)
            && (self.addresses.is_empty()
                || keys.addresses().iter().any(|a| self.addresses.contains(a)))
    }
}

fn bits(kinds: &[EventType]) -> u32 {
    kinds.iter().fold(0, |b, k| b | k.bit())
}

fn parse_address(s: &str) -> Option<Address> {
    let hex = s.strip_prefix("0x")?.as_bytes();
    if hex.len() != 40 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 20];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[derive(Deserialize)]
struct SubscribeMsg {
    subscribe: Body,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Names(Vec<String>),
    Advanced(Advanced),
}

#[derive(Deserialize)]
struct Advanced {
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    filters: Vec<SpecJson>,
}

#[derive(Deserialize)]
struct SpecJson {
    event_name: String,
    #[serde(default)]
    field_filters: Vec<FieldFilterJson>,
}

#[derive(Deserialize)]
struct FieldFilterJson {
    field: String,
    filter: Values,
}

#[derive(Deserialize)]
struct Values {
    #[serde(default)]
    values: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_from(addr: Address) -> FilterKeys {
        let mut k = FilterKeys::new(EventType::TxnLog);
        k.push_address(addr);
        k
    }

    #[test]
    fn paths_select_channel_defaults_and_unknown_paths_are_refused() {
        let all = Filter::for_path("/v1/ws").unwrap();
        assert!(all.matches(&FilterKeys::new(EventType::StorageAccess)));
        let blocks = Filter::for_path("/v1/ws/blocks?resume_from=3").unwrap();
        assert!(blocks.matches(&FilterKeys::new(EventType::BlockStart)));
        assert!(!blocks.matches(&FilterKeys::new(EventType::TxnLog)));
        assert!(Filter::for_path("/v2/ws").is_none());
    }

    #[test]
    fn simple_and_advanced_subscriptions_match_like_the_existing_gateway() {
        let f = Filter::from_subscribe(r#"{"subscribe":["BlockStart","TPS"]}"#).unwrap();
        assert!(f.matches(&FilterKeys::new(EventType::BlockStart)));
        assert!(!f.matches(&FilterKeys::new(EventType::BlockEnd)));
        let meta_only = Filter::from_subscribe(r#"{"subscribe":["TPS"]}"#).unwrap();
        assert!(meta_only.matches(&FilterKeys::new(EventType::BlockEnd)));
        let a = [0xab; 20];
        let text = format!(
            r#"{{"subscribe":{{"events":["TxnLog"],"filters":[{{"event_name":"TxnLog","field_filters":[{{"field":"address","filter":{{"values":["0x{}"]}}}}]}}]}}}}"#,
            "ab".repeat(20)
        );
        let f = Filter::from_subscribe(&text).unwrap();
        assert!(f.matches(&log_from(a)));
        assert!(!f.matches(&log_from([0xcd; 20])));
        assert!(Filter::from_subscribe("not json").is_none());
    }
}
