//! The one set of JSON writing primitives: every writer of wire JSON (event objects, server
//! messages, meta frames, REST bodies, HTTP error bodies) appends through these, so how a
//! number, a hex string or an escaped string looks on the wire is decided in one place.
//!
//! Lowercase `0x` hex through a 256-entry table, minimal-hex u256, decimal integers two digits
//! per division, shortest round-trip floats, escaped strings, and a small object writer
//! ([`Obj`]). Runtime-free; appends to a caller's `Vec<u8>` and never fails. Runs on the
//! tailer core for events and meta frames, and on shards for per-connection messages.

/// Appends `s` as a JSON string literal (quotes included), escaping `"`, `\` and control
/// characters.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Number of decimal digits of `n` (for computing frame lengths before writing).
pub fn u64_len(n: u64) -> usize {
    let mut len = 1;
    let mut n = n / 10;
    while n > 0 {
        len += 1;
        n /= 10;
    }
    len
}

/// `HEX_PAIRS[b]` = the two lowercase hex digits of `b`.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    t
};

/// Writes the hex digits of `bytes` into the first `2 * bytes.len()` bytes of `dst` (fewer
/// bytes are written if `dst` is shorter).
#[inline]
pub fn hex_digits_into(dst: &mut [u8], bytes: &[u8]) {
    for (d, b) in dst.chunks_exact_mut(2).zip(bytes) {
        d.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
}

/// Appends the hex digits of `bytes` (no prefix, no quotes).
#[inline]
pub fn push_hex_digits(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    hex_digits_into(&mut out[start..], bytes);
}

/// Appends `"0x…"` (quoted) for raw bytes: hashes, addresses, calldata.
#[inline]
pub fn push_hex_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(b"\"0x");
    push_hex_digits(out, bytes);
    out.push(b'"');
}

/// Appends a u256 (32 little-endian bytes) as quoted minimal hex: `"0x0"` for zero, `"0x3b541e0b1"`, no leading zeros.
#[inline]
pub fn push_u256_quoted(out: &mut Vec<u8>, v: &[u8; 32]) {
    out.extend_from_slice(b"\"0x");
    match v.iter().rposition(|b| *b != 0) {
        None => out.push(b'0'),
        Some(top) => {
            let pair = HEX_PAIRS[usize::from(v[top])];
            if pair[0] == b'0' {
                out.push(pair[1]);
            } else {
                out.extend_from_slice(&pair);
            }
            for b in v[..top].iter().rev() {
                out.extend_from_slice(&HEX_PAIRS[usize::from(*b)]);
            }
        }
    }
    out.push(b'"');
}

/// `DEC_PAIRS[n]` = the two decimal digits of `n` (0..100).
static DEC_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Appends an unsigned integer in decimal: two digits per u64 division, written in place
/// (a fixed 20-byte append then a truncate, so no variable-length copy call).
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let n = v.checked_ilog10().map_or(1, |l| l as usize + 1);
    let start = out.len();
    out.extend_from_slice(&[0u8; 20]);
    out.truncate(start + n);
    let dst = &mut out[start..];
    let mut i = n;
    while v >= 100 {
        i -= 2;
        dst[i..i + 2].copy_from_slice(&DEC_PAIRS[(v % 100) as usize]);
        v /= 100;
    }
    if v >= 10 {
        dst[..2].copy_from_slice(&DEC_PAIRS[v as usize]);
    } else {
        dst[0] = b'0' + v as u8;
    }
}

/// Appends an unsigned 128-bit integer in decimal.
#[inline]
pub fn push_u128(out: &mut Vec<u8>, v: u128) {
    if let Ok(small) = u64::try_from(v) {
        return push_u64(out, small);
    }
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    let mut v = v;
    while v > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a signed integer in decimal.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// Lowercase `0x` hex of `bytes` as a `String` (for tests, logs and `inspect`).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(2 + 2 * bytes.len());
    out.extend_from_slice(b"0x");
    push_hex_digits(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends a finite `f64` in its shortest round-trip form (`0.0`, `245.52`, `1e-7`), which
/// is always a valid JSON number; a non-finite value (never expected) is written as `0.0`,
/// so a frame is never invalid JSON.
pub fn push_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else {
        out.extend_from_slice(b"0.0");
    }
}

/// Appends a finite `f64` with exactly `decimals` digits after the point (`12.346`), for
/// figures a person reads (ages, lags); a non-finite value is written as `null`.
pub fn push_f64_fixed(out: &mut Vec<u8>, v: f64, decimals: usize) {
    use std::io::Write as _;
    if v.is_finite() {
        let _ = write!(out, "{v:.decimals$}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A JSON object writer for the hand-written frames and bodies: keys in call order, commas
/// handled, string values escaped. Keys are compile-time names and are written as given.
#[derive(Debug)]
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Writes `{` and returns the writer.
    pub fn open(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Writes `"k":` (with a comma before all but the first) and returns the buffer for a
    /// value the caller writes itself.
    pub fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        push_u64(self.key(k), v);
        self
    }

    pub fn i64(&mut self, k: &str, v: i64) -> &mut Self {
        push_i64(self.key(k), v);
        self
    }

    pub fn f64(&mut self, k: &str, v: f64) -> &mut Self {
        push_f64(self.key(k), v);
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        let out = self.key(k);
        out.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        write_str(self.key(k), v);
        self
    }

    /// `"k":"0x…"` for raw bytes.
    pub fn hex(&mut self, k: &str, v: &[u8]) -> &mut Self {
        push_hex_quoted(self.key(k), v);
        self
    }

    /// `"k":v` with 3 decimals, or `"k":null` for `None` (REST figures such as ages).
    pub fn opt_f64_3(&mut self, k: &str, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => push_f64_fixed(self.key(k), v, 3),
            None => self.key(k).extend_from_slice(b"null"),
        }
        self
    }

    /// `"k":null`.
    pub fn null(&mut self, k: &str) -> &mut Self {
        self.key(k).extend_from_slice(b"null");
        self
    }

    /// Writes `}`.
    pub fn close(self) {
        self.out.push(b'}');
    }
}

/// Writes `[` … `]` around one item per element of `items`, commas handled.
pub fn push_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    fn u256(v: u64) -> [u8; 32] {
        let mut b = [0; 32];
        b[..8].copy_from_slice(&v.to_le_bytes());
        b
    }

    #[test]
    fn u256_is_minimal_lowercase_hex() {
        assert_eq!(s(|o| push_u256_quoted(o, &[0; 32])), "\"0x0\"");
        assert_eq!(s(|o| push_u256_quoted(o, &u256(1))), "\"0x1\"");
        assert_eq!(
            s(|o| push_u256_quoted(o, &u256(0x3b541e0b1))),
            "\"0x3b541e0b1\""
        );
        assert_eq!(s(|o| push_u256_quoted(o, &u256(0x10))), "\"0x10\"");
        let mut max = [0xff; 32];
        assert_eq!(
            s(|o| push_u256_quoted(o, &max)),
            format!("\"0x{}\"", "f".repeat(64))
        );
        max[31] = 0x0a;
        assert!(s(|o| push_u256_quoted(o, &max)).starts_with("\"0xaff"));
    }

    #[test]
    fn integers_and_bytes() {
        for v in [0u64, 7, 10, 99, 100, 101, 12345, 1_756_499_174_388_871_879] {
            assert_eq!(s(|o| push_u64(o, v)), v.to_string());
        }
        assert_eq!(s(|o| push_u128(o, 1 << 70)), (1u128 << 70).to_string());
        assert_eq!(s(|o| push_u64(o, u64::MAX)), u64::MAX.to_string());
        assert_eq!(s(|o| push_u128(o, u128::MAX)), u128::MAX.to_string());
        assert_eq!(s(|o| push_i64(o, i64::MIN)), i64::MIN.to_string());
        assert_eq!(s(|o| push_i64(o, -7)), "-7");
        assert_eq!(
            s(|o| push_hex_quoted(o, &[0x00, 0xab, 0x5f])),
            "\"0x00ab5f\""
        );
        assert_eq!(s(|o| push_hex_quoted(o, &[])), "\"0x\"");
        assert_eq!(to_hex(&[0xde, 0xad]), "0xdead");
    }

    #[test]
    fn strings_escape_to_valid_json() {
        for s in [
            "plain",
            "quote \" back \\ nl \n tab \t",
            "\u{1}\u{1f}é€",
            "",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            let back: String = sonic_rs::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn integers_match_display() {
        for n in [0, 9, 10, 99, 100, 12345, u64::MAX, 1 << 53] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
            assert_eq!(u64_len(n), n.to_string().len());
        }
    }

    #[test]
    fn objects_write_keys_in_order_and_escape_strings() {
        let out = s(|o| {
            let mut obj = Obj::open(o);
            obj.u64("a", 1)
                .str("b", "q\"")
                .hex("c", &[0xab])
                .f64("d", 2.5)
                .f64("e", f64::NAN);
            obj.bool("f", true).null("g").i64("h", -3);
            obj.close();
        });
        assert_eq!(
            out,
            r#"{"a":1,"b":"q\"","c":"0xab","d":2.5,"e":0.0,"f":true,"g":null,"h":-3}"#
        );
        assert_eq!(s(|o| push_array(o, [1u64, 2], push_u64)), "[1,2]");
    }
}
