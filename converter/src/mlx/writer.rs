//! A streaming safetensors writer: every tensor's name, dtype, shape and size is known before
//! any data is produced, so the header is written first and the data follows one tensor at a
//! time (nothing holds the whole model in memory).
//!
//! Format: `u64` little-endian header length `N`, `N` bytes of JSON (`{name: {dtype, shape,
//! data_offsets: [begin, end]}, "__metadata__": {...}}`, space-padded to a multiple of 8),
//! then the data, each tensor at its offsets.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value as Json};

use super::MlxError;

/// One planned output tensor.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Tensor name.
    pub name: String,
    /// safetensors dtype (`U32`, `F16`, `F32`).
    pub dtype: &'static str,
    /// Shape.
    pub shape: Vec<u64>,
    /// Data length in bytes.
    pub bytes: usize,
}

impl Entry {
    /// A planned tensor.
    pub fn new(name: String, dtype: &'static str, shape: Vec<u64>, bytes: usize) -> Self {
        Entry {
            name,
            dtype,
            shape,
            bytes,
        }
    }
}

/// One shard file and the groups of entries (one group per source tensor) it holds.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    /// File name inside the output folder.
    pub file: String,
    /// Entries, grouped by source tensor, in write order.
    pub groups: Vec<Vec<Entry>>,
}

/// Splits the groups into shards of at most `max_bytes` (a group larger than that gets a shard
/// of its own). One shard is named `model.safetensors`, several `model-0000i-of-0000n…`.
pub fn plan_shards(groups: &[Vec<Entry>], max_bytes: u64) -> Vec<ShardPlan> {
    let mut shards: Vec<Vec<Vec<Entry>>> = vec![Vec::new()];
    let mut size = 0u64;
    for group in groups {
        let bytes: u64 = group.iter().map(|e| e.bytes as u64).sum();
        let last_empty = shards.last().is_none_or(Vec::is_empty);
        if !last_empty && size + bytes > max_bytes {
            shards.push(Vec::new());
            size = 0;
        }
        if let Some(last) = shards.last_mut() {
            last.push(group.clone());
        }
        size += bytes;
    }
    let n = shards.len();
    shards
        .into_iter()
        .enumerate()
        .map(|(i, groups)| ShardPlan {
            file: if n == 1 {
                "model.safetensors".into()
            } else {
                format!("model-{:05}-of-{n:05}.safetensors", i + 1)
            },
            groups,
        })
        .collect()
}

/// `model.safetensors.index.json` for several shards.
pub fn index_json(shards: &[ShardPlan]) -> Json {
    let mut map = Map::new();
    let mut total = 0u64;
    for shard in shards {
        for entry in shard.groups.iter().flatten() {
            map.insert(entry.name.clone(), Json::String(shard.file.clone()));
            total += entry.bytes as u64;
        }
    }
    json!({"metadata": {"total_size": total}, "weight_map": map})
}

/// The header of a shard: JSON bytes, space-padded so the data starts 8-byte aligned.
pub fn header(shard: &ShardPlan) -> Vec<u8> {
    let mut map = Map::new();
    map.insert("__metadata__".into(), json!({"format": "mlx"}));
    let mut offset = 0usize;
    for entry in shard.groups.iter().flatten() {
        map.insert(
            entry.name.clone(),
            json!({
                "dtype": entry.dtype,
                "shape": entry.shape,
                "data_offsets": [offset, offset + entry.bytes],
            }),
        );
        offset += entry.bytes;
    }
    let mut bytes = Json::Object(map).to_string().into_bytes();
    while !bytes.len().is_multiple_of(8) {
        bytes.push(b' ');
    }
    bytes
}

/// Writes one shard: the header at creation, then each planned tensor in order.
pub struct ShardWriter {
    path: PathBuf,
    out: BufWriter<File>,
    expected: Vec<Entry>,
    next: usize,
}

impl ShardWriter {
    /// Creates `path` and writes the header of `shard`.
    pub fn create(path: &Path, shard: &ShardPlan) -> Result<Self, MlxError> {
        let io = |error| MlxError::Io {
            path: path.to_path_buf(),
            error,
        };
        let file = File::create(path).map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let head = header(shard);
        out.write_all(&(head.len() as u64).to_le_bytes())
            .map_err(io)?;
        out.write_all(&head).map_err(io)?;
        Ok(ShardWriter {
            path: path.to_path_buf(),
            out,
            expected: shard.groups.iter().flatten().cloned().collect(),
            next: 0,
        })
    }

    /// Writes the next tensor's data; its length must be the planned one.
    pub fn write_tensor(&mut self, data: &[u8]) -> Result<(), MlxError> {
        let entry = self
            .expected
            .get(self.next)
            .ok_or_else(|| MlxError::Verify {
                path: self.path.clone(),
                reason: "more tensors written than planned".into(),
            })?;
        if entry.bytes != data.len() {
            return Err(MlxError::Verify {
                path: self.path.clone(),
                reason: format!(
                    "{}: {} bytes produced, {} planned",
                    entry.name,
                    data.len(),
                    entry.bytes
                ),
            });
        }
        self.out.write_all(data).map_err(|error| MlxError::Io {
            path: self.path.clone(),
            error,
        })?;
        self.next += 1;
        Ok(())
    }

    /// Flushes and syncs the file; every planned tensor must have been written.
    pub fn finish(self) -> Result<(), MlxError> {
        if self.next != self.expected.len() {
            return Err(MlxError::Verify {
                path: self.path,
                reason: format!("{} of {} tensors written", self.next, self.expected.len()),
            });
        }
        let io = |error| MlxError::Io {
            path: self.path.clone(),
            error,
        };
        let file = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)
    }
}
