//! DLPack export and import for [`Tensor`], without copying the elements.
//!
//! - [`Tensor::to_dlpack`] hands out a versioned (DLPack 1.x) managed tensor whose data pointer
//!   is the tensor's own storage. The capsule owns an `Arc` of that storage, so the original
//!   [`Tensor`] may be dropped while the consumer still reads; the capsule's deleter drops the
//!   `Arc`. The export is flagged read-only: Switchyard storage is shared and immutable.
//! - [`Tensor::from_dlpack`] (and [`Tensor::from_dlpack_legacy`] for the pre-1.0
//!   `DLManagedTensor`) wraps a foreign managed tensor as [`Storage`]; the producer's deleter
//!   runs when the last [`Tensor`] viewing it is dropped.
//!
//! Supported element types: f32, f16, i64, i32, i16, u8 (one lane). Devices: CPU, and CUDA,
//! recorded as [`Device::Cuda`]. Strides are honoured (null strides mean row-major), negative
//! strides are refused, and `byte_offset` is kept as the tensor's byte offset.
//!
//! CUDA caveat: [`Storage::bytes`] returns a host slice, so an imported CUDA tensor's storage
//! is a slice over device addresses. It must never be read on the host: use only its layout,
//! [`Tensor::data_ptr`] and [`Tensor::to_dlpack`] (host accessors such as
//! [`Tensor::as_slice`] already refuse non-CPU tensors).

use std::ffi::c_void;
use std::fmt;
use std::sync::Arc;

use dlpark::ffi::{DLDataType, DLDataTypeCode, DLDevice, DLDeviceType, DLManagedTensor};
use dlpark::metadata::Dynamic;
use dlpark::{legacy, versioned, DlpackFlags, Managed, ManagedTensorBase};

use crate::tensor::{DType, Device, Storage, Tensor, TensorError};

/// The owning DLPack handle [`Tensor::to_dlpack`] returns and [`Tensor::from_dlpack`] takes:
/// a `DLManagedTensorVersioned` whose deleter runs on drop (or is handed to a consumer through
/// [`Managed::into_raw`]).
pub type DlpackTensor = versioned::Dlpack;

/// Supported element types, for error messages.
const SUPPORTED_DTYPES: &str = "f32, f16, i64, i32, i16, u8";

/// The DLPack data type of a [`DType`].
pub fn dl_dtype(dtype: DType) -> DLDataType {
    match dtype {
        DType::F32 => DLDataType::F32,
        DType::F16 => DLDataType::scalar(DLDataTypeCode::FLOAT, 16),
        DType::I64 => DLDataType::I64,
        DType::I32 => DLDataType::I32,
        DType::I16 => DLDataType::I16,
        DType::U8 => DLDataType::U8,
    }
}

/// The [`DType`] of a DLPack data type, or a message naming what is unsupported.
fn from_dl_dtype(dtype: DLDataType) -> Result<DType, TensorError> {
    let unsupported = || {
        TensorError::Layout(format!(
            "DLPack dtype (code {}, {} bits, {} lanes) is not supported; supported: {SUPPORTED_DTYPES}",
            dtype.code.0, dtype.bits, dtype.lanes
        ))
    };
    if dtype.lanes != 1 {
        return Err(unsupported());
    }
    Ok(match (dtype.code, dtype.bits) {
        (DLDataTypeCode::FLOAT, 32) => DType::F32,
        (DLDataTypeCode::FLOAT, 16) => DType::F16,
        (DLDataTypeCode::INT, 64) => DType::I64,
        (DLDataTypeCode::INT, 32) => DType::I32,
        (DLDataTypeCode::INT, 16) => DType::I16,
        (DLDataTypeCode::UINT, 8) => DType::U8,
        _ => return Err(unsupported()),
    })
}

fn dl_device(device: Device) -> Result<DLDevice, TensorError> {
    match device {
        Device::Cpu => Ok(DLDevice::CPU),
        Device::Cuda(n) => i32::try_from(n)
            .map(DLDevice::cuda)
            .map_err(|_| TensorError::Layout(format!("CUDA ordinal {n} does not fit DLPack"))),
    }
}

fn from_dl_device(device: DLDevice) -> Result<Device, TensorError> {
    if device.device_type == DLDeviceType::CPU {
        return Ok(Device::Cpu);
    }
    if device.device_type == DLDeviceType::CUDA {
        return u32::try_from(device.device_id)
            .map(Device::Cuda)
            .map_err(|_| {
                TensorError::Layout(format!("negative CUDA ordinal {}", device.device_id))
            });
    }
    Err(TensorError::Layout(format!(
        "DLPack device type {} is not supported; supported: CPU, CUDA",
        device.device_type.0
    )))
}

fn to_i64(values: &[usize], what: &str) -> Result<Vec<i64>, TensorError> {
    values
        .iter()
        .map(|v| {
            i64::try_from(*v).map_err(|_| TensorError::Layout(format!("{what} {v} exceeds i64")))
        })
        .collect()
}

fn to_usize(values: &[i64], what: &str) -> Result<Vec<usize>, TensorError> {
    values
        .iter()
        .map(|v| {
            usize::try_from(*v).map_err(|_| {
                TensorError::Layout(format!(
                    "DLPack {what} {v} is negative; only non-negative {what}s are supported"
                ))
            })
        })
        .collect()
}

fn dl_error(context: &str, err: impl fmt::Display) -> TensorError {
    TensorError::Layout(format!("{context}: {err}"))
}

/// Storage over a foreign DLPack tensor: owns the managed tensor (its deleter runs on drop).
struct DlpackStorage<M: ManagedTensorBase> {
    /// Keeps the producer's memory alive.
    managed: Managed<M>,
    /// Start of the producer's buffer (the DLPack `data` pointer).
    base: *const u8,
    /// Bytes from `base` to the end of the last element (`byte_offset` included).
    len: usize,
    device: Device,
}

// SAFETY: `Managed<M>` is Send + Sync (dlpark asserts it for every ABI); `base` points into
// memory that `managed` keeps alive and that is only ever read through `&self`.
unsafe impl<M: ManagedTensorBase> Send for DlpackStorage<M> {}
// SAFETY: see `Send`: shared access only reads.
unsafe impl<M: ManagedTensorBase> Sync for DlpackStorage<M> {}

impl<M: ManagedTensorBase> fmt::Debug for DlpackStorage<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DlpackStorage")
            .field("managed", &self.managed.as_ptr())
            .field("base", &self.base)
            .field("len", &self.len)
            .field("device", &self.device)
            .finish()
    }
}

impl<M: ManagedTensorBase> Storage for DlpackStorage<M> {
    fn bytes(&self) -> &[u8] {
        if self.base.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: the producer guarantees `base..base + len` (offset and every strided element
        // included, computed and validated at import) stays allocated until its deleter runs,
        // which happens only when `self.managed` drops. The bytes are not mutated while shared
        // (DLPack exchange hands over read access).
        unsafe { std::slice::from_raw_parts(self.base, self.len) }
    }

    fn device(&self) -> Device {
        self.device
    }
}

impl Tensor {
    /// Exports this tensor as a versioned DLPack managed tensor, without copying: the data
    /// pointer is this tensor's storage and the capsule keeps an `Arc` of that storage alive
    /// until its deleter runs. Flagged read-only.
    pub fn to_dlpack(&self) -> Result<DlpackTensor, TensorError> {
        self.export_as()
    }

    /// Same as [`Tensor::to_dlpack`] for consumers that only speak the legacy (pre-1.0)
    /// `DLManagedTensor` ABI (no read-only flag there).
    pub fn to_dlpack_legacy(&self) -> Result<legacy::Dlpack, TensorError> {
        self.export_as()
    }

    fn export_as<M: ManagedTensorBase>(&self) -> Result<Managed<M>, TensorError> {
        let shape = to_i64(self.shape(), "dimension")?;
        let strides = to_i64(self.strides(), "stride")?;
        let offset = u64::try_from(self.byte_offset())
            .map_err(|_| TensorError::Layout("byte offset exceeds u64".into()))?;
        let device = dl_device(self.device())?;
        let storage: Arc<dyn Storage> = self.storage().clone();
        let data = storage.bytes().as_ptr().cast_mut().cast::<c_void>();
        let mut init = Dynamic::new(shape, strides)
            .prepare_as::<M>()
            .map_err(|e| dl_error("cannot describe tensor for DLPack", e))?
            .initialize(Box::new(storage));
        init.set_data(data)
            .set_dtype(dl_dtype(self.dtype()))
            .set_device(device)
            .set_byte_offset(offset);
        // A no-op for the legacy ABI, which has no flags.
        init.set_flags(DlpackFlags::READ_ONLY)
            .map_err(|e| dl_error("cannot flag DLPack export read-only", e))?;
        // SAFETY: `data` is the start of `storage`, which the boxed `Arc` installed as the
        // context keeps alive until the deleter runs; shape/strides/offset describe a view that
        // `Tensor::from_storage` already checked fits inside that storage; the tensor is marked
        // read-only (versioned ABI) and nothing in Switchyard mutates frozen storage.
        Ok(unsafe { init.finish() })
    }

    /// Wraps a versioned DLPack managed tensor without copying: the new tensor's storage owns
    /// `managed` and runs its deleter when the last view is dropped. Fails (and drops
    /// `managed`, which runs the producer's deleter) for an unsupported dtype or device, a
    /// negative stride, or a malformed descriptor.
    pub fn from_dlpack(managed: DlpackTensor) -> Result<Tensor, TensorError> {
        import(managed)
    }

    /// Same as [`Tensor::from_dlpack`] for the legacy (pre-1.0) `DLManagedTensor` ABI.
    pub fn from_dlpack_legacy(managed: Managed<DLManagedTensor>) -> Result<Tensor, TensorError> {
        import(managed)
    }
}

fn import<M: ManagedTensorBase + 'static>(managed: Managed<M>) -> Result<Tensor, TensorError> {
    let view = managed
        .validate()
        .map_err(|e| dl_error("invalid DLPack tensor", e))?;
    let dtype = from_dl_dtype(view.dtype())?;
    let device = from_dl_device(view.device())?;
    let shape = to_usize(view.shape(), "dimension")?;
    let strides = view
        .strides_or_compact()
        .map_err(|e| dl_error("invalid DLPack strides", e))?;
    let strides = to_usize(&strides, "stride")?;
    let offset = usize::try_from(view.byte_offset())
        .map_err(|_| TensorError::Layout("DLPack byte_offset exceeds usize".into()))?;
    let span = if shape.contains(&0) {
        0
    } else {
        shape
            .iter()
            .zip(&strides)
            .try_fold(1usize, |acc, (d, s)| {
                (d - 1).checked_mul(*s).and_then(|x| acc.checked_add(x))
            })
            .and_then(|elements| elements.checked_mul(dtype.size()))
            .ok_or_else(|| TensorError::Layout("DLPack tensor span overflows usize".into()))?
    };
    let len = offset
        .checked_add(span)
        .ok_or_else(|| TensorError::Layout("DLPack tensor span overflows usize".into()))?;
    let base = view.data_ptr().cast::<u8>();
    if base.is_null() && span > 0 {
        return Err(TensorError::Layout(
            "DLPack tensor has elements but a null data pointer".into(),
        ));
    }
    let storage = DlpackStorage {
        managed,
        base,
        len,
        device,
    };
    Tensor::from_storage(Arc::new(storage), dtype, &shape, &strides, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::CopyLedger;
    use crate::tensor::HeapAlloc;

    #[test]
    fn round_trip_keeps_the_pointer_and_copies_nothing() {
        let ledger = CopyLedger::new();
        let t = Tensor::build::<f32>(&HeapAlloc, &[2, 3], |x| {
            x.copy_from_slice(&[1., 2., 3., 4., 5., 6.])
        })
        .unwrap();
        let ptr = t.data_ptr();
        let managed = t.to_dlpack().unwrap();
        assert!(managed.flags().contains(DlpackFlags::READ_ONLY));
        let back = Tensor::from_dlpack(managed).unwrap();
        assert_eq!(back.data_ptr(), ptr);
        assert_eq!(back.shape(), &[2, 3]);
        assert_eq!(back.strides(), &[3, 1]);
        assert_eq!(back.dtype(), DType::F32);
        assert_eq!(back.device(), Device::Cpu);
        assert_eq!(back.as_slice::<f32>().unwrap(), &[1., 2., 3., 4., 5., 6.]);
        assert_eq!(ledger.bytes(), 0);
    }

    #[test]
    fn export_outlives_the_original_tensor() {
        let t = Tensor::from_vec((0..12i64).collect::<Vec<_>>(), &[4, 3]).unwrap();
        let ptr = t.data_ptr();
        let managed = t.to_dlpack().unwrap();
        drop(t);
        let view = managed.validate().unwrap();
        assert_eq!(view.shape(), &[4, 3]);
        // SAFETY (test): a CPU i64 compact tensor exported just above.
        let values = unsafe { view.cpu_slice::<i64>() }.unwrap();
        assert_eq!(values.as_ptr().cast::<u8>(), ptr);
        assert_eq!(values[11], 11);
    }

    #[test]
    fn deleters_release_the_storage() {
        let t = Tensor::from_vec(vec![1u8, 2, 3], &[3]).unwrap();
        let storage = t.storage().clone();
        assert_eq!(Arc::strong_count(&storage), 2);
        let managed = t.to_dlpack().unwrap();
        assert_eq!(Arc::strong_count(&storage), 3);
        let imported = Tensor::from_dlpack(managed).unwrap();
        drop(t);
        assert_eq!(Arc::strong_count(&storage), 2);
        let view = imported.narrow(1, 3).unwrap();
        drop(imported);
        assert_eq!(view.as_slice::<u8>().unwrap(), &[2, 3]);
        drop(view);
        assert_eq!(Arc::strong_count(&storage), 1);
    }

    #[test]
    fn offsets_and_strides_survive_the_round_trip() {
        let t = Tensor::from_vec((0..12i32).collect::<Vec<_>>(), &[4, 3]).unwrap();
        let rows = t.narrow(1, 3).unwrap();
        let tr =
            Tensor::from_storage(rows.storage().clone(), DType::I32, &[3, 2], &[1, 3], 12).unwrap();
        let back = Tensor::from_dlpack(tr.to_dlpack().unwrap()).unwrap();
        assert_eq!(back.byte_offset(), 12);
        assert_eq!(back.strides(), &[1, 3]);
        assert_eq!(back.data_ptr(), tr.data_ptr());
        assert!(!back.is_contiguous());
        let ledger = CopyLedger::new();
        let c = ledger.contiguous::<i32>("layout", &back).unwrap();
        assert_eq!(c.as_slice::<i32>().unwrap(), &[3, 6, 4, 7, 5, 8]);
    }

    #[test]
    fn legacy_abi_round_trips_every_dtype() {
        let f16 = half::f16::from_f32(1.5);
        let cases = vec![
            Tensor::from_vec(vec![f16; 4], &[4]).unwrap(),
            Tensor::from_vec(vec![7i16; 4], &[2, 2]).unwrap(),
            Tensor::from_vec(vec![9u8; 6], &[1, 2, 3]).unwrap(),
        ];
        for t in cases {
            let back = Tensor::from_dlpack_legacy(t.to_dlpack_legacy().unwrap()).unwrap();
            assert_eq!(back.dtype(), t.dtype());
            assert_eq!(back.data_ptr(), t.data_ptr());
            assert_eq!(back.as_bytes().unwrap(), t.as_bytes().unwrap());
        }
    }

    #[test]
    fn unsupported_dtype_and_null_strides() {
        let mut values = vec![0f64; 6];
        let data = values.as_mut_ptr().cast();
        let mut init = Dynamic::compact(vec![2i64, 3])
            .initialize(Box::new(values))
            .unwrap();
        init.set_data(data)
            .set_dtype(DLDataType::F64)
            .set_device(DLDevice::CPU);
        // SAFETY (test): the boxed vector owns the data and outlives the descriptor.
        let managed: DlpackTensor = unsafe { init.finish() };
        let err = Tensor::from_dlpack(managed).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("code 2, 64 bits"), "{message}");
        assert!(message.contains("supported: f32, f16"), "{message}");

        // Null strides (legacy producers) mean row-major.
        let mut values = vec![1u8, 2, 3, 4, 5, 6];
        let data = values.as_mut_ptr().cast();
        let mut init = Dynamic::compact(vec![2i64, 3])
            .initialize_as::<DLManagedTensor>(Box::new(values))
            .unwrap();
        init.set_data(data)
            .set_dtype(DLDataType::U8)
            .set_device(DLDevice::CPU);
        init.tensor_mut().strides = std::ptr::null_mut();
        // SAFETY (test): as above; the legacy ABI allows null strides.
        let managed = unsafe { init.finish() };
        let t = Tensor::from_dlpack_legacy(managed).unwrap();
        assert_eq!(t.strides(), &[3, 1]);
        assert_eq!(t.as_slice::<u8>().unwrap(), &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn cuda_device_is_recorded() {
        assert_eq!(from_dl_device(DLDevice::cuda(1)).unwrap(), Device::Cuda(1));
        assert!(from_dl_device(DLDevice::metal(0)).is_err());
    }
}
