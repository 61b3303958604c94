//! `--nats-creds FILE`: the NATS credentials of an origin (`--publish`) or an edge
//! (`--source`), read once at startup from a file so they are not on the command line, in
//! the process list or in the shell's history (docs/scale-out.md §6).
//!
//! The file is TOML with either a token or a user and a password:
//!
//! ```toml
//! user = "ringgate"
//! password = "s3cret"
//! # or, instead of both:
//! # token = "s3cret"
//! ```
//!
//! Refused at startup, each with a message naming the file: unreadable, not TOML, an unknown
//! key, a token together with a user or password, a user without a password (or the reverse),
//! an empty value, a file other users can read (mode `o+r`: `chmod o-r FILE`), and an
//! NKey/JWT `.creds` file (decentralized auth needs ed25519 signing of the server's nonce,
//! which our client does not do: docs/decisions/nats-client.md).
//!
//! Invariant: a secret never appears in `Debug` output or in an error message.

use std::fmt;
use std::path::Path;

/// How a connection authenticates (the `CONNECT` fields it adds).
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    UserPassword { user: String, password: String },
    Token(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::UserPassword { user, .. } => write!(f, "user {user:?}, password ***"),
            Credentials::Token(_) => f.write_str("token ***"),
        }
    }
}

impl Credentials {
    /// The `CONNECT` fields, each preceded by a comma.
    pub fn connect_fields(&self) -> String {
        let s = |v: &str| serde_json::Value::from(v).to_string();
        match self {
            Credentials::UserPassword { user, password } => {
                format!(",\"user\":{},\"pass\":{}", s(user), s(password))
            }
            Credentials::Token(t) => format!(",\"auth_token\":{}", s(t)),
        }
    }
}

/// Reads and checks the credentials file at `path`; the error names the file and what is
/// wrong with it.
pub fn read(path: &Path) -> Result<Credentials, String> {
    let fail = |m: String| format!("--nats-creds {}: {m}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if readable_by_others(&meta) {
        return Err(fail(
            "other users can read it (mode o+r); it holds a secret: chmod o-r it".into(),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    parse(&text).map_err(fail)
}

#[cfg(unix)]
fn readable_by_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o004 != 0
}

#[cfg(not(unix))]
fn readable_by_others(_: &std::fs::Metadata) -> bool {
    false
}

/// [`read`] on the file's text.
pub fn parse(text: &str) -> Result<Credentials, String> {
    if text.contains("-----BEGIN NATS USER JWT-----") || text.contains("-----BEGIN USER NKEY") {
        return Err(nkey_unsupported());
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        format!(
            "not valid TOML ({}); expected `user = \"…\"` and `password = \"…\"`, or `token = \"…\"`",
            e.message().trim()
        )
    })?;
    let mut user = None;
    let mut password = None;
    let mut token = None;
    for (key, value) in &table {
        let slot = match key.as_str() {
            "user" => &mut user,
            "password" => &mut password,
            "token" => &mut token,
            "nkey" | "seed" | "jwt" => return Err(nkey_unsupported()),
            other => {
                return Err(format!(
                    "unknown key `{other}` (the keys are user, password, token)"
                ))
            }
        };
        let toml::Value::String(s) = value else {
            return Err(format!("`{key}` must be a string"));
        };
        if s.is_empty() {
            return Err(format!("`{key}` is empty"));
        }
        *slot = Some(s.clone());
    }
    match (user, password, token) {
        (Some(user), Some(password), None) => Ok(Credentials::UserPassword { user, password }),
        (None, None, Some(t)) => Ok(Credentials::Token(t)),
        (None, None, None) => Err("no credentials: give `user` and `password`, or `token`".into()),
        (_, _, Some(_)) => Err("a token, or a user and password: not both".into()),
        (Some(_), None, None) => Err("`user` without `password`".into()),
        (None, Some(_), None) => Err("`password` without `user`".into()),
    }
}

fn nkey_unsupported() -> String {
    "an NKey/JWT credentials file (decentralized auth) is not supported: it needs ed25519 \
     signing, which ringgate's NATS client does not do; give the server a user and password \
     or a token for ringgate (docs/scale-out.md)"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_and_password_or_a_token() {
        assert_eq!(
            parse("user = \"rg\"\npassword = \"p\\\"w\"\n"),
            Ok(Credentials::UserPassword {
                user: "rg".into(),
                password: "p\"w".into()
            })
        );
        let t = parse("# the origin's token\ntoken = \"abc\"\n").expect("token");
        assert_eq!(t, Credentials::Token("abc".into()));
        assert_eq!(t.connect_fields(), ",\"auth_token\":\"abc\"");
        assert_eq!(format!("{t:?}"), "token ***");
        let up = parse("user = \"rg\"\npassword = \"p\\\"w\"\n").expect("user");
        assert_eq!(up.connect_fields(), ",\"user\":\"rg\",\"pass\":\"p\\\"w\"");
        assert!(!format!("{up:?}").contains("p\\\"w"));
    }

    #[test]
    fn malformed_files_are_refused_with_what_is_wrong() {
        let err = |text: &str| parse(text).expect_err(text);
        assert!(err("user:password\n").contains("not valid TOML"));
        assert!(err("user = \"a\"\n").contains("without `password`"));
        assert!(err("password = \"a\"\n").contains("without `user`"));
        assert!(err("token = \"a\"\nuser = \"b\"\npassword = \"c\"\n").contains("not both"));
        assert!(err("").contains("no credentials"));
        assert!(err("token = \"\"\n").contains("empty"));
        assert!(err("token = 5\n").contains("must be a string"));
        assert!(err("pass = \"x\"\n").contains("unknown key `pass`"));
        // Nothing of the secret leaks into an error.
        assert!(!err("token = \"sekrit\"\npassword = \"x\"\n").contains("sekrit"));
    }

    #[test]
    fn nkey_and_jwt_files_are_refused_naming_the_limitation() {
        let creds = "-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n\n\
                     -----BEGIN USER NKEY SEED-----\nSUAM\n------END USER NKEY SEED------\n";
        for text in [creds, "nkey = \"UABC\"\n"] {
            let e = parse(text).expect_err(text);
            assert!(e.contains("NKey/JWT") && e.contains("not supported"), "{e}");
        }
    }
}
