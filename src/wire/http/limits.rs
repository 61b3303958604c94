//! Connection admission: who the client is (peer address, or the forwarded address when the
//! peer is a trusted proxy) and whether one more connection is allowed, decided before the
//! WebSocket upgrade.
//!
//! Runs on shard cores at accept time; runtime-free. Counting is split by design:
//! - the **global** total is one [`GlobalConnections`] (an `AtomicUsize` shared by all
//!   shards): touched twice per connection life, never per event, so the shared cache line
//!   costs nothing on the hot path;
//! - the **per-IP** count is per shard ([`ShardAdmission`], an `Rc<RefCell<HashMap>>` owned
//!   by one core), with the per-IP limit divided evenly among the shards (rounded up). The
//!   kernel's `SO_REUSEPORT` hash spreads one host's connections (distinct source ports)
//!   evenly, so this approximates a global per-IP limit without any cross-core map. The cost:
//!   an unlucky hash can refuse a client a little before it reaches `max_per_ip` in total.
//!
//! Every admitted connection holds an [`Admission`] guard that releases both counts when
//! dropped, so no early return can leak a slot (the existing gateway leaked them).
//! Never: trust `X-Forwarded-For` / `X-Real-IP` unless the socket peer is a configured
//! trusted proxy (the existing gateway trusted them blindly, so its limit was spoofable).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::wire::http::{Headers, Response, Status};

/// Connection-limit policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most concurrent connections on the whole server. Default 100,000; each idle session
    /// costs a socket and a few KiB, so size it to memory and `ulimit -n`.
    pub max_total: usize,
    /// Most concurrent connections from one client IP. Default 20,000, high enough for a
    /// load test from one host; lower it on a public endpoint.
    pub max_per_ip: usize,
    /// Socket peers whose `X-Forwarded-For` / `X-Real-IP` are believed. Default empty: the
    /// client IP is always the socket peer.
    pub trusted_proxies: Vec<IpAddr>,
}

impl ConnectionLimits {
    /// Default of [`ConnectionLimits::max_total`] (also the CLI's).
    pub const DEFAULT_MAX_TOTAL: usize = 100_000;
    /// Default of [`ConnectionLimits::max_per_ip`] (also the CLI's).
    pub const DEFAULT_MAX_PER_IP: usize = 20_000;
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_total: Self::DEFAULT_MAX_TOTAL,
            max_per_ip: Self::DEFAULT_MAX_PER_IP,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Parses a comma-separated list of proxy addresses (`10.0.0.1,10.0.0.2`; an empty list is
/// none), for `--trusted-proxies`.
pub fn parse_ip_list(s: &str) -> Result<Vec<IpAddr>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| parse_ip(e).ok_or_else(|| format!("{e:?} is not an IP address")))
        .collect()
}

fn parse_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

impl ConnectionLimits {
    /// The client IP counted for limits and logged: the socket peer, unless the peer is a
    /// trusted proxy; then the right-most `X-Forwarded-For` entry that is not itself a
    /// trusted proxy (entries to its left are client-controlled), else `X-Real-IP`, else
    /// the peer. An unparseable candidate falls back to the peer.
    pub fn client_ip(&self, peer: IpAddr, headers: &Headers) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        if let Some(xff) = &headers.x_forwarded_for {
            for entry in xff.rsplit(',') {
                match parse_ip(entry) {
                    Some(ip) if self.trusted_proxies.contains(&ip) => continue,
                    Some(ip) => return ip,
                    None => return peer,
                }
            }
        }
        headers
            .x_real_ip
            .as_deref()
            .and_then(parse_ip)
            .unwrap_or(peer)
    }
}

/// The server-wide connection count, shared by all shards.
#[derive(Debug, Clone, Default)]
pub struct GlobalConnections(Arc<AtomicUsize>);

impl GlobalConnections {
    /// A zero count.
    pub fn new() -> GlobalConnections {
        GlobalConnections::default()
    }

    /// Connections currently admitted (for `/v1/status` and metrics).
    pub fn current(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a connection was refused; answered before the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("server connection limit reached ({limit} connections)")]
    Global { limit: usize },
    #[error("too many connections from {ip} (limit {limit} per IP)")]
    PerIp { ip: IpAddr, limit: usize },
}

impl Refusal {
    /// 503 for the global limit, 429 for the per-IP limit.
    pub fn status(&self) -> Status {
        match self {
            Refusal::Global { .. } => Status::ServiceUnavailable,
            Refusal::PerIp { .. } => Status::TooManyRequests,
        }
    }

    /// The refusal response (`{"error":"..."}`).
    pub fn response(&self) -> Response {
        Response::error(self.status(), &self.to_string())
    }
}

/// One shard's admission state.
#[derive(Debug)]
pub struct ShardAdmission {
    per_ip: Rc<RefCell<HashMap<IpAddr, usize>>>,
    per_ip_limit: usize,
    /// `max_per_ip` as configured, for the refusal message.
    configured_per_ip: usize,
    max_total: usize,
    global: GlobalConnections,
}

impl ShardAdmission {
    /// Admission for one of `shards` shards, sharing `global`.
    pub fn new(limits: &ConnectionLimits, shards: usize, global: GlobalConnections) -> Self {
        let shards = shards.max(1);
        ShardAdmission {
            per_ip: Rc::default(),
            per_ip_limit: limits.max_per_ip.div_ceil(shards),
            configured_per_ip: limits.max_per_ip,
            max_total: limits.max_total,
            global,
        }
    }

    /// Admits one connection from `ip`, or says why not. Keep the guard for the life of the
    /// connection.
    pub fn admit(&self, ip: IpAddr) -> Result<Admission, Refusal> {
        {
            let mut map = self.per_ip.borrow_mut();
            let n = map.entry(ip).or_insert(0);
            if *n >= self.per_ip_limit {
                if *n == 0 {
                    map.remove(&ip);
                }
                return Err(Refusal::PerIp {
                    ip,
                    limit: self.configured_per_ip,
                });
            }
            *n += 1;
        }
        let mut guard = Admission {
            per_ip: Rc::clone(&self.per_ip),
            ip,
            global: None,
        };
        let before = self.global.0.fetch_add(1, Ordering::Relaxed);
        if before >= self.max_total {
            self.global.0.fetch_sub(1, Ordering::Relaxed);
            drop(guard);
            return Err(Refusal::Global {
                limit: self.max_total,
            });
        }
        guard.global = Some(self.global.clone());
        Ok(guard)
    }

    /// Connections from `ip` on this shard.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.per_ip.borrow().get(&ip).copied().unwrap_or(0)
    }
}

/// Holds one connection's place in the counts; releases it on drop.
#[derive(Debug)]
pub struct Admission {
    per_ip: Rc<RefCell<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
    global: Option<GlobalConnections>,
}

impl Admission {
    /// The client IP this admission counts against.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut map = self.per_ip.borrow_mut();
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
        if let Some(global) = &self.global {
            global.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let limits = ConnectionLimits {
            trusted_proxies: vec![ip("10.0.0.1"), ip("10.0.0.2")],
            ..ConnectionLimits::default()
        };
        let headers = Headers {
            x_forwarded_for: Some("6.6.6.6, 1.2.3.4, 10.0.0.2".into()),
            x_real_ip: Some("9.9.9.9".into()),
            ..Headers::default()
        };
        assert_eq!(limits.client_ip(ip("8.8.8.8"), &headers), ip("8.8.8.8"));
        assert_eq!(limits.client_ip(ip("10.0.0.1"), &headers), ip("1.2.3.4"));
        let real_ip_only = Headers {
            x_real_ip: Some("9.9.9.9".into()),
            ..Headers::default()
        };
        assert_eq!(
            limits.client_ip(ip("10.0.0.1"), &real_ip_only),
            ip("9.9.9.9")
        );
        let garbage = Headers {
            x_forwarded_for: Some("not-an-ip".into()),
            ..Headers::default()
        };
        assert_eq!(limits.client_ip(ip("10.0.0.1"), &garbage), ip("10.0.0.1"));
        let with_port = Headers {
            x_forwarded_for: Some("[2001:db8::1]:443".into()),
            ..Headers::default()
        };
        assert_eq!(
            limits.client_ip(ip("10.0.0.1"), &with_port),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn per_ip_limit_is_429_and_released_on_drop() {
        let limits = ConnectionLimits {
            max_total: 100,
            max_per_ip: 4,
            trusted_proxies: vec![],
        };
        let global = GlobalConnections::new();
        let shard = ShardAdmission::new(&limits, 2, global.clone());
        let a = ip("1.1.1.1");
        let g1 = shard.admit(a).unwrap();
        let _g2 = shard.admit(a).unwrap();
        let refused = shard.admit(a).unwrap_err();
        assert_eq!(refused, Refusal::PerIp { ip: a, limit: 4 });
        assert_eq!(refused.status().code(), 429);
        assert_eq!(global.current(), 2);
        drop(g1);
        assert_eq!(shard.count(a), 1);
        assert_eq!(global.current(), 1);
        assert!(shard.admit(a).is_ok());
    }

    #[test]
    fn global_limit_is_503_across_shards_and_leaks_nothing() {
        let limits = ConnectionLimits {
            max_total: 3,
            max_per_ip: 100,
            trusted_proxies: vec![],
        };
        let global = GlobalConnections::new();
        let s1 = ShardAdmission::new(&limits, 2, global.clone());
        let s2 = ShardAdmission::new(&limits, 2, global.clone());
        let held: Vec<_> = [
            s1.admit(ip("1.1.1.1")),
            s2.admit(ip("2.2.2.2")),
            s2.admit(ip("3.3.3.3")),
        ]
        .into_iter()
        .map(Result::unwrap)
        .collect();
        let refused = s1.admit(ip("4.4.4.4")).unwrap_err();
        assert_eq!(refused.status().code(), 503);
        assert_eq!(s1.count(ip("4.4.4.4")), 0);
        assert_eq!(global.current(), 3);
        drop(held);
        assert_eq!(global.current(), 0);
        assert_eq!(s2.count(ip("2.2.2.2")), 0);
    }

    #[test]
    fn defaults_allow_a_load_test_from_one_host() {
        let limits = ConnectionLimits::default();
        let shard = ShardAdmission::new(&limits, 1, GlobalConnections::new());
        let guards: Vec<_> = (0..5000)
            .map(|_| shard.admit(ip("127.0.0.1")).unwrap())
            .collect();
        assert_eq!(shard.count(ip("127.0.0.1")), 5000);
        drop(guards);
    }
}
