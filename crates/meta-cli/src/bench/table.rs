//! The terminal table of a bench run: our rows, the reference's, failures and a footnote.

use super::report::{Reference, Report, Row, TIMING_NOTE};
use std::fmt::Write as _;

impl Report {
    /// The terminal table: our rows, then the reference's, then failures and a footnote.
    pub fn table(&self) -> String {
        let ratio_header = self.reference.as_ref().map(Reference::ratio_header);
        let mut header = vec![
            "backend",
            "workload",
            "algo",
            "mb",
            "tasks/s med",
            "min",
            "max",
            "iter ms",
            "data ms",
            "grad ms",
            "outer ms",
            "inner ms*",
            "RSS MiB",
            "GPU MiB",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        header.extend(ratio_header.clone());
        let mut lines = vec![header];
        let reference_rows = self.reference.iter().flat_map(|r| r.results.iter());
        for row in self.results.iter().chain(reference_rows) {
            let mut cells = vec![
                row.backend.clone(),
                row.workload.clone(),
                row.algo.clone(),
                row.meta_batch.to_string(),
            ];
            if row.error.is_some() {
                cells.push("FAILED (below)".into());
                cells.resize(header_len(&ratio_header), String::new());
            } else {
                for (value, digits) in [
                    (
                        row.tasks_per_sec_median,
                        rate_digits(row.tasks_per_sec_median),
                    ),
                    (row.tasks_per_sec_min, rate_digits(row.tasks_per_sec_min)),
                    (row.tasks_per_sec_max, rate_digits(row.tasks_per_sec_max)),
                    (row.iteration_ms_median, ms_digits(row.iteration_ms_median)),
                    (row.data_ms, ms_digits(row.data_ms)),
                    (row.meta_grad_ms, ms_digits(row.meta_grad_ms)),
                    (row.outer_ms, ms_digits(row.outer_ms)),
                    (row.inner_ms, ms_digits(row.inner_ms)),
                    (row.peak_rss_mb, 0),
                    (row.gpu_mem_mb, 0),
                ] {
                    cells.push(number(value, digits));
                }
                if ratio_header.is_some() {
                    cells.push(
                        row.speedup_vs_reference
                            .map_or_else(|| "-".into(), |r| format!("{r:.2}×")),
                    );
                }
            }
            lines.push(cells);
        }
        let mut out = align(&lines);
        let failures: Vec<&Row> = self.results.iter().filter(|r| r.error.is_some()).collect();
        if !failures.is_empty() {
            out.push_str("\nfailed:\n");
            for row in failures {
                let _ = writeln!(
                    out,
                    "  {} {} {}: {}",
                    row.backend,
                    row.workload,
                    row.algo,
                    row.error.as_deref().unwrap_or_default()
                );
            }
        }
        let s = &self.settings;
        let _ = writeln!(
            out,
            "\n{} warm-up + {} timed iterations per row; meta-batch {}; data: {}.",
            s.warmup,
            s.iters,
            s.meta_batch.map_or_else(
                || "each workload's own".into(),
                |m| format!("{m} (--meta-batch)")
            ),
            s.data_source
        );
        let _ = writeln!(out, "* {TIMING_NOTE}.");
        if let Some(reference) = &self.reference {
            let _ = writeln!(
                out,
                "{}: our median tasks/s over the reference's ({}) for the same workload and \
                 algorithm, preferring a reference on the same kind of device.",
                reference.ratio_header(),
                reference.tool.as_deref().unwrap_or("reference")
            );
        }
        out
    }
}

fn header_len(ratio: &Option<String>) -> usize {
    14 + usize::from(ratio.is_some())
}

/// Decimals that show a rate to three significant digits (none for 100 and above).
fn rate_digits(v: Option<f64>) -> usize {
    match v {
        Some(v) if v > 0.0 && v.is_finite() => (2.0 - v.log10().floor()).clamp(0.0, 6.0) as usize,
        _ => 2,
    }
}

fn ms_digits(v: Option<f64>) -> usize {
    match v {
        Some(v) if v >= 100.0 => 0,
        Some(v) if v >= 1.0 => 1,
        _ => 2,
    }
}

fn number(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// Columns padded to their widest cell: text left-aligned, numbers (from column 4) right-aligned.
fn align(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| {
        lines
            .iter()
            .filter_map(|l| l.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c > 0 {
                text.push_str("  ");
            }
            if c < 3 {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::report::tests::row;
    use super::super::report::{Machine, Settings};
    use super::*;

    #[test]
    fn the_table_aligns_columns_and_lists_failures() {
        let mut failed = row("ndarray", "ndarray (CPU)", None);
        failed.error = Some("meta-training loss is not finite".into());
        let mut ok = row("flex", "flex (CPU)", Some(12.345));
        ok.iteration_ms_median = Some(2592.1);
        let report = Report {
            tool: "metalearn",
            version: "0",
            unix_time: 0,
            machine: Machine::detect(),
            settings: Settings {
                warmup: 1,
                iters: 5,
                meta_batch: None,
                data_source: "synthetic".into(),
                seed: 1,
                timing: TIMING_NOTE,
            },
            results: vec![ok, failed],
            reference: None,
        };
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("backend") && lines[1].starts_with("---"));
        assert!(
            lines[2].contains("12.3") && lines[2].contains("2592"),
            "{table}"
        );
        assert!(lines[3].contains("FAILED"), "{table}");
        assert!(table.contains("loss is not finite"), "{table}");
    }
}
