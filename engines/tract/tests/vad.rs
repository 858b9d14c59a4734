//! Voice-activity detection with the real Silero model on espeak-ng speech.

// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{silence, speak, vad_model};
use switchyard_core::{CopyLedger, Tensor};
use switchyard_engine_tract::vad::{VadModel, VadOptions, SAMPLE_RATE};

fn segments_s(model: &VadModel, audio: Vec<f32>) -> Vec<(f32, f32)> {
    let n = audio.len();
    let tensor = Tensor::from_vec(audio, &[n]).unwrap();
    model
        .speech_segments(&tensor, &VadOptions::default())
        .unwrap()
        .iter()
        .map(|s| (s.start_s(), s.end_s()))
        .collect()
}

/// Start and end (seconds) of the audible part of `samples`.
fn audible(samples: &[f32]) -> (f32, f32) {
    let loud = |s: &&f32| s.abs() > 0.01;
    let first = samples.iter().position(|s| loud(&s)).unwrap_or(0);
    let last = samples.iter().rposition(|s| loud(&s)).unwrap_or(0);
    (first as f32 / 16_000.0, last as f32 / 16_000.0)
}

#[test]
fn two_sentences_give_two_segments_near_the_truth() {
    let Some(model) = vad_model() else { return };
    let Some(first) = speak("The weather is lovely today in the mountains.") else {
        eprintln!("skipping: espeak-ng not installed");
        return;
    };
    let second = speak("Please send the report before noon tomorrow.").unwrap();
    let mut audio = silence(1.0);
    let offset1 = audio.len();
    audio.extend_from_slice(&first);
    audio.extend(silence(1.5));
    let offset2 = audio.len();
    audio.extend_from_slice(&second);
    audio.extend(silence(1.0));

    let (a0, a1) = audible(&first);
    let (b0, b1) = audible(&second);
    let truth = [
        (
            offset1 as f32 / 16_000.0 + a0,
            offset1 as f32 / 16_000.0 + a1,
        ),
        (
            offset2 as f32 / 16_000.0 + b0,
            offset2 as f32 / 16_000.0 + b1,
        ),
    ];
    let got = segments_s(&model, audio);
    eprintln!("truth {truth:?}\ngot   {got:?}");
    assert_eq!(got.len(), 2, "{got:?}");
    for ((s, e), (ts, te)) in got.iter().zip(truth) {
        assert!(
            (s - ts).abs() < 0.3 && (e - te).abs() < 0.3,
            "{got:?} vs {truth:?}"
        );
    }
}

#[test]
fn silence_and_quiet_noise_give_no_segments() {
    let Some(model) = vad_model() else { return };
    assert!(segments_s(&model, silence(3.0)).is_empty());
    // Deterministic white noise at about -46 dBFS.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<f32> = (0..3 * SAMPLE_RATE)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02
        })
        .collect();
    assert!(segments_s(&model, noise).is_empty());
    assert!(segments_s(&model, Vec::new()).is_empty());
}

#[test]
fn calls_are_independent_and_thread_safe() {
    let Some(model) = vad_model() else { return };
    let Some(speech) = speak("One two three four five.") else {
        return;
    };
    let mut audio = silence(0.5);
    audio.extend_from_slice(&speech);
    audio.extend(silence(0.5));
    let n = audio.len();
    let tensor = Tensor::from_vec(audio, &[1, n]).unwrap();
    let first = model
        .speech_segments(&tensor, &VadOptions::default())
        .unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    model
                        .speech_segments(&tensor, &VadOptions::default())
                        .unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), first);
        }
    });
}

#[test]
fn window_copies_are_counted_and_input_untouched() {
    let Some(model) = vad_model() else { return };
    let audio = silence(1.0);
    let tensor = Tensor::from_vec(audio, &[16_000]).unwrap();
    let before = tensor.data_ptr();
    let ledger = CopyLedger::new();
    model
        .speech_segments_counted(&tensor, &VadOptions::default(), &ledger)
        .unwrap();
    assert_eq!(tensor.data_ptr(), before);
    let summary = ledger.summary();
    assert_eq!(
        summary.by_reason.keys().copied().collect::<Vec<_>>(),
        ["preprocess"]
    );
    assert_eq!(summary.bytes, 16_000 * 4);
}

#[test]
fn stereo_or_integer_audio_is_refused() {
    let Some(model) = vad_model() else { return };
    let stereo = Tensor::from_vec(vec![0f32; 8], &[2, 4]).unwrap();
    assert!(model
        .speech_segments(&stereo, &VadOptions::default())
        .is_err());
    let ints = Tensor::from_vec(vec![0i16; 8], &[8]).unwrap();
    assert!(model
        .speech_segments(&ints, &VadOptions::default())
        .is_err());
}
