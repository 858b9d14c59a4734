//! Images: PNG, JPEG and WebP decoded to RGB8 `[H, W, 3]` in a tensor from the caller's
//! allocator. The dimensions are read from the header and checked against the pixel limit
//! before any pixel is decoded (decompression bombs never allocate).
//!
//! Colour handling: grey is replicated to R, G and B; alpha is dropped without compositing
//! (as Pillow's `convert("RGB")` does); 16-bit and float images are scaled to 8 bits.

use std::io::{Cursor, ErrorKind};

use ::image::{
    ColorType, DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits,
};
use switchyard_core::{BufferAlloc, CopyLedger, Tensor};
use tracing::{debug, info_span};

use crate::MediaError;

/// Limits applied to an image upload before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest accepted upload, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width × height, read from the header before decoding.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    /// 20 MB and 40 megapixels.
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

/// A decoded image.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// RGB8 pixels, u8 `[height, width, 3]`, in a buffer from the caller's allocator.
    pub pixels: Tensor,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Ico => "ICO",
        ImageFormat::Avif => "AVIF",
        ImageFormat::Hdr => "HDR",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Qoi => "QOI",
        _ => "this format",
    }
}

fn map_error(format: &'static str, err: ImageError) -> MediaError {
    match err {
        ImageError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => MediaError::Truncated {
            format,
            detail: "the file ends before the image data does".into(),
        },
        ImageError::Unsupported(e) => MediaError::Unsupported {
            format,
            detail: e.to_string(),
        },
        other => {
            let detail = other.to_string();
            if detail.to_ascii_lowercase().contains("eof") {
                MediaError::Truncated { format, detail }
            } else {
                MediaError::Corrupt { format, detail }
            }
        }
    }
}

/// Decodes a PNG, JPEG or WebP upload into RGB8 pixels written into a u8 `[H, W, 3]` tensor
/// from `alloc`. The format is guessed from the bytes; the header's dimensions are checked
/// against `limits.max_pixels` before decoding. Copies recorded on `ledger` (`decode`): the
/// RGB pixels written into the tensor, plus the decoder's native buffer when the image is not
/// already 8-bit RGB (grey, alpha, 16-bit).
pub fn decode(
    bytes: &[u8],
    limits: &ImageLimits,
    alloc: &dyn BufferAlloc,
    ledger: &CopyLedger,
) -> Result<DecodedImage, MediaError> {
    let span = info_span!("media.image.decode", bytes = bytes.len());
    let _guard = span.enter();
    if bytes.is_empty() {
        return Err(MediaError::Empty { kind: "image" });
    }
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::TooLarge {
            kind: "image",
            bytes: bytes.len(),
            max_bytes: limits.max_bytes,
        });
    }
    let format =
        ::image::guess_format(bytes).map_err(|_| MediaError::NotAnImage { found: None })?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP
    ) {
        return Err(MediaError::NotAnImage {
            found: Some(format_name(format)),
        });
    }
    let name = format_name(format);
    // A PNG's IHDR is at a fixed place: refuse oversized ones before any decoder runs.
    if let (ImageFormat::Png, Some(ihdr)) = (format, bytes.get(12..24)) {
        if &ihdr[..4] == b"IHDR" {
            let width = u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]);
            let height = u32::from_be_bytes([ihdr[8], ihdr[9], ihdr[10], ihdr[11]]);
            check_pixels(width, height, limits)?;
        }
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Our own pixel limit is checked below, with a clear message; the decoder's allocation
    // limit then bounds its working memory to what that many pixels need.
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(|e| map_error(name, e))?;
    let (width, height) = decoder.dimensions();
    let pixels = check_pixels(width, height, limits)?;
    if pixels == 0 {
        return Err(MediaError::Corrupt {
            format: name,
            detail: format!("the header declares a {width}x{height} image"),
        });
    }
    let mut decoder_limits = Limits::no_limits();
    decoder_limits.max_alloc = Some(pixels.saturating_mul(16).saturating_add(64 << 20));
    decoder
        .set_limits(decoder_limits)
        .map_err(|e| map_error(name, e))?;
    let (h, w) = (height as usize, width as usize);
    let color = decoder.color_type();
    let mut failure = None;
    let tensor = if color == ColorType::Rgb8 {
        Tensor::build::<u8>(alloc, &[h, w, 3], |out| {
            failure = decoder.read_image(out).err();
        })?
    } else {
        let native = DynamicImage::from_decoder(decoder).map_err(|e| map_error(name, e))?;
        ledger.record("decode", native.as_bytes().len());
        Tensor::build::<u8>(alloc, &[h, w, 3], |out| to_rgb(&native, out))?
    };
    if let Some(e) = failure {
        return Err(map_error(name, e));
    }
    ledger.record("decode", tensor.nbytes());
    debug!(format = name, width, height, ?color, "decoded image");
    Ok(DecodedImage {
        pixels: tensor,
        width,
        height,
        format: name.to_ascii_lowercase(),
    })
}

/// `width × height`, or [`MediaError::TooManyPixels`] over the limit.
fn check_pixels(width: u32, height: u32, limits: &ImageLimits) -> Result<u64, MediaError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(MediaError::TooManyPixels {
            width,
            height,
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(pixels)
}

/// Writes `image` as RGB8 into `out` (`width × height × 3` bytes).
fn to_rgb(image: &DynamicImage, out: &mut [u8]) {
    match image {
        DynamicImage::ImageLuma8(gray) => {
            for (px, g) in out.chunks_exact_mut(3).zip(gray.as_raw()) {
                px.fill(*g);
            }
        }
        DynamicImage::ImageLumaA8(gray) => {
            for (px, ga) in out.chunks_exact_mut(3).zip(gray.as_raw().chunks_exact(2)) {
                px.fill(ga[0]);
            }
        }
        DynamicImage::ImageRgba8(rgba) => {
            for (px, c) in out.chunks_exact_mut(3).zip(rgba.as_raw().chunks_exact(4)) {
                px.copy_from_slice(&c[..3]);
            }
        }
        other => {
            let rgb = other.to_rgb8();
            out.copy_from_slice(rgb.as_raw());
        }
    }
}
