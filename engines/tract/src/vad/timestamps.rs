//! silero-vad's `get_speech_timestamps` state machine, over per-window probabilities.

use super::options::{SampleLimits, SpeechSegment, VadOptions, WINDOW_SAMPLES};

/// Turns per-window speech probabilities (one per 512 samples) of an `audio_len`-sample
/// signal into padded speech segments.
pub(crate) fn speech_timestamps(
    probs: &[f32],
    audio_len: usize,
    opts: &VadOptions,
) -> Vec<SpeechSegment> {
    let limits = SampleLimits::new(opts);
    let mut segments = raw_segments(probs, audio_len, opts, &limits);
    pad(&mut segments, audio_len, limits.speech_pad);
    segments
}

/// The segment being built and the segments found so far.
struct Tracker<'a> {
    opts: &'a VadOptions,
    limits: &'a SampleLimits,
    probs: &'a [f32],
    triggered: bool,
    start: usize,
    /// Where the current pause began (0: no pause).
    temp_end: usize,
    /// Pauses seen inside the current segment: (where the pause starts, its length).
    possible_ends: Vec<(usize, usize)>,
    out: Vec<SpeechSegment>,
}

impl Tracker<'_> {
    fn push(&mut self, end: usize) {
        self.out.push(SpeechSegment {
            start: self.start,
            end,
        });
        self.temp_end = 0;
        self.possible_ends.clear();
    }

    fn step(&mut self, prob: f32, cur: usize) {
        let (threshold, limits) = (self.opts.threshold, self.limits);
        if prob >= threshold && self.temp_end != 0 {
            let silence = cur - self.temp_end;
            if silence > limits.min_silence_at_max_speech {
                self.possible_ends.push((self.temp_end, silence));
            }
            self.temp_end = 0;
        }
        if prob >= threshold && !self.triggered {
            self.triggered = true;
            self.start = cur;
            return;
        }
        if self.triggered && cur - self.start > limits.max_speech {
            self.split_long(cur);
        }
        if prob < self.opts.neg_threshold && self.triggered {
            if self.temp_end == 0 {
                self.temp_end = cur;
            }
            if cur - self.temp_end < limits.min_silence {
                return;
            }
            let (start, end) = (self.start, self.temp_end);
            if end - start > limits.min_speech {
                self.push(end);
            }
            self.temp_end = 0;
            self.possible_ends.clear();
            self.triggered = false;
        }
    }

    /// The current segment reached the maximum length: end it at the longest pause seen
    /// inside it; without one, at the quietest window of its second half (the latest of
    /// equals, so steady speech is cut into near-maximal pieces), and go on from there.
    fn split_long(&mut self, cur: usize) {
        let longest = self
            .possible_ends
            .iter()
            .copied()
            .max_by_key(|&(_, silence)| silence);
        if let Some((end, silence)) = longest {
            self.push(end);
            self.start = end + silence;
            return;
        }
        let first = (self.start + self.limits.max_speech / 2) / WINDOW_SAMPLES;
        let last = cur / WINDOW_SAMPLES;
        let quietest = (first..last)
            .filter_map(|i| self.probs.get(i).map(|&p| (i, p)))
            .fold(None, |best: Option<(usize, f32)>, (i, p)| match best {
                Some((_, bp)) if bp < p => best,
                _ => Some((i, p)),
            })
            .map_or(cur, |(i, _)| i * WINDOW_SAMPLES);
        self.push(quietest);
        self.start = quietest;
    }
}

/// Unpadded segments.
fn raw_segments(
    probs: &[f32],
    audio_len: usize,
    opts: &VadOptions,
    limits: &SampleLimits,
) -> Vec<SpeechSegment> {
    let mut tracker = Tracker {
        opts,
        limits,
        probs,
        triggered: false,
        start: 0,
        temp_end: 0,
        possible_ends: Vec::new(),
        out: Vec::new(),
    };
    for (i, &prob) in probs.iter().enumerate() {
        tracker.step(prob, i * WINDOW_SAMPLES);
    }
    if tracker.triggered && audio_len.saturating_sub(tracker.start) > limits.min_speech {
        tracker.push(audio_len);
    }
    tracker.out
}

/// Widens each segment by `pad` samples, sharing shorter gaps equally between neighbours.
fn pad(segments: &mut [SpeechSegment], audio_len: usize, pad: usize) {
    let count = segments.len();
    for i in 0..count {
        if i == 0 {
            segments[0].start = segments[0].start.saturating_sub(pad);
        }
        if i + 1 < count {
            let gap = segments[i + 1].start.saturating_sub(segments[i].end);
            if gap < 2 * pad {
                segments[i].end += gap / 2;
                segments[i + 1].start = segments[i + 1].start.saturating_sub(gap / 2);
            } else {
                segments[i].end = (segments[i].end + pad).min(audio_len);
                segments[i + 1].start = segments[i + 1].start.saturating_sub(pad);
            }
        } else {
            segments[i].end = (segments[i].end + pad).min(audio_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probs(pattern: &[(f32, usize)]) -> Vec<f32> {
        pattern
            .iter()
            .flat_map(|&(p, n)| std::iter::repeat_n(p, n))
            .collect()
    }

    #[test]
    fn two_bursts_give_two_padded_segments() {
        // 31.25 windows per second: 1 s silence, 1 s speech, 1 s silence, 1 s speech, 1 s silence.
        let p = probs(&[(0.0, 31), (0.9, 31), (0.0, 31), (0.9, 31), (0.0, 31)]);
        let len = p.len() * WINDOW_SAMPLES;
        let segs = speech_timestamps(&p, len, &VadOptions::default());
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert_eq!(segs[0].start, 31 * 512 - 480);
        assert_eq!(segs[0].end, 62 * 512 + 480);
        assert_eq!(segs[1].start, 93 * 512 - 480);
    }

    #[test]
    fn short_blip_is_dropped_and_silence_is_empty() {
        let p = probs(&[(0.0, 30), (0.9, 3), (0.0, 30)]);
        assert!(speech_timestamps(&p, p.len() * 512, &VadOptions::default()).is_empty());
        let p = probs(&[(0.1, 100)]);
        assert!(speech_timestamps(&p, p.len() * 512, &VadOptions::default()).is_empty());
    }

    #[test]
    fn hysteresis_keeps_segment_open_between_thresholds() {
        let p = probs(&[(0.9, 20), (0.4, 20), (0.9, 20), (0.0, 20)]);
        let segs = speech_timestamps(&p, p.len() * 512, &VadOptions::default());
        assert_eq!(segs.len(), 1, "{segs:?}");
    }

    #[test]
    fn long_speech_is_split_at_the_longest_pause() {
        // A 128 ms pause: long enough to split at, shorter than the 300 ms that ends a segment.
        let opts = VadOptions {
            max_speech_s: 3.0,
            min_silence_ms: 300,
            ..VadOptions::default()
        };
        let p = probs(&[(0.9, 60), (0.0, 4), (0.9, 60), (0.0, 40)]);
        let segs = speech_timestamps(&p, p.len() * 512, &opts);
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert_eq!(segs[0].end, 60 * 512 + 480, "{segs:?}");
        for s in &segs {
            assert!(s.end - s.start <= 3 * 16_000, "{segs:?}");
        }
    }

    #[test]
    fn continuous_speech_is_cut_at_max_length() {
        let opts = VadOptions {
            max_speech_s: 2.0,
            ..VadOptions::default()
        };
        let p = probs(&[(0.9, 200)]);
        let segs = speech_timestamps(&p, p.len() * 512, &opts);
        assert!(segs.len() >= 3, "{segs:?}");
        for s in &segs {
            assert!(s.end - s.start <= 2 * 16_000 + 2 * 480, "{segs:?}");
        }
    }
}
