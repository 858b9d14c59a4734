//! espeak-ng speech for tests, at 16 kHz mono f32.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Twelve varied English sentences the speech-to-text tests speak with [`speak`].
pub const SENTENCES: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The weather today is sunny with a light breeze from the west.",
    "I would like to book a table for dinner tonight.",
    "Our train leaves the station early in the morning.",
    "She sells fresh bread and coffee at the market every Saturday.",
    "Turn off the lights before you leave the room.",
    "The children played football in the park after school.",
    "Can you tell me the way to the nearest hospital?",
    "My brother is reading a long book about the history of France.",
    "We need to buy milk, eggs and apples for breakfast.",
    "The meeting has been moved to Thursday afternoon.",
];

/// espeak-ng speech for `text`: US English, slowed to 130 wpm with short gaps between words
/// (at espeak's default voice and speed even the original Whisper model scores ~20 % WER),
/// resampled to 16 kHz mono f32. `None` when espeak-ng is not installed. Cached per text.
pub fn speak(text: &str) -> Option<Vec<f32>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<f32>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(text) {
        return Some(v.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("s.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "130", "-g", "5", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .ok()?;
    assert!(status.success(), "espeak-ng failed");
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.bits_per_sample),
        (1, 16),
        "16-bit mono"
    );
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let out = resample(&samples, spec.sample_rate, 16_000);
    cache.lock().unwrap().insert(text.to_owned(), out.clone());
    Some(out)
}

/// Windowed-sinc (Hann, 64 taps) resampler with an anti-aliasing cutoff: a reference
/// independent of the media crate's.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    use std::f64::consts::PI;
    let ratio = f64::from(to) / f64::from(from);
    let cutoff = ratio.min(1.0) * 0.95;
    let half = 32i64;
    let n_out = (input.len() as f64 * ratio).floor() as usize;
    (0..n_out)
        .map(|j| {
            let t = j as f64 / ratio;
            let center = t.floor() as i64;
            let mut acc = 0.0;
            for k in (center - half + 1)..=(center + half) {
                if k < 0 || k as usize >= input.len() {
                    continue;
                }
                let x = t - k as f64;
                let window = 0.5 + 0.5 * (PI * x / half as f64).cos();
                let y = cutoff * x;
                let sinc = if y.abs() < 1e-12 {
                    1.0
                } else {
                    (PI * y).sin() / (PI * y)
                };
                acc += f64::from(input[k as usize]) * cutoff * sinc * window;
            }
            acc as f32
        })
        .collect()
}
