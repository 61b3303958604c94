//! Raw chain byte types shared by every side: addresses and 32-byte words, as the ring stores
//! them (no hex, no checksums; the JSON writers format them once on the tailer).

/// A 20-byte Ethereum address, raw.
pub type Address = [u8; 20];
/// A 32-byte hash, topic, key or id, raw.
pub type Bytes32 = [u8; 32];
