//! Sorting text boxes top to bottom, then left to right within a row.

/// Indices of `bounds` (`[x0, y0, x1, y1]`) in reading order. A box joins the current row
/// when its vertical centre falls inside the row's vertical span so far.
pub(crate) fn reading_order(bounds: &[[f32; 4]]) -> Vec<usize> {
    let mut by_top: Vec<usize> = (0..bounds.len()).collect();
    by_top.sort_by(|&a, &b| {
        let ca = (bounds[a][1] + bounds[a][3]) / 2.0;
        let cb = (bounds[b][1] + bounds[b][3]) / 2.0;
        ca.total_cmp(&cb)
    });
    let mut order = Vec::with_capacity(bounds.len());
    let mut row: Vec<usize> = Vec::new();
    let mut row_bottom = 0f32;
    for i in by_top {
        let [_, y0, _, y1] = bounds[i];
        let centre = (y0 + y1) / 2.0;
        if !row.is_empty() && centre > row_bottom {
            flush(&mut row, &mut order, bounds);
        }
        if row.is_empty() {
            row_bottom = y1;
        } else {
            row_bottom = row_bottom.max(y1);
        }
        row.push(i);
    }
    flush(&mut row, &mut order, bounds);
    order
}

/// Appends the row sorted left to right and empties it.
fn flush(row: &mut Vec<usize>, order: &mut Vec<usize>, bounds: &[[f32; 4]]) {
    row.sort_by(|&a, &b| bounds[a][0].total_cmp(&bounds[b][0]));
    order.append(row);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_then_columns() {
        let bounds = [
            [100.0, 52.0, 150.0, 70.0], // row 2, right
            [0.0, 50.0, 50.0, 70.0],    // row 2, left
            [120.0, 0.0, 200.0, 22.0],  // row 1, right (slightly lower)
            [0.0, 2.0, 100.0, 20.0],    // row 1, left
        ];
        assert_eq!(reading_order(&bounds), vec![3, 2, 1, 0]);
    }
}
