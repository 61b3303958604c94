//! The alloy subscribers of the JSON-RPC latency benchmark (benches/rpc_latency.rs): N alloy
//! WebSocket providers, one connection each, each with a `subscribe_blocks` (`newHeads`) and a
//! `subscribe_logs` (one address) stream, record the moment each stream yields an item.
//!
//! ```text
//! latency URL PROVIDERS LOG_ADDRESS SECONDS RECORD_FILE READY_FILE
//! ```
//!
//! Creates READY_FILE once every provider has both subscriptions, records for SECONDS, then
//! writes RECORD_FILE (one line per item: `h|l BLOCK_NUMBER RECEIVED_NS`, CLOCK_REALTIME ns,
//! taken right after `recv()` returned the deserialized header or log) and exits 0; a failed
//! connect or subscribe exits 1 naming it. One thread (a current-thread runtime), so the
//! subscribers take one core at most of the machine the gateway shares. Items alloy's channel
//! dropped (`Lagged`) are counted on stderr, never recorded.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder, WsConnect};
use alloy::rpc::types::Filter;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// alloy's broadcast channel per subscription: a block's logs arrive as one burst, and on one
/// thread the reader runs only after the burst is in, so it must hold a whole block's worth.
const CHANNEL: usize = 4096;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("alloy latency subscriber: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, providers, address, seconds, record, ready] = args.as_slice() else {
        return Err(
            "usage: latency URL PROVIDERS LOG_ADDRESS SECONDS RECORD_FILE READY_FILE".into(),
        );
    };
    let providers: usize = providers.parse()?;
    let address: Address = address.parse()?;
    let seconds: f64 = seconds.parse()?;

    let (tx, mut rx) = mpsc::unbounded_channel::<(u8, u64, u64)>();
    let mut keep = Vec::with_capacity(providers);
    for _ in 0..providers {
        let provider = ProviderBuilder::new()
            .connect_ws(WsConnect::new(url.as_str()))
            .await?;
        let mut heads = provider.subscribe_blocks().channel_size(CHANNEL).await?;
        let mut logs = provider
            .subscribe_logs(&Filter::new().address(address))
            .channel_size(CHANNEL)
            .await?;
        let t = tx.clone();
        tokio::spawn(async move {
            loop {
                match heads.recv().await {
                    Ok(h) => {
                        let _ = t.send((b'h', h.number, now_ns()));
                    }
                    Err(RecvError::Lagged(n)) => eprintln!("alloy: newHeads lagged {n}"),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        let t = tx.clone();
        tokio::spawn(async move {
            loop {
                match logs.recv().await {
                    Ok(log) => {
                        let n = log.block_number.unwrap_or(0);
                        let _ = t.send((b'l', n, now_ns()));
                    }
                    Err(RecvError::Lagged(n)) => eprintln!("alloy: logs lagged {n}"),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        keep.push(provider);
    }
    drop(tx);
    std::fs::write(ready, "ready\n")?;

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        seen.push(item);
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(record)?);
    for (kind, number, ns) in seen {
        writeln!(out, "{} {number} {ns}", kind as char)?;
    }
    out.flush()?;
    drop(keep);
    Ok(())
}
