//! The bench chart: horizontal bars of median tasks/s, one cluster per (workload, algorithm), one
//! colour per backend (the reference's included), on a log axis when the speeds span more than
//! a factor of 20.

use super::report::Row;
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1000;
const BAR_PX: u32 = 16;

/// Backend colours, in the order backends first appear.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Registers the embedded DejaVu font under [`FONT`] (as `plots.rs` does for the curves).
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The embedded font always parses; an error here would only lose the labels.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// What the chart shows: clusters of `(backend index, tasks/s)` bars.
struct Bars {
    backends: Vec<String>,
    clusters: Vec<(String, Vec<(usize, f64)>)>,
}

impl Bars {
    fn new(rows: &[&Row]) -> Self {
        let mut bars = Bars {
            backends: Vec::new(),
            clusters: Vec::new(),
        };
        for row in rows {
            let Some(value) = row
                .tasks_per_sec_median
                .filter(|v| v.is_finite() && *v > 0.0)
            else {
                continue;
            };
            let backend = match bars.backends.iter().position(|b| *b == row.backend) {
                Some(i) => i,
                None => {
                    bars.backends.push(row.backend.clone());
                    bars.backends.len() - 1
                }
            };
            let label = format!("{} / {}", row.workload, row.algo);
            match bars.clusters.iter_mut().find(|(l, _)| *l == label) {
                Some((_, values)) => values.push((backend, value)),
                None => bars.clusters.push((label, vec![(backend, value)])),
            }
        }
        for (_, values) in &mut bars.clusters {
            values.sort_by_key(|(b, _)| *b);
        }
        bars
    }

    fn range(&self) -> (f64, f64) {
        let values = self
            .clusters
            .iter()
            .flat_map(|(_, v)| v.iter().map(|b| b.1));
        values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
    }

    /// Bar `(top, bottom)` positions on the y axis: each cluster spans one unit, centred on its
    /// index, its bars stacked inside.
    fn slot(&self, cluster: usize, k: usize, n: usize) -> (f64, f64) {
        let height = 0.8 / n.max(1) as f64;
        let top = cluster as f64 - 0.4 + k as f64 * height;
        (top, top + height)
    }
}

/// Writes `bench.png` and `bench.svg` into `dir` from the successful rows; returns the files.
pub fn write_chart(rows: &[&Row], dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    let bars = Bars::new(rows);
    let bar_count: usize = bars.clusters.iter().map(|(_, v)| v.len()).sum();
    let height = 170 + 12 * bars.clusters.len() as u32 + BAR_PX * bar_count.max(1) as u32;
    let png = dir.join("bench.png");
    let svg = dir.join("bench.svg");
    draw(
        &BitMapBackend::new(&png, (WIDTH, height)).into_drawing_area(),
        &bars,
    )?;
    draw(
        &SVGBackend::new(&svg, (WIDTH, height)).into_drawing_area(),
        &bars,
    )?;
    Ok(vec![png, svg])
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, bars: &Bars) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting failed: {e}");
    area.fill(&WHITE).map_err(err)?;
    let (lo, hi) = bars.range();
    let (lo, hi) = if lo.is_finite() && hi > 0.0 {
        (lo, hi)
    } else {
        (1.0, 10.0)
    };
    let n = bars.clusters.len().max(1);
    let y = ClusterAxis(n);
    let label_width = bars
        .clusters
        .iter()
        .map(|(l, _)| l.chars().count() as u32)
        .max()
        .unwrap_or(10)
        * 8
        + 16;
    if hi / lo > 20.0 {
        let x = (lo / 2.0..hi * 3.0).log_scale();
        draw_bars(area, bars, x, y, label_width, "tasks/s (median, log scale)")
    } else {
        draw_bars(
            area,
            bars,
            0.0..hi * 1.15,
            y,
            label_width,
            "tasks/s (median)",
        )
    }
}

/// The y axis: `n` clusters centred on 0, 1, …, n − 1 from the top down, with a tick (and a
/// label) at each centre only.
struct ClusterAxis(usize);

impl Ranged for ClusterAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let range = self.range();
        let t = (range.end - value) / (range.end - range.start);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.0).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.6..self.0 as f64 - 0.4
    }
}

fn draw_bars<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    bars: &Bars,
    x: X,
    y: Y,
    label_width: u32,
    x_desc: &str,
) -> Result<()>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting failed: {e}");
    let (head, body) = area.split_vertically(70);
    draw_head(&head, &bars.backends).map_err(err)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(14)
        .margin_top(4)
        .x_label_area_size(44)
        .y_label_area_size(label_width)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    let labels: Vec<String> = bars.clusters.iter().map(|(l, _)| l.clone()).collect();
    let y_label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x_desc)
        .y_label_formatter(&y_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    let x_left = chart.x_range().start;
    for b in 0..bars.backends.len() {
        let colour = PALETTE[b % PALETTE.len()];
        let mut rects = Vec::new();
        for (c, (_, values)) in bars.clusters.iter().enumerate() {
            for (k, &(backend, value)) in values.iter().enumerate() {
                if backend == b {
                    let (top, bottom) = bars.slot(c, k, values.len());
                    rects.push(Rectangle::new(
                        [(x_left, top), (value, bottom)],
                        colour.filled(),
                    ));
                }
            }
        }
        chart.draw_series(rects).map_err(err)?;
    }
    // The value at the end of each bar.
    let mut texts = Vec::new();
    for (c, (_, values)) in bars.clusters.iter().enumerate() {
        for (k, &(_, value)) in values.iter().enumerate() {
            let (top, bottom) = bars.slot(c, k, values.len());
            // Three significant digits (at least none after the point).
            let digits = (2.0 - value.log10().floor()).clamp(0.0, 6.0) as usize;
            texts.push(Text::new(
                format!(" {value:.digits$}"),
                (value, 0.5 * (top + bottom) - 0.04),
                (FONT, 11).into_font().color(&BLACK),
            ));
        }
    }
    chart.draw_series(texts).map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

/// The title, and below it the legend: one colour swatch and name per backend, in a row.
fn draw_head<DB: DrawingBackend>(
    head: &DrawingArea<DB, Shift>,
    backends: &[String],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let centre = (WIDTH / 2) as i32;
    let title = TextStyle::from((FONT, 22).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    head.draw(&Text::new("meta-training throughput", (centre, 8), title))?;
    let widths: Vec<i32> = backends
        .iter()
        .map(|b| 34 + 8 * b.chars().count() as i32)
        .collect();
    let mut x = centre - widths.iter().sum::<i32>() / 2;
    for (b, (name, width)) in backends.iter().zip(widths).enumerate() {
        let colour = PALETTE[b % PALETTE.len()];
        head.draw(&Rectangle::new([(x, 44), (x + 14, 56)], colour.filled()))?;
        head.draw(&Text::new(name.as_str(), (x + 20, 43), (FONT, 14)))?;
        x += width;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(backend: &str, workload: &str, algo: &str, tps: f64) -> Row {
        Row {
            backend: backend.into(),
            workload: workload.into(),
            algo: algo.into(),
            meta_batch: 4,
            tasks_per_sec_median: Some(tps),
            ..Row::default()
        }
    }

    #[test]
    fn bars_cluster_by_workload_and_algo_with_one_colour_per_backend() {
        let rows = [
            row("flex", "omniglot-5w1s", "maml", 10.0),
            row("flex", "omniglot-5w1s", "protonet", 400.0),
            row("ndarray", "omniglot-5w1s", "maml", 1.0),
            row("pytorch-cpu", "omniglot-5w1s", "maml", 20.0),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let bars = Bars::new(&refs);
        assert_eq!(bars.backends, ["flex", "ndarray", "pytorch-cpu"]);
        assert_eq!(bars.clusters.len(), 2);
        assert_eq!(bars.clusters[0].1, [(0, 10.0), (1, 1.0), (2, 20.0)]);
        let tmp = tempfile::tempdir().unwrap();
        let files = write_chart(&refs, tmp.path()).unwrap();
        assert_eq!(files.len(), 2);
        let png = image::open(&files[0]).unwrap().to_rgb8();
        let blue = png.pixels().filter(|p| p.0 == [31, 119, 180]).count();
        let green = png.pixels().filter(|p| p.0 == [44, 160, 44]).count();
        assert!(blue > 200 && green > 200, "bars drawn: {blue} {green}");
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(svg.contains("omniglot-5w1s / maml") && svg.contains("log scale"));
    }

    #[test]
    fn an_empty_chart_still_writes_both_files() {
        let tmp = tempfile::tempdir().unwrap();
        let files = write_chart(&[], tmp.path()).unwrap();
        assert!(files.iter().all(|f| f.metadata().unwrap().len() > 0));
    }
}
