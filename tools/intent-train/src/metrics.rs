//! Accuracy, macro-F1, per-class scores and the confusion matrix.

use std::collections::BTreeMap;

use switchyard_intent::tier_b::TierBClassScores;
use switchyard_intent::{Intent, NUM_INTENTS};

/// The quality of a set of predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Number of examples.
    pub examples: usize,
    /// Fraction predicted correctly.
    pub accuracy: f64,
    /// Unweighted mean of the per-label F1 scores (labels without examples count only if
    /// they were predicted).
    pub macro_f1: f64,
    /// Precision/recall/F1 per label, keyed by label string.
    pub per_class: BTreeMap<String, TierBClassScores>,
    /// `confusion[truth][predicted]`, indexed like [`Intent::ALL`].
    pub confusion: [[usize; NUM_INTENTS]; NUM_INTENTS],
}

/// Scores `predicted` against `truth` (same length, same order).
pub fn evaluate(truth: &[Intent], predicted: &[Intent]) -> Evaluation {
    let mut confusion = [[0usize; NUM_INTENTS]; NUM_INTENTS];
    for (t, p) in truth.iter().zip(predicted) {
        confusion[t.index()][p.index()] += 1;
    }
    let examples = truth.len().min(predicted.len());
    let correct: usize = (0..NUM_INTENTS).map(|i| confusion[i][i]).sum();
    let mut per_class = BTreeMap::new();
    let mut f1_sum = 0.0;
    let mut f1_count = 0usize;
    for intent in Intent::ALL {
        let i = intent.index();
        let tp = confusion[i][i] as f64;
        let support: usize = confusion[i].iter().sum();
        let predicted_as: usize = (0..NUM_INTENTS).map(|t| confusion[t][i]).sum();
        if support == 0 && predicted_as == 0 {
            continue;
        }
        let precision = if predicted_as > 0 {
            tp / predicted_as as f64
        } else {
            0.0
        };
        let recall = if support > 0 {
            tp / support as f64
        } else {
            0.0
        };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        f1_sum += f1;
        f1_count += 1;
        per_class.insert(
            intent.as_str().to_owned(),
            TierBClassScores {
                precision,
                recall,
                f1,
                support,
            },
        );
    }
    Evaluation {
        examples,
        accuracy: if examples > 0 {
            correct as f64 / examples as f64
        } else {
            0.0
        },
        macro_f1: if f1_count > 0 {
            f1_sum / f1_count as f64
        } else {
            0.0
        },
        per_class,
        confusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_a_small_confusion() {
        use Intent::*;
        let truth = [Chat, Chat, Code, Code, Tts];
        let predicted = [Chat, Code, Code, Code, Tts];
        let e = evaluate(&truth, &predicted);
        assert_eq!(e.examples, 5);
        assert!((e.accuracy - 0.8).abs() < 1e-12);
        let chat = e.per_class["chat"];
        assert_eq!((chat.precision, chat.recall, chat.support), (1.0, 0.5, 2));
        let code = e.per_class["code"];
        assert!((code.precision - 2.0 / 3.0).abs() < 1e-12 && code.recall == 1.0);
        // chat F1 2/3, code F1 0.8, tts F1 1.
        assert!((e.macro_f1 - (2.0 / 3.0 + 0.8 + 1.0) / 3.0).abs() < 1e-12);
        assert_eq!(e.confusion[Chat.index()][Code.index()], 1);
    }
}
