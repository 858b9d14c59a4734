//! The mel filterbank Whisper was trained with: `librosa.filters.mel(sr=16000, n_fft=400,
//! n_mels=80)` with librosa's defaults (Slaney mel scale, Slaney area normalisation, fmin 0,
//! fmax sr/2), i.e. what openai-whisper ships as `mel_filters.npz`. CTranslate2 models do not
//! carry it, whisper.cpp's file format does.

/// Hz → mel on the Slaney scale (linear below 1 kHz, logarithmic above).
fn hz_to_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

/// Mel → Hz on the Slaney scale.
fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// A `n_mels × (n_fft/2 + 1)` row-major filterbank (float64 maths, stored as f32 like librosa).
pub(crate) fn mel_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_freqs = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_freqs)
        .map(|i| i as f64 * (sample_rate / 2.0) / (n_freqs - 1) as f64)
        .collect();
    let mel_min = hz_to_mel(0.0);
    let mel_max = hz_to_mel(sample_rate / 2.0);
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f32; n_mels * n_freqs];
    for m in 0..n_mels {
        let lower_width = mel_f[m + 1] - mel_f[m];
        let upper_width = mel_f[m + 2] - mel_f[m + 1];
        let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        for (k, f) in fft_freqs.iter().enumerate() {
            let lower = (f - mel_f[m]) / lower_width;
            let upper = (mel_f[m + 2] - f) / upper_width;
            let w = lower.min(upper).max(0.0);
            weights[m * n_freqs + k] = (w * enorm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_librosa_reference_values() {
        // Reference values from librosa 0.11 `filters.mel(sr=16000, n_fft=400, n_mels=80)`.
        let w = mel_filters(16000.0, 400, 80);
        assert_eq!(w.len(), 80 * 201);
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * b.abs().max(1e-3);
        for (m, k, want) in [
            (0, 1, 0.024_862_595),
            (1, 2, 0.022_871_772),
            (10, 10, 0.019_908_218),
            (40, 43, 0.014_735_566),
            (79, 199, 0.000_448_759),
            (40, 60, 0.0),
        ] {
            let got = w[m * 201 + k];
            assert!(close(got, want), "w[{m}][{k}] = {got}, librosa {want}");
        }
        assert!(w.iter().all(|x| *x >= 0.0));
    }
}
