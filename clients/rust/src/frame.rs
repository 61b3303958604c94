//! One server text frame → its envelope (`server_seqno`, type, exact body text).
//!
//! Every server frame is `{"server_seqno":N,"<Type>":body}` (docs/protocol.md §2). The body
//! and, for `Events`, every event object are kept as the exact text the server sent.

use serde_json::value::RawValue;

use crate::Error;

/// A parsed frame envelope borrowing the frame's text.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The message type (`Events`, `Hello`, `Gap`, …).
    pub kind: String,
    /// The frame's `server_seqno`.
    pub server_seqno: u64,
    /// The body, exactly as sent.
    pub body: &'a RawValue,
}

/// Parses the envelope. Errors: not JSON, not an object, no integer `server_seqno`, or not
/// exactly one other key.
pub fn parse(text: &str) -> Result<Frame<'_>, Error> {
    let snippet = || text.chars().take(120).collect::<String>();
    let map = parse_pairs(text)
        .map_err(|e| Error::Protocol(format!("frame is not a JSON object: {e}: {}", snippet())))?;
    let mut seqno = None;
    let mut rest = Vec::with_capacity(1);
    for (k, v) in map {
        if k == "server_seqno" {
            seqno = Some(serde_json::from_str::<u64>(v.get()).map_err(|_| {
                Error::Protocol(format!("server_seqno is not an integer: {}", snippet()))
            })?);
        } else {
            rest.push((k, v));
        }
    }
    let server_seqno = seqno.ok_or_else(|| {
        Error::Protocol(format!(
            "frame is not a ringgate envelope (no server_seqno): {}",
            snippet()
        ))
    })?;
    if rest.len() != 1 {
        return Err(Error::Protocol(format!(
            "frame must have exactly one message key besides server_seqno: {}",
            snippet()
        )));
    }
    let (kind, body) = rest.pop().expect("one key");
    Ok(Frame {
        kind,
        server_seqno,
        body,
    })
}

/// The object's members in order, values unparsed.
fn parse_pairs(text: &str) -> Result<Vec<(String, &RawValue)>, serde_json::Error> {
    use serde::de::{Deserializer, MapAccess, Visitor};
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(2);
            while let Some(k) = m.next_key::<String>()? {
                out.push((k, m.next_value::<&RawValue>()?));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let pairs = de.deserialize_map(Pairs)?;
    de.end()?;
    Ok(pairs)
}

/// The event objects of an `Events` body, each as its exact text.
pub fn events(body: &RawValue) -> Result<Vec<&RawValue>, Error> {
    serde_json::from_str(body.get())
        .map_err(|e| Error::Protocol(format!("Events body is not an array: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_exact_text() {
        let f = parse(r#"{"server_seqno":7,"Events":[{"a":1,  "b":[2]},{"c":"x"}]}"#).unwrap();
        assert_eq!((f.kind.as_str(), f.server_seqno), ("Events", 7));
        let evs = events(f.body).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].get(), r#"{"a":1,  "b":[2]}"#);
        let t = parse(r#"{"server_seqno":2,"TPS":250}"#).unwrap();
        assert_eq!((t.kind.as_str(), t.body.get()), ("TPS", "250"));
    }

    #[test]
    fn rejects_what_is_not_an_envelope() {
        for bad in [
            "",
            "<html>",
            "[1]",
            r#"{"TPS":1}"#,
            r#"{"server_seqno":"1","TPS":1}"#,
            r#"{"server_seqno":1}"#,
            r#"{"server_seqno":1,"TPS":1,"Gap":{}}"#,
            r#"{"server_seqno":1,"TPS":1} x"#,
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
