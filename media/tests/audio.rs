//! Audio decoding, resampling and encoding, end to end (no network; fixtures are tiny files
//! generated once by `fixtures/make_fixtures.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{frequency, rms, sine_wav, RecordingAlloc};
use switchyard_core::{CopyLedger, HeapAlloc};
use switchyard_media::audio::{self, AudioFormat, AudioLimits, PCM_RATE};
use switchyard_media::MediaError;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn limits() -> AudioLimits {
    AudioLimits {
        max_bytes: 10 << 20,
        max_seconds: 600.0,
    }
}

fn decode(bytes: &[u8]) -> Result<audio::DecodedAudio, MediaError> {
    audio::decode(bytes, &limits(), &HeapAlloc, &CopyLedger::new())
}

/// Checks a decoded 440 Hz sine: 16 kHz mono, right length and pitch.
fn check_sine(d: &audio::DecodedAudio, seconds: f64) {
    let s = d.samples.as_slice::<f32>().unwrap();
    assert_eq!(d.samples.shape(), &[s.len()]);
    assert!((d.seconds - seconds).abs() < 0.06, "{} s", d.seconds);
    let expected = (seconds * 16_000.0) as usize;
    assert!(s.len().abs_diff(expected) <= 1000, "{} samples", s.len());
    let f = frequency(s, 16_000);
    assert!((f - 440.0).abs() < 3.0, "measured {f} Hz");
    assert!((rms(s) - 0.5 / 2f32.sqrt()).abs() < 0.05, "rms {}", rms(s));
}

#[test]
fn wav_44k_stereo_resamples_to_16k_mono_in_place() {
    let wav = sine_wav(440.0, 2.0, 44_100, 2);
    let alloc = RecordingAlloc::default();
    let ledger = CopyLedger::new();
    let d = audio::decode(&wav, &limits(), &alloc, &ledger).unwrap();
    assert_eq!((d.source_rate, d.channels), (44_100, 2));
    assert_eq!(d.codec, "pcm_s16le");
    assert!(!d.truncated);
    check_sine(&d, 2.0);
    assert_eq!(d.samples.numel(), 32_000);
    assert_eq!(d.samples.data_ptr() as usize, alloc.only());
    let copies = ledger.summary();
    assert_eq!(copies.by_reason["decode"], 88_200 * 2 * 4);
    assert_eq!(copies.by_reason["resample"], 32_000 * 4);
    assert_eq!(copies.copies, 2);
}

#[test]
fn wav_at_16k_is_copied_once_into_the_tensor() {
    let wav = sine_wav(440.0, 1.0, 16_000, 1);
    let alloc = RecordingAlloc::default();
    let d = audio::decode(&wav, &limits(), &alloc, &CopyLedger::new()).unwrap();
    check_sine(&d, 1.0);
    assert_eq!(d.samples.numel(), 16_000);
    assert_eq!(d.samples.data_ptr() as usize, alloc.only());
}

#[test]
fn espeak_output_decodes() {
    let path = std::env::temp_dir().join(format!("sy-media-espeak-{}.wav", std::process::id()));
    let status = std::process::Command::new("espeak-ng")
        .args(["-w", path.to_str().unwrap(), "hello from switchyard"])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("espeak-ng not available; skipped");
        return;
    }
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let d = decode(&bytes).unwrap();
    assert_eq!((d.source_rate, d.channels), (22_050, 1));
    let n = d.samples.numel() as f64;
    assert!((n / 16_000.0 - d.seconds).abs() < 0.01);
    assert!(rms(d.samples.as_slice::<f32>().unwrap()) > 0.01);
}

#[test]
fn compressed_fixtures_decode_with_the_right_duration_and_pitch() {
    for (file, codec, rate, channels) in [
        ("sine440.mp3", "mp3", 44_100, 1),
        ("sine440.flac", "flac", 48_000, 2),
        ("sine440.ogg", "vorbis", 22_050, 1),
    ] {
        let bytes = std::fs::read(format!("{FIXTURES}/{file}")).unwrap();
        let d = decode(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(d.codec, codec, "{file}");
        assert_eq!((d.source_rate, d.channels), (rate, channels), "{file}");
        check_sine(&d, 1.0);
    }
}

#[test]
fn empty_and_unrecognised_inputs_are_refused() {
    assert_eq!(
        decode(b"").unwrap_err(),
        MediaError::Empty { kind: "audio" }
    );
    let err = decode(b"this is a text file, not audio\n").unwrap_err();
    assert_eq!(err, MediaError::UnrecognizedAudio);
    assert!(err
        .to_string()
        .contains("expected WAV, MP3, FLAC, Ogg Vorbis or Ogg Opus"));
    let too_large = AudioLimits {
        max_bytes: 100,
        ..limits()
    };
    let err = audio::decode(&[0u8; 101], &too_large, &HeapAlloc, &CopyLedger::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the audio file is 101 bytes, over the limit of 100 bytes"
    );
}

#[test]
fn wav_cut_in_its_header_is_an_error_but_cut_in_its_data_decodes_the_rest() {
    let wav = sine_wav(440.0, 1.0, 16_000, 1);
    for cut in [6, 20, 40] {
        let err = decode(&wav[..cut]).unwrap_err();
        assert!(
            matches!(err, MediaError::Truncated { format: "WAV", .. }),
            "cut at {cut}: {err:?}"
        );
        assert!(
            err.to_string().starts_with("the WAV file is truncated"),
            "{err}"
        );
    }
    let half = decode(&wav[..wav.len() / 2]).unwrap();
    assert!(half.truncated);
    assert!(
        half.seconds > 0.3 && half.seconds <= 0.5,
        "{}",
        half.seconds
    );
}

#[test]
fn wav_without_samples_is_refused() {
    let wav = sine_wav(440.0, 0.0, 16_000, 1);
    assert_eq!(decode(&wav).unwrap_err(), MediaError::ZeroSamples);
}

#[test]
fn mp3_header_followed_by_garbage_is_corrupt() {
    let mut bytes = vec![0xFF, 0xFB, 0x90, 0x64];
    let mut x = 0x1234_5678u32;
    bytes.extend((0..8000).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(err, MediaError::Corrupt { format: "MP3", .. }),
        "{err:?}"
    );
}

/// A 16 kHz mono 16-bit WAV header whose data chunk declares `seconds`, followed by one second
/// of real samples.
fn lying_wav(seconds: u32) -> Vec<u8> {
    let data_len = seconds * 16_000 * 2;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&1u16.to_le_bytes()); // mono
    v.extend_from_slice(&16_000u32.to_le_bytes());
    v.extend_from_slice(&32_000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend(std::iter::repeat_n(0u8, 32_000));
    v
}

#[test]
fn header_declaring_two_hours_is_refused_before_decoding() {
    let alloc = RecordingAlloc::default();
    let ten_minutes = AudioLimits {
        max_bytes: 10 << 20,
        max_seconds: 600.0,
    };
    let started = std::time::Instant::now();
    let err =
        audio::decode(&lying_wav(7200), &ten_minutes, &alloc, &CopyLedger::new()).unwrap_err();
    assert_eq!(
        err,
        MediaError::TooLong {
            seconds: 7200.0,
            max_seconds: 600.0
        }
    );
    assert_eq!(
        err.to_string(),
        "the audio is 7200.0 s long, over the limit of 600 s"
    );
    assert!(alloc.ptrs.lock().unwrap().is_empty());
    assert!(started.elapsed().as_millis() < 500);
}

#[test]
fn decoding_stops_once_the_limit_is_passed() {
    let wav = sine_wav(440.0, 3.0, 8_000, 1);
    let short = AudioLimits {
        max_bytes: 10 << 20,
        max_seconds: 1.5,
    };
    let err = audio::decode(&wav, &short, &HeapAlloc, &CopyLedger::new()).unwrap_err();
    assert!(matches!(err, MediaError::TooLong { max_seconds, .. } if max_seconds == 1.5));
}

#[test]
fn wav_and_pcm_round_trip_through_decode() {
    let tone: Vec<f32> = sine_samples(440.0, 1.0, 22_050);
    let wav = audio::encode(&tone, 22_050, AudioFormat::Wav).unwrap();
    let d = decode(&wav).unwrap();
    assert_eq!((d.source_rate, d.channels), (22_050, 1));
    check_sine(&d, 1.0);

    let pcm = audio::encode(&tone, 22_050, AudioFormat::Pcm).unwrap();
    assert_eq!(pcm.len(), 24_000 * 2);
    let samples: Vec<f32> = pcm
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32767.0)
        .collect();
    let f = frequency(&samples, PCM_RATE);
    assert!((f - 440.0).abs() < 3.0, "{f}");
    let rewrapped = audio::encode(&samples, PCM_RATE, AudioFormat::Wav).unwrap();
    check_sine(&decode(&rewrapped).unwrap(), 1.0);
}

fn sine_samples(freq: f32, seconds: f32, rate: u32) -> Vec<f32> {
    (0..(seconds * rate as f32) as usize)
        .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
        .collect()
}

#[test]
fn resample_keeps_pitch_and_length() {
    for (from, to) in [
        (22_050, 24_000),
        (48_000, 16_000),
        (8_000, 16_000),
        (44_100, 16_000),
    ] {
        let tone = sine_samples(440.0, 1.0, from);
        let out = audio::resample(&tone, from, to).unwrap();
        assert_eq!(out.len(), to as usize, "{from}->{to}");
        let f = frequency(&out, to);
        assert!((f - 440.0).abs() < 3.0, "{from}->{to}: {f} Hz");
        assert!((rms(&out[2000..out.len() - 2000]) - 0.3535).abs() < 0.01);
    }
    // Rates that share no useful factor take the sinc path.
    let tone = sine_samples(440.0, 1.0, 44_101);
    let out = audio::resample(&tone, 44_101, 16_000).unwrap();
    assert_eq!(out.len(), 16_000);
    assert!((frequency(&out, 16_000) - 440.0).abs() < 3.0);
    assert_eq!(
        audio::resample(&tone, 0, 16_000).unwrap_err(),
        MediaError::InvalidSampleRate { rate: 0 }
    );
}

#[test]
fn format_names_parse_and_unsupported_encodings_say_what_is_supported() {
    assert_eq!(AudioFormat::parse("WAV").unwrap(), AudioFormat::Wav);
    assert_eq!(AudioFormat::parse("pcm").unwrap(), AudioFormat::Pcm);
    let err = AudioFormat::parse("ogg").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown audio format 'ogg'; expected one of: wav, pcm, flac, mp3, opus, aac"
    );
    let err = audio::encode(&[0.0; 10], 16_000, AudioFormat::Aac).unwrap_err();
    assert_eq!(
        err.to_string(),
        "encoding audio as aac is not supported; supported formats: wav, pcm, mp3, opus, flac"
    );
}
