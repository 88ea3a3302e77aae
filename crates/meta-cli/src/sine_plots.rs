//! The sine-regression figures of Finn et al. (2017): a test task's true curve, its K support
//! points and the model's predictions before and after 1 and 10 adaptation steps (Figure 2), and
//! the test MSE against adaptation steps (Figure 3); PNG and SVG.

use crate::config::RunConfig;
use anyhow::{Context, Result, anyhow};
use burn::tensor::{Tensor, TensorData, backend::AutodiffBackend};
use meta_algos::{MetaLearner, Predictor, StepsReport};
use meta_data::{SineTasks, Split};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const FONT: &str = crate::plots::FONT;
/// Test tasks drawn in `sine_fit`, one panel each.
const FIT_TASKS: u64 = 2;
/// Points of each drawn curve.
const GRID: usize = 200;

/// A labelled curve: `(label, colour, points)`.
type Curve = (String, RGBColor, Vec<(f64, f64)>);

/// One drawn task: its true curve, support points and predicted curves.
struct Fit {
    truth: Vec<(f64, f64)>,
    support: Vec<(f64, f64)>,
    /// One curve per number of steps drawn.
    predictions: Vec<Curve>,
}

/// Writes `mse_steps.{png,svg}`: the mean test MSE (± 95% CI) after 0…k adaptation steps.
pub fn write_steps_curve(report: &StepsReport, dir: &Path) -> Result<Vec<PathBuf>> {
    crate::plots::register_font();
    let (png, svg) = (dir.join("mse_steps.png"), dir.join("mse_steps.svg"));
    let caption = format!("test MSE vs adaptation steps ({} tasks)", report.episodes);
    draw_steps(
        &BitMapBackend::new(&png, (900, 540)).into_drawing_area(),
        report,
        &caption,
    )?;
    draw_steps(
        &SVGBackend::new(&svg, (900, 540)).into_drawing_area(),
        report,
        &caption,
    )?;
    Ok(vec![png, svg])
}

/// Writes `sine_fit.{png,svg}` for the first test tasks of `config`'s sine split: the true
/// wave, the K support points, and `learner`'s predictions after 0, 1 and
/// `config.test_inner_steps` steps of adaptation from `model`.
pub fn write_fits<B: AutodiffBackend, L: MetaLearner<B>>(
    learner: &L,
    model: &L::Model,
    config: &RunConfig,
    dir: &Path,
    device: &B::Device,
) -> Result<Vec<PathBuf>> {
    crate::plots::register_font();
    let sine = config.sine.unwrap_or_default();
    let tasks = SineTasks::new(
        sine.config(config.shots, config.test_queries),
        Split::Test,
        config.seed,
    )
    .context("[sine]")?;
    let [lo, hi] = sine.x_range;
    let xs: Vec<f64> = (0..GRID)
        .map(|i| lo + (hi - lo) * i as f64 / (GRID - 1) as f64)
        .collect();
    let grid = Tensor::<B, 4>::from_data(
        TensorData::new(xs.iter().map(|&x| x as f32).collect(), [GRID, 1, 1, 1]),
        device,
    );
    let last = config.test_inner_steps;
    let mut fits = Vec::new();
    for index in 0..FIT_TASKS {
        let (wave, episode) = tasks.task(index);
        let task = episode.to_task::<B>(device);
        let path = learner
            .adapt_trajectory(model, task.support_x, task.support_y, 1, last)
            .ok_or_else(|| anyhow!("{} has no adaptation steps to plot", learner.name()))?;
        let mut predictions = Vec::new();
        let shown = [(0, "pre-update", RED), (1, "after 1 step", GREEN)];
        let last_label = format!("after {last} steps");
        for (steps, label, colour) in shown
            .iter()
            .map(|&(k, l, c)| (k, l.to_string(), c))
            .chain((last > 1).then_some((last, last_label, BLUE)))
            .filter(|(k, _, _)| *k <= last)
        {
            let out = path[steps].predict(grid.clone()).detach().into_data();
            let ys: Vec<f64> = out.iter::<f64>().collect();
            predictions.push((label, colour, xs.iter().copied().zip(ys).collect()));
        }
        fits.push(Fit {
            truth: xs.iter().map(|&x| (x, wave.at(x))).collect(),
            support: episode
                .support_images
                .iter()
                .zip(&episode.support_values)
                .map(|(&x, &y)| (f64::from(x), f64::from(y)))
                .collect(),
            predictions,
        });
    }
    let (png, svg) = (dir.join("sine_fit.png"), dir.join("sine_fit.svg"));
    let size = (600 * FIT_TASKS as u32, 450);
    draw_fits(
        &BitMapBackend::new(&png, size).into_drawing_area(),
        &fits,
        config.shots,
    )?;
    draw_fits(
        &SVGBackend::new(&svg, size).into_drawing_area(),
        &fits,
        config.shots,
    )?;
    Ok(vec![png, svg])
}

fn draw_steps<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    report: &StepsReport,
    caption: &str,
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting failed: {e}");
    area.fill(&WHITE).map_err(err)?;
    let top = report
        .mse
        .iter()
        .zip(&report.ci95)
        .map(|(m, c)| m + c)
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let steps = report.mse.len().saturating_sub(1).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(caption, (FONT, 22))
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.2..steps + 0.2, 0.0..top * 1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("adaptation steps")
        .y_desc("mean squared error")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    let points: Vec<(f64, f64)> = report
        .mse
        .iter()
        .enumerate()
        .map(|(k, &m)| (k as f64, m))
        .collect();
    chart
        .draw_series(
            report
                .mse
                .iter()
                .zip(&report.ci95)
                .enumerate()
                .map(|(k, (&m, &c))| {
                    ErrorBar::new_vertical(k as f64, m - c, m, m + c, BLUE.filled(), 8)
                }),
        )
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

fn draw_fits<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fits: &[Fit],
    shots: usize,
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting failed: {e}");
    area.fill(&WHITE).map_err(err)?;
    for (panel, fit) in area.split_evenly((1, fits.len())).iter().zip(fits) {
        let all = fit
            .truth
            .iter()
            .chain(&fit.support)
            .chain(fit.predictions.iter().flat_map(|(_, _, c)| c.iter()));
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in all.filter(|(_, y)| y.is_finite()) {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        let pad = ((y1 - y0) * 0.08).max(0.1);
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .caption(format!("K = {shots}"), (FONT, 20))
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(fit.truth.clone(), BLACK.stroke_width(2)))
            .map_err(err)?
            .label("ground truth")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        for (label, colour, curve) in &fit.predictions {
            let colour = *colour;
            chart
                .draw_series(LineSeries::new(curve.clone(), colour.stroke_width(2)))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .draw_series(
                fit.support
                    .iter()
                    .map(|&p| TriangleMarker::new(p, 7, MAGENTA.filled())),
            )
            .map_err(err)?
            .label("support points")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 7, MAGENTA.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(err)?;
    }
    area.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_curve_is_written_as_png_and_svg_with_a_point_per_step() {
        let report = StepsReport {
            mse: vec![3.0, 1.0, 0.5, 0.3],
            ci95: vec![0.5, 0.2, 0.1, 0.05],
            episodes: 100,
            seed: 1,
        };
        let tmp = tempfile::tempdir().unwrap();
        let files = write_steps_curve(&report, tmp.path()).unwrap();
        assert_eq!(files.len(), 2);
        let png = image::open(&files[0]).unwrap().to_rgb8();
        let blue = png.pixels().filter(|p| p.0 == [0, 0, 255]).count();
        assert!(blue > 100, "curve drawn: {blue} blue pixels");
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(svg.contains("adaptation steps") && svg.contains("100 tasks"));
    }
}
