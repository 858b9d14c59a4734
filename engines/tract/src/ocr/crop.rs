//! Cutting a (possibly rotated) text box out of the source image, upright, as PaddleOCR's
//! `get_rotate_crop_image` does (perspective warp; tall boxes are turned a quarter left).

use imageproc::geometric_transformations::Projection;

use super::quad::Quad;
use super::resize::RgbView;

/// An owned RGB crop.
#[derive(Debug, Clone)]
pub(crate) struct Crop {
    pub pixels: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

impl Crop {
    /// A borrowed view for resampling.
    pub fn view(&self) -> RgbView<'_> {
        RgbView {
            pixels: &self.pixels,
            width: self.width,
            height: self.height,
        }
    }
}

/// The upright crop of `quad` from `src`; `None` for a degenerate box.
pub(crate) fn crop_quad(src: &RgbView<'_>, quad: &Quad) -> Option<Crop> {
    let w = quad.width() as usize;
    let h = quad.height() as usize;
    if w == 0 || h == 0 {
        return None;
    }
    let (wf, hf) = (w as f32, h as f32);
    let to_src = Projection::from_control_points(
        [(0.0, 0.0), (wf, 0.0), (wf, hf), (0.0, hf)],
        quad.0.map(|[x, y]| (x, y)),
    )?;
    let rotate = h as f32 / w as f32 >= 1.5;
    let (out_w, out_h) = if rotate { (h, w) } else { (w, h) };
    let mut pixels = vec![0u8; out_w * out_h * 3];
    for y in 0..out_h {
        for x in 0..out_w {
            // np.rot90: output (x, y) shows crop pixel (w - 1 - y, x).
            let (cx, cy) = if rotate {
                ((w - 1 - y) as f32, x as f32)
            } else {
                (x as f32, y as f32)
            };
            let (sx, sy) = to_src * (cx, cy);
            let at = (y * out_w + x) * 3;
            for c in 0..3 {
                pixels[at + c] = src.sample(sx, sy, c).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Some(Crop {
        pixels,
        width: out_w,
        height: out_h,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_aligned_crop_copies_the_region() {
        // 4x2 image, pixel value = x * 10 + y.
        let pixels: Vec<u8> = (0..2)
            .flat_map(|y| (0..4).flat_map(move |x| [x * 10 + y; 3]))
            .collect();
        let src = RgbView {
            pixels: &pixels,
            width: 4,
            height: 2,
        };
        let quad = Quad([[1.0, 0.0], [3.0, 0.0], [3.0, 1.0], [1.0, 1.0]]);
        let crop = crop_quad(&src, &quad).unwrap_or_else(|| panic!("no crop"));
        assert_eq!((crop.width, crop.height), (2, 1));
        assert_eq!(crop.pixels, vec![10, 10, 10, 20, 20, 20]);
    }
}
