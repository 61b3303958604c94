//! The JSON-RPC side's memory is bounded in bytes and measured: the shards' `fromBlock`
//! history counts each block once whatever its number of frames and lets the oldest go past
//! `--rpc-history-mib`; `ringgate_rpc_block_bytes` follows every encoded block made,
//! cloned and dropped; and a real gateway fed real mainnet blocks (0.3–0.7 MiB of logs each)
//! stays within its bound while blocks keep coming (the 40-minute soak found RssAnon
//! growing by ~250 MiB on the JSON-RPC path: 1,024 frames of such blocks, bounded by count
//! only).

mod common;
mod real_data;

use std::sync::Arc;

use common::*;
use ringgate::model::outbound::MAX_LOG_TOPICS;
use ringgate::model::rpc::{live_block_bytes, LiveBytes, RpcBlock, RpcFrame, RpcLog};
use ringgate::model::stage::CommitStage;
use ringgate::serve::rpc::hub::{RpcHub, RpcLimits};

/// A block of `number` whose one log is `log_bytes` long.
fn block(number: u64, log_bytes: usize) -> Arc<RpcBlock> {
    let header: Box<[u8]> = format!("{{\"number\":\"{number:#x}\"}}")
        .into_bytes()
        .into();
    let logs = vec![RpcLog {
        address: [1; 20],
        topics: [[0; 32]; MAX_LOG_TOPICS],
        topic_count: 0,
        json: vec![b'x'; log_bytes].into(),
    }];
    let block_tail: Box<[u8]> = b"]}".as_slice().into();
    Arc::new(RpcBlock {
        live: LiveBytes::of(&header, &logs, &block_tail),
        number,
        hash: [number as u8; 32],
        id: [number as u8; 32],
        chain_id: 143,
        header,
        logs,
        block_tail,
    })
}

fn frame(seqno: u64, stage: CommitStage, block: &Arc<RpcBlock>) -> Arc<RpcFrame> {
    Arc::new(RpcFrame {
        server_seqno: seqno,
        stage,
        reached: stage,
        timestamp_ns: 0,
        block: Arc::clone(block),
    })
}

/// One test: the gauge is process-wide, so nothing else in this binary may make blocks
/// while it counts.
#[test]
fn the_history_counts_each_block_once_and_the_gauge_follows_every_block() {
    let before = live_block_bytes();
    let b1 = block(1, 400);
    let size = b1.live.bytes();
    assert!(size >= 400, "a block counts its log bytes: {size}");
    assert_eq!(live_block_bytes(), before + size);
    let copy = RpcBlock::clone(&b1);
    assert_eq!(live_block_bytes(), before + 2 * size, "a clone is counted");
    drop(copy);
    assert_eq!(live_block_bytes(), before + size, "a drop is subtracted");

    // Room for two blocks: B1's Voted frame keeps B1 (counted once) after its Proposed frame
    // goes; B2 goes with its only frame.
    let (b2, b3) = (block(2, 400), block(3, 400));
    let limits = RpcLimits {
        heads_stage: CommitStage::Proposed,
        queue_bytes: 1 << 20,
        history_bytes: 2 * size + size / 2,
    };
    let mut hub = RpcHub::default();
    hub.dispatch(&frame(1, CommitStage::Proposed, &b1), &limits);
    hub.dispatch(&frame(2, CommitStage::Proposed, &b2), &limits);
    hub.dispatch(&frame(3, CommitStage::Voted, &b1), &limits);
    let kept: Vec<(u64, u64)> = hub
        .history_from(0)
        .iter()
        .map(|f| (f.block.number, f.server_seqno))
        .collect();
    assert_eq!(kept, [(1, 1), (2, 2), (1, 3)], "two blocks fit");
    hub.dispatch(&frame(4, CommitStage::Proposed, &b3), &limits);
    let kept: Vec<(u64, u64)> = hub
        .history_from(0)
        .iter()
        .map(|f| (f.block.number, f.server_seqno))
        .collect();
    assert_eq!(
        kept,
        [(1, 3), (3, 4)],
        "the oldest frames go until two blocks are left"
    );
    assert!(hub
        .block(ringgate::wire::rpc::BlockRef::Number(2))
        .is_none());
    assert!(hub
        .block(ringgate::wire::rpc::BlockRef::Number(1))
        .is_some());

    drop((hub, b1, b2, b3));
    assert_eq!(
        live_block_bytes(),
        before,
        "every block freed is subtracted"
    );
}

/// A sample of /metrics: (`ringgate_rpc_block_bytes`, BLOCK_END events ingested).
fn sample(gw: &ServeProcess) -> (u64, u64) {
    let (status, body) = gw.get("/metrics", "");
    assert_eq!(status, 200);
    let value = |prefix: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    };
    (
        value("ringgate_rpc_block_bytes ").expect("ringgate_rpc_block_bytes in /metrics"),
        value("ringgate_events_in_total{type=\"BlockEnd\"} ").unwrap_or(0),
    )
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn real_blocks_stay_within_rpc_history_mib() {
    let ring = ringgate::ingest::ring::scratch_dir()
        .join(format!("ringgate-test-rpc-memory-{}", std::process::id()));
    let _ = std::fs::remove_file(&ring);
    let mut writer = std::process::Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .arg("write")
        .arg("--ring")
        .arg(&ring)
        .arg("--replay")
        .arg(real_data::snapshot())
        .args(["--rate", "20000"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ringgate write");
    wait_until("the writer created the ring", || ring.exists());
    let gw = ServeProcess::start(&[
        "--ring".as_ref(),
        ring.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--rpc-history-mib".as_ref(),
        "1".as_ref(),
    ]);

    // 25 blocks: about 12 MiB of encoded blocks, which the old count bounds (256 blocks,
    // 1,024 frames) would all have kept.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let (mut most, mut samples) = (0, 0);
    loop {
        let (bytes, blocks) = sample(&gw);
        most = most.max(bytes);
        samples += 1;
        if blocks >= 25 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {blocks} blocks ingested"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = writer.kill();
    let _ = writer.wait();
    let _ = std::fs::remove_file(&ring);
    // The tailer's blocks awaiting later states (≤ 1 MiB, or its newest block) plus the
    // shard's history (the same bound), frames in flight, and the block being sent.
    assert!(
        most <= 4 << 20,
        "{most} bytes of JSON-RPC blocks alive with --rpc-history-mib 1 ({samples} samples)"
    );
    assert!(
        most >= 256 << 10,
        "the gauge saw the real blocks ({most} bytes at most over {samples} samples)"
    );
    gw.stop(false);
}
