//! OCR on rendered text with the real PP-OCRv6 tiny models.

// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{image_tensor, ocr_model, render};
use switchyard_core::{CopyLedger, Tensor};
use switchyard_engine_tract::ocr::{join_text, OcrLine, OcrModel};

fn read(model: &OcrModel, image: image::RgbImage) -> Vec<OcrLine> {
    let tensor = image_tensor(image);
    model.recognize(&tensor, &CopyLedger::new()).unwrap()
}

fn texts(lines: &[OcrLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

#[test]
fn single_lines_in_three_fonts_and_sizes_read_back_exactly() {
    let Some(model) = ocr_model() else { return };
    let cases = [
        ("DejaVuSans", 32.0, "Invoice 2024-07 total: 129.50 EUR"),
        (
            "DejaVuSerif",
            28.0,
            "The quick brown fox jumps over 13 lazy dogs.",
        ),
        // Not "Order": the tiny recognizer reads DejaVu Sans Mono's narrow capital O as a zero.
        ("DejaVuSansMono", 24.0, "Shipped order #4521 on May 3rd!"),
        ("DejaVuSans", 20.0, "Call us at 555-0199 today"),
        ("DejaVuSerif", 48.0, "Hello, World 42"),
    ];
    let mut failures = Vec::new();
    for (font, px, text) in cases {
        let lines = read(&model, render(&[text], font, px, 24));
        let got = join_text(&lines);
        eprintln!(
            "{font} {px}px: {got:?} {:?}",
            lines.iter().map(|l| l.confidence).collect::<Vec<_>>()
        );
        if got != text {
            failures.push(format!("{font} {px}px: expected {text:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn several_lines_come_back_in_reading_order() {
    let Some(model) = ocr_model() else { return };
    let text = [
        "Shipping address:",
        "42 Baker Street, London",
        "Phone 020 7946 0018",
    ];
    let image = render(&text, "DejaVuSans", 30.0, 40);
    let (w, h) = (image.width() as f32, image.height() as f32);
    let lines = read(&model, image);
    assert_eq!(texts(&lines), text, "{lines:#?}");
    for pair in lines.windows(2) {
        assert!(pair[0].bbox[1] < pair[1].bbox[1], "{lines:#?}");
    }
    for line in &lines {
        let [x0, y0, x1, y1] = line.bbox;
        assert!(
            0.0 <= x0 && x0 < x1 && x1 <= w && 0.0 <= y0 && y0 < y1 && y1 <= h,
            "{line:?}"
        );
        assert!(line.confidence > 0.8 && line.confidence <= 1.0, "{line:?}");
    }
}

#[test]
fn two_columns_are_read_left_to_right_per_row() {
    let Some(model) = ocr_model() else { return };
    let left = render(&["Name", "Price"], "DejaVuSans", 30.0, 20);
    let right = render(&["Coffee", "3.20"], "DejaVuSans", 30.0, 20);
    let mut image = image::RgbImage::from_pixel(
        left.width() + right.width() + 120,
        left.height().max(right.height()),
        image::Rgb([255, 255, 255]),
    );
    image::imageops::replace(&mut image, &left, 0, 0);
    image::imageops::replace(&mut image, &right, i64::from(left.width()) + 120, 0);
    let lines = read(&model, image);
    assert_eq!(
        texts(&lines),
        ["Name", "Coffee", "Price", "3.20"],
        "{lines:#?}"
    );
    assert_eq!(join_text(&lines), "Name Coffee\nPrice 3.20");
}

#[test]
fn large_image_is_scaled_down_and_still_read() {
    let Some(model) = ocr_model() else { return };
    let text = render(&["Quarterly report 2025"], "DejaVuSerif", 64.0, 10);
    let mut image = image::RgbImage::from_pixel(1800, 1200, image::Rgb([255, 255, 255]));
    image::imageops::replace(&mut image, &text, 300, 500);
    let lines = read(&model, image);
    assert_eq!(texts(&lines), ["Quarterly report 2025"], "{lines:#?}");
    let [x0, y0, _, _] = lines[0].bbox;
    assert!(
        (280.0..330.0).contains(&x0) && (480.0..540.0).contains(&y0),
        "{lines:?}"
    );
}

#[test]
fn blank_and_tiny_images_give_no_lines() {
    let Some(model) = ocr_model() else { return };
    let blank = image::RgbImage::from_pixel(640, 480, image::Rgb([255, 255, 255]));
    assert!(read(&model, blank).is_empty());
    let tiny = image::RgbImage::from_pixel(1, 1, image::Rgb([0, 0, 0]));
    assert!(read(&model, tiny).is_empty());
    let empty = Tensor::from_vec(Vec::<u8>::new(), &[0, 5, 3]).unwrap();
    assert!(model
        .recognize(&empty, &CopyLedger::new())
        .unwrap()
        .is_empty());
}

#[test]
fn wrong_input_is_refused_with_a_clear_error() {
    let Some(model) = ocr_model() else { return };
    let gray = Tensor::from_vec(vec![0u8; 16], &[4, 4]).unwrap();
    let err = model.recognize(&gray, &CopyLedger::new()).unwrap_err();
    assert!(err.to_string().contains("[height, width, 3]"), "{err}");
    let floats = Tensor::from_vec(vec![0f32; 48], &[4, 4, 3]).unwrap();
    assert!(model.recognize(&floats, &CopyLedger::new()).is_err());
}

#[test]
fn copies_are_counted_and_the_input_is_untouched() {
    let Some(model) = ocr_model() else { return };
    let image = render(&["Copy ledger 77"], "DejaVuSans", 32.0, 16);
    let (w, h) = (image.width() as usize, image.height() as usize);
    let tensor = image_tensor(image);
    let before = tensor.data_ptr();
    let snapshot = tensor.as_slice::<u8>().unwrap().to_vec();
    let ledger = CopyLedger::new();
    let lines = model.recognize(&tensor, &ledger).unwrap();
    assert_eq!(texts(&lines), ["Copy ledger 77"]);
    assert_eq!(tensor.data_ptr(), before);
    assert_eq!(tensor.as_slice::<u8>().unwrap(), &snapshot[..]);

    let summary = ledger.summary();
    let reasons: Vec<&str> = summary.by_reason.keys().copied().collect();
    assert_eq!(reasons, ["crop", "preprocess"], "{summary:?}");
    // Detector input: 3 planes of f32 at the 32-rounded size; plus one f32 line input.
    let round32 = |v: usize| ((v as f32 / 32.0).round() as usize * 32).max(32);
    let det_bytes = 3 * round32(w) * round32(h) * 4;
    let crop = summary.by_reason["crop"] as usize;
    assert!(crop > 0 && crop < w * h * 3, "{summary:?}");
    let rec_bytes = summary.by_reason["preprocess"] as usize - det_bytes;
    assert!(
        rec_bytes > 0 && rec_bytes.is_multiple_of(3 * 48 * 4),
        "{summary:?}"
    );
    // One detector input, one crop, one recognizer input.
    assert_eq!(summary.copies, 3, "{summary:?}");
}

#[test]
fn model_is_shared_across_threads() {
    let Some(model) = ocr_model() else { return };
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send_sync(&model);
    let tensor = image_tensor(render(&["Thread safe 2026"], "DejaVuSans", 30.0, 16));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| model.recognize(&tensor, &CopyLedger::new()).unwrap()))
            .collect();
        for h in handles {
            assert_eq!(texts(&h.join().unwrap()), ["Thread safe 2026"]);
        }
    });
}
