//! Build script: tells the tests whether the real mainnet data (`../shared/data/monad`, the
//! ring snapshot of block 15,000,001 and Monad's golden JSON) is next to this checkout. When it
//! is not, the tests that need it are compiled with `#[ignore]` and show up in the test output
//! as ignored, by name, with the reason (`cfg(real_data_absent)`); CI always has the data and
//! runs them.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(real_data_absent)");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let snapshot = Path::new(&dir).join("../shared/data/monad/emn-1b-15m.snapshot.zst");
    // The folder too: data that comes back with its old mtime changes the folder's.
    println!("cargo::rerun-if-changed={}", snapshot.display());
    println!("cargo::rerun-if-changed={dir}/../shared/data");
    println!("cargo::rerun-if-changed=build.rs");
    if !snapshot.exists() {
        println!("cargo::rustc-cfg=real_data_absent");
    }
}
