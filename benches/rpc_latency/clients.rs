//! The subscribers of the JSON-RPC benchmark, each recording when it was handed what:
//! - [`native_block_ends`]: ringgate's own Rust client (`ringgate-client`) on the native
//!   protocol, subscribed to `BlockEnd` only: each block's ring timestamp (`timestamp_ns`, the
//!   ring descriptor's, copied unchanged by the gateway) and the native receipt time;
//! - [`JsonRpcSubscribers`]: a plain tokio-tungstenite JSON-RPC client (one connection per
//!   subscriber, `eth_subscribe` by hand, `serde_json` for each notification);
//! - [`AlloySubscribers`]: alloy's WebSocket provider, in its own process
//!   (tests/rpc-clients/alloy `latency`, a crate of its own so this crate never compiles
//!   alloy), one provider per subscriber.
//!
//! Runs on the harness's tokio runtime (the alloy process on its own thread). Every wait is
//! bounded by the caller's deadline or a timeout. All times are CLOCK_REALTIME ns, the clock
//! the ring writer stamps events with, so a receipt minus a ring timestamp is a latency.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::process::{ChildGuard, ProcessError};

/// A notification kind of the latency rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `newHeads`.
    Head,
    /// `logs`.
    Log,
}

/// One notification as a library handed it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub kind: Kind,
    pub block_number: u64,
    pub received_ns: u64,
}

/// One `BlockEnd` of the native stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEnd {
    pub block_number: u64,
    /// The ring's timestamp of the event.
    pub ring_ns: u64,
    pub received_ns: u64,
}

/// What a subscriber could not do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("native client: {0}")]
    Native(#[from] ringgate_client::Error),
    #[error("JSON-RPC client: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("JSON-RPC client: {0}")]
    Protocol(String),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads `BlockEnd` events from the native protocol until `deadline`.
pub async fn native_block_ends(
    addr: SocketAddr,
    deadline: Instant,
) -> Result<Vec<BlockEnd>, ClientError> {
    let opts = ringgate_client::Options::default()
        .events(["BlockEnd"])
        .reconnect(false);
    let mut client = ringgate_client::connect(&format!("ws://{addr}"), opts).await?;
    let mut out = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, client.next()).await {
        if let ringgate_client::Item::Event(ev) = item? {
            if let Some(block_number) = ev.block_number {
                out.push(BlockEnd {
                    block_number,
                    ring_ns: ev.timestamp_ns,
                    received_ns: ev.received_ns,
                });
            }
        }
    }
    client.close().await;
    Ok(out)
}

/// One JSON-RPC connection's subscriptions: `eth_subscribe` params, e.g. `["newHeads"]`.
pub type Subscriptions = Vec<(Kind, serde_json::Value)>;

/// JSON-RPC connections, each subscribed as asked.
#[derive(Debug)]
pub struct JsonRpcSubscribers(Vec<JsonRpcConn>);

impl JsonRpcSubscribers {
    /// Opens one connection per entry of `conns` to `/rpc` (at most 64 connects in flight)
    /// and subscribes each as asked; returns once all are subscribed.
    pub async fn open(
        addr: SocketAddr,
        conns: Vec<Subscriptions>,
    ) -> Result<JsonRpcSubscribers, ClientError> {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
        let mut opening = Vec::new();
        for subs in conns {
            let gate = gate.clone();
            opening.push(tokio::spawn(async move {
                let _permit = gate.acquire().await;
                JsonRpcConn::open(addr, &subs).await
            }));
        }
        let mut open = Vec::new();
        for o in opening {
            open.push(
                o.await
                    .map_err(|e| ClientError::Protocol(format!("connect task: {e}")))??,
            );
        }
        Ok(JsonRpcSubscribers(open))
    }

    /// Records every notification of every connection until `deadline`, then closes them.
    pub async fn read_until(self, deadline: Instant) -> Result<Vec<Received>, ClientError> {
        let reading: Vec<_> = self
            .0
            .into_iter()
            .map(|c| tokio::spawn(c.read_until(deadline)))
            .collect();
        let mut out = Vec::new();
        for r in reading {
            out.extend(
                r.await
                    .map_err(|e| ClientError::Protocol(format!("reader task: {e}")))??,
            );
        }
        Ok(out)
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

#[derive(Debug)]
struct JsonRpcConn {
    ws: Ws,
    /// Subscription id → kind.
    ids: HashMap<String, Kind>,
}

impl JsonRpcConn {
    async fn open(addr: SocketAddr, subs: &Subscriptions) -> Result<JsonRpcConn, ClientError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut ws, _) =
            tokio_tungstenite::client_async(format!("ws://{addr}/rpc"), stream).await?;
        let mut ids = HashMap::new();
        for (i, (kind, params)) in subs.iter().enumerate() {
            let req = serde_json::json!({"jsonrpc":"2.0","id":i,"method":"eth_subscribe","params":params});
            ws.send(Message::text(req.to_string())).await?;
            let reply = next_json(&mut ws, Instant::now() + Duration::from_secs(30)).await?;
            match reply.get("result").and_then(|r| r.as_str()) {
                Some(id) => ids.insert(id.to_string(), *kind),
                None => return Err(ClientError::Protocol(format!("eth_subscribe: {reply}"))),
            };
        }
        Ok(JsonRpcConn { ws, ids })
    }

    async fn read_until(mut self, deadline: Instant) -> Result<Vec<Received>, ClientError> {
        let mut out = Vec::new();
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) | Ok(None) => break,
                Ok(Some(m)) => m?,
            };
            let received_ns = realtime_ns();
            let Message::Text(text) = msg else { continue };
            let v: serde_json::Value = serde_json::from_str(text.as_str())
                .map_err(|e| ClientError::Protocol(format!("bad JSON: {e}")))?;
            let params = &v["params"];
            let Some(&kind) = params["subscription"]
                .as_str()
                .and_then(|s| self.ids.get(s))
            else {
                continue;
            };
            let key = match kind {
                Kind::Head => "number",
                Kind::Log => "blockNumber",
            };
            let block_number = params["result"][key]
                .as_str()
                .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
                .ok_or_else(|| ClientError::Protocol(format!("no {key} in {v}")))?;
            out.push(Received {
                kind,
                block_number,
                received_ns,
            });
        }
        let _ = self.ws.close(None).await;
        Ok(out)
    }
}

async fn next_json(ws: &mut Ws, deadline: Instant) -> Result<serde_json::Value, ClientError> {
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| ClientError::Protocol("no reply".into()))?
            .ok_or_else(|| ClientError::Protocol("closed".into()))??;
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str())
                .map_err(|e| ClientError::Protocol(format!("bad JSON: {e}")));
        }
    }
}

/// Logs of one complete block, read through one unfiltered `logs` subscription: each log's
/// emitting address, in order (so the caller can pick filters that match). Waits for the
/// third distinct block number and keeps the second (the first may have started mid-block).
pub async fn one_block_of_log_addresses(addr: SocketAddr) -> Result<Vec<String>, ClientError> {
    let subs = vec![(Kind::Log, serde_json::json!(["logs"]))];
    let mut c = JsonRpcConn::open(addr, &subs).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    while blocks.len() < 3 {
        let v = next_json(&mut c.ws, deadline).await?;
        let r = &v["params"]["result"];
        let (Some(n), Some(a)) = (r["blockNumber"].as_str(), r["address"].as_str()) else {
            continue;
        };
        match blocks.last_mut() {
            Some((last, addrs)) if last == n => addrs.push(a.to_string()),
            _ => blocks.push((n.to_string(), vec![a.to_string()])),
        }
    }
    let _ = c.ws.close(None).await;
    Ok(blocks.swap_remove(1).1)
}

/// The alloy subscriber process (tests/rpc-clients/alloy, binary `latency`).
#[derive(Debug)]
pub struct AlloySubscribers {
    child: ChildGuard,
    record: PathBuf,
    dir: PathBuf,
}

impl AlloySubscribers {
    /// The alloy crate's `latency` binary: `RINGGATE_ALLOY_LATENCY_BIN` when set (CI passes
    /// the one `.ci/rpc-client-tests` built), else built here (release; a no-op when up to
    /// date) with the cargo that runs this bench.
    pub fn build() -> Result<PathBuf, ClientError> {
        if let Some(bin) = std::env::var_os("RINGGATE_ALLOY_LATENCY_BIN") {
            return Ok(bin.into());
        }
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rpc-clients/alloy");
        let target = crate_dir.join("target");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--locked",
                "--release",
                "--bin",
                "latency",
            ])
            .arg("--manifest-path")
            .arg(crate_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()?;
        if !status.success() {
            return Err(ClientError::Protocol(format!(
                "building the alloy subscriber failed ({status})"
            )));
        }
        Ok(target.join("release/latency"))
    }

    /// Starts `providers` alloy providers on `/rpc` (each `subscribe_blocks` and
    /// `subscribe_logs` on `address`), recording for `seconds`; returns once all subscribed.
    pub fn start(
        bin: &Path,
        addr: SocketAddr,
        providers: usize,
        address: &str,
        seconds: f64,
    ) -> Result<AlloySubscribers, ClientError> {
        let dir = std::env::temp_dir().join(format!(
            "ringgate-rpc-latency-{}-{}",
            std::process::id(),
            realtime_ns()
        ));
        std::fs::create_dir_all(&dir)?;
        let (record, ready) = (dir.join("record"), dir.join("ready"));
        let mut cmd = Command::new(bin);
        cmd.arg(format!("ws://{addr}/rpc"))
            .arg(providers.to_string())
            .arg(address)
            .arg(format!("{seconds:.3}"))
            .arg(&record)
            .arg(&ready);
        let mut child = ChildGuard::spawn("alloy subscribers", cmd, None)?;
        child.wait_file(&ready, 1, Duration::from_secs(120))?;
        Ok(AlloySubscribers { child, record, dir })
    }

    /// Waits (up to `timeout`) for the process to finish its recording, then reads it.
    pub fn finish(mut self, timeout: Duration) -> Result<Vec<Received>, ClientError> {
        let start = std::time::Instant::now();
        while self.child.check_alive().is_ok() {
            if start.elapsed() > timeout {
                return Err(ClientError::Protocol(
                    "alloy subscribers did not finish".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&self.record)?;
        Ok(parse_record(&text))
    }
}

impl Drop for AlloySubscribers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The alloy process's record: lines `h|l BLOCK_NUMBER RECEIVED_NS`; other lines are skipped.
pub fn parse_record(text: &str) -> Vec<Received> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let kind = match f.next()? {
                "h" => Kind::Head,
                "l" => Kind::Log,
                _ => return None,
            };
            Some(Received {
                kind,
                block_number: f.next()?.parse().ok()?,
                received_ns: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloy_record_lines_parse_and_junk_is_skipped() {
        let r = parse_record("h 15000002 100\nl 15000002 105\nx 1 2\nh nope 3\n");
        assert_eq!(
            r,
            vec![
                Received {
                    kind: Kind::Head,
                    block_number: 15000002,
                    received_ns: 100
                },
                Received {
                    kind: Kind::Log,
                    block_number: 15000002,
                    received_ns: 105
                },
            ]
        );
    }
}
