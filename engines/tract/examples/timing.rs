//! Times OCR per image and VAD real-time factor with the fetched models.
//!
//! `cargo run --release -p switchyard-engine-tract --example timing [iterations]`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ab_glyph::FontVec;
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_text_mut;
use switchyard_core::{CopyLedger, Tensor};
use switchyard_engine_tract::ocr::OcrModel;
use switchyard_engine_tract::vad::{VadModel, VadOptions};
use switchyard_engine_tract::{models_dir, OCR_DET_FILE, OCR_REC_FILE, VAD_FILE};

fn document(width: u32, height: u32, lines: usize, px: f32) -> Tensor {
    let font = FontVec::try_from_vec(
        std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").unwrap(),
    )
    .unwrap();
    let mut image = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for i in 0..lines {
        let text = format!(
            "Line {i}: the invoice total is {}.{:02} EUR",
            100 + i * 7,
            i * 3 % 100
        );
        let y = 20 + (i as f32 * px * 1.6) as i32;
        draw_text_mut(&mut image, Rgb([0, 0, 0]), 20, y, px, &font, &text);
    }
    let (w, h) = (width as usize, height as usize);
    Tensor::from_vec(image.into_raw(), &[h, w, 3]).unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let dir = models_dir().expect("models dir");

    let started = Instant::now();
    let ocr = OcrModel::load(&dir.join(OCR_DET_FILE), &dir.join(OCR_REC_FILE)).unwrap();
    println!("ocr load: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    for (name, image) in [
        ("640x480, 8 lines @24px", document(640, 480, 8, 24.0)),
        ("1280x720, 12 lines @32px", document(1280, 720, 12, 32.0)),
        (
            "1920x1080 (det 960x544), 16 lines @40px",
            document(1920, 1080, 16, 40.0),
        ),
    ] {
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..iterations {
            let t = Instant::now();
            count = ocr.recognize(&image, &CopyLedger::new()).unwrap().len();
            times.push(t.elapsed());
        }
        // The same size, blank: detector only (no boxes to recognize).
        let shape = image.shape().to_vec();
        let blank = Tensor::from_vec(vec![255u8; shape.iter().product()], &shape).unwrap();
        let mut det_times = Vec::new();
        for _ in 0..iterations {
            let t = Instant::now();
            ocr.recognize(&blank, &CopyLedger::new()).unwrap();
            det_times.push(t.elapsed());
        }
        println!(
            "ocr {name}: median {:.1} ms ({count} lines, {iterations} runs); detector alone {:.1} ms",
            median(times).as_secs_f64() * 1e3,
            median(det_times).as_secs_f64() * 1e3
        );
    }

    let started = Instant::now();
    let vad = VadModel::load(&dir.join(VAD_FILE)).unwrap();
    println!("vad load: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    let seconds = 60usize;
    let audio: Vec<f32> = (0..seconds * 16_000)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            let voiced = !(t as usize).is_multiple_of(3);
            if voiced {
                0.3 * (t * 2.0 * std::f32::consts::PI * 180.0).sin() * (t * 7.0).sin().abs()
            } else {
                0.0
            }
        })
        .collect();
    let tensor = Tensor::from_vec(audio, &[seconds * 16_000]).unwrap();
    let mut times = Vec::new();
    for _ in 0..iterations.clamp(1, 5) {
        let t = Instant::now();
        vad.speech_segments(&tensor, &VadOptions::default())
            .unwrap();
        times.push(t.elapsed());
    }
    let elapsed = median(times).as_secs_f64();
    println!(
        "vad {seconds} s of audio: median {:.1} ms, real-time factor {:.4} ({:.0}x faster than real time)",
        elapsed * 1e3,
        elapsed / seconds as f64,
        seconds as f64 / elapsed
    );
}
