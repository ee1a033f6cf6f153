//! Grouped ablation bars: one panel per setting, a group per model, a bar per constraint
//! and pre-training, every encoding named in the legend.

use super::style::{constraint_colour, font, panels, px, tint, titled, width, Area, Figure};
use crate::error::draw;
use crate::error::Result;
use crate::roles::pretty;
use crate::scores::Scores;
use crate::Group;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

struct Bar {
    constraint: Option<String>,
    pretrained: bool,
    mean: f64,
    std: f64,
    /// Best of its panel and significantly better than the runner-up.
    star: bool,
}

struct Panel {
    setting: String,
    /// (model, bars) in table order.
    models: Vec<(String, Vec<Bar>)>,
    seeds: usize,
}

pub struct Bars {
    title: String,
    panels: Vec<Panel>,
    /// The constraints present (for the legend), in order.
    constraints: Vec<Option<String>>,
    any_scratch: bool,
}

impl Bars {
    pub fn new(groups: &[Group], scores: &Scores, syn: &str) -> Option<Bars> {
        let mut settings: Vec<((u8, u64), String)> = groups
            .iter()
            .map(|g| (g.roles.setting_order, g.roles.setting.clone()))
            .collect();
        settings.sort();
        settings.dedup();
        let mut panels = Vec::new();
        let mut constraints: Vec<Option<String>> = Vec::new();
        let mut any_scratch = false;
        for (_, setting) in settings {
            let here: Vec<&Group> = groups
                .iter()
                .filter(|g| g.roles.setting == setting)
                .filter(|g| scores.get(&g.roles.cell).is_some())
                .collect();
            if here.is_empty() {
                continue;
            }
            // The panel's best, starred when the paired t-test says it beats the runner-up.
            let mut ranked: Vec<&Group> = here.clone();
            ranked.sort_by(|a, b| {
                let m = |g: &Group| scores.get(&g.roles.cell).map_or(f64::INFINITY, |s| s.mean);
                m(a).total_cmp(&m(b))
            });
            let star = match ranked.as_slice() {
                [a, b, ..] => scores
                    .paired(&a.roles.cell, &b.roles.cell)
                    .filter(|p| p.significant() && p.mean_diff < 0.0)
                    .map(|_| a.roles.cell.clone()),
                _ => None,
            };
            let mut models: Vec<(String, Vec<Bar>)> = Vec::new();
            let mut seeds = 0;
            for g in here {
                let s = scores.get(&g.roles.cell).expect("filtered above");
                seeds = seeds.max(s.n);
                if !constraints.contains(&g.roles.constraint) {
                    constraints.push(g.roles.constraint.clone());
                }
                any_scratch |= !g.roles.pretrained && g.roles.model != "dspmde_fit";
                let bar = Bar {
                    constraint: g.roles.constraint.clone(),
                    pretrained: g.roles.pretrained,
                    mean: s.mean,
                    std: s.std,
                    star: star.as_deref() == Some(g.roles.cell.as_str()),
                };
                let mut model = pretty(&g.roles.model);
                for (_, v) in &g.roles.extra {
                    model.push_str(&format!(", {v}"));
                }
                match models.iter_mut().find(|(m, _)| *m == model) {
                    Some((_, bars)) => bars.push(bar),
                    None => models.push((model, vec![bar])),
                }
            }
            panels.push(Panel {
                setting,
                models,
                seeds,
            });
        }
        if panels.is_empty() {
            return None;
        }
        constraints.sort_by_key(|c| match c.as_deref() {
            Some("hard") => 0,
            Some("none") => 2,
            Some(_) => 1,
            None => 3,
        });
        Some(Bars {
            title: format!(
                "Test rejection MAE of every configuration (mean ± 1 std over seeds){syn}"
            ),
            panels,
            constraints,
            any_scratch,
        })
    }

    fn cols(&self) -> usize {
        self.panels.len().min(3)
    }

    fn panel_width(&self) -> u32 {
        let bars = self
            .panels
            .iter()
            .map(|p| p.models.iter().map(|(_, b)| b.len() + 1).sum::<usize>())
            .max()
            .unwrap_or(4);
        (90 + 26 * bars as u32).clamp(340, 900)
    }
}

impl Figure for Bars {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.cols()) as u32;
        (
            (self.panel_width() * self.cols() as u32).max(1040),
            50 + 400 * rows + 110,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = titled(root, &self.title, 19.0)?;
        let (_, h) = area.dim_in_pixel();
        let (plots, legend) = area.split_vertically(h - px(110.0) as u32);
        for (panel, p) in panels(&plots, self.panels.len(), self.cols())
            .iter()
            .zip(&self.panels)
        {
            self.draw_panel(panel, p)?;
        }
        self.draw_legend(&legend)
    }
}

impl Bars {
    fn draw_panel<DB: DrawingBackend>(&self, area: &Area<DB>, p: &Panel) -> Result<()> {
        // One scale for every panel, so settings compare by eye.
        let hi = self
            .panels
            .iter()
            .flat_map(|p| p.models.iter())
            .flat_map(|(_, b)| b.iter())
            .map(|b| b.mean + if b.std.is_finite() { b.std } else { 0.0 })
            .fold(0.0, f64::max)
            * 1.18;
        let hi = if hi > 0.0 { hi } else { 1.0 };
        let n = p.models.len() as f64;
        let caption = format!("{} ({} seeds)", p.setting, p.seeds);
        let mut chart = ChartBuilder::on(area)
            .caption(&caption, font(15.0))
            .margin(px(10.0))
            .x_label_area_size(px(46.0))
            .y_label_area_size(px(58.0))
            .build_cartesian_2d(0f64..n, 0f64..hi)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(6)
            .y_desc("test MAE (rejection)")
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style(font(12.0))
            .axis_desc_style(font(13.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(draw)?;
        // One bar width for the panel (the widest group's), each group centred.
        let widest = p.models.iter().map(|(_, b)| b.len()).max().unwrap_or(1) as f64;
        let slot = 0.8 / widest;
        for (i, (model, bars)) in p.models.iter().enumerate() {
            let k = bars.len() as f64;
            let start = i as f64 + 0.5 - slot * k / 2.0;
            for (j, b) in bars.iter().enumerate() {
                let x0 = start + slot * j as f64;
                let x1 = x0 + slot * 0.88;
                let c = constraint_colour(b.constraint.as_deref());
                let fill = if b.pretrained || b.constraint.is_none() {
                    c
                } else {
                    tint(c, 0.62)
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x1, b.mean)],
                        fill.filled(),
                    )))
                    .map_err(draw)?;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x1, b.mean)],
                        c.stroke_width(width(1.0)),
                    )))
                    .map_err(draw)?;
                let xm = (x0 + x1) / 2.0;
                if b.std.is_finite() && b.std > 0.0 {
                    let style = BLACK.stroke_width(width(1.2));
                    let (lo, up) = ((b.mean - b.std).max(0.0), b.mean + b.std);
                    let cap = slot * 0.2;
                    chart
                        .draw_series([
                            PathElement::new(vec![(xm, lo), (xm, up)], style),
                            PathElement::new(vec![(xm - cap, up), (xm + cap, up)], style),
                            PathElement::new(vec![(xm - cap, lo), (xm + cap, lo)], style),
                        ])
                        .map_err(draw)?;
                }
                if b.star {
                    let top = b.mean + if b.std.is_finite() { b.std } else { 0.0 };
                    let at = chart.backend_coord(&(xm, top));
                    area.draw(&Text::new(
                        "★",
                        (
                            at.0 - area.get_base_pixel().0,
                            at.1 - area.get_base_pixel().1 - px(4.0),
                        ),
                        font(14.0).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    ))
                    .map_err(draw)?;
                }
            }
            let at = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            let base = area.get_base_pixel();
            area.draw(&Text::new(
                model.clone(),
                (at.0 - base.0, at.1 - base.1 + px(8.0)),
                font(12.5).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(draw)?;
        }
        Ok(())
    }

    fn draw_legend<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<()> {
        let mut x = px(16.0);
        let row = |k: i32| px(18.0) + k * px(26.0);
        let swatch = |area: &Area<DB>, x: i32, y: i32, fill: RGBColor, edge: RGBColor| {
            area.draw(&Rectangle::new(
                [(x, y - px(7.0)), (x + px(22.0), y + px(7.0))],
                fill.filled(),
            ))
            .and_then(|_| {
                area.draw(&Rectangle::new(
                    [(x, y - px(7.0)), (x + px(22.0), y + px(7.0))],
                    edge.stroke_width(width(1.0)),
                ))
            })
            .map_err(draw)
        };
        let text = |area: &Area<DB>, s: &str, x: i32, y: i32| {
            area.draw(&Text::new(
                s.to_string(),
                (x, y),
                font(12.5).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(draw)
        };
        text(area, "colour: electroneutrality constraint", x, row(0))?;
        let mut cx = x;
        for c in &self.constraints {
            let colour = constraint_colour(c.as_deref());
            swatch(area, cx, row(1), colour, colour)?;
            let label = match c {
                Some(c) => pretty(c),
                None => "DSPM-DE (electroneutral by construction)".into(),
            };
            text(area, &label, cx + px(28.0), row(1))?;
            cx += px(40.0 + 7.2 * label.chars().count() as f64);
        }
        x = cx.max(px(420.0)) + px(30.0);
        if self.any_scratch {
            text(area, "fill: pre-training", x, row(0))?;
            swatch(area, x, row(1), PALETTE0, PALETTE0)?;
            text(area, "on (DSPM-DE simulations first)", x + px(28.0), row(1))?;
            swatch(area, x, row(2), tint(PALETTE0, 0.62), PALETTE0)?;
            text(area, "off (measured data only)", x + px(28.0), row(2))?;
        }
        text(
            area,
            "whiskers: ±1 standard deviation over seeds; ★ best of its panel and better than the runner-up (paired t-test over seeds, p < 0.05)",
            px(16.0),
            row(3),
        )?;
        Ok(())
    }
}

const PALETTE0: RGBColor = super::style::PALETTE[0];
