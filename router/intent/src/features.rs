//! Feature extraction: hashed character and word n-grams.
//!
//! One function, [`extract`], turns a text into `(bucket, tf)` pairs; training
//! ([`sparse_vector`], used by [`crate::train`]) and inference ([`crate::TierA::classify`])
//! both go through it, so the two can never disagree.
//!
//! The recipe, for a [`FeatureConfig`]:
//!
//! 1. Only the first `max_head_bytes` and last `max_tail_bytes` of a longer text are read
//!    (the instruction of a request is almost always at its start or end), so the cost is
//!    bounded for any input size.
//! 2. Tokens: maximal runs of alphanumeric characters, lower-cased (words), and each other
//!    non-space character on its own (punctuation, symbols).
//! 3. Features: character n-grams (`char_ngram_min..=char_ngram_max`) of each word padded with
//!    a space on both sides (so `" wr"` marks a word start); word unigrams; token bigrams,
//!    including a start-of-text and end-of-text marker (`"^ write"`); one coarse length
//!    bucket (`floor(log2(bytes))`) when `length_feature` is set.
//! 4. Every feature is hashed (FNV-1a 64 over code points with a seed and a per-kind
//!    namespace, finalised with MurmurHash3's `fmix64`) into `2^buckets_log2` buckets.
//! 5. Values: `1 + ln(count)` per bucket; the caller L2-normalises the vector.
//!
//! A text without any token (empty, whitespace only) has no features at all.

use serde::{Deserialize, Serialize};

use crate::IntentError;

/// The only hash function this build implements.
pub const HASH_NAME: &str = "fnv1a64-fmix64";
/// The only term-frequency scaling this build implements.
pub const TF_NAME: &str = "1+ln(count)";
/// The only vector normalisation this build implements.
pub const NORM_NAME: &str = "l2";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const NS_CHAR: u64 = 0x6368_6172_0000_0001;
const NS_WORD: u64 = 0x776f_7264_0000_0002;
const NS_PUNCT: u64 = 0x7075_6e63_0000_0003;
const NS_BIGRAM: u64 = 0x6269_6772_0000_0004;
const NS_LENGTH: u64 = 0x6c65_6e67_0000_0005;
const BOS: u64 = 0x5e5e_5e5e_0000_0006;
const EOS: u64 = 0x2424_2424_0000_0007;

/// Feature hashing parameters, recorded in (and read back from) every artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// Hash function name; must be [`HASH_NAME`].
    pub hash: String,
    /// Seed mixed into every hash.
    pub seed: u64,
    /// The vector has `2^buckets_log2` dimensions (8..=20).
    pub buckets_log2: u32,
    /// Shortest character n-gram (1..=8).
    pub char_ngram_min: usize,
    /// Longest character n-gram (`char_ngram_min..=8`).
    pub char_ngram_max: usize,
    /// Longest word n-gram: 1 (unigrams) or 2 (unigrams and bigrams).
    pub word_ngram_max: usize,
    /// Bytes read from the start of a long text (at least 16).
    pub max_head_bytes: usize,
    /// Bytes read from the end of a long text.
    pub max_tail_bytes: usize,
    /// Whether to add the coarse length-bucket feature.
    pub length_feature: bool,
    /// Term-frequency scaling; must be [`TF_NAME`].
    pub tf: String,
    /// Normalisation; must be [`NORM_NAME`].
    pub norm: String,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            hash: HASH_NAME.to_owned(),
            seed: 0x5357_4954_4348_5944, // "SWITCHYD"
            buckets_log2: 15,
            char_ngram_min: 2,
            char_ngram_max: 4,
            word_ngram_max: 2,
            max_head_bytes: 512,
            max_tail_bytes: 256,
            length_feature: true,
            tf: TF_NAME.to_owned(),
            norm: NORM_NAME.to_owned(),
        }
    }
}

impl FeatureConfig {
    /// Number of hash buckets, `2^buckets_log2`.
    pub fn num_buckets(&self) -> usize {
        1usize << self.buckets_log2
    }

    /// Checks that this build can compute these features.
    pub fn validate(&self) -> Result<(), IntentError> {
        let bad = |m: String| Err(IntentError::FeatureConfig(m));
        if self.hash != HASH_NAME {
            return bad(format!(
                "hash {:?} is not supported (expected {HASH_NAME:?})",
                self.hash
            ));
        }
        if self.tf != TF_NAME {
            return bad(format!(
                "tf {:?} is not supported (expected {TF_NAME:?})",
                self.tf
            ));
        }
        if self.norm != NORM_NAME {
            return bad(format!(
                "norm {:?} is not supported (expected {NORM_NAME:?})",
                self.norm
            ));
        }
        if !(8..=20).contains(&self.buckets_log2) {
            return bad(format!(
                "buckets_log2 {} is outside 8..=20",
                self.buckets_log2
            ));
        }
        if self.char_ngram_min < 1
            || self.char_ngram_max > 8
            || self.char_ngram_min > self.char_ngram_max
        {
            return bad(format!(
                "char n-gram range {}..={} must lie within 1..=8",
                self.char_ngram_min, self.char_ngram_max
            ));
        }
        if !(1..=2).contains(&self.word_ngram_max) {
            return bad(format!(
                "word_ngram_max {} must be 1 or 2",
                self.word_ngram_max
            ));
        }
        if self.max_head_bytes < 16 {
            return bad(format!(
                "max_head_bytes {} is below 16",
                self.max_head_bytes
            ));
        }
        Ok(())
    }
}

/// Reusable buffers for [`extract`]; one per thread is plenty.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    /// Count per bucket; all zero between calls.
    counts: Vec<u16>,
    /// Buckets with a non-zero count, in first-seen order.
    touched: Vec<u32>,
    /// The current word, padded with a space on both sides.
    word: Vec<char>,
}

impl Scratch {
    /// Empty buffers; they grow on first use.
    pub fn new() -> Scratch {
        Scratch::default()
    }
}

#[inline]
fn fnv_step(h: u64, c: char) -> u64 {
    (h ^ u64::from(u32::from(c))).wrapping_mul(FNV_PRIME)
}

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Splits a long text into its head and tail (on character boundaries).
fn segments<'a>(text: &'a str, cfg: &FeatureConfig) -> [&'a str; 2] {
    if text.len() <= cfg.max_head_bytes.saturating_add(cfg.max_tail_bytes) {
        return [text, ""];
    }
    let mut head_end = cfg.max_head_bytes;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - cfg.max_tail_bytes;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    [&text[..head_end], &text[tail_start..]]
}

struct Hasher<'a> {
    cfg: &'a FeatureConfig,
    base: u64,
    prev: u64,
    tokens: usize,
}

impl Hasher<'_> {
    /// A completed token: unigram (words and symbols alike) and bigram with the previous token.
    #[inline]
    fn token(&mut self, token_hash: u64, add: &mut impl FnMut(u64)) {
        add(token_hash);
        if self.cfg.word_ngram_max >= 2 {
            add(self.prev.wrapping_mul(FNV_PRIME).rotate_left(29) ^ token_hash ^ NS_BIGRAM);
        }
        self.prev = token_hash;
        self.tokens += 1;
    }

    /// Flushes a padded word (`[' ', chars.., ' ']`): character n-grams, then the word token.
    #[inline]
    fn word(&mut self, padded: &[char], add: &mut impl FnMut(u64)) {
        let (lo, hi) = (self.cfg.char_ngram_min, self.cfg.char_ngram_max);
        let char_base = self.base ^ NS_CHAR;
        for start in 0..padded.len() {
            let mut h = char_base;
            for (n, c) in padded[start..].iter().take(hi).enumerate() {
                h = fnv_step(h, *c);
                if n + 1 >= lo {
                    add(h);
                }
            }
        }
        let inner = &padded[1..padded.len() - 1];
        let word_hash = inner
            .iter()
            .fold(self.base ^ NS_WORD, |h, c| fnv_step(h, *c));
        self.token(word_hash, add);
    }
}

/// Calls `add` with the raw 64-bit hash of every feature occurrence in `text`.
fn hash_features(cfg: &FeatureConfig, text: &str, word: &mut Vec<char>, add: &mut impl FnMut(u64)) {
    let base = FNV_OFFSET ^ cfg.seed;
    let mut hasher = Hasher {
        cfg,
        base,
        prev: BOS,
        tokens: 0,
    };
    for segment in segments(text, cfg) {
        if segment.is_empty() {
            continue;
        }
        hasher.prev = BOS;
        let before = hasher.tokens;
        word.clear();
        for c in segment.chars() {
            if c.is_alphanumeric() {
                if word.is_empty() {
                    word.push(' ');
                }
                if c.is_ascii() {
                    word.push(c.to_ascii_lowercase());
                } else {
                    word.extend(c.to_lowercase());
                }
                continue;
            }
            if !word.is_empty() {
                word.push(' ');
                hasher.word(word, add);
                word.clear();
            }
            if !c.is_whitespace() {
                let h = fnv_step(base ^ NS_PUNCT, c);
                hasher.token(h, add);
            }
        }
        if !word.is_empty() {
            word.push(' ');
            hasher.word(word, add);
            word.clear();
        }
        if hasher.tokens > before && cfg.word_ngram_max >= 2 {
            add(hasher.prev.wrapping_mul(FNV_PRIME).rotate_left(29) ^ EOS ^ NS_BIGRAM);
        }
    }
    if hasher.tokens > 0 && cfg.length_feature {
        let length_bucket = u64::from(usize::BITS - text.len().leading_zeros());
        add(base ^ NS_LENGTH ^ length_bucket);
    }
}

/// Term-frequency scaling: `1 + ln(count)`.
#[inline]
fn tf(count: u16) -> f32 {
    if count <= 1 {
        1.0
    } else {
        1.0 + f32::from(count).ln()
    }
}

/// [`tf`] of the counts below 256, computed once (the same `f32::ln` values, without a libm call
/// per bucket on the hot path).
fn tf_table() -> &'static [f32; 256] {
    static TABLE: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [1.0f32; 256];
        for (count, value) in (0u16..).zip(table.iter_mut()) {
            *value = tf(count);
        }
        table
    })
}

/// Extracts the hashed features of `text` and calls `emit(bucket, value)` once per distinct
/// bucket, with `value = 1 + ln(count)` (not yet normalised), in first-seen order.
///
/// This is the single feature function shared by training and inference. `cfg` is assumed
/// valid (see [`FeatureConfig::validate`]); `scratch` is left ready for the next call.
pub fn extract(
    cfg: &FeatureConfig,
    text: &str,
    scratch: &mut Scratch,
    mut emit: impl FnMut(u32, f32),
) {
    let buckets = cfg.num_buckets();
    if scratch.counts.len() != buckets {
        scratch.counts.clear();
        scratch.counts.resize(buckets, 0);
    }
    scratch.touched.clear();
    let mask = (buckets - 1) as u64;
    {
        let Scratch {
            counts,
            touched,
            word,
        } = &mut *scratch;
        let mut add = |h: u64| {
            let bucket = (fmix64(h) & mask) as u32;
            if let Some(count) = counts.get_mut(bucket as usize) {
                if *count == 0 {
                    touched.push(bucket);
                }
                *count = count.saturating_add(1);
            }
        };
        hash_features(cfg, text, word, &mut add);
    }
    // Read first, reset after: with no stores in this loop the caller's accumulators can stay
    // in registers.
    let table = tf_table();
    for &bucket in &scratch.touched {
        if let Some(&count) = scratch.counts.get(bucket as usize) {
            let value = match table.get(usize::from(count)) {
                Some(v) => *v,
                None => tf(count),
            };
            emit(bucket, value);
        }
    }
    for &bucket in &scratch.touched {
        if let Some(count) = scratch.counts.get_mut(bucket as usize) {
            *count = 0;
        }
    }
    scratch.touched.clear();
}

/// The L2-normalised feature vector of `text`, sorted by bucket (for training and tests).
pub fn sparse_vector(cfg: &FeatureConfig, text: &str, scratch: &mut Scratch) -> Vec<(u32, f64)> {
    let mut out = Vec::new();
    extract(cfg, text, scratch, |bucket, value| {
        out.push((bucket, f64::from(value)));
    });
    out.sort_unstable_by_key(|(bucket, _)| *bucket);
    let norm = out.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
    if norm > 0.0 {
        for (_, v) in &mut out {
            *v /= norm;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_table_matches_tf() {
        for count in 0..=255u16 {
            assert_eq!(
                tf_table()[usize::from(count)].to_bits(),
                tf(count).to_bits()
            );
        }
        assert_eq!(tf(1), 1.0);
        assert!((tf(3) - (1.0 + 3f32.ln())).abs() < 1e-7);
    }

    #[test]
    fn empty_and_blank_have_no_features() {
        let cfg = FeatureConfig::default();
        let mut s = Scratch::new();
        assert!(sparse_vector(&cfg, "", &mut s).is_empty());
        assert!(sparse_vector(&cfg, " \n\t ", &mut s).is_empty());
    }

    #[test]
    fn case_insensitive_and_normalised() {
        let cfg = FeatureConfig::default();
        let mut s = Scratch::new();
        let a = sparse_vector(&cfg, "Read This Aloud", &mut s);
        let b = sparse_vector(&cfg, "read this aloud", &mut s);
        assert_eq!(a, b);
        let norm: f64 = a.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-9);
    }

    #[test]
    fn scratch_is_reset_between_calls() {
        let cfg = FeatureConfig::default();
        let mut s = Scratch::new();
        let first = sparse_vector(&cfg, "write a python function", &mut s);
        let _ = sparse_vector(&cfg, "something else entirely, with punctuation!", &mut s);
        let again = sparse_vector(&cfg, "write a python function", &mut s);
        assert_eq!(first, again);
        assert_eq!(
            first,
            sparse_vector(&cfg, "write a python function", &mut Scratch::new())
        );
    }

    #[test]
    fn long_text_is_bounded_and_utf8_safe() {
        let cfg = FeatureConfig::default();
        let mut s = Scratch::new();
        let text = "é漢字🙂 ".repeat(50_000);
        let v = sparse_vector(&cfg, &text, &mut s);
        assert!(!v.is_empty());
        for head in 0..8 {
            let cfg = FeatureConfig {
                max_head_bytes: 16 + head,
                max_tail_bytes: 3 + head,
                ..FeatureConfig::default()
            };
            let _ = sparse_vector(&cfg, &text, &mut s);
        }
    }
}
