//! Subscription helpers: the advanced subscribe message, the `events=` query, and a local
//! matcher for field filters.
//!
//! The server applies the subscription. The matcher only covers the window between `Hello`
//! and the server's `Subscribed` acknowledgement, when frames are still selected by the
//! connect-time query (`events=`, `min_stage=`) and not yet by the field filters of the
//! subscribe message. It implements docs/protocol.md §4 (address, topics, selector,
//! txn_index, log_index; specs of one event ORed, field filters of a spec ANDed;
//! `NativeTransfer` is `TxnCallFrame` with a non-zero value). Where in doubt it lets an event
//! through rather than drop it: the server is the authority once it acknowledged.

use serde_json::{json, Value};

/// The meta items a subscription can name besides event kinds.
pub const META_ITEMS: &[&str] = &["TPS", "ContentionData", "TopAccesses", "Lifecycle"];

/// One field filter: `field_filter("address", Some(vec![json!("0x…")]), None, None)` or
/// `field_filter("txn_index", None, Some(0), Some(10))`.
pub fn field_filter(
    field: &str,
    values: Option<Vec<Value>>,
    min: Option<u64>,
    max: Option<u64>,
) -> Value {
    let mut f = serde_json::Map::new();
    if let Some(v) = values {
        f.insert("values".into(), Value::Array(v));
    }
    if let Some(v) = min {
        f.insert("min".into(), v.into());
    }
    if let Some(v) = max {
        f.insert("max".into(), v.into());
    }
    json!({"field": field, "filter": f})
}

fn spec_names(filters: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in filters {
        if let Some(n) = s.get("event_name").and_then(Value::as_str) {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_owned());
            }
        }
    }
    out
}

/// The `events=` query: the names, plus the names of filter specs (`None`: channel default).
pub fn query_events(events: Option<&[String]>, filters: &[Value]) -> Option<Vec<String>> {
    if events.is_none() && filters.is_empty() {
        return None;
    }
    let mut names: Vec<String> = events.unwrap_or_default().to_vec();
    for n in spec_names(filters) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Some(names)
}

/// `{"subscribe":{"events":[…],"filters":[…],"min_stage":…}}`; `events: None` sends `[]`
/// (only what the specs name).
pub fn subscribe_message(
    events: Option<&[String]>,
    filters: &[Value],
    min_stage: Option<&str>,
) -> Value {
    let mut body = json!({"events": events.unwrap_or_default(), "filters": filters});
    if let Some(s) = min_stage {
        body["min_stage"] = s.into();
    }
    json!({ "subscribe": body })
}

fn norm_hex(v: &Value, width: Option<usize>) -> Option<String> {
    let s = v.as_str()?.to_ascii_lowercase();
    let s = s.strip_prefix("0x").unwrap_or(&s).to_owned();
    Some(match width {
        Some(w) if s.len() <= w => format!("{s:0>w$}"),
        _ => s,
    })
}

const ADDRESS_FIELDS: &[(&str, &[&str])] = &[
    ("TxnHeaderStart", &["sender", "to"]),
    ("TxnAccessListEntry", &["address"]),
    ("TxnAuthListEntry", &["address", "authority"]),
    ("TxnLog", &["address"]),
    ("TxnCallFrame", &["caller", "call_target"]),
    ("AccountAccess", &["address"]),
    ("StorageAccess", &["address"]),
];

#[derive(Debug)]
enum Pred {
    Address(Vec<String>),
    Topics(Vec<Option<Vec<String>>>),
    Selector(Vec<String>),
    Range(&'static str, Option<u64>, Option<u64>),
    Any,
}

impl Pred {
    fn new(field: &str, flt: &Value) -> Pred {
        let values = flt
            .get("values")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let bound = |k| flt.get(k).and_then(Value::as_u64);
        match field {
            "address" => Pred::Address(
                values
                    .iter()
                    .filter_map(|v| norm_hex(v, Some(40)))
                    .collect(),
            ),
            "topics" => Pred::Topics(
                values
                    .iter()
                    .map(|slot| match slot {
                        Value::Null => None,
                        Value::Array(a) => {
                            Some(a.iter().filter_map(|t| norm_hex(t, Some(64))).collect())
                        }
                        t => Some(norm_hex(t, Some(64)).into_iter().collect()),
                    })
                    .collect(),
            ),
            "selector" => {
                Pred::Selector(values.iter().filter_map(|v| norm_hex(v, Some(8))).collect())
            }
            "txn_index" => Pred::Range("txn_index", bound("min"), bound("max")),
            "log_index" => Pred::Range("log_index", bound("min"), bound("max")),
            _ => Pred::Any,
        }
    }

    fn matches(&self, name: &str, ev: &Value, p: &Value) -> bool {
        match self {
            Pred::Address(wanted) => match ADDRESS_FIELDS.iter().find(|(n, _)| *n == name) {
                None => true,
                Some((_, keys)) => keys.iter().any(|k| {
                    p.get(*k)
                        .and_then(|v| norm_hex(v, Some(40)))
                        .is_some_and(|a| wanted.contains(&a))
                }),
            },
            Pred::Topics(slots) => {
                if name != "TxnLog" {
                    return true;
                }
                let body = p
                    .get("topics")
                    .and_then(|v| norm_hex(v, None))
                    .unwrap_or_default();
                let have: Vec<&str> = (0..body.len() / 64)
                    .map(|i| &body[i * 64..i * 64 + 64])
                    .collect();
                have.len() >= slots.len()
                    && slots.iter().enumerate().all(|(i, s)| match s {
                        None => true,
                        Some(set) => set.iter().any(|t| t == have[i]),
                    })
            }
            Pred::Selector(sels) => {
                let key = match name {
                    "TxnHeaderStart" => "data",
                    "TxnCallFrame" => "input",
                    _ => return true,
                };
                let data = p
                    .get(key)
                    .and_then(|v| norm_hex(v, None))
                    .unwrap_or_default();
                data.len() >= 8 && sels.iter().any(|s| s == &data[..8])
            }
            Pred::Range(field, lo, hi) => {
                let v = p.get(*field).and_then(Value::as_u64).or_else(|| {
                    (*field == "txn_index")
                        .then(|| ev.get("txn_idx").and_then(Value::as_u64))
                        .flatten()
                });
                v.is_some_and(|v| lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi))
            }
            Pred::Any => true,
        }
    }
}

/// Does a raw event match `events` + `filters`? (See the module header.)
#[derive(Debug)]
pub struct Matcher {
    plain: Vec<String>,
    specs: Vec<(String, Vec<Pred>)>,
}

impl Matcher {
    /// A matcher for these names and filter specs.
    pub fn new(events: Option<&[String]>, filters: &[Value]) -> Matcher {
        let specs: Vec<(String, Vec<Pred>)> = filters
            .iter()
            .map(|s| {
                let name = s
                    .get("event_name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let preds = s
                    .get("field_filters")
                    .and_then(Value::as_array)
                    .map(|ffs| {
                        ffs.iter()
                            .map(|ff| {
                                Pred::new(
                                    ff.get("field").and_then(Value::as_str).unwrap_or(""),
                                    ff.get("filter").unwrap_or(&Value::Null),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (name, preds)
            })
            .collect();
        // An event named in `events` with a spec is filtered by its specs.
        let plain = events
            .unwrap_or_default()
            .iter()
            .filter(|n| !specs.iter().any(|(s, _)| s == *n))
            .cloned()
            .collect();
        Matcher { plain, specs }
    }

    fn spec_ok(&self, key: &str, name: &str, ev: &Value, p: &Value) -> bool {
        self.specs
            .iter()
            .filter(|(n, _)| n == key)
            .any(|(_, preds)| preds.iter().all(|pr| pr.matches(name, ev, p)))
    }

    fn has_spec(&self, key: &str) -> bool {
        self.specs.iter().any(|(n, _)| n == key)
    }

    /// Whether the event (its JSON object) passes.
    pub fn matches(&self, ev: &Value) -> bool {
        let name = ev.get("event_name").and_then(Value::as_str).unwrap_or("");
        if self.plain.iter().any(|n| n == name) {
            return true;
        }
        let p = ev.get("payload").unwrap_or(&Value::Null);
        if self.has_spec(name) && self.spec_ok(name, name, ev, p) {
            return true;
        }
        let native_plain = self.plain.iter().any(|n| n == "NativeTransfer");
        if name == "TxnCallFrame" && (native_plain || self.has_spec("NativeTransfer")) {
            let value = p
                .get("value")
                .and_then(|v| norm_hex(v, None))
                .unwrap_or_default();
            if value.trim_start_matches('0').is_empty() {
                return false;
            }
            return native_plain || self.spec_ok("NativeTransfer", name, ev, p);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(addr: &str, topics: &str, txn: u64) -> Value {
        json!({"event_name":"TxnLog","txn_idx":txn,"payload":{"type":"TxnLog","txn_index":txn,
            "log_index":0,"address":addr,"topics":topics,"data":"0x"}})
    }

    #[test]
    fn specs_or_filters_and() {
        let a = format!("0x{}", "ab".repeat(20));
        let t0 = "11".repeat(32);
        let t1 = "22".repeat(32);
        let filters = vec![json!({"event_name":"TxnLog","field_filters":[
            field_filter("address", Some(vec![json!(a.to_uppercase().replace("0X", "0x"))]), None, None),
            field_filter("topics", Some(vec![json!(format!("0x{t0}")), Value::Null]), None, None),
            field_filter("txn_index", None, Some(1), Some(3))]})];
        let m = Matcher::new(Some(&["BlockStart".to_owned()]), &filters);
        assert!(m.matches(&log(&a, &format!("0x{t0}{t1}"), 2)));
        assert!(
            !m.matches(&log(&a, &format!("0x{t0}"), 2)),
            "needs two topics"
        );
        assert!(
            !m.matches(&log(&a, &format!("0x{t1}{t0}"), 2)),
            "topic 0 differs"
        );
        assert!(
            !m.matches(&log(&a, &format!("0x{t0}{t1}"), 4)),
            "txn_index out of range"
        );
        assert!(
            !m.matches(&log("0x00", &format!("0x{t0}{t1}"), 2)),
            "other address"
        );
        assert!(m.matches(&json!({"event_name":"BlockStart","payload":{}})));
        assert!(!m.matches(&json!({"event_name":"BlockEnd","payload":{}})));
    }

    #[test]
    fn native_transfer_is_a_valued_call_frame() {
        let m = Matcher::new(Some(&["NativeTransfer".to_owned()]), &[]);
        let frame = |v: &str| json!({"event_name":"TxnCallFrame","payload":{"value":v}});
        assert!(m.matches(&frame("0x5")));
        assert!(!m.matches(&frame("0x0")));
    }

    #[test]
    fn query_and_subscribe_include_spec_names() {
        let filters = vec![json!({"event_name":"TxnLog","field_filters":[]})];
        assert_eq!(query_events(None, &[]), None);
        assert_eq!(
            query_events(Some(&["BlockStart".into()]), &filters),
            Some(vec!["BlockStart".into(), "TxnLog".into()])
        );
        let m = subscribe_message(None, &filters, Some("Finalized"));
        assert_eq!(m["subscribe"]["events"], json!([]));
        assert_eq!(m["subscribe"]["min_stage"], "Finalized");
    }
}
