//! CTranslate2 Whisper → whisper.cpp (legacy ggml `.bin`) conversion.
//!
//! The input is a CTranslate2 model directory (`model.bin`, `vocabulary.txt`; `config.json` is
//! not needed). `model.bin` is memory-mapped and streamed tensor by tensor into the output,
//! which is written to a temporary file next to the destination and renamed into place only
//! once complete, so a reader never sees a half-written model under the final name.
//!
//! Output layout (little-endian), as whisper.cpp's `whisper_model_load` reads it and
//! `models/convert-pt-to-ggml.py` writes it:
//! ```text
//! i32 magic 0x67676d6c ("ggml")
//! i32 n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//!     n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype (1 = f16)
//! i32 n_mel, n_fft; f32 filters[n_mel * n_fft]
//! i32 n_tokens; { u32 len; u8 bytes[len] } * n_tokens   (raw bytes, not GPT-2's unicode form)
//! tensors: { i32 n_dims, name_len, ttype; i32 ne[n_dims] (innermost first); name; data }
//! ```
//! Linear and conv weights and the token embedding stay f16; biases, norms and positional
//! embeddings are written as f32. CTranslate2's fused self-attention `linear_0` (q;k;v) and
//! cross-attention `linear_1` (k;v) are split back into whisper.cpp's separate tensors. Whisper
//! has no key bias; CTranslate2 stores zeros there, and a key bias would not change attention
//! anyway (it adds the same `q·b` to every score of a query), so it is dropped.

mod mel;
mod model_bin;

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use model_bin::{Ct2DType, Ct2Model, Variable};

/// ggml file magic ("ggml" as a little-endian i32).
pub const GGML_MAGIC: u32 = 0x6767_6d6c;

/// Why a conversion failed. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (part of the message, not a separate `source()`).
        error: io::Error,
    },
    /// The input is truncated or malformed.
    #[error("{}: corrupt CTranslate2 model at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset where parsing stopped.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The model is valid CTranslate2 but not a Whisper model this converter understands.
    #[error("{}: not a supported CTranslate2 Whisper model: {reason}", path.display())]
    Architecture {
        /// The file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// The vocabulary file is unusable.
    #[error("{}: bad vocabulary: {reason}", path.display())]
    Vocabulary {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// Whisper hyper-parameters as stored in the ggml header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WhisperHparams {
    /// Vocabulary size (including special and timestamp tokens).
    pub n_vocab: u32,
    /// Encoder positions (1500 for 30 s windows).
    pub n_audio_ctx: u32,
    /// Encoder width.
    pub n_audio_state: u32,
    /// Encoder attention heads.
    pub n_audio_head: u32,
    /// Encoder layers.
    pub n_audio_layer: u32,
    /// Decoder positions.
    pub n_text_ctx: u32,
    /// Decoder width.
    pub n_text_state: u32,
    /// Decoder attention heads.
    pub n_text_head: u32,
    /// Decoder layers.
    pub n_text_layer: u32,
    /// Mel bins.
    pub n_mels: u32,
    /// Weight type (1 = f16).
    pub ftype: u32,
}

/// What a conversion produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Source directory.
    pub input: PathBuf,
    /// The written model file.
    pub output: PathBuf,
    /// Header values written.
    pub hparams: WhisperHparams,
    /// Tensors written.
    pub tensors: usize,
    /// Entries in the vocabulary section (text tokens + `<|endoftext|>`; whisper.cpp implies the rest).
    pub vocab_tokens: usize,
    /// Size of the output in bytes.
    pub bytes: u64,
}

/// Converts the CTranslate2 Whisper model in `ct2_dir` into a whisper.cpp ggml model at `out`.
pub fn convert(ct2_dir: &Path, out: &Path) -> Result<Report, ConvertError> {
    let span = tracing::info_span!("ct2_whisper_convert", input = %ct2_dir.display(), output = %out.display());
    let _enter = span.enter();
    let model = Ct2Model::open(&ct2_dir.join("model.bin"))?;
    let hparams = hparams(&model)?;
    let vocab_path = ct2_dir.join("vocabulary.txt");
    let tokens = read_vocabulary(&vocab_path, hparams.n_vocab as usize)?;
    let plan = tensor_plan(&model, &hparams)?;

    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ConvertError::Io { path, error }
    };
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let tmp = tempfile::Builder::new()
        .prefix(".switchyard-convert-")
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(io_err(&dir))?;
    let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());

    let write =
        |w: &mut BufWriter<&fs::File>, bytes: &[u8]| w.write_all(bytes).map_err(io_err(out));
    let header = [
        GGML_MAGIC,
        hparams.n_vocab,
        hparams.n_audio_ctx,
        hparams.n_audio_state,
        hparams.n_audio_head,
        hparams.n_audio_layer,
        hparams.n_text_ctx,
        hparams.n_text_state,
        hparams.n_text_head,
        hparams.n_text_layer,
        hparams.n_mels,
        hparams.ftype,
    ];
    for v in header {
        write(&mut w, &v.to_le_bytes())?;
    }
    // Mel filterbank.
    let n_fft = 201u32;
    let filters = mel::mel_filters(16000.0, 400, hparams.n_mels as usize);
    write(&mut w, &hparams.n_mels.to_le_bytes())?;
    write(&mut w, &n_fft.to_le_bytes())?;
    for f in &filters {
        write(&mut w, &f.to_le_bytes())?;
    }
    // Vocabulary.
    write(&mut w, &(tokens.len() as u32).to_le_bytes())?;
    for t in &tokens {
        write(&mut w, &(t.len() as u32).to_le_bytes())?;
        write(&mut w, t)?;
    }
    // Tensors.
    let mut buf = Vec::new();
    for t in &plan {
        let n_dims = t.ne.len() as u32;
        let ttype: u32 = if t.f32 { 0 } else { 1 };
        write(&mut w, &n_dims.to_le_bytes())?;
        write(&mut w, &(t.name.len() as u32).to_le_bytes())?;
        write(&mut w, &ttype.to_le_bytes())?;
        for d in &t.ne {
            write(&mut w, &(*d as u32).to_le_bytes())?;
        }
        write(&mut w, t.name.as_bytes())?;
        let data = model.data(t.var);
        let elem = t.var.dtype.size();
        let raw = &data[t.rows.start * t.row_len * elem..t.rows.end * t.row_len * elem];
        // In slices, so neither the source pages nor the encoded copy of a large tensor (the
        // 40 MB token embedding of tiny.en) is resident whole.
        for part in raw.chunks(CHUNK_ELEMENTS * elem) {
            buf.clear();
            encode(part, t.var.dtype, t.f32, &mut buf);
            write(&mut w, &buf)?;
            model.release(part);
        }
    }
    w.flush().map_err(io_err(out))?;
    drop(w);
    tmp.as_file().sync_all().map_err(io_err(out))?;
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile creates 0600; a model file is meant to be readable like any other.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(io_err(out))?;
    }
    let bytes = tmp.as_file().metadata().map_err(io_err(out))?.len();
    tmp.persist(out).map_err(|e| ConvertError::Io {
        path: out.to_path_buf(),
        error: e.error,
    })?;
    tracing::info!(tensors = plan.len(), bytes, "whisper ggml model written");
    Ok(Report {
        input: ct2_dir.to_path_buf(),
        output: out.to_path_buf(),
        hparams,
        tensors: plan.len(),
        vocab_tokens: tokens.len(),
        bytes,
    })
}

/// Elements re-encoded and written at a time.
const CHUNK_ELEMENTS: usize = 1 << 20;

/// Re-encodes CTranslate2 elements (f32/f16/bf16) as f32 (`to_f32`) or f16.
fn encode(raw: &[u8], dtype: Ct2DType, to_f32: bool, out: &mut Vec<u8>) {
    match (dtype, to_f32) {
        (Ct2DType::F16, false) | (Ct2DType::F32, true) => out.extend_from_slice(raw),
        _ => {
            let elem = dtype.size();
            for c in raw.chunks_exact(elem) {
                let v = match dtype {
                    Ct2DType::F16 => f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32(),
                    Ct2DType::BF16 => bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32(),
                    _ => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                };
                if to_f32 {
                    out.extend_from_slice(&v.to_le_bytes());
                } else {
                    out.extend_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
                }
            }
        }
    }
}

fn arch_err(model: &Ct2Model, reason: String) -> ConvertError {
    ConvertError::Architecture {
        path: model.path().to_path_buf(),
        reason,
    }
}

fn count_layers(model: &Ct2Model, prefix: &str) -> u32 {
    let mut n = 0;
    while model.has(&format!("{prefix}/layer_{n}/ffn/linear_0/weight")) {
        n += 1;
    }
    n
}

fn dims2(model: &Ct2Model, name: &str) -> Result<(usize, usize), ConvertError> {
    let v = model.var(name)?;
    match v.shape[..] {
        [a, b] => Ok((a, b)),
        _ => Err(arch_err(
            model,
            format!("{name:?} should be 2-D, has shape {:?}", v.shape),
        )),
    }
}

fn hparams(model: &Ct2Model) -> Result<WhisperHparams, ConvertError> {
    if model.spec != "WhisperSpec" {
        return Err(arch_err(
            model,
            format!(
                "spec is {:?} (binary version {}), expected \"WhisperSpec\"",
                model.spec, model.version
            ),
        ));
    }
    let (n_vocab, n_text_state) = dims2(model, "decoder/embeddings/weight")?;
    let (n_text_ctx, _) = dims2(model, "decoder/position_encodings/encodings")?;
    let (n_audio_ctx, n_audio_state) = dims2(model, "encoder/position_encodings/encodings")?;
    let conv1 = model.var("encoder/conv1/weight")?;
    let n_mels = match conv1.shape[..] {
        [out, mels, 3] if out == n_audio_state => mels,
        _ => {
            return Err(arch_err(
                model,
                format!("encoder/conv1/weight has shape {:?}", conv1.shape),
            ))
        }
    };
    let heads = |name: &str| -> Result<u32, ConvertError> {
        let h = model.scalar_int(name)?;
        u32::try_from(h)
            .ok()
            .filter(|h| *h > 0)
            .ok_or_else(|| arch_err(model, format!("{name} = {h}")))
    };
    let n_audio_head = heads("encoder/num_heads")?;
    let n_text_head = heads("decoder/num_heads")?;
    let n_audio_layer = count_layers(model, "encoder");
    let n_text_layer = count_layers(model, "decoder");
    if n_audio_layer == 0 || n_text_layer == 0 {
        return Err(arch_err(model, "no encoder or decoder layers found".into()));
    }
    if n_text_state != n_audio_state {
        return Err(arch_err(
            model,
            format!("decoder width {n_text_state} differs from encoder width {n_audio_state}"),
        ));
    }
    for name in ["encoder/num_heads", "decoder/num_heads"] {
        let h = heads(name)? as usize;
        if n_audio_state % h != 0 {
            return Err(arch_err(
                model,
                format!("{name} = {h} does not divide width {n_audio_state}"),
            ));
        }
    }
    let to_u32 = |v: usize| u32::try_from(v).map_err(|_| arch_err(model, format!("{v} too large")));
    Ok(WhisperHparams {
        n_vocab: to_u32(n_vocab)?,
        n_audio_ctx: to_u32(n_audio_ctx)?,
        n_audio_state: to_u32(n_audio_state)?,
        n_audio_head,
        n_audio_layer,
        n_text_ctx: to_u32(n_text_ctx)?,
        n_text_state: to_u32(n_text_state)?,
        n_text_head,
        n_text_layer,
        n_mels: to_u32(n_mels)?,
        ftype: 1,
    })
}

/// One output tensor: which rows of which CTranslate2 variable, under which name and layout.
struct Planned<'a> {
    name: String,
    var: &'a Variable,
    /// Rows of the (outermost dimension of the) source variable.
    rows: std::ops::Range<usize>,
    /// Elements per row.
    row_len: usize,
    /// ggml dims, innermost first.
    ne: Vec<usize>,
    /// Written as f32 (else f16).
    f32: bool,
}

/// What a tensor is, which fixes its expected row count, its ggml layout and its type.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `d × d` (or `d × 4d`) linear weight: f16.
    Matrix,
    /// `4d × d` first FFN weight: f16.
    Hidden,
    /// `d` bias or norm: f32.
    Vector,
    /// `4d` bias: f32.
    HiddenVector,
    /// Conv weight `[d, in, 3]`: f16.
    ConvWeight,
    /// Conv bias, stored as `[d, 1]` f32 like whisper.cpp's converter.
    ConvBias,
    /// Positional embedding: f32.
    PosEmb,
    /// Token embedding: f16.
    Embedding,
}

impl Kind {
    fn expected_rows(self, d: usize) -> Option<usize> {
        match self {
            Kind::Matrix | Kind::Vector | Kind::ConvWeight | Kind::ConvBias => Some(d),
            Kind::Hidden | Kind::HiddenVector => Some(4 * d),
            Kind::PosEmb | Kind::Embedding => None,
        }
    }
}

struct Planner<'a> {
    model: &'a Ct2Model,
    d: usize,
    plan: Vec<Planned<'a>>,
}

impl<'a> Planner<'a> {
    /// Adds part `index` of `parts` equal row slices of `src` as `dst`.
    fn add(
        &mut self,
        dst: String,
        src: &str,
        (parts, index): (usize, usize),
        kind: Kind,
    ) -> Result<(), ConvertError> {
        let model = self.model;
        let var = model.var(src)?;
        if !matches!(var.dtype, Ct2DType::F32 | Ct2DType::F16 | Ct2DType::BF16) {
            return Err(arch_err(
                model,
                format!(
                    "{src:?} is {:?}; quantized CTranslate2 models are not supported (convert the float16 model)",
                    var.dtype
                ),
            ));
        }
        let outer = var.shape.first().copied().unwrap_or(0);
        let rows = outer / parts;
        let expected = kind.expected_rows(self.d);
        let well_formed = is_expected_rank(kind, var.shape.len())
            && outer % parts == 0
            && rows > 0
            && expected.is_none_or(|e| e == rows);
        if !well_formed {
            return Err(arch_err(
                model,
                format!(
                    "{src:?} has shape {:?}, expected {parts} part(s) of {} rows ({kind:?})",
                    var.shape,
                    expected.map_or("any".to_string(), |e| e.to_string())
                ),
            ));
        }
        let row_len: usize = var.shape[1..].iter().product();
        let mut shape = var.shape.clone();
        shape[0] = rows;
        let reversed: Vec<usize> = shape.iter().rev().copied().collect();
        let (ne, f32) = match kind {
            Kind::ConvBias => (vec![1, rows], true),
            Kind::Vector | Kind::HiddenVector | Kind::PosEmb => (reversed, true),
            Kind::Matrix | Kind::Hidden | Kind::Embedding | Kind::ConvWeight => (reversed, false),
        };
        self.plan.push(Planned {
            name: dst,
            var,
            rows: rows * index..rows * (index + 1),
            row_len,
            ne,
            f32,
        });
        Ok(())
    }

    fn norm(&mut self, dst: &str, src: &str) -> Result<(), ConvertError> {
        self.add(
            format!("{dst}.weight"),
            &format!("{src}/gamma"),
            (1, 0),
            Kind::Vector,
        )?;
        self.add(
            format!("{dst}.bias"),
            &format!("{src}/beta"),
            (1, 0),
            Kind::Vector,
        )
    }

    /// `linear` (`weight` + `bias`) of `src`, part `part` of its rows.
    fn linear(
        &mut self,
        dst: &str,
        src: &str,
        part: (usize, usize),
        bias: bool,
    ) -> Result<(), ConvertError> {
        self.add(
            format!("{dst}.weight"),
            &format!("{src}/weight"),
            part,
            Kind::Matrix,
        )?;
        if bias {
            self.add(
                format!("{dst}.bias"),
                &format!("{src}/bias"),
                part,
                Kind::Vector,
            )?;
        }
        Ok(())
    }

    fn block(&mut self, side: &str, i: u32, cross: bool) -> Result<(), ConvertError> {
        let src = format!("{side}/layer_{i}");
        let dst = format!("{side}.blocks.{i}");
        self.norm(
            &format!("{dst}.attn_ln"),
            &format!("{src}/self_attention/layer_norm"),
        )?;
        let qkv = format!("{src}/self_attention/linear_0");
        self.linear(&format!("{dst}.attn.query"), &qkv, (3, 0), true)?;
        // Whisper's key projection has no bias (see the module docs).
        self.linear(&format!("{dst}.attn.key"), &qkv, (3, 1), false)?;
        self.linear(&format!("{dst}.attn.value"), &qkv, (3, 2), true)?;
        let out = format!("{src}/self_attention/linear_1");
        self.linear(&format!("{dst}.attn.out"), &out, (1, 0), true)?;
        if cross {
            self.norm(
                &format!("{dst}.cross_attn_ln"),
                &format!("{src}/attention/layer_norm"),
            )?;
            let q = format!("{src}/attention/linear_0");
            self.linear(&format!("{dst}.cross_attn.query"), &q, (1, 0), true)?;
            let kv = format!("{src}/attention/linear_1");
            self.linear(&format!("{dst}.cross_attn.key"), &kv, (2, 0), false)?;
            self.linear(&format!("{dst}.cross_attn.value"), &kv, (2, 1), true)?;
            let o = format!("{src}/attention/linear_2");
            self.linear(&format!("{dst}.cross_attn.out"), &o, (1, 0), true)?;
        }
        self.norm(&format!("{dst}.mlp_ln"), &format!("{src}/ffn/layer_norm"))?;
        let ffn0 = format!("{src}/ffn/linear_0");
        self.add(
            format!("{dst}.mlp.0.weight"),
            &format!("{ffn0}/weight"),
            (1, 0),
            Kind::Hidden,
        )?;
        self.add(
            format!("{dst}.mlp.0.bias"),
            &format!("{ffn0}/bias"),
            (1, 0),
            Kind::HiddenVector,
        )?;
        self.linear(
            &format!("{dst}.mlp.2"),
            &format!("{src}/ffn/linear_1"),
            (1, 0),
            true,
        )
    }
}

fn is_expected_rank(kind: Kind, rank: usize) -> bool {
    match kind {
        Kind::Vector | Kind::HiddenVector | Kind::ConvBias => rank == 1,
        Kind::ConvWeight => rank == 3,
        Kind::Matrix | Kind::Hidden | Kind::PosEmb | Kind::Embedding => rank == 2,
    }
}

fn tensor_plan<'a>(
    model: &'a Ct2Model,
    hp: &WhisperHparams,
) -> Result<Vec<Planned<'a>>, ConvertError> {
    let mut p = Planner {
        model,
        d: hp.n_audio_state as usize,
        plan: Vec::new(),
    };
    let whole = (1, 0);
    p.add(
        "encoder.positional_embedding".into(),
        "encoder/position_encodings/encodings",
        whole,
        Kind::PosEmb,
    )?;
    for i in [1, 2] {
        p.add(
            format!("encoder.conv{i}.weight"),
            &format!("encoder/conv{i}/weight"),
            whole,
            Kind::ConvWeight,
        )?;
        p.add(
            format!("encoder.conv{i}.bias"),
            &format!("encoder/conv{i}/bias"),
            whole,
            Kind::ConvBias,
        )?;
    }
    p.norm("encoder.ln_post", "encoder/layer_norm")?;
    p.add(
        "decoder.positional_embedding".into(),
        "decoder/position_encodings/encodings",
        whole,
        Kind::PosEmb,
    )?;
    p.add(
        "decoder.token_embedding.weight".into(),
        "decoder/embeddings/weight",
        whole,
        Kind::Embedding,
    )?;
    p.norm("decoder.ln", "decoder/layer_norm")?;
    for i in 0..hp.n_audio_layer {
        p.block("encoder", i, false)?;
    }
    for i in 0..hp.n_text_layer {
        p.block("decoder", i, true)?;
    }
    Ok(p.plan)
}

/// GPT-2's byte ↔ printable-character table (`bytes_to_unicode`): maps each character used in
/// byte-level BPE vocabularies back to the byte it stands for.
fn gpt2_char_to_byte() -> std::collections::HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = printable.clone();
    let mut n = 0;
    for b in 0..=255u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    printable
        .iter()
        .zip(&chars)
        .filter_map(|(b, c)| Some((char::from_u32(*c)?, u8::try_from(*b).ok()?)))
        .collect()
}

/// Reads CTranslate2's `vocabulary.txt` (one byte-level BPE token per line) and returns the
/// text tokens as raw bytes followed by `<|endoftext|>`, like whisper.cpp's converter:
/// whisper.cpp names the remaining special and timestamp tokens itself from their ids.
fn read_vocabulary(path: &Path, n_vocab: usize) -> Result<Vec<Vec<u8>>, ConvertError> {
    let text = fs::read_to_string(path).map_err(|error| ConvertError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != n_vocab {
        return Err(ConvertError::Vocabulary {
            path: path.to_path_buf(),
            reason: format!(
                "{} tokens, but the model's embedding has {n_vocab} rows",
                lines.len()
            ),
        });
    }
    let table = gpt2_char_to_byte();
    let mut tokens = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("<|") && line.ends_with("|>") {
            if *line != "<|endoftext|>" {
                return Err(ConvertError::Vocabulary {
                    path: path.to_path_buf(),
                    reason: format!("first special token is {line:?} at line {}", i + 1),
                });
            }
            // Kept, as whisper.cpp's own converter does; the remaining specials are implied.
            tokens.push(line.as_bytes().to_vec());
            return Ok(tokens);
        }
        let bytes = line
            .chars()
            .map(|c| table.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| ConvertError::Vocabulary {
                path: path.to_path_buf(),
                reason: format!("line {} ({line:?}) is not a byte-level BPE token", i + 1),
            })?;
        tokens.push(bytes);
    }
    Err(ConvertError::Vocabulary {
        path: path.to_path_buf(),
        reason: "no <|endoftext|> token".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// A tiny valid CTranslate2 file with one f16 variable.
    fn tiny_model_bin(spec: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, spec);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "encoder/conv1/bias");
        b.push(1);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }

    fn write_dir(model_bin: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("model.bin"), model_bin).unwrap();
        fs::write(dir.path().join("vocabulary.txt"), "a\n<|endoftext|>\n").unwrap();
        dir
    }

    #[test]
    fn truncated_model_bin_is_a_clear_error() {
        let full = tiny_model_bin("WhisperSpec");
        let dir = write_dir(&full[..full.len() - 6]);
        let out = dir.path().join("out.bin");
        let err = convert(dir.path(), &out).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConvertError::Corrupt { .. }), "{msg}");
        assert!(
            msg.contains("model.bin") && msg.contains("truncated"),
            "{msg}"
        );
        assert!(!out.exists());
        // Nothing half-written is left behind either.
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn garbage_model_bin_is_a_clear_error() {
        let dir = write_dir(b"this is not a model at all, just some text");
        let err = convert(dir.path(), &dir.path().join("out.bin")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("model.bin") && msg.contains("binary version"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_architecture_is_named() {
        let dir = write_dir(&tiny_model_bin("TransformerSpec"));
        let err = convert(dir.path(), &dir.path().join("out.bin")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConvertError::Architecture { .. }), "{msg}");
        assert!(
            msg.contains("TransformerSpec") && msg.contains("model.bin"),
            "{msg}"
        );
    }

    #[test]
    fn incomplete_whisper_model_names_the_missing_variable() {
        let dir = write_dir(&tiny_model_bin("WhisperSpec"));
        let err = convert(dir.path(), &dir.path().join("out.bin")).unwrap_err();
        assert!(
            err.to_string().contains("decoder/embeddings/weight"),
            "{err}"
        );
    }

    #[test]
    fn missing_input_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = convert(dir.path(), &dir.path().join("out.bin")).unwrap_err();
        assert!(matches!(err, ConvertError::Io { .. }));
        assert!(err.to_string().contains("model.bin"), "{err}");
    }

    /// Converts the shipped whisper-tiny.en (skipped when absent, unless `CI` is set).
    #[test]
    fn real_tiny_en_converts_to_whisper_cpp_layout() {
        let dir = std::env::var_os("SWITCHYARD_MODELS_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard/models")))
            .unwrap()
            .join("whisper-tiny.en");
        if !dir.join("model.bin").is_file() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: {} missing",
                dir.display()
            );
            eprintln!("SKIP: {} not found", dir.display());
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("ggml-tiny.en.bin");
        let report = convert(&dir, &out).unwrap();
        assert_eq!(report.tensors, 167);
        assert_eq!(report.vocab_tokens, 50257);
        // The size of whisper.cpp's published ggml-tiny.en.bin.
        assert_eq!(report.bytes, 77_704_715);
        let bytes = fs::read(&out).unwrap();
        let word = |i: usize| u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        let header: Vec<u32> = (0..12).map(word).collect();
        assert_eq!(
            header,
            [GGML_MAGIC, 51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]
        );
        assert_eq!((word(12), word(13)), (80, 201));
        // The key projection of encoder block 0 is rows 384..768 of CTranslate2's fused qkv.
        let model = Ct2Model::open(&dir.join("model.bin")).unwrap();
        let fused = model
            .data(
                model
                    .var("encoder/layer_0/self_attention/linear_0/weight")
                    .unwrap(),
            )
            .to_vec();
        let name = b"encoder.blocks.0.attn.key.weight";
        let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
        assert_eq!(
            &bytes[at..at + 384 * 384 * 2],
            &fused[384 * 384 * 2..2 * 384 * 384 * 2]
        );
    }

    #[test]
    fn byte_level_tokens_decode_to_bytes() {
        let t = gpt2_char_to_byte();
        assert_eq!(t.len(), 256);
        assert_eq!(t[&'Ġ'], b' ');
        assert_eq!(t[&'Ċ'], b'\n');
        assert_eq!(t[&'a'], b'a');
    }
}
