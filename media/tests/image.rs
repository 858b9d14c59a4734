//! Image decoding: formats, colour conversion, in-place output and refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;

use common::RecordingAlloc;
use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use switchyard_core::{CopyLedger, HeapAlloc};
use switchyard_media::image::{self as media_image, DecodedImage, ImageLimits};
use switchyard_media::MediaError;

fn limits() -> ImageLimits {
    ImageLimits {
        max_bytes: 10 << 20,
        max_pixels: 10_000_000,
    }
}

fn decode(bytes: &[u8]) -> Result<DecodedImage, MediaError> {
    media_image::decode(bytes, &limits(), &HeapAlloc, &CopyLedger::new())
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, 128]))
}

fn encode(img: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

#[test]
fn rgb_png_is_decoded_in_place_and_counted_once() {
    let img = gradient(64, 48);
    let png = encode(&img.clone().into(), ImageFormat::Png);
    let alloc = RecordingAlloc::default();
    let ledger = CopyLedger::new();
    let d = media_image::decode(&png, &limits(), &alloc, &ledger).unwrap();
    assert_eq!((d.width, d.height, d.format.as_str()), (64, 48, "png"));
    assert_eq!(d.pixels.shape(), &[48, 64, 3]);
    assert_eq!(d.pixels.as_slice::<u8>().unwrap(), img.as_raw().as_slice());
    assert_eq!(d.pixels.data_ptr() as usize, alloc.only());
    let copies = ledger.summary();
    assert_eq!((copies.copies, copies.bytes), (1, 64 * 48 * 3));
}

#[test]
fn jpeg_and_lossless_webp_decode() {
    let img = gradient(40, 30);
    let jpeg = encode(&img.clone().into(), ImageFormat::Jpeg);
    let d = decode(&jpeg).unwrap();
    assert_eq!((d.width, d.height, d.format.as_str()), (40, 30, "jpeg"));
    let px = d.pixels.as_slice::<u8>().unwrap();
    let err: f64 = px
        .iter()
        .zip(img.as_raw())
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .sum::<f64>()
        / px.len() as f64;
    assert!(err < 6.0, "mean abs error {err}");

    let webp = encode(&img.clone().into(), ImageFormat::WebP);
    let d = decode(&webp).unwrap();
    assert_eq!(d.format, "webp");
    assert_eq!(d.pixels.as_slice::<u8>().unwrap(), img.as_raw().as_slice());
}

#[test]
fn grey_and_alpha_images_become_rgb() {
    let rgba = RgbaImage::from_fn(8, 4, |x, y| Rgba([x as u8, y as u8, 7, 100]));
    let d = decode(&encode(&rgba.into(), ImageFormat::Png)).unwrap();
    let px = d.pixels.as_slice::<u8>().unwrap();
    assert_eq!(&px[..6], &[0, 0, 7, 1, 0, 7]);

    let grey = image::GrayImage::from_fn(5, 5, |x, _| image::Luma([x as u8 * 50]));
    let alloc = RecordingAlloc::default();
    let d = media_image::decode(
        &encode(&grey.into(), ImageFormat::Png),
        &limits(),
        &alloc,
        &CopyLedger::new(),
    )
    .unwrap();
    let px = d.pixels.as_slice::<u8>().unwrap();
    assert_eq!(&px[..9], &[0, 0, 0, 50, 50, 50, 100, 100, 100]);
    assert_eq!(d.pixels.data_ptr() as usize, alloc.only());
}

#[test]
fn text_named_png_and_empty_files_are_refused() {
    let err = decode(b"just some text that someone saved as photo.png").unwrap_err();
    assert_eq!(err.to_string(), "not a PNG/JPEG/WebP image");
    let err = decode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a PNG/JPEG/WebP image (GIF is not supported)"
    );
    assert_eq!(
        decode(b"").unwrap_err().to_string(),
        "the image file is empty (0 bytes)"
    );
}

#[test]
fn truncated_png_is_an_error() {
    let png = encode(&gradient(64, 64).into(), ImageFormat::Png);
    for cut in [20, png.len() / 2] {
        let err = decode(&png[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                MediaError::Truncated { format: "PNG", .. }
                    | MediaError::Corrupt { format: "PNG", .. }
            ),
            "cut at {cut}: {err:?}"
        );
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    png.extend_from_slice(&body);
    png.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A well-formed PNG start declaring `w`×`h` RGB: IHDR, then an IDAT holding the start of a
/// zlib stream (what a decompression bomb looks like), no IEND.
pub fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0xDA, 0xED, 0xC1, 0x01, 0x0D, 0x00, 0x00],
    );
    png
}

#[test]
fn png_declaring_too_many_pixels_is_refused_before_decoding() {
    let alloc = RecordingAlloc::default();
    let err = media_image::decode(
        &png_bomb(100_000, 100_000),
        &limits(),
        &alloc,
        &CopyLedger::new(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the image is 100000x100000 (10000000000 pixels), over the limit of 10000000 pixels"
    );
    assert!(alloc.ptrs.lock().unwrap().is_empty());
}
