//! Splitting text: into sentences (the unit the gateway synthesises and streams) and into
//! clauses (the unit handed to espeak-ng, each with the punctuation Piper keeps after it).

/// Sentences longer than this many bytes are cut at a clause mark or a space so that the first
/// audio of a long run-on sentence is not delayed (and the model's input stays moderate).
pub const MAX_SENTENCE_BYTES: usize = 400;

/// Clause and sentence punctuation.
const TERMINAL: &[char] = &['.', '!', '?', '…', ',', ';', ':'];
/// Characters that may follow the punctuation before the space (closing quotes, brackets).
const CLOSERS: &[char] = &['"', '\'', '”', '’', '»', ')', ']', '}'];
/// Characters that may precede the first letter of a word (opening quotes, brackets).
const OPENERS: &[char] = &['"', '\'', '“', '‘', '«', '(', '[', '{'];

/// Abbreviations that never end a sentence (titles): "Dr. Smith".
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "capt", "gen", "col", "lt",
    "sgt", "cmdr", "adm", "rev", "hon", "gov", "sen", "rep", "pres", "messrs", "mme", "mlle", "vs",
    "etc", "eg", "ie", "cf", "al", "approx",
];
/// Abbreviations that do not end a sentence when a number follows: "No. 5", "Fig. 3".
const BEFORE_NUMBER: &[&str] = &[
    "no", "nos", "fig", "figs", "vol", "vols", "ch", "sec", "p", "pp", "art", "ref", "eq", "ca",
    "op", "ed", "ver", "v",
];

/// A run of punctuation that ends a clause, and possibly a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Boundary {
    /// Byte offset of the first punctuation character.
    pub start: usize,
    /// Byte offset just past the punctuation and any closing quotes or brackets.
    pub end: usize,
    /// The punctuation Piper keeps: one of `. ? ! , ; :`.
    pub mark: char,
    /// Whether the boundary also ends a sentence.
    pub sentence_end: bool,
}

/// The clause boundaries of `text`: runs of `. ! ? … , ; :` (plus closing quotes or brackets)
/// followed by whitespace or the end. A period after an abbreviation ("Dr.", "e.g.", "No. 5",
/// initials) or before a lower-case word is not a boundary; "3.5" and "10:30" are not either
/// (no space follows).
pub(crate) fn boundaries(text: &str) -> Vec<Boundary> {
    let mut found = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !TERMINAL.contains(&c) {
            continue;
        }
        let mut run = String::from(c);
        let mut end = start + c.len_utf8();
        while let Some(&(i, next)) = chars.peek() {
            if TERMINAL.contains(&next) {
                run.push(next);
            } else if !CLOSERS.contains(&next) {
                break;
            }
            end = i + next.len_utf8();
            chars.next();
        }
        let followed_by_space = text[end..].chars().next().is_none_or(char::is_whitespace);
        if !followed_by_space {
            continue;
        }
        let next_letter = text[end..]
            .trim_start()
            .trim_start_matches(OPENERS)
            .chars()
            .next();
        if let Some(boundary) = classify(text, start, end, &run, next_letter) {
            found.push(boundary);
        }
    }
    found
}

/// Decides what the punctuation run `run` at `start..end` is.
fn classify(
    text: &str,
    start: usize,
    end: usize,
    run: &str,
    next_letter: Option<char>,
) -> Option<Boundary> {
    let has = |c: char| run.contains(c);
    let lower_follows = next_letter.is_some_and(char::is_lowercase);
    let boundary = |mark: char, sentence_end: bool| {
        Some(Boundary {
            start,
            end,
            mark,
            sentence_end,
        })
    };
    if has('?') {
        return boundary('?', true);
    }
    if has('!') {
        return boundary('!', true);
    }
    if has('.') || has('…') {
        let ellipsis = has('…') || run.matches('.').count() > 1;
        if ellipsis {
            // "Wait... what" pauses without ending the sentence.
            return if lower_follows {
                boundary(',', false)
            } else {
                boundary('.', true)
            };
        }
        if lower_follows || is_abbreviation(&text[..start], next_letter) {
            return None;
        }
        return boundary('.', true);
    }
    [';', ':', ',']
        .into_iter()
        .find(|&m| has(m))
        .and_then(|m| boundary(m, false))
}

/// Whether the word that ends `before` (the text up to a period) is an abbreviation, given the
/// first letter after the period.
fn is_abbreviation(before: &str, next_letter: Option<char>) -> bool {
    let word = before
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or("")
        .trim_start_matches(OPENERS);
    if word.is_empty() {
        return false;
    }
    // Initials ("J. R. R. Tolkien") and dotted acronyms ("U.S.", "e.g.", "a.m.").
    let mut letters = word.chars().filter(|c| *c != '.');
    let first = letters.next();
    if word.chars().count() == 1 && first.is_some_and(char::is_uppercase) {
        return true;
    }
    if word.contains('.')
        && word
            .split('.')
            .all(|part| part.chars().count() <= 2 && part.chars().all(char::is_alphabetic))
    {
        return true;
    }
    let lower = word.to_lowercase();
    if TITLES.contains(&lower.as_str()) {
        return true;
    }
    BEFORE_NUMBER.contains(&lower.as_str()) && next_letter.is_some_and(|c| c.is_ascii_digit())
}

/// A clause to phonemise and the punctuation Piper keeps after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clause<'a> {
    /// The clause text, without its final punctuation.
    pub text: &'a str,
    /// The punctuation after it, if any.
    pub mark: Option<char>,
}

/// `text` cut at its clause boundaries.
pub(crate) fn clauses(text: &str) -> Vec<Clause<'_>> {
    let mut out = Vec::new();
    let mut from = 0;
    for b in boundaries(text) {
        out.push(Clause {
            text: &text[from..b.start],
            mark: Some(b.mark),
        });
        from = b.end;
    }
    if !text[from..].trim().is_empty() {
        out.push(Clause {
            text: &text[from..],
            mark: None,
        });
    }
    out
}

/// Splits `text` into sentences for sentence-by-sentence synthesis and streaming.
///
/// Sentences end at `.`, `!`, `?` or an ellipsis followed by a space (closing quotes and
/// brackets stay with their sentence), and at blank lines. Periods after abbreviations
/// ("Dr.", "e.g.", "No. 5"), initials and before a lower-case word do not end a sentence, and
/// "3.5" never does. Sentences longer than [`MAX_SENTENCE_BYTES`] are cut at a clause mark
/// (`, ; :`) or a space. Pieces without any letter or digit (a lone "—" or "...") are merged
/// into their neighbour, so every piece can be spoken.
///
/// No text is lost: the pieces, trimmed, are the input in order; only whitespace between them
/// is dropped.
pub fn sentences(text: &str) -> Vec<String> {
    let mut cuts = Vec::new();
    for b in boundaries(text) {
        if b.sentence_end {
            cuts.push(b.end);
        }
    }
    cuts.extend(blank_lines(text));
    cuts.sort_unstable();
    cuts.dedup();

    let mut pieces: Vec<&str> = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain(std::iter::once(text.len())) {
        if cut <= from {
            continue;
        }
        split_long(text[from..cut].trim(), &mut pieces);
        from = cut;
    }

    // Merge pieces that have nothing to say into a neighbour.
    let mut out: Vec<String> = Vec::new();
    let mut pending = String::new(); // unspeakable pieces before the first speakable one
    for piece in pieces {
        let speakable = piece.chars().any(char::is_alphanumeric);
        match out.last_mut() {
            Some(last) if !speakable => {
                last.push(' ');
                last.push_str(piece);
            }
            _ if !speakable => {
                if !pending.is_empty() {
                    pending.push(' ');
                }
                pending.push_str(piece);
            }
            _ => {
                if pending.is_empty() {
                    out.push(piece.to_owned());
                } else {
                    out.push(format!("{pending} {piece}"));
                    pending.clear();
                }
            }
        }
    }
    if !pending.is_empty() {
        out.push(pending);
    }
    out
}

/// Byte offsets of blank lines (a newline, optional spaces, another newline).
fn blank_lines(text: &str) -> Vec<usize> {
    let mut cuts = Vec::new();
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('\n') {
        let rest = &bytes[i + 1..];
        let gap = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
            .count();
        if rest.get(gap) == Some(&b'\n') {
            cuts.push(i);
        }
    }
    cuts
}

/// Pushes `sentence` (trimmed), cut into pieces of at most [`MAX_SENTENCE_BYTES`] where it is
/// longer: after the last clause mark that fits, else at the last space that fits, else at the
/// first space after the limit (words are never cut).
fn split_long<'a>(sentence: &'a str, out: &mut Vec<&'a str>) {
    let mut rest = sentence.trim();
    while rest.len() > MAX_SENTENCE_BYTES {
        let mut limit = MAX_SENTENCE_BYTES;
        while !rest.is_char_boundary(limit) {
            limit -= 1;
        }
        let head = &rest[..limit];
        // Only the text around the limit matters (what follows a mark decides if it is one).
        let mut probe_end = (limit + 64).min(rest.len());
        while !rest.is_char_boundary(probe_end) {
            probe_end += 1;
        }
        let at_clause = boundaries(&rest[..probe_end])
            .into_iter()
            .map(|b| b.end)
            .rfind(|&end| end <= limit && end > 0);
        let at_space = || head.rfind(char::is_whitespace).filter(|&i| i > 0);
        let after_limit = || rest[limit..].find(char::is_whitespace).map(|i| limit + i);
        let Some(cut) = at_clause.or_else(at_space).or_else(after_limit) else {
            break;
        };
        let piece = rest[..cut].trim();
        if !piece.is_empty() {
            out.push(piece);
        }
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    #[test]
    fn splits_on_sentence_ends_and_keeps_abbreviations_and_numbers() {
        let text = "Dr. Smith paid 3.5 dollars. Was it enough? Yes! He met Mr. J. R. Jones, \
                    e.g. at 5 p.m. on Fig. 3 day. \"Quoted.\" Next (really.) End";
        let s = sentences(text);
        assert_eq!(
            s,
            vec![
                "Dr. Smith paid 3.5 dollars.",
                "Was it enough?",
                "Yes!",
                "He met Mr. J. R. Jones, e.g. at 5 p.m. on Fig. 3 day.",
                "\"Quoted.\"",
                "Next (really.)",
                "End",
            ]
        );
    }

    #[test]
    fn blank_lines_split_and_nothing_is_lost() {
        let text =
            "  Title without a period\n\nFirst line\ncontinues here. Then...   what?!\n \n— ... ";
        let s = sentences(text);
        assert_eq!(
            s,
            vec![
                "Title without a period",
                "First line\ncontinues here.",
                "Then...   what?! — ...",
            ]
        );
        assert_eq!(words(&s.join(" ")), words(text));
        assert!(sentences("   \n\n ").is_empty());
        assert_eq!(sentences("..."), vec!["..."]);
    }

    #[test]
    fn long_sentences_are_cut_at_clauses_or_spaces() {
        let clause = "this is a clause that goes on for a while, ";
        let text = clause.repeat(30);
        let s = sentences(&text);
        assert!(s.len() > 1);
        assert!(s.iter().all(|p| p.len() <= MAX_SENTENCE_BYTES), "{s:?}");
        assert!(s.iter().all(|p| p.ends_with(',')), "{s:?}");
        assert_eq!(words(&s.join(" ")), words(&text));

        let no_marks = "word ".repeat(300);
        let s = sentences(&no_marks);
        assert!(s.iter().all(|p| p.len() <= MAX_SENTENCE_BYTES));
        assert_eq!(words(&s.join(" ")), words(&no_marks));

        let giant = "x".repeat(1000);
        assert_eq!(
            sentences(&format!("{giant} y")),
            vec![giant.clone(), "y".into()]
        );
    }

    #[test]
    fn clauses_keep_piper_punctuation() {
        let c = clauses("Hello, world; one: two. Really?! e.g. this... and that 3.5");
        let marks: Vec<_> = c.iter().map(|c| (c.text.trim(), c.mark)).collect();
        assert_eq!(
            marks,
            vec![
                ("Hello", Some(',')),
                ("world", Some(';')),
                ("one", Some(':')),
                ("two", Some('.')),
                ("Really", Some('?')),
                ("e.g. this", Some(',')),
                ("and that 3.5", None),
            ]
        );
        assert!(clauses("  ").is_empty());
        assert_eq!(clauses("10:30 am").len(), 1);
    }
}
