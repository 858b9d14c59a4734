//! The `switchyard-convert mlx` subcommand (and the hidden `mlx-reference` one the parity test
//! uses), kept here so `main.rs` only lists them.

use std::path::PathBuf;

use super::{FloatType, Method, MlxOptions, MlxReport};

/// `switchyard-convert mlx` arguments.
#[derive(Debug, clap::Args)]
pub struct MlxArgs {
    /// Source: a GGUF file (llama, gemma3), or a Hugging Face folder (config.json +
    /// safetensors + tokenizer files; Llama, Qwen2, Qwen3) whose f32/f16/bf16 weights are
    /// quantised.
    #[arg(long)]
    pub input: PathBuf,
    /// Output folder (mlx-lm layout); written to a temporary folder next to it, then renamed.
    #[arg(long)]
    pub output: PathBuf,
    /// Quantisation group size: 32 (GGUF Q4_0/Q4_1/Q8_0 blocks map exactly), 64 or 128.
    #[arg(long, default_value_t = 32)]
    pub group_size: u32,
    /// Bits of quantised matrices: 2, 3, 4, 5, 6 or 8.
    #[arg(long, default_value_t = 4)]
    pub bits: u32,
    /// Embeddings and output head at 8 bits.
    #[arg(long)]
    pub mixed: bool,
    /// Float type of scales, biases and norms: f16 or f32.
    #[arg(long, default_value = "f16")]
    pub dtype: String,
    /// Replace an existing output folder.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON (and no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchyard-convert mlx`.
pub fn run(args: MlxArgs) -> anyhow::Result<()> {
    let options = MlxOptions {
        group_size: args.group_size,
        bits: args.bits,
        mixed: args.mixed,
        dtype: FloatType::parse(&args.dtype).map_err(anyhow::Error::msg)?,
        overwrite: args.force,
        ..MlxOptions::default()
    };
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
        )?
        .progress_chars("=> "),
    );
    let mut show = |p: &super::Progress<'_>| {
        bar.set_length(p.total_bytes);
        bar.set_position(p.done_bytes);
        bar.set_message(p.step.to_string());
    };
    let result = if args.input.is_dir() {
        super::convert_hf_with_progress(&args.input, &args.output, &options, &mut show)
    } else {
        super::convert_gguf_with_progress(&args.input, &args.output, &options, &mut show)
    };
    bar.finish_and_clear();
    let report = result?;
    #[allow(clippy::print_stdout)]
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", summary(&report));
    }
    Ok(())
}

/// A human-readable summary of a conversion.
pub fn summary(report: &MlxReport) -> String {
    let mut text =
        format!(
        "wrote {} ({}, {}-bit groups of {}{}, {:?}): {} tensors copied exactly, {} with scales \
         rounded to f16, {} re-quantised, {} quantised from floats, {} kept as floats\n\
         {} bytes -> {} bytes ({:.0}%), {:.2} s ({:.1} MB/s)\n\
         tokenizer: {}; ",
        report.output.display(),
        report.architecture,
        report.options.bits,
        report.options.group_size,
        if report.options.mixed { ", embeddings/head 8-bit" } else { "" },
        report.options.dtype,
        report.exact,
        report.scales_rounded,
        report.requantized,
        report.quantized,
        report.float,
        report.source_bytes,
        report.output_bytes,
        100.0 * report.output_bytes as f64 / report.source_bytes.max(1) as f64,
        report.seconds,
        report.mb_per_s,
        match &report.tokenizer {
            Some(t) => format!(
                "rebuilt {} {} tokens, {} merges, {} special",
                t.model, t.vocab, t.merges, t.special_tokens
            ),
            None => "copied from the source folder".to_owned(),
        },
    );
    match &report.tokenizer_check.skipped {
        None => text.push_str(&format!(
            "probe text tokenised like llama.cpp ({} tokens)",
            report.tokenizer_check.tokens
        )),
        Some(why) => text.push_str(&format!("check skipped: {why}")),
    }
    for t in report
        .tensors
        .iter()
        .filter(|t| t.method == Method::Requantized)
    {
        text.push_str(&format!(
            "\n  re-quantised {} ({} -> {}-bit)",
            t.name,
            t.source_type,
            t.bits.unwrap_or(0)
        ));
    }
    text
}

/// `switchyard-convert mlx-reference` arguments (hidden: the MLX parity test's llama.cpp side).
#[derive(Debug, clap::Args)]
pub struct ReferenceArgs {
    /// GGUF model.
    #[arg(long)]
    pub model: PathBuf,
    /// JSON file: an array of `{"prompt": …, "continuation": …}` objects.
    #[arg(long)]
    pub cases: PathBuf,
    /// llama.cpp threads.
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
}

/// Runs `switchyard-convert mlx-reference`: prints [`super::reference::llama_reference`]'s
/// sequences as JSON.
pub fn run_reference(args: ReferenceArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.cases)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.cases.display()))?;
    let cases: Vec<super::reference::ReferenceCase> = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.cases.display()))?;
    let sequences = super::reference::llama_reference(&args.model, &cases, args.threads)?;
    #[allow(clippy::print_stdout)]
    {
        println!("{}", serde_json::to_string(&sequences)?);
    }
    Ok(())
}
