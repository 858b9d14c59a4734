//! Checks of a written MLX folder before it is moved into place: every shard parses with the
//! `safetensors` crate and holds exactly the planned tensors; sampled rows of every tensor,
//! dequantised the way MLX does, match ggml's dequantisation of the source rows (bit for bit
//! for exact mappings, within the rounding bound otherwise); the rebuilt tokenizer tokenises a
//! probe text exactly like llama.cpp.

use std::fs::File;
use std::path::Path;

use half::f16;
use memmap2::{Mmap, UncheckedAdvice};
use safetensors::SafeTensors;

use super::gguf::GgufFile;
use super::quant::{self, Packed};
use super::writer::{Entry, ShardPlan};
use super::{FloatType, Job, Method, MlxError, MlxOptions, TokenizerCheck};

/// Text the rebuilt tokenizer must split exactly like llama.cpp: words, contractions, digits,
/// punctuation, runs of spaces, tabs and newlines, accents, CJK and an emoji.
pub const PROBE_TEXT: &str = "Hello world! It's 2024-06-01, and the price is $1,234.56.\n\n  \
    Indented line\twith a tab; café, naïve, Ünïcödé, 日本語のテキスト, emoji 🙂.\n\
    I'll say they've we're DON'T 12345678 x=y+z; fn main() { println!(\"hi\"); }   trailing  ";

fn verify_err(path: &Path, reason: String) -> MlxError {
    MlxError::Verify {
        path: path.to_path_buf(),
        reason,
    }
}

fn read_floats(bytes: &[u8], dtype: FloatType) -> Vec<f32> {
    match dtype {
        FloatType::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        FloatType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    }
}

/// Drops the pages of `map` that this process touched (sampled rows of the output), so
/// verification does not grow resident memory towards the output's size.
fn release(map: &Mmap) {
    if map.is_empty() {
        return;
    }
    // SAFETY: read-only, file-backed map of a file nobody else writes; no slice of it is used
    // after this call until it is read again, and pages read again come back from the file.
    let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, 0, map.len()) };
}

/// Verifies the shards in `dir` against the plan.
pub fn outputs(
    gguf: &GgufFile,
    dir: &Path,
    jobs: &[Job],
    methods: &[Method],
    shards: &[ShardPlan],
    options: &MlxOptions,
) -> Result<(), MlxError> {
    each_group(dir, shards, &mut |index, path, tensors, group| {
        let job = &jobs[index];
        check_rows(gguf, path, tensors, job, methods[index], group, options)?;
        gguf.release(&job.tensor);
        Ok(())
    })
}

/// Called by [`each_group`] with (group index, shard path, the parsed shard, the group's entries).
pub(super) type GroupCheck<'a> =
    dyn FnMut(usize, &Path, &SafeTensors<'_>, &[Entry]) -> Result<(), MlxError> + 'a;

/// Parses every shard in `dir`, checks that it holds exactly the planned tensors with their
/// planned dtype, shape and size, and calls `check` for each group (one source tensor's
/// outputs; `index` counts groups across shards).
pub(super) fn each_group(
    dir: &Path,
    shards: &[ShardPlan],
    check: &mut GroupCheck<'_>,
) -> Result<(), MlxError> {
    let mut index = 0usize;
    for shard in shards {
        let path = dir.join(&shard.file);
        let file = File::open(&path).map_err(super::io_error(&path))?;
        // SAFETY: a file this process just wrote and nobody else knows about; read-only map.
        let map = unsafe { Mmap::map(&file) }.map_err(super::io_error(&path))?;
        let tensors = SafeTensors::deserialize(&map)
            .map_err(|e| verify_err(&path, format!("does not parse as safetensors: {e}")))?;
        let planned: usize = shard.groups.iter().map(Vec::len).sum();
        if tensors.len() != planned {
            return Err(verify_err(
                &path,
                format!("{} tensors, {planned} planned", tensors.len()),
            ));
        }
        for group in &shard.groups {
            for entry in group {
                let view = tensors
                    .tensor(&entry.name)
                    .map_err(|e| verify_err(&path, format!("{}: {e}", entry.name)))?;
                let shape: Vec<u64> = view.shape().iter().map(|&d| d as u64).collect();
                let dtype = format!("{:?}", view.dtype());
                if shape != entry.shape || dtype != entry.dtype || view.data().len() != entry.bytes
                {
                    return Err(verify_err(
                        &path,
                        format!(
                            "{}: {dtype} {shape:?} ({} bytes), planned {} {:?} ({} bytes)",
                            entry.name,
                            view.data().len(),
                            entry.dtype,
                            entry.shape,
                            entry.bytes
                        ),
                    ));
                }
            }
            check(index, &path, &tensors, group)?;
            release(&map);
            index += 1;
        }
    }
    Ok(())
}

fn check_rows(
    gguf: &GgufFile,
    path: &Path,
    tensors: &SafeTensors<'_>,
    job: &Job,
    method: Method,
    group: &[Entry],
    options: &MlxOptions,
) -> Result<(), MlxError> {
    let parts = group_data(path, tensors, group)?;
    let source = gguf.data(&job.tensor);
    let row_bytes = source.len() / job.rows.max(1);
    let mut rows = vec![0, job.rows / 2, job.rows.saturating_sub(1)];
    rows.dedup();
    let mut expected = vec![0f32; job.row_len];
    for r in rows {
        let s = job.source_row(r);
        if !job
            .tensor
            .ggml_type
            .dequantize(&source[s * row_bytes..(s + 1) * row_bytes], &mut expected)
        {
            return Err(verify_err(
                path,
                format!("{}: cannot dequantise source", job.tensor.name),
            ));
        }
        let row = Row {
            name: &job.target.name,
            method,
            bits: job.bits(),
            shift: job.target.shift,
            row_len: job.row_len,
        };
        compare_row(path, &row, r, &expected, &parts, options)?;
    }
    Ok(())
}

/// The data of each of a group's tensors, in plan order.
pub(super) fn group_data<'a>(
    path: &Path,
    tensors: &SafeTensors<'a>,
    group: &[Entry],
) -> Result<Vec<&'a [u8]>, MlxError> {
    group
        .iter()
        .map(|entry| {
            tensors
                .tensor(&entry.name)
                .map(|v| v.data())
                .map_err(|e| verify_err(path, format!("{}: {e}", entry.name)))
        })
        .collect()
}

/// What is compared of one written tensor's row.
pub(super) struct Row<'a> {
    /// Output tensor name (the quantised weight's, for quantised tensors).
    pub name: &'a str,
    /// How it was produced.
    pub method: Method,
    /// MLX bits, for quantised tensors.
    pub bits: Option<u32>,
    /// Added to every source value (Gemma's norms).
    pub shift: f32,
    /// Elements per row.
    pub row_len: usize,
}

/// Checks written row `r` against the source row `expected`: floats exactly (after rounding
/// to the output type), quantised groups within their rounding bound. `parts` are the output
/// tensor's data (codes, scales, biases for quantised ones).
pub(super) fn compare_row(
    path: &Path,
    row: &Row<'_>,
    r: usize,
    expected: &[f32],
    parts: &[&[u8]],
    options: &MlxOptions,
) -> Result<(), MlxError> {
    let dtype = options.dtype;
    let method = row.method;
    let part = |i: usize| {
        parts
            .get(i)
            .copied()
            .ok_or_else(|| verify_err(path, format!("{}: missing part {i}", row.name)))
    };
    let mismatch = |k: usize, got: f32, want: f32| {
        verify_err(
            path,
            format!(
                "{} row {r} element {k}: {got} written, {want} expected ({method:?})",
                row.name
            ),
        )
    };
    match row.bits {
        None => {
            let width = dtype.size() * row.row_len;
            let got = read_floats(&part(0)?[r * width..(r + 1) * width], dtype);
            for (k, (&g, &w)) in got.iter().zip(expected).enumerate() {
                let want = dtype.round(w + row.shift);
                if g != want && !(g.is_nan() && want.is_nan()) {
                    return Err(mismatch(k, g, want));
                }
            }
        }
        Some(bits) => {
            let group_size = options.group_size as usize;
            let words = row.row_len * bits as usize / 32;
            let groups = row.row_len / group_size;
            let sw = groups * dtype.size();
            let packed = Packed {
                weight: part(0)?[r * words * 4..(r + 1) * words * 4].to_vec(),
                scales: read_floats(&part(1)?[r * sw..(r + 1) * sw], dtype),
                biases: read_floats(&part(2)?[r * sw..(r + 1) * sw], dtype),
            };
            let n_bins = ((1u32 << bits) - 1) as f32;
            let mut got = vec![0f32; group_size];
            for g in 0..groups {
                quant::dequantize_group(&packed, bits, group_size, g, &mut got);
                let (scale, bias) = (packed.scales[g].abs(), packed.biases[g].abs());
                // f16 rounding of scale and bias, on top of the quantisation step itself.
                let rounding = (scale * n_bins + bias) * 2f32.powi(-10) + 1e-7;
                let tolerance = match method {
                    Method::Exact => 0.0,
                    Method::ScalesRounded => rounding,
                    // MLX keeps zero on the grid, so the far edge of a group can be
                    // clamped by up to one step (half a step everywhere else).
                    _ => scale + rounding,
                };
                for (k, &value) in got.iter().enumerate() {
                    let want = expected[g * group_size + k];
                    let ok = if tolerance == 0.0 {
                        value == want
                    } else {
                        (value - want).abs() <= tolerance
                    };
                    if !ok {
                        return Err(mismatch(g * group_size + k, value, want));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Tokenises [`PROBE_TEXT`] (plus the first special token's text) with the rebuilt
/// tokenizer.json and with llama.cpp, and fails on any difference. Skipped (and said so) when
/// llama.cpp cannot load the GGUF's vocabulary.
pub fn tokenizer(gguf: &Path, tokenizer_json: &Path) -> Result<TokenizerCheck, MlxError> {
    let tokenizer = tokenizers::Tokenizer::from_file(tokenizer_json)
        .map_err(|e| verify_err(tokenizer_json, format!("does not load: {e}")))?;
    let special = tokenizer
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special)
        .min_by_key(|(id, _)| *id)
        .map(|(_, t)| t.content);
    let text = match special {
        Some(s) => format!("{PROBE_TEXT}{s}\nafter"),
        None => PROBE_TEXT.to_string(),
    };
    let reference = match switchyard_engine_llamacpp::inspect::tokenize(gguf, &text, true) {
        Ok(ids) => ids,
        Err(e) => {
            return Ok(TokenizerCheck {
                tokens: 0,
                skipped: Some(format!("llama.cpp could not load the vocabulary: {e}")),
            })
        }
    };
    let encoding = tokenizer
        .encode(text.as_str(), true)
        .map_err(|e| verify_err(tokenizer_json, format!("cannot encode the probe: {e}")))?;
    let ours: Vec<i64> = encoding.get_ids().iter().map(|&i| i64::from(i)).collect();
    let theirs: Vec<i64> = reference.iter().map(|&i| i64::from(i)).collect();
    if ours != theirs {
        let at = ours
            .iter()
            .zip(&theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        return Err(verify_err(
            tokenizer_json,
            format!(
                "tokenises the probe text differently from llama.cpp from token {at}: \
                 {:?} vs llama.cpp {:?}",
                &ours[at..(at + 8).min(ours.len())],
                &theirs[at..(at + 8).min(theirs.len())]
            ),
        ));
    }
    Ok(TokenizerCheck {
        tokens: theirs.len(),
        skipped: None,
    })
}
