//! The recognizer's alphabet and greedy CTC decoding.

/// Recognizer classes: index 0 is the CTC blank, then the model's `character` list, then
/// a space (PaddleOCR's `use_space_char`).
#[derive(Debug, Clone)]
pub(crate) struct Charset {
    symbols: Vec<String>,
}

impl Charset {
    /// Builds the classes from the newline-separated `character` metadata.
    pub fn from_metadata(characters: &str) -> Self {
        let mut symbols = vec![String::new()];
        symbols.extend(
            characters
                .split('\n')
                .map(|s| s.trim_end_matches('\r').to_string()),
        );
        if symbols.last().is_some_and(String::is_empty) {
            symbols.pop();
        }
        symbols.push(" ".to_string());
        Self { symbols }
    }

    /// Number of classes, blank included.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Decodes `[steps, classes]` probabilities: best class per step, repeats merged,
    /// blanks removed. Confidence is the mean best probability of the kept steps (0 when
    /// nothing is kept).
    pub fn decode(&self, probs: &[f32], classes: usize) -> (String, f32) {
        let mut text = String::new();
        let (mut sum, mut kept) = (0f32, 0usize);
        let mut previous = usize::MAX;
        for step in probs.chunks_exact(classes.max(1)) {
            let (best, p) = step.iter().copied().enumerate().fold(
                (0usize, f32::NEG_INFINITY),
                |acc, (i, p)| {
                    if p > acc.1 {
                        (i, p)
                    } else {
                        acc
                    }
                },
            );
            if best != 0 && best != previous {
                if let Some(symbol) = self.symbols.get(best) {
                    text.push_str(symbol);
                    sum += p;
                    kept += 1;
                }
            }
            previous = best;
        }
        let confidence = if kept == 0 { 0.0 } else { sum / kept as f32 };
        (text, confidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_decode_merges_repeats_and_drops_blanks() {
        let charset = Charset::from_metadata("a\nb");
        assert_eq!(charset.len(), 4);
        // Steps: a, a, blank, a, b, space.
        let one_hot = |i: usize| {
            let mut v = vec![0.0f32; 4];
            v[i] = 0.8;
            v
        };
        let probs: Vec<f32> = [1, 1, 0, 1, 2, 3]
            .iter()
            .flat_map(|&i| one_hot(i))
            .collect();
        let (text, confidence) = charset.decode(&probs, 4);
        assert_eq!(text, "aab ");
        assert!((confidence - 0.8).abs() < 1e-6);
    }
}
