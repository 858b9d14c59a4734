//! The Piper joe voice against the real model (skipped when the models are not fetched,
//! failed when `CI` is set).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failures

mod common;

use std::sync::OnceLock;

use switchyard_core::DType;
use switchyard_engine_onnx::piper::{sentences, PiperVoice, SynthesisOptions};
use switchyard_engine_onnx::{init_runtime, ExecutionProvider, OnnxError};

/// One voice for the whole test binary (the runtime can be loaded once per process).
fn voice(test: &str) -> Option<&'static PiperVoice> {
    static VOICE: OnceLock<PiperVoice> = OnceLock::new();
    let paths = common::piper_paths(test)?;
    Some(VOICE.get_or_init(|| {
        init_runtime(&paths.runtime_library).unwrap();
        PiperVoice::load(&paths.model, &paths.config, 2).unwrap()
    }))
}

fn speed(speed: f32) -> SynthesisOptions {
    SynthesisOptions { speed }
}

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|x| x * x).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

#[test]
fn sentences_become_plausible_audio() {
    let Some(v) = voice("sentences_become_plausible_audio") else {
        return;
    };
    assert_eq!(v.sample_rate(), 22050);
    assert_eq!(v.espeak_voice(), "en-us");
    assert_eq!(v.execution_provider(), ExecutionProvider::Cpu);
    for text in [
        "Hello world.",
        "The quick brown fox jumps over the lazy dog.",
        "Dr. Smith paid 3.5 dollars, didn't he?",
        "Switchyard routes each request to the smallest model that can answer it well!",
    ] {
        let audio = v.synthesize(text, &SynthesisOptions::default()).unwrap();
        assert_eq!(audio.dtype(), DType::F32);
        assert_eq!(audio.shape().len(), 1);
        let samples = audio.as_slice::<f32>().unwrap();
        let seconds = samples.len() as f32 / v.sample_rate() as f32;
        let chars = text.chars().count() as f32;
        let per_char = seconds / chars;
        assert!(
            (0.04..=0.2).contains(&per_char),
            "{text:?}: {seconds:.2} s for {chars} chars ({per_char:.3} s/char)"
        );
        assert!(samples.iter().all(|x| x.is_finite()), "{text:?}: NaN/inf");
        let level = rms(samples);
        assert!(level > 0.01, "{text:?}: RMS {level}");
        let peak = samples.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(peak <= 1.5, "{text:?}: peak {peak}");
    }
}

#[test]
fn speed_two_is_clearly_shorter() {
    let Some(v) = voice("speed_two_is_clearly_shorter") else {
        return;
    };
    // Durations are sampled (noise_w), so compare sums over a few runs.
    let text = "This sentence is spoken at two different speeds.";
    let total = |s: f32| -> usize {
        (0..3)
            .map(|_| v.synthesize(text, &speed(s)).unwrap().numel())
            .sum()
    };
    let (normal, fast, slow) = (total(1.0), total(2.0), total(0.5));
    let ratio = fast as f32 / normal as f32;
    assert!((0.35..=0.75).contains(&ratio), "fast/normal = {ratio}");
    assert!(
        slow as f32 > normal as f32 * 1.5,
        "slow {slow} normal {normal}"
    );
}

#[test]
fn long_text_is_one_chunk_per_sentence_with_all_words() {
    let Some(v) = voice("long_text_is_one_chunk_per_sentence_with_all_words") else {
        return;
    };
    let text = "Dr. Watson measured 3.5 litres of water. It was not enough! Was it ever \
                going to be? Mr. Holmes thought so, e.g. on Tuesdays.\n\nA new paragraph \
                starts here";
    let chunks = sentences(text);
    assert_eq!(
        chunks,
        vec![
            "Dr. Watson measured 3.5 litres of water.",
            "It was not enough!",
            "Was it ever going to be?",
            "Mr. Holmes thought so, e.g. on Tuesdays.",
            "A new paragraph starts here",
        ]
    );
    let joined = chunks.join(" ");
    assert_eq!(
        joined.split_whitespace().collect::<Vec<_>>(),
        text.split_whitespace().collect::<Vec<_>>()
    );
    let mut total = 0;
    for chunk in &chunks {
        let audio = v.synthesize(chunk, &SynthesisOptions::default()).unwrap();
        assert!(audio.numel() > 0);
        total += audio.numel();
    }
    let seconds = total as f32 / v.sample_rate() as f32;
    assert!(seconds > 5.0, "{seconds} s for {} chars", text.len());
}

#[test]
fn hello_world_phonemes_are_ipa() {
    let Some(v) = voice("hello_world_phonemes_are_ipa") else {
        return;
    };
    let ipa = v.phonemes("Hello world").unwrap();
    assert!(!ipa.is_empty());
    assert!(ipa.contains('ˈ'), "no IPA stress mark in {ipa:?}");
    assert!(ipa.contains("wˈɜːld"), "{ipa:?}");
    // Clause punctuation is kept the way Piper keeps it.
    let ipa = v.phonemes("Hello, world. Bye!").unwrap();
    assert_eq!(ipa.matches(',').count(), 1, "{ipa:?}");
    assert!(ipa.contains('.') && ipa.ends_with('!'), "{ipa:?}");
    // Abbreviations and decimals are spoken, not cut.
    let ipa = v.phonemes("Dr. Smith paid 3.5").unwrap();
    assert!(ipa.contains("dˈɑːktɚ") && ipa.contains("pɔɪnt"), "{ipa:?}");
}

#[test]
fn bad_inputs_are_errors() {
    let Some(v) = voice("bad_inputs_are_errors") else {
        return;
    };
    let ok = SynthesisOptions::default();
    for text in ["", "   ", "\n\t "] {
        let err = v.synthesize(text, &ok).unwrap_err();
        assert!(matches!(err, OnnxError::InvalidText(_)), "{text:?}: {err}");
    }
    for bad in [0.0, 10.0, f32::NAN, -1.0, 0.24, 4.01] {
        let err = v.synthesize("Hello.", &speed(bad)).unwrap_err();
        assert!(matches!(err, OnnxError::SpeechOptions(_)), "{bad}: {err}");
        assert!(err.to_string().contains("0.25..=4"), "{err}");
    }
    for edge in [0.25, 4.0] {
        assert!(v.synthesize("Hello.", &speed(edge)).unwrap().numel() > 0);
    }
    let err = v.synthesize("... !?", &ok).unwrap_err();
    assert!(matches!(err, OnnxError::NoPhonemes { .. }), "{err}");
}

#[test]
fn audio_stays_in_the_onnx_runtime_output_buffer() {
    let Some(v) = voice("audio_stays_in_the_onnx_runtime_output_buffer") else {
        return;
    };
    let s = v
        .synthesize_with_stats("No copies, please.", &SynthesisOptions::default())
        .unwrap();
    assert_ne!(s.ort_output_addr, 0);
    assert_eq!(s.audio.data_ptr() as usize, s.ort_output_addr);
    assert_eq!(
        s.audio.as_slice::<f32>().unwrap().as_ptr() as usize,
        s.ort_output_addr
    );
    // Views share it too.
    let view = s.audio.narrow(10, 20).unwrap();
    assert_eq!(view.data_ptr() as usize, s.ort_output_addr + 10 * 4);
    assert!(s.phoneme_ids > 10 && !s.phonemes.is_empty());
    // The buffer outlives later runs: a second synthesis does not overwrite it.
    let before = s.audio.as_slice::<f32>().unwrap().to_vec();
    let other = v
        .synthesize("Something else entirely.", &SynthesisOptions::default())
        .unwrap();
    assert_ne!(other.data_ptr(), s.audio.data_ptr());
    assert_eq!(s.audio.as_slice::<f32>().unwrap(), &before[..]);
}

#[test]
fn concurrent_syntheses_are_serialised_safely() {
    let Some(v) = voice("concurrent_syntheses_are_serialised_safely") else {
        return;
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                scope.spawn(move || {
                    v.synthesize(
                        &format!("Thread number {i} speaking."),
                        &SynthesisOptions::default(),
                    )
                    .unwrap()
                    .numel()
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap() > 10_000);
        }
    });
}
