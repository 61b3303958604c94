//! One field filter of a filter spec (`{"field":…, "values"|"min"/"max"|"topics":…}`) →
//! [`FieldFilter`], and whether it applies to the spec's target: hex values of the exact
//! width, index ranges, topic slots with wildcards, each problem a precise [`ClientError`].

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::{err, short};
use crate::model::kind::EventType;
use crate::wire::subscription::{
    ClientError, ErrorCode, FieldFilter, IndexRange, SpecTarget, SubscriptionLimits, TopicSlot,
};

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
pub(super) fn check_applicable(target: SpecTarget, f: &FieldFilter) -> Result<(), ClientError> {
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

pub(super) fn parse_field(
    v: &Value,
    limits: &SubscriptionLimits,
) -> Result<FieldFilter, ClientError> {
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
