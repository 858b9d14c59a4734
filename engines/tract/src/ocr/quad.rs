//! Rotated text boxes: minimum-area rectangles, their corner order and growth.

/// A point in pixels.
pub(crate) type Pt = [f32; 2];

/// Four corners, ordered top-left, top-right, bottom-right, bottom-left (PaddleOCR's order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quad(pub [Pt; 4]);

fn dist(a: Pt, b: Pt) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

impl Quad {
    /// Orders four corners the way PaddleOCR's `get_mini_boxes` does: the two leftmost
    /// points give top-left / bottom-left, the two rightmost top-right / bottom-right.
    pub fn from_corners(mut pts: [Pt; 4]) -> Self {
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let (tl, bl) = if pts[1][1] > pts[0][1] {
            (pts[0], pts[1])
        } else {
            (pts[1], pts[0])
        };
        let (tr, br) = if pts[3][1] > pts[2][1] {
            (pts[2], pts[3])
        } else {
            (pts[3], pts[2])
        };
        Self([tl, tr, br, bl])
    }

    /// Length of the top / bottom edges (the longer of the two).
    pub fn width(&self) -> f32 {
        let p = &self.0;
        dist(p[0], p[1]).max(dist(p[2], p[3]))
    }

    /// Length of the left / right edges (the longer of the two).
    pub fn height(&self) -> f32 {
        let p = &self.0;
        dist(p[0], p[3]).max(dist(p[1], p[2]))
    }

    /// Axis-aligned bounds `[x0, y0, x1, y1]`.
    pub fn bounds(&self) -> [f32; 4] {
        let xs = self.0.map(|p| p[0]);
        let ys = self.0.map(|p| p[1]);
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        [min(xs), min(ys), max(xs), max(ys)]
    }

    /// Whether `p` lies inside (or within half a pixel of) the convex quad.
    pub fn contains(&self, p: Pt) -> bool {
        let mut sign = 0.0f32;
        for i in 0..4 {
            let a = self.0[i];
            let b = self.0[(i + 1) % 4];
            let len = dist(a, b).max(1e-6);
            // Signed distance of p from edge a→b.
            let cross = ((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])) / len;
            if cross.abs() <= 0.5 {
                continue;
            }
            if sign == 0.0 {
                sign = cross.signum();
            } else if cross.signum() != sign {
                return false;
            }
        }
        true
    }

    /// Applies `f` to every corner.
    pub fn map(&self, f: impl Fn(Pt) -> Pt) -> Self {
        Self(self.0.map(f))
    }
}

/// A rotated rectangle: centre, unit axes and half extents along them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RotatedRect {
    pub center: Pt,
    pub axis_u: Pt,
    pub half_u: f32,
    pub half_v: f32,
}

impl RotatedRect {
    /// The shorter side.
    pub fn short_side(&self) -> f32 {
        2.0 * self.half_u.min(self.half_v)
    }

    /// Grows every side outwards by `d` (PaddleOCR's "unclip" of a rectangle: the polygon
    /// offset by `d` with round joins has exactly this minimum-area rectangle).
    pub fn grow(&self, d: f32) -> Self {
        Self {
            half_u: self.half_u + d,
            half_v: self.half_v + d,
            ..*self
        }
    }

    /// Area and perimeter.
    pub fn area_perimeter(&self) -> (f32, f32) {
        let (w, h) = (2.0 * self.half_u, 2.0 * self.half_v);
        (w * h, 2.0 * (w + h))
    }

    /// The corners, ordered.
    pub fn quad(&self) -> Quad {
        let [ux, uy] = self.axis_u;
        let (vx, vy) = (-uy, ux);
        let c = self.center;
        let corner = |su: f32, sv: f32| {
            [
                c[0] + su * self.half_u * ux + sv * self.half_v * vx,
                c[1] + su * self.half_u * uy + sv * self.half_v * vy,
            ]
        };
        Quad::from_corners([
            corner(-1.0, -1.0),
            corner(1.0, -1.0),
            corner(1.0, 1.0),
            corner(-1.0, 1.0),
        ])
    }
}

/// Minimum-area enclosing rectangle of a convex hull (rotating calipers over hull edges).
/// `None` for an empty hull.
pub(crate) fn min_area_rect(hull: &[Pt]) -> Option<RotatedRect> {
    let first = *hull.first()?;
    if hull.len() < 3 {
        let last = *hull.last()?;
        let len = dist(first, last);
        let axis_u = if len > 0.0 {
            [(last[0] - first[0]) / len, (last[1] - first[1]) / len]
        } else {
            [1.0, 0.0]
        };
        return Some(RotatedRect {
            center: [(first[0] + last[0]) / 2.0, (first[1] + last[1]) / 2.0],
            axis_u,
            half_u: len / 2.0,
            half_v: 0.0,
        });
    }
    let mut best: Option<(f32, RotatedRect)> = None;
    for i in 0..hull.len() {
        let a = hull[i];
        let b = hull[(i + 1) % hull.len()];
        let len = dist(a, b);
        if len <= 0.0 {
            continue;
        }
        let u = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
        let v = [-u[1], u[0]];
        let (mut u0, mut u1, mut v0, mut v1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in hull {
            let pu = p[0] * u[0] + p[1] * u[1];
            let pv = p[0] * v[0] + p[1] * v[1];
            (u0, u1, v0, v1) = (u0.min(pu), u1.max(pu), v0.min(pv), v1.max(pv));
        }
        let area = (u1 - u0) * (v1 - v0);
        if best.as_ref().is_some_and(|(a, _)| *a <= area) {
            continue;
        }
        let (cu, cv) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
        let rect = RotatedRect {
            center: [cu * u[0] + cv * v[0], cu * u[1] + cv * v[1]],
            axis_u: u,
            half_u: (u1 - u0) / 2.0,
            half_v: (v1 - v0) / 2.0,
        };
        best = Some((area, rect));
    }
    best.map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_aligned_rectangle() {
        let hull = [[0.0, 0.0], [10.0, 0.0], [10.0, 4.0], [0.0, 4.0]];
        let rect = min_area_rect(&hull).unwrap_or_else(|| panic!("no rect"));
        assert!((rect.short_side() - 4.0).abs() < 1e-4);
        let q = rect.quad();
        assert_eq!(q.bounds(), [0.0, 0.0, 10.0, 4.0]);
        assert!(
            (q.0[0][0]).abs() < 1e-4 && (q.0[0][1]).abs() < 1e-4,
            "{q:?}"
        );
        assert!(q.contains([5.0, 2.0]));
        assert!(!q.contains([12.0, 2.0]));
        let grown = rect.grow(1.0).quad();
        assert_eq!(grown.bounds(), [-1.0, -1.0, 11.0, 5.0]);
    }

    #[test]
    fn rotated_square_is_found() {
        let hull = [[5.0, 0.0], [10.0, 5.0], [5.0, 10.0], [0.0, 5.0]];
        let rect = min_area_rect(&hull).unwrap_or_else(|| panic!("no rect"));
        let (area, _) = rect.area_perimeter();
        assert!((area - 50.0).abs() < 1e-3, "{area}");
    }
}
