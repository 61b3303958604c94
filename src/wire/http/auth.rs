//! Access keys: who may connect, how often, to what.
//!
//! The keys file (`--auth-keys FILE`, TOML) holds no secrets: each `[[key]]` has a `name`, the
//! hex SHA-256 of its token (`token_sha256`), a connection quota (`max_connections`) and
//! optional limits (`channels`: the WebSocket channels it may open; `subscriptions` and `rpc`:
//! the JSON-RPC endpoint's per-connection subscription cap and whether the key may use it).
//! A client presents its token as `Authorization: Bearer TOKEN` or `?token=TOKEN` (the header
//! wins); the token is hashed and compared with every key's hash in constant time.
//!
//! [`AuthKeys`] is shared by every shard (one `Arc`): admission takes a [`KeyGuard`] that
//! holds one of the key's connections until it is dropped; `reload` swaps the key set (on
//! SIGHUP), keeping the counters of keys that remain and bumping a generation the shards
//! watch to close the sessions of removed keys (1008 "key revoked"). Runtime-free apart from
//! atomics and one uncontended lock taken per connection attempt, never per event.
//! Never: log or store a token, compare hashes with an early exit.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::wire::http::{Response, Status};
use crate::wire::subscription::channel::Channel;

/// One key as the file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub name: String,
    pub token_sha256: [u8; 32],
    pub max_connections: u64,
    /// Channels this key may open; `None` = all.
    pub channels: Option<Vec<Channel>>,
    /// Most JSON-RPC subscriptions per connection; `None` = the server's default.
    pub subscriptions: Option<u64>,
    /// Whether the key may use the JSON-RPC endpoint.
    pub rpc: bool,
}

/// A key in force: its limits and its counters (shared with the same-named key of every
/// later reload, so connections admitted before a reload are released into the same count).
#[derive(Debug)]
pub struct Key {
    pub spec: KeySpec,
    pub counters: Arc<KeyCounters>,
}

/// Live counters of one key name.
#[derive(Debug, Default)]
pub struct KeyCounters {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections admitted, and refused for the quota, since start.
    pub admitted: AtomicU64,
    pub over_quota: AtomicU64,
}

/// Why a keys file cannot be used.
#[derive(Debug, thiserror::Error)]
pub struct KeysFileError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for KeysFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "auth keys file {}: {}",
            self.path.display(),
            self.message
        )
    }
}

/// The SHA-256 of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal in time independent of where the first difference is.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

/// Parses a keys file's text.
pub fn parse_keys(path: &Path, text: &str) -> Result<Vec<KeySpec>, KeysFileError> {
    let err = |message: String| KeysFileError {
        path: path.to_path_buf(),
        message,
    };
    let table: toml::Table =
        toml::from_str(text).map_err(|e| err(format!("not valid TOML: {}", e.message())))?;
    for k in table.keys() {
        if k != "key" {
            return Err(err(format!(
                "unknown key `{k}` (the file is a list of [[key]] tables)"
            )));
        }
    }
    let entries = match table.get("key") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a,
        Some(_) => return Err(err("`key` must be a list of [[key]] tables".into())),
    };
    let mut specs = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let n = i + 1;
        let t = entry
            .as_table()
            .ok_or_else(|| err(format!("key #{n} is not a table")))?;
        for k in t.keys() {
            if ![
                "name",
                "token_sha256",
                "max_connections",
                "channels",
                "subscriptions",
                "rpc",
            ]
            .contains(&k.as_str())
            {
                return Err(err(format!("key #{n}: unknown field `{k}`")));
            }
        }
        let name = t
            .get("name")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(format!("key #{n}: `name` (a non-empty string) is required")))?
            .to_owned();
        let token_sha256 = t
            .get("token_sha256")
            .and_then(|v| v.as_str())
            .and_then(parse_hex32)
            .ok_or_else(|| {
                err(format!(
                    "key {name:?}: `token_sha256` must be 64 hex digits (sha256sum of the token)"
                ))
            })?;
        let max_connections = match t.get("max_connections") {
            None => u64::MAX,
            Some(v) => v
                .as_integer()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| err(format!("key {name:?}: `max_connections` must be ≥ 0")))?,
        };
        let channels = match t.get("channels") {
            None => None,
            Some(v) => {
                let list = v
                    .as_array()
                    .ok_or_else(|| err(format!("key {name:?}: `channels` must be a list")))?;
                let mut out = Vec::new();
                for c in list {
                    let c = c
                        .as_str()
                        .and_then(|s| Channel::ALL.into_iter().find(|ch| ch.name() == s))
                        .ok_or_else(|| {
                            err(format!(
                                "key {name:?}: unknown channel {} (all, blocks, txs, contention, lifecycle)",
                                c.as_str().unwrap_or("(not a string)")
                            ))
                        })?;
                    out.push(c);
                }
                Some(out)
            }
        };
        let subscriptions = match t.get("subscriptions") {
            None => None,
            Some(v) => Some(
                v.as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| err(format!("key {name:?}: `subscriptions` must be ≥ 0")))?,
            ),
        };
        let rpc = match t.get("rpc") {
            None => true,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| err(format!("key {name:?}: `rpc` must be true or false")))?,
        };
        if specs.iter().any(|s: &KeySpec| s.name == name) {
            return Err(err(format!("key {name:?} is listed twice")));
        }
        specs.push(KeySpec {
            name,
            token_sha256,
            max_connections,
            channels,
            subscriptions,
            rpc,
        });
    }
    Ok(specs)
}

/// Reads and parses a keys file.
pub fn read_keys(path: &Path) -> Result<Vec<KeySpec>, KeysFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeysFileError {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    parse_keys(path, &text)
}

/// The token a request presents: `Authorization: Bearer TOKEN`, else `token=` in the query.
pub fn presented_token<'a>(authorization: Option<&'a str>, query: &'a str) -> Option<&'a str> {
    if let Some(h) = authorization {
        let (scheme, token) = h.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRefusal {
    /// No token: 401.
    Missing,
    /// A token that matches no key: 401.
    Unknown,
    /// The key's `max_connections` is reached: 429.
    OverQuota { key: String },
    /// The key may not open this channel: 403.
    Channel { key: String, channel: &'static str },
}

impl AuthRefusal {
    /// The HTTP answer (before any upgrade).
    pub fn response(&self) -> Response {
        match self {
            AuthRefusal::Missing => Response::error(
                Status::Unauthorized,
                "an access key is required: send Authorization: Bearer TOKEN or ?token=TOKEN",
            )
            .header("WWW-Authenticate", "Bearer"),
            AuthRefusal::Unknown => Response::error(Status::Unauthorized, "unknown access key")
                .header("WWW-Authenticate", "Bearer"),
            AuthRefusal::OverQuota { key } => Response::error(
                Status::TooManyRequests,
                &format!("access key {key:?} has all its connections open"),
            ),
            AuthRefusal::Channel { key, channel } => Response::error(
                Status::Forbidden,
                &format!("access key {key:?} may not open the {channel} channel"),
            ),
        }
    }

    /// Label for the failures counter.
    pub fn label(&self) -> &'static str {
        match self {
            AuthRefusal::Missing => "missing",
            AuthRefusal::Unknown => "unknown",
            AuthRefusal::OverQuota { .. } => "over_quota",
            AuthRefusal::Channel { .. } => "channel",
        }
    }
}

/// One admitted connection of a key; releases it when dropped.
#[derive(Debug)]
pub struct KeyGuard {
    key: Arc<Key>,
}

impl KeyGuard {
    /// The key's name (for logs, metrics and revocation).
    pub fn name(&self) -> &str {
        &self.key.spec.name
    }

    /// The key's limits.
    pub fn spec(&self) -> &KeySpec {
        &self.key.spec
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        self.key.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The keys in force, shared by every shard.
#[derive(Debug)]
pub struct AuthKeys {
    current: Mutex<Arc<Vec<Arc<Key>>>>,
    generation: AtomicU64,
    /// Refusals by reason: missing, unknown, over_quota, channel.
    pub failures: [AtomicU64; 4],
}

impl AuthKeys {
    /// Keys from `specs`, generation 0.
    pub fn new(specs: Vec<KeySpec>) -> AuthKeys {
        AuthKeys {
            current: Mutex::new(Arc::new(Self::fresh(specs, &HashMap::new()))),
            generation: AtomicU64::new(0),
            failures: Default::default(),
        }
    }

    fn fresh(specs: Vec<KeySpec>, old: &HashMap<String, Arc<Key>>) -> Vec<Arc<Key>> {
        specs
            .into_iter()
            .map(|spec| {
                let counters = old
                    .get(&spec.name)
                    .map_or_else(Default::default, |k| Arc::clone(&k.counters));
                Arc::new(Key { spec, counters })
            })
            .collect()
    }

    /// The keys in force now.
    pub fn keys(&self) -> Arc<Vec<Arc<Key>>> {
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Bumped by every reload; shards compare it to find revoked sessions.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a key of this name is in force.
    pub fn has_key(&self, name: &str) -> bool {
        self.keys().iter().any(|k| k.spec.name == name)
    }

    /// Replaces the key set. Keys that remain (same name) keep their counters and their open
    /// connections; sessions of removed keys are closed by their shard ("key revoked").
    /// Returns the names of the removed keys.
    pub fn reload(&self, specs: Vec<KeySpec>) -> Vec<String> {
        let mut slot = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let old: HashMap<String, Arc<Key>> = slot
            .iter()
            .map(|k| (k.spec.name.clone(), Arc::clone(k)))
            .collect();
        let next = Self::fresh(specs, &old);
        let removed = old
            .keys()
            .filter(|n| !next.iter().any(|k| &k.spec.name == *n))
            .cloned()
            .collect();
        *slot = Arc::new(next);
        self.generation.fetch_add(1, Ordering::AcqRel);
        removed
    }

    /// Admits a connection presenting `token` to `channel` (`None` for REST), or says why
    /// not. The hash is compared with every key, in constant time per key.
    pub fn admit(
        &self,
        token: Option<&str>,
        channel: Option<Channel>,
    ) -> Result<KeyGuard, AuthRefusal> {
        let refuse = |r: AuthRefusal| {
            let i = match r {
                AuthRefusal::Missing => 0,
                AuthRefusal::Unknown => 1,
                AuthRefusal::OverQuota { .. } => 2,
                AuthRefusal::Channel { .. } => 3,
            };
            self.failures[i].fetch_add(1, Ordering::Relaxed);
            Err(r)
        };
        let Some(token) = token else {
            return refuse(AuthRefusal::Missing);
        };
        let hash = hash_token(token);
        let keys = self.keys();
        let mut found = None;
        for k in keys.iter() {
            if ct_eq(&k.spec.token_sha256, &hash) {
                found = Some(Arc::clone(k));
            }
        }
        let Some(key) = found else {
            return refuse(AuthRefusal::Unknown);
        };
        if let (Some(allowed), Some(ch)) = (&key.spec.channels, channel) {
            if !allowed.contains(&ch) {
                return refuse(AuthRefusal::Channel {
                    key: key.spec.name.clone(),
                    channel: ch.name(),
                });
            }
        }
        let c = &key.counters;
        let mut open = c.open.load(Ordering::Relaxed);
        loop {
            if open >= key.spec.max_connections {
                c.over_quota.fetch_add(1, Ordering::Relaxed);
                return refuse(AuthRefusal::OverQuota {
                    key: key.spec.name.clone(),
                });
            }
            match c
                .open
                .compare_exchange_weak(open, open + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => open = now,
            }
        }
        c.admitted.fetch_add(1, Ordering::Relaxed);
        Ok(KeyGuard { key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, token: &str, max: u64) -> KeySpec {
        KeySpec {
            name: name.into(),
            token_sha256: hash_token(token),
            max_connections: max,
            channels: None,
            subscriptions: None,
            rpc: true,
        }
    }

    #[test]
    fn the_file_lists_keys_by_the_hash_of_their_token() {
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // "test"
        let text = format!(
            "[[key]]\nname = \"desk\"\ntoken_sha256 = \"{hex}\"\nmax_connections = 2\n\
             channels = [\"blocks\", \"txs\"]\nsubscriptions = 10\nrpc = false\n\n\
             [[key]]\nname = \"dash\"\ntoken_sha256 = \"{hex}\"\n"
        );
        let keys = parse_keys(Path::new("k.toml"), &text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].token_sha256, hash_token("test"));
        assert_eq!(keys[0].channels, Some(vec![Channel::Blocks, Channel::Txs]));
        assert_eq!(
            (keys[0].max_connections, keys[0].subscriptions, keys[0].rpc),
            (2, Some(10), false)
        );
        assert_eq!(keys[1].max_connections, u64::MAX);
        for (bad, says) in [
            (
                "[[key]]\nname = \"a\"\ntoken_sha256 = \"abc\"\n",
                "64 hex digits",
            ),
            ("[[key]]\ntoken_sha256 = \"abc\"\n", "`name`"),
            (
                &format!("[[key]]\nname = \"a\"\ntoken_sha256 = \"{hex}\"\ntoken = \"x\"\n"),
                "unknown field `token`",
            ),
            (
                &format!("[[key]]\nname = \"a\"\ntoken_sha256 = \"{hex}\"\nchannels = [\"x\"]\n"),
                "unknown channel",
            ),
            ("keys = 1\n", "unknown key `keys`"),
        ] {
            let e = parse_keys(Path::new("k.toml"), bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn admission_checks_the_token_the_channel_and_the_quota_and_release_frees_a_slot() {
        let keys = AuthKeys::new(vec![spec("a", "alpha", 1), {
            let mut s = spec("b", "beta", 5);
            s.channels = Some(vec![Channel::Blocks]);
            s
        }]);
        assert_eq!(keys.admit(None, None).unwrap_err(), AuthRefusal::Missing);
        assert_eq!(
            keys.admit(Some("nope"), None).unwrap_err(),
            AuthRefusal::Unknown
        );
        let first = keys.admit(Some("alpha"), Some(Channel::All)).unwrap();
        assert_eq!(first.name(), "a");
        assert!(matches!(
            keys.admit(Some("alpha"), None),
            Err(AuthRefusal::OverQuota { .. })
        ));
        drop(first);
        assert!(keys.admit(Some("alpha"), None).is_ok());
        assert!(matches!(
            keys.admit(Some("beta"), Some(Channel::Txs)),
            Err(AuthRefusal::Channel { .. })
        ));
        assert!(keys.admit(Some("beta"), Some(Channel::Blocks)).is_ok());
        assert_eq!(keys.failures[0].load(Ordering::Relaxed), 1);
        assert_eq!(keys.failures[2].load(Ordering::Relaxed), 1);
    }

    #[test]
    fn reload_keeps_remaining_keys_connections_and_names_the_removed_ones() {
        let keys = AuthKeys::new(vec![spec("a", "alpha", 2), spec("b", "beta", 2)]);
        let held = keys.admit(Some("alpha"), None).unwrap();
        let g0 = keys.generation();
        // "a" stays (with a new quota of 2 → still 2), "b" goes, "c" comes.
        let removed = keys.reload(vec![spec("a", "alpha", 2), spec("c", "gamma", 1)]);
        assert_eq!(removed, ["b"]);
        assert!(keys.generation() > g0);
        assert!(keys.has_key("a") && keys.has_key("c") && !keys.has_key("b"));
        // The held connection still counts against "a" (quota 2: one more fits, then full).
        let second = keys.admit(Some("alpha"), None).unwrap();
        assert!(matches!(
            keys.admit(Some("alpha"), None),
            Err(AuthRefusal::OverQuota { .. })
        ));
        drop((held, second));
        assert!(keys.admit(Some("alpha"), None).is_ok());
        assert_eq!(
            keys.admit(Some("beta"), None).unwrap_err(),
            AuthRefusal::Unknown
        );
    }

    #[test]
    fn the_header_wins_over_the_query_and_only_bearer_counts() {
        assert_eq!(presented_token(Some("Bearer abc"), "token=x"), Some("abc"));
        assert_eq!(presented_token(Some("bearer  abc "), ""), Some("abc"));
        assert_eq!(presented_token(Some("Basic abc"), "token=x"), None);
        assert_eq!(
            presented_token(None, "events=TxnLog&token=xyz"),
            Some("xyz")
        );
        assert_eq!(presented_token(None, "token="), None);
    }
}
