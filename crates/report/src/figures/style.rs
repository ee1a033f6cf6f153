//! What every figure shares: the font, the colours, the three output formats and the axis
//! labels.
//!
//! Figures are drawn by plotters with the pure-Rust ab_glyph renderer (no fontconfig is
//! linked; the TTF is read at run time), once per backend: PNG (bitmap, 2x scale for
//! print) and SVG; the PDF is made from the SVG by `svg2pdf` with the same font embedded
//! (as a subset), so the three show the same figure.

use crate::error::{draw, Context, ReportError, Result};
use ionode_study::output;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Debian's DejaVu Sans (package fonts-dejavu-core, installed by scripts/setup): it has
/// the superscripts, subscripts and symbols the labels use (Mg²⁺, SO₄²⁻, λ, ±, ★).
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
pub const FONT: &str = "sans-serif";

/// The font file's bytes, read once per process (`IONODE_FONT` overrides the path).
fn font_bytes() -> Result<&'static [u8]> {
    static BYTES: OnceLock<std::result::Result<&'static [u8], String>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let path = std::env::var_os("IONODE_FONT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT));
            let bytes = ionode_study::limits::read_file(&path, 64 << 20).map_err(|e| {
                format!(
                    "cannot read the font for figures '{}' ({e}); install fonts-dejavu-core \
                     (scripts/setup does) or set IONODE_FONT to a TTF file",
                    path.display()
                )
            })?;
            // plotters keeps the font for the life of the process.
            Ok(Box::leak(bytes.into_boxed_slice()))
        })
        .clone()
        .map_err(ReportError::Failed)
}

/// Registers the TTF for plotters once per process. Without a font plotters would panic
/// at the first label, so this fails early instead.
pub fn register_font() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let bytes = font_bytes()?;
    DONE.get_or_init(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FONT, style, bytes)
                .map_err(|_| "the figure font is not a usable TTF font".to_string())?;
        }
        Ok(())
    })
    .clone()
    .map_err(ReportError::Failed)
}

pub type Area<DB> = DrawingArea<DB, Shift>;

/// A figure that can be painted on any backend.
pub trait Figure {
    /// Size in pixels of the SVG (the PNG is twice as large).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()>;
}

/// Writes `dir/name.png`, `.svg` and `.pdf` (each through a temporary name).
pub fn render(dir: &Path, name: &str, fig: &impl Figure) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    let (w, h) = fig.size();
    // The bitmap encoder picks the format from the extension, so the temporary name must
    // end in .png.
    let png = dir.join(format!("{name}.png"));
    let tmp = dir.join(format!(".{name}.{}.tmp.png", std::process::id()));
    {
        let root = BitMapBackend::new(&tmp, (2 * w, 2 * h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        // Twice the pixels: every length and font size of a figure goes through px(),
        // width() and font(), which scale by the factor set here.
        let _scale = Scale::set(2.0);
        fig.draw(&root)?;
        root.present()
            .map_err(draw)
            .with_context(|| format!("cannot write '{}'", png.display()))?;
    }
    std::fs::rename(&tmp, &png).with_context(|| format!("cannot write '{}'", png.display()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        fig.draw(&root)?;
        root.present().map_err(draw)?;
    }
    output::write_text(&dir.join(format!("{name}.svg")), &svg)?;
    let pdf = svg_to_pdf(&svg).with_context(|| format!("cannot make '{name}.pdf'"))?;
    output::write_atomically(&dir.join(format!("{name}.pdf")), |t| {
        std::fs::write(t, &pdf).with_context(|| format!("cannot write '{}'", t.display()))
    })
}

/// Sets the drawing scale for as long as it lives.
struct Scale;

impl Scale {
    fn set(v: f64) -> Scale {
        SCALE.with(|s| s.set(v));
        Scale
    }
}

impl Drop for Scale {
    fn drop(&mut self) {
        SCALE.with(|s| s.set(1.0));
    }
}

thread_local! {
    static SCALE: std::cell::Cell<f64> = const { std::cell::Cell::new(1.0) };
}

/// A length in SVG pixels, scaled for the backend being drawn.
pub fn px(v: f64) -> i32 {
    (v * SCALE.with(|s| s.get())).round() as i32
}

/// A font size in SVG points, scaled for the backend.
pub fn font(size: f64) -> TextStyle<'static> {
    (FONT, size * SCALE.with(|s| s.get())).into_font().into()
}

/// A line width, scaled.
pub fn width(w: f64) -> u32 {
    px(w).max(1) as u32
}

/// The SVG as a PDF with the figure font embedded.
fn svg_to_pdf(svg: &str) -> Result<Vec<u8>> {
    static DB: OnceLock<Arc<svg2pdf::usvg::fontdb::Database>> = OnceLock::new();
    let bytes = font_bytes()?;
    let db = DB
        .get_or_init(|| {
            let mut db = svg2pdf::usvg::fontdb::Database::new();
            db.load_font_data(bytes.to_vec());
            let family = db
                .faces()
                .next()
                .and_then(|face| face.families.first().map(|f| f.0.clone()));
            if let Some(f) = family {
                db.set_sans_serif_family(f);
            }
            Arc::new(db)
        })
        .clone();
    let options = svg2pdf::usvg::Options {
        fontdb: db,
        font_family: FONT.to_string(),
        ..Default::default()
    };
    let tree = svg2pdf::usvg::Tree::from_str(svg, &options).map_err(draw)?;
    let mut pdf = svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions::default(),
    )
    .map_err(|e| draw(format!("{e:?}")))?;
    sort_resource_entries(&mut pdf);
    Ok(pdf)
}

/// Puts the entries of every resource dictionary of a PDF written by svg2pdf in one order.
///
/// svg2pdf 0.13 writes a page's resources (`/XObject << /xo3 8 0 R ... >>`) from a
/// `HashMap`, so the same figure came out with its entries in another order each time
/// (the same bytes, permuted line by line). A dictionary's order carries no meaning in
/// PDF, and sorting the lines in place keeps every byte offset (the cross-reference table
/// stays valid), so two reports of one study give identical PDF files. Only blocks whose
/// every line is an `/name N 0 R` entry are touched.
fn sort_resource_entries(pdf: &mut [u8]) {
    const START: &[u8] = b"/Resources <<\n";
    let mut at = 0;
    while let Some(found) = find(&pdf[at..], START) {
        let mut pos = at + found + START.len();
        // The resource types (`/XObject <<`, `/ExtGState <<`, ...) until the closing `>>`.
        loop {
            let Some(line_end) = find(&pdf[pos..], b"\n").map(|e| pos + e) else {
                return;
            };
            let line = &pdf[pos..line_end];
            if !line.trim_ascii_start().starts_with(b"/") || !line.ends_with(b" <<") {
                break;
            }
            let body = line_end + 1;
            let mut lines: Vec<Vec<u8>> = Vec::new();
            let mut p = body;
            while let Some(e) = find(&pdf[p..], b"\n").map(|e| p + e) {
                let l = &pdf[p..e];
                if l.trim_ascii() == b">>" {
                    break;
                }
                lines.push(l.to_vec());
                p = e + 1;
            }
            if lines.iter().all(|l| is_ref_entry(l)) {
                lines.sort();
                let sorted: Vec<u8> = lines
                    .iter()
                    .flat_map(|l| [&l[..], b"\n"].concat())
                    .collect();
                pdf[body..p].copy_from_slice(&sorted);
            }
            // Past the dictionary's closing line.
            pos = find(&pdf[p..], b"\n").map_or(pdf.len(), |e| p + e + 1);
        }
        at = pos;
    }
}

/// `      /name 12 0 R`.
fn is_ref_entry(line: &[u8]) -> bool {
    let words: Vec<&[u8]> = line
        .split(|b| *b == b' ')
        .filter(|w| !w.is_empty())
        .collect();
    matches!(words.as_slice(), [name, n, b"0", b"R"]
        if name.starts_with(b"/") && n.iter().all(u8::is_ascii_digit))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Colours of the Okabe-Ito palette (distinguishable with the common colour-vision
/// deficiencies), black last.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(140, 81, 10),   // brown (for yellow, which is too pale on white)
    RGBColor(0, 0, 0),
];

pub const GREY: RGBColor = RGBColor(120, 120, 120);

/// The colour of an ion, the same in every figure.
pub fn ion_colour(canonical: &str) -> RGBColor {
    const IONS: [&str; 10] = [
        "Na+", "Mg^2+", "Li+", "SO4^2-", "K+", "Ca^2+", "NO3-", "Cl-", "NH4+", "HCO3-",
    ];
    match IONS.iter().position(|i| *i == canonical) {
        Some(8) => RGBColor(90, 90, 90),
        Some(9) => RGBColor(170, 170, 170),
        Some(k) => PALETTE[k],
        None => {
            let h = canonical
                .bytes()
                .fold(7u32, |a, b| a.wrapping_mul(31) ^ u32::from(b));
            PALETTE[(h % 7) as usize]
        }
    }
}

/// The colour of an electroneutrality constraint (DSPM-DE grey).
pub fn constraint_colour(constraint: Option<&str>) -> RGBColor {
    match constraint {
        Some("hard") => PALETTE[0],
        Some("none") => PALETTE[3],
        Some(_) => PALETTE[1],
        None => GREY,
    }
}

/// Lighter: `t` of the way to white.
pub fn tint(c: RGBColor, t: f64) -> RGBColor {
    let m = |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * t).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

/// Marker shapes for feeds, in order, and the glyph a caption writes for each.
pub const MARKERS: [&str; 6] = ["●", "■", "▲", "◆", "▼", "✚"];

/// Draws marker `k` of [`MARKERS`] at a backend position.
pub fn marker<DB: DrawingBackend>(
    area: &Area<DB>,
    k: usize,
    (x, y): (i32, i32),
    size: i32,
    c: RGBColor,
) -> Result<()> {
    let s = size;
    let style = c.filled();
    match k % MARKERS.len() {
        0 => area.draw(&Circle::new((x, y), s, style)),
        1 => area.draw(&Rectangle::new([(x - s, y - s), (x + s, y + s)], style)),
        2 => area.draw(&Polygon::new(
            vec![(x, y - s - 1), (x - s - 1, y + s), (x + s + 1, y + s)],
            style,
        )),
        3 => area.draw(&Polygon::new(
            vec![
                (x, y - s - 2),
                (x + s + 2, y),
                (x, y + s + 2),
                (x - s - 2, y),
            ],
            style,
        )),
        4 => area.draw(&Polygon::new(
            vec![(x, y + s + 1), (x - s - 1, y - s), (x + s + 1, y - s)],
            style,
        )),
        _ => {
            let w = (s / 2).max(1);
            area.draw(&Rectangle::new([(x - s, y - w), (x + s, y + w)], style))
                .and_then(|_| area.draw(&Rectangle::new([(x - w, y - s), (x + w, y + s)], style)))
        }
    }
    .map_err(draw)
}

/// Splits an area into a grid of `n` panels, at most `cols` wide.
pub fn panels<DB: DrawingBackend>(area: &Area<DB>, n: usize, cols: usize) -> Vec<Area<DB>> {
    let cols = cols.min(n).max(1);
    let rows = n.div_ceil(cols);
    area.split_evenly((rows, cols))
        .into_iter()
        .take(n)
        .collect()
}

/// A title line at the top of an area, returning the rest.
pub fn titled<DB: DrawingBackend>(area: &Area<DB>, text: &str, size: f64) -> Result<Area<DB>> {
    let (w, _) = area.dim_in_pixel();
    let size = fitted_size(text, w, size);
    area.margin(px(8.0), 0, 0, 0)
        .titled(text, font(size))
        .map_err(draw)
}

/// The ticks of a log axis over `[lo, hi]`: 1, 2 and 5 times the decades, or the decades
/// alone when that would be more than eight ticks.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let within = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let all: Vec<f64> = (a..=b)
        .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)))
        .filter(within)
        .collect();
    if all.len() < 3 {
        // Less than a decade: finer round values.
        (a..=b)
            .flat_map(|k| [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0].map(|m| m * 10f64.powi(k)))
            .filter(within)
            .collect()
    } else if all.len() <= 8 {
        all
    } else {
        (a..=b).map(|k| 10f64.powi(k)).filter(within).collect()
    }
}

/// A tick of [`log_ticks`] as text: plain between 0.01 and 1000 (`1.5`, `0.02`), else
/// as [`log_tick`] writes it.
fn tick_label(t: f64, minor: bool) -> String {
    if (0.01..1000.0).contains(&t) {
        let s = format!("{t:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        log_tick(t, minor)
    }
}

/// The chart of a linear x and log y axis.
pub type LogChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::combinators::LogCoord<f64>,
    >,
>;

/// Draws the labels, tick marks and faint grid lines of a log y axis at [`log_ticks`] on
/// `panel` (the area the chart was built on). The mesh is drawn with `y_labels(0)`:
/// plotters' own log positions crowd (`1.0e-1` over `9.0e-2`).
pub fn draw_log_y<DB: DrawingBackend>(
    chart: &mut LogChart<'_, DB>,
    panel: &Area<DB>,
    (x0, x1): (f64, f64),
    (lo, hi): (f64, f64),
) -> Result<()> {
    let ticks = log_ticks(lo, hi);
    let minor = ticks.iter().any(|t| {
        let m = t / 10f64.powf(t.log10().floor());
        (m - 1.0).abs() > 1e-6 && (m - 10.0).abs() > 1e-6
    });
    let base = panel.get_base_pixel();
    for &t in &ticks {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x0, t), (x1, t)],
                BLACK.mix(0.1),
            )))
            .map_err(draw)?;
        let (x, y) = chart.backend_coord(&(x0, t));
        let (x, y) = (x - base.0, y - base.1);
        panel
            .draw(&PathElement::new(vec![(x - px(5.0), y), (x, y)], BLACK))
            .map_err(draw)?;
        panel
            .draw(&Text::new(
                tick_label(t, minor),
                (x - px(8.0), y),
                font(12.0).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Right,
                    plotters::style::text_anchor::VPos::Center,
                )),
            ))
            .map_err(draw)?;
    }
    Ok(())
}

/// A font size small enough for `text` to fit `width` backend pixels (DejaVu Sans averages
/// about 0.55 em per character), at most `max`.
pub fn fitted_size(text: &str, width: u32, max: f64) -> f64 {
    let scale = SCALE.with(|s| s.get());
    let chars = text.chars().count().max(1) as f64;
    (f64::from(width) / scale * 0.96 / (0.55 * chars)).clamp(9.0, max)
}

/// Range with a little padding; never empty.
pub fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let pad = ((hi - lo).abs() * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// Unicode superscript of an integer: `-3` -> `⁻³`.
pub fn superscript(n: i32) -> String {
    n.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect()
}

/// The label of a log-axis tick: decades as `10⁻²` (or plain `0.01`-style numbers
/// between 0.01 and 1000), `2` and `5` multiples only when `minor` (a range under two
/// decades), nothing for the other positions plotters proposes, so labels never crowd.
pub fn log_tick(v: f64, minor: bool) -> String {
    if !(v > 0.0 && v.is_finite()) {
        return String::new();
    }
    let e = v.log10().floor();
    let m = v / 10f64.powf(e);
    let near = |x: f64| (m - x).abs() < 1e-6 * x;
    let k = e as i32;
    let plain = |x: f64| {
        if (0.01..1000.0).contains(&x) {
            let s = format!("{x:.3}");
            Some(s.trim_end_matches('0').trim_end_matches('.').to_string())
        } else {
            None
        }
    };
    if near(1.0) || near(10.0) {
        let k = if near(10.0) { k + 1 } else { k };
        plain(10f64.powi(k)).unwrap_or_else(|| format!("10{}", superscript(k)))
    } else if minor && (near(2.0) || near(5.0)) {
        plain(v).unwrap_or_else(|| format!("{}×10{}", m.round(), superscript(k)))
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_decades_and_never_crowd() {
        assert_eq!(log_tick(0.1, false), "0.1");
        assert_eq!(log_tick(1e-3, false), "10⁻³");
        assert_eq!(log_tick(0.09, false), "");
        assert_eq!(log_tick(0.05, true), "0.05");
        assert_eq!(log_tick(0.05, false), "");
        assert_eq!(log_tick(2e-4, true), "2×10⁻⁴");
        assert_eq!(superscript(-12), "⁻¹²");
    }

    #[test]
    fn log_axes_get_one_two_five_or_decades() {
        let t = log_ticks(0.03, 0.6);
        let want = [0.05, 0.1, 0.2, 0.5];
        assert_eq!(t.len(), 4);
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        assert_eq!(log_ticks(1e-6, 1.0).len(), 7);
        assert_eq!(log_ticks(1.2, 2.5).len(), 3, "{:?}", log_ticks(1.2, 2.5));
        assert_eq!(tick_label(1.5, true), "1.5");
    }

    #[test]
    fn ions_keep_their_colour() {
        assert_eq!(ion_colour("Na+"), PALETTE[0]);
        assert_eq!(ion_colour("Mg^2+"), PALETTE[1]);
        assert_ne!(ion_colour("Li+"), ion_colour("Mg^2+"));
    }

    /// A figure with many resources (one image object per marker), made twice.
    #[test]
    fn the_same_figure_gives_the_same_pdf_bytes() {
        let mut svg =
            String::from(r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">"#);
        for i in 0..60 {
            svg.push_str(&format!(
                r#"<circle cx="{}" cy="{}" r="3" fill="rgb({},0,0)" fill-opacity="0.{}"/>"#,
                10 + 3 * i,
                20 + 2 * i,
                4 * i,
                1 + i % 9
            ));
        }
        svg.push_str(r#"<text x="10" y="190" font-family="sans-serif">Mg²⁺ ± λ</text></svg>"#);
        let (a, b) = (svg_to_pdf(&svg).unwrap(), svg_to_pdf(&svg).unwrap());
        assert!(find(&a, b"/Resources <<").is_some());
        assert!(a == b, "two conversions differ");
    }

    #[test]
    fn resource_entries_are_sorted_in_place() {
        let mut pdf = b"x\n/Resources <<\n  /ExtGState <<\n    /g2 9 0 R\n    /g10 3 0 R\n  >>\n  /ProcSet [/PDF]\n>>\nstream\n/Resources <<\n  /X <<\n    /b 1 0 R\n    junk\n  >>\n".to_vec();
        let len = pdf.len();
        sort_resource_entries(&mut pdf);
        assert_eq!(pdf.len(), len);
        let text = String::from_utf8(pdf).unwrap();
        assert!(text.contains("    /g10 3 0 R\n    /g2 9 0 R\n"), "{text}");
        assert!(text.contains("    /b 1 0 R\n    junk\n"), "{text}");
    }
}
