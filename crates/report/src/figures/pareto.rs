//! A search's Pareto front: every finished candidate by its first two objectives, the
//! front's members marked (and, with exactly two objectives, joined in order of the first).

use super::style::{font, px, width, Area, Figure};
use crate::error::{draw, Result};
use ionode_study::manifest::search_spec::Direction;
use plotters::prelude::*;

pub struct Pareto {
    x_name: String,
    y_name: String,
    /// (x, y, on the front).
    points: Vec<(f64, f64, bool)>,
    /// Objectives beyond the two drawn (named in the caption).
    more: usize,
}

impl Pareto {
    /// `points`: each candidate's objective values and whether it is on the front.
    pub fn new(names: &[String], _directions: &[Direction], points: &[(Vec<f64>, bool)]) -> Pareto {
        Pareto {
            x_name: names.first().cloned().unwrap_or_default(),
            y_name: names.get(1).cloned().unwrap_or_default(),
            points: points
                .iter()
                .filter(|(v, _)| v.len() >= 2)
                .map(|(v, f)| (v[0], v[1], *f))
                .collect(),
            more: names.len().saturating_sub(2),
        }
    }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-9 + lo.abs() * 1e-3);
    (lo - pad, hi + pad)
}

impl Figure for Pareto {
    fn size(&self) -> (u32, u32) {
        (560, 440)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let (x0, x1) = range(self.points.iter().map(|p| p.0));
        let (y0, y1) = range(self.points.iter().map(|p| p.1));
        let front = self.points.iter().filter(|p| p.2).count();
        let caption = if self.more > 0 {
            format!(
                "Pareto front: {front} of {} candidates (first two of {} objectives)",
                self.points.len(),
                self.more + 2
            )
        } else {
            format!("Pareto front: {front} of {} candidates", self.points.len())
        };
        let mut chart = ChartBuilder::on(root)
            .caption(caption, font(15.0))
            .margin(px(10.0))
            .x_label_area_size(px(36.0))
            .y_label_area_size(px(60.0))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .x_max_light_lines(0)
            .y_max_light_lines(0)
            .x_desc(self.x_name.as_str())
            .y_desc(self.y_name.as_str())
            .label_style(font(12.0))
            .draw()
            .map_err(draw)?;
        let grey = RGBColor(0x99, 0x99, 0x99);
        let red = RGBColor(0xc0, 0x39, 0x2b);
        chart
            .draw_series(
                self.points
                    .iter()
                    .filter(|p| !p.2)
                    .map(|p| Circle::new((p.0, p.1), px(3.0), grey.filled())),
            )
            .map_err(draw)?;
        let mut on: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter(|p| p.2)
            .map(|p| (p.0, p.1))
            .collect();
        on.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        if self.more == 0 {
            chart
                .draw_series(LineSeries::new(on.clone(), red.stroke_width(width(1.5))))
                .map_err(draw)?;
        }
        chart
            .draw_series(on.iter().map(|&p| Circle::new(p, px(4.5), red.filled())))
            .map_err(draw)?;
        Ok(())
    }
}
