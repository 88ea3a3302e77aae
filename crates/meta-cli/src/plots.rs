//! Learning-curve plots (loss and accuracy, train and validation) as PNG and SVG.

use crate::run_dir::MetricsLine;
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// The font every chart uses (DejaVu Sans, embedded).
pub const FONT: &str = "sans-serif";

/// Registers [`FONT`] once per process.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded DejaVu font always parses; an error here would only lose axis labels.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// One curve: label, colour and `(iteration, value)` points.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

fn series(lines: &[MetricsLine], pick: impl Fn(&MetricsLine) -> Option<f64>) -> Vec<(f64, f64)> {
    lines
        .iter()
        .filter_map(|l| {
            pick(l)
                .filter(|v| v.is_finite())
                .map(|v| (l.iteration as f64, v))
        })
        .collect()
}

/// Writes `loss.{png,svg}` and `accuracy.{png,svg}` into `dir` (for regression runs, whose
/// validation measures MSE, `val_mse.{png,svg}` in place of the accuracy chart); returns the
/// files written.
pub fn write_learning_curves(lines: &[MetricsLine], dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    register_font();
    let regression = lines
        .iter()
        .any(|l| l.val_mse.is_some() || l.train_acc.is_nan());
    let second = if regression {
        (
            "val_mse",
            "validation query MSE",
            vec![("validation", RED, series(lines, |l| l.val_mse))],
        )
    } else {
        (
            "accuracy",
            "query accuracy",
            vec![
                ("train", BLUE, series(lines, |l| Some(l.train_acc))),
                ("validation", RED, series(lines, |l| l.val_acc)),
            ],
        )
    };
    let charts: [(&str, &str, Vec<Series>); 2] = [
        (
            "loss",
            "query loss",
            vec![
                ("train", BLUE, series(lines, |l| Some(l.train_loss))),
                ("validation", RED, series(lines, |l| l.val_loss)),
            ],
        ),
        second,
    ];
    let mut written = Vec::new();
    for (name, y_label, curves) in &charts {
        let png = dir.join(format!("{name}.png"));
        let svg = dir.join(format!("{name}.svg"));
        draw(
            &BitMapBackend::new(&png, (900, 540)).into_drawing_area(),
            y_label,
            curves,
        )?;
        draw(
            &SVGBackend::new(&svg, (900, 540)).into_drawing_area(),
            y_label,
            curves,
        )?;
        written.extend([png, svg]);
    }
    Ok(written)
}

fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    y_label: &str,
    curves: &[Series],
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting failed: {e}");
    area.fill(&WHITE).map_err(err)?;
    let points = curves.iter().flat_map(|(_, _, p)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(y_label, (FONT, 22))
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max * 1.02, (y_min - pad)..(y_max + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("meta-iteration")
        .y_desc(y_label)
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (label, colour, points) in curves {
        if points.is_empty() {
            continue;
        }
        let colour = *colour;
        // A marker on every logged point, so that a curve of one point shows too.
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 3, colour.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(*label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_and_svg_with_both_curves() {
        let lines: Vec<MetricsLine> = (1..=50)
            .map(|i| MetricsLine {
                iteration: i,
                wall_s: i as f64,
                train_loss: 1.6 / i as f64,
                train_acc: 1.0 - 0.8 / i as f64,
                val_loss: i.is_multiple_of(10).then_some(1.7 / i as f64),
                val_acc: i.is_multiple_of(10).then_some(1.0 - 0.9 / i as f64),
                val_mse: None,
                val_ci95: i.is_multiple_of(10).then_some(0.02),
            })
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        let files = write_learning_curves(&lines, tmp.path()).unwrap();
        assert_eq!(files.len(), 4);
        let png = image::open(tmp.path().join("accuracy.png"))
            .unwrap()
            .to_rgb8();
        assert_eq!(png.dimensions(), (900, 540));
        let red = png.pixels().filter(|p| p.0 == [255, 0, 0]).count();
        let blue = png.pixels().filter(|p| p.0 == [0, 0, 255]).count();
        assert!(
            red > 100 && blue > 100,
            "curves drawn: red {red}, blue {blue}"
        );
        let svg = std::fs::read_to_string(tmp.path().join("loss.svg")).unwrap();
        assert!(svg.contains("validation") && svg.contains("meta-iteration"));
    }

    #[test]
    fn a_run_of_one_logged_iteration_shows_its_points() {
        let lines = vec![MetricsLine {
            iteration: 1,
            wall_s: 1.0,
            train_loss: 1.2,
            train_acc: 0.4,
            val_loss: Some(1.3),
            val_acc: Some(0.35),
            val_mse: None,
            val_ci95: Some(0.05),
        }];
        let tmp = tempfile::tempdir().unwrap();
        write_learning_curves(&lines, tmp.path()).unwrap();
        for chart in ["loss", "accuracy"] {
            let svg = std::fs::read_to_string(tmp.path().join(format!("{chart}.svg"))).unwrap();
            // One marker per series (train and validation); the legend draws lines, not circles.
            assert_eq!(svg.matches("<circle").count(), 2, "{chart}.svg:\n{svg}");
        }
    }
}
