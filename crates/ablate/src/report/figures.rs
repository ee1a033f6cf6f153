//! The report's figures, each as PNG and SVG (plotters with the pure-Rust ab_glyph font
//! renderer, so no fontconfig is needed; the TTF is read at run time).
//!
//! Every figure is a small data struct filled from the runs plus a `draw` generic over the
//! plotters backend, so the same code paints the bitmap and the vector file. Figures that
//! need data a study does not have (no attention maps for a study without the attention
//! NODE, no curves for the DSPM-DE baseline) are skipped with a note.

use super::collect::{read_attention, read_predictions, Attention, Predictions, Study};
use super::scores::Scores;
use super::{best, varying, Group};
use crate::output;
use anyhow::{anyhow, Context, Result};
use ionode_physics::IonDb;
use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Debian's DejaVu Sans (package fonts-dejavu-core, installed by scripts/setup).
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FONT: &str = "sans-serif";

/// Registers the TTF for ab_glyph once per process; `IONODE_FONT` overrides the path.
/// Without a font plotters would panic at the first label, so this fails early instead.
pub fn register_font() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let path = std::env::var_os("IONODE_FONT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT));
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read the font for figures '{}' ({e}); install fonts-dejavu-core \
                 (scripts/setup does) or set IONODE_FONT to a TTF file",
                path.display()
            )
        })?;
        // plotters keeps the font for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FONT, style, bytes)
                .map_err(|_| format!("'{}' is not a usable TTF font", path.display()))?;
        }
        Ok(())
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

fn pe(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw the figure: {e}")
}

type Area<DB> = DrawingArea<DB, Shift>;

/// A figure that can be painted on any backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()>;
}

/// Writes `dir/name.png` and `dir/name.svg` (each through a temporary name).
fn render(dir: &Path, name: &str, fig: &impl Figure) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    let png = dir.join(format!("{name}.png"));
    // The bitmap encoder picks the format from the extension, so the temporary name must
    // end in .png.
    let tmp = dir.join(format!(".{name}.tmp.png"));
    {
        let root = BitMapBackend::new(&tmp, fig.size()).into_drawing_area();
        root.fill(&WHITE).map_err(pe)?;
        fig.draw(&root)?;
        root.present()
            .map_err(pe)
            .with_context(|| format!("cannot write '{}'", png.display()))?;
    }
    std::fs::rename(&tmp, &png).with_context(|| format!("cannot write '{}'", png.display()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area();
        root.fill(&WHITE).map_err(pe)?;
        fig.draw(&root)?;
        root.present().map_err(pe)?;
    }
    output::write_text(&dir.join(format!("{name}.svg")), &svg)
}

/// A species as a figure writes it (Mg²⁺, SO₄²⁻).
fn ion_label(name: &str) -> String {
    super::names::ion(name)
}

fn color(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

fn title_font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

/// A title font small enough for `text` to fit `width` pixels (DejaVu Sans averages about
/// 0.56 em per character), at most `max` points: long configuration labels must not push
/// "(synthetic data)" off the image.
fn fitted(text: &str, width: u32, max: u32) -> TextStyle<'static> {
    let chars = text.chars().count().max(1) as f64;
    let size = (width as f64 * 0.95 / (0.56 * chars))
        .floor()
        .clamp(9.0, max as f64);
    title_font(size as u32)
}

/// Splits an area into a grid of `n` panels, at most `cols` wide.
fn panels<DB: DrawingBackend>(area: &Area<DB>, n: usize, cols: usize) -> Vec<Area<DB>> {
    let cols = cols.min(n).max(1);
    let rows = n.div_ceil(cols);
    area.split_evenly((rows, cols))
        .into_iter()
        .take(n)
        .collect()
}

fn grid_size(n: usize, cols: usize, w: u32, h: u32) -> (u32, u32) {
    let cols = cols.min(n).max(1);
    (w * cols as u32, 60 + h * n.div_ceil(cols) as u32)
}

/// Range with a little padding; never empty.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let pad = ((hi - lo).abs() * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// Pearson's correlation coefficient (NaN when a variable is constant or n < 2).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.len() < 2 {
        return f64::NAN;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

/// Writes every figure it has data for into `out/figures/`; returns the names written
/// and notes on the ones skipped.
pub fn write(
    study: &Study,
    groups: &[Group],
    scores: &Scores,
    out: &Path,
) -> Result<(Vec<String>, Vec<String>)> {
    register_font()?;
    let dir = out.join("figures");
    let syn = super::synthetic_note(study);
    let mut written = Vec::new();
    let mut notes = Vec::new();
    let label_axes = varying(groups);

    // Ablation bars: every configuration.
    let bars = Bars {
        title: format!("Test MAE per configuration, mean ± std over seeds{syn}"),
        bars: groups
            .iter()
            .filter_map(|g| {
                scores
                    .get(&g.roles.cell)
                    .map(|s| (g.label(&label_axes), s.mean, s.std, s.n))
            })
            .collect(),
        best: best(scores, groups).map(|i| groups[i].label(&label_axes)),
    };
    if bars.bars.is_empty() {
        notes.push("ablation bars skipped: no run has a test MAE".to_string());
    } else {
        render(&dir, "ablation_bars", &bars)?;
        written.push("ablation_bars".to_string());
    }

    // Parity and rejection vs flux: the best run of the best configuration with predictions.
    let with_pred: Vec<Group> = groups
        .iter()
        .filter(|g| g.runs.iter().any(|&i| study.runs[i].record.has_predictions))
        .cloned()
        .collect();
    match best(scores, &with_pred) {
        Some(b) => {
            let g = &with_pred[b];
            let run = g
                .runs
                .iter()
                .copied()
                .filter(|&i| study.runs[i].record.has_predictions)
                .min_by(|&a, &b| {
                    let m = |i: usize| study.runs[i].test_mae().unwrap_or(f64::INFINITY);
                    m(a).total_cmp(&m(b))
                })
                .expect("the group has a run with predictions");
            let r = &study.runs[run];
            let pred = read_predictions(&r.path)?;
            let seed = r.seed().to_string();
            let config = g.label(&label_axes);
            let parity = Parity::new(&pred, format!(
                "Predicted vs measured rejection, best configuration [{config}], seed {seed}{syn}"
            ));
            render(&dir, "parity", &parity)?;
            written.push("parity".to_string());
            match Flux::new(&pred, &config, &seed, syn) {
                Some(flux) => {
                    render(&dir, "rejection_vs_flux", &flux)?;
                    written.push("rejection_vs_flux".to_string());
                }
                None => notes.push("rejection vs flux skipped: no prediction has a family".into()),
            }
        }
        None => notes.push(
            "parity and rejection-vs-flux figures skipped: no finished run has predictions with a test MAE"
                .into(),
        ),
    }

    // Learning curves: every seed of the best configuration that has curves.
    let with_curves: Vec<Group> = groups
        .iter()
        .filter(|g| {
            g.runs
                .iter()
                .any(|&i| !study.runs[i].record.curves.is_empty())
        })
        .cloned()
        .collect();
    match best(scores, &with_curves) {
        Some(b) => {
            let g = &with_curves[b];
            let mut stages: BTreeMap<String, Vec<SeedCurve>> = BTreeMap::new();
            for &i in &g.runs {
                for c in &study.runs[i].record.curves {
                    stages
                        .entry(c.stage.as_str().to_string())
                        .or_default()
                        .push((c.train_loss.clone(), c.validation_loss.clone()));
                }
            }
            // Pre-training first, as it happens.
            let mut stages: Vec<_> = stages.into_iter().collect();
            stages.sort_by_key(|(s, _)| (s != "pretrain", s.clone()));
            let curves = Curves {
                title: format!(
                    "Learning curves, [{}], {} seed(s){syn}",
                    g.label(&label_axes),
                    g.runs.len()
                ),
                stages,
            };
            render(&dir, "learning_curves", &curves)?;
            written.push("learning_curves".to_string());
        }
        None => notes.push("learning curves skipped: no run has curves".into()),
    }

    // Attention: the best attention-NODE configuration, pooled over its seeds.
    let with_att: Vec<Group> = groups
        .iter()
        .filter(|g| g.runs.iter().any(|&i| study.runs[i].record.has_attention))
        .cloned()
        .collect();
    let att_group = best(scores, &with_att).or(if with_att.is_empty() { None } else { Some(0) });
    match att_group {
        Some(b) => {
            let g = &with_att[b];
            let maps: Vec<Attention> = g
                .runs
                .iter()
                .filter(|&&i| study.runs[i].record.has_attention)
                .map(|&i| read_attention(&study.runs[i].path))
                .collect::<Result<_>>()?;
            let families = family_means(&maps);
            let config = g.label(&label_axes);
            let heat = Heat {
                title: format!(
                    "Mean attention (query row -> key column) per mixture family, [{config}]{syn}"
                ),
                families: families.clone(),
            };
            render(&dir, "attention_heatmaps", &heat)?;
            written.push("attention_heatmaps".to_string());
            let (corr, unknown) = Correlation::new(&families, &config, syn);
            if !unknown.is_empty() {
                notes.push(format!(
                    "attention correlation: ions not in the built-in database left out: {}",
                    unknown.join(", ")
                ));
            }
            render(&dir, "attention_correlation", &corr)?;
            written.push("attention_correlation".to_string());
        }
        None => notes.push(
            "attention heat maps and correlation skipped: no run has attention maps (attention_node)"
                .into(),
        ),
    }
    Ok((written, notes))
}

/// Per family: the species present and the mean attention matrix over that family's rows
/// (all seeds pooled). A species is present when its attention row or column is nonzero;
/// masked slots carry zeros.
type FamilyMap = (String, Vec<String>, Array2<f64>);

fn family_means(maps: &[Attention]) -> Vec<FamilyMap> {
    let mut sums: BTreeMap<String, (Vec<String>, Array2<f64>, usize)> = BTreeMap::new();
    for a in maps {
        let s = a.species.len();
        for (row, fam) in a.family.iter().enumerate() {
            let entry = sums
                .entry(fam.clone())
                .or_insert_with(|| (a.species.clone(), Array2::zeros((s, s)), 0));
            if entry.0 != a.species {
                continue; // a run with another species axis cannot be pooled
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

struct Bars {
    title: String,
    /// (label, mean, std, n)
    bars: Vec<(String, f64, f64, usize)>,
    best: Option<String>,
}

impl Figure for Bars {
    fn size(&self) -> (u32, u32) {
        (1000, 160 + 34 * self.bars.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let g = self.bars.len() as i32;
        let hi = self
            .bars
            .iter()
            .map(|(_, m, s, _)| m + if s.is_finite() { *s } else { 0.0 })
            .fold(0.0, f64::max)
            * 1.15;
        let hi = if hi > 0.0 { hi } else { 1.0 };
        let longest = self
            .bars
            .iter()
            .map(|b| b.0.chars().count())
            .max()
            .unwrap_or(4);
        let labels: Vec<String> = self
            .bars
            .iter()
            .map(|(l, _, _, n)| format!("{l} (n={n})"))
            .collect();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, fitted(&self.title, root.dim_in_pixel().0, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size((9 * (longest as u32 + 6)).clamp(80, 520))
            .build_cartesian_2d(0f64..hi, (0..g).into_segmented())
            .map_err(pe)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(self.bars.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc("test MAE (rejection)")
            .label_style(title_font(14))
            .draw()
            .map_err(pe)?;
        for (i, (label, mean, std, _)) in self.bars.iter().enumerate() {
            let i = i as i32;
            let fill = if self.best.as_ref() == Some(label) {
                RGBColor(214, 96, 77)
            } else {
                RGBColor(67, 147, 195)
            };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (*mean, SegmentValue::Exact(i + 1)),
                ],
                fill.filled(),
            );
            bar.set_margin(5, 5, 0, 0);
            chart.draw_series(std::iter::once(bar)).map_err(pe)?;
            if std.is_finite() && *std > 0.0 {
                let y = SegmentValue::CenterOf(i);
                let style = BLACK.stroke_width(2);
                chart
                    .draw_series([PathElement::new(
                        vec![(mean - std, y.clone()), (mean + std, y.clone())],
                        style,
                    )])
                    .map_err(pe)?;
                for x in [mean - std, mean + std] {
                    chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((x, y.clone()))
                                + PathElement::new(vec![(0, -6), (0, 6)], style),
                        ))
                        .map_err(pe)?;
                }
            }
        }
        Ok(())
    }
}

/// Predicted vs measured rejection, one panel per ion.
struct Parity {
    title: String,
    /// ion -> (target, predicted)
    ions: Vec<(String, Vec<(f64, f64)>)>,
    part: String,
}

impl Parity {
    fn new(p: &Predictions, title: String) -> Parity {
        let test = p.part.iter().any(|x| x == "test");
        let mut ions: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for k in 0..p.len() {
            if test && p.part[k] != "test" {
                continue;
            }
            let (t, y) = (p.target_rejection[k], p.predicted_rejection[k]);
            if !t.is_finite() || !y.is_finite() {
                continue;
            }
            match ions.iter_mut().find(|(i, _)| *i == ion_label(&p.ion[k])) {
                Some((_, v)) => v.push((t, y)),
                None => ions.push((ion_label(&p.ion[k]), vec![(t, y)])),
            }
        }
        Parity {
            title,
            ions,
            part: if test { "test part" } else { "all parts" }.to_string(),
        }
    }
}

impl Figure for Parity {
    fn size(&self) -> (u32, u32) {
        grid_size(self.ions.len().max(1), 4, 330, 330)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let title = format!("{} ({})", self.title, self.part);
        let area = root
            .titled(&title, fitted(&title, root.dim_in_pixel().0, 18))
            .map_err(pe)?;
        for (k, (panel, (ion, pts))) in panels(&area, self.ions.len(), 4)
            .iter()
            .zip(&self.ions)
            .enumerate()
        {
            let lo = pts.iter().flat_map(|p| [p.0, p.1]).fold(0.0, f64::min);
            let hi = pts.iter().flat_map(|p| [p.0, p.1]).fold(1.0, f64::max);
            let (lo, hi) = padded(lo, hi);
            let mut chart = ChartBuilder::on(panel)
                .caption(ion, title_font(16))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(44)
                .build_cartesian_2d(lo..hi, lo..hi)
                .map_err(pe)?;
            chart
                .configure_mesh()
                .x_desc("measured")
                .y_desc("predicted")
                .x_labels(5)
                .y_labels(5)
                .label_style(title_font(12))
                .draw()
                .map_err(pe)?;
            chart
                .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.5)))
                .map_err(pe)?;
            let c = color(k);
            chart
                .draw_series(pts.iter().map(|&(t, y)| Circle::new((t, y), 3, c.filled())))
                .map_err(pe)?;
        }
        Ok(())
    }
}

/// (flux in LMH, target rejection, predicted rejection, feed level in mol/m3)
type FluxPoint = (f64, f64, f64, f64);

/// One seed's (train, validation) losses by epoch.
type SeedCurve = (Vec<f64>, Vec<f64>);

/// Rejection vs flux for one family: measured points and model curves per ion.
struct Flux {
    title: String,
    /// ion -> (flux in LMH, target, predicted, feed level)
    ions: Vec<(String, Vec<FluxPoint>)>,
}

impl Flux {
    /// The family with the most predictions (ties: first by name).
    fn new(p: &Predictions, config: &str, seed: &str, syn: &str) -> Option<Flux> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &p.family {
            *counts.entry(f.as_str()).or_default() += 1;
        }
        let family = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(f, _)| f.to_string())?;
        let mut ions: Vec<(String, Vec<FluxPoint>)> = Vec::new();
        for k in 0..p.len() {
            if p.family[k] != family {
                continue;
            }
            let point = (
                p.jv_m_s[k] * 3.6e6,
                p.target_rejection[k],
                p.predicted_rejection[k],
                p.feed_mol_m3[k],
            );
            let name = ion_label(&p.ion[k]);
            match ions.iter_mut().find(|(i, _)| *i == name) {
                Some((_, v)) => v.push(point),
                None => ions.push((name, vec![point])),
            }
        }
        Some(Flux {
            title: format!(
                "Rejection vs flux, family {family}: measured (points) and model (lines), [{config}], seed {seed}{syn}"
            ),
            ions,
        })
    }
}

impl Figure for Flux {
    fn size(&self) -> (u32, u32) {
        (1100, 700)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let all = self.ions.iter().flat_map(|(_, v)| v.iter());
        let (x0, x1) = all
            .clone()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
                (a.0.min(p.0), a.1.max(p.0))
            });
        let (y0, y1) = all
            .flat_map(|p| [p.1, p.2])
            .filter(|v| v.is_finite())
            .fold((0.0f64, 1.0f64), |a, v| (a.0.min(v), a.1.max(v)));
        let (x0, x1) = padded(x0, x1);
        let (y0, y1) = padded(y0, y1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, fitted(&self.title, root.dim_in_pixel().0, 16))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(pe)?;
        chart
            .configure_mesh()
            .x_desc("water flux J_v (L m⁻² h⁻¹)")
            .y_desc("rejection")
            .label_style(title_font(14))
            .draw()
            .map_err(pe)?;
        for (k, (ion, pts)) in self.ions.iter().enumerate() {
            let c = color(k);
            // One model line per feed level (a family's feeds differ in concentration).
            let mut levels: Vec<f64> = pts.iter().map(|p| p.3).collect();
            levels.sort_by(f64::total_cmp);
            levels.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * b.abs().max(1.0));
            for (l, level) in levels.iter().enumerate() {
                let mut line: Vec<(f64, f64)> = pts
                    .iter()
                    .filter(|p| (p.3 - level).abs() <= 1e-9 * level.abs().max(1.0))
                    .filter(|p| p.2.is_finite())
                    .map(|p| (p.0, p.2))
                    .collect();
                line.sort_by(|a, b| a.0.total_cmp(&b.0));
                let series = chart
                    .draw_series(LineSeries::new(line, c.stroke_width(2)))
                    .map_err(pe)?;
                if l == 0 {
                    series.label(ion.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
                }
            }
            chart
                .draw_series(
                    pts.iter()
                        .filter(|p| p.1.is_finite())
                        .map(|p| Circle::new((p.0, p.1), 4, c.filled())),
                )
                .map_err(pe)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(title_font(14))
            .draw()
            .map_err(pe)?;
        Ok(())
    }
}

/// Train and validation loss per stage, every seed a line.
struct Curves {
    title: String,
    /// stage -> [(train, validation)] per seed
    stages: Vec<(String, Vec<SeedCurve>)>,
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        (560 * self.stages.len().max(1) as u32, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = root
            .titled(&self.title, fitted(&self.title, root.dim_in_pixel().0, 18))
            .map_err(pe)?;
        for (panel, (stage, runs)) in panels(&area, self.stages.len(), 4).iter().zip(&self.stages) {
            let values = runs
                .iter()
                .flat_map(|(t, v)| t.iter().chain(v))
                .copied()
                .filter(|x| x.is_finite() && *x > 0.0);
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
                (a.0.min(v), a.1.max(v))
            });
            let (lo, hi) = if lo.is_finite() && hi > lo {
                (lo / 1.2, hi * 1.2)
            } else if lo.is_finite() {
                (lo / 2.0, lo * 2.0)
            } else {
                (1e-3, 1.0)
            };
            let epochs = runs
                .iter()
                .map(|(t, v)| t.len().max(v.len()))
                .max()
                .unwrap_or(1)
                .max(2);
            let mut chart = ChartBuilder::on(panel)
                .caption(stage, title_font(16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..(epochs - 1) as f64, (lo..hi).log_scale())
                .map_err(pe)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("loss")
                .y_label_formatter(&|v| format!("{v:.1e}"))
                .label_style(title_font(12))
                .draw()
                .map_err(pe)?;
            for (k, (train, val)) in runs.iter().enumerate() {
                for (series, c, name) in [(train, BLUE, "train"), (val, RED, "validation")] {
                    let pts: Vec<(f64, f64)> = series
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite() && **v > 0.0)
                        .map(|(e, v)| (e as f64, *v))
                        .collect();
                    let s = chart
                        .draw_series(LineSeries::new(pts, c.mix(0.7).stroke_width(2)))
                        .map_err(pe)?;
                    if k == 0 {
                        s.label(name).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                        });
                    }
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(title_font(13))
                .draw()
                .map_err(pe)?;
        }
        Ok(())
    }
}

/// Attention heat maps, one panel per family, drawn cell by cell in pixels (labels at
/// cell centres, values written in the cells).
struct Heat {
    title: String,
    families: Vec<FamilyMap>,
}

impl Figure for Heat {
    fn size(&self) -> (u32, u32) {
        grid_size(self.families.len().max(1), 3, 420, 420)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = root
            .titled(&self.title, fitted(&self.title, root.dim_in_pixel().0, 18))
            .map_err(pe)?;
        let vmax = self
            .families
            .iter()
            .flat_map(|(_, _, m)| m.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-12);
        for (panel, (fam, species, m)) in panels(&area, self.families.len(), 3)
            .iter()
            .zip(&self.families)
        {
            let (w, h) = panel.dim_in_pixel();
            let s = species.len().max(1) as i32;
            let (left, top, right, bottom) = (70, 40, 16, 40);
            let cell = ((w as i32 - left - right).min(h as i32 - top - bottom) / s).max(4);
            let centred = |size: u32| {
                TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Center, VPos::Center))
            };
            panel
                .draw(&Text::new(
                    fam.clone(),
                    (w as i32 / 2, top / 2),
                    centred(16),
                ))
                .map_err(pe)?;
            for i in 0..species.len() {
                for j in 0..species.len() {
                    let v = m[[i, j]];
                    let t = if v.is_finite() {
                        (v / vmax).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    let shade = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
                    let fill = RGBColor(shade(247.0, 8.0), shade(251.0, 48.0), shade(255.0, 107.0));
                    let (x0, y0) = (left + j as i32 * cell, top + i as i32 * cell);
                    panel
                        .draw(&Rectangle::new(
                            [(x0, y0), (x0 + cell, y0 + cell)],
                            fill.filled(),
                        ))
                        .map_err(pe)?;
                    if cell >= 28 {
                        let ink = if t > 0.55 { WHITE } else { BLACK };
                        panel
                            .draw(&Text::new(
                                format!("{v:.2}"),
                                (x0 + cell / 2, y0 + cell / 2),
                                centred(12).color(&ink),
                            ))
                            .map_err(pe)?;
                    }
                }
                let label = centred(13);
                panel
                    .draw(&Text::new(
                        ion_label(&species[i]),
                        (left / 2, top + i as i32 * cell + cell / 2),
                        label.clone(),
                    ))
                    .map_err(pe)?;
                panel
                    .draw(&Text::new(
                        ion_label(&species[i]),
                        (left + i as i32 * cell + cell / 2, top + s * cell + 14),
                        label,
                    ))
                    .map_err(pe)?;
            }
        }
        Ok(())
    }
}

/// Attention between ion pairs against their charge and Stokes-radius differences.
struct Correlation {
    title: String,
    /// (|dz|, |dr| in Angstrom, attention)
    points: Vec<(f64, f64, f64)>,
}

impl Correlation {
    fn new(families: &[FamilyMap], config: &str, syn: &str) -> (Correlation, Vec<String>) {
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
                    "Attention vs ion differences (off-diagonal pairs, family means), [{config}]{syn}"
                ),
                points,
            },
            unknown,
        )
    }
}

impl Figure for Correlation {
    fn size(&self) -> (u32, u32) {
        (1100, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let area = root
            .titled(&self.title, fitted(&self.title, root.dim_in_pixel().0, 17))
            .map_err(pe)?;
        let halves = area.split_evenly((1, 2));
        let y: Vec<f64> = self.points.iter().map(|p| p.2).collect();
        let (y0, y1) = padded(
            y.iter().copied().fold(f64::INFINITY, f64::min),
            y.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        let panels: [(&str, Vec<f64>); 2] = [
            (
                "|charge difference| |Δz|",
                self.points.iter().map(|p| p.0).collect(),
            ),
            (
                "|Stokes-radius difference| |Δr_s| (Å)",
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
            let caption = format!("attention vs {name}: {r} (n = {})", x.len());
            let mut chart = ChartBuilder::on(panel)
                .caption(&caption, fitted(&caption, panel.dim_in_pixel().0, 15))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(pe)?;
            chart
                .configure_mesh()
                .x_desc(*name)
                .y_desc("mean attention weight")
                .label_style(title_font(12))
                .draw()
                .map_err(pe)?;
            let c = color(k);
            chart
                .draw_series(
                    x.iter()
                        .zip(&y)
                        .map(|(&a, &b)| Circle::new((a, b), 4, c.mix(0.7).filled())),
                )
                .map_err(pe)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_of_a_line_is_one() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }
}
