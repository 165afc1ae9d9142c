//! The loss chart (training loss per step, eval loss per eval) drawn with plotters as PNG and SVG.
//! Text uses a TrueType font found on the system (`$NANODEX_FONT`, else DejaVu Sans from Debian's
//! `fonts-dejavu-core`); without one the chart is drawn without labels.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn font_registered() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = std::env::var_os("NANODEX_FONT")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        candidates.extend(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf",
                "C:\\Windows\\Fonts\\arial.ttf",
            ]
            .map(PathBuf::from),
        );
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    train: &[(usize, f64)],
    eval: &[(usize, f64)],
    title: &str,
    text: bool,
) -> Result<(), String> {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let max_step = train
        .iter()
        .chain(eval)
        .map(|p| p.0)
        .max()
        .unwrap_or(1)
        .max(1);
    let max_loss = train
        .iter()
        .chain(eval)
        .map(|p| p.1)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;
    let mut builder = ChartBuilder::on(&area);
    builder.margin(16);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(40)
            .y_label_area_size(56);
    }
    let mut chart = builder
        .build_cartesian_2d(0usize..max_step, 0f64..max_loss)
        .map_err(|e| e.to_string())?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235));
    // Without a font the chart has no label areas, so the tick labels are not drawn. (Asking plotters for zero
    // labels instead never returns: its integer key-point search multiplies the step by 10 until it overflows.)
    if text {
        mesh.x_desc("step").y_desc("loss");
    }
    mesh.draw().map_err(|e| e.to_string())?;
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(255, 127, 14);
    let series = chart
        .draw_series(LineSeries::new(train.iter().copied(), blue.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    if text {
        series.label("train loss").legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2))
        });
    }
    if !eval.is_empty() {
        let s = chart
            .draw_series(LineSeries::new(
                eval.iter().copied(),
                orange.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        if text {
            s.label("eval loss").legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], orange.stroke_width(2))
            });
        }
        chart
            .draw_series(eval.iter().map(|p| Circle::new(*p, 4, orange.filled())))
            .map_err(|e| e.to_string())?;
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    area.present().map_err(|e| e.to_string())
}

/// Writes `loss.png` and `loss.svg` into `dir` (each to a temporary name, then renamed).
pub fn write_loss_charts(
    dir: &Path,
    train: &[(usize, f64)],
    eval: &[(usize, f64)],
    title: &str,
) -> Result<(PathBuf, PathBuf), String> {
    let png = dir.join("loss.png");
    let svg = dir.join("loss.svg");
    let png_tmp = dir.join("loss.tmp.png");
    let svg_tmp = dir.join("loss.tmp.svg");
    let text = font_registered();
    draw(
        BitMapBackend::new(&png_tmp, (960, 540)).into_drawing_area(),
        train,
        eval,
        title,
        text,
    )?;
    draw(
        SVGBackend::new(&svg_tmp, (960, 540)).into_drawing_area(),
        train,
        eval,
        title,
        text,
    )?;
    std::fs::rename(&png_tmp, &png).map_err(|e| e.to_string())?;
    std::fs::rename(&svg_tmp, &svg).map_err(|e| e.to_string())?;
    Ok((png, svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Points = Vec<(usize, f64)>;

    fn points() -> (Points, Points) {
        let train = (1..=100).map(|s| (s, 4.0 / s as f64)).collect();
        (train, vec![(50, 0.2), (100, 0.1)])
    }

    /// Draws the chart into an SVG string on another thread; None if it has not finished within a minute
    /// (a drawing that never returns would otherwise hang the test run instead of failing it).
    fn svg(text: bool) -> Option<Result<String, String>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (train, eval) = points();
            let mut out = String::new();
            let r = draw(
                SVGBackend::with_string(&mut out, (960, 540)).into_drawing_area(),
                &train,
                &eval,
                "demo: LoRA loss",
                text,
            );
            let _ = tx.send(r.map(|()| out));
        });
        rx.recv_timeout(std::time::Duration::from_secs(60)).ok()
    }

    #[test]
    fn a_chart_without_a_font_is_drawn_without_text() {
        // A GPU server image without DejaVu: training finished, then drawing the chart never returned.
        let out = svg(false)
            .expect("drawing the chart without a font panicked or did not finish within a minute")
            .expect("chart drawn");
        assert!(out.contains("<polyline"), "the loss line is drawn");
        assert!(!out.contains("<text"), "no text without a font");
    }

    #[test]
    fn a_chart_with_a_font_has_its_labels() {
        assert!(
            font_registered(),
            "tests need DejaVu Sans (fonts-dejavu-core) or $NANODEX_FONT"
        );
        let out = svg(true)
            .expect("drawing the chart panicked or did not finish within a minute")
            .expect("chart drawn");
        for label in ["demo: LoRA loss", "train loss", "eval loss", "step"] {
            assert!(out.contains(label), "{label} missing from the chart");
        }
    }
}
