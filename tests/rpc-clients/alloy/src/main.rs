//! alloy's WebSocket provider against ringgate: `subscribe_blocks`, `subscribe_logs` with an
//! address and topic filter, and `unsubscribe` (alloy sends the id back re-encoded from a
//! number, without leading zeros: ringgate compares ids numerically). Run through
//! tests/rpc-clients/run, which sets RPC_URL and READY_FILE and starts the chain once
//! READY_FILE exists. Exits non-zero, naming the first broken expectation.

use std::collections::HashSet;
use std::time::Duration;

use alloy::primitives::{b256, B256};
use alloy::providers::{Provider, ProviderBuilder, WsConnect};
use alloy::rpc::types::Filter;
use tokio::sync::broadcast::error::RecvError;

/// Transfer(address,address,uint256), the synthetic chain's token event.
const TRANSFER: B256 = b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

fn check(cond: bool, what: impl std::fmt::Display) {
    if !cond {
        eprintln!("alloy: FAILED: {what}");
        std::process::exit(1);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    match tokio::time::timeout(Duration::from_secs(120), run()).await {
        Ok(Ok(())) => println!("1 passed, 0 failed"),
        Ok(Err(e)) => check(false, e),
        Err(_) => check(false, "timed out"),
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("RPC_URL")?;
    let provider = ProviderBuilder::new().connect_ws(WsConnect::new(url)).await?;
    let blocks = provider.subscribe_blocks().await?;
    let all_transfers = provider
        .subscribe_logs(&Filter::new().event_signature(TRANSFER))
        .await?;
    std::fs::write(std::env::var("READY_FILE")?, "ready\n")?;

    let mut heads = blocks;
    let mut numbers = Vec::new();
    let mut hashes = HashSet::new();
    while numbers.len() < 20 {
        let h = heads.recv().await?;
        check(hashes.insert(h.hash), format!("block {} delivered twice", h.hash));
        numbers.push(h.number);
    }
    for w in numbers.windows(2) {
        check(w[1] == w[0] || w[1] == w[0] + 1, format!("heights {} then {}", w[0], w[1]));
    }

    // Learn a token from the unfiltered Transfer stream (alloy's channel for it overflows
    // while the heads are read: skip what it lagged), then filter on it.
    let mut transfers = all_transfers;
    let first = loop {
        match transfers.recv().await {
            Ok(log) => break log,
            Err(RecvError::Lagged(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    provider.unsubscribe(*transfers.local_id()).await?;
    check(first.topics()[0] == TRANSFER, "topic filter");
    let token = first.address();
    let filtered = provider
        .subscribe_logs(&Filter::new().address(token).event_signature(TRANSFER))
        .await?;
    let id = *filtered.local_id();
    let mut filtered = filtered;
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let log = filtered.recv().await?;
        check(log.address() == token, format!("log of {} through a filter on {token}", log.address()));
        check(log.topics()[0] == TRANSFER, "topic filter");
        check(log.block_hash.is_some() && log.log_index.is_some(), "blockHash and logIndex");
        let key = (log.block_hash, log.log_index);
        check(seen.insert(key) || log.removed, format!("log {key:?} twice"));
    }
    provider.unsubscribe(id).await?;
    println!("alloy: {} heads from {}, filtered logs of {token}", numbers.len(), numbers[0]);
    Ok(())
}
