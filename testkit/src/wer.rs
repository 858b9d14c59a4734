//! Word error rate after normalising case and punctuation.

/// Lower-cased words of `s`, punctuation dropped (apostrophes inside words kept).
pub fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level Levenshtein distance.
pub fn edit_distance(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let sub = prev[j] + usize::from(r != h);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_distances() {
        let r = words("The cat, sat!");
        assert_eq!(r, ["the", "cat", "sat"]);
        assert_eq!(edit_distance(&r, &words("the cat sat")), 0);
        assert_eq!(edit_distance(&r, &words("a cat sat down")), 2);
        assert_eq!(edit_distance(&r, &[]), 3);
    }
}
