//! Number and hex formatting for the hand-written JSON encoder: lowercase `0x` hex through a
//! 256-entry lookup table, minimal-hex u256, decimal integers.
//!
//! Runs on the tailer core inside the encoder; appends to a reused `Vec<u8>` and never
//! allocates beyond growing it.

use crate::event::payload::U256;

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

/// Appends a u256 as quoted minimal hex: `"0x0"` for zero, `"0x3b541e0b1"`, no leading zeros.
#[inline]
pub fn push_u256_quoted(out: &mut Vec<u8>, v: &U256) {
    out.extend_from_slice(b"\"0x");
    match v.0.iter().rposition(|b| *b != 0) {
        None => out.push(b'0'),
        Some(top) => {
            let pair = HEX_PAIRS[usize::from(v.0[top])];
            if pair[0] == b'0' {
                out.push(pair[1]);
            } else {
                out.extend_from_slice(&pair);
            }
            for b in v.0[..top].iter().rev() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn u256_is_minimal_lowercase_hex() {
        assert_eq!(s(|o| push_u256_quoted(o, &U256::ZERO)), "\"0x0\"");
        assert_eq!(s(|o| push_u256_quoted(o, &U256::from_u64(1))), "\"0x1\"");
        assert_eq!(
            s(|o| push_u256_quoted(o, &U256::from_u64(0x3b541e0b1))),
            "\"0x3b541e0b1\""
        );
        assert_eq!(
            s(|o| push_u256_quoted(o, &U256::from_u64(0x10))),
            "\"0x10\""
        );
        let mut max = U256([0xff; 32]);
        assert_eq!(
            s(|o| push_u256_quoted(o, &max)),
            format!("\"0x{}\"", "f".repeat(64))
        );
        max.0[31] = 0x0a;
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
}
