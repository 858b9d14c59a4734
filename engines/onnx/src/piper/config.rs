//! The Piper voice configuration (`<voice>.onnx.json`) and its phoneme-to-id map.

use std::collections::HashMap;
use std::path::Path;

use crate::OnnxError;

/// Beginning-of-sentence phoneme.
const BOS: char = '^';
/// End-of-sentence phoneme.
const EOS: char = '$';
/// Padding phoneme, put after every phoneme.
const PAD: char = '_';

/// Piper's defaults when a config has no `inference` section.
const DEFAULT_NOISE_SCALE: f32 = 0.667;
const DEFAULT_LENGTH_SCALE: f32 = 1.0;
const DEFAULT_NOISE_W: f32 = 0.8;

#[derive(Debug, serde::Deserialize)]
struct RawConfig {
    audio: RawAudio,
    #[serde(default)]
    espeak: Option<RawEspeak>,
    #[serde(default)]
    inference: Option<RawInference>,
    #[serde(default)]
    phoneme_type: Option<String>,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    num_speakers: Option<u32>,
}

#[derive(Debug, serde::Deserialize)]
struct RawAudio {
    sample_rate: u32,
}

#[derive(Debug, serde::Deserialize)]
struct RawEspeak {
    voice: String,
}

#[derive(Debug, serde::Deserialize)]
struct RawInference {
    #[serde(default = "default_noise_scale")]
    noise_scale: f32,
    #[serde(default = "default_length_scale")]
    length_scale: f32,
    #[serde(default = "default_noise_w")]
    noise_w: f32,
}

fn default_noise_scale() -> f32 {
    DEFAULT_NOISE_SCALE
}
fn default_length_scale() -> f32 {
    DEFAULT_LENGTH_SCALE
}
fn default_noise_w() -> f32 {
    DEFAULT_NOISE_W
}

/// What synthesis needs from the voice configuration.
#[derive(Debug, Clone)]
pub(crate) struct VoiceConfig {
    /// Output sample rate in Hz.
    pub sample_rate: u32,
    /// espeak-ng voice name (`en-us`).
    pub espeak_voice: String,
    /// Noise scale (`scales[0]`).
    pub noise_scale: f32,
    /// Length scale at speed 1.0 (`scales[1]`; larger is slower).
    pub length_scale: f32,
    /// Noise width (`scales[2]`).
    pub noise_w: f32,
    /// Number of speakers (1 for single-speaker voices).
    pub num_speakers: u32,
    /// Phoneme (one Unicode code point) to ids.
    pub ids: PhonemeIds,
}

impl VoiceConfig {
    /// Reads and checks `<voice>.onnx.json`.
    pub fn load(path: &Path) -> Result<VoiceConfig, OnnxError> {
        let error = |message: String| OnnxError::VoiceConfig {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let raw: RawConfig = serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
        match raw.phoneme_type.as_deref() {
            None | Some("espeak") => {}
            Some(other) => {
                return Err(error(format!(
                    "phoneme_type {other:?} is not supported (only \"espeak\")"
                )))
            }
        }
        let espeak_voice = raw
            .espeak
            .map(|e| e.voice)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| error("no espeak.voice".into()))?;
        if raw.audio.sample_rate == 0 {
            return Err(error("audio.sample_rate is 0".into()));
        }
        let inference = raw.inference.unwrap_or(RawInference {
            noise_scale: DEFAULT_NOISE_SCALE,
            length_scale: DEFAULT_LENGTH_SCALE,
            noise_w: DEFAULT_NOISE_W,
        });
        let scales = [
            inference.noise_scale,
            inference.length_scale,
            inference.noise_w,
        ];
        if scales.iter().any(|s| !s.is_finite() || *s < 0.0) || inference.length_scale <= 0.0 {
            return Err(error(format!("invalid inference scales {scales:?}")));
        }
        let ids = PhonemeIds::new(raw.phoneme_id_map).map_err(error)?;
        Ok(VoiceConfig {
            sample_rate: raw.audio.sample_rate,
            espeak_voice,
            noise_scale: inference.noise_scale,
            length_scale: inference.length_scale,
            noise_w: inference.noise_w,
            num_speakers: raw.num_speakers.unwrap_or(1),
            ids,
        })
    }
}

/// Piper's phoneme-to-id map: phonemes are single Unicode code points.
#[derive(Debug, Clone)]
pub(crate) struct PhonemeIds {
    map: HashMap<char, Vec<i64>>,
    bos: Vec<i64>,
    eos: Vec<i64>,
    pad: Vec<i64>,
}

impl PhonemeIds {
    fn new(raw: HashMap<String, Vec<i64>>) -> Result<PhonemeIds, String> {
        let mut map = HashMap::with_capacity(raw.len());
        for (key, ids) in raw {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => {
                    map.insert(c, ids);
                }
                _ => tracing::debug!(
                    phoneme = key,
                    "phoneme_id_map key is not one code point, ignored"
                ),
            }
        }
        let special = |c: char| {
            map.get(&c)
                .filter(|ids| !ids.is_empty())
                .cloned()
                .ok_or_else(|| format!("phoneme_id_map has no {c:?}"))
        };
        Ok(PhonemeIds {
            bos: special(BOS)?,
            eos: special(EOS)?,
            pad: special(PAD)?,
            map,
        })
    }

    /// Appends the ids of `phonemes` to `out` as Piper does: BOS, pad, then each phoneme
    /// followed by pad, then EOS. Phonemes the voice does not know are skipped (debug log).
    /// Returns how many phonemes were mapped, not counting spaces and punctuation.
    pub fn encode(&self, phonemes: &str, out: &mut Vec<i64>) -> usize {
        out.clear();
        out.extend_from_slice(&self.bos);
        out.extend_from_slice(&self.pad);
        let mut spoken = 0;
        for c in phonemes.chars().flat_map(decompose) {
            match self.map.get(&c) {
                Some(ids) => {
                    out.extend_from_slice(ids);
                    out.extend_from_slice(&self.pad);
                    if !c.is_whitespace() && !TERMINAL_MARKS.contains(&c) {
                        spoken += 1;
                    }
                }
                None => tracing::debug!(
                    phoneme = %c,
                    codepoint = format_args!("U+{:04X}", u32::from(c)),
                    "phoneme not in the voice's phoneme_id_map, skipped"
                ),
            }
        }
        out.extend_from_slice(&self.eos);
        spoken
    }
}

/// Canonical decomposition (NFD, as Piper applies to espeak-ng's output) of the precomposed
/// Latin letters espeak-ng's IPA can contain (`ç` becomes `c` + U+0327, `ã` becomes `a` +
/// U+0303, ...); other characters are already decomposed and pass through.
fn decompose(c: char) -> impl Iterator<Item = char> {
    const GRAVE: char = '\u{300}';
    const ACUTE: char = '\u{301}';
    const CIRCUMFLEX: char = '\u{302}';
    const TILDE: char = '\u{303}';
    const DIAERESIS: char = '\u{308}';
    const RING: char = '\u{30A}';
    const CEDILLA: char = '\u{327}';
    let pair = match c {
        'à' => Some(('a', GRAVE)),
        'á' => Some(('a', ACUTE)),
        'â' => Some(('a', CIRCUMFLEX)),
        'ã' => Some(('a', TILDE)),
        'ä' => Some(('a', DIAERESIS)),
        'å' => Some(('a', RING)),
        'ç' => Some(('c', CEDILLA)),
        'è' => Some(('e', GRAVE)),
        'é' => Some(('e', ACUTE)),
        'ê' => Some(('e', CIRCUMFLEX)),
        'ẽ' => Some(('e', TILDE)),
        'ë' => Some(('e', DIAERESIS)),
        'ì' => Some(('i', GRAVE)),
        'í' => Some(('i', ACUTE)),
        'î' => Some(('i', CIRCUMFLEX)),
        'ĩ' => Some(('i', TILDE)),
        'ï' => Some(('i', DIAERESIS)),
        'ñ' => Some(('n', TILDE)),
        'ò' => Some(('o', GRAVE)),
        'ó' => Some(('o', ACUTE)),
        'ô' => Some(('o', CIRCUMFLEX)),
        'õ' => Some(('o', TILDE)),
        'ö' => Some(('o', DIAERESIS)),
        'ù' => Some(('u', GRAVE)),
        'ú' => Some(('u', ACUTE)),
        'û' => Some(('u', CIRCUMFLEX)),
        'ũ' => Some(('u', TILDE)),
        'ü' => Some(('u', DIAERESIS)),
        'ý' => Some(('y', ACUTE)),
        'ỹ' => Some(('y', TILDE)),
        'ÿ' => Some(('y', DIAERESIS)),
        _ => None,
    };
    match pair {
        Some((base, mark)) => [Some(base), Some(mark)],
        None => [Some(c), None],
    }
    .into_iter()
    .flatten()
}

/// Punctuation that can appear in the phoneme string (not a spoken phoneme).
const TERMINAL_MARKS: &[char] = &['.', ',', ';', ':', '?', '!'];

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> PhonemeIds {
        let raw: HashMap<String, Vec<i64>> = [
            ("_", 0),
            ("^", 1),
            ("$", 2),
            (" ", 3),
            (".", 10),
            ("a", 14),
            ("b", 15),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), vec![v]))
        .collect();
        PhonemeIds::new(raw).unwrap()
    }

    #[test]
    fn encodes_like_piper_and_skips_unknown_phonemes() {
        let mut out = Vec::new();
        let spoken = ids().encode("ab a.", &mut out);
        assert_eq!(out, vec![1, 0, 14, 0, 15, 0, 3, 0, 14, 0, 10, 0, 2]);
        assert_eq!(spoken, 3);
        assert_eq!(ids().encode("ɐ", &mut out), 0);
        assert_eq!(out, vec![1, 0, 2]);
    }

    #[test]
    fn precomposed_letters_are_decomposed() {
        let nfd: String = "çaã".chars().flat_map(decompose).collect();
        assert_eq!(nfd, "c\u{327}aa\u{303}");
    }

    #[test]
    fn special_phonemes_are_required() {
        let raw: HashMap<String, Vec<i64>> = [("_".to_string(), vec![0])].into_iter().collect();
        assert!(PhonemeIds::new(raw).unwrap_err().contains("'^'"));
    }
}
