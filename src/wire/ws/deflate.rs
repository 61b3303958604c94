//! permessage-deflate (RFC 7692), sans-IO: the offer/response negotiation, the shard's
//! compressor for server messages, and the bounded inflation of client messages.
//!
//! Runs on shard cores. The gateway always answers an acceptable offer with
//! `server_no_context_takeover; client_no_context_takeover` (RFC 7692 §7.1.1.1 and
//! RFC 7692 §7.1.1.2 let a server add both to any accepted offer), so every compressed
//! message, in either direction, is a function of its own payload alone:
//!
//! - one [`Deflater`] per shard serves all its deflate sessions (reset per message) and
//!   compresses a payload once for every session that sends the same bytes: it keeps the
//!   last [`CACHE_ENTRIES`] payloads of at most [`CACHE_MAX_PAYLOAD`] bytes with their
//!   compressed form (a caught-up firehose client gets the same frames as its neighbours);
//! - a session holds no compressor or window between messages: a client message is inflated
//!   from scratch, its output bounded by the decoder's message limit (a decompression bomb
//!   is a [`WsError::InflatedTooLarge`], close 1009, for that session only).
//!
//! The choice and its measured cost in ratio are in docs/decisions/compression.md.
//!
//! Negotiation rules (RFC 7692 §5, §7.1): offers are tried in the client's order and the
//! first acceptable one wins; an offer with an unknown, repeated or malformed parameter is
//! declined, and so is `server_max_window_bits` below 15 (the compressor always uses a
//! 32 KiB window; an offer of 15 is accepted and echoed). Any `client_max_window_bits` is
//! fine (the inflater reads any window up to 32 KiB), so it is never answered.

use std::collections::VecDeque;

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::{decompress_to_vec_with_limit, TINFLStatus};

use crate::wire::ws::frame::{read_payload_len, write_frame_header, OpCode};
use crate::wire::ws::WsError;

/// The extension token.
pub const EXTENSION: &str = "permessage-deflate";

/// The tail a sync flush ends with, which RFC 7692 §7.2.1 strips from every message and
/// RFC 7692 §7.2.2 appends again before inflating.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// An empty final stored block, appended after [`SYNC_TAIL`] when inflating so the one-shot
/// inflater sees the stream end (a message that already ended with a final block stops
/// before it).
const FINAL_BLOCK: [u8; 5] = [0x01, 0x00, 0x00, 0xff, 0xff];

/// Compressed payloads remembered per shard for reuse.
pub const CACHE_ENTRIES: usize = 8;

/// Largest payload the cache keeps (bigger ones are compressed every time): a full `Events`
/// batch (`BatchLimits::max_bytes`, 256 KiB), the frame busy sessions share.
pub const CACHE_MAX_PAYLOAD: usize = 256 * 1024;

/// Compression level (miniz 0–10). On the mainnet block level 1 compresses full batches
/// 8.6× at about a fifth of level 6's CPU (12.3×): docs/benchmarks.md.
pub const LEVEL: u8 = 1;

/// What the server agreed to: the `Sec-WebSocket-Extensions` response value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    /// The client's offer named `server_max_window_bits=15`, which must be echoed.
    pub echo_server_max_window_bits: bool,
}

impl Agreed {
    /// The response header value.
    pub fn header_value(&self) -> String {
        let mut v = format!("{EXTENSION}; server_no_context_takeover; client_no_context_takeover");
        if self.echo_server_max_window_bits {
            v.push_str("; server_max_window_bits=15");
        }
        v
    }
}

/// The first acceptable permessage-deflate offer in a `Sec-WebSocket-Extensions` value
/// (repeated headers joined with `", "`), or `None`: no offer, or none we can honour.
pub fn negotiate(extensions: Option<&str>) -> Option<Agreed> {
    extensions?.split(',').find_map(accept_offer)
}

/// One offer: `permessage-deflate *( ";" param [ "=" value ] )`.
fn accept_offer(offer: &str) -> Option<Agreed> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case(EXTENSION) {
        return None;
    }
    let mut seen = [false; 4];
    let mut echo = false;
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
            None => (part, None),
        };
        let slot = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ]
        .iter()
        .position(|p| p.eq_ignore_ascii_case(name))?;
        if std::mem::replace(&mut seen[slot], true) {
            return None; // RFC 7692 §7: a repeated parameter declines the offer
        }
        match (slot, value) {
            (0 | 1, None) => {}
            (2, Some(v)) => {
                // We cannot compress with a window under 32 KiB: decline rather than lie.
                if window_bits(v)? != 15 {
                    return None;
                }
                echo = true;
            }
            (3, None) => {}
            (3, Some(v)) => {
                window_bits(v)?;
            }
            _ => return None,
        }
    }
    Some(Agreed {
        echo_server_max_window_bits: echo,
    })
}

/// A parameter value, a token or a quoted string (RFC 7692 §7.1: both spellings allowed).
fn unquote(v: &str) -> Option<&str> {
    match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"'),
        None => Some(v),
    }
}

/// A window-bits value: 8 to 15, decimal, no leading zero.
fn window_bits(v: &str) -> Option<u8> {
    if v.starts_with('0') || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 2 {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// One remembered compression.
#[derive(Debug, Default)]
struct Entry {
    plain: Vec<u8>,
    compressed: Vec<u8>,
}

/// Counters of one [`Deflater`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeflateStats {
    /// Messages compressed (cache misses).
    pub compressed: u64,
    /// Messages served from the cache.
    pub reused: u64,
    /// Payload bytes in, compressed bytes out, over all messages sent.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A shard's compressor for server messages, with no context takeover: each message starts
/// from an empty window. Allocated on first use (about 310 KiB of miniz state) plus the
/// cache, at most [`CACHE_ENTRIES`] × ([`CACHE_MAX_PAYLOAD`] + its compressed size), plus
/// the last larger message's compressed bytes.
#[derive(Default)]
pub struct Deflater {
    compressor: Option<Box<CompressorOxide>>,
    cache: VecDeque<Entry>,
    /// The last payload too large for the cache, compressed.
    scratch: Vec<u8>,
    pub stats: DeflateStats,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("allocated", &self.compressor.is_some())
            .field("cached", &self.cache.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Deflater {
    /// Rewrites a run of complete, unmasked server frames (what a session writer assembled)
    /// with every data frame's payload compressed and RSV1 set; control frames are copied
    /// as they are. Appends to `out`.
    pub fn compress_frames(&mut self, mut frames: &[u8], out: &mut Vec<u8>) {
        while let Some((len, header_len)) = read_payload_len(frames) {
            let b0 = frames[0];
            let Some(frame) = usize::try_from(len)
                .ok()
                .and_then(|len| frames.get(..header_len + len))
            else {
                break;
            };
            let payload = &frame[header_len..];
            match b0 & 0x0f {
                op @ (0x1 | 0x2) => {
                    let opcode = if op == 0x1 {
                        OpCode::Text
                    } else {
                        OpCode::Binary
                    };
                    let compressed = self.compress(payload);
                    let at = out.len();
                    write_frame_header(opcode, compressed.len(), out);
                    out[at] |= 0x40; // RSV1: this message is compressed
                    out.extend_from_slice(compressed);
                }
                _ => out.extend_from_slice(frame),
            }
            frames = &frames[frame.len()..];
        }
        // Never reached for frames this crate wrote; keep any remainder unchanged.
        out.extend_from_slice(frames);
    }

    /// The compressed form of one message payload (RFC 7692 §7.2.1: raw deflate, sync
    /// flush, the trailing `00 00 ff ff` removed).
    pub fn compress(&mut self, payload: &[u8]) -> &[u8] {
        self.stats.bytes_in += payload.len() as u64;
        if payload.len() > CACHE_MAX_PAYLOAD {
            self.stats.compressed += 1;
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            deflate_into(self.compressor(), payload, &mut scratch);
            self.scratch = scratch;
            self.stats.bytes_out += self.scratch.len() as u64;
            return &self.scratch;
        }
        let i = match self.cache.iter().position(|e| e.plain == payload) {
            Some(i) => {
                self.stats.reused += 1;
                i
            }
            None => {
                self.stats.compressed += 1;
                let mut entry = if self.cache.len() == CACHE_ENTRIES {
                    self.cache.pop_front().unwrap_or_default()
                } else {
                    Entry::default()
                };
                entry.compressed.clear();
                deflate_into(self.compressor(), payload, &mut entry.compressed);
                entry.plain.clear();
                entry.plain.extend_from_slice(payload);
                self.cache.push_back(entry);
                self.cache.len() - 1
            }
        };
        let out = &self.cache[i].compressed;
        self.stats.bytes_out += out.len() as u64;
        out
    }

    fn compressor(&mut self) -> &mut CompressorOxide {
        self.compressor.get_or_insert_with(|| {
            // Raw deflate (negative window bits: no zlib header), default strategy.
            let flags = create_comp_flags_from_zip_params(i32::from(LEVEL), -15, 0);
            Box::new(CompressorOxide::new(flags))
        })
    }
}

/// Compresses `payload` as one message from an empty window into `out`.
fn deflate_into(c: &mut CompressorOxide, payload: &[u8], out: &mut Vec<u8>) {
    c.reset();
    let (status, _) = compress_to_output(c, payload, TDEFLFlush::Sync, |chunk| {
        out.extend_from_slice(chunk);
        true
    });
    debug_assert_eq!(status, TDEFLStatus::Okay);
    if out.ends_with(&SYNC_TAIL) {
        out.truncate(out.len() - SYNC_TAIL.len());
    }
}

/// Inflates one client message compressed without context takeover (RFC 7692 §7.2.2),
/// refusing output over `limit` bytes.
pub fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, WsError> {
    let mut input = Vec::with_capacity(compressed.len() + SYNC_TAIL.len() + FINAL_BLOCK.len());
    input.extend_from_slice(compressed);
    input.extend_from_slice(&SYNC_TAIL);
    input.extend_from_slice(&FINAL_BLOCK);
    decompress_to_vec_with_limit(&input, limit).map_err(|e| match e.status {
        TINFLStatus::HasMoreOutput => WsError::InflatedTooLarge { limit },
        _ => WsError::BadDeflate,
    })
}

#[cfg(test)]
mod tests;
