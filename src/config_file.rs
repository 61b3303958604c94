//! `ringgate serve --config FILE`: a TOML file whose keys are the command's long flags, turned
//! into the command-line arguments it stands for.
//!
//! Every flag of `serve` (and `check`) is a key of the same name (`session-queue = 4096`,
//! `no-pin = true`), so the file cannot drift from the flags: this module reads the flag list
//! from the clap command itself, and each value is checked by that flag's own parser. The
//! caller puts the file's arguments *before* the real command line and lets the last
//! occurrence win, so flags on the command line override the file, and defaults stay the
//! constants in `config::defaults` (the file and the flags share them).
//!
//! Errors name the key, the file and the line: an unknown key, a value of the wrong type, a
//! table (the file is flat), invalid TOML. Runs once on the main thread before anything starts.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub struct ConfigFileError {
    pub path: PathBuf,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Reads `path` and returns the arguments it stands for, for `command` (the `serve` or
/// `check` subcommand). Keys that name no flag of `command`, and `config` itself, are errors.
pub fn read_args(path: &Path, command: &clap::Command) -> Result<Vec<OsString>, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
        path: path.to_path_buf(),
        line: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    parse_args(path, &text, command)
}

/// [`read_args`] on the file's text (the seam the tests use).
pub fn parse_args(
    path: &Path,
    text: &str,
    command: &clap::Command,
) -> Result<Vec<OsString>, ConfigFileError> {
    let err = |line: Option<usize>, message: String| ConfigFileError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        err(line, format!("not valid TOML: {}", e.message()))
    })?;
    let mut args = Vec::new();
    for (key, value) in &table {
        let line = line_of_key(text, key).or_else(|| line_of_table(text, key));
        if value.is_table() {
            return Err(err(
                line,
                format!("`{key}` is a table; the config file is flat (one key per flag)"),
            ));
        }
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != "config" && key != "help");
        let Some(arg) = arg else {
            let known: Vec<&str> = command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| *l != "config" && *l != "help")
                .collect();
            return Err(err(
                line,
                format!(
                    "unknown key `{key}` (the keys are the flags of `ringgate {}`: {})",
                    command.get_name(),
                    known.join(", ")
                ),
            ));
        };
        let is_switch = matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
        );
        if is_switch {
            match value {
                toml::Value::Boolean(true) => args.push(OsString::from(format!("--{key}"))),
                toml::Value::Boolean(false) => {}
                other => {
                    return Err(err(
                        line,
                        format!(
                            "`{key}` is a switch: write true or false, not a {}",
                            other.type_str()
                        ),
                    ))
                }
            }
            continue;
        }
        let text_value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s.clone()),
                        toml::Value::Integer(n) => parts.push(n.to_string()),
                        other => {
                            return Err(err(
                                line,
                                format!(
                                    "`{key}`: list items must be strings, not a {}",
                                    other.type_str()
                                ),
                            ))
                        }
                    }
                }
                parts.join(",")
            }
            toml::Value::Table(_) => unreachable!("tables are refused above"),
            toml::Value::Datetime(d) => d.to_string(),
        };
        // The flag's own parser decides: parse just this one flag with the command.
        let flag = format!("--{key}");
        if let Err(e) = command
            .clone()
            .no_binary_name(true)
            .try_get_matches_from([flag.as_str(), text_value.as_str()])
        {
            return Err(err(
                line,
                format!("`{key}` = {text_value:?}: {}", first_line(&e.to_string())),
            ));
        }
        args.push(OsString::from(format!("--{key}")));
        args.push(OsString::from(text_value));
    }
    Ok(args)
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim_start_matches("error: ")
}

/// 1-based line of byte `offset` in `text`.
fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// 1-based line of the table header `[key]`, if there is one.
fn line_of_table(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim() == format!("[{key}]"))
        .map(|i| i + 1)
}

/// 1-based line where `key` is assigned (`key =`, possibly quoted), if it can be found.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let rest = l
                .strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| l.strip_prefix(&format!("'{key}'")));
            rest.is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn serve() -> Command {
        Command::new("serve")
            .arg(Arg::new("listen").long("listen"))
            .arg(
                Arg::new("session_queue")
                    .long("session-queue")
                    .value_parser(clap::value_parser!(usize)),
            )
            .arg(Arg::new("no_pin").long("no-pin").action(ArgAction::SetTrue))
            .arg(Arg::new("gates").long("gates"))
            .arg(Arg::new("config").long("config"))
    }

    fn parse(text: &str) -> Result<Vec<String>, ConfigFileError> {
        parse_args(Path::new("/etc/ringgate.toml"), text, &serve())
            .map(|v| v.into_iter().map(|s| s.into_string().unwrap()).collect())
    }

    #[test]
    fn keys_become_the_flags_of_the_same_name() {
        let args = parse(
            "# comment\nlisten = \"0.0.0.0:8443\"\nsession-queue = 8192\nno-pin = true\n\
             gates = [\"voted\", \"finalized\"]\n",
        )
        .unwrap();
        assert_eq!(
            args,
            [
                "--gates",
                "voted,finalized",
                "--listen",
                "0.0.0.0:8443",
                "--no-pin",
                "--session-queue",
                "8192"
            ]
        );
        assert_eq!(parse("no-pin = false\n").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_key_names_the_key_the_file_and_the_line() {
        let e = parse("listen = \"127.0.0.1:1\"\n\nsesion-queue = 5\n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("/etc/ringgate.toml:3: unknown key `sesion-queue`"),
            "{text}"
        );
        assert!(
            text.contains("session-queue"),
            "the known keys are listed: {text}"
        );
        let e = parse("config = \"/x\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown key `config`"), "{e}");
    }

    #[test]
    fn wrong_types_tables_and_bad_toml_are_errors_with_their_line() {
        let e = parse("listen = \"x\"\nsession-queue = \"many\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("`session-queue`"), "{e}");
        let e = parse("no-pin = 1\n").unwrap_err();
        assert!(e.to_string().contains("is a switch"), "{e}");
        let e = parse("[server]\nlisten = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("flat"), "{e}");
        let e = parse("listen = \n").unwrap_err();
        assert!(e.to_string().contains("not valid TOML"), "{e}");
        assert_eq!(e.line, Some(1));
    }
}
