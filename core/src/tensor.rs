//! One tensor type for every pipeline step: shared storage, dtype, shape, strides and device.
//!
//! A [`Tensor`] never owns its bytes alone: the storage sits behind an `Arc<dyn Storage>`, so
//! handing a tensor from one step to the next (or slicing, reshaping, viewing it) copies
//! nothing. Storage can be a Rust vector, an engine's own output buffer (kept alive until the
//! next step has read it), a shared-memory mapping, or memory imported through DLPack.
//! Copies that cannot be avoided go through [`crate::copy`], which counts them.

use std::fmt;
use std::sync::Arc;

/// Element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// 16-bit signed integer (PCM audio).
    I16,
    /// Unsigned byte (image pixels).
    U8,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::I16 => 2,
            DType::I64 => 8,
            DType::U8 => 1,
        }
    }
}

/// Where a tensor's bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "index")]
pub enum Device {
    /// Host memory.
    Cpu,
    /// An NVIDIA GPU (ordinal).
    Cuda(u32),
}

/// Rust element types that map onto a [`DType`].
pub trait Element: bytemuck::Pod + Send + Sync + 'static {
    /// The matching dtype.
    const DTYPE: DType;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
}
impl Element for i64 {
    const DTYPE: DType = DType::I64;
}
impl Element for i32 {
    const DTYPE: DType = DType::I32;
}
impl Element for i16 {
    const DTYPE: DType = DType::I16;
}
impl Element for u8 {
    const DTYPE: DType = DType::U8;
}

/// Bytes that a tensor views. Implementations keep whatever owns the memory alive (a vector,
/// an engine's output value, a shared-memory mapping, a DLPack capsule) for as long as any
/// tensor refers to it.
pub trait Storage: Send + Sync + fmt::Debug {
    /// The whole buffer.
    fn bytes(&self) -> &[u8];
    /// Device of the buffer.
    fn device(&self) -> Device {
        Device::Cpu
    }
}

/// A Rust vector as storage.
#[derive(Debug)]
pub struct VecStorage<T: Element>(pub Vec<T>);

impl<T: Element + fmt::Debug> Storage for VecStorage<T> {
    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

/// Storage a step can still write into, before it is frozen into a [`Tensor`].
pub trait StorageMut: Storage {
    /// The whole buffer, writable.
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Freezes the buffer into shareable storage (no copy).
    fn into_storage(self: Box<Self>) -> Arc<dyn Storage>;
}

/// Where a step allocates the buffer it writes its output into. Handing the right allocator
/// to a producer (e.g. shared memory when the next step runs in a worker process) is what lets
/// the consumer read the output without a copy.
pub trait BufferAlloc: Send + Sync {
    /// A zeroed buffer of `bytes` bytes, aligned for any [`Element`].
    fn alloc(&self, bytes: usize) -> Result<Box<dyn StorageMut>, String>;
}

/// Heap buffers, 16-byte aligned.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapAlloc;

/// A heap buffer from [`HeapAlloc`].
#[derive(Debug)]
pub struct HeapBuffer {
    words: Vec<u128>,
    len: usize,
}

impl Storage for HeapBuffer {
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
}

impl StorageMut for HeapBuffer {
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }
    fn into_storage(self: Box<Self>) -> Arc<dyn Storage> {
        Arc::from(self as Box<dyn Storage>)
    }
}

impl BufferAlloc for HeapAlloc {
    fn alloc(&self, bytes: usize) -> Result<Box<dyn StorageMut>, String> {
        Ok(Box::new(HeapBuffer {
            words: vec![0u128; bytes.div_ceil(16)],
            len: bytes,
        }))
    }
}

impl Tensor {
    /// A tensor of `shape` filled by `fill` in a buffer from `alloc` (written in place: the
    /// elements are never copied afterwards).
    pub fn build<T: Element>(
        alloc: &dyn BufferAlloc,
        shape: &[usize],
        fill: impl FnOnce(&mut [T]),
    ) -> Result<Self, TensorError> {
        let numel: usize = shape.iter().product();
        let mut buffer = alloc
            .alloc(numel * std::mem::size_of::<T>())
            .map_err(TensorError::Alloc)?;
        let elements: &mut [T] = bytemuck::try_cast_slice_mut(buffer.bytes_mut())
            .map_err(|_| TensorError::NotContiguous)?;
        fill(elements);
        Self::from_storage(
            buffer.into_storage(),
            T::DTYPE,
            shape,
            &contiguous_strides(shape),
            0,
        )
    }
}

/// A tensor's layout without its bytes, DLPack-style: what travels next to a shared-memory
/// buffer (or any other storage) so the receiver can view it without a copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TensorMeta {
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Strides in elements.
    pub strides: Vec<usize>,
    /// Offset of the first element inside the buffer, in bytes.
    pub byte_offset: usize,
    /// Device of the buffer.
    pub device: Device,
}

/// Why a tensor operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    /// The shape does not match the number of elements or the storage size.
    #[error("shape {shape:?} needs {needed} bytes but the storage has {available}")]
    Size {
        /// Requested shape.
        shape: Vec<usize>,
        /// Bytes the view needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// Asked for a different element type.
    #[error("tensor holds {actual:?}, not {wanted:?}")]
    DType {
        /// What the caller asked for.
        wanted: DType,
        /// What the tensor holds.
        actual: DType,
    },
    /// A slice view needs contiguous, aligned, host memory.
    #[error("tensor is not a contiguous, aligned host buffer")]
    NotContiguous,
    /// The allocator could not provide a buffer.
    #[error("cannot allocate tensor storage: {0}")]
    Alloc(String),
    /// Rank or strides that make no sense.
    #[error("invalid layout: {0}")]
    Layout(String),
}

/// An n-dimensional view over shared storage.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<dyn Storage>,
    dtype: DType,
    shape: Vec<usize>,
    /// Strides in elements.
    strides: Vec<usize>,
    /// Offset of the first element, in bytes.
    offset: usize,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("strides", &self.strides)
            .field("device", &self.device())
            .field("ptr", &self.data_ptr())
            .finish()
    }
}

/// Row-major strides for a shape, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

impl Tensor {
    /// A tensor that takes ownership of `data` (no copy).
    pub fn from_vec<T: Element + fmt::Debug>(
        data: Vec<T>,
        shape: &[usize],
    ) -> Result<Self, TensorError> {
        Self::from_storage(
            Arc::new(VecStorage(data)),
            T::DTYPE,
            shape,
            &contiguous_strides(shape),
            0,
        )
    }

    /// A view over existing storage. `strides` are in elements, `offset` in bytes.
    pub fn from_storage(
        storage: Arc<dyn Storage>,
        dtype: DType,
        shape: &[usize],
        strides: &[usize],
        offset: usize,
    ) -> Result<Self, TensorError> {
        if shape.len() != strides.len() {
            return Err(TensorError::Layout(format!(
                "{} dims but {} strides",
                shape.len(),
                strides.len()
            )));
        }
        let span = if shape.contains(&0) {
            0
        } else {
            shape
                .iter()
                .zip(strides)
                .map(|(d, s)| (d - 1) * s)
                .sum::<usize>()
                + 1
        };
        let needed = offset + span * dtype.size();
        let available = storage.bytes().len();
        if needed > available {
            return Err(TensorError::Size {
                shape: shape.to_vec(),
                needed,
                available,
            });
        }
        Ok(Self {
            storage,
            dtype,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            offset,
        })
    }

    /// The layout, for sending alongside the storage.
    pub fn meta(&self) -> TensorMeta {
        TensorMeta {
            dtype: self.dtype,
            shape: self.shape.clone(),
            strides: self.strides.clone(),
            byte_offset: self.offset,
            device: self.device(),
        }
    }

    /// A view of `storage` laid out as `meta` describes (checked against the storage size).
    pub fn from_meta(storage: Arc<dyn Storage>, meta: &TensorMeta) -> Result<Self, TensorError> {
        Self::from_storage(
            storage,
            meta.dtype,
            &meta.shape,
            &meta.strides,
            meta.byte_offset,
        )
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Strides in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Byte offset of the first element inside the storage.
    pub fn byte_offset(&self) -> usize {
        self.offset
    }

    /// Device of the storage.
    pub fn device(&self) -> Device {
        self.storage.device()
    }

    /// The shared storage (for exporters such as DLPack and shared memory).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes covered by the elements (numel × dtype size).
    pub fn nbytes(&self) -> usize {
        self.numel() * self.dtype.size()
    }

    /// Whether the elements are laid out row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.shape
            .iter()
            .zip(self.strides.iter().zip(contiguous_strides(&self.shape)))
            .all(|(d, (s, c))| *d == 1 || *s == c)
    }

    /// Address of the first element: equal on both sides of a hand-over that copied nothing.
    pub fn data_ptr(&self) -> *const u8 {
        self.storage.bytes()[self.offset..].as_ptr()
    }

    /// The bytes of a contiguous host tensor.
    pub fn as_bytes(&self) -> Result<&[u8], TensorError> {
        if !self.is_contiguous() || self.device() != Device::Cpu {
            return Err(TensorError::NotContiguous);
        }
        Ok(&self.storage.bytes()[self.offset..self.offset + self.nbytes()])
    }

    /// The elements of a contiguous host tensor, borrowed without copying.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], TensorError> {
        if T::DTYPE != self.dtype {
            return Err(TensorError::DType {
                wanted: T::DTYPE,
                actual: self.dtype,
            });
        }
        bytemuck::try_cast_slice(self.as_bytes()?).map_err(|_| TensorError::NotContiguous)
    }

    /// The same storage seen with another shape (contiguous tensors only).
    pub fn reshape(&self, shape: &[usize]) -> Result<Self, TensorError> {
        if !self.is_contiguous() {
            return Err(TensorError::NotContiguous);
        }
        if shape.iter().product::<usize>() != self.numel() {
            return Err(TensorError::Size {
                shape: shape.to_vec(),
                needed: shape.iter().product::<usize>() * self.dtype.size(),
                available: self.nbytes(),
            });
        }
        Self::from_storage(
            self.storage.clone(),
            self.dtype,
            shape,
            &contiguous_strides(shape),
            self.offset,
        )
    }

    /// Elements `start..end` of the outermost dimension, sharing the storage.
    pub fn narrow(&self, start: usize, end: usize) -> Result<Self, TensorError> {
        let outer = self.shape.first().copied().unwrap_or(0);
        if start > end || end > outer {
            return Err(TensorError::Layout(format!(
                "range {start}..{end} outside 0..{outer}"
            )));
        }
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        let offset = self.offset + start * self.strides[0] * self.dtype.size();
        Self::from_storage(
            self.storage.clone(),
            self.dtype,
            &shape,
            &self.strides,
            offset,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_shares_the_buffer() {
        let data = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let ptr = data.as_ptr() as *const u8;
        let t = Tensor::from_vec(data, &[2, 3]).unwrap();
        assert_eq!(t.data_ptr(), ptr);
        let clone = t.clone();
        assert_eq!(clone.data_ptr(), ptr);
        let flat = t.reshape(&[6]).unwrap();
        assert_eq!(flat.data_ptr(), ptr);
        assert_eq!(flat.as_slice::<f32>().unwrap()[5], 6.0);
    }

    #[test]
    fn build_writes_in_place() {
        let t = Tensor::build::<f32>(&HeapAlloc, &[3], |x| x.copy_from_slice(&[1.0, 2.0, 3.0]))
            .unwrap();
        assert_eq!(t.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0]);
        let empty = Tensor::build::<i64>(&HeapAlloc, &[0, 4], |_| {}).unwrap();
        assert_eq!(empty.numel(), 0);
    }

    #[test]
    fn narrow_views_rows() {
        let t = Tensor::from_vec((0..12).map(|i| i as i64).collect(), &[4, 3]).unwrap();
        let rows = t.narrow(1, 3).unwrap();
        assert_eq!(rows.shape(), &[2, 3]);
        assert_eq!(rows.as_slice::<i64>().unwrap(), &[3, 4, 5, 6, 7, 8]);
        assert!(t.narrow(3, 5).is_err());
    }

    #[test]
    fn bad_shapes_and_dtypes_are_errors() {
        assert!(matches!(
            Tensor::from_vec(vec![0u8; 5], &[2, 3]),
            Err(TensorError::Size { .. })
        ));
        let t = Tensor::from_vec(vec![0u8; 6], &[2, 3]).unwrap();
        assert!(matches!(
            t.as_slice::<f32>(),
            Err(TensorError::DType { .. })
        ));
        assert!(t.reshape(&[4]).is_err());
    }

    #[test]
    fn transposed_view_is_not_contiguous() {
        let t = Tensor::from_vec(vec![0f32; 6], &[2, 3]).unwrap();
        let tr =
            Tensor::from_storage(t.storage().clone(), DType::F32, &[3, 2], &[1, 3], 0).unwrap();
        assert!(!tr.is_contiguous());
        assert!(tr.as_slice::<f32>().is_err());
    }
}
