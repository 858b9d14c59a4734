//! A read-only memory map of a whole source file whose pages are handed back to the kernel as
//! a conversion reads them, so resident memory stays near the part being converted rather
//! than growing to the file's size. Shared by the streaming conversions (ONNX variants, Whisper
//! quantisation).

use std::io;

/// How far back [`Mapped::release`] reaches: the span of one page table on x86-64 and
/// aarch64 with 4 KiB pages, the most that one read fault maps.
const RELEASE_ALIGN: usize = 2 << 20;

/// How much of the map [`Mapped::release`] lets accumulate before it hands pages back: one
/// `madvise` per few MiB rather than per tensor (small models are never released piecemeal).
const RELEASE_BATCH: usize = 4 << 20;

/// A read-only memory map of a whole file.
pub struct Mapped {
    map: memmap2::Mmap,
    /// Start of the part that has been read and not yet handed back.
    pending: std::cell::Cell<Option<usize>>,
}

impl Mapped {
    /// Maps `file` (which must not be empty: an empty file cannot be mapped).
    pub fn new(file: &std::fs::File) -> io::Result<Mapped> {
        // SAFETY: the map is read-only; a file changed underneath it by another process could
        // at worst make a decode fail or see odd bytes, which are reported as errors or caught
        // by the verification of the output.
        let map = unsafe { memmap2::Mmap::map(file) }?;
        // The passes read the file front to back.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Mapped {
            map,
            pending: std::cell::Cell::new(None),
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Says that `part` (a slice of [`Mapped::bytes`]) and everything before it in the current
    /// front-to-back pass has been read, so that the kernel can drop those pages from this
    /// process once [`RELEASE_BATCH`] bytes have piled up (at once when `part` is the whole
    /// map: the end of a pass). The pages are file-backed and
    /// unchanged, so a later read faults them back in from the page cache.
    ///
    /// The range handed back starts at the 2 MiB boundary below the pending part: a read fault
    /// maps its neighbours too ("fault-around", whole large folios), including pages behind it
    /// that were handed back already, and those lie within the same 2 MiB page-table block. So
    /// the resident part of the map stays near [`RELEASE_BATCH`] plus the tensor being
    /// converted, rather than all that has been read.
    pub fn release(&self, part: &[u8]) {
        let base = self.map.as_ptr() as usize;
        let Some(start) = (part.as_ptr() as usize).checked_sub(base) else {
            return;
        };
        let end = start + part.len();
        if part.is_empty() || end > self.map.len() {
            return;
        }
        // A part before the pending one starts a new pass.
        let from = match self.pending.get() {
            Some(pending) if pending <= start => pending,
            _ => start,
        };
        if end - from < RELEASE_BATCH && part.len() < self.map.len() {
            self.pending.set(Some(from));
            return;
        }
        self.pending.set(None);
        let from = ((base + from) / RELEASE_ALIGN * RELEASE_ALIGN).saturating_sub(base);
        // SAFETY: MADV_DONTNEED on a read-only shared file mapping discards only this
        // process's page-table entries; the next access reads the same file contents back, so
        // no slice of the map observes a change. (It is only unsound for private writable
        // mappings, whose modified pages it would discard.)
        let _ = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, end - from)
        };
    }

    /// Hands back every page of the map (the end of a pass).
    pub fn release_all(&self) {
        self.release(&self.map);
    }
}
