//! Client text → [`ClientMessage`]: the simple subscribe (a list of names), the advanced
//! subscribe (events + filter specs + min_stage), and `hello`.
//!
//! Runs on shard cores per client message. The JSON is parsed once into a DOM (sonic-rs)
//! and walked by hand so every problem gets a precise [`ErrorCode`] and a message naming
//! the offending value. Unknown keys inside a subscribe are errors too, so typos surface.

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::model::kind::EventType;
use crate::model::stage::CommitStage;
use crate::wire::subscription::channel::{Channel, Item, MetaMask};
use crate::wire::subscription::{
    ClientError, ClientHello, ClientMessage, ErrorCode, FieldFilter, FilterSpec, IndexRange,
    SpecTarget, Subscription, SubscriptionLimits, TopicSlot,
};

fn err(code: ErrorCode, message: impl Into<String>) -> ClientError {
    ClientError::new(code, message)
}

/// Deepest JSON nesting accepted; a subscribe needs 7 levels. Checked before parsing so a
/// hostile `[[[[…` cannot recurse deeply.
const MAX_DEPTH: usize = 16;

pub(crate) fn nesting_within(text: &str, max: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Parses one client text message for a session on `channel`.
pub fn parse_client_message(
    text: &str,
    channel: Channel,
    limits: &SubscriptionLimits,
) -> Result<ClientMessage, ClientError> {
    if text.len() > limits.max_message_bytes {
        return Err(err(
            ErrorCode::MessageTooLarge,
            format!("{} bytes (limit {})", text.len(), limits.max_message_bytes),
        ));
    }
    if !nesting_within(text, MAX_DEPTH) {
        return Err(err(
            ErrorCode::InvalidJson,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let root: Value = sonic_rs::from_str(text)
        .map_err(|e| err(ErrorCode::InvalidJson, format!("not valid JSON: {e}")))?;
    let obj = root.as_object().ok_or_else(|| {
        err(
            ErrorCode::UnknownMessage,
            "expected an object with one key: \"subscribe\" or \"hello\"",
        )
    })?;
    let mut entries = obj.iter();
    let (key, body) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        _ => {
            return Err(err(
                ErrorCode::UnknownMessage,
                "expected an object with exactly one key: \"subscribe\" or \"hello\"",
            ))
        }
    };
    match key {
        "subscribe" => parse_subscribe(body, channel, limits).map(ClientMessage::Subscribe),
        "hello" => parse_hello(body).map(ClientMessage::Hello),
        other => Err(err(
            ErrorCode::UnknownMessage,
            format!("unknown message {other:?}: expected \"subscribe\" or \"hello\""),
        )),
    }
}

fn short(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn parse_hello(body: &Value) -> Result<ClientHello, ClientError> {
    let obj = body
        .as_object()
        .ok_or_else(|| err(ErrorCode::BadValue, "hello must be an object"))?;
    let text = |k: &str| obj.get(&k).and_then(|v| v.as_str()).map(short);
    Ok(ClientHello {
        wire_version: obj.get(&"wire_version").and_then(|v| v.as_u64()),
        client_name: text("client_name"),
        client_version: text("client_version"),
    })
}

fn parse_item(v: &Value) -> Result<Item, ClientError> {
    let name = v
        .as_str()
        .ok_or_else(|| err(ErrorCode::BadValue, "event names must be strings"))?;
    Item::from_name(name).ok_or_else(|| {
        err(
            ErrorCode::UnknownEvent,
            format!("unknown event {:?}", short(name)),
        )
    })
}

/// A skipped name and why.
type Rejected = (String, ClientError);

/// The names of a subscribe: the applicable ones, and those skipped (an unknown name, or an
/// item the channel does not carry) with why. A name that is not a string fails the message.
fn parse_names(
    v: &Value,
    what: &str,
    channel: Channel,
    limits: &SubscriptionLimits,
) -> Result<(Vec<Item>, Vec<Rejected>), ClientError> {
    let mut items = Vec::new();
    let mut rejected = Vec::new();
    for v in parse_array(v, what, limits)? {
        let name = v.as_str().unwrap_or_default();
        match parse_item(v) {
            Ok(item) if channel.allows(item) => items.push(item),
            Ok(item) => rejected.push((
                name.to_owned(),
                err(
                    ErrorCode::NotAllowedOnChannel,
                    format!(
                        "{} is not carried by the {} channel",
                        item.name(),
                        channel.name()
                    ),
                ),
            )),
            Err(e) if e.code == ErrorCode::UnknownEvent => rejected.push((short(name), e)),
            Err(e) => return Err(e),
        }
    }
    Ok((items, rejected))
}

fn parse_array<'a>(
    v: &'a Value,
    what: &str,
    limits: &SubscriptionLimits,
) -> Result<&'a sonic_rs::Array, ClientError> {
    let arr = v.as_array().ok_or_else(|| {
        err(
            ErrorCode::BadValue,
            format!("{what} must be an array of names"),
        )
    })?;
    if arr.len() > limits.max_names {
        return Err(err(
            ErrorCode::TooManyNames,
            format!("{} names (limit {})", arr.len(), limits.max_names),
        ));
    }
    Ok(arr)
}

fn parse_subscribe(
    body: &Value,
    channel: Channel,
    limits: &SubscriptionLimits,
) -> Result<Subscription, ClientError> {
    if body.is_array() {
        let (items, rejected) = parse_names(body, "subscribe", channel, limits)?;
        return with_rejected(
            Subscription::from_items(channel, &items, Vec::new(), limits)?,
            rejected,
        );
    }
    let obj = body.as_object().ok_or_else(|| {
        err(
            ErrorCode::BadValue,
            "subscribe must be an array of names or an object {events, filters, min_stage}",
        )
    })?;
    let (mut items, mut specs, mut min_stage) = (Vec::new(), Vec::new(), None);
    let mut rejected = Vec::new();
    for (key, v) in obj.iter() {
        match key {
            "events" => (items, rejected) = parse_names(v, "events", channel, limits)?,
            "filters" => {
                let arr = v
                    .as_array()
                    .ok_or_else(|| err(ErrorCode::BadValue, "filters must be an array"))?;
                if arr.len() > limits.max_filters {
                    return Err(err(
                        ErrorCode::TooManyFilters,
                        format!("{} filter specs (limit {})", arr.len(), limits.max_filters),
                    ));
                }
                specs = arr
                    .iter()
                    .map(|s| parse_spec(s, limits))
                    .collect::<Result<_, _>>()?;
            }
            "min_stage" if v.is_null() => {}
            "min_stage" => min_stage = Some(parse_stage(v)?),
            other => {
                return Err(err(
                    ErrorCode::UnknownField,
                    format!(
                        "unknown subscribe key {:?} (expected events, filters, min_stage)",
                        short(other)
                    ),
                ))
            }
        }
    }
    let mut sub = Subscription::from_items(channel, &items, specs, limits)?;
    if let Some(stage) = min_stage {
        sub.min_stage = super::check_gate(stage, limits)?;
    }
    with_rejected(sub, rejected)
}

/// A subscription whose valid names apply while the `rejected` ones are reported in the
/// ack (docs/protocol.md §4); when every name was rejected and no spec remains, the message
/// fails with the first rejection instead, and the previous subscription stays in force.
fn with_rejected(
    mut sub: Subscription,
    mut rejected: Vec<Rejected>,
) -> Result<Subscription, ClientError> {
    let nothing = sub.events == 0
        && !sub.native_transfer
        && sub.meta == MetaMask::EMPTY
        && sub.specs.is_empty();
    if nothing && !rejected.is_empty() {
        return Err(rejected.swap_remove(0).1);
    }
    sub.rejected = rejected;
    Ok(sub)
}

fn parse_stage(v: &Value) -> Result<CommitStage, ClientError> {
    v.as_str()
        .and_then(CommitStage::from_name)
        .filter(|s| s.rank().is_some())
        .ok_or_else(|| {
            err(
                ErrorCode::BadValue,
                "min_stage must be one of \"Proposed\", \"Voted\", \"Finalized\", \"Verified\"",
            )
        })
}

fn parse_spec(v: &Value, limits: &SubscriptionLimits) -> Result<FilterSpec, ClientError> {
    let obj = v.as_object().ok_or_else(|| {
        err(
            ErrorCode::BadValue,
            "a filter spec must be an object {event_name, field_filters}",
        )
    })?;
    let (mut target, mut fields) = (None, Vec::new());
    for (key, v) in obj.iter() {
        match key {
            "event_name" => {
                target = Some(match parse_item(v)? {
                    Item::Event(t) => SpecTarget::Event(t),
                    Item::NativeTransfer => SpecTarget::NativeTransfer,
                    Item::Meta(_) => {
                        return Err(err(
                            ErrorCode::BadValue,
                            "filter specs apply to events, not to meta items",
                        ))
                    }
                });
            }
            "field_filters" => {
                let arr = v
                    .as_array()
                    .ok_or_else(|| err(ErrorCode::BadValue, "field_filters must be an array"))?;
                if arr.len() > limits.max_fields_per_filter {
                    return Err(err(
                        ErrorCode::TooManyFilters,
                        format!(
                            "{} field filters in one spec (limit {})",
                            arr.len(),
                            limits.max_fields_per_filter
                        ),
                    ));
                }
                fields = arr
                    .iter()
                    .map(|f| parse_field(f, limits))
                    .collect::<Result<_, _>>()?;
            }
            other => {
                return Err(err(
                    ErrorCode::UnknownField,
                    format!(
                        "unknown filter spec key {:?} (expected event_name, field_filters)",
                        short(other)
                    ),
                ))
            }
        }
    }
    let target =
        target.ok_or_else(|| err(ErrorCode::BadValue, "a filter spec needs event_name"))?;
    for f in &fields {
        check_applicable(target, f)?;
    }
    Ok(FilterSpec { target, fields })
}

fn field_name(f: &FieldFilter) -> &'static str {
    match f {
        FieldFilter::Address(_) => "address",
        FieldFilter::Topics(_) => "topics",
        FieldFilter::Selector(_) => "selector",
        FieldFilter::TxnIndex(_) => "txn_index",
        FieldFilter::LogIndex(_) => "log_index",
    }
}

/// Refuses a field the target event never carries, so a spec cannot silently match nothing
/// (the existing gateway's field filters never matched outside `TxnLog`).
fn check_applicable(target: SpecTarget, f: &FieldFilter) -> Result<(), ClientError> {
    use EventType as T;
    let t = match target {
        SpecTarget::Event(t) => t,
        SpecTarget::NativeTransfer => T::TxnCallFrame,
    };
    let ok = match f {
        FieldFilter::Address(_) => matches!(
            t,
            T::TxnHeaderStart
                | T::TxnAccessListEntry
                | T::TxnAuthListEntry
                | T::TxnLog
                | T::TxnCallFrame
                | T::AccountAccess
                | T::StorageAccess
        ),
        FieldFilter::Topics(_) | FieldFilter::LogIndex(_) => t == T::TxnLog,
        FieldFilter::Selector(_) => matches!(t, T::TxnHeaderStart | T::TxnCallFrame),
        FieldFilter::TxnIndex(_) => {
            t.name().starts_with("Txn")
                || matches!(
                    t,
                    T::AccountAccessListHeader | T::AccountAccess | T::StorageAccess
                )
        }
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            ErrorCode::FieldNotApplicable,
            format!(
                "field {} does not apply to {}",
                field_name(f),
                target.name()
            ),
        ))
    }
}

fn parse_field(v: &Value, limits: &SubscriptionLimits) -> Result<FieldFilter, ClientError> {
    let obj = v.as_object().ok_or_else(|| {
        err(
            ErrorCode::BadValue,
            "a field filter must be an object {field, filter}",
        )
    })?;
    for (key, _) in obj.iter() {
        if key != "field" && key != "filter" {
            return Err(err(
                ErrorCode::UnknownField,
                format!(
                    "unknown field filter key {:?} (expected field, filter)",
                    short(key)
                ),
            ));
        }
    }
    let field = obj.get(&"field").and_then(|f| f.as_str()).ok_or_else(|| {
        err(
            ErrorCode::BadValue,
            "a field filter needs \"field\": string",
        )
    })?;
    let filter = obj
        .get(&"filter")
        .and_then(|f| f.as_object())
        .ok_or_else(|| {
            err(
                ErrorCode::BadValue,
                format!("field {field} needs \"filter\": object"),
            )
        })?;
    let values = || -> Result<&[Value], ClientError> {
        let arr = filter
            .get(&"values")
            .and_then(|v| v.as_array())
            .ok_or_else(|| {
                err(
                    ErrorCode::BadValue,
                    format!("{field} filter needs values: array"),
                )
            })?;
        if arr.len() > limits.max_values_per_filter {
            return Err(err(
                ErrorCode::TooManyValues,
                format!(
                    "{} values for {field} (limit {})",
                    arr.len(),
                    limits.max_values_per_filter
                ),
            ));
        }
        Ok(arr)
    };
    let only_keys = |allowed: &[&str]| -> Result<(), ClientError> {
        match filter.iter().find(|(k, _)| !allowed.contains(k)) {
            Some((k, _)) => Err(err(
                ErrorCode::UnknownField,
                format!("unknown key {:?} in the {field} filter", short(k)),
            )),
            None => Ok(()),
        }
    };
    match field {
        "address" => {
            only_keys(&["values"])?;
            let list = values()?
                .iter()
                .map(|v| hex_value::<20>(v, "address"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(FieldFilter::Address(sorted(list)))
        }
        "selector" => {
            only_keys(&["values"])?;
            let list = values()?
                .iter()
                .map(|v| hex_value::<4>(v, "selector"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(FieldFilter::Selector(sorted(list)))
        }
        "topics" => {
            only_keys(&["values"])?;
            let slots = values()?;
            if slots.len() > 4 {
                return Err(err(
                    ErrorCode::BadValue,
                    format!("{} topic positions (a log has at most 4)", slots.len()),
                ));
            }
            let slots = slots
                .iter()
                .map(|s| topic_slot(s, limits))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(FieldFilter::Topics(slots))
        }
        "txn_index" => {
            only_keys(&["min", "max"])?;
            Ok(FieldFilter::TxnIndex(index_range(filter, field)?))
        }
        "log_index" => {
            only_keys(&["min", "max"])?;
            Ok(FieldFilter::LogIndex(index_range(filter, field)?))
        }
        other => Err(err(
            ErrorCode::UnknownField,
            format!(
                "unknown field {:?} (expected address, topics, selector, txn_index, log_index)",
                short(other)
            ),
        )),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v
}

fn topic_slot(v: &Value, limits: &SubscriptionLimits) -> Result<TopicSlot, ClientError> {
    if v.is_null() {
        return Ok(TopicSlot::Any);
    }
    if let Some(arr) = v.as_array() {
        if arr.len() > limits.max_values_per_filter {
            return Err(err(
                ErrorCode::TooManyValues,
                format!(
                    "{} topics at one position (limit {})",
                    arr.len(),
                    limits.max_values_per_filter
                ),
            ));
        }
        if arr.is_empty() {
            return Err(err(
                ErrorCode::BadValue,
                "an empty topic list matches nothing; use null for any",
            ));
        }
        let list = arr
            .iter()
            .map(|t| hex_value::<32>(t, "topic"))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(TopicSlot::AnyOf(sorted(list)));
    }
    Ok(TopicSlot::AnyOf(vec![hex_value::<32>(v, "topic")?]))
}

fn index_range(filter: &sonic_rs::Object, field: &str) -> Result<IndexRange, ClientError> {
    let bound = |k: &str| -> Result<Option<u32>, ClientError> {
        match filter.get(&k) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    err(
                        ErrorCode::BadValue,
                        format!("{field}.{k} must be an integer in 0..=4294967295"),
                    )
                }),
        }
    };
    let range = IndexRange {
        min: bound("min")?,
        max: bound("max")?,
    };
    if let (Some(min), Some(max)) = (range.min, range.max) {
        if min > max {
            return Err(err(
                ErrorCode::BadValue,
                format!("{field}: min {min} is greater than max {max}"),
            ));
        }
    }
    Ok(range)
}

/// Parses a `0x`-prefixed (optional) hex string of exactly `N` bytes, any case.
fn hex_value<const N: usize>(v: &Value, what: &str) -> Result<[u8; N], ClientError> {
    let bad = || {
        err(
            ErrorCode::BadValue,
            format!("{what} must be a 0x-prefixed hex string of {N} bytes"),
        )
    };
    let s = v.as_str().ok_or_else(bad)?;
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
        .as_bytes();
    if digits.len() != 2 * N {
        return Err(bad());
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (Some(hi), Some(lo)) = (nibble(pair[0]), nibble(pair[1])) else {
            return Err(bad());
        };
        *byte = hi << 4 | lo;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_guard_counts_only_structural_brackets() {
        assert!(nesting_within(&format!("[\"{}\"]", "[".repeat(100)), 2));
        assert!(nesting_within(r#"["a\"[[[", {"b": []}]"#, 3));
        assert!(!nesting_within("[[[", 2));
    }

    #[test]
    fn hex_accepts_both_cases_and_an_optional_prefix() {
        let v: Value =
            sonic_rs::from_str(r#"["0xA9059cbb","a9059CBB","0xa9059cb","0xa9059cbg"]"#).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(
            hex_value::<4>(&arr[0], "s").unwrap(),
            [0xa9, 0x05, 0x9c, 0xbb]
        );
        assert_eq!(
            hex_value::<4>(&arr[1], "s").unwrap(),
            [0xa9, 0x05, 0x9c, 0xbb]
        );
        assert!(hex_value::<4>(&arr[2], "s").is_err());
        assert!(hex_value::<4>(&arr[3], "s").is_err());
    }
}
