//! Shared helpers of the integration tests: model lookup, text rendering, speech synthesis.

// Test helpers: a panic is how they fail a test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use ab_glyph::FontVec;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_text_mut, text_size};
use switchyard_core::Tensor;
use switchyard_engine_tract::{models_dir, OCR_DET_FILE, OCR_REC_FILE, VAD_FILE};

/// Paths of `files` under the models directory; `None` (after a skip note) when one is
/// missing outside CI. In CI (`CI` set) a missing model fails the test.
pub fn model_paths(files: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = models_dir().expect("no models directory (set SWITCHYARD_MODELS_DIR)");
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        if std::env::var_os("CI").is_some() {
            panic!(
                "model {} is missing (fetch the models first)",
                missing.display()
            );
        }
        eprintln!("skipping: model {} is missing", missing.display());
        return None;
    }
    Some(paths)
}

/// The OCR model, if fetched.
pub fn ocr_model() -> Option<switchyard_engine_tract::ocr::OcrModel> {
    let paths = model_paths(&[OCR_DET_FILE, OCR_REC_FILE])?;
    Some(switchyard_engine_tract::ocr::OcrModel::load(&paths[0], &paths[1]).unwrap())
}

/// The VAD model, if fetched.
pub fn vad_model() -> Option<switchyard_engine_tract::vad::VadModel> {
    let paths = model_paths(&[VAD_FILE])?;
    Some(switchyard_engine_tract::vad::VadModel::load(&paths[0]).unwrap())
}

/// A DejaVu font by file stem (`DejaVuSans`, `DejaVuSerif`, `DejaVuSansMono`).
pub fn font(name: &str) -> FontVec {
    let path = format!("/usr/share/fonts/truetype/dejavu/{name}.ttf");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("font {path}: {e}"));
    FontVec::try_from_vec(bytes).unwrap()
}

/// Black `lines` on white, `px` pixels high, `margin` pixels around, lines 1.6 × px apart.
pub fn render(lines: &[&str], font_name: &str, px: f32, margin: u32) -> RgbImage {
    let font = font(font_name);
    let line_height = (px * 1.6).ceil() as u32;
    let width = lines
        .iter()
        .map(|l| text_size(px, &font, l).0)
        .max()
        .unwrap_or(0);
    let mut image = RgbImage::from_pixel(
        width + 2 * margin,
        line_height * lines.len() as u32 + 2 * margin,
        Rgb([255, 255, 255]),
    );
    for (i, line) in lines.iter().enumerate() {
        let y = margin + i as u32 * line_height + (line_height - px as u32) / 2;
        draw_text_mut(
            &mut image,
            Rgb([0, 0, 0]),
            margin as i32,
            y as i32,
            px,
            &font,
            line,
        );
    }
    image
}

/// An image as a u8 `[height, width, 3]` tensor (takes the buffer, no copy).
pub fn image_tensor(image: RgbImage) -> Tensor {
    let (w, h) = (image.width() as usize, image.height() as usize);
    Tensor::from_vec(image.into_raw(), &[h, w, 3]).unwrap()
}

/// `text` spoken by espeak-ng, as f32 mono 16 kHz samples; `None` without espeak-ng.
pub fn speak(text: &str) -> Option<Vec<f32>> {
    let dir = tempfile_dir();
    let wav = dir.join(format!("speech-{}.wav", text.len()));
    let status = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg(text)
        .status()
        .ok()?;
    assert!(status.success(), "espeak-ng failed");
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!(spec.channels, 1);
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    std::fs::remove_file(&wav).ok();
    Some(resample_linear(&samples, spec.sample_rate as usize, 16_000))
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-tract-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Linear resampling from `from` Hz to `to` Hz.
pub fn resample_linear(samples: &[f32], from: usize, to: usize) -> Vec<f32> {
    if samples.is_empty() {
        return Vec::new();
    }
    let out_len = samples.len() * to / from;
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * from as f64 / to as f64;
            let i0 = pos.floor() as usize;
            let i1 = (i0 + 1).min(samples.len() - 1);
            let frac = (pos - i0 as f64) as f32;
            samples[i0] * (1.0 - frac) + samples[i1] * frac
        })
        .collect()
}

/// Seconds of silence at 16 kHz.
pub fn silence(seconds: f32) -> Vec<f32> {
    vec![0.0; (seconds * 16_000.0) as usize]
}
