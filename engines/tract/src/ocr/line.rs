//! What OCR returns, and its options.

use super::db_postprocess::DbOptions;

/// One recognized text line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OcrLine {
    /// The text.
    pub text: String,
    /// Mean probability of the decoded characters, 0..1.
    pub confidence: f32,
    /// Axis-aligned box `[x0, y0, x1, y1]` in source pixels.
    pub bbox: [f32; 4],
}

/// OCR settings (PaddleOCR defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OcrOptions {
    /// The detector input's longer side is shrunk to at most this many pixels.
    pub det_max_side: usize,
    /// Detector inputs are padded up to multiples of this (32 = no padding beyond
    /// PaddleOCR's rounding); larger steps mean fewer distinct sizes, so fewer plans.
    pub det_size_step: usize,
    /// Detector post-processing.
    pub db: DbOptions,
    /// Lines recognized with a lower confidence are dropped.
    pub drop_score: f32,
    /// Lines per recognizer run.
    pub rec_batch: usize,
}

impl Default for OcrOptions {
    fn default() -> Self {
        Self {
            det_max_side: 960,
            det_size_step: 32,
            db: DbOptions::default(),
            drop_score: 0.5,
            rec_batch: 6,
        }
    }
}

/// The lines' text, one line per row: lines whose boxes overlap vertically are joined
/// with a space, rows with a newline.
pub fn join_text(lines: &[OcrLine]) -> String {
    let mut out = String::new();
    let mut row_bottom: Option<f32> = None;
    for line in lines {
        let centre = (line.bbox[1] + line.bbox[3]) / 2.0;
        match row_bottom {
            Some(bottom) if centre <= bottom => {
                out.push(' ');
                row_bottom = Some(bottom.max(line.bbox[3]));
            }
            Some(_) => {
                out.push('\n');
                row_bottom = Some(line.bbox[3]);
            }
            None => row_bottom = Some(line.bbox[3]),
        }
        out.push_str(&line.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, bbox: [f32; 4]) -> OcrLine {
        OcrLine {
            text: text.into(),
            confidence: 1.0,
            bbox,
        }
    }

    #[test]
    fn rows_join_with_spaces_and_newlines() {
        let lines = [
            line("Hello", [0.0, 0.0, 50.0, 20.0]),
            line("world", [60.0, 1.0, 110.0, 21.0]),
            line("Bye", [0.0, 40.0, 30.0, 60.0]),
        ];
        assert_eq!(join_text(&lines), "Hello world\nBye");
        assert_eq!(join_text(&[]), "");
    }
}
