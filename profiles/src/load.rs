//! Parsing TOML into typed profiles, with every error located as `file:line: key`.
//!
//! Each file is parsed twice: once by `toml_edit` into a span-carrying document (used to find
//! the line of any dotted key path, for type errors and for validation errors alike), and once
//! by `toml`'s serde deserializer wrapped in `serde_path_to_error` (which names the failing key).

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml_edit::{ArrayOfTables, ImDocument, InlineTable, Item, Table, Value};

use crate::error::{Diagnostic, ProfileError, ProfileKind};

/// A parsed TOML file that can say on which line a key path sits.
pub(crate) struct Doc {
    file: String,
    doc: ImDocument<String>,
}

impl Doc {
    /// Parses `text` (syntax only); `file` names it in diagnostics.
    pub(crate) fn parse(text: &str, file: &str) -> Result<Doc, ProfileError> {
        match ImDocument::parse(text.to_owned()) {
            Ok(doc) => Ok(Doc {
                file: file.to_owned(),
                doc,
            }),
            Err(e) => {
                let line = e.span().map(|s| line_at(text, s.start));
                let message = e
                    .message()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(ProfileError::at(file, line, "", message))
            }
        }
    }

    /// The file name used in diagnostics.
    pub(crate) fn file(&self) -> &str {
        &self.file
    }

    /// Whether the top-level table has this key.
    pub(crate) fn has_top_level(&self, key: &str) -> bool {
        self.doc.as_table().contains_key(key)
    }

    /// Deserializes the document into `T`, naming the failing key and its line on error.
    pub(crate) fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ProfileError> {
        let text = self.doc.raw();
        let de = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(de).map_err(|err| {
            let mut key = path_string(err.path());
            let inner = err.inner();
            let message = inner.message().trim().to_owned();
            if let Some(field) = named_field(&message) {
                if key.rsplit('.').next() != Some(field) {
                    key = if key.is_empty() {
                        field.to_owned()
                    } else {
                        format!("{key}.{field}")
                    };
                }
            }
            let line = self
                .line_of_exact(&key)
                .or_else(|| inner.span().map(|s| line_at(text, s.start)))
                .or_else(|| self.line_of(&key));
            ProfileError::at(&self.file, line, &key, message)
        })
    }

    /// Turns validation issues into located diagnostics (`Ok` when there are none).
    pub(crate) fn check(&self, issues: Issues) -> Result<(), ProfileError> {
        if issues.list.is_empty() {
            return Ok(());
        }
        let list = issues
            .list
            .into_iter()
            .map(|(key, message)| Diagnostic {
                file: self.file.clone(),
                line: self.line_of(&key),
                key,
                message,
            })
            .collect();
        Err(ProfileError::Invalid(list))
    }

    /// One located problem at `key`.
    pub(crate) fn error_at(&self, key: &str, message: String) -> ProfileError {
        ProfileError::at(&self.file, self.line_of(key), key, message)
    }

    /// Line of `key`, or of the closest enclosing table or array entry the file does contain.
    pub(crate) fn line_of(&self, key: &str) -> Option<usize> {
        let (span, _) = self.span_of(key)?;
        Some(line_at(self.doc.raw(), span.start))
    }

    /// Line of `key` only when the file contains that exact key.
    fn line_of_exact(&self, key: &str) -> Option<usize> {
        match self.span_of(key)? {
            (span, true) => Some(line_at(self.doc.raw(), span.start)),
            (_, false) => None,
        }
    }

    /// Span of the deepest node on `key`'s path, and whether that was the whole path.
    fn span_of(&self, key: &str) -> Option<(Range<usize>, bool)> {
        let segments = split_path(key);
        if segments.is_empty() {
            return None;
        }
        let mut node = Node::Table(self.doc.as_table());
        let mut best = None;
        let mut walked = 0;
        for segment in &segments {
            let step = match (node, segment) {
                (Node::Table(t), Segment::Key(k)) => t
                    .get_key_value(k)
                    .map(|(key, item)| (key.span().or_else(|| item.span()), Node::item(item))),
                (Node::Inline(t), Segment::Key(k)) => t
                    .get_key_value(k)
                    .map(|(key, item)| (key.span().or_else(|| item.span()), Node::item(item))),
                (Node::Tables(a), Segment::Index(i)) => {
                    a.get(*i).map(|t| (t.span(), Node::Table(t)))
                }
                (Node::Array(a), Segment::Index(i)) => {
                    a.get(*i).map(|v| (v.span(), Node::value(v)))
                }
                _ => None,
            };
            let Some((span, next)) = step else { break };
            if span.is_some() {
                best = span;
            }
            node = next;
            walked += 1;
        }
        best.map(|span| (span, walked == segments.len()))
    }
}

/// Validation problems gathered before they are located: `(dotted key, message)`.
#[derive(Debug, Default)]
pub(crate) struct Issues {
    list: Vec<(String, String)>,
}

impl Issues {
    /// Records a problem at `key` (dotted path, `[i]` for array entries).
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push((key.into(), message.into()));
    }
}

/// Parses and validates one profile file of a known kind.
pub(crate) fn parse_checked<T: DeserializeOwned>(
    text: &str,
    file: &str,
    validate: impl FnOnce(&T, &mut Issues),
) -> Result<(T, Doc), ProfileError> {
    let doc = Doc::parse(text, file)?;
    let value: T = doc.deserialize()?;
    let mut issues = Issues::default();
    validate(&value, &mut issues);
    doc.check(issues)?;
    Ok((value, doc))
}

/// Tells a device profile from a policy profile by the top-level tables it has.
pub(crate) fn detect_kind(doc: &Doc) -> Option<ProfileKind> {
    // `[memory]` and `[thermal]` appear in both kinds, so they do not count.
    const DEVICE: [&str; 4] = ["hardware", "engine", "prefer", "source"];
    const POLICY: [&str; 6] = [
        "routes",
        "tiers",
        "classifier",
        "hints",
        "learned",
        "scoring",
    ];
    let device = DEVICE.iter().any(|k| doc.has_top_level(k));
    let policy = POLICY.iter().any(|k| doc.has_top_level(k));
    match (device, policy) {
        (true, false) => Some(ProfileKind::Device),
        (false, true) => Some(ProfileKind::Policy),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
    Tables(&'a ArrayOfTables),
    Array(&'a toml_edit::Array),
    Leaf,
}

impl<'a> Node<'a> {
    fn item(item: &'a Item) -> Node<'a> {
        match item {
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::Tables(a),
            Item::Value(v) => Node::value(v),
            Item::None => Node::Leaf,
        }
    }

    fn value(value: &'a Value) -> Node<'a> {
        match value {
            Value::InlineTable(t) => Node::Inline(t),
            Value::Array(a) => Node::Array(a),
            _ => Node::Leaf,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `routes[2].tier` into `routes`, `2`, `tier`.
fn split_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                out.push(Segment::Key(rest[..open].to_owned()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else {
            out.push(Segment::Key(rest.to_owned()));
        }
    }
    out
}

/// `serde_path_to_error`'s path as `a.b[2].c`, empty for the root.
fn path_string(path: &serde_path_to_error::Path) -> String {
    let s = path.to_string();
    if s == "." {
        String::new()
    } else {
        s
    }
}

/// The field named by serde's "unknown field `x`, expected ..." or "missing field `x`".
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next()
}

/// 1-based line number of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_indices() {
        assert_eq!(
            split_path("routes[2].tier"),
            vec![
                Segment::Key("routes".into()),
                Segment::Index(2),
                Segment::Key("tier".into())
            ]
        );
        assert_eq!(split_path(""), vec![]);
    }

    #[test]
    fn lines_of_nested_keys() {
        let text = "name = \"x\"\n\n[thermal]\nthrottle_c = 1\n\n[[routes]]\ntier = \"a\"\n\n[[routes]]\ntier = \"b\"\nlist = [1,\n 2]\n";
        let doc = Doc::parse(text, "t.toml").unwrap();
        assert_eq!(doc.line_of("name"), Some(1));
        assert_eq!(doc.line_of("thermal.throttle_c"), Some(4));
        assert_eq!(doc.line_of("thermal.missing"), Some(3));
        assert_eq!(doc.line_of("routes[1].tier"), Some(10));
        assert_eq!(doc.line_of("routes[1].list[1]"), Some(12));
        assert_eq!(doc.line_of("nowhere"), None);
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = Doc::parse("a = 1\nb = = 2\n", "bad.toml").err().unwrap();
        assert!(err.to_string().starts_with("bad.toml:2: "), "{err}");
    }
}
