//! Oversized declarations are refused without allocating what they declare: a global
//! allocator measures the peak heap use of each refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use switchyard_core::{CopyLedger, HeapAlloc};
use switchyard_media::audio::{self, AudioLimits};
use switchyard_media::MediaError;

struct Peak;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// Peak heap growth while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst) - base)
}

fn wav_declaring(seconds: u32) -> Vec<u8> {
    let data_len = seconds * 16_000 * 2;
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    for field in [16u32.to_le_bytes().to_vec(), vec![1, 0, 1, 0]] {
        v.extend_from_slice(&field);
    }
    v.extend_from_slice(&16_000u32.to_le_bytes());
    v.extend_from_slice(&32_000u32.to_le_bytes());
    v.extend_from_slice(&[2, 0, 16, 0]);
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend(std::iter::repeat_n(0u8, 64_000));
    v
}

#[test]
fn refusals_do_not_allocate_what_the_header_declares() {
    let wav = wav_declaring(7200);
    let limits = AudioLimits {
        max_bytes: 10 << 20,
        max_seconds: 600.0,
    };
    let (result, peak) =
        peak_during(|| audio::decode(&wav, &limits, &HeapAlloc, &CopyLedger::new()));
    assert!(matches!(result, Err(MediaError::TooLong { .. })));
    // Two hours of f32 would be 460 MB; the refusal stays under 2 MB.
    assert!(peak < 2 << 20, "peak heap growth {peak} bytes");
}
