//! whisper.cpp ggml model (legacy `.bin`) → Q8_0, the way whisper.cpp's own `quantize` tool
//! does it (`examples/quantize/quantize.cpp`, which calls `ggml_common_quantize_0` in
//! `examples/common-ggml.cpp`).
//!
//! The file layout is the one [`crate::ct2_whisper`] writes and whisper.cpp's
//! `whisper_model_load` reads (little-endian):
//! ```text
//! u32 magic "ggml"; i32 n_vocab … n_mels (10 values); i32 ftype
//! i32 n_mel, n_fft; f32 filters[n_mel * n_fft]
//! i32 n_tokens; { u32 len; u8 bytes[len] } * n_tokens
//! tensors until the end: { i32 n_dims, name_len, ttype; i32 ne[n_dims]; name; data }
//! ```
//!
//! What changes, as in whisper.cpp's tool:
//! - **Header**: `ftype` becomes `GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + ftype`, i.e.
//!   `2 * 1000 + 7 = 2007` for Q8_0 (`GGML_FTYPE_MOSTLY_Q8_0 = 7`); whisper.cpp splits it
//!   back into the quantisation version (`ftype / 1000`) and the ftype (`ftype % 1000`). The
//!   mel filters and the vocabulary are copied byte for byte.
//! - **Quantised**: every 2-D tensor except `encoder.conv1.bias`, `encoder.conv2.bias`,
//!   `encoder.positional_embedding` and `decoder.positional_embedding`: the attention and MLP
//!   matrices and the token embedding. whisper.cpp allocates exactly those with the model's
//!   weight type, so all of them must be Q8_0 in a Q8_0 file.
//! - **Kept**: the 3-D conv weights (f16), the 1-D biases and norms, the conv biases and the
//!   positional embeddings (f32).
//! - **Q8_0 blocks** (ggml's `quantize_row_q8_0_ref`, what `ggml_quantize_chunk` runs for
//!   Q8_0): 32 consecutive values of a row → `f16 d = max|x| / 127`, then 32 × `i8
//!   q = round(x · (1/d))` (half away from zero; `q = 0` when `d = 0`); 34 bytes per 32
//!   values. The test suite checks the output bit for bit against ggml's own
//!   `ggml_quantize_chunk`.
//!
//! Where this differs from whisper.cpp's tool, it refuses or repairs what would give a file
//! whisper.cpp cannot load, rather than writing it:
//! - a 2-D weight whose rows (`ne[0]`) are not a multiple of 32 is an error. (The tool aborts
//!   in ggml's quantizer; keeping such a tensor f16 is no way out, because whisper.cpp
//!   allocates every weight matrix with the file's type and rejects a size mismatch.)
//! - from an all-f32 source (`ftype` 0), the f32 conv weights are written as f16: whisper.cpp
//!   reads conv weights as f16 in every model that is not all-f32. (The tool copies them, and
//!   whisper.cpp then refuses the file.)
//! - a source that is already quantised (`ftype % 1000` other than 0 or 1) is refused:
//!   quantising again would stack two roundings; quantise the f16 file.
//!
//! **Streaming.** The input is memory-mapped and converted tensor by tensor, a few hundred KiB
//! at a time, into a buffered writer; pages of the map are handed back to the kernel every
//! few MiB. Peak memory is a few MiB whatever the model's size (the page cache holds the
//! file, not this process).
//!
//! **Verification.** The output goes to a temporary file next to the destination. It is then
//! read back (memory-mapped) and parsed like the source: same header but `ftype`, same mel
//! filters and vocabulary bytes, the same tensors in the same order with the same shapes, each
//! of the type whisper.cpp will allocate for it, the file ending exactly after the last one.
//! Kept tensors must be byte-identical; quantised ones are decoded with ggml's own Q8_0
//! decoder (the llama.cpp build the converter links) and every value must lie within half a
//! quantisation step (plus the rounding of `d` to f16) of the source value. Only then is the
//! file renamed into place.

use crate::mapped::Mapped;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use half::f16;

use crate::ct2_whisper::GGML_MAGIC;
use crate::mlx::ggml::GgmlType;

/// `GGML_QNT_VERSION`: the quantisation format version stored in a quantised file's `ftype`.
pub const GGML_QNT_VERSION: u32 = 2;
/// `GGML_QNT_VERSION_FACTOR`: `ftype = qnt_version * factor + ftype`.
pub const GGML_QNT_VERSION_FACTOR: u32 = 1000;
/// `GGML_FTYPE_ALL_F32`.
pub const GGML_FTYPE_ALL_F32: u32 = 0;
/// `GGML_FTYPE_MOSTLY_F16`.
pub const GGML_FTYPE_MOSTLY_F16: u32 = 1;
/// `GGML_FTYPE_MOSTLY_Q8_0`.
pub const GGML_FTYPE_MOSTLY_Q8_0: u32 = 7;
/// Values per Q8_0 block (`QK8_0`).
pub const QK8_0: usize = 32;
/// Bytes per Q8_0 block: the f16 scale and 32 signed bytes.
pub const BLOCK_Q8_0_BYTES: usize = 2 + QK8_0;

/// ggml tensor type ids (`enum ggml_type`) that appear in whisper ggml files.
const TYPE_F32: u32 = 0;
const TYPE_F16: u32 = 1;
const TYPE_Q8_0: u32 = 8;

/// 2-D tensors whisper.cpp keeps in their own type (its tool's `to_skip` list).
pub const NOT_QUANTIZED: [&str; 4] = [
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// Q8_0 blocks converted (and written) at a time.
const CHUNK_BLOCKS: usize = 8192;
/// The longest tensor name accepted (whisper.cpp's are under 40 bytes).
const MAX_NAME: usize = 4096;

/// Quantisation types this converter makes for whisper.cpp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhisperQuantType {
    /// ggml Q8_0: blocks of 32 values, an f16 scale and 32 signed bytes (8.5 bits/weight).
    Q8_0,
}

impl WhisperQuantType {
    /// Every type, in the order the command line lists them.
    pub const ALL: [WhisperQuantType; 1] = [WhisperQuantType::Q8_0];

    /// The name on the command line, in manifests and in profiles (`q8_0`).
    pub fn name(self) -> &'static str {
        match self {
            WhisperQuantType::Q8_0 => "q8_0",
        }
    }

    /// The type named `name` (as [`WhisperQuantType::name`] spells it; case-insensitive).
    pub fn parse(name: &str) -> Result<WhisperQuantType, WhisperQuantError> {
        WhisperQuantType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| WhisperQuantError::UnknownType(name.to_owned()))
    }

    /// The `ggml_ftype` of a model of this type (without the quantisation version).
    pub fn ftype(self) -> u32 {
        match self {
            WhisperQuantType::Q8_0 => GGML_FTYPE_MOSTLY_Q8_0,
        }
    }

    /// The header's `ftype` value: `GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + ftype`.
    pub fn header_ftype(self) -> u32 {
        GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + self.ftype()
    }
}

impl std::fmt::Display for WhisperQuantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for WhisperQuantType {
    type Err = WhisperQuantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WhisperQuantType::parse(s)
    }
}

/// The precision name (as profiles spell it) of a whisper ggml header's `ftype` (the
/// quantisation version is ignored), or `None` for an ftype ggml does not define.
pub fn ftype_precision(ftype: u32) -> Option<&'static str> {
    Some(match ftype % GGML_QNT_VERSION_FACTOR {
        0 => "fp32",
        1 => "fp16",
        2 => "q4_0",
        3 => "q4_1",
        7 => "q8_0",
        8 => "q5_0",
        9 => "q5_1",
        10 => "q2_k",
        11 => "q3_k",
        12 => "q4_k",
        13 => "q5_k",
        14 => "q6_k",
        _ => return None,
    })
}

/// Why a quantisation failed. Every variant but [`WhisperQuantError::UnknownType`] names the
/// file involved.
#[derive(Debug, thiserror::Error)]
pub enum WhisperQuantError {
    /// The type name is not one of [`WhisperQuantType::ALL`].
    #[error("unknown whisper.cpp quantisation type `{0}` (expected q8_0)")]
    UnknownType(String),
    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The input is not a readable whisper.cpp ggml model (truncated, corrupt, other format).
    #[error("{}: not a valid whisper.cpp ggml model at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset where parsing stopped.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The model is a valid whisper.cpp file that cannot be quantised to the type asked for.
    #[error("{}: cannot quantise to {target}: {reason}", path.display())]
    Unsupported {
        /// The input file.
        path: PathBuf,
        /// The type asked for.
        target: WhisperQuantType,
        /// Why not.
        reason: String,
    },
    /// The written file did not pass the checks made before it is renamed into place.
    #[error("{}: the quantised model failed verification: {reason}", path.display())]
    Verification {
        /// The destination.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
}

/// The header of a whisper.cpp ggml model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GgmlHeader {
    /// `n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
    /// n_text_state, n_text_head, n_text_layer, n_mels`.
    pub hparams: [u32; 10],
    /// `ftype` as stored (quantisation version × 1000 + ggml ftype).
    pub ftype: u32,
}

impl GgmlHeader {
    /// The weights' precision as profiles name it (`fp16`, `q8_0`, …).
    pub fn precision(&self) -> Option<&'static str> {
        ftype_precision(self.ftype)
    }
}

/// Reads the header (magic, hyper-parameters, `ftype`) of the whisper.cpp ggml file at `path`.
pub fn read_header(path: &Path) -> Result<GgmlHeader, WhisperQuantError> {
    use std::io::Read;
    let mut bytes = [0u8; 48];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => WhisperQuantError::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                reason: "shorter than a ggml header (48 bytes)".into(),
            },
            _ => WhisperQuantError::Io {
                path: path.to_path_buf(),
                error,
            },
        })?;
    let mut cursor = Cursor::new(&bytes);
    parse_header(&mut cursor).map_err(|(offset, reason)| WhisperQuantError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    })
}

/// What a quantisation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WhisperQuantReport {
    /// Source model.
    pub input: PathBuf,
    /// The written model.
    pub output: PathBuf,
    /// The type produced.
    pub target: WhisperQuantType,
    /// The source header's `ftype`.
    pub ftype_before: u32,
    /// The written header's `ftype` (2007 for Q8_0).
    pub ftype_after: u32,
    /// Tensors in the model.
    pub tensors: usize,
    /// Tensors quantised.
    pub tensors_quantized: usize,
    /// f32 conv weights written as f16 (all-f32 sources only).
    pub tensors_to_f16: usize,
    /// Tensors copied as they were.
    pub tensors_kept: usize,
    /// Size of the source in bytes.
    pub bytes_before: u64,
    /// Size of the written file in bytes.
    pub bytes_after: u64,
    /// Bytes of the largest source tensor.
    pub largest_tensor_bytes: u64,
    /// Largest `|x − x̂|` over the quantised values, as a fraction of the largest `|x|` of the
    /// value's block: half a step (0.5/127 ≈ 0.0039) plus the rounding of the scale to f16
    /// (≤ 2⁻¹¹); more only in blocks whose scale is an f16 subnormal (`max|x|` below
    /// about 0.0078), where the absolute error stays below 127 · 2⁻²⁵.
    pub max_block_error: f64,
    /// `sqrt(Σ (x − x̂)² / Σ x²)` over all quantised values.
    pub rms_relative_error: f64,
    /// Wall time of the whole conversion (read, quantise, write, read back and verify,
    /// rename), seconds.
    pub seconds: f64,
    /// Source megabytes (10^6 bytes) per second of `seconds`.
    pub mb_per_s: f64,
}

/// Quantises the whisper.cpp ggml model `input` to `target`, written to `output` (through a
/// temporary file next to it, verified, then renamed into place).
pub fn quantize(
    input: &Path,
    output: &Path,
    target: WhisperQuantType,
) -> Result<WhisperQuantReport, WhisperQuantError> {
    let span = tracing::info_span!("whisper_quantize", input = %input.display(), output = %output.display(), target = target.name());
    let _enter = span.enter();
    let started = Instant::now();
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| WhisperQuantError::Io { path, error }
    };
    let corrupt = |path: &Path| {
        let path = path.to_path_buf();
        move |(offset, reason): (usize, String)| WhisperQuantError::Corrupt {
            path,
            offset: offset as u64,
            reason,
        }
    };
    let file = File::open(input).map_err(io_err(input))?;
    let bytes_before = file.metadata().map_err(io_err(input))?.len();
    if bytes_before == 0 {
        return Err(corrupt(input)((0, "the file is empty".into())));
    }
    let source = Mapped::new(&file).map_err(io_err(input))?;
    let layout = parse(source.bytes()).map_err(corrupt(input))?;
    let unsupported = |reason: String| WhisperQuantError::Unsupported {
        path: input.to_path_buf(),
        target,
        reason,
    };
    match layout.header.ftype % GGML_QNT_VERSION_FACTOR {
        GGML_FTYPE_ALL_F32 | GGML_FTYPE_MOSTLY_F16 => {}
        other => {
            return Err(unsupported(format!(
                "the model is already quantised (ftype {}: {}); quantise the f16 (or f32) file \
                 instead of adding a second rounding",
                layout.header.ftype,
                ftype_precision(other).unwrap_or("unknown")
            )))
        }
    }
    let actions = layout
        .tensors
        .iter()
        .map(|t| action_for(t).map_err(&unsupported))
        .collect::<Result<Vec<_>, _>>()?;

    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let tmp = tempfile::Builder::new()
        .prefix(".switchyard-convert-")
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(io_err(&dir))?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());
        write_model(&mut w, &source, &layout, &actions, target).map_err(io_err(output))?;
        w.flush().map_err(io_err(output))?;
    }
    tmp.as_file().sync_all().map_err(io_err(output))?;
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile creates 0600; a model file is meant to be readable like any other.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_err(output))?;
    }
    let bytes_after = tmp.as_file().metadata().map_err(io_err(output))?.len();
    let stats = verify(tmp.path(), &source, &layout, &actions, target).map_err(|reason| {
        WhisperQuantError::Verification {
            path: output.to_path_buf(),
            reason,
        }
    })?;
    source.release_all();
    tmp.persist(output).map_err(|e| WhisperQuantError::Io {
        path: output.to_path_buf(),
        error: e.error,
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let count = |a: Action| actions.iter().filter(|x| **x == a).count();
    let report = WhisperQuantReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        target,
        ftype_before: layout.header.ftype,
        ftype_after: target.header_ftype(),
        tensors: layout.tensors.len(),
        tensors_quantized: count(Action::Quantize),
        tensors_to_f16: count(Action::ToF16),
        tensors_kept: count(Action::Copy),
        bytes_before,
        bytes_after,
        largest_tensor_bytes: layout
            .tensors
            .iter()
            .map(|t| t.data.len() as u64)
            .max()
            .unwrap_or(0),
        max_block_error: stats.max_block_error,
        rms_relative_error: if stats.sum_sq > 0.0 {
            (stats.sum_sq_err / stats.sum_sq).sqrt()
        } else {
            0.0
        },
        seconds,
        mb_per_s: bytes_before as f64 / 1e6 / seconds.max(1e-9),
    };
    tracing::info!(
        tensors = report.tensors,
        quantized = report.tensors_quantized,
        bytes = report.bytes_after,
        seconds = report.seconds,
        "whisper ggml model quantised"
    );
    Ok(report)
}

/// Quantises `src` (a whole number of blocks of 32) into ggml Q8_0 blocks appended to `out`,
/// exactly as ggml's `quantize_row_q8_0_ref`.
pub fn quantize_q8_0(src: &[f32], out: &mut Vec<u8>) {
    for block in src.chunks_exact(QK8_0) {
        // MAX(amax, fabsf(v)), in ggml's order.
        let amax = block
            .iter()
            .fold(0.0f32, |m, v| if m > v.abs() { m } else { v.abs() });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        // `roundf` rounds halves away from zero, as `f32::round`; |x·id| ≤ 127.
        out.extend(block.iter().map(|x| ((x * id).round() as i8) as u8));
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// A parse failure: byte offset and reason.
type ParseError = (usize, String);

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ParseError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| {
                (
                    self.pos,
                    format!(
                        "truncated: {what} needs {n} bytes, {} left",
                        self.bytes.len() - self.pos
                    ),
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32, ParseError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An `i32` that must not be negative.
    fn count(&mut self, what: &str) -> Result<usize, ParseError> {
        let at = self.pos;
        let v = self.u32(what)?;
        i32::try_from(v)
            .ok()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| (at, format!("{what} is negative ({})", v as i32)))
    }
}

/// One tensor record of a ggml file.
#[derive(Debug, Clone)]
struct TensorEntry {
    name: String,
    /// Dimensions, innermost first.
    ne: Vec<usize>,
    ttype: u32,
    data: Range<usize>,
}

/// The parts of a ggml file.
#[derive(Debug, Clone)]
struct Layout {
    header: GgmlHeader,
    /// Mel filters and vocabulary (copied as they are).
    body: Range<usize>,
    tensors: Vec<TensorEntry>,
}

fn parse_header(c: &mut Cursor<'_>) -> Result<GgmlHeader, ParseError> {
    let magic = c.u32("magic")?;
    if magic != GGML_MAGIC {
        return Err((
            0,
            format!("bad magic {magic:#010x} (expected {GGML_MAGIC:#010x}, \"ggml\"; GGUF files are not whisper.cpp models)"),
        ));
    }
    let mut hparams = [0u32; 10];
    for (i, h) in hparams.iter_mut().enumerate() {
        let at = c.pos;
        let v = c.u32("hyper-parameters")?;
        if i32::try_from(v).is_err() {
            return Err((
                at,
                format!("hyper-parameter {i} is negative ({})", v as i32),
            ));
        }
        *h = v;
    }
    let ftype = c.u32("ftype")?;
    Ok(GgmlHeader { hparams, ftype })
}

/// Bytes of `elements` values of ggml type `ttype` whose rows have `row` values.
fn data_bytes(ttype: u32, elements: usize, row: usize) -> Option<usize> {
    match ttype {
        TYPE_F32 => elements.checked_mul(4),
        TYPE_F16 => elements.checked_mul(2),
        TYPE_Q8_0 if row.is_multiple_of(QK8_0) => (elements / QK8_0).checked_mul(BLOCK_Q8_0_BYTES),
        _ => None,
    }
}

fn type_name(ttype: u32) -> String {
    match ttype {
        TYPE_F32 => "f32".into(),
        TYPE_F16 => "f16".into(),
        TYPE_Q8_0 => "q8_0".into(),
        other => {
            GgmlType::from_id(other).map_or_else(|| format!("type {other}"), |t| t.name.into())
        }
    }
}

fn parse(bytes: &[u8]) -> Result<Layout, ParseError> {
    let mut c = Cursor::new(bytes);
    let header = parse_header(&mut c)?;
    let body_start = c.pos;
    let n_mel = c.count("n_mel")?;
    let n_fft = c.count("n_fft")?;
    let filters = n_mel
        .checked_mul(n_fft)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| (c.pos, format!("mel filters {n_mel} × {n_fft} overflow")))?;
    c.take(filters, "mel filters")?;
    let n_tokens = c.count("vocabulary size")?;
    for i in 0..n_tokens {
        let len = c.u32("token length")? as usize;
        c.take(len, &format!("token {i}"))?;
    }
    let body = body_start..c.pos;
    let mut tensors = Vec::new();
    while c.pos < bytes.len() {
        let start = c.pos;
        let n_dims = c.count("tensor n_dims")?;
        let name_len = c.count("tensor name length")?;
        let ttype = c.u32("tensor type")?;
        if !(1..=4).contains(&n_dims) {
            return Err((start, format!("tensor with {n_dims} dimensions")));
        }
        if name_len == 0 || name_len > MAX_NAME {
            return Err((start, format!("tensor name of {name_len} bytes")));
        }
        let mut ne = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            ne.push(c.count("tensor dimension")?);
        }
        let name = String::from_utf8_lossy(c.take(name_len, "tensor name")?).into_owned();
        let elements = ne
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(*d))
            .ok_or_else(|| (start, format!("tensor {name:?}: {ne:?} overflows")))?;
        let size = data_bytes(ttype, elements, ne[0]).ok_or_else(|| {
            (
                start,
                format!(
                    "tensor {name:?} {ne:?} has ggml {}, which a whisper.cpp f16/f32/q8_0 file does not hold",
                    type_name(ttype)
                ),
            )
        })?;
        let data_start = c.pos;
        c.take(size, &format!("data of tensor {name:?}"))?;
        tensors.push(TensorEntry {
            name,
            ne,
            ttype,
            data: data_start..c.pos,
        });
    }
    if tensors.is_empty() {
        return Err((c.pos, "no tensors".into()));
    }
    Ok(Layout {
        header,
        body,
        tensors,
    })
}

// ---------------------------------------------------------------------------------------------
// Conversion
// ---------------------------------------------------------------------------------------------

/// What becomes of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Quantised to the target type.
    Quantize,
    /// An f32 conv weight of an all-f32 source, written as f16.
    ToF16,
    /// Copied as it is.
    Copy,
}

fn action_for(t: &TensorEntry) -> Result<Action, String> {
    let quantize = t.ne.len() == 2 && !NOT_QUANTIZED.contains(&t.name.as_str());
    if quantize {
        if !matches!(t.ttype, TYPE_F32 | TYPE_F16) {
            return Err(format!(
                "tensor {:?} is {}; only f16 and f32 weights are quantised",
                t.name,
                type_name(t.ttype)
            ));
        }
        if !t.ne[0].is_multiple_of(QK8_0) {
            return Err(format!(
                "tensor {:?} {:?} has rows of {} values, not a multiple of {QK8_0}: whisper.cpp \
                 loads every weight matrix of a quantised model in the quantised type, so it \
                 cannot stay f16 either",
                t.name, t.ne, t.ne[0]
            ));
        }
        return Ok(Action::Quantize);
    }
    if t.ne.len() == 3 && t.ttype == TYPE_F32 {
        // whisper.cpp's conv type is f16 in every model that is not all-f32.
        return Ok(Action::ToF16);
    }
    Ok(Action::Copy)
}

fn output_type(t: &TensorEntry, action: Action) -> u32 {
    match action {
        Action::Quantize => TYPE_Q8_0,
        Action::ToF16 => TYPE_F16,
        Action::Copy => t.ttype,
    }
}

fn record_header(t: &TensorEntry, ttype: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(12 + 4 * t.ne.len() + t.name.len());
    h.extend_from_slice(&(t.ne.len() as u32).to_le_bytes());
    h.extend_from_slice(&(t.name.len() as u32).to_le_bytes());
    h.extend_from_slice(&ttype.to_le_bytes());
    for d in &t.ne {
        h.extend_from_slice(&(*d as u32).to_le_bytes());
    }
    h.extend_from_slice(t.name.as_bytes());
    h
}

/// Decodes f16 or f32 little-endian values into `out` (cleared first).
fn decode(ttype: u32, raw: &[u8], out: &mut Vec<f32>) {
    out.clear();
    if ttype == TYPE_F16 {
        out.extend(
            raw.chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        );
    } else {
        out.extend(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
}

fn write_model(
    w: &mut impl Write,
    source: &Mapped,
    layout: &Layout,
    actions: &[Action],
    target: WhisperQuantType,
) -> io::Result<()> {
    let bytes = source.bytes();
    w.write_all(&GGML_MAGIC.to_le_bytes())?;
    for h in layout.header.hparams {
        w.write_all(&h.to_le_bytes())?;
    }
    w.write_all(&target.header_ftype().to_le_bytes())?;
    w.write_all(&bytes[layout.body.clone()])?;
    let mut values = Vec::new();
    let mut out = Vec::new();
    for (t, action) in layout.tensors.iter().zip(actions) {
        w.write_all(&record_header(t, output_type(t, *action)))?;
        let data = &bytes[t.data.clone()];
        match action {
            Action::Copy => w.write_all(data)?,
            Action::Quantize | Action::ToF16 => {
                let width = if t.ttype == TYPE_F16 { 2 } else { 4 };
                for chunk in data.chunks(CHUNK_BLOCKS * QK8_0 * width) {
                    decode(t.ttype, chunk, &mut values);
                    out.clear();
                    if *action == Action::Quantize {
                        quantize_q8_0(&values, &mut out);
                    } else {
                        out.extend(values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()));
                    }
                    w.write_all(&out)?;
                    source.release(chunk);
                }
            }
        }
        source.release(data);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct ErrorStats {
    max_block_error: f64,
    sum_sq_err: f64,
    sum_sq: f64,
}

fn verify(
    written: &Path,
    source: &Mapped,
    layout: &Layout,
    actions: &[Action],
    target: WhisperQuantType,
) -> Result<ErrorStats, String> {
    let file = File::open(written).map_err(|e| format!("reopening: {e}"))?;
    let out = Mapped::new(&file).map_err(|e| format!("mapping: {e}"))?;
    let got = parse(out.bytes()).map_err(|(offset, reason)| {
        format!("does not parse back as a whisper.cpp model at byte {offset}: {reason}")
    })?;
    if got.header.hparams != layout.header.hparams {
        return Err(format!(
            "hyper-parameters {:?}, source {:?}",
            got.header.hparams, layout.header.hparams
        ));
    }
    if got.header.ftype != target.header_ftype() {
        return Err(format!(
            "ftype {}, expected {}",
            got.header.ftype,
            target.header_ftype()
        ));
    }
    if out.bytes()[got.body.clone()] != source.bytes()[layout.body.clone()] {
        return Err("mel filters or vocabulary differ from the source".into());
    }
    if got.tensors.len() != layout.tensors.len() {
        return Err(format!(
            "{} tensors, source has {}",
            got.tensors.len(),
            layout.tensors.len()
        ));
    }
    let q8 = GgmlType::from_id(TYPE_Q8_0).ok_or("ggml does not know Q8_0")?;
    let mut stats = ErrorStats::default();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for ((t, o), action) in layout.tensors.iter().zip(&got.tensors).zip(actions) {
        let expected = output_type(t, *action);
        if o.name != t.name || o.ne != t.ne || o.ttype != expected {
            return Err(format!(
                "tensor {:?} {:?} {} where the source's {:?} {:?} should be {}",
                o.name,
                o.ne,
                type_name(o.ttype),
                t.name,
                t.ne,
                type_name(expected)
            ));
        }
        let (src, dst) = (
            &source.bytes()[t.data.clone()],
            &out.bytes()[o.data.clone()],
        );
        match action {
            Action::Copy => {
                if src != dst {
                    return Err(format!("tensor {:?} changed", t.name));
                }
            }
            Action::ToF16 => {
                decode(TYPE_F32, src, &mut x);
                decode(TYPE_F16, dst, &mut y);
                let bad = x.iter().zip(&y).position(|(a, b)| {
                    !b.is_finite() || (a - b).abs() > a.abs() / 2048.0 + f32::powi(2.0, -25)
                });
                if let Some(i) = bad {
                    return Err(format!(
                        "tensor {:?} value {i}: {} as f16 is {}",
                        t.name, x[i], y[i]
                    ));
                }
            }
            Action::Quantize => {
                let width = if t.ttype == TYPE_F16 { 2 } else { 4 };
                let chunk_values = CHUNK_BLOCKS * QK8_0;
                for (i, (s, d)) in src
                    .chunks(chunk_values * width)
                    .zip(dst.chunks(CHUNK_BLOCKS * BLOCK_Q8_0_BYTES))
                    .enumerate()
                {
                    decode(t.ttype, s, &mut x);
                    y.clear();
                    y.resize(x.len(), 0.0);
                    if !q8.dequantize(d, &mut y) {
                        return Err(format!(
                            "tensor {:?}: ggml cannot decode its blocks",
                            t.name
                        ));
                    }
                    check_blocks(&x, &y, &mut stats).map_err(|(at, what)| {
                        format!(
                            "tensor {:?} value {}: {what}",
                            t.name,
                            i * chunk_values + at
                        )
                    })?;
                    source.release(s);
                    out.release(d);
                }
            }
        }
        source.release(src);
        out.release(dst);
    }
    out.release_all();
    Ok(stats)
}

/// Checks dequantised `y` against source `x`, block by block: `|x − y|` at most half a step
/// (`max|x| / 254`) plus what rounding the scale to f16 adds (`max|x| · 2⁻¹¹`, or `127 · 2⁻²⁵`
/// for a subnormal scale).
fn check_blocks(x: &[f32], y: &[f32], stats: &mut ErrorStats) -> Result<(), (usize, String)> {
    for (b, (xs, ys)) in x.chunks(QK8_0).zip(y.chunks(QK8_0)).enumerate() {
        let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if !amax.is_finite() {
            return Err((b * QK8_0, "the source block is not finite".into()));
        }
        let amax = f64::from(amax);
        let tolerance = amax * (0.5 / 127.0 + 1.0 / 2048.0) * (1.0 + 1e-6) + 127.0 * 2f64.powi(-25);
        for (j, (xv, yv)) in xs.iter().zip(ys).enumerate() {
            let (xv, yv) = (f64::from(*xv), f64::from(*yv));
            let err = (xv - yv).abs();
            if !yv.is_finite() || err > tolerance {
                return Err((
                    b * QK8_0 + j,
                    format!("source {xv} decodes as {yv} (block max {amax})"),
                ));
            }
            if amax > 0.0 {
                stats.max_block_error = stats.max_block_error.max(err / amax);
            }
            stats.sum_sq_err += err * err;
            stats.sum_sq += xv * xv;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_ftype_carries_the_quantisation_version() {
        assert_eq!(WhisperQuantType::Q8_0.header_ftype(), 2007);
        assert_eq!(ftype_precision(2007), Some("q8_0"));
        assert_eq!(ftype_precision(1), Some("fp16"));
        assert_eq!(ftype_precision(0), Some("fp32"));
        assert_eq!(
            WhisperQuantType::parse("Q8_0").unwrap(),
            WhisperQuantType::Q8_0
        );
        assert!(WhisperQuantType::parse("q4_0")
            .unwrap_err()
            .to_string()
            .contains("expected q8_0"));
    }

    #[test]
    fn q8_0_blocks_hold_scale_and_rounded_values() {
        let mut x = [0.0f32; 32];
        x[0] = -127.0; // the largest magnitude: d = 1
        x[1] = -63.5; // halves round away from zero
        x[2] = 2.5;
        x[3] = 0.49;
        let mut out = Vec::new();
        quantize_q8_0(&x, &mut out);
        assert_eq!(out.len(), 34);
        assert_eq!(f16::from_le_bytes([out[0], out[1]]).to_f32(), 1.0);
        let q: Vec<i8> = out[2..6].iter().map(|b| *b as i8).collect();
        assert_eq!(q, [-127, -64, 3, 0]);
        // An all-zero block has d = 0 and q = 0.
        out.clear();
        quantize_q8_0(&[0.0; 32], &mut out);
        assert!(out.iter().all(|b| *b == 0));
    }
}
