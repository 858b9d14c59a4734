//! `switchyard-convert`: produce per-device model artifacts.

use clap::{Parser, Subcommand};

/// Produce the model artifacts each Switchyard device profile needs.
#[derive(Parser)]
#[command(name = "switchyard-convert", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the artifact formats a device profile reads.
    Plan {
        /// Device profile name.
        #[arg(long, default_value = switchyard_profiles::DEFAULT_PROFILE)]
        profile: String,
    },
    /// Quantise a GGUF model with llama.cpp's own quantizer (written atomically).
    Quantize {
        /// Source GGUF file.
        #[arg(long)]
        input: std::path::PathBuf,
        /// Output GGUF file.
        #[arg(long)]
        output: std::path::PathBuf,
        /// Target type: f16, q8_0, q4_0, q4_1, q4_k_m.
        #[arg(long = "type", value_name = "TYPE")]
        target: String,
        /// Quantizer threads.
        #[arg(long, default_value_t = 2)]
        threads: u32,
        /// Allow re-quantising an already quantised source (adds rounding error).
        #[arg(long)]
        allow_requantize: bool,
    },
    /// Convert a CTranslate2 Whisper model directory into a whisper.cpp ggml model file.
    WhisperCt2 {
        /// CTranslate2 model directory (model.bin, vocabulary.txt).
        #[arg(long)]
        input: std::path::PathBuf,
        /// Output ggml file (written atomically: temp file + rename).
        #[arg(long)]
        output: std::path::PathBuf,
        /// Print the conversion report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan { profile } => {
            switchyard_profiles::builtin(&profile)?;
            let formats = switchyard_converter::formats_for_profile(&profile);
            #[allow(clippy::print_stdout)]
            {
                println!("profile {profile} reads: {}", formats.join(", "));
            }
        }
        Command::Quantize {
            input,
            output,
            target,
            threads,
            allow_requantize,
        } => {
            use switchyard_engine_llamacpp::quantize::{quantize, QuantType, QuantizeOptions};
            let target = QuantType::parse(&target).map_err(anyhow::Error::msg)?;
            let started = std::time::Instant::now();
            quantize(
                &input,
                &output,
                &QuantizeOptions {
                    target,
                    threads,
                    allow_requantize,
                },
            )?;
            let bytes = std::fs::metadata(&output)?.len();
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "wrote {} ({} bytes, {}) in {:.1} s",
                    output.display(),
                    bytes,
                    target.name(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Command::WhisperCt2 {
            input,
            output,
            json,
        } => {
            let report = switchyard_converter::ct2_whisper::convert(&input, &output)?;
            #[allow(clippy::print_stdout)]
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "wrote {} ({} bytes, {} tensors, {} vocab tokens)",
                    report.output.display(),
                    report.bytes,
                    report.tensors,
                    report.vocab_tokens
                );
            }
        }
    }
    Ok(())
}
