//! DB (differentiable binarization) post-processing of the detector's probability map into
//! text boxes, following PaddleOCR's `DBPostProcess` with quad boxes.

use image::GrayImage;
use imageproc::contours::{find_contours, BorderType};
use imageproc::geometry::convex_hull;
use imageproc::point::Point;

use super::quad::{min_area_rect, Quad};

/// DB thresholds (PaddleOCR defaults).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DbOptions {
    /// Probability above which a map pixel is text.
    pub thresh: f32,
    /// Minimum mean probability inside a box to keep it.
    pub box_thresh: f32,
    /// How far boxes are grown: area × ratio / perimeter pixels on each side.
    pub unclip_ratio: f32,
    /// Boxes whose short side is below this (in map pixels) are dropped.
    pub min_size: f32,
    /// At most this many candidate regions are examined.
    pub max_candidates: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            thresh: 0.3,
            box_thresh: 0.6,
            unclip_ratio: 1.5,
            min_size: 3.0,
            max_candidates: 1000,
        }
    }
}

/// A probability map `[height, width]`, row-major with `stride` values per row (the map
/// may be the top-left corner of a larger, padded one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbMap<'a> {
    pub data: &'a [f32],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl ProbMap<'_> {
    /// Mean probability inside `quad` (PaddleOCR's `box_score_fast`).
    fn mean_inside(&self, quad: &Quad) -> f32 {
        let [x0, y0, x1, y1] = quad.bounds();
        let clamp = |v: f32, len: usize| (v.max(0.0) as usize).min(len.saturating_sub(1));
        let (x0, x1) = (clamp(x0.floor(), self.width), clamp(x1.ceil(), self.width));
        let (y0, y1) = (
            clamp(y0.floor(), self.height),
            clamp(y1.ceil(), self.height),
        );
        let (mut sum, mut count) = (0f32, 0usize);
        for y in y0..=y1 {
            for x in x0..=x1 {
                if quad.contains([x as f32, y as f32]) {
                    sum += self.data[y * self.stride + x];
                    count += 1;
                }
            }
        }
        if count == 0 {
            0.0
        } else {
            sum / count as f32
        }
    }
}

/// Text boxes in map coordinates, scaled to a `src_width × src_height` image.
pub(crate) fn boxes_from_map(
    map: &ProbMap<'_>,
    src_width: usize,
    src_height: usize,
    opts: &DbOptions,
) -> Vec<Quad> {
    let (Ok(w), Ok(h)) = (u32::try_from(map.width), u32::try_from(map.height)) else {
        return Vec::new();
    };
    let bitmap = GrayImage::from_fn(w, h, |x, y| {
        let p = map.data[y as usize * map.stride + x as usize];
        image::Luma([if p > opts.thresh { 255 } else { 0 }])
    });
    let scale_x = src_width as f32 / map.width as f32;
    let scale_y = src_height as f32 / map.height as f32;
    let max_x = src_width.saturating_sub(1) as f32;
    let max_y = src_height.saturating_sub(1) as f32;
    find_contours::<i32>(&bitmap)
        .into_iter()
        .filter(|c| c.border_type == BorderType::Outer)
        .take(opts.max_candidates)
        .filter_map(|contour| {
            let hull = hull_points(contour.points);
            let rect = min_area_rect(&hull)?;
            if rect.short_side() < opts.min_size {
                return None;
            }
            if map.mean_inside(&rect.quad()) < opts.box_thresh {
                return None;
            }
            let (area, perimeter) = rect.area_perimeter();
            let grown = rect.grow(area * opts.unclip_ratio / perimeter.max(1e-6));
            if grown.short_side() < opts.min_size + 2.0 {
                return None;
            }
            let quad = grown.quad().map(|[x, y]| {
                [
                    (x * scale_x).round().clamp(0.0, max_x),
                    (y * scale_y).round().clamp(0.0, max_y),
                ]
            });
            (quad.width() > 3.0 && quad.height() > 3.0).then_some(quad)
        })
        .collect()
}

/// Convex hull of contour pixels, as real points.
fn hull_points(points: Vec<Point<i32>>) -> Vec<[f32; 2]> {
    convex_hull(points)
        .into_iter()
        .map(|p| [p.x as f32, p.y as f32])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_blob_gives_one_grown_box() {
        let (w, h) = (64usize, 32usize);
        let mut data = vec![0f32; w * h];
        for y in 10..20 {
            for x in 8..50 {
                data[y * w + x] = 0.9;
            }
        }
        let map = ProbMap {
            data: &data,
            width: w,
            height: h,
            stride: w,
        };
        let boxes = boxes_from_map(&map, w * 2, h * 2, &DbOptions::default());
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let [x0, y0, x1, y1] = boxes[0].bounds();
        // The blob spans x 8..=49, y 10..=19 in the map; grown by ~3.6 px, then scaled ×2.
        assert!(
            x0 < 16.0 && x1 > 98.0 && y0 < 20.0 && y1 > 38.0,
            "{:?}",
            boxes[0]
        );
    }

    #[test]
    fn weak_or_empty_map_gives_nothing() {
        let data = vec![0.2f32; 32 * 32];
        let map = ProbMap {
            data: &data,
            width: 32,
            height: 32,
            stride: 32,
        };
        assert!(boxes_from_map(&map, 32, 32, &DbOptions::default()).is_empty());
    }
}
