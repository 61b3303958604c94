//! Where the real mainnet data lives: `../shared/data/monad` beside the checkout (a ring
//! snapshot of block 15,000,001 with 6,597 events, and Monad's golden JSON for that block).
//!
//! Tests that need it carry
//! `#[cfg_attr(real_data_absent, ignore = "needs ../shared/data/monad")]`: `build.rs` sets
//! `real_data_absent` when the snapshot is missing, so those tests are reported as ignored by
//! name instead of passing silently. CI always has the data and runs them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The folder of the real data.
pub fn monad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/monad")
}

/// The ring snapshot of mainnet block 15,000,001.
pub fn snapshot() -> PathBuf {
    let p = monad_dir().join("emn-1b-15m.snapshot.zst");
    assert!(
        p.exists(),
        "{} is missing (it was there at build time; rebuild to mark the tests ignored)",
        p.display()
    );
    p
}
