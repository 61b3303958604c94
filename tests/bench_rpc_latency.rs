//! The JSON-RPC benchmark's harness (benches/rpc_latency.rs), run in its `smoke` form so it
//! cannot rot: a real `ringgate write --replay` of the mainnet snapshot, a real
//! `ringgate serve`, a few seconds, 3 subscribers and 20 `logs` subscriptions. Asserts that
//! notifications arrived and latencies and CPU were recorded for every row, never a timing.
//! The alloy form needs the alloy crate built (minutes), so it is ignored here and run by
//! `.ci/rpc-client-tests` with the binary that script builds.

#[path = "../benches/rpc_latency.rs"]
mod bench;
mod real_data;

use bench::{Args, ClientArg};
use clap::Parser;

fn smoke(client: &str) -> bench::Report {
    let snapshot = real_data::snapshot();
    let args = Args::parse_from([
        "rpc_latency",
        "smoke",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--client",
        client,
    ]);
    bench::smoke(&args).unwrap_or_else(|e| panic!("smoke run failed: {e}"))
}

fn assert_measured(r: &bench::Report, clients: &[ClientArg]) {
    let got: Vec<ClientArg> = r.latency.iter().map(|l| l.client).collect();
    assert_eq!(got, clients);
    for l in &r.latency {
        assert!(l.blocks > 0, "{l:?}");
        // Every subscriber got a newHeads per measured block, and logs of the filtered address.
        assert_eq!(l.heads.count, l.subscribers * l.blocks, "{l:?}");
        assert!(l.logs_per_block > 0 && l.logs.count > 0, "{l:?}");
        assert_eq!(l.native.count, l.blocks, "{l:?}");
        assert!(l.filter_address.starts_with("0x") && l.filter_address.len() == 42);
    }
    let [cpu] = r.cpu.as_slice() else {
        panic!("one CPU row expected: {:?}", r.cpu)
    };
    assert_eq!(cpu.subscriptions, 20);
    assert!(cpu.matching > 0 && cpu.notifications_read > 0 && cpu.ring_events > 0);
    assert!(cpu.cpu_s > 0.0 && cpu.tailer_cpu_s > 0.0, "{cpu:?}");
}

#[test]
#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]
fn smoke_with_the_plain_jsonrpc_client() {
    let r = smoke("jsonrpc");
    assert_measured(&r, &[ClientArg::Jsonrpc]);
}

#[test]
#[ignore = "builds alloy (minutes): .ci/rpc-client-tests runs it with RINGGATE_ALLOY_LATENCY_BIN"]
fn smoke_with_alloy() {
    let r = smoke("alloy");
    assert_measured(&r, &[ClientArg::Jsonrpc, ClientArg::Alloy]);
}

#[test]
fn latency_is_measured_from_the_block_end_of_the_same_block_inside_the_window() {
    use bench::clients::{BlockEnd, Kind, Received};
    use bench::{LatencyRow, Window};
    let end = |n, ring_ns, received_ns| BlockEnd {
        block_number: n,
        ring_ns,
        received_ns,
    };
    let got = |kind, n, received_ns| Received {
        kind,
        block_number: n,
        received_ns,
    };
    let row = LatencyRow::new(3, ClientArg::Jsonrpc, "0x".into(), 1);
    let window = Window {
        start_ns: 1_000,
        end_ns: 2_000,
    };
    // Block 7 ends before the window (not measured), 8 inside it, 9 after it.
    let ends = [end(7, 900, 950), end(8, 1_100, 1_150), end(9, 1_900, 2_050)];
    let received = [
        got(Kind::Head, 7, 990),
        got(Kind::Head, 8, 1_130),
        got(Kind::Head, 8, 1_120),
        got(Kind::Log, 8, 1_160),
        got(Kind::Log, 9, 2_100),
    ];
    let r = bench::latency_figures(row, &received, &ends, window);
    assert_eq!(r.blocks, 1);
    assert_eq!((r.heads.count, r.heads.max), (2, 30));
    assert_eq!((r.heads_first.count, r.heads_first.p50), (1, 20));
    assert_eq!((r.logs.count, r.logs.p50), (1, 60));
    assert_eq!((r.native.count, r.native.p50), (1, 50));
    assert_eq!(
        r.heads_missing, 1,
        "3 subscribers × 1 block, 2 newHeads received"
    );
}
