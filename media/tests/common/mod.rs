//! Helpers shared by the media integration tests.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::sync::Mutex;

use switchyard_core::{BufferAlloc, HeapAlloc, StorageMut};

/// An allocator that remembers the address of every buffer it hands out.
#[derive(Default)]
pub struct RecordingAlloc {
    pub ptrs: Mutex<Vec<usize>>,
}

impl BufferAlloc for RecordingAlloc {
    fn alloc(&self, bytes: usize) -> Result<Box<dyn StorageMut>, String> {
        let mut buffer = HeapAlloc.alloc(bytes)?;
        self.ptrs
            .lock()
            .unwrap()
            .push(buffer.bytes_mut().as_mut_ptr() as usize);
        Ok(buffer)
    }
}

impl RecordingAlloc {
    /// The one buffer handed out.
    pub fn only(&self) -> usize {
        let ptrs = self.ptrs.lock().unwrap();
        assert_eq!(ptrs.len(), 1, "expected exactly one allocation: {ptrs:?}");
        ptrs[0]
    }
}

/// A sine of `freq` Hz, `seconds` long, at `rate`, amplitude 0.5, as 16-bit WAV bytes with
/// `channels` identical channels.
pub fn sine_wav(freq: f32, seconds: f32, rate: u32, channels: u16) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    let n = (seconds * rate as f32) as usize;
    for i in 0..n {
        let x = (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5;
        for _ in 0..channels {
            w.write_sample((x * 32767.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
    out.into_inner()
}

/// Frequency estimated from the rate of upward zero crossings (skipping the edges, where the
/// resampler's filter ramps in and out).
pub fn frequency(samples: &[f32], rate: u32) -> f32 {
    let edge = samples.len() / 10;
    let body = &samples[edge..samples.len() - edge];
    let ups = body
        .windows(2)
        .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
        .count();
    ups as f32 * rate as f32 / body.len() as f32
}

/// Root mean square.
pub fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|x| x * x).sum::<f32>() / samples.len() as f32).sqrt()
}
