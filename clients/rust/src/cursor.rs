//! The resume position: [`Cursor`] `(epoch, seqno)`, written `"EPOCH:SEQNO"`.

use std::fmt;
use std::str::FromStr;

/// A position in one server run: `epoch` is the server's `Hello.epoch` (compare for equality
/// only) and `seqno` the last `server_seqno` handed to the user. Seqnos of different epochs
/// are unrelated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// The server run (`Hello.epoch`, microseconds since the Unix epoch).
    pub epoch: u64,
    /// The last data `server_seqno` handed out.
    pub seqno: u64,
}

impl Cursor {
    /// A cursor at `seqno` of server run `epoch`.
    pub fn new(epoch: u64, seqno: u64) -> Cursor {
        Cursor { epoch, seqno }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.seqno)
    }
}

/// A string that is not `"EPOCH:SEQNO"` (two decimal integers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCursorError(pub String);

impl fmt::Display for ParseCursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid cursor {:?}: expected 'EPOCH:SEQNO' (two decimal integers)",
            self.0
        )
    }
}

impl std::error::Error for ParseCursorError {}

impl FromStr for Cursor {
    type Err = ParseCursorError;

    /// Parses `"EPOCH:SEQNO"`; surrounding whitespace (a trailing newline) is ignored.
    fn from_str(s: &str) -> Result<Cursor, ParseCursorError> {
        let bad = || ParseCursorError(s.to_owned());
        let (e, n) = s.trim().split_once(':').ok_or_else(bad)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(e) || !digits(n) {
            return Err(bad());
        }
        Ok(Cursor {
            epoch: e.parse().map_err(|_| bad())?,
            seqno: n.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_junk() {
        let c: Cursor = "1700000000000000:42\n".parse().unwrap();
        assert_eq!(c, Cursor::new(1_700_000_000_000_000, 42));
        assert_eq!(c.to_string(), "1700000000000000:42");
        for bad in ["", "1", "1:", ":2", "1:2:3", "a:1", "-1:2", "1:+2", "1: 2"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?} parsed");
        }
    }
}
