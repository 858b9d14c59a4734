//! GGUF → MLX (mlx-lm's layout) conversion.
//!
//! The output folder holds what `mlx_lm.load` reads:
//! - `model.safetensors` (or `model-0000i-of-0000n.safetensors` + `model.safetensors.index.json`
//!   past [`MlxOptions::max_shard_bytes`]): quantised matrices as `weight` (`uint32` codes),
//!   `scales` and `biases`; norms as floats;
//! - `config.json`: the architecture plus a `quantization` block (`group_size`, `bits`, and one
//!   override per module quantised differently, e.g. 8-bit embeddings with `mixed`);
//! - `tokenizer.json`, `tokenizer_config.json` (with the chat template), `special_tokens_map.json`
//!   and `generation_config.json`, rebuilt from the GGUF vocabulary ([`tokenizer`]).
//!
//! GGUF `Q4_0`/`Q4_1`/`Q8_0` (and `Q4_K`) blocks map onto MLX affine groups of 32 exactly
//! ([`quant`]); any other type is dequantised with ggml's own routines and re-quantised with
//! MLX's affine rule, and the report lists those tensors. llama.cpp's rotary row permutation
//! of Llama Q/K projections is undone row by row (quantised groups never straddle rows).
//!
//! The GGUF is memory-mapped and converted one tensor at a time (peak memory: about the
//! largest output tensor). Everything is written to a temporary folder next to the output,
//! read back and verified (shapes, a bit-exact check of mapped rows against ggml's
//! dequantisation, the tokenizer against llama.cpp's), and only then renamed into place.

pub mod arch;
pub mod cli;
pub mod from_hf;
pub mod ggml;
pub mod gguf;
pub mod quant;
pub mod reference;
pub mod tokenizer;
mod writer;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use half::f16;
use serde_json::{json, Map, Value as Json};

use arch::{Arch, Kind};
use gguf::{GgufFile, TensorInfo};
use quant::Packed;
use writer::Entry;

pub use from_hf::{convert_hf, convert_hf_with_progress};

/// Why a conversion failed. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum MlxError {
    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The GGUF is truncated or malformed.
    #[error("{}: corrupt GGUF at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset where parsing stopped (0 when not tied to one place).
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A valid GGUF this converter cannot convert (architecture, tensor type, …).
    #[error("{}: unsupported: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// The GGUF's vocabulary cannot be turned into tokenizer files.
    #[error("{}: tokenizer: {reason}", path.display())]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Options that cannot work (e.g. a group size MLX does not support).
    #[error("invalid options: {0}")]
    Options(String),
    /// The Hugging Face source folder is unreadable, inconsistent with its config.json, or of
    /// an unsupported architecture.
    #[error(transparent)]
    HuggingFace(#[from] crate::hf_gguf::HfGgufError),
    /// The written output did not read back as planned; nothing was moved into place.
    #[error("{}: verification failed: {reason}", path.display())]
    Verify {
        /// The file that failed.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> MlxError + '_ {
    move |error| MlxError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Float type of scales, biases and unquantised tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatType {
    /// IEEE half precision (mlx-lm's usual choice; GGUF block scales are f16 already).
    F16,
    /// Single precision: larger, and makes `Q4_K` sub-block scales exact too.
    F32,
}

impl FloatType {
    /// Parses `f16` / `float16` / `f32` / `float32`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "f16" | "float16" => Ok(Self::F16),
            "f32" | "float32" => Ok(Self::F32),
            other => Err(format!("unknown float type '{other}' (accepted: f16, f32)")),
        }
    }

    fn safetensors_name(self) -> &'static str {
        match self {
            Self::F16 => "F16",
            Self::F32 => "F32",
        }
    }

    fn size(self) -> usize {
        match self {
            Self::F16 => 2,
            Self::F32 => 4,
        }
    }

    fn torch_name(self) -> &'static str {
        match self {
            Self::F16 => "float16",
            Self::F32 => "float32",
        }
    }

    fn push(self, value: f32, out: &mut Vec<u8>) {
        match self {
            Self::F16 => out.extend_from_slice(&f16::from_f32(value).to_le_bytes()),
            Self::F32 => out.extend_from_slice(&value.to_le_bytes()),
        }
    }

    fn round(self, value: f32) -> f32 {
        match self {
            Self::F16 => f16::from_f32(value).to_f32(),
            Self::F32 => value,
        }
    }
}

/// Conversion settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MlxOptions {
    /// Elements per quantisation group: 32, 64 or 128. Only 32 lets GGUF blocks map exactly.
    pub group_size: u32,
    /// Bits per weight of quantised matrices: 2, 3, 4, 5, 6 or 8.
    pub bits: u32,
    /// Embeddings and output head at 8 bits (higher precision), the rest at `bits`.
    pub mixed: bool,
    /// Float type of scales, biases and unquantised tensors.
    pub dtype: FloatType,
    /// Largest safetensors shard; more weights than this are split into several files.
    pub max_shard_bytes: u64,
    /// Replace an existing output folder (it is swapped out only after the new one is complete).
    pub overwrite: bool,
    /// Compare the rebuilt tokenizer with llama.cpp's tokenisation of a probe text.
    pub check_tokenizer: bool,
}

impl Default for MlxOptions {
    fn default() -> Self {
        MlxOptions {
            group_size: 32,
            bits: 4,
            mixed: false,
            dtype: FloatType::F16,
            max_shard_bytes: 5 << 30,
            overwrite: false,
            check_tokenizer: true,
        }
    }
}

impl MlxOptions {
    fn validate(&self) -> Result<(), MlxError> {
        if ![32, 64, 128].contains(&self.group_size) {
            return Err(MlxError::Options(format!(
                "group size {} is not supported by MLX (32, 64 or 128)",
                self.group_size
            )));
        }
        if ![2, 3, 4, 5, 6, 8].contains(&self.bits) {
            return Err(MlxError::Options(format!(
                "{} bits is not supported by MLX affine quantisation (2, 3, 4, 5, 6 or 8)",
                self.bits
            )));
        }
        if self.max_shard_bytes == 0 {
            return Err(MlxError::Options("max_shard_bytes must be positive".into()));
        }
        Ok(())
    }
}

/// How one tensor was converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// GGUF blocks copied into MLX groups: dequantised values identical.
    Exact,
    /// GGUF `Q4_K` sub-blocks copied into MLX groups, their scales rounded once to f16.
    ScalesRounded,
    /// Dequantised and re-quantised with MLX's affine rule.
    Requantized,
    /// Floating-point source weights (Hugging Face) quantised with MLX's affine rule.
    Quantized,
    /// Kept as floats (norms; matrices whose rows do not divide into groups).
    Float,
}

/// One converted tensor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorReport {
    /// mlx-lm parameter name.
    pub name: String,
    /// GGUF tensor name.
    pub source: String,
    /// GGUF element type (`q4_1`, `f32`, …).
    pub source_type: String,
    /// Shape in the Hugging Face layout (`[out, in]`).
    pub shape: Vec<u64>,
    /// How it was converted.
    pub method: Method,
    /// MLX bits, for quantised tensors.
    pub bits: Option<u32>,
    /// Rows reordered to undo llama.cpp's rotary permutation.
    pub unpermuted: bool,
}

/// How the rebuilt tokenizer was checked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenizerCheck {
    /// Tokens in the probe text, as llama.cpp tokenised it (0 when not checked).
    pub tokens: usize,
    /// Why the check was skipped, when it was.
    pub skipped: Option<String>,
}

/// What a conversion produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MlxReport {
    /// The GGUF read.
    pub input: PathBuf,
    /// The folder written.
    pub output: PathBuf,
    /// `general.architecture`.
    pub architecture: String,
    /// Settings used.
    pub options: MlxOptions,
    /// Tensors copied exactly (GGUF blocks → MLX groups).
    pub exact: usize,
    /// Tensors copied with scales rounded to f16 (`Q4_K`).
    pub scales_rounded: usize,
    /// Tensors dequantised and re-quantised (named in `tensors`).
    pub requantized: usize,
    /// Floating-point source tensors quantised (Hugging Face sources).
    pub quantized: usize,
    /// Tensors kept as floats.
    pub float: usize,
    /// Every tensor, in file order.
    pub tensors: Vec<TensorReport>,
    /// Size of the GGUF in bytes.
    pub source_bytes: u64,
    /// Total size of the output folder in bytes.
    pub output_bytes: u64,
    /// Files written, relative to the output folder.
    pub files: Vec<String>,
    /// Tokenizer rebuild summary; `None` when the tokenizer files were copied unchanged from
    /// a Hugging Face folder.
    pub tokenizer: Option<tokenizer::TokenizerSummary>,
    /// Tokenizer check against llama.cpp.
    pub tokenizer_check: TokenizerCheck,
    /// Wall-clock seconds, verification included.
    pub seconds: f64,
    /// GGUF bytes per second, in MB/s (10^6 bytes).
    pub mb_per_s: f64,
}

impl MlxReport {
    /// mlx-lm names of the tensors that were re-quantised.
    pub fn requantized_names(&self) -> Vec<&str> {
        self.tensors
            .iter()
            .filter(|t| t.method == Method::Requantized)
            .map(|t| t.name.as_str())
            .collect()
    }
}

/// Progress of a running conversion.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// What is being done (a tensor name, or a step such as `verifying`).
    pub step: &'a str,
    /// GGUF tensor bytes converted so far.
    pub done_bytes: u64,
    /// GGUF tensor bytes in all.
    pub total_bytes: u64,
}

/// Converts the GGUF `input` into an mlx-lm model folder at `output_dir`.
pub fn convert_gguf(
    input: &Path,
    output_dir: &Path,
    options: &MlxOptions,
) -> Result<MlxReport, MlxError> {
    convert_gguf_with_progress(input, output_dir, options, &mut |_| {})
}

/// How a planned tensor is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Map { bits: u32 },
    Requantize { bits: u32 },
    Float,
}

struct Job {
    tensor: TensorInfo,
    target: arch::Target,
    plan: Plan,
    rows: usize,
    row_len: usize,
}

impl Job {
    fn base(&self) -> &str {
        self.target
            .name
            .strip_suffix(".weight")
            .unwrap_or(&self.target.name)
    }

    fn bits(&self) -> Option<u32> {
        match self.plan {
            Plan::Map { bits } | Plan::Requantize { bits } => Some(bits),
            Plan::Float => None,
        }
    }

    fn entries(&self, options: &MlxOptions) -> Vec<Entry> {
        let dtype = options.dtype;
        let shape: Vec<u64> = self.tensor.dims.iter().rev().copied().collect();
        match self.bits() {
            None => vec![Entry::new(
                self.target.name.clone(),
                dtype.safetensors_name(),
                shape,
                self.tensor.elements() as usize * dtype.size(),
            )],
            Some(bits) => quantized_entries(self.base(), self.rows, self.row_len, bits, options),
        }
    }

    fn source_row(&self, row: usize) -> usize {
        match self.target.unpermute_head_dim {
            Some(head_dim) => quant::unpermuted_source_row(row, head_dim),
            None => row,
        }
    }
}

/// [`convert_gguf`], calling `progress` as tensors are converted.
pub fn convert_gguf_with_progress(
    input: &Path,
    output_dir: &Path,
    options: &MlxOptions,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<MlxReport, MlxError> {
    let started = Instant::now();
    options.validate()?;
    let gguf = GgufFile::open(input)?;
    let arch = arch::describe(&gguf)?;
    let jobs = plan_jobs(&gguf, &arch, options)?;
    let tokenizer = tokenizer::build(&gguf)?;

    let tmp = partial_dir(output_dir, options.overwrite)?;
    let dir = tmp.path();

    // Shards: whole tensors (weight + scales + biases together), in GGUF order.
    let entries: Vec<Vec<Entry>> = jobs.iter().map(|j| j.entries(options)).collect();
    let shards = writer::plan_shards(&entries, options.max_shard_bytes);
    let total_bytes: u64 = jobs.iter().map(|j| j.tensor.len as u64).sum();
    let mut methods = vec![Method::Float; jobs.len()];
    let done_bytes = write_shards(dir, &shards, total_bytes, progress, &mut |index| {
        let job = &jobs[index];
        let (method, buffers) = convert_tensor(&gguf, job, options)?;
        gguf.release(&job.tensor);
        methods[index] = method;
        Ok((&job.target.name, job.tensor.len as u64, buffers))
    })?;
    progress(&Progress {
        step: "writing config and tokenizer",
        done_bytes,
        total_bytes,
    });

    let mut files: Vec<String> = shards.iter().map(|s| s.file.clone()).collect();
    if shards.len() > 1 {
        let index = writer::index_json(&shards);
        write_json(&dir.join("model.safetensors.index.json"), &index)?;
        files.push("model.safetensors.index.json".into());
    }
    let config = config_json(&arch, &jobs, options, &tokenizer);
    write_json(&dir.join("config.json"), &config)?;
    let tokenizer_path = dir.join("tokenizer.json");
    fs::write(&tokenizer_path, &tokenizer.tokenizer_json).map_err(io_error(&tokenizer_path))?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &tokenizer.tokenizer_config,
    )?;
    write_json(
        &dir.join("special_tokens_map.json"),
        &tokenizer.special_tokens_map,
    )?;
    let mut generation = Map::new();
    if let Some(bos) = tokenizer.bos {
        generation.insert("bos_token_id".into(), json!(bos));
    }
    match tokenizer.eos.as_slice() {
        [] => {}
        [one] => {
            generation.insert("eos_token_id".into(), json!(one));
        }
        many => {
            generation.insert("eos_token_id".into(), json!(many));
        }
    }
    if let Some(pad) = tokenizer.pad {
        generation.insert("pad_token_id".into(), json!(pad));
    }
    write_json(
        &dir.join("generation_config.json"),
        &Json::Object(generation),
    )?;
    files.extend(
        [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "generation_config.json",
        ]
        .map(String::from),
    );

    progress(&Progress {
        step: "verifying",
        done_bytes,
        total_bytes,
    });
    verify::outputs(&gguf, dir, &jobs, &methods, &shards, options)?;
    let tokenizer_check = if options.check_tokenizer {
        verify::tokenizer(input, &tokenizer_path)?
    } else {
        TokenizerCheck {
            tokens: 0,
            skipped: Some("disabled".into()),
        }
    };
    let output_bytes = files_size(dir, &files)?;
    publish(tmp, output_dir, options.overwrite)?;

    let tensors: Vec<TensorReport> = jobs
        .iter()
        .zip(&methods)
        .map(|(job, &method)| TensorReport {
            name: job.target.name.clone(),
            source: job.tensor.name.clone(),
            source_type: job.tensor.ggml_type.name.to_string(),
            shape: job.tensor.dims.iter().rev().copied().collect(),
            method,
            bits: job.bits(),
            unpermuted: job.target.unpermute_head_dim.is_some(),
        })
        .collect();
    let count = |m: Method| tensors.iter().filter(|t| t.method == m).count();
    let seconds = started.elapsed().as_secs_f64();
    let source_bytes = gguf.file_len();
    Ok(MlxReport {
        input: input.to_path_buf(),
        output: output_dir.to_path_buf(),
        architecture: arch.name.clone(),
        options: options.clone(),
        exact: count(Method::Exact),
        scales_rounded: count(Method::ScalesRounded),
        requantized: count(Method::Requantized),
        quantized: count(Method::Quantized),
        float: count(Method::Float),
        tensors,
        source_bytes,
        output_bytes,
        files,
        tokenizer: Some(tokenizer.summary),
        tokenizer_check,
        seconds,
        mb_per_s: source_bytes as f64 / 1e6 / seconds.max(1e-9),
    })
}

fn plan_jobs(gguf: &GgufFile, arch: &Arch, options: &MlxOptions) -> Result<Vec<Job>, MlxError> {
    let mut jobs = Vec::with_capacity(gguf.tensors.len());
    for tensor in &gguf.tensors {
        let unsupported = |reason: String| MlxError::Unsupported {
            path: gguf.path().to_path_buf(),
            reason,
        };
        let target = arch.target(&tensor.name).ok_or_else(|| {
            unsupported(format!(
                "tensor {} is not known for architecture '{}'",
                tensor.name, arch.name
            ))
        })?;
        if tensor.dims.len() > 2 {
            return Err(unsupported(format!(
                "tensor {} has {} dimensions",
                tensor.name,
                tensor.dims.len()
            )));
        }
        if !tensor.ggml_type.can_dequantize() {
            return Err(unsupported(format!(
                "tensor {} has type {}, which ggml cannot dequantise",
                tensor.name, tensor.ggml_type.name
            )));
        }
        let rows = usize::try_from(tensor.rows()).map_err(|_| unsupported("too large".into()))?;
        let row_len =
            usize::try_from(tensor.row_len()).map_err(|_| unsupported("too large".into()))?;
        if let Some(head_dim) = target.unpermute_head_dim {
            if tensor.dims.len() != 2
                || !rows.is_multiple_of(head_dim)
                || !head_dim.is_multiple_of(2)
            {
                return Err(unsupported(format!(
                    "tensor {}: {rows} rows do not divide into heads of {head_dim}",
                    tensor.name
                )));
            }
        }
        let quantize = target.kind != Kind::Float
            && tensor.dims.len() == 2
            && row_len % options.group_size as usize == 0;
        let plan = if quantize {
            let wanted = match target.kind {
                Kind::Embedding if options.mixed => 8,
                Kind::Linear if options.mixed && target.name == "lm_head.weight" => 8,
                _ => options.bits,
            };
            match quant::exact_bits(tensor.ggml_type.id) {
                // A source block maps exactly at its own width; asking for more bits than the
                // source has would only add zeros, so the source width is kept.
                Some(bits) if options.group_size == 32 && bits <= wanted => Plan::Map { bits },
                _ => Plan::Requantize { bits: wanted },
            }
        } else {
            Plan::Float
        };
        jobs.push(Job {
            tensor: tensor.clone(),
            target,
            plan,
            rows,
            row_len,
        });
    }
    if !jobs.iter().any(|j| j.target.kind == Kind::Embedding) {
        return Err(MlxError::Unsupported {
            path: gguf.path().to_path_buf(),
            reason: "no token_embd.weight tensor".into(),
        });
    }
    Ok(jobs)
}

/// What [`write_shards`] asks for each group: its progress label, the source bytes it covers
/// and its output buffers (in entry order).
type Converted<'a> = (&'a str, u64, Vec<Vec<u8>>);

/// Writes every shard of `shards` into `dir`, calling `convert(index)` for each group (one
/// source tensor) in order and reporting progress after each. Returns the source bytes done.
fn write_shards<'a>(
    dir: &Path,
    shards: &[writer::ShardPlan],
    total_bytes: u64,
    progress: &mut dyn FnMut(&Progress<'_>),
    convert: &mut dyn FnMut(usize) -> Result<Converted<'a>, MlxError>,
) -> Result<u64, MlxError> {
    let mut done_bytes = 0u64;
    let mut index = 0usize;
    for shard in shards {
        let path = dir.join(&shard.file);
        let mut out = writer::ShardWriter::create(&path, shard)?;
        for _ in &shard.groups {
            let (step, bytes, buffers) = convert(index)?;
            for buffer in &buffers {
                out.write_tensor(buffer)?;
            }
            done_bytes += bytes;
            progress(&Progress {
                step,
                done_bytes,
                total_bytes,
            });
            index += 1;
        }
        out.finish()?;
    }
    Ok(done_bytes)
}

/// Total size of `files` in `dir`.
fn files_size(dir: &Path, files: &[String]) -> Result<u64, MlxError> {
    let mut total = 0u64;
    for file in files {
        let path = dir.join(file);
        total += fs::metadata(&path).map_err(io_error(&path))?.len();
    }
    Ok(total)
}

/// The three tensors of a quantised matrix `base` (`rows` × `row_len`): packed `uint32` codes,
/// then per-group scales and biases.
fn quantized_entries(
    base: &str,
    rows: usize,
    row_len: usize,
    bits: u32,
    options: &MlxOptions,
) -> Vec<Entry> {
    let dtype = options.dtype;
    let words = row_len * bits as usize / 32;
    let groups = row_len / options.group_size as usize;
    vec![
        Entry::new(
            format!("{base}.weight"),
            "U32",
            vec![rows as u64, words as u64],
            rows * words * 4,
        ),
        Entry::new(
            format!("{base}.scales"),
            dtype.safetensors_name(),
            vec![rows as u64, groups as u64],
            rows * groups * dtype.size(),
        ),
        Entry::new(
            format!("{base}.biases"),
            dtype.safetensors_name(),
            vec![rows as u64, groups as u64],
            rows * groups * dtype.size(),
        ),
    ]
}

/// Scales and biases of `packed` in the output float type, after the codes: the buffers of
/// [`quantized_entries`].
fn packed_buffers(packed: Packed, dtype: FloatType) -> Vec<Vec<u8>> {
    let mut scales = Vec::with_capacity(packed.scales.len() * dtype.size());
    let mut biases = Vec::with_capacity(packed.biases.len() * dtype.size());
    for &s in &packed.scales {
        dtype.push(s, &mut scales);
    }
    for &b in &packed.biases {
        dtype.push(b, &mut biases);
    }
    vec![packed.weight, scales, biases]
}

/// Converts one tensor into its output buffers (in the order of [`Job::entries`]).
fn convert_tensor(
    gguf: &GgufFile,
    job: &Job,
    options: &MlxOptions,
) -> Result<(Method, Vec<Vec<u8>>), MlxError> {
    let data = gguf.data(&job.tensor);
    let row_bytes = data.len() / job.rows.max(1);
    let row = |r: usize| {
        let s = job.source_row(r);
        &data[s * row_bytes..(s + 1) * row_bytes]
    };
    let dtype = options.dtype;
    let group_size = options.group_size as usize;
    let dequantize = |r: usize, out: &mut [f32]| -> Result<(), MlxError> {
        if job.tensor.ggml_type.dequantize(row(r), out) {
            Ok(())
        } else {
            Err(MlxError::Unsupported {
                path: gguf.path().to_path_buf(),
                reason: format!(
                    "tensor {}: cannot dequantise {}",
                    job.tensor.name, job.tensor.ggml_type.name
                ),
            })
        }
    };
    let pack = |packed: Packed| packed_buffers(packed, dtype);
    let mut values = vec![0f32; job.row_len];
    match job.plan {
        Plan::Map { bits } => {
            let mut packed = Packed::with_capacity(job.rows, job.row_len, bits, 32);
            let mut all_exact = true;
            let mut mapped = true;
            for r in 0..job.rows {
                match quant::map_exact(
                    job.tensor.ggml_type.id,
                    row(r),
                    dtype == FloatType::F16,
                    &mut packed,
                ) {
                    Some((b, exact)) if b == bits => all_exact &= exact,
                    _ => {
                        mapped = false;
                        break;
                    }
                }
            }
            if mapped {
                let method = if all_exact {
                    Method::Exact
                } else {
                    Method::ScalesRounded
                };
                return Ok((method, pack(packed)));
            }
            // A block without an exact image (e.g. a non-finite scale): same shapes, re-quantised.
            drop(packed);
            let mut packed = Packed::with_capacity(job.rows, job.row_len, bits, group_size);
            for r in 0..job.rows {
                dequantize(r, &mut values)?;
                quant::quantize_affine(&values, group_size, bits, &mut packed);
            }
            Ok((Method::Requantized, pack(packed)))
        }
        Plan::Requantize { bits } => {
            let mut packed = Packed::with_capacity(job.rows, job.row_len, bits, group_size);
            for r in 0..job.rows {
                dequantize(r, &mut values)?;
                quant::quantize_affine(&values, group_size, bits, &mut packed);
            }
            Ok((Method::Requantized, pack(packed)))
        }
        Plan::Float => {
            let mut out = Vec::with_capacity(job.tensor.elements() as usize * dtype.size());
            for r in 0..job.rows {
                dequantize(r, &mut values)?;
                for &v in &values {
                    dtype.push(v + job.target.shift, &mut out);
                }
            }
            Ok((Method::Float, vec![out]))
        }
    }
}

/// Adds mlx-lm's `quantization` block (and its `quantization_config` copy) to `config`, with
/// an entry for each quantised module (`base`, bits) at other than the default bits, and the
/// output float type as `torch_dtype`.
fn insert_quantization<'a>(
    config: &mut Map<String, Json>,
    options: &MlxOptions,
    quantised: impl Iterator<Item = (&'a str, u32)>,
) {
    let mut quantization = Map::new();
    quantization.insert("group_size".into(), json!(options.group_size));
    quantization.insert("bits".into(), json!(options.bits));
    quantization.insert("mode".into(), json!("affine"));
    for (base, bits) in quantised {
        if bits != options.bits {
            quantization.insert(
                base.to_owned(),
                json!({"group_size": options.group_size, "bits": bits}),
            );
        }
    }
    config.insert("quantization".into(), Json::Object(quantization.clone()));
    config.insert("quantization_config".into(), Json::Object(quantization));
    config.insert("torch_dtype".into(), json!(options.dtype.torch_name()));
}

fn config_json(
    arch: &Arch,
    jobs: &[Job],
    options: &MlxOptions,
    tokenizer: &tokenizer::TokenizerFiles,
) -> Json {
    let mut config = arch.config.clone();
    let quantised = jobs.iter().filter_map(|j| Some((j.base(), j.bits()?)));
    insert_quantization(&mut config, options, quantised);
    if let Some(bos) = tokenizer.bos {
        config.insert("bos_token_id".into(), json!(bos));
    }
    match tokenizer.eos.as_slice() {
        [] => {}
        [one] => {
            config.insert("eos_token_id".into(), json!(one));
        }
        many => {
            config.insert("eos_token_id".into(), json!(many));
        }
    }
    if let Some(pad) = tokenizer.pad {
        config.insert("pad_token_id".into(), json!(pad));
    }
    Json::Object(config)
}

fn write_json(path: &Path, value: &Json) -> Result<(), MlxError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| MlxError::Io {
        path: path.to_path_buf(),
        error: io::Error::other(e),
    })?;
    text.push('\n');
    fs::write(path, text).map_err(io_error(path))
}

/// A temporary folder next to `output_dir` to write into, after refusing an existing output
/// unless `overwrite`.
fn partial_dir(output_dir: &Path, overwrite: bool) -> Result<tempfile::TempDir, MlxError> {
    if output_dir.exists() && !overwrite {
        return Err(MlxError::Io {
            path: output_dir.to_path_buf(),
            error: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the output folder exists (pass overwrite / --force to replace it)",
            ),
        });
    }
    let name = output_dir
        .file_name()
        .ok_or_else(|| MlxError::Options(format!("{} has no folder name", output_dir.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match output_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_error(&parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(&parent)
        .map_err(io_error(&parent))?;
    Ok(tmp)
}

/// Moves the finished temporary folder to `output_dir` (swapping out an existing one when
/// `overwrite`): the final name only ever holds a complete, verified folder.
fn publish(tmp: tempfile::TempDir, output_dir: &Path, overwrite: bool) -> Result<(), MlxError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile creates 0700; a model folder is meant to be readable like any other.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
            .map_err(io_error(tmp.path()))?;
    }
    let old = if overwrite && output_dir.exists() {
        let parent = tmp.path().parent().unwrap_or(Path::new("."));
        let old = tempfile::Builder::new()
            .prefix(".replaced-")
            .tempdir_in(parent)
            .map_err(io_error(parent))?;
        let old_path = old.path().join("old");
        fs::rename(output_dir, &old_path).map_err(io_error(output_dir))?;
        Some(old)
    } else {
        None
    };
    let path = tmp.keep();
    if let Err(error) = fs::rename(&path, output_dir) {
        let _ = fs::remove_dir_all(&path);
        if let Some(old) = &old {
            // Put the previous folder back: a failed replace leaves what was there.
            let _ = fs::rename(old.path().join("old"), output_dir);
        }
        return Err(MlxError::Io {
            path: output_dir.to_path_buf(),
            error,
        });
    }
    drop(old);
    Ok(())
}

mod verify;
