//! Reader for CTranslate2's `model.bin` (binary format version 5/6): a memory-mapped file that
//! is parsed once into a table of variables (name → shape, dtype, byte range), without copying
//! any tensor data.
//!
//! Layout (little-endian), as written by `ctranslate2.specs.ModelSpec.save`:
//! ```text
//! u32 binary_version
//! str spec_name            (version >= 2)
//! u32 spec_revision        (version >= 2)
//! u32 n_variables
//!   str name; u8 rank; u32 dims[rank]; u8 dtype; u32 n_bytes; u8 data[n_bytes]
//! u32 n_aliases            (version >= 3)
//!   str alias; str variable_name
//! ```
//! where `str` is `u16 len` (including a trailing NUL) followed by `len` bytes.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::mapped::Mapped;

use super::ConvertError;

/// Element type of a CTranslate2 variable (ids from CTranslate2's `DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ct2DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Ct2DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// Size of one element in bytes.
    pub(crate) fn size(self) -> usize {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 => 1,
        }
    }
}

/// One variable of the model: its layout and where its bytes sit in the mapping.
#[derive(Debug, Clone)]
pub(crate) struct Variable {
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: Ct2DType,
    range: Range<usize>,
}

/// A parsed, memory-mapped `model.bin`.
pub(crate) struct Ct2Model {
    path: PathBuf,
    map: Mapped,
    /// Binary format version.
    pub(crate) version: u32,
    /// Spec class name (`WhisperSpec`, `TransformerSpec`, ...).
    pub(crate) spec: String,
    vars: HashMap<String, Variable>,
    aliases: HashMap<String, String>,
}

struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ConvertError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| ConvertError::Corrupt {
                path: self.path.to_path_buf(),
                offset: self.pos as u64,
                reason: format!(
                    "truncated: {what} needs {n} bytes but only {} remain",
                    self.bytes.len().saturating_sub(self.pos)
                ),
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ConvertError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ConvertError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ConvertError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, ConvertError> {
        let at = self.pos;
        let len = self.u16(what)? as usize;
        let raw = self.take(len, what)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| ConvertError::Corrupt {
            path: self.path.to_path_buf(),
            offset: at as u64,
            reason: format!("{what} is not valid UTF-8"),
        })
    }

    fn corrupt(&self, reason: String) -> ConvertError {
        ConvertError::Corrupt {
            path: self.path.to_path_buf(),
            offset: self.pos as u64,
            reason,
        }
    }
}

/// Variables above this count are treated as corruption rather than allocated for.
const MAX_VARIABLES: u32 = 1 << 20;

impl Ct2Model {
    /// Maps and parses `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, ConvertError> {
        let file = File::open(path).map_err(|error| ConvertError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let map = Mapped::new(&file).map_err(|error| ConvertError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let mut cur = Cursor {
            path,
            bytes: map.bytes(),
            pos: 0,
        };
        let version = cur.u32("binary version")?;
        if !(5..=6).contains(&version) {
            return Err(cur.corrupt(format!(
                "unsupported CTranslate2 binary version {version} (this converter reads 5 and 6)"
            )));
        }
        let spec = cur.string("spec name")?;
        let _revision = cur.u32("spec revision")?;
        let n_vars = cur.u32("variable count")?;
        if n_vars > MAX_VARIABLES {
            return Err(cur.corrupt(format!("implausible variable count {n_vars}")));
        }
        let mut vars = HashMap::with_capacity(n_vars as usize);
        for _ in 0..n_vars {
            let name = cur.string("variable name")?;
            let rank = cur.u8("variable rank")? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(cur.u32("variable dimension")? as usize);
            }
            let dtype_id = cur.u8("variable dtype")?;
            let dtype = Ct2DType::from_id(dtype_id).ok_or_else(|| {
                cur.corrupt(format!("variable {name:?} has unknown dtype id {dtype_id}"))
            })?;
            let n_bytes = cur.u32("variable size")? as usize;
            let numel = shape
                .iter()
                .try_fold(1usize, |acc, d| acc.checked_mul(*d))
                .ok_or_else(|| cur.corrupt(format!("variable {name:?} shape overflows")))?;
            if numel.checked_mul(dtype.size()) != Some(n_bytes) {
                return Err(cur.corrupt(format!(
                    "variable {name:?} {shape:?} {dtype:?} should hold {} bytes, header says {n_bytes}",
                    numel.saturating_mul(dtype.size())
                )));
            }
            let start = cur.pos;
            cur.take(n_bytes, &format!("data of variable {name:?}"))?;
            vars.insert(
                name,
                Variable {
                    shape,
                    dtype,
                    range: start..start + n_bytes,
                },
            );
        }
        let mut aliases = HashMap::new();
        let n_aliases = cur.u32("alias count")?;
        if n_aliases > MAX_VARIABLES {
            return Err(cur.corrupt(format!("implausible alias count {n_aliases}")));
        }
        for _ in 0..n_aliases {
            let alias = cur.string("alias name")?;
            let target = cur.string("alias target")?;
            aliases.insert(alias, target);
        }
        if cur.pos != map.bytes().len() {
            return Err(cur.corrupt(format!(
                "{} unexpected trailing bytes after the alias table",
                map.bytes().len() - cur.pos
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            map,
            version,
            spec,
            vars,
            aliases,
        })
    }

    /// The variable called `name` (following aliases).
    pub(crate) fn var(&self, name: &str) -> Result<&Variable, ConvertError> {
        let resolved = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.vars
            .get(resolved)
            .ok_or_else(|| ConvertError::Architecture {
                path: self.path.clone(),
                reason: format!("variable {name:?} is missing"),
            })
    }

    /// Whether a variable (or alias) called `name` exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.vars.contains_key(name) || self.aliases.contains_key(name)
    }

    /// The raw bytes of a variable.
    pub(crate) fn data(&self, var: &Variable) -> &[u8] {
        &self.map.bytes()[var.range.clone()]
    }

    /// Says `part` (a slice of [`Self::data`]) has been converted: its pages are handed back
    /// in batches, so resident memory stays near the tensor being converted.
    pub(crate) fn release(&self, part: &[u8]) {
        self.map.release(part);
    }

    /// An integer scalar (e.g. `encoder/num_heads`).
    pub(crate) fn scalar_int(&self, name: &str) -> Result<i64, ConvertError> {
        let var = self.var(name)?;
        let b = self.data(var);
        let value = match (var.dtype, b.len()) {
            (Ct2DType::I8, 1) => i64::from(b[0] as i8),
            (Ct2DType::I16, 2) => i64::from(i16::from_le_bytes([b[0], b[1]])),
            (Ct2DType::I32, 4) => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => {
                return Err(ConvertError::Architecture {
                    path: self.path.clone(),
                    reason: format!(
                        "{name:?} should be an integer scalar, found {:?} {:?}",
                        var.dtype, var.shape
                    ),
                })
            }
        };
        Ok(value)
    }

    /// Path of the file, for error messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
