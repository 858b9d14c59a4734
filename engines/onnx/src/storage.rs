//! ONNX Runtime output values as [`switchyard_core::Storage`]: the next step reads the bytes
//! where ONNX Runtime wrote them.

use std::fmt;
use std::sync::Arc;

use ort::value::{DynValue, PrimitiveTensorElementType, Tensor as OrtTensor};
use switchyard_core::{Element, Storage, Tensor};

use crate::OnnxError;

/// Owns an ONNX Runtime output tensor (and with it the buffer ONNX Runtime allocated for it)
/// and lends its bytes to [`Tensor`]s. Dropped, with the buffer, when the last tensor viewing
/// it goes.
pub(crate) struct OrtStorage<T: PrimitiveTensorElementType + Element + fmt::Debug> {
    value: OrtTensor<T>,
}

impl<T: PrimitiveTensorElementType + Element + fmt::Debug> fmt::Debug for OrtStorage<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrtStorage")
            .field("dtype", &T::DTYPE)
            .field("ptr", &self.value.data_ptr())
            .field("bytes", &self.bytes().len())
            .finish()
    }
}

impl<T: PrimitiveTensorElementType + Element + fmt::Debug> Storage for OrtStorage<T> {
    fn bytes(&self) -> &[u8] {
        // Cannot fail: the element type and CPU placement were checked in `tensor_from_output`.
        self.value
            .try_extract_tensor::<T>()
            .map_or(&[], |(_, data)| bytemuck::cast_slice(data))
    }
}

/// Wraps the ONNX Runtime output `value` (a CPU tensor of `T`) as a contiguous [`Tensor`] of
/// `shape` without copying. Returns the tensor and the address of ONNX Runtime's buffer.
pub(crate) fn tensor_from_output<T: PrimitiveTensorElementType + Element + fmt::Debug>(
    value: DynValue,
    shape: &[usize],
) -> Result<(Tensor, *const u8), OnnxError> {
    let value = value
        .downcast::<ort::value::TensorValueType<T>>()
        .map_err(|e| OnnxError::Output(e.to_string()))?;
    let numel = value
        .try_extract_tensor::<T>()
        .map_err(|e| OnnxError::Output(e.to_string()))?
        .1
        .len();
    if numel != shape.iter().product::<usize>() {
        return Err(OnnxError::Output(format!(
            "output has {numel} elements, expected shape {shape:?}"
        )));
    }
    let ptr = value.data_ptr().cast::<u8>();
    let storage: Arc<dyn Storage> = Arc::new(OrtStorage { value });
    let tensor = Tensor::from_storage(
        storage,
        T::DTYPE,
        shape,
        &switchyard_core::tensor::contiguous_strides(shape),
        0,
    )
    .map_err(|e| OnnxError::Output(e.to_string()))?;
    Ok((tensor, ptr))
}
