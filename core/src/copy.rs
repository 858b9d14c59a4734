//! The one place where pipeline bytes are copied, so that every copy is counted.
//!
//! A pipeline (one request's chain of steps) owns a [`CopyLedger`]. Each unavoidable copy
//! (decoding a file into samples, resampling, a layout change an engine demands) goes through
//! [`CopyLedger::copy`] or is reported with [`CopyLedger::record`], naming why it happened.
//! The route trace lists the ledger and `/metrics` sums it; hand-overs between steps must leave
//! it unchanged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::tensor::{Element, Tensor, TensorError};

/// Bytes and copies per reason, for one pipeline.
#[derive(Debug, Default)]
pub struct CopyLedger {
    bytes: AtomicU64,
    copies: AtomicU64,
    by_reason: Mutex<BTreeMap<&'static str, u64>>,
}

/// What a ledger holds at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopySummary {
    /// Bytes copied in total.
    pub bytes: u64,
    /// Number of copies.
    pub copies: u64,
    /// Bytes per reason (`decode`, `resample`, `layout`, ...).
    pub by_reason: BTreeMap<&'static str, u64>,
}

impl CopyLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a copy of `bytes` bytes made elsewhere (e.g. inside a decoder) for `reason`.
    pub fn record(&self, reason: &'static str, bytes: usize) {
        let bytes = bytes as u64;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.copies.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.by_reason.lock() {
            *map.entry(reason).or_default() += bytes;
        }
    }

    /// Copies `src` into a new vector and counts it.
    pub fn copy<T: Element>(&self, reason: &'static str, src: &[T]) -> Vec<T> {
        self.record(reason, std::mem::size_of_val(src));
        src.to_vec()
    }

    /// Copies a (possibly strided) tensor into a new contiguous one and counts it.
    pub fn contiguous<T: Element + std::fmt::Debug>(
        &self,
        reason: &'static str,
        tensor: &Tensor,
    ) -> Result<Tensor, TensorError> {
        if tensor.is_contiguous() {
            return Ok(tensor.clone());
        }
        let bytes = tensor.storage().bytes();
        let base: &[T] = bytemuck::try_cast_slice(&bytes[tensor.byte_offset()..])
            .map_err(|_| TensorError::NotContiguous)?;
        let mut out = Vec::with_capacity(tensor.numel());
        let shape = tensor.shape();
        let strides = tensor.strides();
        let mut index = vec![0usize; shape.len()];
        for _ in 0..tensor.numel() {
            let at: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum();
            out.push(base[at]);
            for d in (0..shape.len()).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        self.record(reason, out.len() * std::mem::size_of::<T>());
        Tensor::from_vec(out, shape)
    }

    /// Totals so far.
    pub fn summary(&self) -> CopySummary {
        CopySummary {
            bytes: self.bytes.load(Ordering::Relaxed),
            copies: self.copies.load(Ordering::Relaxed),
            by_reason: self.by_reason.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }

    /// Bytes copied so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    #[test]
    fn copies_are_counted_by_reason() {
        let ledger = CopyLedger::new();
        let v = ledger.copy("decode", &[1.0f32, 2.0]);
        assert_eq!(v, vec![1.0, 2.0]);
        ledger.record("resample", 100);
        let s = ledger.summary();
        assert_eq!(s.bytes, 108);
        assert_eq!(s.copies, 2);
        assert_eq!(s.by_reason["decode"], 8);
    }

    #[test]
    fn contiguous_tensor_is_not_copied() {
        let ledger = CopyLedger::new();
        let t = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2]).unwrap();
        let c = ledger.contiguous::<f32>("layout", &t).unwrap();
        assert_eq!(c.data_ptr(), t.data_ptr());
        assert_eq!(ledger.bytes(), 0);
    }

    #[test]
    fn transpose_is_copied_and_counted() {
        let ledger = CopyLedger::new();
        let t = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], &[2, 3]).unwrap();
        let tr =
            Tensor::from_storage(t.storage().clone(), DType::F32, &[3, 2], &[1, 3], 0).unwrap();
        let c = ledger.contiguous::<f32>("layout", &tr).unwrap();
        assert_eq!(c.as_slice::<f32>().unwrap(), &[1., 4., 2., 5., 3., 6.]);
        assert_eq!(ledger.bytes(), 24);
    }
}
