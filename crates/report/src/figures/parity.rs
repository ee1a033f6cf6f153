//! Predicted against measured rejection, one panel per ion, with the panel's MAE. A
//! rejection above 1 would need a negative permeate: the band is shaded and predictions
//! there are counted in the panel title. An ensemble's predictions carry their intervals as
//! vertical bars, and each panel says how many measurements they cover.

use super::style::{font, ion_colour, padded, panels, px, tint, titled, width, Area, Figure};
use crate::collect::Predictions;
use crate::error::draw;
use crate::error::Result;
use crate::names;
use plotters::prelude::*;

struct Panel {
    /// Canonical ion name.
    ion: String,
    /// (measured, predicted)
    points: Vec<(f64, f64)>,
    /// The prediction intervals of the points (an ensemble's), `[lower, upper]` rejection.
    intervals: Vec<[f64; 2]>,
}

pub struct Parity {
    title: String,
    panels: Vec<Panel>,
}

impl Parity {
    pub fn new(p: &Predictions, what: &str) -> Parity {
        let mut panels: Vec<Panel> = Vec::new();
        for k in 0..p.len() {
            if p.part[k] != "test" {
                continue;
            }
            let (t, y) = (p.target_rejection[k], p.predicted_rejection[k]);
            if !t.is_finite() || !y.is_finite() {
                continue;
            }
            let i = match panels.iter().position(|q| q.ion == p.ion[k]) {
                Some(i) => i,
                None => {
                    panels.push(Panel {
                        ion: p.ion[k].clone(),
                        points: Vec::new(),
                        intervals: Vec::new(),
                    });
                    panels.len() - 1
                }
            };
            panels[i].points.push((t, y));
            if !p.rejection_lower.is_empty() {
                panels[i]
                    .intervals
                    .push([p.rejection_lower[k], p.rejection_upper[k]]);
            }
        }
        // Ions in the database's order (cations, then anions); unknown ones last.
        let db = ionode_physics::IonDb::builtin();
        let order = |ion: &str| {
            db.ions()
                .iter()
                .position(|i| i.name == ion)
                .unwrap_or(usize::MAX)
        };
        panels.sort_by_key(|q| (order(&q.ion), q.ion.clone()));
        Parity {
            title: format!("Predicted vs measured rejection of the test rows: {what}"),
            panels,
        }
    }
}

impl Panel {
    /// The share of points inside their interval (`None` without intervals).
    fn coverage(&self) -> Option<f64> {
        (!self.intervals.is_empty()).then(|| {
            let inside = self
                .points
                .iter()
                .zip(&self.intervals)
                .filter(|((t, _), [lo, hi])| lo <= t && t <= hi)
                .count();
            inside as f64 / self.points.len() as f64
        })
    }

    fn mae(&self) -> f64 {
        self.points.iter().map(|(t, y)| (t - y).abs()).sum::<f64>()
            / self.points.len().max(1) as f64
    }
}

impl Figure for Parity {
    fn size(&self) -> (u32, u32) {
        let n = self.panels.len().max(1);
        let cols = n.min(4) as u32;
        (cols * 330, 50 + 340 * n.div_ceil(4) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = titled(root, &self.title, 16.0)?;
        for (panel, q) in panels(&area, self.panels.len(), 4).iter().zip(&self.panels) {
            let bounds = q.intervals.iter().flatten().copied();
            let values = q.points.iter().flat_map(|p| [p.0, p.1]).chain(bounds);
            let lo = values.clone().fold(0.0, f64::min);
            let hi = values.fold(1.0, f64::max);
            let (lo, hi) = padded(lo, hi);
            let above = q.points.iter().filter(|p| p.1 > 1.0).count();
            let caption = format!(
                "{}: MAE {:.3} (n = {}){}",
                names::ion(&q.ion),
                q.mae(),
                q.points.len(),
                if above > 0 {
                    format!(", {above} above 1")
                } else {
                    String::new()
                }
            ) + &q
                .coverage()
                .map(|c| format!(", {:.0} % in intervals", 100.0 * c))
                .unwrap_or_default();
            let mut chart = ChartBuilder::on(panel)
                .caption(&caption, font(13.5))
                .margin(px(8.0))
                .x_label_area_size(px(38.0))
                .y_label_area_size(px(46.0))
                .build_cartesian_2d(lo..hi, lo..hi)
                .map_err(draw)?;
            chart
                .configure_mesh()
                .x_desc("measured rejection")
                .y_desc("predicted rejection")
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|v| format!("{v:.1}"))
                .y_label_formatter(&|v| format!("{v:.1}"))
                .label_style(font(11.5))
                .axis_desc_style(font(12.0))
                .light_line_style(TRANSPARENT)
                .bold_line_style(BLACK.mix(0.08))
                .draw()
                .map_err(draw)?;
            if hi > 1.0 {
                // Physically impossible predictions (negative permeate).
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(lo, 1.0), (hi, hi)],
                        RGBColor(213, 94, 0).mix(0.08).filled(),
                    )))
                    .map_err(draw)?;
            }
            chart
                .draw_series(LineSeries::new(
                    [(lo, lo), (hi, hi)],
                    BLACK.mix(0.5).stroke_width(width(1.0)),
                ))
                .map_err(draw)?;
            let c = ion_colour(&q.ion);
            chart
                .draw_series(q.points.iter().zip(&q.intervals).map(|(&(t, _), &[a, b])| {
                    PathElement::new(
                        vec![(t, a), (t, b)],
                        tint(c, 0.3).mix(0.45).stroke_width(width(1.2)),
                    )
                }))
                .map_err(draw)?;
            chart
                .draw_series(
                    q.points.iter().map(|&(t, y)| {
                        Circle::new((t, y), px(3.0), tint(c, 0.15).mix(0.85).filled())
                    }),
                )
                .map_err(draw)?;
        }
        Ok(())
    }
}
