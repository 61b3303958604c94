//! The chain state on the bus: the origin's REST chain bodies and connect-time snapshot
//! ([`ChainBodies`]), published to a side stream so an edge serves `/v1/tps`,
//! `/v1/contention`, `/v1/blocks/lifecycle`, `/v1/blocks/{n}/lifecycle`, the block range of
//! `/v1/status` and the snapshot a new session gets, exactly as the origin does.
//!
//! They are the tailer's state, not frames (no `server_seqno`), so they do not go into the
//! frame stream: the side stream `<stream>_CHAIN` keeps the last message per subject
//! `<stream>_CHAIN.<epoch>`, and an edge reads the last one, then each new one. The origin's
//! publisher sends the current bodies at most every [`CHAIN_EVERY`] when they changed, and
//! once after every (re)connect; an edge between two publications serves the older bodies,
//! as the origin does between two of its tailer's publications.
//!
//! Message body: one line of JSON (the REST bodies, the tracked blocks' bodies and the
//! block range), a newline, then the connect snapshot's frames as history records
//! ([`crate::history::record`]). Decoding never panics: a malformed message is an `Err`, and
//! the edge keeps the bodies it had.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bus::client::Connection;
use crate::bus::stream::{create_or_update, StreamSettings};
use crate::handoff::published::{ChainBodies, RestBody};
use crate::history::record::{self, Originals};
use crate::model::outbound::Outbound;

/// Most often the origin publishes changed chain bodies (its tailer republishes them a few
/// times per block).
pub const CHAIN_EVERY: Duration = Duration::from_millis(200);

/// The side stream's name for frame stream `stream`.
pub fn chain_stream(stream: &str) -> String {
    format!("{stream}_CHAIN")
}

/// The subject of `epoch`'s chain bodies.
pub fn chain_subject(stream: &str, epoch: u64) -> String {
    format!("{}.{epoch}", chain_stream(stream))
}

/// Creates the side stream, or brings an existing one to `s`'s limits: one message kept per
/// subject (per epoch), in memory of the same age limit as the frames.
pub fn ensure_chain_stream(c: &mut Connection, s: &StreamSettings, sid: u64) -> io::Result<()> {
    let name = chain_stream(&s.name);
    let config = json!({
        "name": name,
        "subjects": [format!("{name}.>")],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "max_msgs_per_subject": 1,
        "max_age": s.max_age.as_nanos().min(i64::MAX as u128) as i64,
        "num_replicas": s.replicas.max(1),
    });
    create_or_update(c, &name, &config, sid).map(drop)
}

fn rest(b: &RestBody) -> Value {
    json!([b.status, b.body])
}

fn rest_of(v: &Value) -> Option<RestBody> {
    Some(RestBody {
        status: u16::try_from(v.get(0)?.as_u64()?).ok()?,
        body: v.get(1)?.as_str()?.to_owned(),
    })
}

/// The message body for `bodies`.
pub fn encode(bodies: &ChainBodies) -> Vec<u8> {
    let head = json!({
        "tps": rest(&bodies.tps),
        "contention": rest(&bodies.contention),
        "lifecycle": rest(&bodies.lifecycle),
        "blocks": bodies.blocks.iter().map(|(n, b)| json!([n, b.status, b.body])).collect::<Vec<_>>(),
        "block_range": bodies.block_range,
    });
    let mut out = serde_json::to_vec(&head).unwrap_or_default();
    out.push(b'\n');
    for f in &bodies.connect {
        record::encode(&Outbound::Meta(Arc::clone(f)), &mut out);
    }
    out
}

/// The bodies a message carries.
pub fn decode(raw: &[u8]) -> Result<ChainBodies, String> {
    let bad = |what: &str| format!("chain bodies: {what}");
    let split = raw
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no newline"))?;
    let head: Value = serde_json::from_slice(&raw[..split]).map_err(|e| bad(&e.to_string()))?;
    let body = |key: &str| rest_of(&head[key]).ok_or_else(|| bad(key));
    let blocks = head["blocks"]
        .as_array()
        .ok_or_else(|| bad("blocks"))?
        .iter()
        .map(|b| {
            let n = b.get(0)?.as_u64()?;
            Some((n, rest_of(&json!([b.get(1)?, b.get(2)?]))?))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("blocks"))?;
    let block_range = match &head["block_range"] {
        Value::Null => None,
        r => Some((
            r[0].as_u64().ok_or_else(|| bad("block_range"))?,
            r[1].as_u64().ok_or_else(|| bad("block_range"))?,
        )),
    };
    let mut unresolved = Vec::new();
    let connect = record::decode_lenient(&raw[split + 1..], &mut Originals::new(), &mut unresolved)
        .map_err(|e| bad(&e.to_string()))?
        .into_iter()
        .map(|f| match f {
            Outbound::Meta(m) => Ok(m),
            _ => Err(bad("a connect frame that is not a meta frame")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ChainBodies {
        tps: body("tps")?,
        contention: body("contention")?,
        lifecycle: body("lifecycle")?,
        blocks,
        block_range,
        connect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outbound::{MetaFrame, MetaKind};
    use crate::model::stage::CommitStage;

    fn sample() -> ChainBodies {
        let ok = |s: &str| RestBody {
            status: 200,
            body: s.into(),
        };
        ChainBodies {
            tps: ok("{\"tps\":12}"),
            contention: RestBody::not_found("no contention data yet"),
            lifecycle: ok("[{\"block_number\":7}]"),
            blocks: vec![(7, ok("{\"block_number\":7}")), (8, ok("{\"n\":\"é\\n\"}"))],
            block_range: Some((7, 8)),
            connect: vec![Arc::new(MetaFrame {
                server_seqno: 0,
                kind: MetaKind::Lifecycle,
                stage: Some(CommitStage::Voted),
                frame: br#"{"server_seqno":0,"Lifecycle":{"to_stage":"Voted"}}"#
                    .as_slice()
                    .into(),
                old: None,
            })],
        }
    }

    #[test]
    fn chain_bodies_round_trip_through_a_message() {
        let b = sample();
        let back = decode(&encode(&b)).expect("decodes");
        assert_eq!(back.tps, b.tps);
        assert_eq!(back.contention, b.contention);
        assert_eq!(back.lifecycle, b.lifecycle);
        assert_eq!(back.blocks, b.blocks);
        assert_eq!(back.block_range, b.block_range);
        assert_eq!(back.connect.len(), 1);
        assert_eq!(back.connect[0].frame, b.connect[0].frame);
        assert_eq!(back.connect[0].stage, Some(CommitStage::Voted));
        let empty = ChainBodies::default();
        assert_eq!(decode(&encode(&empty)).expect("decodes").block_range, None);
    }

    #[test]
    fn malformed_messages_are_errors_never_panics() {
        let good = encode(&sample());
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        assert!(decode(b"").is_err());
        assert!(decode(b"{}\n").is_err());
        assert!(decode(b"not json\n").is_err());
        let mut bad_record = b"{\"tps\":[200,\"\"],\"contention\":[200,\"\"],\"lifecycle\":[200,\"\"],\"blocks\":[],\"block_range\":null}\n".to_vec();
        assert!(decode(&bad_record).is_ok());
        bad_record.push(0xff);
        assert!(decode(&bad_record).is_err());
    }
}
