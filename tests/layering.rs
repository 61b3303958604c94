//! The dependency direction of `src/` is a rule, not a habit: this test reads every source
//! file and fails when an import crosses a forbidden line (in the spirit of glommio's
//! `tests/linters.rs`). The rules, as `src/lib.rs` states them:
//!
//! - `model/` (the shared vocabulary) imports nothing else of the crate;
//! - `wire/` (sans-IO protocol) imports only `model/`, and never glommio or libc;
//! - `handoff/` imports only `model/`, `wire/` and `sys`;
//! - `history/` imports only `model/`, `log` and `sys`;
//! - `bus/` imports only `model/`, `handoff/`, `history/`, `wire/`, `log` and `metrics`;
//! - `ingest/` and `serve/` never import each other, nor the tools or the server; ingest
//!   reads only `config::defaults` of the configuration (it gets its own settings struct);
//! - `metrics` imports only `model/`, `wire/`, `handoff/` and `history/`; `log` only `model/` and `wire/`;
//! - `libc` is called only in `sys.rs` and `ingest/ring/` (the mapping and its syscalls).
//!
//! `config`, `server`, `tools/` and `main.rs` sit above everything and are not restricted.
//! Test code (`#[cfg(test)]` modules and `tests.rs` files) may reach further to build
//! fixtures, so it is not checked. Comments are not code and are skipped.

use std::fs;
use std::path::{Path, PathBuf};

/// A rule for the files of one part of the tree.
struct Rule {
    /// Files whose path (relative to `src/`) starts with this.
    part: &'static str,
    /// `crate::` paths these files may use (prefix match); `None` = anything not denied.
    allow: Option<&'static [&'static str]>,
    /// `crate::` paths these files must not use (prefix match), checked after `allow`.
    deny: &'static [&'static str],
    /// External crates these files must not name.
    no_crates: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        part: "model/",
        allow: Some(&["crate::model"]),
        deny: &[],
        no_crates: &["glommio", "libc"],
    },
    Rule {
        part: "wire/",
        allow: Some(&["crate::model", "crate::wire"]),
        deny: &[],
        no_crates: &["glommio", "libc"],
    },
    Rule {
        part: "handoff/",
        allow: Some(&[
            "crate::model",
            "crate::wire",
            "crate::handoff",
            "crate::sys",
        ]),
        deny: &[],
        no_crates: &["libc"],
    },
    Rule {
        part: "history/",
        allow: Some(&["crate::model", "crate::history", "crate::log", "crate::sys"]),
        deny: &[],
        no_crates: &["glommio", "libc"],
    },
    Rule {
        part: "bus/",
        allow: Some(&[
            "crate::model",
            "crate::bus",
            "crate::handoff",
            "crate::history",
            "crate::wire",
            "crate::log",
            "crate::metrics",
        ]),
        deny: &[],
        no_crates: &["glommio", "libc"],
    },
    Rule {
        part: "ingest/",
        allow: None,
        deny: &[
            "crate::serve",
            "crate::tools",
            "crate::server",
            "crate::config::Config",
        ],
        no_crates: &["glommio"],
    },
    Rule {
        part: "serve/",
        allow: None,
        deny: &["crate::ingest", "crate::tools", "crate::server"],
        no_crates: &[],
    },
    Rule {
        part: "log.rs",
        allow: Some(&["crate::model", "crate::wire", "crate::log"]),
        deny: &[],
        no_crates: &["glommio", "libc"],
    },
    Rule {
        part: "metrics",
        allow: Some(&[
            "crate::model",
            "crate::wire",
            "crate::handoff",
            "crate::history",
            "crate::metrics",
        ]),
        deny: &[],
        no_crates: &["glommio", "libc"],
    },
];

/// Where `libc` may be named.
const LIBC_HOMES: &[&str] = &["sys.rs", "ingest/ring/"];

/// The code of a source file: comments removed, and everything from a `#[cfg(test)]` line
/// on (test modules close every file here).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// `crate::a::b` paths used in `code` (only the identifiers, up to three segments).
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let path = tail[..end].trim_end_matches(':');
        // `crate::{a, b}` would hide its paths; the tree never uses it (checked below).
        found.push(path.to_owned());
        rest = &tail[end.max(7)..];
    }
    found
}

fn names_crate(code: &str, krate: &str) -> bool {
    let pat = format!("{krate}::");
    code.match_indices(&pat).any(|(i, _)| {
        i == 0 || {
            let before = code.as_bytes()[i - 1] as char;
            !(before.is_alphanumeric() || before == '_' || before == ':')
        }
    })
}

/// Every violation in one file (`rel` is its path under `src/`).
fn violations(rel: &str, text: &str) -> Vec<String> {
    let code = code_of(text);
    let mut out = Vec::new();
    if code.contains("crate::{") {
        out.push(format!(
            "{rel}: `crate::{{…}}` groups hide paths from this check; import one path per line"
        ));
    }
    if names_crate(&code, "libc") && !LIBC_HOMES.iter().any(|h| rel.starts_with(h)) {
        out.push(format!(
            "{rel}: calls libc outside sys.rs and ingest/ring/ (put the call behind crate::sys)"
        ));
    }
    for rule in RULES.iter().filter(|r| rel.starts_with(r.part)) {
        for path in crate_paths(&code) {
            let allowed = rule
                .allow
                .is_none_or(|a| a.iter().any(|p| path.starts_with(p)));
            let denied = rule.deny.iter().any(|p| path.starts_with(p));
            if !allowed || denied {
                out.push(format!(
                    "{rel}: `{path}` crosses the layering of {}",
                    rule.part
                ));
            }
        }
        for krate in rule.no_crates {
            if names_crate(&code, krate) {
                out.push(format!(
                    "{rel}: names `{krate}`, forbidden in {}",
                    rule.part
                ));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_across_a_forbidden_direction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    let mut all = Vec::new();
    for f in &files {
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let rel = f
            .strip_prefix(&src)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(f).unwrap_or_default();
        all.extend(violations(&rel, &text));
    }
    assert!(all.is_empty(), "layering violations:\n{}", all.join("\n"));
}

#[test]
fn the_checker_catches_each_kind_of_violation() {
    let cases = [
        ("model/kind.rs", "use crate::wire::json::push_u64;\n"),
        (
            "wire/json.rs",
            "use crate::serve::filter::CompiledFilter;\n",
        ),
        ("wire/ws/frame.rs", "fn f() { glommio::spawn_local(x); }\n"),
        ("wire/protocol/gather.rs", "let v: libc::iovec = z;\n"),
        (
            "ingest/tailer/mod.rs",
            "use crate::serve::resume::ResumeStore;\n",
        ),
        ("ingest/tailer/mod.rs", "use crate::config::Config;\n"),
        ("serve/shard.rs", "use crate::ingest::chain::meta;\n"),
        (
            "handoff/published.rs",
            "use crate::ingest::chain::pipeline::ChainPipeline;\n",
        ),
        (
            "metrics.rs",
            "use crate::ingest::event::decode::DecodeErrorKind;\n",
        ),
        ("serve/session/mod.rs", "use crate::{a, b};\n"),
    ];
    for (rel, text) in cases {
        assert!(
            !violations(rel, text).is_empty(),
            "{rel}: {text:?} was not flagged"
        );
    }
    let fine = [
        ("ingest/tailer/idle.rs", "use crate::config::defaults;\n"),
        (
            "wire/json.rs",
            "// crate::serve is mentioned in a comment only\n",
        ),
        ("serve/shard.rs", "use crate::wire::http::ShardAdmission;\n"),
        (
            "ingest/ring/sys.rs",
            "let r = unsafe { libc::flock(fd, 0) };\n",
        ),
        (
            "wire/json.rs",
            "fn a() {}\n#[cfg(test)]\nmod tests { use crate::serve::x; }\n",
        ),
    ];
    for (rel, text) in fine {
        assert_eq!(
            violations(rel, text),
            Vec::<String>::new(),
            "{rel}: {text:?}"
        );
    }
}
