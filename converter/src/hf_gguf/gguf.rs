//! A streaming GGUF (version 3) writer: the header, the key/value metadata and the tensor
//! infos are written first, then each tensor's data in order, padded to the alignment.
//!
//! Layout (little-endian), as ggml's `gguf.cpp` reads it:
//! ```text
//! u32 magic "GGUF", u32 version 3, u64 n_tensors, u64 n_kv
//! n_kv × { string key, u32 type, value }          (string = u64 length + UTF-8 bytes)
//! n_tensors × { string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml_type,
//!               u64 offset (from the start of the data section, a multiple of the alignment) }
//! zero padding to the alignment, then the tensor data, each padded to the alignment
//! ```
//! Only the tensor shapes and types are needed up front, so the data can be produced one
//! tensor (or one slice of a tensor) at a time.

use std::io::{self, Write};

/// `general.alignment`'s default: every tensor's data starts at a multiple of this.
pub const ALIGNMENT: u64 = 32;

const MAGIC: &[u8; 4] = b"GGUF";
const VERSION: u32 = 3;

/// ggml tensor types written by the converter (`ggml_type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorType {
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
}

impl TensorType {
    fn ggml_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `GGUF_TYPE_UINT32`.
    U32(u32),
    /// `GGUF_TYPE_INT32`.
    I32(i32),
    /// `GGUF_TYPE_FLOAT32`.
    F32(f32),
    /// `GGUF_TYPE_BOOL`.
    Bool(bool),
    /// `GGUF_TYPE_STRING`.
    String(String),
    /// Array of `GGUF_TYPE_STRING`.
    Strings(Vec<String>),
    /// Array of `GGUF_TYPE_INT32`.
    I32s(Vec<i32>),
    /// Array of `GGUF_TYPE_FLOAT32`.
    F32s(Vec<f32>),
}

const TYPE_UINT32: u32 = 4;
const TYPE_INT32: u32 = 5;
const TYPE_FLOAT32: u32 = 6;
const TYPE_BOOL: u32 = 7;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// GGUF tensor name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Shape in numpy / safetensors order (outermost first); written reversed, as ggml's `ne`.
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: TensorType,
}

impl TensorInfo {
    /// Data bytes (without padding).
    pub fn bytes(&self) -> u64 {
        self.shape.iter().product::<u64>() * self.dtype.size()
    }
}

fn padding(offset: u64) -> u64 {
    (ALIGNMENT - offset % ALIGNMENT) % ALIGNMENT
}

fn write_string(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn write_value(w: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::U32(v) => {
            w.write_all(&TYPE_UINT32.to_le_bytes())?;
            w.write_all(&v.to_le_bytes())
        }
        Value::I32(v) => {
            w.write_all(&TYPE_INT32.to_le_bytes())?;
            w.write_all(&v.to_le_bytes())
        }
        Value::F32(v) => {
            w.write_all(&TYPE_FLOAT32.to_le_bytes())?;
            w.write_all(&v.to_le_bytes())
        }
        Value::Bool(v) => {
            w.write_all(&TYPE_BOOL.to_le_bytes())?;
            w.write_all(&[u8::from(*v)])
        }
        Value::String(s) => {
            w.write_all(&TYPE_STRING.to_le_bytes())?;
            write_string(w, s)
        }
        Value::Strings(items) => {
            array_header(w, TYPE_STRING, items.len())?;
            items.iter().try_for_each(|s| write_string(w, s))
        }
        Value::I32s(items) => {
            array_header(w, TYPE_INT32, items.len())?;
            items.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))
        }
        Value::F32s(items) => {
            array_header(w, TYPE_FLOAT32, items.len())?;
            items.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))
        }
    }
}

fn array_header(w: &mut impl Write, elem: u32, len: usize) -> io::Result<()> {
    w.write_all(&TYPE_ARRAY.to_le_bytes())?;
    w.write_all(&elem.to_le_bytes())?;
    w.write_all(&(len as u64).to_le_bytes())
}

/// Writes a GGUF file: [`GgufWriter::new`] writes everything up to the data section, then
/// [`GgufWriter::write_data`] is called with each tensor's bytes in order (in as many pieces as
/// convenient) and [`GgufWriter::finish`] checks that every byte promised arrived.
pub struct GgufWriter<W: Write> {
    out: W,
    tensors: Vec<TensorInfo>,
    /// Index of the tensor being written and the bytes of it written so far.
    current: usize,
    written: u64,
    /// Bytes written to `out` in total.
    position: u64,
    header_len: u64,
}

impl<W: Write> GgufWriter<W> {
    /// Writes the header, metadata and tensor infos.
    pub fn new(
        mut out: W,
        metadata: &[(String, Value)],
        tensors: Vec<TensorInfo>,
    ) -> io::Result<Self> {
        let mut header = Vec::new();
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            write_string(&mut header, key)?;
            write_value(&mut header, value)?;
        }
        let mut offset = 0u64;
        for tensor in &tensors {
            write_string(&mut header, &tensor.name)?;
            header.extend_from_slice(&(tensor.shape.len() as u32).to_le_bytes());
            for dim in tensor.shape.iter().rev() {
                header.extend_from_slice(&dim.to_le_bytes());
            }
            header.extend_from_slice(&tensor.dtype.ggml_type().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset += tensor.bytes();
            offset += padding(offset);
        }
        let pad = padding(header.len() as u64);
        header.resize(header.len() + pad as usize, 0);
        out.write_all(&header)?;
        Ok(Self {
            out,
            tensors,
            current: 0,
            written: 0,
            position: header.len() as u64,
            header_len: header.len() as u64,
        })
    }

    /// The total file size once every tensor is written.
    pub fn expected_len(&self) -> u64 {
        let data: u64 = self
            .tensors
            .iter()
            .map(|t| t.bytes() + padding(t.bytes()))
            .sum();
        self.header_len + data
    }

    /// Appends `bytes` to the current tensor's data, moving on to the next tensor (after the
    /// alignment padding) once the current one is complete. A piece may not span two tensors.
    pub fn write_data(&mut self, bytes: &[u8]) -> io::Result<()> {
        let tensor = self.tensors.get(self.current).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "data written after the last tensor",
            )
        })?;
        let total = tensor.bytes();
        if self.written + bytes.len() as u64 > total {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "tensor {} would get {} bytes, its shape holds {total}",
                    tensor.name,
                    self.written + bytes.len() as u64
                ),
            ));
        }
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        self.position += bytes.len() as u64;
        if self.written == total {
            let pad = padding(total);
            self.out
                .write_all(&[0u8; ALIGNMENT as usize][..pad as usize])?;
            self.position += pad;
            self.current += 1;
            self.written = 0;
        }
        Ok(())
    }

    /// Name of the tensor the next [`write_data`](Self::write_data) call belongs to.
    pub fn current_tensor(&self) -> Option<&TensorInfo> {
        self.tensors.get(self.current)
    }

    /// Checks that every tensor is complete, flushes and returns the writer and the file size.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        // A zero-sized tensor is complete without any write.
        while self
            .tensors
            .get(self.current)
            .is_some_and(|t| t.bytes() == 0 && self.written == 0)
        {
            self.current += 1;
        }
        if let Some(tensor) = self.tensors.get(self.current) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "tensor {} got {} of its {} bytes",
                    tensor.name,
                    self.written,
                    tensor.bytes()
                ),
            ));
        }
        self.out.flush()?;
        Ok((self.out, self.position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_complete() {
        let metadata = vec![
            (
                "general.architecture".to_owned(),
                Value::String("llama".into()),
            ),
            (
                "x.list".to_owned(),
                Value::Strings(vec!["a".into(), "bc".into()]),
            ),
            ("x.flag".to_owned(), Value::Bool(true)),
        ];
        let tensors = vec![
            TensorInfo {
                name: "a".into(),
                shape: vec![3],
                dtype: TensorType::F32,
            },
            TensorInfo {
                name: "b".into(),
                shape: vec![2, 5],
                dtype: TensorType::F16,
            },
        ];
        let mut w = GgufWriter::new(Vec::new(), &metadata, tensors).unwrap();
        let expected = w.expected_len();
        w.write_data(&[1u8; 12]).unwrap();
        assert_eq!(w.current_tensor().unwrap().name, "b");
        w.write_data(&[2u8; 8]).unwrap();
        w.write_data(&[2u8; 12]).unwrap();
        assert!(w.write_data(&[0u8; 1]).is_err());
        let (bytes, len) = w.finish().unwrap();
        assert_eq!(bytes.len() as u64, len);
        assert_eq!(len, expected);
        assert_eq!(&bytes[..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 3);
        // Data section starts aligned; the second tensor starts 32 bytes later.
        let data_start = len as usize - 32 - 32;
        assert_eq!(data_start % 32, 0);
        assert_eq!(&bytes[data_start..data_start + 12], &[1u8; 12]);
        assert_eq!(&bytes[data_start + 32..data_start + 52], &[2u8; 20]);
    }

    #[test]
    fn short_tensor_is_an_error() {
        let tensors = vec![TensorInfo {
            name: "t".into(),
            shape: vec![4],
            dtype: TensorType::F32,
        }];
        let mut w = GgufWriter::new(Vec::new(), &[], tensors).unwrap();
        w.write_data(&[0u8; 8]).unwrap();
        let err = w.finish().err().unwrap();
        assert!(err.to_string().contains("got 8 of its 16"), "{err}");
    }
}
