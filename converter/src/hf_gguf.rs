//! Hugging Face safetensors → GGUF, then (optionally) llama.cpp's own quantizer.
//!
//! The input is a Hugging Face model folder: `config.json`, `model.safetensors` (or the shards
//! `model.safetensors.index.json` names), `tokenizer.json`, and when present
//! `tokenizer_config.json` / `chat_template.jinja` and sentence-transformers' pooling config.
//! Supported: BERT encoders (`BertModel`, e.g. all-MiniLM-L6-v2) and the Llama, Qwen2 and Qwen3
//! decoders ([`arch`]); the tokenizer goes into the GGUF metadata the way llama.cpp reads it
//! ([`vocab`]).
//!
//! The weights are memory-mapped and written tensor by tensor through a streaming GGUF writer
//! ([`gguf`]), in slices of a few MiB, each tensor's source pages dropped once it is written:
//! peak memory is a few MiB plus the metadata, whatever the model's size. The output is
//! written to a temporary file next to the destination, checked (GGUF header, exact size, and
//! a load through llama.cpp without its weights, which builds the vocabulary and checks every
//! tensor's name, shape, type and file bounds against the architecture), and only then renamed
//! into place; or it is handed to llama.cpp's quantizer, whose output (another temporary file)
//! gets the same load check before its rename. A failed run leaves nothing under the final
//! name.

mod arch;
pub mod gguf;
pub(crate) mod source;
pub mod vocab;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use half::{bf16, f16};
use safetensors::Dtype;
use serde_json::Value as Json;
use switchyard_engine_llamacpp::quantize::{quantize, QuantType, QuantizeOptions};

use arch::{Origin, Planned};
use gguf::{GgufWriter, TensorType, Value};
use source::Source;

pub use arch::SUPPORTED as SUPPORTED_ARCHITECTURES;
pub use vocab::TokenizerSummary;

/// Why a conversion failed. Every variant names the file (or folder) involved.
#[derive(Debug, thiserror::Error)]
pub enum HfGgufError {
    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// `config.json` (or another JSON file beside it) is missing or unusable.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The folder holds no safetensors weights.
    #[error("{}: no *.safetensors weights in this folder", path.display())]
    MissingWeights {
        /// The folder.
        path: PathBuf,
    },
    /// A safetensors file is truncated or corrupt.
    #[error("{}: {reason}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `config.json` names an architecture this converter does not handle.
    #[error("{}: unsupported architecture {architecture:?} (supported: {})", path.display(), arch::SUPPORTED.join(", "))]
    UnsupportedArchitecture {
        /// `config.json`.
        path: PathBuf,
        /// `architectures[0]`.
        architecture: String,
    },
    /// A weight's shape does not match what `config.json` implies.
    #[error("{}: tensor {tensor} has shape {found:?}, but config.json implies {expected:?}", path.display())]
    ShapeMismatch {
        /// The safetensors file holding the tensor.
        path: PathBuf,
        /// Hugging Face tensor name.
        tensor: String,
        /// Shape implied by config.json.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A weight the architecture needs is not in the safetensors files.
    #[error("{}: missing tensor {tensor}", path.display())]
    MissingTensor {
        /// The model folder.
        path: PathBuf,
        /// Hugging Face tensor name.
        tensor: String,
    },
    /// A weight that the architecture does not use (converting would silently drop it).
    #[error("{}: unexpected tensor {tensor} for this architecture (converting would drop it)", path.display())]
    UnexpectedTensor {
        /// The safetensors file holding the tensor.
        path: PathBuf,
        /// Hugging Face tensor name.
        tensor: String,
    },
    /// A weight stored in an element type the converter does not read.
    #[error("{}: tensor {tensor} is {dtype}; only F32, F16 and BF16 weights are converted", path.display())]
    UnsupportedDtype {
        /// The safetensors file holding the tensor.
        path: PathBuf,
        /// Hugging Face tensor name.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// No usable tokenizer file.
    #[error("{}: missing tokenizer: {reason}", path.display())]
    MissingTokenizer {
        /// The file looked for.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The tokenizer files cannot be represented the way llama.cpp expects.
    #[error("{}: tokenizer: {reason}", path.display())]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The written GGUF did not pass the check before the rename.
    #[error("{}: the converted GGUF failed verification: {reason}", path.display())]
    Verify {
        /// The temporary output.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// llama.cpp's quantizer failed.
    #[error("{}: {reason}", path.display())]
    Quantize {
        /// The intended output.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Element type of the converted (unquantised) GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutType {
    /// Everything in f32.
    F32,
    /// Matrices in f16; vectors, norms, position and token-type embeddings in f32.
    F16,
}

impl OutType {
    /// Parses `f32` / `f16`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            other => Err(format!(
                "unknown output type '{other}' (accepted: f32, f16)"
            )),
        }
    }

    /// `f32` / `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }

    /// `general.file_type` (llama_ftype).
    fn file_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
        }
    }
}

/// How an encoder's token states become one sentence embedding (`{arch}.pooling_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over the tokens (sentence-transformers' default, all-MiniLM-L6-v2).
    Mean,
    /// The first ([CLS]) token.
    Cls,
    /// The last token.
    Last,
}

impl Pooling {
    /// Parses `mean` / `cls` / `last`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "mean" => Ok(Self::Mean),
            "cls" => Ok(Self::Cls),
            "last" => Ok(Self::Last),
            other => Err(format!(
                "unknown pooling '{other}' (accepted: mean, cls, last)"
            )),
        }
    }

    fn llama_value(self) -> u32 {
        match self {
            Self::Mean => 1,
            Self::Cls => 2,
            Self::Last => 3,
        }
    }
}

/// Options for [`convert`].
#[derive(Debug, Clone)]
pub struct HfGgufOptions {
    /// Element type of the converted GGUF (the quantizer's input when `quantize` is set).
    pub out_type: OutType,
    /// Quantise the converted model with llama.cpp into the output (the f32/f16 GGUF is then
    /// only an intermediate next to the output, removed afterwards).
    pub quantize: Option<QuantType>,
    /// Quantizer threads.
    pub threads: u32,
    /// Encoders: pooling to record; `None` reads sentence-transformers' config (default mean).
    pub pooling: Option<Pooling>,
    /// Byte-level BPE: llama.cpp's pre-tokenizer name, overriding detection from
    /// `tokenizer.json` (e.g. `llama-bpe`, `qwen2`, `smollm`).
    pub pre_tokenizer: Option<String>,
}

impl Default for HfGgufOptions {
    fn default() -> Self {
        Self {
            out_type: OutType::F16,
            quantize: None,
            threads: 2,
            pooling: None,
            pre_tokenizer: None,
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HfGgufReport {
    /// The input folder.
    pub input: PathBuf,
    /// The file written.
    pub output: PathBuf,
    /// `config.json`'s architecture (`LlamaForCausalLM`).
    pub hf_architecture: String,
    /// `general.architecture` (`llama`).
    pub architecture: String,
    /// Tensors written.
    pub tensors: usize,
    /// Weights (elements) written.
    pub parameters: u64,
    /// Type of the converted GGUF.
    pub out_type: OutType,
    /// Quantisation applied to produce `output`, if any.
    pub quantized: Option<String>,
    /// Pooling recorded (encoders).
    pub pooling: Option<Pooling>,
    /// The tokenizer written.
    pub tokenizer: TokenizerSummary,
    /// Bytes of the safetensors files read.
    pub source_bytes: u64,
    /// Bytes of the converted (f32/f16) GGUF.
    pub converted_bytes: u64,
    /// Bytes of `output`.
    pub output_bytes: u64,
    /// Seconds spent converting (reading, writing, verifying).
    pub convert_seconds: f64,
    /// Seconds spent in the quantizer.
    pub quantize_seconds: Option<f64>,
    /// Conversion throughput: source MB (10^6 bytes) per second.
    pub convert_mb_per_s: f64,
}

/// Progress events, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Writing starts: how many tensors and source bytes there are.
    Start {
        /// Tensors to write.
        tensors: usize,
        /// Bytes of their data in the output.
        bytes: u64,
    },
    /// A tensor was written.
    Tensor {
        /// Its GGUF name.
        name: &'a str,
        /// Output bytes written so far.
        bytes_done: u64,
    },
    /// The converted file is being checked by loading it.
    Verifying,
    /// llama.cpp's quantizer is running.
    Quantizing {
        /// Target type name.
        target: &'a str,
    },
}

/// Converts the Hugging Face folder `input_dir` into the GGUF `output`.
pub fn convert(
    input_dir: &Path,
    output: &Path,
    options: &HfGgufOptions,
) -> Result<HfGgufReport, HfGgufError> {
    convert_with_progress(input_dir, output, options, &mut |_| {})
}

/// Removes the file on drop unless kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn temp_path(output: &Path, tag: &str) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.gguf".into());
    output.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Reads `config.json` and recognises the architecture: an unsupported model is refused
/// before its weights are read. Shapes are checked later by [`arch::plan`].
fn read_config(input_dir: &Path) -> Result<(Json, arch::Family, String), HfGgufError> {
    let config_path = input_dir.join("config.json");
    let config_text =
        std::fs::read_to_string(&config_path).map_err(|error| HfGgufError::Config {
            path: config_path.clone(),
            reason: format!("cannot read: {error}"),
        })?;
    let config_json: Json =
        serde_json::from_str(&config_text).map_err(|e| HfGgufError::Config {
            path: config_path.clone(),
            reason: format!("not valid JSON: {e}"),
        })?;
    let (family, hf_architecture) = arch::family(&arch::Config {
        path: config_path,
        json: &config_json,
    })?;
    Ok((config_json, family, hf_architecture))
}

/// A Hugging Face decoder folder, checked the way the GGUF conversion checks it (supported
/// architecture, every tensor present with the shape `config.json` implies, none left over),
/// for conversions that keep the Hugging Face layout (MLX).
pub(crate) struct CheckedDecoder {
    /// `config.json`.
    pub config: Json,
    /// The memory-mapped weights.
    pub source: Source,
    /// llama.cpp's name of the family (`llama`, `qwen2`, `qwen3`).
    pub family: &'static str,
}

/// Opens and checks a decoder folder; an encoder (BERT) is refused with `unsupported`.
pub(crate) fn open_decoder<E: From<HfGgufError>>(
    input_dir: &Path,
    unsupported: impl FnOnce(&Path, &str) -> E,
) -> Result<CheckedDecoder, E> {
    if !input_dir.is_dir() {
        return Err(HfGgufError::Io {
            path: input_dir.to_owned(),
            error: io::Error::new(io::ErrorKind::NotFound, "not a folder"),
        }
        .into());
    }
    let (config, family, hf_architecture) = read_config(input_dir)?;
    let config_ref = arch::Config {
        path: input_dir.join("config.json"),
        json: &config,
    };
    if family == arch::Family::Bert {
        return Err(unsupported(&config_ref.path, &hf_architecture));
    }
    let source = Source::open(input_dir)?;
    let plan = arch::plan(&config_ref, input_dir, &source, OutType::F32, None)?;
    Ok(CheckedDecoder {
        family: plan.family.gguf_arch(),
        config,
        source,
    })
}

/// [`convert`], reporting progress to `progress`.
pub fn convert_with_progress(
    input_dir: &Path,
    output: &Path,
    options: &HfGgufOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<HfGgufReport, HfGgufError> {
    let started = Instant::now();
    if !input_dir.is_dir() {
        return Err(HfGgufError::Io {
            path: input_dir.to_owned(),
            error: io::Error::new(io::ErrorKind::NotFound, "not a folder"),
        });
    }
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(HfGgufError::Io {
            path: output.to_owned(),
            error: io::Error::new(io::ErrorKind::NotFound, "its folder does not exist"),
        });
    }
    let (config_json, _, _) = read_config(input_dir)?;
    let source = Source::open(input_dir)?;
    let config = arch::Config {
        path: input_dir.join("config.json"),
        json: &config_json,
    };
    let plan = arch::plan(
        &config,
        input_dir,
        &source,
        options.out_type,
        options.pooling,
    )?;
    let vocab = vocab::build(
        input_dir,
        &vocab::VocabInput {
            kind: if plan.family == arch::Family::Bert {
                vocab::VocabKind::Bert
            } else {
                vocab::VocabKind::Decoder
            },
            n_vocab: plan.n_vocab,
            config: &config_json,
            pre_override: options.pre_tokenizer.as_deref(),
        },
    )?;

    let arch_name = plan.family.gguf_arch();
    let model_name = config_json
        .get("_name_or_path")
        .and_then(Json::as_str)
        .and_then(|p| p.rsplit('/').find(|s| !s.is_empty()))
        .map(str::to_owned)
        .or_else(|| {
            input_dir
                .canonicalize()
                .ok()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| arch_name.to_owned());
    let mut metadata: Vec<(String, Value)> = vec![
        (
            "general.architecture".into(),
            Value::String(arch_name.into()),
        ),
        ("general.type".into(), Value::String("model".into())),
        ("general.name".into(), Value::String(model_name)),
        (
            "general.file_type".into(),
            Value::U32(options.out_type.file_type()),
        ),
        ("general.quantization_version".into(), Value::U32(2)),
    ];
    metadata.extend(plan.metadata.iter().cloned());
    metadata.extend(vocab.metadata);

    // Write the converted GGUF next to the output.
    let converted = TempFile {
        path: temp_path(output, "convert"),
        keep: false,
    };
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |error| HfGgufError::Io { path, error }
    };
    let file = File::create(&converted.path).map_err(io_err(&converted.path))?;
    let infos: Vec<_> = plan.tensors.iter().map(|t| t.info.clone()).collect();
    let total_bytes: u64 = infos.iter().map(|t| t.bytes()).sum();
    let parameters: u64 = infos.iter().map(|t| t.shape.iter().product::<u64>()).sum();
    let mut writer = GgufWriter::new(BufWriter::with_capacity(1 << 20, file), &metadata, infos)
        .map_err(io_err(&converted.path))?;
    let expected_len = writer.expected_len();
    progress(Progress::Start {
        tensors: plan.tensors.len(),
        bytes: total_bytes,
    });
    let mut buffer = Vec::with_capacity(CHUNK_BYTES + 8);
    let mut bytes_done = 0u64;
    for planned in &plan.tensors {
        write_tensor(&mut writer, &source, planned, &mut buffer)
            .map_err(io_err(&converted.path))?;
        bytes_done += planned.info.bytes();
        progress(Progress::Tensor {
            name: &planned.info.name,
            bytes_done,
        });
    }
    let (buffered, len) = writer.finish().map_err(io_err(&converted.path))?;
    let file = buffered.into_inner().map_err(|e| HfGgufError::Io {
        path: converted.path.clone(),
        error: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(&converted.path))?;
    drop(file);
    let source_bytes = source.total_bytes();
    drop(source);

    progress(Progress::Verifying);
    verify(&converted.path, len, expected_len, arch_name)?;
    let convert_seconds = started.elapsed().as_secs_f64();

    let (quantized, quantize_seconds) = match options.quantize {
        None => {
            std::fs::rename(&converted.path, output).map_err(io_err(output))?;
            let mut converted = converted;
            converted.keep = true;
            (None, None)
        }
        Some(target) => {
            progress(Progress::Quantizing {
                target: target.name(),
            });
            let q_started = Instant::now();
            let mut quantized = TempFile {
                path: temp_path(output, "quantize"),
                keep: false,
            };
            quantize(
                &converted.path,
                &quantized.path,
                &QuantizeOptions {
                    target,
                    threads: options.threads.max(1),
                    allow_requantize: false,
                },
            )
            .map_err(|e| HfGgufError::Quantize {
                path: output.to_owned(),
                reason: e.to_string(),
            })?;
            let seconds = q_started.elapsed().as_secs_f64();
            switchyard_engine_llamacpp::embed::describe(&quantized.path).map_err(|e| {
                HfGgufError::Verify {
                    path: quantized.path.clone(),
                    reason: e.to_string(),
                }
            })?;
            std::fs::rename(&quantized.path, output).map_err(io_err(output))?;
            quantized.keep = true;
            // `converted` is removed when it goes out of scope.
            (Some(target.name().to_owned()), Some(seconds))
        }
    };
    let output_bytes = std::fs::metadata(output).map_err(io_err(output))?.len();
    Ok(HfGgufReport {
        input: input_dir.to_owned(),
        output: output.to_owned(),
        hf_architecture: plan.hf_architecture,
        architecture: arch_name.to_owned(),
        tensors: plan.tensors.len(),
        parameters,
        out_type: options.out_type,
        quantized,
        pooling: plan.pooling,
        tokenizer: vocab.summary,
        source_bytes,
        converted_bytes: len,
        output_bytes,
        convert_seconds,
        quantize_seconds,
        convert_mb_per_s: source_bytes as f64 / 1e6 / convert_seconds.max(1e-9),
    })
}

/// The written file parses as GGUF, has exactly the size the header promises, and loads in
/// llama.cpp without its weights (vocabulary built; every tensor's name, shape, type and
/// bounds checked).
fn verify(path: &Path, len: u64, expected_len: u64, arch: &str) -> Result<(), HfGgufError> {
    let fail = |reason: String| HfGgufError::Verify {
        path: path.to_owned(),
        reason,
    };
    let on_disk = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    if on_disk != expected_len || len != expected_len {
        return Err(fail(format!(
            "{on_disk} bytes on disk, {len} written, {expected_len} expected"
        )));
    }
    let info = switchyard_engine_llamacpp::inspect_gguf(path).map_err(fail)?;
    if info.architecture != arch {
        return Err(fail(format!(
            "general.architecture reads back as {}, not {arch}",
            info.architecture
        )));
    }
    switchyard_engine_llamacpp::embed::describe(path).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Output bytes buffered before each write.
const CHUNK_BYTES: usize = 4 << 20;

fn write_tensor<W: Write>(
    writer: &mut GgufWriter<W>,
    source: &Source,
    planned: &Planned,
    buffer: &mut Vec<u8>,
) -> io::Result<()> {
    buffer.clear();
    match &planned.origin {
        Origin::Computed(values) => {
            for v in values {
                push_value(buffer, *v, planned.info.dtype);
            }
            writer.write_data(buffer)?;
        }
        Origin::Hf {
            name,
            permute_heads,
        } => {
            let tensor = source.tensors.get(name).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("tensor {name} vanished"))
            })?;
            let bytes = source.bytes(tensor);
            let elem = tensor.dtype.bitsize() / 8;
            let rows = tensor.shape.first().copied().unwrap_or(1).max(1);
            let row_bytes = bytes.len() / rows;
            let out = planned.info.dtype;
            match permute_heads {
                None => {
                    // Whole chunks of elements, in order.
                    let step = (CHUNK_BYTES / out.size() as usize).max(1) * elem;
                    for (i, piece) in bytes.chunks(step).enumerate() {
                        buffer.clear();
                        convert_into(piece, tensor.dtype, out, buffer)?;
                        writer.write_data(buffer)?;
                        source.release_range(tensor, i * step, i * step + piece.len());
                    }
                }
                Some(heads) => {
                    for row in 0..rows {
                        let from = arch::permuted_source_row(row, rows, *heads);
                        let src = &bytes[from * row_bytes..(from + 1) * row_bytes];
                        convert_into(src, tensor.dtype, out, buffer)?;
                        if buffer.len() >= CHUNK_BYTES {
                            writer.write_data(buffer)?;
                            buffer.clear();
                        }
                    }
                    if !buffer.is_empty() {
                        writer.write_data(buffer)?;
                    }
                }
            }
            source.release(tensor);
        }
    }
    buffer.clear();
    Ok(())
}

fn push_value(out: &mut Vec<u8>, v: f32, dtype: TensorType) {
    match dtype {
        TensorType::F32 => out.extend_from_slice(&v.to_le_bytes()),
        TensorType::F16 => out.extend_from_slice(&f16::from_f32(v).to_le_bytes()),
    }
}

fn convert_into(src: &[u8], from: Dtype, to: TensorType, out: &mut Vec<u8>) -> io::Result<()> {
    match (from, to) {
        (Dtype::F32, TensorType::F32) | (Dtype::F16, TensorType::F16) => {
            out.extend_from_slice(src);
        }
        (Dtype::F32, _) => {
            for c in src.chunks_exact(4) {
                push_value(out, f32::from_le_bytes([c[0], c[1], c[2], c[3]]), to);
            }
        }
        (Dtype::F16, _) => {
            for c in src.chunks_exact(2) {
                push_value(out, f16::from_le_bytes([c[0], c[1]]).to_f32(), to);
            }
        }
        (Dtype::BF16, _) => {
            for c in src.chunks_exact(2) {
                push_value(out, bf16::from_le_bytes([c[0], c[1]]).to_f32(), to);
            }
        }
        (other, _) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot convert {other:?} weights"),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_conversions_round_trip() {
        let mut out = Vec::new();
        convert_into(&1.5f32.to_le_bytes(), Dtype::F32, TensorType::F16, &mut out).unwrap();
        assert_eq!(out, f16::from_f32(1.5).to_le_bytes());
        out.clear();
        convert_into(
            &bf16::from_f32(-2.0).to_le_bytes(),
            Dtype::BF16,
            TensorType::F32,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, (-2.0f32).to_le_bytes());
        assert!(convert_into(&[0u8; 8], Dtype::I64, TensorType::F32, &mut Vec::new()).is_err());
    }

    #[test]
    fn names_parse() {
        assert_eq!(OutType::parse("F16"), Ok(OutType::F16));
        assert!(OutType::parse("q8").unwrap_err().contains("f32, f16"));
        assert_eq!(Pooling::parse("mean"), Ok(Pooling::Mean));
    }
}
