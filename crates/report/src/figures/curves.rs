//! Learning curves: training and validation loss per epoch of every seed of one
//! configuration, one panel per stage, on a log axis labelled only at round values.

use super::style::{draw_log_y, font, panels, px, titled, width, Area, Figure, PALETTE};
use crate::collect::Study;
use crate::error::draw;
use crate::error::Result;
use crate::Group;
use plotters::prelude::*;

/// One seed's (train, validation) losses by epoch, and its kept (best) epoch.
type SeedCurve = (Vec<f64>, Vec<f64>, usize);

pub struct Curves {
    title: String,
    /// stage -> curves per seed
    stages: Vec<(String, Vec<SeedCurve>)>,
}

impl Curves {
    pub fn new(study: &Study, g: &Group, label: &str, syn: &str) -> Curves {
        let mut stages: Vec<(String, Vec<SeedCurve>)> = Vec::new();
        for &i in &g.runs {
            for c in &study.runs[i].record.curves {
                let name = match c.stage.as_str() {
                    "pretrain" => "pre-training (DSPM-DE simulations)",
                    _ => "fine-tuning (measured data)",
                }
                .to_string();
                let curve = (
                    c.train_loss.clone(),
                    c.validation_loss.clone(),
                    c.best_epoch,
                );
                match stages.iter_mut().find(|(s, _)| *s == name) {
                    Some((_, v)) => v.push(curve),
                    None => stages.push((name, vec![curve])),
                }
            }
        }
        // Pre-training first, as it happens.
        stages.sort_by_key(|(s, _)| !s.starts_with("pre"));
        Curves {
            title: format!("Learning curves, [{label}], {} run(s){syn}", g.runs.len()),
            stages,
        }
    }
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        (520 * self.stages.len().max(1) as u32 + 40, 470)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = titled(root, &self.title, 17.0)?;
        for (panel, (stage, runs)) in panels(&area, self.stages.len(), 4).iter().zip(&self.stages) {
            let values = runs
                .iter()
                .flat_map(|(t, v, _)| t.iter().chain(v))
                .copied()
                .filter(|x| x.is_finite() && *x > 0.0);
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
                (a.0.min(v), a.1.max(v))
            });
            let (lo, hi) = if lo.is_finite() && hi > lo {
                (lo / 1.25, hi * 1.25)
            } else if lo.is_finite() {
                (lo / 2.0, lo * 2.0)
            } else {
                (1e-3, 1.0)
            };
            let epochs = runs
                .iter()
                .map(|(t, v, _)| t.len().max(v.len()))
                .max()
                .unwrap_or(1)
                .max(2);
            let step = nice_step(epochs);
            let mut chart = ChartBuilder::on(panel)
                .caption(stage, font(15.0))
                .margin(px(10.0))
                .x_label_area_size(px(40.0))
                .y_label_area_size(px(62.0))
                .build_cartesian_2d(0f64..(epochs - 1) as f64, (lo..hi).log_scale())
                .map_err(draw)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("loss")
                .x_labels(epochs.min(60))
                .x_label_formatter(&|v| {
                    let e = v.round();
                    if (v - e).abs() < 1e-6 && (e as usize).is_multiple_of(step) {
                        format!("{e:.0}")
                    } else {
                        String::new()
                    }
                })
                .y_labels(0)
                .y_label_formatter(&|_| String::new())
                .label_style(font(12.0))
                .axis_desc_style(font(13.0))
                .light_line_style(TRANSPARENT)
                .bold_line_style(TRANSPARENT)
                .draw()
                .map_err(draw)?;
            draw_log_y(&mut chart, panel, (0.0, (epochs - 1) as f64), (lo, hi))?;
            let (train_c, val_c) = (PALETTE[0], PALETTE[3]);
            for (k, (train, val, best)) in runs.iter().enumerate() {
                for (series, c, name) in [(train, train_c, "training"), (val, val_c, "validation")]
                {
                    let pts: Vec<(f64, f64)> = series
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite() && **v > 0.0)
                        .map(|(e, v)| (e as f64, *v))
                        .collect();
                    let s = chart
                        .draw_series(LineSeries::new(pts, c.mix(0.75).stroke_width(width(1.5))))
                        .map_err(draw)?;
                    if k == 0 {
                        s.label(name).legend(move |(x, y)| {
                            PathElement::new(
                                vec![(x, y), (x + px(20.0), y)],
                                c.stroke_width(width(2.0)),
                            )
                        });
                    }
                }
                if let Some(&v) = val.get(*best).filter(|v| v.is_finite() && **v > 0.0) {
                    let s = chart
                        .draw_series(std::iter::once(Circle::new(
                            (*best as f64, v),
                            px(3.5),
                            val_c.filled(),
                        )))
                        .map_err(draw)?;
                    if k == 0 {
                        s.label("kept epoch (lowest validation loss)")
                            .legend(move |(x, y)| {
                                Circle::new((x + px(10.0), y), px(3.5), val_c.filled())
                            });
                    }
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .legend_area_size(px(30.0))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(font(12.0))
                .draw()
                .map_err(draw)?;
        }
        Ok(())
    }
}

/// An epoch label step giving at most about eight labels: 1, 2, 5, 10, 20, 50, ...
fn nice_step(epochs: usize) -> usize {
    let mut step = 1;
    for s in [
        1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000,
    ] {
        step = s;
        if epochs / s <= 8 {
            break;
        }
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_labels_are_few_and_round() {
        assert_eq!(nice_step(5), 1);
        assert_eq!(nice_step(12), 2);
        assert_eq!(nice_step(150), 20);
    }
}
