//! Small JSON writers for the few server messages built per connection (Hello, Error, …)
//! and for HTTP error bodies. Event JSON is never built here: it is encoded once by the
//! tailer and only copied.
//!
//! Runtime-free; appends to a caller's `Vec<u8>`, never fails.

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

/// Appends the decimal digits of `n`.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
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

#[cfg(test)]
mod tests {
    use super::*;

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
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
            assert_eq!(u64_len(n), n.to_string().len());
        }
    }
}
