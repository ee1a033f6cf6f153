//! Rejection and the Li⁺/Mg²⁺ separation factor against water flux: one panel per test
//! family, the measured points (one marker per feed) and the run's model evaluated on a
//! dense flux grid for each feed, so a curve shows what the model says between (and a
//! little beyond) the measured fluxes, not segments between them; an ensemble's curve
//! carries its interval as a shaded band. The transfer figure draws several models in one
//! panel per held-out family, one line pattern each.

use super::style::{
    draw_log_y, font, ion_colour, marker, padded, panels, px, titled, width, Area, Figure, PALETTE,
};
use crate::collect::Predictions;
use crate::error::draw;
use crate::error::Result;
use crate::names;
use ionode_study::predictor::LoadedRun;
use ionode_train::data::Samples;
use ndarray::{Array1, Array2};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::path::Path;

/// m/s -> L m⁻² h⁻¹.
const LMH: f64 = 3.6e6;
/// Points of a model curve.
const GRID: usize = 48;
/// Panels at most (the families with the most test points).
const MAX_PANELS: usize = 6;

/// One feed of the test set: its family, composition over the slots and measured rows.
#[derive(Debug, Clone)]
struct Feed {
    family: String,
    /// Feed per slot, mol/m3 (0 = absent).
    c: Vec<f64>,
    temperature_k: f64,
}

/// The feeds of a prediction set (rows grouped by family and composition), in the order
/// of first appearance, and each prediction entry's feed.
fn feeds(p: &Predictions, slots: &[String]) -> (Vec<Feed>, Vec<Option<usize>>) {
    let slot = |ion: &str| slots.iter().position(|s| s == ion);
    // Row -> (family, per-slot feed, temperature).
    let mut rows: BTreeMap<(String, u64), Feed> = BTreeMap::new();
    for k in 0..p.len() {
        let e = rows
            .entry((p.part[k].clone(), p.row[k]))
            .or_insert_with(|| Feed {
                family: p.family[k].clone(),
                c: vec![0.0; slots.len()],
                temperature_k: p.temperature_k.get(k).copied().unwrap_or(298.15),
            });
        if let Some(s) = slot(&p.ion[k]) {
            e.c[s] = p.feed_mol_m3[k];
        }
    }
    let same = |a: &Feed, b: &Feed| {
        a.family == b.family
            && a.c
                .iter()
                .zip(&b.c)
                .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-12))
    };
    let mut list: Vec<Feed> = Vec::new();
    let mut of_row: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for (key, f) in rows {
        let i = match list.iter().position(|g| same(g, &f)) {
            Some(i) => i,
            None => {
                list.push(f);
                list.len() - 1
            }
        };
        of_row.insert(key, i);
    }
    let entry = (0..p.len())
        .map(|k| of_row.get(&(p.part[k].clone(), p.row[k])).copied())
        .collect();
    (list, entry)
}

/// The run's model on a dense flux grid for every test feed.
pub struct ModelCurves {
    slots: Vec<String>,
    /// Per feed: fluxes (LMH) and the permeate `[GRID, slots]` (NaN where DSPM-DE has no
    /// solution).
    curves: Vec<(Vec<f64>, Array2<f64>)>,
    /// An ensemble's: per feed, the lower and upper transmissions `[GRID, slots]`.
    bands: Option<Vec<(Array2<f64>, Array2<f64>)>>,
    feeds: Vec<Feed>,
}

impl ModelCurves {
    /// Loads the run's model from its record and evaluates it for every feed of `p`
    /// from 0.8 x the lowest to 1.2 x the highest measured flux of the feed's family
    /// (log-spaced).
    pub fn of(run_file: &Path, p: &Predictions) -> Result<ModelCurves> {
        let run = LoadedRun::from_file(run_file)?;
        let (slots, charges) = run.predictor.slot_ions();
        let (feeds, entry) = feeds(p, &slots);
        let mut range: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for (k, f) in entry.iter().enumerate() {
            if let Some(f) = f {
                let r = range
                    .entry(feeds[*f].family.as_str())
                    .or_insert((f64::INFINITY, 0.0));
                r.0 = r.0.min(p.jv_m_s[k]);
                r.1 = r.1.max(p.jv_m_s[k]);
            }
        }
        let n = feeds.len() * GRID;
        let mut c = Array2::zeros((n, slots.len()));
        let mut flux = Array1::zeros(n);
        let mut temperature = Vec::with_capacity(n);
        let mut fluxes = Vec::with_capacity(feeds.len());
        for (i, f) in feeds.iter().enumerate() {
            let (lo, hi) = range
                .get(f.family.as_str())
                .copied()
                .unwrap_or((1e-6, 1e-5));
            let (lo, hi) = (lo * 0.8, hi * 1.2);
            let grid: Vec<f64> = (0..GRID)
                .map(|g| lo * (hi / lo).powf(g as f64 / (GRID - 1) as f64))
                .collect();
            for (g, &j) in grid.iter().enumerate() {
                let row = i * GRID + g;
                for (s, &v) in f.c.iter().enumerate() {
                    c[[row, s]] = v;
                }
                flux[row] = j;
                temperature.push(f.temperature_k);
            }
            fluxes.push(grid.iter().map(|j| j * LMH).collect::<Vec<f64>>());
        }
        let samples =
            Samples::unobserved(slots.clone(), charges, c, flux, temperature, vec![None; n])?;
        let out = run.predictor.predict(&samples)?;
        let predicted = out.permeate;
        let block = |a: &Array2<f64>, i: usize| {
            a.slice(ndarray::s![i * GRID..(i + 1) * GRID, ..])
                .to_owned()
        };
        let bands = out.interval.map(|iv| {
            (0..feeds.len())
                .map(|i| (block(&iv.bounds.lower, i), block(&iv.bounds.upper, i)))
                .collect()
        });
        let curves = fluxes
            .into_iter()
            .enumerate()
            .map(|(i, x)| {
                let block = predicted
                    .slice(ndarray::s![i * GRID..(i + 1) * GRID, ..])
                    .to_owned();
                (x, block)
            })
            .collect();
        Ok(ModelCurves {
            slots,
            curves,
            bands,
            feeds,
        })
    }

    /// An ensemble's interval of `ion`'s rejection along feed `f`'s grid: (LMH, lower,
    /// upper); empty for a single model.
    fn band(&self, f: usize, ion: &str) -> Vec<(f64, f64, f64)> {
        let (Some(bands), Some(s)) = (&self.bands, self.slots.iter().position(|x| x == ion)) else {
            return Vec::new();
        };
        let (lower, upper) = &bands[f];
        self.curves[f]
            .0
            .iter()
            .zip(upper.column(s).iter().zip(lower.column(s)))
            .map(|(&x, (&hi_t, &lo_t))| (x, 1.0 - hi_t, 1.0 - lo_t))
            .filter(|(_, a, b)| a.is_finite() && b.is_finite())
            .collect()
    }

    /// The model's rejection of `ion` along feed `f`'s grid: (LMH, R).
    fn rejection(&self, f: usize, ion: &str) -> Vec<(f64, f64)> {
        let Some(s) = self.slots.iter().position(|x| x == ion) else {
            return Vec::new();
        };
        let (x, perm) = &self.curves[f];
        let feed = self.feeds[f].c[s];
        x.iter()
            .zip(perm.column(s))
            .map(|(&x, &p)| (x, 1.0 - p / feed))
            .filter(|(_, r)| r.is_finite())
            .collect()
    }

    /// The feed of `ModelCurves` equal to a measured one, if the model has it.
    fn find(&self, f: &Feed) -> Option<usize> {
        self.feeds.iter().position(|g| {
            g.family == f.family
                && g.c
                    .iter()
                    .zip(&f.c)
                    .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-12))
        })
    }
}

/// A row's flux (LMH) and measured transmissions 1 - R of Li⁺ and Mg²⁺.
type Transmissions = (f64, Option<f64>, Option<f64>);

/// A model curve's line pattern (the transfer figure tells its models apart by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Long,
    Short,
}

impl Dash {
    /// The patterns in the order models are given them.
    pub const ALL: [Dash; 3] = [Dash::Solid, Dash::Long, Dash::Short];
}

/// One series of a panel: measured points and the model curve.
struct Series {
    colour: RGBColor,
    feed: usize,
    points: Vec<(f64, f64)>,
    curve: Vec<(f64, f64)>,
    /// The curve's interval (an ensemble's): (x, lower, upper), drawn as a shaded band.
    band: Vec<(f64, f64, f64)>,
    dash: Dash,
}

/// One model of the transfer figure: its label and, per held-out family, its run's test
/// predictions and model curves.
pub struct Compared {
    pub label: String,
    pub runs: BTreeMap<String, (Predictions, Option<ModelCurves>)>,
}

struct Panel {
    family: String,
    /// One description per feed (marker k = feed k).
    feeds: Vec<String>,
    series: Vec<Series>,
}

pub struct Flux {
    title: String,
    y_desc: String,
    log_y: bool,
    panels: Vec<Panel>,
    /// (label, colour) of the colour legend.
    legend: Vec<(String, RGBColor)>,
    has_curves: bool,
    /// (model, pattern) of the line legend, when the panels compare models.
    models: Vec<(String, Dash)>,
}

/// `Na⁺ 30 · Cl⁻ 10 · SO₄²⁻ 10 mol/m³`.
fn describe(feed: &Feed, slots: &[String]) -> String {
    let parts: Vec<String> = slots
        .iter()
        .zip(&feed.c)
        .filter(|(_, c)| **c > 0.0)
        .map(|(s, c)| format!("{} {}", names::ion(s), short(*c)))
        .collect();
    format!("{} mol/m³", parts.join(" · "))
}

fn short(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        let s = format!("{x:.1}");
        s.trim_end_matches(".0").to_string()
    } else {
        format!("{x:.2}")
    }
}

/// The families in order of the number of their prediction entries (most first).
fn families(p: &Predictions) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &p.family {
        *counts.entry(f.as_str()).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = counts.into_iter().filter(|(f, _)| !f.is_empty()).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(f, _)| f.to_string()).collect()
}

/// Slot names of the predictions (their ions, in first-seen order).
fn ions_of(p: &Predictions) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for i in &p.ion {
        if !v.contains(i) {
            v.push(i.clone());
        }
    }
    v
}

impl Flux {
    /// Rejection of every ion vs flux.
    pub fn rejection(p: &Predictions, curves: Option<&ModelCurves>, what: &str) -> Option<Flux> {
        let slots = curves.map_or_else(|| ions_of(p), |c| c.slots.clone());
        let (feeds, entry) = feeds(p, &slots);
        let mut panels = Vec::new();
        let mut legend: Vec<(String, RGBColor)> = Vec::new();
        for family in families(p).into_iter().take(MAX_PANELS) {
            let mine: Vec<usize> = (0..feeds.len())
                .filter(|&f| feeds[f].family == family)
                .collect();
            let mut series: Vec<Series> = Vec::new();
            for (local, &f) in mine.iter().enumerate() {
                for ion in &slots {
                    let points: Vec<(f64, f64)> = (0..p.len())
                        .filter(|&k| entry[k] == Some(f) && &p.ion[k] == ion)
                        .map(|k| (p.jv_m_s[k] * LMH, p.target_rejection[k]))
                        .filter(|(_, r)| r.is_finite())
                        .collect();
                    let present = (0..p.len()).any(|k| entry[k] == Some(f) && &p.ion[k] == ion);
                    if !present {
                        continue;
                    }
                    let curve = curves
                        .and_then(|c| c.find(&feeds[f]).map(|m| c.rejection(m, ion)))
                        .unwrap_or_default();
                    let band = curves
                        .and_then(|c| c.find(&feeds[f]).map(|m| c.band(m, ion)))
                        .unwrap_or_default();
                    let colour = ion_colour(ion);
                    let label = names::ion(ion);
                    if !legend.iter().any(|(l, _)| *l == label) {
                        legend.push((label, colour));
                    }
                    series.push(Series {
                        colour,
                        feed: local,
                        points,
                        curve,
                        band,
                        dash: Dash::Solid,
                    });
                }
            }
            if !series.is_empty() {
                panels.push(Panel {
                    family,
                    feeds: mine.iter().map(|&f| describe(&feeds[f], &slots)).collect(),
                    series,
                });
            }
        }
        if panels.is_empty() {
            return None;
        }
        Some(Flux {
            title: format!("Rejection vs water flux, test feeds: {what}"),
            y_desc: "rejection R = 1 − c_p / c_f".into(),
            log_y: false,
            panels,
            legend,
            has_curves: curves.is_some(),
            models: Vec::new(),
        })
    }

    /// Rejection of every ion vs flux for several models, one panel per held-out family
    /// (the families of the first model, in its order): the measured test points once, and
    /// each model's curve in its own pattern.
    pub fn transfer(models: &[Compared], what: &str) -> Option<Flux> {
        let first = models.first()?;
        let mut panels = Vec::new();
        let mut legend: Vec<(String, RGBColor)> = Vec::new();
        for (family, (p, curves)) in first.runs.iter().take(MAX_PANELS) {
            let slots = curves
                .as_ref()
                .map_or_else(|| ions_of(p), |c| c.slots.clone());
            let (feeds, entry) = feeds(p, &slots);
            let mine: Vec<usize> = (0..feeds.len())
                .filter(|&f| feeds[f].family == *family)
                .collect();
            let mut series = Vec::new();
            for (local, &f) in mine.iter().enumerate() {
                for ion in &slots {
                    if !(0..p.len()).any(|k| entry[k] == Some(f) && &p.ion[k] == ion) {
                        continue;
                    }
                    let colour = ion_colour(ion);
                    let label = names::ion(ion);
                    if !legend.iter().any(|(l, _)| *l == label) {
                        legend.push((label, colour));
                    }
                    for (m, (model, dash)) in models.iter().zip(Dash::ALL).enumerate() {
                        let curve = model
                            .runs
                            .get(family)
                            .and_then(|(_, c)| c.as_ref())
                            .and_then(|c| c.find(&feeds[f]).map(|i| c.rejection(i, ion)))
                            .unwrap_or_default();
                        let points = if m == 0 {
                            (0..p.len())
                                .filter(|&k| entry[k] == Some(f) && &p.ion[k] == ion)
                                .map(|k| (p.jv_m_s[k] * LMH, p.target_rejection[k]))
                                .filter(|(_, r)| r.is_finite())
                                .collect()
                        } else {
                            Vec::new()
                        };
                        // Several models share a panel: lines only.
                        series.push(Series {
                            colour,
                            feed: local,
                            points,
                            curve,
                            band: Vec::new(),
                            dash,
                        });
                    }
                }
            }
            if !series.is_empty() {
                panels.push(Panel {
                    family: family.clone(),
                    feeds: mine.iter().map(|&f| describe(&feeds[f], &slots)).collect(),
                    series,
                });
            }
        }
        if panels.is_empty() {
            return None;
        }
        Some(Flux {
            title: format!("Held-out salt family: rejection vs water flux, {what}"),
            y_desc: "rejection R = 1 − c_p / c_f".into(),
            log_y: false,
            panels,
            legend,
            has_curves: true,
            models: models
                .iter()
                .zip(Dash::ALL)
                .map(|(m, d)| (m.label.clone(), d))
                .collect(),
        })
    }

    /// The Li⁺/Mg²⁺ separation factor S = (1 − R_Li) / (1 − R_Mg) vs flux, for the test
    /// families that hold both ions.
    pub fn separation(p: &Predictions, curves: Option<&ModelCurves>, what: &str) -> Option<Flux> {
        let slots = curves.map_or_else(|| ions_of(p), |c| c.slots.clone());
        let (feeds, entry) = feeds(p, &slots);
        let li = slots.iter().position(|s| s == "Li+")?;
        let mg = slots.iter().position(|s| s == "Mg^2+")?;
        let mut panels = Vec::new();
        for family in families(p).into_iter().take(MAX_PANELS) {
            let mine: Vec<usize> = (0..feeds.len())
                .filter(|&f| {
                    feeds[f].family == family && feeds[f].c[li] > 0.0 && feeds[f].c[mg] > 0.0
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut series = Vec::new();
            for (local, &f) in mine.iter().enumerate() {
                // Measured: the rows where both were measured.
                let mut by_row: BTreeMap<(String, u64), Transmissions> = BTreeMap::new();
                for k in (0..p.len()).filter(|&k| entry[k] == Some(f)) {
                    let e = by_row.entry((p.part[k].clone(), p.row[k])).or_insert((
                        p.jv_m_s[k] * LMH,
                        None,
                        None,
                    ));
                    let t = 1.0 - p.target_rejection[k];
                    if p.ion[k] == slots[li] && t.is_finite() {
                        e.1 = Some(t);
                    } else if p.ion[k] == slots[mg] && t.is_finite() {
                        e.2 = Some(t);
                    }
                }
                let points: Vec<(f64, f64)> = by_row
                    .values()
                    .filter_map(|&(x, a, b)| match (a, b) {
                        (Some(a), Some(b)) if b > 0.0 && a / b > 0.0 => Some((x, a / b)),
                        _ => None,
                    })
                    .collect();
                let curve = curves
                    .and_then(|c| {
                        let m = c.find(&feeds[f])?;
                        let (x, perm) = &c.curves[m];
                        let (cl, cm) = (feeds[f].c[li], feeds[f].c[mg]);
                        Some(
                            x.iter()
                                .enumerate()
                                .map(|(g, &x)| (x, (perm[[g, li]] / cl) / (perm[[g, mg]] / cm)))
                                .filter(|(_, s)| s.is_finite() && *s > 0.0)
                                .collect(),
                        )
                    })
                    .unwrap_or_default();
                series.push(Series {
                    colour: PALETTE[local % PALETTE.len()],
                    feed: local,
                    points,
                    curve,
                    band: Vec::new(),
                    dash: Dash::Solid,
                });
            }
            panels.push(Panel {
                family,
                feeds: mine.iter().map(|&f| describe(&feeds[f], &slots)).collect(),
                series,
            });
        }
        if panels.is_empty() {
            return None;
        }
        Some(Flux {
            title: format!("Li⁺/Mg²⁺ separation factor vs water flux, test feeds: {what}"),
            y_desc: "S = (1 − R_Li) / (1 − R_Mg)".into(),
            log_y: true,
            panels,
            legend: Vec::new(),
            has_curves: curves.is_some(),
            models: Vec::new(),
        })
    }

    /// Three panels a row at most; four as two by two.
    fn cols(&self) -> usize {
        match self.panels.len() {
            4 => 2,
            n => n.min(3),
        }
    }
}

/// Draws a panel's series: model curves as lines, measurements as the feed's marker.
fn draw_series<DB: DrawingBackend, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    area: &Area<DB>,
    series: &[Series],
) -> Result<()>
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    let base = area.get_base_pixel();
    for s in series.iter().filter(|s| !s.band.is_empty()) {
        let outline: Vec<(f64, f64)> = s
            .band
            .iter()
            .map(|&(x, _, hi)| (x, hi))
            .chain(s.band.iter().rev().map(|&(x, lo, _)| (x, lo)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                s.colour.mix(0.12).filled(),
            )))
            .map_err(draw)?;
    }
    for s in series {
        let style = s.colour.stroke_width(width(1.6));
        let points = s.curve.clone();
        match s.dash {
            Dash::Solid => chart.draw_series(LineSeries::new(points, style)),
            Dash::Long => chart.draw_series(DashedLineSeries::new(
                points,
                px(7.0) as u32,
                px(4.0) as u32,
                style,
            )),
            Dash::Short => chart.draw_series(DashedLineSeries::new(
                points,
                px(2.0) as u32,
                px(3.0) as u32,
                style,
            )),
        }
        .map_err(draw)?;
        for &(x, y) in &s.points {
            let at = chart.backend_coord(&(x, y));
            marker(
                area,
                s.feed,
                (at.0 - base.0, at.1 - base.1),
                px(4.0),
                s.colour,
            )?;
        }
    }
    Ok(())
}

/// Height of a panel's feed legend, SVG pixels.
fn feed_legend_height(p: &Panel) -> f64 {
    10.0 + 17.0 * p.feeds.len() as f64
}

impl Figure for Flux {
    fn size(&self) -> (u32, u32) {
        let cols = self.cols() as u32;
        let rows = self.panels.len().div_ceil(self.cols()) as u32;
        let legend = self
            .panels
            .iter()
            .map(feed_legend_height)
            .fold(0.0, f64::max) as u32;
        (cols * 440 + 190, 50 + rows * (380 + legend))
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = titled(root, &self.title, 17.0)?;
        let (w, _) = area.dim_in_pixel();
        let (plots, side) = area.split_horizontally(w - px(190.0) as u32);
        let all_x = self
            .panels
            .iter()
            .flat_map(|p| p.series.iter())
            .flat_map(|s| s.points.iter().chain(&s.curve).map(|p| p.0));
        let (x0, x1) = all_x.fold((f64::INFINITY, f64::NEG_INFINITY), |a, x| {
            (a.0.min(x), a.1.max(x))
        });
        let (x0, x1) = padded(x0.min(x1), x1);
        let x0 = x0.max(0.0);
        for (panel, p) in panels(&plots, self.panels.len(), self.cols())
            .iter()
            .zip(&self.panels)
        {
            self.draw_panel(panel, p, (x0, x1))?;
        }
        self.draw_legend(&side)
    }
}

impl Flux {
    /// One panel: the chart of its series (log or linear rejection axis) and, under it,
    /// its feeds with their markers.
    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &Area<DB>,
        p: &Panel,
        (x0, x1): (f64, f64),
    ) -> Result<()> {
        let (_, h) = panel.dim_in_pixel();
        let (chart_area, feed_area) = panel.split_vertically(h - px(feed_legend_height(p)) as u32);
        let ys = p
            .series
            .iter()
            .flat_map(|s| {
                let band = s.band.iter().flat_map(|b| [b.1, b.2]);
                s.points.iter().chain(&s.curve).map(|p| p.1).chain(band)
            })
            .filter(|v| v.is_finite());
        if self.log_y {
            let (lo, hi) = ys
                .filter(|v| *v > 0.0)
                .fold((f64::INFINITY, 0.0f64), |a, v| (a.0.min(v), a.1.max(v)));
            let (lo, hi) = if lo.is_finite() {
                (lo / 1.3, hi * 1.3)
            } else {
                (0.1, 10.0)
            };
            let mut chart = ChartBuilder::on(&chart_area)
                .caption(names::formula(&p.family), font(15.0))
                .margin(px(8.0))
                .x_label_area_size(px(40.0))
                .y_label_area_size(px(56.0))
                .build_cartesian_2d(x0..x1, (lo..hi).log_scale())
                .map_err(draw)?;
            chart
                .configure_mesh()
                .x_desc("water flux J_v (L m⁻² h⁻¹)")
                .y_desc(&self.y_desc)
                .x_labels(6)
                .y_labels(0)
                .y_label_formatter(&|_| String::new())
                .x_label_formatter(&|v| format!("{v:.0}"))
                .label_style(font(12.0))
                .axis_desc_style(font(12.5))
                .light_line_style(TRANSPARENT)
                .bold_line_style(TRANSPARENT)
                .draw()
                .map_err(draw)?;
            draw_log_y(&mut chart, &chart_area, (x0, x1), (lo, hi))?;
            draw_series(&mut chart, &chart_area, &p.series)?;
        } else {
            let (lo, hi) = ys.fold((0.0f64, 1.0f64), |a, v| (a.0.min(v), a.1.max(v)));
            let (lo, hi) = padded(lo, hi);
            let mut chart = ChartBuilder::on(&chart_area)
                .caption(names::formula(&p.family), font(15.0))
                .margin(px(8.0))
                .x_label_area_size(px(40.0))
                .y_label_area_size(px(50.0))
                .build_cartesian_2d(x0..x1, lo..hi)
                .map_err(draw)?;
            chart
                .configure_mesh()
                .x_desc("water flux J_v (L m⁻² h⁻¹)")
                .y_desc(&self.y_desc)
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.1}"))
                .label_style(font(12.0))
                .axis_desc_style(font(12.5))
                .light_line_style(TRANSPARENT)
                .bold_line_style(BLACK.mix(0.1))
                .draw()
                .map_err(draw)?;
            draw_series(&mut chart, &chart_area, &p.series)?;
        }
        // The feeds, under the panel: marker and composition.
        for (k, desc) in p.feeds.iter().enumerate() {
            let y = px(10.0 + 17.0 * k as f64);
            marker(&feed_area, k, (px(70.0), y), px(4.0), BLACK)?;
            feed_area
                .draw(&Text::new(
                    desc.clone(),
                    (px(82.0), y),
                    font(11.5).pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(draw)?;
        }
        Ok(())
    }

    /// The colour legend and what points and lines are, beside the panels.
    fn draw_legend<DB: DrawingBackend>(&self, side: &Area<DB>) -> Result<()> {
        let line = |k: usize| px(30.0 + 22.0 * k as f64);
        let text = |s: &str, x: i32, y: i32| {
            side.draw(&Text::new(
                s.to_string(),
                (x, y),
                font(12.5).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(draw)
        };
        let mut k = 0;
        text("markers: measured", px(12.0), line(k))?;
        k += 1;
        if self.models.is_empty() {
            text(
                if self.has_curves {
                    "lines: model, dense grid"
                } else {
                    "(model curves unavailable)"
                },
                px(12.0),
                line(k),
            )?;
            k += 1;
            let banded = self
                .panels
                .iter()
                .any(|p| p.series.iter().any(|s| !s.band.is_empty()));
            if banded {
                text("bands: the ensemble's interval", px(12.0), line(k))?;
                k += 1;
            }
        } else {
            text("lines: models", px(12.0), line(k))?;
            k += 1;
            for (label, dash) in &self.models {
                let y = line(k);
                // The pattern drawn as its own dashes between x = 14 and 40.
                let (on, off) = match dash {
                    Dash::Solid => (26.0, 0.0),
                    Dash::Long => (7.0, 4.0),
                    Dash::Short => (2.0, 3.0),
                };
                let mut x = 14.0;
                while x < 40.0 {
                    let end = f64::min(x + on, 40.0);
                    side.draw(&PathElement::new(
                        vec![(px(x), y), (px(end), y)],
                        BLACK.stroke_width(width(1.6)),
                    ))
                    .map_err(draw)?;
                    x = end + off;
                }
                text(label, px(48.0), y)?;
                k += 1;
            }
        }
        if !self.legend.is_empty() {
            k += 1;
            text("colour: ion", px(12.0), line(k))?;
            k += 1;
            for (label, c) in &self.legend {
                side.draw(&PathElement::new(
                    vec![(px(14.0), line(k)), (px(40.0), line(k))],
                    c.stroke_width(width(2.5)),
                ))
                .map_err(draw)?;
                text(label, px(48.0), line(k))?;
                k += 1;
            }
        } else {
            k += 1;
            text("colour and marker: feed", px(12.0), line(k))?;
        }
        Ok(())
    }
}
