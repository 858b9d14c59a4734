//! Hugging Face safetensors → MLX. mlx-lm reads Hugging Face's tensor names and `config.json`
//! as they are, so the folder keeps them: each matrix is quantised into MLX affine groups
//! (`mx.quantize`'s rule) straight from the memory-mapped source, one tensor at a time; norms,
//! biases and matrices whose rows do not divide into groups stay floats; `config.json` gains
//! the `quantization` block; the tokenizer files are copied unchanged (they are the original,
//! so nothing needs rebuilding or checking against llama.cpp).
//!
//! The folder is first checked the way the GGUF conversion checks it (architecture, every
//! tensor with the shape `config.json` implies, none left over), so a truncated or mismatched
//! checkpoint is refused before anything is written.

use std::fs;
use std::path::Path;
use std::time::Instant;

use safetensors::Dtype;
use serde_json::{Map, Value as Json};

use super::quant::{self, Packed};
use super::verify::{self, Row};
use super::writer::{self, Entry};
use super::{
    files_size, insert_quantization, io_error, packed_buffers, partial_dir, publish,
    quantized_entries, write_json, write_shards, Method, MlxError, MlxOptions, MlxReport, Progress,
    TensorReport, TokenizerCheck,
};
use crate::hf_gguf;
use crate::hf_gguf::source::{Source, SourceTensor};

/// Tokenizer and generation files copied unchanged when the source has them.
const COPIED_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
];

/// One source tensor and how it is written.
struct HfJob {
    name: String,
    tensor: SourceTensor,
    rows: usize,
    row_len: usize,
    bits: Option<u32>,
}

impl HfJob {
    fn base(&self) -> &str {
        self.name.strip_suffix(".weight").unwrap_or(&self.name)
    }

    fn entries(&self, options: &MlxOptions) -> Vec<Entry> {
        match self.bits {
            Some(bits) => quantized_entries(self.base(), self.rows, self.row_len, bits, options),
            None => vec![Entry::new(
                self.name.clone(),
                options.dtype.safetensors_name(),
                self.tensor.shape.iter().map(|&d| d as u64).collect(),
                self.rows * self.row_len * options.dtype.size(),
            )],
        }
    }
}

/// Converts the Hugging Face folder `input_dir` (Llama, Qwen2 or Qwen3 decoder) into an
/// mlx-lm model folder at `output_dir`.
pub fn convert_hf(
    input_dir: &Path,
    output_dir: &Path,
    options: &MlxOptions,
) -> Result<MlxReport, MlxError> {
    convert_hf_with_progress(input_dir, output_dir, options, &mut |_| {})
}

/// [`convert_hf`], calling `progress` as tensors are converted.
pub fn convert_hf_with_progress(
    input_dir: &Path,
    output_dir: &Path,
    options: &MlxOptions,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<MlxReport, MlxError> {
    let started = Instant::now();
    options.validate()?;
    let checked = hf_gguf::open_decoder(input_dir, |path, architecture| MlxError::Unsupported {
        path: path.to_owned(),
        reason: format!(
            "{architecture} is an encoder; MLX conversion takes the decoders \
                 LlamaForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM"
        ),
    })?;
    let tokenizer_present = ["tokenizer.json", "tokenizer.model"]
        .iter()
        .any(|f| input_dir.join(f).is_file());
    if !tokenizer_present {
        return Err(MlxError::Tokenizer {
            path: input_dir.to_path_buf(),
            reason: "no tokenizer.json or tokenizer.model to copy".into(),
        });
    }
    let jobs = plan_jobs(&checked.source, &checked.config, options)?;
    let tmp = partial_dir(output_dir, options.overwrite)?;
    let dir = tmp.path();

    let entries: Vec<Vec<Entry>> = jobs.iter().map(|j| j.entries(options)).collect();
    let shards = writer::plan_shards(&entries, options.max_shard_bytes);
    let total_bytes: u64 = jobs
        .iter()
        .map(|j| (j.tensor.end - j.tensor.start) as u64)
        .sum();
    let done_bytes = write_shards(dir, &shards, total_bytes, progress, &mut |index| {
        let job = &jobs[index];
        let buffers = convert_tensor(&checked.source, job, options);
        checked.source.release(&job.tensor);
        Ok((
            &job.name,
            (job.tensor.end - job.tensor.start) as u64,
            buffers,
        ))
    })?;
    progress(&Progress {
        step: "writing config and copying the tokenizer",
        done_bytes,
        total_bytes,
    });
    let mut files: Vec<String> = shards.iter().map(|s| s.file.clone()).collect();
    if shards.len() > 1 {
        write_json(
            &dir.join("model.safetensors.index.json"),
            &writer::index_json(&shards),
        )?;
        files.push("model.safetensors.index.json".into());
    }
    write_json(
        &dir.join("config.json"),
        &config_json(&checked.config, &jobs, options),
    )?;
    files.push("config.json".into());
    for name in COPIED_FILES {
        let from = input_dir.join(name);
        if from.is_file() {
            let to = dir.join(name);
            fs::copy(&from, &to).map_err(io_error(&from))?;
            files.push((*name).to_owned());
        }
    }

    progress(&Progress {
        step: "verifying",
        done_bytes,
        total_bytes,
    });
    verify_outputs(&checked.source, dir, &jobs, &shards, options)?;
    let output_bytes = files_size(dir, &files)?;
    publish(tmp, output_dir, options.overwrite)?;

    let tensors: Vec<TensorReport> = jobs
        .iter()
        .map(|job| TensorReport {
            name: job.name.clone(),
            source: job.name.clone(),
            source_type: format!("{:?}", job.tensor.dtype).to_ascii_lowercase(),
            shape: job.tensor.shape.iter().map(|&d| d as u64).collect(),
            method: method(job),
            bits: job.bits,
            unpermuted: false,
        })
        .collect();
    let count = |m: Method| tensors.iter().filter(|t| t.method == m).count();
    let seconds = started.elapsed().as_secs_f64();
    let source_bytes = checked.source.total_bytes();
    Ok(MlxReport {
        input: input_dir.to_path_buf(),
        output: output_dir.to_path_buf(),
        architecture: checked.family.to_owned(),
        options: options.clone(),
        exact: 0,
        scales_rounded: 0,
        requantized: 0,
        quantized: count(Method::Quantized),
        float: count(Method::Float),
        tensors,
        source_bytes,
        output_bytes,
        files,
        tokenizer: None,
        tokenizer_check: TokenizerCheck {
            tokens: 0,
            skipped: Some("tokenizer files copied unchanged from the Hugging Face folder".into()),
        },
        seconds,
        mb_per_s: source_bytes as f64 / 1e6 / seconds.max(1e-9),
    })
}

fn method(job: &HfJob) -> Method {
    if job.bits.is_some() {
        Method::Quantized
    } else {
        Method::Float
    }
}

/// Which tensors are written and how: 2-D weights whose rows divide into groups are quantised
/// (the embedding and output head at 8 bits when `mixed`), everything else stays a float.
/// Dropped, as mlx-lm's `sanitize` drops them: rotary `inv_freq` buffers and a tied head.
fn plan_jobs(source: &Source, config: &Json, options: &MlxOptions) -> Result<Vec<HfJob>, MlxError> {
    let tied = config
        .get("tie_word_embeddings")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let group_size = options.group_size as usize;
    let mut jobs = Vec::with_capacity(source.tensors.len());
    for (name, tensor) in &source.tensors {
        if name.ends_with("rotary_emb.inv_freq") || (tied && name == "lm_head.weight") {
            continue;
        }
        if !matches!(tensor.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(MlxError::Unsupported {
                path: source.path_of(tensor).to_path_buf(),
                reason: format!(
                    "tensor {name} is {:?}; only F32, F16 and BF16 weights can be quantised \
                     (an already-quantised checkpoint needs its original weights)",
                    tensor.dtype
                ),
            });
        }
        let row_len = tensor.shape.last().copied().unwrap_or(1).max(1);
        let elements: usize = tensor.shape.iter().product();
        let rows = elements / row_len;
        let matrix = tensor.shape.len() == 2 && name.ends_with(".weight");
        let bits = (matrix && row_len % group_size == 0).then(|| {
            let high = name == "model.embed_tokens.weight" || name == "lm_head.weight";
            if options.mixed && high {
                8
            } else {
                options.bits
            }
        });
        jobs.push(HfJob {
            name: name.clone(),
            tensor: tensor.clone(),
            rows,
            row_len,
            bits,
        });
    }
    Ok(jobs)
}

/// Reads source row `r` of `job` as f32.
fn read_row(source: &Source, job: &HfJob, r: usize, out: &mut [f32]) {
    let bytes = source.bytes(&job.tensor);
    match job.tensor.dtype {
        Dtype::F32 => {
            let row = &bytes[r * job.row_len * 4..(r + 1) * job.row_len * 4];
            for (o, c) in out.iter_mut().zip(row.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Dtype::F16 => {
            let row = &bytes[r * job.row_len * 2..(r + 1) * job.row_len * 2];
            for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        // plan_jobs admits only F32, F16 and BF16.
        _ => {
            let row = &bytes[r * job.row_len * 2..(r + 1) * job.row_len * 2];
            for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = half::bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
    }
}

/// One tensor's output buffers, in the order of [`HfJob::entries`].
fn convert_tensor(source: &Source, job: &HfJob, options: &MlxOptions) -> Vec<Vec<u8>> {
    let mut values = vec![0f32; job.row_len];
    match job.bits {
        Some(bits) => {
            let group_size = options.group_size as usize;
            let mut packed = Packed::with_capacity(job.rows, job.row_len, bits, group_size);
            for r in 0..job.rows {
                read_row(source, job, r, &mut values);
                quant::quantize_affine(&values, group_size, bits, &mut packed);
            }
            packed_buffers(packed, options.dtype)
        }
        None => {
            let mut out = Vec::with_capacity(job.rows * job.row_len * options.dtype.size());
            for r in 0..job.rows {
                read_row(source, job, r, &mut values);
                for &v in &values {
                    options.dtype.push(v, &mut out);
                }
            }
            vec![out]
        }
    }
}

/// Every shard parses and holds the planned tensors; the first, middle and last rows of each
/// tensor, read back as MLX dequantises them, match the source within the rounding bound.
fn verify_outputs(
    source: &Source,
    dir: &Path,
    jobs: &[HfJob],
    shards: &[writer::ShardPlan],
    options: &MlxOptions,
) -> Result<(), MlxError> {
    verify::each_group(dir, shards, &mut |index, path, tensors, group| {
        let job = &jobs[index];
        let parts = verify::group_data(path, tensors, group)?;
        let row = Row {
            name: &job.name,
            method: method(job),
            bits: job.bits,
            shift: 0.0,
            row_len: job.row_len,
        };
        let mut expected = vec![0f32; job.row_len];
        let mut rows = vec![0, job.rows / 2, job.rows.saturating_sub(1)];
        rows.dedup();
        for r in rows {
            read_row(source, job, r, &mut expected);
            verify::compare_row(path, &row, r, &expected, &parts, options)?;
        }
        source.release(&job.tensor);
        Ok(())
    })
}

/// The source's config.json with MLX's quantisation block (per-layer entries for tensors at
/// other bit widths) and the output float type.
fn config_json(source: &Json, jobs: &[HfJob], options: &MlxOptions) -> Json {
    let mut config: Map<String, Json> = source.as_object().cloned().unwrap_or_default();
    let quantised = jobs.iter().filter_map(|j| Some((j.base(), j.bits?)));
    insert_quantization(&mut config, options, quantised);
    Json::Object(config)
}
