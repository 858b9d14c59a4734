//! Shared-memory buffers (Linux memfd + mmap) that a producer writes into and the whisper worker
//! process maps directly: the audio samples cross the process boundary without a copy.
//!
//! [`ShmAlloc`] is a [`BufferAlloc`]: hand it to the step that produces audio (decoding,
//! resampling) and the tensor it builds lives in a memfd. Frozen buffers ([`ShmStorage`]) are
//! registered by address, so [`shm_backing`] can tell, from any [`Tensor`] (including a
//! `narrow`ed view), whether it lives in shared memory and which fd to pass.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use memmap2::{Mmap, MmapMut};
use switchyard_core::{BufferAlloc, Storage, StorageMut, Tensor};

/// Allocates zeroed buffers in anonymous shared memory (one memfd per buffer).
#[derive(Debug, Clone, Copy, Default)]
pub struct ShmAlloc;

/// A writable shared-memory buffer; [`StorageMut::into_storage`] freezes it into a
/// [`ShmStorage`] without copying.
#[derive(Debug)]
pub struct ShmBuffer {
    fd: OwnedFd,
    map: MmapMut,
    len: usize,
}

/// A frozen shared-memory buffer: the storage behind shm-backed tensors. It keeps its memfd so
/// the buffer can be passed to another process.
#[derive(Debug)]
pub struct ShmStorage {
    fd: OwnedFd,
    map: MmapMut,
    len: usize,
}

/// Creates a memfd of `len` bytes (at least one byte, so it can always be mapped).
fn memfd(len: usize) -> std::io::Result<OwnedFd> {
    use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
    let fd = memfd_create("switchyard-audio", MemfdFlags::CLOEXEC)?;
    ftruncate(&fd, len.max(1) as u64)?;
    Ok(fd)
}

impl ShmAlloc {
    /// A zeroed shared-memory buffer of `bytes` bytes (page aligned).
    pub fn alloc_shm(&self, bytes: usize) -> std::io::Result<ShmBuffer> {
        let fd = memfd(bytes)?;
        let file = File::from(fd.try_clone()?);
        // SAFETY: the memfd was just created by us and is never truncated afterwards; the
        // mapping is only written through this buffer before it is frozen.
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(ShmBuffer {
            fd,
            map,
            len: bytes,
        })
    }
}

impl BufferAlloc for ShmAlloc {
    fn alloc(&self, bytes: usize) -> Result<Box<dyn StorageMut>, String> {
        self.alloc_shm(bytes)
            .map(|b| Box::new(b) as Box<dyn StorageMut>)
            .map_err(|e| format!("shared-memory buffer of {bytes} bytes: {e}"))
    }
}

impl Storage for ShmBuffer {
    fn bytes(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl StorageMut for ShmBuffer {
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }

    fn into_storage(self: Box<Self>) -> Arc<dyn Storage> {
        self.freeze()
    }
}

impl ShmBuffer {
    /// Freezes the buffer into registered, shareable storage (no copy).
    pub fn freeze(self) -> Arc<ShmStorage> {
        let storage = Arc::new(ShmStorage {
            fd: self.fd,
            map: self.map,
            len: self.len,
        });
        if let Ok(mut reg) = registry().lock() {
            reg.insert(storage.map.as_ptr() as usize, Arc::downgrade(&storage));
        }
        storage
    }
}

impl Storage for ShmStorage {
    fn bytes(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl ShmStorage {
    /// The memfd holding the bytes.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Size of the buffer in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for ShmStorage {
    fn drop(&mut self) {
        if let Ok(mut reg) = registry().lock() {
            let key = self.map.as_ptr() as usize;
            // Only remove our own (now dead) entry.
            if reg.get(&key).is_some_and(|w| w.strong_count() == 0) {
                reg.remove(&key);
            }
        }
    }
}

type Registry = Mutex<HashMap<usize, Weak<ShmStorage>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The shared-memory storage behind `tensor`, if it was built by [`ShmAlloc`] (directly or as a
/// view such as `narrow`/`reshape`, which keep the same storage).
pub fn shm_backing(tensor: &Tensor) -> Option<Arc<ShmStorage>> {
    let bytes = tensor.storage().bytes();
    let key = bytes.as_ptr() as usize;
    let found = registry().lock().ok()?.get(&key)?.upgrade()?;
    (found.len == bytes.len()).then_some(found)
}

/// A read-only mapping of a memfd received from another process (the worker's side).
#[derive(Debug)]
pub struct ShmView {
    map: Mmap,
}

impl ShmView {
    /// Maps the whole of `fd` read-only.
    pub fn map(fd: OwnedFd) -> std::io::Result<Self> {
        let file = File::from(fd);
        // SAFETY: the sender froze the buffer before sending it and does not write to it while
        // the request is in flight; the mapping is read-only on this side.
        let map = unsafe { Mmap::map(&file)? };
        Ok(Self { map })
    }
}

impl Storage for ShmView {
    fn bytes(&self) -> &[u8] {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::{CopyLedger, Tensor};

    #[test]
    fn shm_tensor_is_found_again_including_views() {
        let t = Tensor::build::<f32>(&ShmAlloc, &[1000], |x| {
            for (i, v) in x.iter_mut().enumerate() {
                *v = i as f32;
            }
        })
        .unwrap();
        let shm = shm_backing(&t).expect("shm-backed");
        assert_eq!(shm.len(), 4000);
        let view = t.narrow(100, 200).unwrap();
        assert!(shm_backing(&view).is_some());
        assert_eq!(view.byte_offset(), 400);
        assert_eq!(view.as_slice::<f32>().unwrap()[0], 100.0);
        let heap = Tensor::from_vec(vec![0f32; 10], &[10]).unwrap();
        assert!(shm_backing(&heap).is_none());
        let ledger = CopyLedger::new();
        assert_eq!(ledger.bytes(), 0);
    }

    #[test]
    fn a_second_mapping_sees_the_same_bytes() {
        let t = Tensor::build::<f32>(&ShmAlloc, &[4], |x| x.copy_from_slice(&[1., 2., 3., 4.]))
            .unwrap();
        let shm = shm_backing(&t).unwrap();
        let dup = shm.fd().try_clone_to_owned().unwrap();
        let view = ShmView::map(dup).unwrap();
        let remote = Tensor::from_meta(Arc::new(view), &t.meta()).unwrap();
        assert_eq!(remote.as_slice::<f32>().unwrap(), &[1., 2., 3., 4.]);
        assert_ne!(remote.data_ptr(), t.data_ptr());
    }

    #[test]
    fn dropped_buffers_leave_the_registry() {
        let t = Tensor::build::<f32>(&ShmAlloc, &[8], |_| {}).unwrap();
        let key = t.storage().bytes().as_ptr() as usize;
        drop(t);
        assert!(registry()
            .lock()
            .unwrap()
            .get(&key)
            .is_none_or(|w| w.strong_count() == 0));
    }
}
