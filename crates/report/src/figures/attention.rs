//! Attention: mean maps per mixture family (each panel on its own scale, with its colour
//! bar, since a 2-ion family's weights are about 1/2 and a 5-ion family's about 1/5), and
//! attention between ion pairs against their charge and Stokes-radius differences.

use super::pearson;
use super::style::{font, padded, panels, px, titled, Area, Figure, PALETTE};
use crate::collect::Attention;
use crate::error::draw;
use crate::error::Result;
use crate::names;
use ionode_physics::IonDb;
use ndarray::Array2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;

/// Per family: the species present and the mean attention matrix over that family's rows
/// (all seeds pooled). A species is present when its attention row or column is nonzero;
/// masked slots carry zeros.
pub type FamilyMap = (String, Vec<String>, Array2<f64>);

pub fn family_means(maps: &[Attention]) -> Vec<FamilyMap> {
    let mut sums: BTreeMap<String, (Vec<String>, Array2<f64>, usize)> = BTreeMap::new();
    for a in maps {
        let s = a.species.len();
        for (row, fam) in a.family.iter().enumerate() {
            let entry = sums
                .entry(fam.clone())
                .or_insert_with(|| (a.species.clone(), Array2::zeros((s, s)), 0));
            if entry.0 != a.species {
                continue; // a run with other slots cannot be pooled
            }
            entry.1 += &a.mean.index_axis(ndarray::Axis(0), row);
            entry.2 += 1;
        }
    }
    sums.into_iter()
        .filter(|(_, (_, _, n))| *n > 0)
        .map(|(fam, (species, sum, n))| {
            let mean = sum / n as f64;
            let keep: Vec<usize> = (0..species.len())
                .filter(|&i| mean.row(i).sum().abs() > 1e-12 || mean.column(i).sum().abs() > 1e-12)
                .collect();
            let keep = if keep.is_empty() {
                (0..species.len()).collect()
            } else {
                keep
            };
            let sub =
                Array2::from_shape_fn((keep.len(), keep.len()), |(i, j)| mean[[keep[i], keep[j]]]);
            (fam, keep.iter().map(|&i| species[i].clone()).collect(), sub)
        })
        .collect()
}

/// A sequential blue scale, t in [0, 1].
fn shade(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let m = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(m(247.0, 8.0), m(251.0, 48.0), m(255.0, 107.0))
}

pub struct Heat {
    title: String,
    families: Vec<FamilyMap>,
}

impl Heat {
    pub fn new(families: Vec<FamilyMap>, config: &str, syn: &str) -> Heat {
        Heat {
            title: format!(
                "Mean attention weight (query ion row → key ion column) per mixture family, [{config}]{syn}"
            ),
            families,
        }
    }
}

impl Figure for Heat {
    fn size(&self) -> (u32, u32) {
        let n = self.families.len().max(1);
        ((n.min(3) * 440) as u32, 50 + 380 * n.div_ceil(3) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = titled(root, &self.title, 16.0)?;
        let centred = |size: f64| font(size).pos(Pos::new(HPos::Center, VPos::Center));
        for (panel, (fam, species, m)) in panels(&area, self.families.len(), 3)
            .iter()
            .zip(&self.families)
        {
            let (w, h) = panel.dim_in_pixel();
            let s = species.len().max(1) as i32;
            let (left, top, right, bottom) = (px(64.0), px(40.0), px(80.0), px(40.0));
            let cell = ((w as i32 - left - right).min(h as i32 - top - bottom) / s).max(4);
            let vmax = m
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max)
                .max(1e-12);
            panel
                .draw(&Text::new(
                    names::formula(fam),
                    (left + s * cell / 2, top / 2),
                    centred(15.0),
                ))
                .map_err(draw)?;
            for i in 0..species.len() {
                for j in 0..species.len() {
                    let v = m[[i, j]];
                    let t = if v.is_finite() { v / vmax } else { 0.0 };
                    let (x0, y0) = (left + j as i32 * cell, top + i as i32 * cell);
                    panel
                        .draw(&Rectangle::new(
                            [(x0, y0), (x0 + cell, y0 + cell)],
                            shade(t).filled(),
                        ))
                        .map_err(draw)?;
                    if cell >= px(30.0) {
                        let ink = if t > 0.55 { WHITE } else { BLACK };
                        panel
                            .draw(&Text::new(
                                format!("{v:.2}"),
                                (x0 + cell / 2, y0 + cell / 2),
                                centred(11.5).color(&ink),
                            ))
                            .map_err(draw)?;
                    }
                }
                let label = names::ion(&species[i]);
                panel
                    .draw(&Text::new(
                        label.clone(),
                        (left / 2, top + i as i32 * cell + cell / 2),
                        centred(12.5),
                    ))
                    .map_err(draw)?;
                panel
                    .draw(&Text::new(
                        label,
                        (left + i as i32 * cell + cell / 2, top + s * cell + px(14.0)),
                        centred(12.5),
                    ))
                    .map_err(draw)?;
            }
            // The colour bar: 0 to the panel's largest weight.
            let (bx, by, bh) = (left + s * cell + px(18.0), top, s * cell);
            let steps = 40;
            for k in 0..steps {
                let t = 1.0 - k as f64 / steps as f64;
                let y0 = by + bh * k / steps;
                let y1 = by + bh * (k + 1) / steps;
                panel
                    .draw(&Rectangle::new(
                        [(bx, y0), (bx + px(14.0), y1)],
                        shade(t).filled(),
                    ))
                    .map_err(draw)?;
            }
            panel
                .draw(&Rectangle::new(
                    [(bx, by), (bx + px(14.0), by + bh)],
                    BLACK.mix(0.5),
                ))
                .map_err(draw)?;
            for (t, y) in [(1.0, by), (0.5, by + bh / 2), (0.0, by + bh)] {
                panel
                    .draw(&Text::new(
                        format!("{:.2}", t * vmax),
                        (bx + px(18.0), y),
                        font(11.0).pos(Pos::new(HPos::Left, VPos::Center)),
                    ))
                    .map_err(draw)?;
            }
        }
        Ok(())
    }
}

/// Attention between ion pairs against their charge and Stokes-radius differences.
pub struct Correlation {
    title: String,
    /// (|dz|, |dr| in Angstrom, attention)
    points: Vec<(f64, f64, f64)>,
}

impl Correlation {
    pub fn new(families: &[FamilyMap], config: &str, syn: &str) -> (Correlation, Vec<String>) {
        let db = IonDb::builtin();
        let mut unknown = Vec::new();
        let mut points = Vec::new();
        for (_, species, m) in families {
            let ions: Vec<Option<(f64, f64)>> = species
                .iter()
                .map(|s| match db.get(s) {
                    Ok(ion) => Some((ion.charge as f64, ion.stokes_radius_m * 1e10)),
                    Err(_) => {
                        if !unknown.contains(s) {
                            unknown.push(s.clone());
                        }
                        None
                    }
                })
                .collect();
            for i in 0..species.len() {
                for j in 0..species.len() {
                    if let (true, Some(a), Some(b)) = (i != j, ions[i], ions[j]) {
                        if m[[i, j]].is_finite() {
                            points.push(((a.0 - b.0).abs(), (a.1 - b.1).abs(), m[[i, j]]));
                        }
                    }
                }
            }
        }
        (
            Correlation {
                title: format!(
                    "Attention between ion pairs vs their differences (off-diagonal, family means), [{config}]{syn}"
                ),
                points,
            },
            unknown,
        )
    }
}

impl Figure for Correlation {
    fn size(&self) -> (u32, u32) {
        (1100, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = titled(root, &self.title, 16.0)?;
        let halves = area.split_evenly((1, 2));
        let y: Vec<f64> = self.points.iter().map(|p| p.2).collect();
        let (y0, y1) = padded(
            y.iter().copied().fold(f64::INFINITY, f64::min),
            y.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        let panels: [(&str, Vec<f64>); 2] = [
            (
                "charge difference |Δz|",
                self.points.iter().map(|p| p.0).collect(),
            ),
            (
                "Stokes-radius difference |Δr_s| (Å)",
                self.points.iter().map(|p| p.1).collect(),
            ),
        ];
        for (k, (panel, (name, x))) in halves.iter().zip(&panels).enumerate() {
            let r = pearson(x, &y);
            let r = if r.is_finite() {
                format!("Pearson r = {r:.3}")
            } else {
                "Pearson r = n/a".to_string()
            };
            let (x0, x1) = padded(
                x.iter().copied().fold(f64::INFINITY, f64::min),
                x.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            );
            // The same size for both subtitles.
            let caption = format!("vs {name}: {r} (n = {})", x.len());
            let mut chart = ChartBuilder::on(panel)
                .caption(&caption, font(14.0))
                .margin(px(10.0))
                .x_label_area_size(px(40.0))
                .y_label_area_size(px(56.0))
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(draw)?;
            let integer_x = x.iter().all(|v| (v - v.round()).abs() < 1e-9);
            chart
                .configure_mesh()
                .x_desc(*name)
                .y_desc("mean attention weight")
                .x_label_formatter(&|v| {
                    if !integer_x {
                        format!("{v:.1}")
                    } else if (v - v.round()).abs() < 1e-6 {
                        format!("{v:.0}")
                    } else {
                        String::new()
                    }
                })
                .label_style(font(12.0))
                .axis_desc_style(font(12.5))
                .light_line_style(TRANSPARENT)
                .bold_line_style(BLACK.mix(0.08))
                .draw()
                .map_err(draw)?;
            let c = PALETTE[k * 3];
            chart
                .draw_series(
                    x.iter()
                        .zip(&y)
                        .map(|(&a, &b)| Circle::new((a, b), px(4.0), c.mix(0.7).filled())),
                )
                .map_err(draw)?;
        }
        Ok(())
    }
}
