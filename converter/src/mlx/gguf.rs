//! A GGUF reader: metadata and tensor infos parsed up front (with every length and offset
//! checked against the file), tensor data borrowed from a read-only memory map one tensor at a
//! time.
//!
//! Layout (little-endian), as ggml's `gguf.cpp` writes it:
//! ```text
//! u32 magic "GGUF", u32 version (2 or 3), u64 n_tensors, u64 n_kv
//! n_kv × { string key, u32 type, value }          (string = u64 length + bytes)
//! n_tensors × { string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml_type,
//!               u64 offset (from the start of the data section) }
//! padding to `general.alignment` (default 32), then the tensor data
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, UncheckedAdvice};

use super::ggml::GgmlType;
use super::MlxError;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Sanity limits: a header field beyond these is corruption, not a real model.
const MAX_TENSORS: u64 = 1 << 20;
const MAX_KV: u64 = 1 << 20;
const MAX_DIMS: u32 = 4;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any unsigned integer type (`u8`, `u16`, `u32`, `u64`).
    U64(u64),
    /// Any signed integer type (`i8`, `i16`, `i32`, `i64`).
    I64(i64),
    /// `f32` or `f64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// An array (all elements of one type).
    Array(Vec<Value>),
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U64(v) => Some(v),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float (integers convert).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F64(v) => Some(v),
            Value::U64(v) => Some(v as f64),
            Value::I64(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One tensor's header entry, with its data range already checked against the file.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// GGUF tensor name (e.g. `blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, innermost (contiguous) first, as ggml stores them.
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub start: usize,
    /// Data length in bytes.
    pub len: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Elements per row (the innermost dimension).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows (the product of the outer dimensions).
    pub fn rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
}

/// An open, validated GGUF file.
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Key/value metadata.
    pub metadata: BTreeMap<String, Value>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
}

struct Cursor<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn corrupt(&self, reason: impl Into<String>) -> MlxError {
        MlxError::Corrupt {
            path: self.path.to_path_buf(),
            offset: self.pos as u64,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], MlxError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let slice = &self.data[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            None => Err(self.corrupt(format!(
                "truncated: {what} needs {n} bytes, the file has {} left",
                self.data.len() - self.pos
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], MlxError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, MlxError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, MlxError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn len(&mut self, what: &str, elem_size: usize) -> Result<usize, MlxError> {
        let at = self.pos;
        let n = self.u64(what)?;
        let left = (self.data.len() - self.pos) as u64;
        if n.saturating_mul(elem_size.max(1) as u64) > left {
            self.pos = at;
            return Err(self.corrupt(format!(
                "truncated or corrupt: {what}: length {n} runs past the end of the file \
                 ({left} bytes left)"
            )));
        }
        usize::try_from(n).map_err(|_| self.corrupt(format!("{what}: length {n} too large")))
    }

    fn string(&mut self, what: &str) -> Result<String, MlxError> {
        let n = self.len(what, 1)?;
        let at = self.pos;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| MlxError::Corrupt {
            path: self.path.to_path_buf(),
            offset: at as u64,
            reason: format!("{what} is not valid UTF-8"),
        })
    }

    fn value(&mut self, value_type: u32, what: &str, depth: u32) -> Result<Value, MlxError> {
        Ok(match value_type {
            0 => Value::U64(u64::from(self.array::<1>(what)?[0])),
            1 => Value::I64(i64::from(self.array::<1>(what)?[0] as i8)),
            2 => Value::U64(u64::from(u16::from_le_bytes(self.array(what)?))),
            3 => Value::I64(i64::from(i16::from_le_bytes(self.array(what)?))),
            4 => Value::U64(u64::from(self.u32(what)?)),
            5 => Value::I64(i64::from(i32::from_le_bytes(self.array(what)?))),
            6 => Value::F64(f64::from(f32::from_le_bytes(self.array(what)?))),
            7 => match self.array::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.corrupt(format!("{what}: bool byte {b}"))),
            },
            8 => Value::String(self.string(what)?),
            9 => {
                if depth > 0 {
                    return Err(self.corrupt(format!("{what}: nested arrays are not supported")));
                }
                let elem_type = self.u32(what)?;
                let min_size = match elem_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    _ => 1,
                };
                let n = self.len(what, min_size)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem_type, what, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(self.corrupt(format!("{what}: unknown value type {other}"))),
        })
    }
}

impl GgufFile {
    /// Opens and validates `path`: the header, every metadata value and every tensor's data
    /// range (type known, shape consistent, bytes inside the file).
    pub fn open(path: &Path) -> Result<Self, MlxError> {
        let io_err = |error| MlxError::Io {
            path: path.to_path_buf(),
            error,
        };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: the map is read-only; the converter does not expect the file to change while
        // it runs (like every mmap-based model loader). A concurrent truncation would be a
        // SIGBUS, not silent corruption.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        let (version, metadata, tensors) = Self::parse(path, &map)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            version,
            metadata,
            tensors,
        })
    }

    #[allow(clippy::type_complexity)]
    fn parse(
        path: &Path,
        data: &[u8],
    ) -> Result<(u32, BTreeMap<String, Value>, Vec<TensorInfo>), MlxError> {
        let mut c = Cursor { path, data, pos: 0 };
        let magic = c.take(4, "magic")?;
        if magic != MAGIC {
            c.pos = 0;
            return Err(c.corrupt(format!("not a GGUF file (magic {magic:02x?})")));
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(c.corrupt(format!("unsupported GGUF version {version}")));
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        if n_tensors > MAX_TENSORS || n_kv > MAX_KV {
            return Err(c.corrupt(format!(
                "implausible header: {n_tensors} tensors, {n_kv} metadata keys"
            )));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let value_type = c.u32(&key)?;
            let value = c.value(value_type, &key, 0)?;
            metadata.insert(key, value);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(c.corrupt(format!("general.alignment {v:?} is not a power of two")))
                }
            },
        };
        let mut raw = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let n_dims = c.u32(&name)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(c.corrupt(format!("tensor {name}: {n_dims} dimensions")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&name)?);
            }
            let type_id = c.u32(&name)?;
            let offset = c.u64(&name)?;
            raw.push((name, dims, type_id, offset, c.pos));
        }
        let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
        let file_len = data.len() as u64;
        let mut tensors = Vec::with_capacity(raw.len());
        for (name, dims, type_id, offset, at) in raw {
            let corrupt = |reason: String| MlxError::Corrupt {
                path: path.to_path_buf(),
                offset: at as u64,
                reason: format!("tensor {name}: {reason}"),
            };
            let ggml_type = GgmlType::from_id(type_id)
                .ok_or_else(|| corrupt(format!("unknown ggml type {type_id}")))?;
            let elements = dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n > 0)
                .ok_or_else(|| corrupt(format!("invalid shape {dims:?}")))?;
            if !dims[0].is_multiple_of(ggml_type.block_size) {
                return Err(corrupt(format!(
                    "row length {} is not a multiple of the {} block size {}",
                    dims[0], ggml_type.name, ggml_type.block_size
                )));
            }
            let len = elements / ggml_type.block_size * ggml_type.type_size;
            if !offset.is_multiple_of(alignment) {
                return Err(corrupt(format!(
                    "data offset {offset} is not aligned to {alignment}"
                )));
            }
            let start = data_start.checked_add(offset);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(start), Some(end)) if end <= file_len => tensors.push(TensorInfo {
                    name: name.clone(),
                    dims,
                    ggml_type,
                    start: usize::try_from(start)
                        .map_err(|_| corrupt("offset too large".into()))?,
                    len: usize::try_from(len).map_err(|_| corrupt("too large".into()))?,
                }),
                _ => {
                    return Err(corrupt(format!(
                        "data (bytes {}..{}) runs past the end of the file ({file_len} bytes): \
                         the file is truncated",
                        data_start.saturating_add(offset),
                        data_start.saturating_add(offset).saturating_add(len)
                    )))
                }
            }
        }
        Ok((version, metadata, tensors))
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw bytes of `tensor` (checked in [`GgufFile::open`]).
    pub fn data(&self, tensor: &TensorInfo) -> &[u8] {
        &self.map[tensor.start..tensor.start + tensor.len]
    }

    /// Drops `tensor`'s pages from this process once converted, so resident memory stays near
    /// one tensor rather than growing to the whole file (the page cache keeps them).
    pub fn release(&self, tensor: &TensorInfo) {
        const PAGE: usize = 4096;
        let start = tensor.start / PAGE * PAGE;
        let end = (tensor.start + tensor.len).min(self.map.len());
        if end > start {
            // SAFETY: the mapping is read-only and file-backed and the caller holds no slice of
            // these pages any more; pages touched again are read back from the file, so
            // MADV_DONTNEED cannot change what is read.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}
