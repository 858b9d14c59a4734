//! Bilinear resampling of an RGB u8 image straight into a normalized, channel-planar f32
//! model input (one pass, one copy), with OpenCV's `INTER_LINEAR` pixel-centre convention
//! that PaddleOCR's models were trained with.

/// An interleaved RGB u8 image borrowed from a tensor or a crop buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RgbView<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
}

impl RgbView<'_> {
    /// Channel `c` of pixel (x, y); coordinates must be in range.
    #[inline]
    pub fn at(&self, x: usize, y: usize, c: usize) -> f32 {
        f32::from(self.pixels[(y * self.width + x) * 3 + c])
    }

    /// Bilinear sample at real coordinates, clamped to the border (replicate).
    #[inline]
    pub fn sample(&self, x: f32, y: f32, c: usize) -> f32 {
        let (x0, x1, fx) = taps(x, self.width);
        let (y0, y1, fy) = taps(y, self.height);
        let top = self.at(x0, y0, c) * (1.0 - fx) + self.at(x1, y0, c) * fx;
        let bottom = self.at(x0, y1, c) * (1.0 - fx) + self.at(x1, y1, c) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// Per-channel affine normalization `(v / 255 - mean) / std`, in model channel order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Normalize {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// Where the resized image goes: a plane-major `[3, plane_height, plane_width]` slot of
/// a batch; the image fills the top-left `width × height` corner, the rest is untouched.
#[derive(Debug)]
pub(crate) struct PlanarTarget<'a> {
    pub data: &'a mut [f32],
    pub plane_width: usize,
    pub plane_height: usize,
    pub width: usize,
    pub height: usize,
}

/// The two neighbouring source indices and the weight of the second, for a real coordinate.
#[inline]
fn taps(pos: f32, len: usize) -> (usize, usize, f32) {
    let max = len.saturating_sub(1) as f32;
    let pos = pos.clamp(0.0, max);
    let i0 = pos.floor();
    let frac = pos - i0;
    let i0 = i0 as usize;
    (i0, (i0 + 1).min(len.saturating_sub(1)), frac)
}

/// Source coordinate of each destination index along one axis (half-pixel centres).
fn axis_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst.max(1) as f32;
    (0..dst)
        .map(|d| taps((d as f32 + 0.5) * scale - 0.5, src))
        .collect()
}

/// Resizes `src` into `dst`, normalizing each value and writing channels in BGR order
/// (PaddleOCR models read OpenCV's BGR images).
pub(crate) fn resize_normalize_bgr(src: &RgbView<'_>, dst: PlanarTarget<'_>, norm: &Normalize) {
    if src.width == 0 || src.height == 0 {
        return;
    }
    let xs = axis_taps(src.width, dst.width);
    let ys = axis_taps(src.height, dst.height);
    let plane = dst.plane_width * dst.plane_height;
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * norm.std[c]));
    let offset: [f32; 3] = std::array::from_fn(|c| norm.mean[c] / norm.std[c]);
    let row_len = src.width * 3;
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        let top = &src.pixels[y0 * row_len..(y0 + 1) * row_len];
        let bottom = &src.pixels[y1 * row_len..(y1 + 1) * row_len];
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            for (model_c, src_c) in [2usize, 1, 0].into_iter().enumerate() {
                let lerp = |row: &[u8]| {
                    f32::from(row[x0 * 3 + src_c]) * (1.0 - fx)
                        + f32::from(row[x1 * 3 + src_c]) * fx
                };
                let value = lerp(top) * (1.0 - fy) + lerp(bottom) * fy;
                dst.data[model_c * plane + y * dst.plane_width + x] =
                    value * scale[model_c] - offset[model_c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_keeps_values_and_swaps_to_bgr() {
        let pixels = [255u8, 0, 0, 0, 255, 0];
        let src = RgbView {
            pixels: &pixels,
            width: 2,
            height: 1,
        };
        let mut out = vec![0f32; 6];
        let norm = Normalize {
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let target = PlanarTarget {
            data: &mut out,
            plane_width: 2,
            plane_height: 1,
            width: 2,
            height: 1,
        };
        resize_normalize_bgr(&src, target, &norm);
        // Plane 0 = blue, plane 1 = green, plane 2 = red.
        assert_eq!(out, vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn downscale_averages_neighbours() {
        let pixels = [0u8, 0, 0, 200, 200, 200];
        let src = RgbView {
            pixels: &pixels,
            width: 2,
            height: 1,
        };
        let mut out = vec![0f32; 3];
        let norm = Normalize {
            mean: [0.0; 3],
            std: [1.0 / 255.0; 3],
        };
        let target = PlanarTarget {
            data: &mut out,
            plane_width: 1,
            plane_height: 1,
            width: 1,
            height: 1,
        };
        resize_normalize_bgr(&src, target, &norm);
        assert!((out[0] - 100.0).abs() < 1e-3, "{out:?}");
    }
}
