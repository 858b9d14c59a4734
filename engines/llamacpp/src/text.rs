//! Turning token bytes into client-visible text: UTF-8 reassembly across tokens and stop
//! sequences that may span several tokens.

/// The result of pushing one token's bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Emitted {
    /// Text that is safe to send now.
    pub text: String,
    /// True when a stop sequence was found; `text` ends right before it.
    pub stopped: bool,
}

/// Per-sequence text state.
#[derive(Debug)]
pub struct TextStream {
    stops: Vec<String>,
    /// Bytes of an incomplete UTF-8 character.
    pending: Vec<u8>,
    /// Decoded text held back because it could be the start of a stop sequence.
    held: String,
}

impl TextStream {
    /// A stream that stops before any of `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        TextStream {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: Vec::new(),
            held: String::new(),
        }
    }

    /// Adds one token's bytes and returns what can be sent.
    pub fn push(&mut self, bytes: &[u8]) -> Emitted {
        self.pending.extend_from_slice(bytes);
        let valid_up_to = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_some() => {
                // Invalid bytes (not merely incomplete): replace them rather than stall.
                let lossy = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                self.held.push_str(&lossy);
                return self.release();
            }
            Err(e) => e.valid_up_to(),
        };
        let rest = self.pending.split_off(valid_up_to);
        let complete = std::mem::replace(&mut self.pending, rest);
        // `complete` is valid UTF-8 by construction.
        self.held.push_str(&String::from_utf8_lossy(&complete));
        self.release()
    }

    /// Everything still held, at the end of generation (no stop sequence was completed).
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.held);
        if !self.pending.is_empty() {
            out.push_str(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
        out
    }

    fn release(&mut self) -> Emitted {
        if let Some(pos) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let text = self.held[..pos].to_owned();
            self.held.clear();
            self.pending.clear();
            return Emitted {
                text,
                stopped: true,
            };
        }
        let keep = self.longest_stop_prefix_suffix();
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_owned();
        self.held.drain(..cut);
        Emitted {
            text,
            stopped: false,
        }
    }

    /// Length in bytes of the longest suffix of `held` that is a proper prefix of a stop string.
    fn longest_stop_prefix_suffix(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (i, _) in stop.char_indices().skip(1) {
                let prefix = &stop[..i];
                if i > best && self.held.ends_with(prefix) {
                    best = i;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(stops: &[&str]) -> TextStream {
        TextStream::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn reassembles_split_utf8() {
        let mut s = stream(&[]);
        let euro = "€".as_bytes();
        assert_eq!(s.push(&euro[..1]).text, "");
        assert_eq!(s.push(&euro[1..]).text, "€");
    }

    #[test]
    fn stop_across_tokens_is_not_emitted() {
        let mut s = stream(&["END"]);
        assert_eq!(s.push(b"hello E").text, "hello ");
        let e = s.push(b"ND more");
        assert_eq!(e.text, "");
        assert!(e.stopped);
    }

    #[test]
    fn held_prefix_released_when_it_diverges() {
        let mut s = stream(&["END"]);
        assert_eq!(s.push(b"a E").text, "a ");
        let e = s.push(b"x");
        assert_eq!(e.text, "Ex");
        assert!(!e.stopped);
    }

    #[test]
    fn earliest_stop_wins() {
        let mut s = stream(&["b", "a"]);
        let e = s.push(b"xxab");
        assert_eq!(e.text, "xx");
        assert!(e.stopped);
    }

    #[test]
    fn finish_flushes_held_text() {
        let mut s = stream(&["END"]);
        assert_eq!(s.push(b"EN").text, "");
        assert_eq!(s.finish(), "EN");
    }

    #[test]
    fn invalid_bytes_are_replaced_not_stalled() {
        let mut s = stream(&[]);
        assert_eq!(s.push(&[0xff, b'a']).text, "\u{fffd}a");
    }
}
