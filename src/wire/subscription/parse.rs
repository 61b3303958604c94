//! Client text → [`ClientMessage`]: the simple subscribe (a list of names), the advanced
//! subscribe (events + filter specs + min_stage + priority), and `hello`.
//!
//! Runs on shard cores per client message. The JSON is parsed once into a DOM (sonic-rs)
//! and walked by hand so every problem gets a precise [`ErrorCode`] and a message naming
//! the offending value. Unknown keys inside a subscribe are errors too, so typos surface.
//! One field filter of a spec is parsed in `field`.

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::model::lane::Lane;
use crate::model::stage::CommitStage;
use crate::wire::subscription::channel::{Channel, Item, MetaMask};
use crate::wire::subscription::{
    ClientError, ClientHello, ClientMessage, ErrorCode, FilterSpec, SpecTarget, Subscription,
    SubscriptionLimits,
};

mod field;
use field::{check_applicable, parse_field};

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
    let (mut items, mut specs, mut min_stage, mut priority) = (Vec::new(), Vec::new(), None, None);
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
            "priority" if v.is_null() => {}
            "priority" => {
                priority = Some(v.as_str().and_then(Lane::from_name).ok_or_else(|| {
                    err(
                        ErrorCode::BadValue,
                        "priority must be one of \"block\", \"txn\", \"detail\"",
                    )
                })?)
            }
            other => {
                return Err(err(
                    ErrorCode::UnknownField,
                    format!(
                    "unknown subscribe key {:?} (expected events, filters, min_stage, priority)",
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
    with_rejected(sub.with_priority(priority, limits), rejected)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_guard_counts_only_structural_brackets() {
        assert!(nesting_within(&format!("[\"{}\"]", "[".repeat(100)), 2));
        assert!(nesting_within(r#"["a\"[[[", {"b": []}]"#, 3));
        assert!(!nesting_within("[[[", 2));
    }
}
