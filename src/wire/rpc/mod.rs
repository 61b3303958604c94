//! JSON-RPC 2.0 over WebSocket, sans-IO: the `eth_subscribe` family as Monad's RPC server
//! speaks it (requests → typed [`Call`]s, responses, errors, notification envelopes).
//!
//! Runs on shard cores, once per client request; notification envelopes once per delivery
//! (the result object is never re-serialized: the writer splices the subscription id and,
//! for the `monad*` kinds, `blockId`/`commitState` around pre-encoded bytes).
//!
//! Methods: `eth_subscribe` (`newHeads`, `logs`, `monadNewHeads`, `monadLogs`),
//! `eth_unsubscribe`, `eth_chainId`, `net_version`, `eth_blockNumber`, `web3_clientVersion`.
//! Errors as on Monad's server: a frame that is not one request object (bad JSON, a batch,
//! no `"jsonrpc":"2.0"`) → `-32602 Invalid params` with `id: null`; bad params, unknown kind
//! → `-32602`; another method → `-32601 Method not found`; the per-connection subscription
//! limit → `-32603`. The request `id` (number, string or null) is echoed as sent.
//!
//! - [`filter`]: the log filter (parse and match).

pub mod filter;

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::model::stage::CommitStage;
use crate::wire::json::{push_hex_digits, write_str};
use crate::wire::rpc::filter::{parse_filter, FilterParams, LogFilter};
use crate::wire::subscription::parse::nesting_within;

/// Deepest JSON nesting accepted (a `logs` subscribe with OR topics needs 5).
const MAX_DEPTH: usize = 16;

/// The four subscription kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubKind {
    NewHeads,
    Logs,
    MonadNewHeads,
    MonadLogs,
}

impl SubKind {
    pub fn from_name(name: &str) -> Option<SubKind> {
        Some(match name {
            "newHeads" => SubKind::NewHeads,
            "logs" => SubKind::Logs,
            "monadNewHeads" => SubKind::MonadNewHeads,
            "monadLogs" => SubKind::MonadLogs,
            _ => return None,
        })
    }

    /// `monadNewHeads` / `monadLogs`: every commit state, `blockId` and `commitState` first.
    pub fn is_monad(self) -> bool {
        matches!(self, SubKind::MonadNewHeads | SubKind::MonadLogs)
    }

    pub fn is_logs(self) -> bool {
        matches!(self, SubKind::Logs | SubKind::MonadLogs)
    }
}

/// A parsed `eth_subscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub kind: SubKind,
    /// Used by the log kinds; ignored by the head kinds (as Monad's server does).
    pub filter: LogFilter,
    /// Extension (`{"commitState":"Finalized"}` in the params object): deliver at this one
    /// state only, instead of the kind's default (plain kinds: the server's heads stage;
    /// `monad*`: every state).
    pub only_state: Option<CommitStage>,
}

/// A request the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Subscribe(Subscribe),
    /// The id as a number: ids are compared numerically (some clients re-encode them
    /// without leading zeros).
    Unsubscribe(u128),
    ChainId,
    NetVersion,
    BlockNumber,
    ClientVersion,
    /// `eth_getBlockByNumber(block, false)` for a block the shard still holds (viem's
    /// `watchBlocks` fetches each announced block this way).
    GetBlockByNumber(BlockRef),
}

/// A block named by number or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockRef {
    Number(u64),
    /// `latest`, `pending`: the newest block at the heads stage.
    Latest,
    /// `safe`: the newest voted block.
    Safe,
    Finalized,
    Earliest,
}

impl BlockRef {
    /// Parses a block number (hex quantity) or tag.
    pub fn parse(s: &str) -> Option<BlockRef> {
        Some(match s {
            "latest" | "pending" => BlockRef::Latest,
            "safe" => BlockRef::Safe,
            "finalized" => BlockRef::Finalized,
            "earliest" => BlockRef::Earliest,
            _ => BlockRef::Number(filter::parse_quantity(s)?),
        })
    }
}

/// A JSON-RPC error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// `-32602 Invalid params`, with what was wrong as `data` (`None` for a malformed frame).
    InvalidParams(Option<String>),
    /// `-32601 Method not found`.
    MethodNotFound,
    /// `-32603`: the connection already has the most subscriptions allowed.
    SubscriptionLimit,
}

impl RpcError {
    pub fn code(&self) -> i32 {
        match self {
            RpcError::InvalidParams(_) => -32602,
            RpcError::MethodNotFound => -32601,
            RpcError::SubscriptionLimit => -32603,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            RpcError::InvalidParams(_) => "Invalid params",
            RpcError::MethodNotFound => "Method not found",
            RpcError::SubscriptionLimit => "WebSocket subscription limit reached",
        }
    }
}

/// One client frame, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request id as sent (`1`, `"a"`, `null`), to echo.
    pub id: String,
    pub call: Result<Call, RpcError>,
}

fn invalid(data: impl Into<String>) -> RpcError {
    RpcError::InvalidParams(Some(data.into()))
}

/// Parses one text frame. A frame that is not a single JSON-RPC 2.0 request object is
/// answered with `id: null`.
pub fn parse_request(text: &str) -> Request {
    let malformed = || Request {
        id: "null".into(),
        call: Err(RpcError::InvalidParams(None)),
    };
    if !nesting_within(text, MAX_DEPTH) {
        return malformed();
    }
    let Ok(root) = sonic_rs::from_str::<Value>(text) else {
        return malformed();
    };
    let Some(obj) = root.as_object() else {
        return malformed();
    };
    let id = match obj.get(&"id") {
        None => "null".to_owned(),
        Some(v) if v.is_null() || v.is_str() || v.is_i64() || v.is_u64() => {
            sonic_rs::to_string(v).unwrap_or_else(|_| "null".into())
        }
        Some(_) => return malformed(),
    };
    if obj.get(&"jsonrpc").and_then(|v| v.as_str()) != Some("2.0") {
        return Request {
            id,
            call: Err(RpcError::InvalidParams(None)),
        };
    }
    let Some(method) = obj.get(&"method").and_then(|v| v.as_str()) else {
        return Request {
            id,
            call: Err(RpcError::InvalidParams(None)),
        };
    };
    let params = obj.get(&"params");
    let call = match method {
        "eth_subscribe" => subscribe(params).map(Call::Subscribe),
        "eth_unsubscribe" => unsubscribe(params).map(Call::Unsubscribe),
        "eth_chainId" => Ok(Call::ChainId),
        "net_version" => Ok(Call::NetVersion),
        "eth_blockNumber" => Ok(Call::BlockNumber),
        "web3_clientVersion" => Ok(Call::ClientVersion),
        "eth_getBlockByNumber" => block_by_number(params).map(Call::GetBlockByNumber),
        _ => Err(RpcError::MethodNotFound),
    };
    Request { id, call }
}

fn params_array(params: Option<&Value>) -> Result<Vec<&Value>, RpcError> {
    match params {
        None => Ok(Vec::new()),
        Some(p) if p.is_null() => Ok(Vec::new()),
        Some(p) => p
            .as_array()
            .map(|a| a.iter().collect())
            .ok_or_else(|| invalid("params must be an array")),
    }
}

fn subscribe(params: Option<&Value>) -> Result<Subscribe, RpcError> {
    let params = params_array(params)?;
    if params.is_empty() || params.len() > 2 {
        return Err(invalid("expected [kind] or [kind, params]"));
    }
    let name = params[0].as_str().unwrap_or("");
    let kind = SubKind::from_name(name).ok_or_else(|| {
        invalid(format!(
            "unknown subscription {name:?} (newHeads, logs, monadNewHeads, monadLogs)"
        ))
    })?;
    let p = match params.get(1) {
        None => FilterParams::default(),
        Some(v) if v.is_null() => FilterParams::default(),
        Some(v) if v.is_object() => {
            if v.get("transactionHashes").is_some() {
                return Err(invalid("transactionHashes params are not supported"));
            }
            parse_filter(v).map_err(|e| invalid(e.0))?
        }
        Some(_) => return Err(invalid("the second parameter must be a filter object")),
    };
    Ok(Subscribe {
        kind,
        filter: p.filter,
        only_state: p.only_state,
    })
}

fn block_by_number(params: Option<&Value>) -> Result<BlockRef, RpcError> {
    let params = params_array(params)?;
    let [block, full] = params.as_slice() else {
        return Err(invalid("expected [block, fullTransactions]"));
    };
    let block = block
        .as_str()
        .and_then(BlockRef::parse)
        .ok_or_else(|| invalid("block: a hex number or a tag"))?;
    match full.as_bool() {
        Some(false) => Ok(block),
        Some(true) => Err(invalid(
            "full transaction objects are not served here: ask with false, or ask the node",
        )),
        None => Err(invalid("fullTransactions: a boolean")),
    }
}

/// Parses a subscription id: `0x` + 1 to 32 hex digits (leading zeros optional).
pub fn parse_sub_id(s: &str) -> Option<u128> {
    let digits = s.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    u128::from_str_radix(digits, 16).ok()
}

fn unsubscribe(params: Option<&Value>) -> Result<u128, RpcError> {
    let params = params_array(params)?;
    match params.as_slice() {
        [id] => id
            .as_str()
            .and_then(parse_sub_id)
            .ok_or_else(|| invalid("expected a subscription id (0x + hex)")),
        _ => Err(invalid("expected [subscription id]")),
    }
}

/// Appends `"0x"` + 32 hex digits (quoted): the subscription id as the server writes it.
pub fn push_sub_id(out: &mut Vec<u8>, id: u128) {
    out.extend_from_slice(b"\"0x");
    push_hex_digits(out, &id.to_be_bytes());
    out.push(b'"');
}

/// Appends `{"jsonrpc":"2.0","result":<result>,"id":<id>}`; `result` is JSON text.
pub fn write_result(out: &mut Vec<u8>, id: &str, result: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"result\":");
    result(out);
    out.extend_from_slice(b",\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.push(b'}');
}

/// Appends `{"jsonrpc":"2.0","error":{"code":C,"message":M[,"data":D]},"id":<id>}`.
pub fn write_error(out: &mut Vec<u8>, id: &str, e: &RpcError) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":");
    out.extend_from_slice(e.code().to_string().as_bytes());
    out.extend_from_slice(b",\"message\":");
    write_str(out, e.message());
    if let RpcError::InvalidParams(Some(data)) = e {
        out.extend_from_slice(b",\"data\":");
        write_str(out, data);
    }
    out.extend_from_slice(b"},\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.push(b'}');
}

/// Start of every notification, up to the subscription id.
pub const NOTE_HEAD: &[u8] =
    b"{\"jsonrpc\":\"2.0\",\"method\":\"eth_subscription\",\"params\":{\"subscription\":";
/// Between the subscription id and the result object.
pub const NOTE_RESULT: &[u8] = b",\"result\":";
/// After the result object.
pub const NOTE_TAIL: &[u8] = b"}}";
/// Length of a quoted subscription id.
pub const SUB_ID_LEN: usize = 2 + 2 + 32;

/// The `monad*` prefix that replaces the result object's opening `{`:
/// `{"blockId":"0x…","commitState":"<state>",`.
pub fn write_monad_prefix(out: &mut Vec<u8>, block_id: &[u8; 32], state: CommitStage) {
    out.extend_from_slice(b"{\"blockId\":\"0x");
    push_hex_digits(out, block_id);
    out.extend_from_slice(b"\",\"commitState\":\"");
    out.extend_from_slice(state.name().as_bytes());
    out.extend_from_slice(b"\",");
}

/// Length of [`write_monad_prefix`]'s output for `state`.
pub fn monad_prefix_len(state: CommitStage) -> usize {
    b"{\"blockId\":\"0x".len() + 64 + b"\",\"commitState\":\"".len() + state.name().len() + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_code(text: &str) -> Option<i32> {
        parse_request(text).call.err().map(|e| e.code())
    }

    #[test]
    fn ids_are_echoed_as_sent_and_malformed_frames_get_id_null() {
        let r = parse_request(r#"{"jsonrpc":"2.0","id":"x1","method":"eth_chainId"}"#);
        assert_eq!((r.id.as_str(), r.call), ("\"x1\"", Ok(Call::ChainId)));
        let r = parse_request(r#"{"jsonrpc":"2.0","id":null,"method":"net_version","params":[]}"#);
        assert_eq!((r.id.as_str(), r.call), ("null", Ok(Call::NetVersion)));
        for text in [
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}]",
            "{",
            "7",
        ] {
            let r = parse_request(text);
            assert_eq!(r.id, "null", "{text}");
            assert_eq!(r.call, Err(RpcError::InvalidParams(None)), "{text}");
        }
    }

    #[test]
    fn error_codes_are_monads() {
        assert_eq!(
            err_code(r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}"#),
            Some(-32601)
        );
        for p in [
            r#"["newPendingTransactions"]"#,
            r#"["syncing"]"#,
            r#"["logs",true]"#,
            r#"["logs",{"transactionHashes":[]}]"#,
            r#"["logs",{"nope":1}]"#,
            r#"[]"#,
        ] {
            let text =
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":{p}}}"#);
            assert_eq!(err_code(&text), Some(-32602), "{p}");
        }
        assert_eq!(RpcError::SubscriptionLimit.code(), -32603);
    }

    #[test]
    fn unsubscribe_ids_are_numbers_with_or_without_leading_zeros() {
        let a = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"eth_unsubscribe","params":["0x{:032x}"]}}"#,
            5u128
        );
        let b = r#"{"jsonrpc":"2.0","id":1,"method":"eth_unsubscribe","params":["0x5"]}"#;
        assert_eq!(parse_request(&a).call, Ok(Call::Unsubscribe(5)));
        assert_eq!(parse_request(b).call, Ok(Call::Unsubscribe(5)));
        let bad = r#"{"jsonrpc":"2.0","id":1,"method":"eth_unsubscribe","params":["zz"]}"#;
        assert_eq!(err_code(bad), Some(-32602));
    }

    #[test]
    fn responses_and_the_monad_prefix_have_their_exact_shapes() {
        let mut out = Vec::new();
        write_result(&mut out, "1", |o| push_sub_id(o, 0xab));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            format!(r#"{{"jsonrpc":"2.0","result":"0x{:032x}","id":1}}"#, 0xab)
        );
        out.clear();
        write_error(&mut out, "null", &RpcError::InvalidParams(None));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params"},"id":null}"#
        );
        for s in CommitStage::ALL {
            out.clear();
            write_monad_prefix(&mut out, &[0; 32], s);
            assert_eq!(out.len(), monad_prefix_len(s));
        }
    }
}
