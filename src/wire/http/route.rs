//! Routing: the request path and method to a typed [`Route`], and the WebSocket (and
//! Server-Sent Events) query parameters to a typed [`WsQuery`].
//!
//! Runs on shard cores, once per connection. Paths are the existing gateway's (so its
//! clients work unchanged) plus ringgate's own (`/v1/sse…`, `/rpc`, `/dashboard`); `/`
//! stays the old gateway's WebSocket path except for a browser asking for HTML without an
//! upgrade, which gets the dashboard. A wrong method is 405 with `Allow`, an unknown path
//! 404, and a bad query value 400 naming the parameter.

use crate::model::lane::Lane;
use crate::model::stage::CommitStage;
use crate::wire::http::{HttpError, Method, Request};
use crate::wire::sse;
use crate::wire::subscription::channel::{Channel, Item};
use crate::wire::subscription::{Subscription, SubscriptionLimits};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A WebSocket upgrade on a channel path, with its parsed query.
    Ws(Channel, WsQuery),
    /// A Server-Sent Events stream on a channel path (`/v1/sse…`), with its parsed query,
    /// `Last-Event-ID` folded in ([`WsQuery::parse_sse`]).
    Sse(Channel, WsQuery),
    Rest(RestRoute),
    /// A WebSocket upgrade for JSON-RPC 2.0 (`eth_subscribe`): `/rpc`, or any path on the
    /// `--rpc-listen` port. The query is ignored.
    Rpc,
}

/// The path of JSON-RPC over WebSocket on the main port.
pub const RPC_PATH: &str = "/rpc";

/// Routes a request on the `--rpc-listen` port: every `GET` path is JSON-RPC.
pub fn route_rpc_port(req: &Request) -> Result<Route, HttpError> {
    if req.method != Method::Get {
        return Err(HttpError::MethodNotAllowed { allow: "GET" });
    }
    Ok(Route::Rpc)
}

/// The REST endpoints (all GET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestRoute {
    /// `/health`: liveness (never exits the process, unlike the existing gateway).
    Health,
    /// `/v1/status`.
    Status,
    /// `/metrics`: Prometheus text.
    Metrics,
    /// `/v1/tps`.
    Tps,
    /// `/v1/contention`.
    Contention,
    /// `/v1/blocks/lifecycle`.
    BlocksLifecycle,
    /// `/v1/blocks/{n}/lifecycle`.
    BlockLifecycle(u64),
    /// `/dashboard`, and `/` asked for by a browser (see the module header): the live
    /// dashboard page.
    Dashboard,
}

/// The path of the live dashboard page.
pub const DASHBOARD_PATH: &str = "/dashboard";

/// Whether a request for `/` is a browser opening the gateway (it accepts `text/html` and
/// asks for no WebSocket upgrade) rather than a client of the old gateway's WebSocket path,
/// which keeps its upgrade (and a plain request without one its 426).
fn wants_dashboard(req: &Request) -> bool {
    let upgrade = req
        .headers
        .upgrade
        .as_deref()
        .is_some_and(|u| u.to_ascii_lowercase().contains("websocket"));
    let html = req
        .headers
        .accept
        .as_deref()
        .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"));
    req.path == "/" && html && !upgrade
}

/// Connect-time parameters of a WebSocket request. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsQuery {
    /// `resume_from=<u64>`: the last `server_seqno` the client saw.
    pub resume_from: Option<u64>,
    /// `epoch=<u64>` (decimal): the server epoch that `resume_from` belongs to. The epoch is
    /// a number chosen at server start (below 2^53, so JavaScript clients hold it exactly);
    /// a mismatch means the cursor is from another server life.
    pub epoch: Option<u64>,
    /// `from_block=<u64>`: replay from the first event of this block number.
    pub from_block: Option<u64>,
    /// `events=TxnLog,BlockStart,TPS`: the initial subscription (replaces the channel
    /// default), names as in a simple subscribe.
    pub events: Option<Vec<Item>>,
    /// `min_stage=Finalized`.
    pub min_stage: Option<CommitStage>,
    /// `priority=txn`: the lowest priority lane wanted (docs/protocol.md §7).
    pub priority: Option<Lane>,
    /// `extended=1` (or `true`): ringgate's meta shapes and no data heartbeat; without it a
    /// session gets the old gateway's shapes where they differ (docs/protocol.md §9).
    pub extended: bool,
}

const WS_PATHS: [(&str, Channel); 6] = [
    ("/v1/ws", Channel::All),
    ("/", Channel::All),
    ("/v1/ws/blocks", Channel::Blocks),
    ("/v1/ws/txs", Channel::Txs),
    ("/v1/ws/contention", Channel::Contention),
    ("/v1/ws/lifecycle", Channel::Lifecycle),
];

const SSE_PATHS: [(&str, Channel); 5] = [
    ("/v1/sse", Channel::All),
    ("/v1/sse/blocks", Channel::Blocks),
    ("/v1/sse/txs", Channel::Txs),
    ("/v1/sse/contention", Channel::Contention),
    ("/v1/sse/lifecycle", Channel::Lifecycle),
];

fn rest_path(path: &str) -> Option<Result<RestRoute, HttpError>> {
    let route = match path {
        "/health" => RestRoute::Health,
        "/v1/status" => RestRoute::Status,
        "/metrics" => RestRoute::Metrics,
        "/v1/tps" => RestRoute::Tps,
        "/v1/contention" => RestRoute::Contention,
        "/v1/blocks/lifecycle" => RestRoute::BlocksLifecycle,
        DASHBOARD_PATH => RestRoute::Dashboard,
        other => {
            let n = other
                .strip_prefix("/v1/blocks/")?
                .strip_suffix("/lifecycle")?;
            return Some(match n.parse::<u64>() {
                Ok(n) => Ok(RestRoute::BlockLifecycle(n)),
                Err(_) => Err(HttpError::BadQuery {
                    param: "block_number".into(),
                    message: format!("{n:?} is not a block number (u64)"),
                }),
            });
        }
    };
    Some(Ok(route))
}

/// Routes a parsed request. Only `GET` is served (and `HEAD`/`OPTIONS` are refused with 405
/// and `Allow: GET`): no endpoint has a body or side effects.
pub fn route(req: &Request) -> Result<Route, HttpError> {
    let found = if wants_dashboard(req) {
        Ok(Route::Rest(RestRoute::Dashboard))
    } else if let Some((_, channel)) = WS_PATHS.iter().find(|(p, _)| *p == req.path) {
        Ok(Route::Ws(*channel, WsQuery::parse(&req.query)?))
    } else if let Some((_, channel)) = SSE_PATHS.iter().find(|(p, _)| *p == req.path) {
        let last_event_id = req.headers.last_event_id.as_deref();
        Ok(Route::Sse(
            *channel,
            WsQuery::parse_sse(&req.query, last_event_id)?,
        ))
    } else if req.path == RPC_PATH {
        Ok(Route::Rpc)
    } else if let Some(rest) = rest_path(&req.path) {
        rest.map(Route::Rest)
    } else {
        return Err(HttpError::NotFound {
            path: req.path.clone(),
        });
    };
    if req.method != Method::Get {
        return Err(HttpError::MethodNotAllowed { allow: "GET" });
    }
    found
}

fn bad(param: &str, message: String) -> HttpError {
    HttpError::BadQuery {
        param: param.to_owned(),
        message,
    }
}

fn parse_u64(param: &str, value: &str) -> Result<u64, HttpError> {
    value.parse::<u64>().map_err(|_| {
        bad(
            param,
            format!("{value:?} is not an unsigned 64-bit integer"),
        )
    })
}

/// Percent-decodes a query component (`+` is a space, as in forms).
fn percent_decode(param: &str, raw: &str) -> Result<String, HttpError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad(param, "bad percent-encoding".into()))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad(param, "not UTF-8 after percent-decoding".into()))
}

fn set_once<T>(slot: &mut Option<T>, value: T, param: &str) -> Result<(), HttpError> {
    match slot.replace(value) {
        Some(_) => Err(bad(param, "given more than once".into())),
        None => Ok(()),
    }
}

impl WsQuery {
    /// The initial subscription on `channel`: `events` and `min_stage` from the query, the
    /// channel default otherwise. An item the channel does not carry is a 400 naming
    /// `events`, decided before the upgrade.
    pub fn subscription(
        &self,
        channel: Channel,
        limits: &SubscriptionLimits,
    ) -> Result<Subscription, HttpError> {
        Subscription::from_query(channel, self.events.as_deref(), self.min_stage, limits)
            .map(|s| s.with_priority(self.priority, limits))
            .map_err(|e| bad("events", format!("{}: {}", e.code.as_str(), e.message)))
    }

    /// Parses a raw query string. Unknown parameters are ignored (browsers and proxies add
    /// their own, such as cache busters); a known parameter with a bad value, or given
    /// twice, is an error.
    pub fn parse(query: &str) -> Result<WsQuery, HttpError> {
        let mut q = WsQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(key, raw)?;
            let value = value.trim();
            match key {
                "resume_from" => set_once(&mut q.resume_from, parse_u64(key, value)?, key)?,
                "epoch" => set_once(&mut q.epoch, parse_u64(key, value)?, key)?,
                "from_block" => set_once(&mut q.from_block, parse_u64(key, value)?, key)?,
                "events" => {
                    let items = value
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(|n| {
                            Item::from_name(n)
                                .ok_or_else(|| bad(key, format!("unknown event name {n:?}")))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    set_once(&mut q.events, items, key)?;
                }
                "min_stage" => {
                    let stage = CommitStage::from_name(value)
                        .filter(|s| s.rank().is_some())
                        .ok_or_else(|| {
                            bad(
                                key,
                                format!(
                                    "{value:?} is not one of Proposed, Voted, Finalized, Verified"
                                ),
                            )
                        })?;
                    set_once(&mut q.min_stage, stage, key)?;
                }
                "priority" => {
                    let lane = Lane::from_name(value).ok_or_else(|| {
                        bad(key, format!("{value:?} is not one of block, txn, detail"))
                    })?;
                    set_once(&mut q.priority, lane, key)?;
                }
                "extended" => {
                    q.extended = match value {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(bad(key, format!("{value:?} is not 1, true, 0 or false"))),
                    }
                }
                _ => {}
            }
        }
        if q.resume_from.is_some() && q.from_block.is_some() {
            return Err(bad(
                "from_block",
                "resume_from and from_block are mutually exclusive".into(),
            ));
        }
        Ok(q)
    }

    /// Parses the query of a Server-Sent Events request: the WebSocket parameters, then the
    /// client's last event id, from the `Last-Event-ID` header (what an `EventSource` sends
    /// when it reconnects) or else the `last_event_id` parameter (an `EventSource` cannot set
    /// headers). The id resumes exactly like `resume_from`: it replaces `resume_from` and
    /// `from_block` (an `EventSource`'s URL is fixed at construction, so its reconnects must
    /// resume from where the stream got to, not from where it started) and, when it carries
    /// one (`<epoch>:<seqno>`, as the server writes ids), `epoch`. A malformed id is a 400
    /// naming `Last-Event-ID` or `last_event_id`.
    pub fn parse_sse(query: &str, last_event_id: Option<&str>) -> Result<WsQuery, HttpError> {
        let mut q = WsQuery::parse(query)?;
        let mut in_query = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            if key == "last_event_id" {
                set_once(&mut in_query, percent_decode(key, raw)?, key)?;
            }
        }
        let header = match last_event_id {
            Some(v) => sse::parse_event_id(v).map_err(|m| bad("Last-Event-ID", m))?,
            None => None,
        };
        let id = match (header, in_query) {
            (Some(id), _) => Some(id),
            (None, Some(v)) => sse::parse_event_id(&v).map_err(|m| bad("last_event_id", m))?,
            (None, None) => None,
        };
        if let Some(id) = id {
            q.resume_from = Some(id.seqno);
            q.from_block = None;
            if id.epoch.is_some() {
                q.epoch = id.epoch;
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kind::EventType;
    use crate::model::outbound::MetaKind;
    use crate::wire::http::{parse_request, Parsed, RequestLimits};

    fn req(method: &str, target: &str) -> Request {
        req_with(method, target, "")
    }

    fn req_with(method: &str, target: &str, headers: &str) -> Request {
        let raw = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        match parse_request(raw.as_bytes(), &RequestLimits::default()) {
            Ok(Parsed::Complete(r)) => *r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn websocket_paths_map_to_channels() {
        for (path, ch) in WS_PATHS {
            assert_eq!(
                route(&req("GET", path)),
                Ok(Route::Ws(ch, WsQuery::default()))
            );
        }
    }

    #[test]
    fn sse_paths_map_to_channels() {
        for (path, ch) in SSE_PATHS {
            assert_eq!(
                route(&req("GET", path)),
                Ok(Route::Sse(ch, WsQuery::default()))
            );
        }
        let e = route(&req("POST", "/v1/sse")).unwrap_err();
        assert_eq!(e.status().code(), 405);
    }

    #[test]
    fn the_last_event_id_resumes_header_first_and_replaces_the_urls_starting_point() {
        let q = WsQuery::parse_sse("events=TxnLog&last_event_id=7%3A40", None).unwrap();
        assert_eq!((q.epoch, q.resume_from), (Some(7), Some(40)));
        assert!(q.events.is_some());
        // An EventSource built with from_block (or resume_from) and an epoch reconnects with
        // the header: the header's position wins, and its epoch.
        let q =
            WsQuery::parse_sse("from_block=9&epoch=1&last_event_id=7:40", Some("8:55")).unwrap();
        assert_eq!(
            (q.epoch, q.resume_from, q.from_block),
            (Some(8), Some(55), None)
        );
        // A bare seqno keeps the query's epoch; an empty header is no id.
        let q = WsQuery::parse_sse("epoch=3", Some("12")).unwrap();
        assert_eq!((q.epoch, q.resume_from), (Some(3), Some(12)));
        let q = WsQuery::parse_sse("resume_from=5", Some("")).unwrap();
        assert_eq!(q.resume_from, Some(5));
        for (query, header, param) in [
            ("", Some("abc"), "Last-Event-ID"),
            ("last_event_id=1:x", None, "last_event_id"),
            ("last_event_id=1&last_event_id=2", None, "last_event_id"),
            ("min_stage=Nope", Some("1"), "min_stage"),
        ] {
            match WsQuery::parse_sse(query, header) {
                Err(HttpError::BadQuery { param: p, .. }) => assert_eq!(p, param, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn rest_paths_map_to_routes() {
        let cases = [
            ("/health", RestRoute::Health),
            ("/v1/status", RestRoute::Status),
            ("/metrics", RestRoute::Metrics),
            ("/v1/tps", RestRoute::Tps),
            ("/v1/contention", RestRoute::Contention),
            ("/v1/blocks/lifecycle", RestRoute::BlocksLifecycle),
            ("/dashboard", RestRoute::Dashboard),
            (
                "/v1/blocks/15000001/lifecycle",
                RestRoute::BlockLifecycle(15_000_001),
            ),
        ];
        for (path, r) in cases {
            assert_eq!(route(&req("GET", path)), Ok(Route::Rest(r)), "{path}");
        }
    }

    #[test]
    fn a_browser_opening_the_root_gets_the_dashboard_and_everyone_else_the_websocket_path() {
        let html = "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n";
        let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
        let dashboard = Ok(Route::Rest(RestRoute::Dashboard));
        assert_eq!(route(&req_with("GET", "/", html)), dashboard);
        assert_eq!(
            route(&req_with("GET", "/?utm=x", "ACCEPT: Text/HTML\r\n")),
            dashboard
        );
        assert_eq!(route(&req("GET", "/dashboard")), dashboard);
        let ws = Ok(Route::Ws(Channel::All, WsQuery::default()));
        assert_eq!(route(&req("GET", "/")), ws);
        assert_eq!(route(&req_with("GET", "/", "Accept: */*\r\n")), ws);
        let both = format!("{html}{upgrade}");
        assert_eq!(route(&req_with("GET", "/", &both)), ws);
        // Only the root doubles as the page: the other WebSocket paths stay WebSocket paths.
        let r = route(&req_with("GET", "/v1/ws", html)).unwrap();
        assert!(matches!(r, Route::Ws(Channel::All, _)), "{r:?}");
        let e = route(&req_with("POST", "/", html)).unwrap_err();
        assert_eq!(e.status().code(), 405);
    }

    #[test]
    fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
        let e = route(&req("GET", "/v2/ws")).unwrap_err();
        assert_eq!(e.status().code(), 404);
        let e = route(&req("POST", "/v1/tps")).unwrap_err();
        assert_eq!(e.status().code(), 405);
        let encoded = String::from_utf8(e.response().encode(None)).unwrap();
        assert!(encoded.contains("\r\nAllow: GET\r\n"), "{encoded}");
        assert_eq!(
            route(&req("PUT", "/nope")).unwrap_err().status().code(),
            404
        );
        let e = route(&req("GET", "/v1/blocks/abc/lifecycle")).unwrap_err();
        assert_eq!(e.status().code(), 400);
    }

    #[test]
    fn query_parameters_parse() {
        let r = route(&req(
            "GET",
            "/v1/ws/txs?resume_from=42&epoch=1700000000000&events=TxnLog%2CBlockStart,TPS&min_stage=Finalized&utm=x",
        ))
        .unwrap();
        let Route::Ws(Channel::Txs, q) = r else {
            panic!("{r:?}")
        };
        assert_eq!(q.resume_from, Some(42));
        assert_eq!(q.epoch, Some(1_700_000_000_000));
        assert_eq!(
            q.events,
            Some(vec![
                Item::Event(EventType::TxnLog),
                Item::Event(EventType::BlockStart),
                Item::Meta(MetaKind::Tps)
            ])
        );
        assert_eq!(q.min_stage, Some(CommitStage::Finalized));
        assert_eq!(q.priority, None);
        let limits = SubscriptionLimits::default();
        let sub = q.subscription(Channel::Txs, &limits);
        assert_eq!(
            sub.unwrap_err().status().code(),
            400,
            "TPS is not carried by the txs channel"
        );
        let q = WsQuery::parse("events=TxnLog&min_stage=Voted").unwrap();
        let sub = q.subscription(Channel::Txs, &limits).unwrap();
        assert_eq!(sub.events, EventType::TxnLog.bit());
        assert_eq!(sub.min_stage, CommitStage::Voted);
        let q = WsQuery::parse("from_block=15000001").unwrap();
        assert_eq!(q.from_block, Some(15_000_001));
        let q = WsQuery::parse("events=TxnLog,StorageAccess&priority=txn").unwrap();
        let sub = q.subscription(Channel::All, &limits).unwrap();
        assert_eq!(
            sub.events,
            EventType::TxnLog.bit(),
            "StorageAccess is below txn"
        );
        assert_eq!(sub.priority, Some(Lane::Txn));
    }

    #[test]
    fn bad_query_values_are_400_naming_the_parameter() {
        for (query, param) in [
            ("resume_from=-1", "resume_from"),
            ("resume_from=1&resume_from=2", "resume_from"),
            ("epoch=abc", "epoch"),
            ("from_block=1e9", "from_block"),
            ("events=TxnLog,Bogus", "events"),
            ("min_stage=Rejected", "min_stage"),
            ("min_stage=finalized", "min_stage"),
            ("resume_from=1&from_block=2", "from_block"),
            ("events=%zz", "events"),
            ("priority=Block", "priority"),
            ("priority=block&priority=txn", "priority"),
        ] {
            let e = WsQuery::parse(query).unwrap_err();
            assert_eq!(e.status().code(), 400);
            match e {
                HttpError::BadQuery { param: p, .. } => assert_eq!(p, param, "{query}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
