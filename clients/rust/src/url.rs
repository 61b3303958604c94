//! The WebSocket URL: a gateway base (`ws://host:port`, `http(s)://` mapped to `ws(s)://`) or a
//! full `/v1/ws[/<channel>]` path, plus the query parameters this client manages.

use crate::Error;

/// The channels (`/v1/ws/<channel>`; `all` is `/v1/ws`).
pub const CHANNELS: &[&str] = &["all", "blocks", "txs", "contention", "lifecycle"];

/// Query parameters the client sets itself; the same names in a given URL are replaced.
const MANAGED: &[&str] = &[
    "resume_from",
    "epoch",
    "from_block",
    "events",
    "min_stage",
    "extended",
];

/// `url` with `channel` (or the channel its path names, else `all`) and `params` appended.
pub fn build_url(
    url: &str,
    channel: Option<&str>,
    params: &[(&str, String)],
) -> Result<String, Error> {
    let bad = |m: String| Error::InvalidArgument(m);
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        bad(format!(
            "url must start with ws://, wss://, http:// or https://, got {url:?}"
        ))
    })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => {
            return Err(bad(format!(
                "url must be ws://, wss://, http:// or https://, got {url:?}"
            )))
        }
    };
    if let Some(c) = channel {
        if !CHANNELS.contains(&c) {
            return Err(bad(format!(
                "channel must be one of {}, got {c:?}",
                CHANNELS.join(", ")
            )));
        }
    }
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let before_query = before_query.split('#').next().unwrap_or("");
    let (authority, path) = before_query
        .find('/')
        .map_or((before_query, ""), |i| before_query.split_at(i));
    if authority.is_empty() {
        return Err(bad(format!("url has no host: {url:?}")));
    }
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let n = segs.len();
    let (prefix, current) = if n >= 2 && segs[n - 2..] == ["v1", "ws"] {
        (segs[..n - 2].join("/"), None)
    } else if n >= 3 && segs[n - 3..n - 1] == ["v1", "ws"] {
        (segs[..n - 3].join("/"), Some(segs[n - 1]))
    } else {
        (path.trim_end_matches('/').to_owned(), None)
    };
    let channel = channel.or(current).unwrap_or("all");
    if !CHANNELS.contains(&channel) {
        return Err(bad(format!("url names an unknown channel {channel:?}")));
    }
    let mut out = format!("{scheme}://{authority}{prefix}/v1/ws");
    if channel != "all" {
        out.push('/');
        out.push_str(channel);
    }
    let mut q: Vec<String> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| !MANAGED.contains(&kv.split('=').next().unwrap_or("")))
        .map(str::to_owned)
        .collect();
    q.extend(params.iter().map(|(k, v)| format!("{k}={v}")));
    if !q.is_empty() {
        out.push('?');
        out.push_str(&q.join("&"));
    }
    Ok(out)
}

/// `url` with the values of `token`-like query parameters replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if ["token", "access_token", "key"].contains(&k) => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{head}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_paths_and_channels() {
        let p = [("events", "TxnLog".to_owned())];
        assert_eq!(build_url("ws://h:1", None, &[]).unwrap(), "ws://h:1/v1/ws");
        assert_eq!(
            build_url("http://h:1/", Some("txs"), &p).unwrap(),
            "ws://h:1/v1/ws/txs?events=TxnLog"
        );
        assert_eq!(
            build_url("https://h/gw/v1/ws/blocks", None, &[]).unwrap(),
            "wss://h/gw/v1/ws/blocks"
        );
        assert_eq!(
            build_url(
                "ws://h/v1/ws/blocks?token=x&events=A&resume_from=3",
                Some("all"),
                &p
            )
            .unwrap(),
            "ws://h/v1/ws?token=x&events=TxnLog"
        );
        assert!(build_url("ftp://h", None, &[]).is_err());
        assert!(build_url("ws://h", Some("nope"), &[]).is_err());
        assert!(build_url("h:1", None, &[]).is_err());
        assert_eq!(
            redact("ws://h/v1/ws?token=sec&a=1"),
            "ws://h/v1/ws?token=***&a=1"
        );
    }
}
