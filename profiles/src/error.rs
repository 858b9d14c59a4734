//! The crate's one error type and its `file:line: key: message` diagnostics.

use std::fmt;
use std::path::PathBuf;

/// Which kind of profile a file or name holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    /// A device profile (`[hardware]`, `[engine]`, `[memory]`, `[thermal]`, `[[prefer]]`).
    Device,
    /// A policy profile (`[tiers.*]`, `[[routes]]`, `[classifier]`, ...).
    Policy,
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileKind::Device => "device",
            ProfileKind::Policy => "policy",
        })
    }
}

/// One problem in one file, located as precisely as the TOML allows.
///
/// Displays as `file:line: key: message`; the line is left out when unknown (a key the file
/// does not contain and whose parent table is not in the file either), the key when the problem
/// is the file's syntax rather than one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file: a path as given, or `builtin:devices/NAME.toml` for a built-in.
    pub file: String,
    /// 1-based line of the offending key (or of its closest enclosing table), when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `thermal.critical_c` or `routes[2].tier`; empty for syntax errors.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors loading, parsing, validating or resolving a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No built-in profile of this kind has this name (and it is not a path).
    #[error("unknown {kind} profile '{name}' (built-in: {known})")]
    Unknown {
        /// Device or policy.
        kind: ProfileKind,
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// A profile file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid profile: syntax, unknown keys, wrong types, or
    /// values that fail validation. One diagnostic per line of the message.
    #[error("{}", join(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ProfileError {
    /// The located problems (empty for `Unknown` and `Io`).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ProfileError::Invalid(list) => list,
            _ => &[],
        }
    }

    /// One located problem.
    pub(crate) fn at(file: &str, line: Option<usize>, key: &str, message: String) -> Self {
        ProfileError::Invalid(vec![Diagnostic {
            file: file.to_owned(),
            line,
            key: key.to_owned(),
            message,
        }])
    }
}

fn join(list: &[Diagnostic]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
