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
    /// Convert a Hugging Face folder (safetensors + tokenizer.json) into a GGUF for llama.cpp,
    /// optionally quantised with llama.cpp's own quantizer (written atomically, verified).
    HfGguf(HfGgufArgs),
    /// Convert a GGUF (llama, gemma3) or a Hugging Face folder (Llama, Qwen2, Qwen3) into an
    /// mlx-lm model folder: 4-bit affine groups, GGUF Q4_0/Q4_1/Q8_0 blocks copied exactly
    /// (written atomically, verified).
    Mlx(switchyard_converter::mlx::cli::MlxArgs),
    /// llama.cpp's tokens and teacher-forced top-1 next tokens for prompt + continuation
    /// cases, as JSON (the MLX parity test's reference side).
    #[command(hide = true)]
    MlxReference(switchyard_converter::mlx::cli::ReferenceArgs),
    /// For each model, the artifact a device profile needs, its expected size, whether it
    /// exists, and whether weights + KV cache fit the profile's memory budget.
    Plan(switchyard_converter::profile_cli::PlanArgs),
    /// Make what `plan` lists as missing, verify each artifact, record it in the manifest.
    Build(switchyard_converter::profile_cli::BuildArgs),
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
    /// Quantise a whisper.cpp ggml model (F16 or F32) to Q8_0, as whisper.cpp's `quantize`
    /// tool does (written atomically: temp file, verified, renamed).
    WhisperQuantize {
        /// Source ggml model (e.g. ggml-model.bin, from `whisper-ct2`).
        #[arg(long)]
        input: std::path::PathBuf,
        /// Output ggml model.
        #[arg(long)]
        output: std::path::PathBuf,
        /// Target type: q8_0.
        #[arg(long = "type", value_name = "TYPE", default_value = "q8_0")]
        target: switchyard_converter::whisper_quant::WhisperQuantType,
        /// Print the conversion report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a device variant of an ONNX model: weight-only INT8 QDQ (per channel or per
    /// tensor) or FP16 weights (written atomically: temp file, verified, renamed).
    Onnx {
        /// Source ONNX model.
        #[arg(long)]
        input: std::path::PathBuf,
        /// Output ONNX model.
        #[arg(long)]
        output: std::path::PathBuf,
        /// int8-qdq-per-channel, int8-qdq-per-tensor or fp16.
        #[arg(long)]
        variant: switchyard_converter::onnx_variants::OnnxVariant,
        /// Print the conversion report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::HfGguf(args) => hf_gguf(args)?,
        Command::Mlx(args) => switchyard_converter::mlx::cli::run(args)?,
        Command::MlxReference(args) => switchyard_converter::mlx::cli::run_reference(args)?,
        Command::Plan(args) => switchyard_converter::profile_cli::run_plan(&args)?,
        Command::Build(args) => switchyard_converter::profile_cli::run_build(&args)?,
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
        Command::WhisperQuantize {
            input,
            output,
            target,
            json,
        } => {
            let report = switchyard_converter::whisper_quant::quantize(&input, &output, target)?;
            #[allow(clippy::print_stdout)]
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "wrote {} ({}, ftype {}): {} of {} tensors quantised, {} -> {} bytes \
                     ({:.1}%), {:.2} s ({:.1} MB/s); max error {:.4} of the block maximum, RMS \
                     error {:.2}%",
                    report.output.display(),
                    report.target,
                    report.ftype_after,
                    report.tensors_quantized,
                    report.tensors,
                    report.bytes_before,
                    report.bytes_after,
                    100.0 * report.bytes_after as f64 / report.bytes_before.max(1) as f64,
                    report.seconds,
                    report.mb_per_s,
                    report.max_block_error,
                    report.rms_relative_error * 100.0
                );
            }
        }
        Command::Onnx {
            input,
            output,
            variant,
            json,
        } => {
            let report = switchyard_converter::onnx_variants::convert(&input, &output, variant)?;
            #[allow(clippy::print_stdout)]
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "wrote {} ({}): {} tensors converted, {} -> {} bytes ({:.1}%), {:.2} s ({:.1} MB/s)",
                    report.output.display(),
                    report.variant,
                    report.tensors_converted,
                    report.bytes_before,
                    report.bytes_after,
                    100.0 * report.bytes_after as f64 / report.bytes_before.max(1) as f64,
                    report.seconds,
                    report.mb_per_s
                );
                for change in &report.opset_changes {
                    println!("  opset: {change}");
                }
                for kept in &report.largest_kept {
                    println!(
                        "  kept {} {:?} ({} bytes): {}",
                        kept.name, kept.dims, kept.bytes, kept.reason
                    );
                }
            }
        }
    }
    Ok(())
}

/// `switchyard-convert hf-gguf` arguments.
#[derive(clap::Args)]
struct HfGgufArgs {
    /// Hugging Face model folder (config.json, *.safetensors, tokenizer.json).
    #[arg(long)]
    input: std::path::PathBuf,
    /// Output GGUF file.
    #[arg(long)]
    output: std::path::PathBuf,
    /// Converted weight type: f32 or f16.
    #[arg(long = "type", value_name = "TYPE", default_value = "f16")]
    out_type: String,
    /// Then quantise with llama.cpp: q8_0, q4_k_m, q4_0, q4_1 (the f32/f16 GGUF is only an
    /// intermediate).
    #[arg(long, value_name = "TYPE")]
    quantize: Option<String>,
    /// Quantizer threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Encoders: pooling to record (mean, cls, last); default: sentence-transformers' config,
    /// else mean.
    #[arg(long)]
    pooling: Option<String>,
    /// Byte-level BPE: llama.cpp pre-tokenizer name, overriding detection (e.g. llama-bpe).
    #[arg(long = "pre", value_name = "NAME")]
    pre_tokenizer: Option<String>,
    /// Print the report as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
}

fn hf_gguf(args: HfGgufArgs) -> anyhow::Result<()> {
    use switchyard_converter::hf_gguf::{self, HfGgufOptions, OutType, Pooling, Progress};
    use switchyard_engine_llamacpp::quantize::QuantType;
    let options = HfGgufOptions {
        out_type: OutType::parse(&args.out_type).map_err(anyhow::Error::msg)?,
        quantize: args
            .quantize
            .as_deref()
            .map(QuantType::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        threads: args.threads,
        pooling: args
            .pooling
            .as_deref()
            .map(Pooling::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        pre_tokenizer: args.pre_tokenizer,
    };
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
        )?
        .progress_chars("=> "),
    );
    let report =
        hf_gguf::convert_with_progress(&args.input, &args.output, &options, &mut |p| match p {
            Progress::Start { bytes, .. } => {
                bar.set_length(bytes);
                bar.set_message("converting");
            }
            Progress::Tensor { bytes_done, .. } => bar.set_position(bytes_done),
            Progress::Verifying => bar.set_message("verifying (llama.cpp load)"),
            Progress::Quantizing { target } => bar.set_message(format!("quantising to {target}")),
        });
    bar.finish_and_clear();
    let report = report?;
    #[allow(clippy::print_stdout)]
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wrote {} ({} {}, {} tensors, {} bytes from {} source bytes): converted in {:.2} s \
             ({:.1} MB/s){}",
            report.output.display(),
            report.architecture,
            report
                .quantized
                .as_deref()
                .unwrap_or(report.out_type.name()),
            report.tensors,
            report.output_bytes,
            report.source_bytes,
            report.convert_seconds,
            report.convert_mb_per_s,
            report
                .quantize_seconds
                .map(|s| format!(", quantised in {s:.2} s"))
                .unwrap_or_default()
        );
        println!(
            "tokenizer: {} (pre {}), {} tokens, {} merges, chat template: {}",
            report.tokenizer.model,
            report.tokenizer.pre,
            report.tokenizer.tokens,
            report.tokenizer.merges,
            if report.tokenizer.chat_template {
                "yes"
            } else {
                "no"
            }
        );
    }
    Ok(())
}
