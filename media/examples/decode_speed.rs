//! Decode + resample speed: a generated 60 s 44.1 kHz stereo WAV, plus any files given on the
//! command line. Prints seconds of audio decoded per second of wall time (× real time).
//!
//! `cargo run --release -p switchyard-media --example decode_speed [FILE...]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::time::Instant;

use switchyard_core::{CopyLedger, HeapAlloc};
use switchyard_media::audio::{self, AudioLimits};

fn sine_wav(seconds: u32, rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for i in 0..seconds * rate {
        let x = (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin();
        w.write_sample((x * 16_000.0) as i16).unwrap();
        w.write_sample((x * 16_000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

fn measure(name: &str, bytes: &[u8]) {
    let limits = AudioLimits {
        max_bytes: usize::MAX,
        max_seconds: 7200.0,
    };
    let runs = 5;
    let mut best = f64::MAX;
    let mut seconds = 0.0;
    for _ in 0..runs {
        let ledger = CopyLedger::new();
        let started = Instant::now();
        let d = audio::decode(bytes, &limits, &HeapAlloc, &ledger).unwrap();
        best = best.min(started.elapsed().as_secs_f64());
        seconds = d.seconds;
    }
    println!(
        "{name}: {seconds:.1} s of audio in {:.1} ms (best of {runs}) = {:.0}x real time",
        best * 1e3,
        seconds / best
    );
}

fn main() {
    measure("wav 44.1 kHz stereo s16", &sine_wav(60, 44_100));
    for path in std::env::args().skip(1) {
        measure(&path, &std::fs::read(&path).unwrap());
    }
}
