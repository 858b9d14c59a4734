//! Real-time factor of the Piper joe voice: synthesis seconds / audio seconds over a
//! paragraph, sentence by sentence (as the gateway streams it).
//!
//! ```text
//! cargo run --release -p switchyard-engine-onnx --example piper_rtf -- [threads] [rounds]
//! ```
//!
//! Models come from `SWITCHYARD_MODELS_DIR`, else `~/.cache/switchyard/models`.

#![allow(clippy::print_stdout)] // a command-line report

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_engine_onnx::init_runtime;
use switchyard_engine_onnx::piper::{sentences, PiperPaths, PiperVoice, SynthesisOptions};

const PARAGRAPH: &str = "Switchyard is an edge inference gateway. It routes every request to \
    the smallest model that can answer it well, and it keeps the data where the engines wrote \
    it. Dr. Watson measured 3.5 litres of water before breakfast, which was, by his own \
    account, not nearly enough. Was it ever going to be? Nobody could say for sure! The \
    afternoon brought rain, a long walk along the river, and a quiet dinner by the fire.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let models = std::env::var_os("SWITCHYARD_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .ok_or("no models directory")?;
    let paths = PiperPaths::in_models_dir(&models);
    init_runtime(&paths.runtime_library)?;
    let load = Instant::now();
    let voice = PiperVoice::load(&paths.model, &paths.config, threads)?;
    println!(
        "loaded in {:.2} s, {threads} threads",
        load.elapsed().as_secs_f64()
    );

    let chunks = sentences(PARAGRAPH);
    let rate = f64::from(voice.sample_rate());
    let mut best = f64::INFINITY;
    for round in 1..=rounds {
        let mut wall = Duration::ZERO;
        let mut inference = Duration::ZERO;
        let mut first_chunk = Duration::ZERO;
        let mut samples = 0usize;
        for (i, chunk) in chunks.iter().enumerate() {
            let started = Instant::now();
            let s = voice.synthesize_with_stats(chunk, &SynthesisOptions::default())?;
            let took = started.elapsed();
            if i == 0 {
                first_chunk = took;
            }
            wall += took;
            inference += s.inference;
            samples += s.audio.numel();
        }
        let audio_s = samples as f64 / rate;
        let rtf = wall.as_secs_f64() / audio_s;
        best = best.min(rtf);
        println!(
            "round {round}: {} sentences, {audio_s:.2} s audio in {:.3} s (ONNX Runtime {:.3} s, \
             first sentence {:.3} s): RTF {rtf:.4}",
            chunks.len(),
            wall.as_secs_f64(),
            inference.as_secs_f64(),
            first_chunk.as_secs_f64(),
        );
    }
    println!("best RTF {best:.4} ({threads} threads)");
    Ok(())
}
