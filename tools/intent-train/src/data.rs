//! Labelled JSONL data: one `{"text": ..., "intent": ...}` object per line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchyard_intent::Intent;

use crate::TrainError;

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The request text.
    pub text: String,
    /// Its intent.
    pub intent: Intent,
}

/// A data file, parsed, with the hash of its bytes.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The file it was read from.
    pub path: PathBuf,
    /// SHA-256 (hex) of the file's bytes.
    pub sha256: String,
    /// The examples, in file order.
    pub examples: Vec<Example>,
}

impl Dataset {
    /// Examples per label, keyed by label string.
    pub fn per_label(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.examples {
            *counts.entry(e.intent.as_str().to_owned()).or_insert(0) += 1;
        }
        counts
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: String,
    intent: String,
}

/// Reads a JSONL data file. Blank lines are skipped; anything else that is not a
/// `{"text", "intent"}` object with a known label is an error naming the line.
pub fn load_jsonl(path: &Path) -> Result<Dataset, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let data_error = |line: usize, message: String| TrainError::Data {
        path: path.to_path_buf(),
        line,
        message,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| data_error(0, e.to_string()))?;
    let mut examples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line =
            serde_json::from_str(line).map_err(|e| data_error(i + 1, e.to_string()))?;
        let intent = parsed
            .intent
            .parse::<Intent>()
            .map_err(|e| data_error(i + 1, e.to_string()))?;
        examples.push(Example {
            text: parsed.text,
            intent,
        });
    }
    if examples.is_empty() {
        return Err(data_error(0, "no examples".into()));
    }
    Ok(Dataset {
        path: path.to_path_buf(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        examples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_reports_bad_ones_by_number() {
        let dir = std::env::temp_dir().join(format!("tier-b-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.jsonl");
        std::fs::write(
            &good,
            "{\"text\": \"hi\", \"intent\": \"chat\"}\n\n{\"text\": \"say it\", \"intent\": \"tts\"}\n",
        )
        .unwrap();
        let d = load_jsonl(&good).unwrap();
        assert_eq!(d.examples.len(), 2);
        assert_eq!(d.examples[1].intent, Intent::Tts);
        assert_eq!(d.sha256.len(), 64);
        assert_eq!(d.per_label().get("chat"), Some(&1));

        let bad = dir.join("bad.jsonl");
        std::fs::write(
            &bad,
            "{\"text\": \"hi\", \"intent\": \"chat\"}\n{\"text\": \"x\", \"intent\": \"poetry\"}\n",
        )
        .unwrap();
        let err = load_jsonl(&bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.jsonl:2:") && err.contains("poetry"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
