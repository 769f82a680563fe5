//! Plots as PNG: the loss curve of a run (`OUT/loss.png`: training loss per step and held-out loss
//! per evaluation), the critic's calibration (`critic.out_dir/calibration.png`) and eval's exact
//! match per variant (`report.png`), drawn with plotters into memory, encoded with `png` and written atomically. The font is egui's bundled Ubuntu Light, so no system font is needed.

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use crsm::train::metrics::Metrics;
use plotters::prelude::*;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 520;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Only fails on a malformed font file, which the bundled one is not; text would then be
        // missing from the plot, not the plot itself.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

/// Draws `metrics` into `path` (PNG). Nothing to draw (no step yet) is not an error: no file.
pub fn plot_loss_curve(metrics: &Metrics, title: &str, path: &Path) -> Result<()> {
    if metrics.steps.is_empty() {
        return Ok(());
    }
    register_font();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let train: Vec<(f64, f64)> = metrics
            .steps
            .iter()
            .map(|r| (r.step as f64, r.loss as f64))
            .collect();
        let held_out: Vec<(f64, f64)> = metrics
            .evals
            .iter()
            .map(|r| (r.step as f64, r.loss))
            .collect();
        let all = train
            .iter()
            .chain(&held_out)
            .map(|p| p.1)
            .filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let last_step = train.last().map_or(1.0, |p| p.0).max(1.0);
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..last_step, (lo - pad).max(0.0)..hi + pad)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("optimizer step")
            .y_desc("loss (nats / token)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(train, BLUE.mix(0.6)))
            .map_err(|e| anyhow!("{e}"))?
            .label("training")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE));
        chart
            .draw_series(LineSeries::new(held_out.clone(), RED.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label("held out")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        chart
            .draw_series(held_out.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    write_png(&rgb, path)
}

/// Encodes a WIDTH x HEIGHT RGB buffer as PNG and writes it atomically.
fn write_png(rgb: &[u8], path: &Path) -> Result<()> {
    write_png_sized(rgb, WIDTH, HEIGHT, path)
}

fn write_png_sized(rgb: &[u8], width: u32, height: u32, path: &Path) -> Result<()> {
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("encoding a plot")?;
        writer.write_image_data(rgb).context("encoding a plot")?;
    }
    crsm::io::write_atomic(path, &png_bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The critic's calibration as a PNG: per bin of predicted value, the mean realised value
/// against the mean predicted (nats per token), beside the diagonal a perfect critic would
/// follow. `bins` are (predicted, realised, count).
pub fn plot_calibration(bins: &[(f64, f64, usize)], title: &str, path: &Path) -> Result<()> {
    if bins.is_empty() {
        return Ok(());
    }
    register_font();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let values = bins
            .iter()
            .flat_map(|b| [b.0, b.1])
            .filter(|v| v.is_finite());
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let range = (lo - pad)..(hi + pad);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(range.clone(), range.clone())
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("predicted value (mean of the heads, nats / token)")
            .y_desc("realised value (nats / token)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(
                vec![(range.start, range.start), (range.end, range.end)],
                BLACK.mix(0.4),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.mix(0.4)));
        let points: Vec<(f64, f64)> = bins.iter().map(|b| (b.0, b.1)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), RED.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label("held-out bins")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, RED.filled())))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    write_png(&rgb, path)
}

/// Exact match per eval variant as bars with their 95% intervals (`bars`: name, rate, low,
/// high, as shares), in the order given, the baseline first.
pub fn plot_exact_match(bars: &[(String, f64, f64, f64)], title: &str, path: &Path) -> Result<()> {
    if bars.is_empty() {
        return Ok(());
    }
    register_font();
    let height = HEIGHT.max(120 + 40 * bars.len() as u32);
    let mut rgb = vec![0u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let n = bars.len();
        // Rows top to bottom in the order given: row k is drawn at y = n - 1 - k.
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .margin_right(36)
            .x_label_area_size(40)
            .y_label_area_size(260)
            // A discrete range holds its end: 0..n - 1 is n rows.
            .build_cartesian_2d(0.0..100.0, (0..n - 1).into_segmented())
            .map_err(|e| anyhow!("{e}"))?;
        let names: Vec<String> = bars.iter().rev().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .x_labels(11)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("exact match (%), with the 95% bootstrap interval")
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let row = |k: usize| n - 1 - k;
        chart
            .draw_series(bars.iter().enumerate().map(|(k, b)| {
                let colour = if k == 0 {
                    BLACK.mix(0.35)
                } else {
                    BLUE.mix(0.5)
                };
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(row(k))),
                        (100.0 * b.1, SegmentValue::Exact(row(k) + 1)),
                    ],
                    colour.filled(),
                );
                bar.set_margin(6, 6, 0, 0);
                bar
            }))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(k, b)| {
                PathElement::new(
                    vec![
                        (100.0 * b.2, SegmentValue::CenterOf(row(k))),
                        (100.0 * b.3, SegmentValue::CenterOf(row(k))),
                    ],
                    BLACK.stroke_width(3),
                )
            }))
            .map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    write_png_sized(&rgb, WIDTH, height, path)
}
