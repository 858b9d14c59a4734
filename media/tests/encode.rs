//! Response encoders, whole and streamed: each format decodes back (symphonia for WAV, MP3
//! and FLAC; libopus through an Ogg reader for Opus) to the right length and a signal that
//! correlates with the input.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Cursor;

use switchyard_core::{CopyLedger, HeapAlloc};
use switchyard_media::audio::{self, AudioFormat, AudioLimits, StreamEncoder, PCM_RATE};
use switchyard_media::MediaError;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// The Piper voice's rate.
const RATE: u32 = 22_050;

/// Speech-like test audio: two partials under a 3 Hz syllable envelope, `seconds` long.
fn signal(seconds: f32, rate: u32) -> Vec<f32> {
    let tau = 2.0 * std::f32::consts::PI;
    (0..(seconds * rate as f32) as usize)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let envelope = 0.5 + 0.5 * (tau * 3.0 * t).sin();
            envelope * (0.4 * (tau * 220.0 * t).sin() + 0.2 * (tau * 1_250.0 * t).sin())
        })
        .collect()
}

/// Mono samples and rate as symphonia decodes them (no resampling).
fn symphonia_decode(bytes: &[u8]) -> (Vec<f32>, u32) {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut reader = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .unwrap();
    let track = reader.default_track(TrackType::Audio).unwrap();
    let params = track
        .codec_params
        .as_ref()
        .unwrap()
        .audio()
        .unwrap()
        .clone();
    let rate = params.sample_rate.unwrap();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .unwrap();
    let mut out = Vec::new();
    loop {
        // A WAV of unknown length ends with an unexpected end of file for symphonia.
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(symphonia::core::errors::Error::IoError(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                break
            }
            Err(e) => panic!("{e}"),
        };
        let buf = decoder.decode(&packet).unwrap();
        let mut frame = vec![0f32; buf.frames() * buf.spec().channels().count()];
        buf.copy_to_slice_interleaved::<f32, _>(&mut frame[..]);
        out.extend(frame);
    }
    (out, rate)
}

/// Mono 48 kHz samples of an Ogg Opus file, decoded by libopus with the pre-skip dropped and
/// the end trimmed to the last granule position (what a conforming player outputs).
fn opus_decode(bytes: &[u8]) -> Vec<f32> {
    let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
    let head = reader.read_packet_expected().unwrap();
    assert_eq!(&head.data[..8], b"OpusHead");
    assert!(head.first_in_stream());
    assert_eq!(head.data[9], 1, "mono");
    let pre_skip = u16::from_le_bytes([head.data[10], head.data[11]]) as usize;
    let tags = reader.read_packet_expected().unwrap();
    assert_eq!(&tags.data[..8], b"OpusTags");
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut out = Vec::new();
    let mut frame = vec![0f32; 5_760];
    let mut end = 0;
    while let Some(packet) = reader.read_packet().unwrap() {
        let n = decoder
            .decode_float(&packet.data, &mut frame, false)
            .unwrap();
        out.extend_from_slice(&frame[..n]);
        end = packet.absgp_page() as usize;
        if packet.last_in_stream() {
            break;
        }
    }
    assert!(
        end <= out.len(),
        "granule {end} past the {} decoded",
        out.len()
    );
    out.truncate(end);
    out.drain(..pre_skip);
    out
}

/// The best normalised cross-correlation of `b` against `a` over lags `0..max_lag` (the MP3
/// encoder delay; a decoder's output may start late, never early).
fn correlation(a: &[f32], b: &[f32], max_lag: usize) -> (f32, usize) {
    let n = a.len().min(b.len()).saturating_sub(max_lag);
    let energy = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
    (0..max_lag)
        .map(|lag| {
            let (x, y) = (&a[..n], &b[lag..lag + n]);
            let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            (dot / (energy(x) * energy(y)).max(1e-9), lag)
        })
        .fold((f32::MIN, 0), |best, c| if c.0 > best.0 { c } else { best })
}

/// Encodes `pieces` with a [`StreamEncoder`], returning the pieces' bytes and the tail.
fn stream(format: AudioFormat, pieces: &[&[f32]]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut encoder = StreamEncoder::new(format, RATE).unwrap();
    let chunks = pieces.iter().map(|p| encoder.push(p).unwrap()).collect();
    (chunks, encoder.finish().unwrap())
}

fn split(input: &[f32]) -> [&[f32]; 3] {
    let (a, rest) = input.split_at(input.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2 + 17);
    [a, b, c]
}

#[test]
fn streamed_wav_has_unknown_sizes_and_decodes_whole() {
    let input = signal(1.5, RATE);
    let (chunks, tail) = stream(AudioFormat::Wav, &split(&input));
    assert!(tail.is_empty());
    assert_eq!(&chunks[0][..4], b"RIFF");
    assert_eq!(&chunks[0][4..8], &[0xFF; 4], "RIFF size unknown");
    assert_eq!(&chunks[0][40..44], &[0xFF; 4], "data size unknown");
    assert!(
        chunks[1..].iter().all(|c| !c.is_empty()),
        "every piece is sent"
    );
    let bytes = chunks.concat();
    assert_eq!(bytes.len(), 44 + input.len() * 2);

    let (decoded, rate) = symphonia_decode(&bytes[..]);
    assert_eq!(rate, RATE);
    // symphonia alone reads every sample, then reports an unexpected end of file (which
    // would flag the upload as truncated); our decoder gives it the real sizes.
    assert_eq!(decoded.len(), input.len());
    let ours = audio::decode(
        &bytes,
        &AudioLimits::default(),
        &HeapAlloc,
        &CopyLedger::new(),
    )
    .unwrap();
    assert!(!ours.truncated, "an unknown size is not a truncation");
    assert_eq!(ours.source_rate, RATE);
    assert!((ours.seconds - 1.5).abs() < 1e-3, "{}", ours.seconds);

    let whole = audio::encode(&input, RATE, AudioFormat::Wav).unwrap();
    assert_eq!(
        &whole[44..],
        &bytes[44..],
        "same samples as the exact-size file"
    );
    let (exact, _) = symphonia_decode(&whole);
    assert_eq!(exact.len(), input.len());
    assert!(correlation(&input, &exact, 1).0 > 0.999);
}

#[test]
fn wav_with_zero_sizes_decodes_to_the_end() {
    let input = signal(0.5, 16_000);
    let mut bytes = audio::encode(&input, 16_000, AudioFormat::Wav).unwrap();
    bytes[4..8].copy_from_slice(&0u32.to_le_bytes());
    bytes[40..44].copy_from_slice(&0u32.to_le_bytes());
    let d = audio::decode(
        &bytes,
        &AudioLimits::default(),
        &HeapAlloc,
        &CopyLedger::new(),
    )
    .unwrap();
    assert!(!d.truncated);
    assert_eq!(d.samples.numel(), input.len());
}

#[test]
fn mp3_whole_and_streamed_decode_to_the_input() {
    let input = signal(1.5, RATE);
    let whole = audio::encode(&input, RATE, AudioFormat::Mp3).unwrap();
    let (chunks, tail) = stream(AudioFormat::Mp3, &split(&input));
    assert!(!chunks[0].is_empty(), "frames go out before the end");
    let streamed = [chunks.concat(), tail].concat();
    for bytes in [whole, streamed] {
        assert_eq!(bytes[0], 0xFF, "starts with a frame, no tag");
        let (decoded, rate) = symphonia_decode(&bytes);
        assert_eq!(rate, RATE);
        // LAME's encoder delay and the padding of the last frame: < 2 frames of 576.
        let extra = decoded.len() as i64 - input.len() as i64;
        assert!((0..3 * 576).contains(&extra), "{extra} extra samples");
        let (c, lag) = correlation(&input, &decoded, 3_000);
        assert!(c > 0.95, "correlation {c} at lag {lag}");
    }
}

#[test]
fn flac_whole_and_streamed_are_lossless() {
    let input = signal(1.2, RATE);
    let whole = audio::encode(&input, RATE, AudioFormat::Flac).unwrap();
    let (chunks, tail) = stream(AudioFormat::Flac, &split(&input));
    assert_eq!(&chunks[0][..4], b"fLaC");
    assert!(!tail.is_empty(), "the last short block");
    let streamed = [chunks.concat(), tail].concat();
    let reference: Vec<f32> = {
        let pcm = audio::encode(&input, RATE, AudioFormat::Wav).unwrap();
        symphonia_decode(&pcm).0
    };
    for bytes in [whole, streamed] {
        let (decoded, rate) = symphonia_decode(&bytes);
        assert_eq!(rate, RATE);
        assert_eq!(decoded.len(), input.len());
        let worst = decoded
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "lossless, but off by {worst}");
    }
}

#[test]
fn ogg_opus_whole_and_streamed_decode_to_the_input_length() {
    let input = signal(1.5, RATE);
    let reference = audio::resample(&input, RATE, 48_000).unwrap();
    let whole = audio::encode(&input, RATE, AudioFormat::Opus).unwrap();
    let (chunks, tail) = stream(AudioFormat::Opus, &split(&input));
    assert!(chunks.iter().all(|c| c.starts_with(b"OggS")), "whole pages");
    let streamed = [chunks.concat(), tail].concat();
    for bytes in [whole, streamed] {
        let decoded = opus_decode(&bytes);
        // Each streamed piece is resampled on its own (rounded up): a sample more per piece.
        let extra = decoded.len() as i64 - reference.len() as i64;
        assert!(
            (0..=2).contains(&extra),
            "pre-skip and end trimming: {extra} extra"
        );
        let (c, lag) = correlation(&reference, &decoded, 100);
        assert!(c > 0.9 && lag < 10, "correlation {c} at lag {lag}");
    }
}

#[test]
fn ogg_opus_uploads_decode_through_our_decoder() {
    let input = signal(2.0, 16_000);
    let (chunks, tail) = stream(AudioFormat::Opus, &[&signal(1.0, RATE), &signal(1.0, RATE)]);
    let streamed = [chunks.concat(), tail].concat();
    let limits = AudioLimits::default();
    let d = audio::decode(&streamed, &limits, &HeapAlloc, &CopyLedger::new()).unwrap();
    assert_eq!(
        (d.codec.as_str(), d.source_rate, d.channels),
        ("opus", 48_000, 1)
    );
    assert!(!d.truncated);
    assert!((d.seconds - 2.0).abs() < 1e-3, "{} s", d.seconds);
    let samples = d.samples.as_slice::<f32>().unwrap();
    let first_second = &samples[..16_000];
    let (c, lag) = correlation(&input[..16_000], first_second, 50);
    assert!(c > 0.9, "correlation {c} at lag {lag}");

    // Cut inside the audio: the part present decodes and is flagged.
    let cut = audio::decode(
        &streamed[..streamed.len() * 2 / 3],
        &limits,
        &HeapAlloc,
        &CopyLedger::new(),
    )
    .unwrap();
    assert!(
        cut.truncated && cut.seconds > 0.5 && cut.seconds < 2.0,
        "{}",
        cut.seconds
    );
    // Cut inside the headers: refused.
    assert!(matches!(
        audio::decode(&streamed[..40], &limits, &HeapAlloc, &CopyLedger::new()),
        Err(MediaError::Truncated { .. })
    ));
    // Over the length limit: refused while decoding.
    let short = AudioLimits {
        max_seconds: 1.0,
        ..limits
    };
    assert!(matches!(
        audio::decode(&streamed, &short, &HeapAlloc, &CopyLedger::new()),
        Err(MediaError::TooLong { .. })
    ));
}

#[test]
fn pcm_streams_at_24k() {
    let input = signal(1.0, RATE);
    let (chunks, tail) = stream(
        AudioFormat::Pcm,
        &[&input[..RATE as usize / 2], &input[RATE as usize / 2..]],
    );
    assert!(tail.is_empty());
    assert_eq!(chunks.concat().len(), PCM_RATE as usize * 2);
}

#[test]
fn aac_is_refused_with_the_supported_list() {
    let err = StreamEncoder::new(AudioFormat::Aac, RATE).unwrap_err();
    assert_eq!(err, MediaError::UnsupportedEncoding { format: "aac" });
    assert_eq!(
        err.to_string(),
        "encoding audio as aac is not supported; supported formats: wav, pcm, mp3, opus, flac"
    );
    assert_eq!(AudioFormat::encodable_names(), "wav, pcm, mp3, opus, flac");
    assert!(!AudioFormat::Aac.is_supported() && AudioFormat::Mp3.is_supported());
}

#[test]
fn an_empty_stream_is_still_a_file() {
    for format in [AudioFormat::Wav, AudioFormat::Flac, AudioFormat::Opus] {
        let bytes = StreamEncoder::new(format, RATE).unwrap().finish().unwrap();
        assert!(!bytes.is_empty(), "{format:?}");
    }
}
