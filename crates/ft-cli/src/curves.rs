//! `training_curves.svg`: the loss, evaluation metrics and learning rate of a run.

use std::path::Path;

use anyhow::{Context, Result};
use ft_trainer::TrainerState;
use plotters::prelude::*;

/// A series of (step, value) points.
type Series = Vec<(f64, f64)>;

fn series(state: &TrainerState, key: &str) -> Series {
    state
        .log_history
        .iter()
        .filter_map(|entry| {
            let step = entry.get("step")?.as_f64()?;
            let value = entry.get(key)?.as_f64()?;
            value.is_finite().then_some((step, value))
        })
        .collect()
}

fn range(points: &[&Series]) -> (f64, f64) {
    let values = points.iter().flat_map(|s| s.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() && hi > lo {
        (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    } else if lo.is_finite() {
        (lo - 0.5, hi + 0.5)
    } else {
        (0.0, 1.0)
    }
}

/// Writes `output_dir/training_curves.svg` from the run's `log_history`: training and
/// validation loss, the evaluation metrics, and the learning rate, against the step.
pub fn write(output_dir: &Path, state: &TrainerState) -> Result<()> {
    let path = output_dir.join("training_curves.svg");
    let max_step = (state.global_step.max(1)) as f64;
    let train_loss = series(state, "loss");
    let eval_loss = series(state, "eval_loss");
    let learning_rate = series(state, "learning_rate");
    let mut metric_names: Vec<String> = state
        .log_history
        .iter()
        .flat_map(|e| e.keys())
        .filter(|k| {
            k.starts_with("eval_")
                && *k != "eval_loss"
                && !k.ends_with("runtime")
                && !k.ends_with("per_second")
        })
        .cloned()
        .collect();
    metric_names.sort();
    metric_names.dedup();
    let metrics: Vec<(String, Series)> = metric_names
        .into_iter()
        .map(|name| {
            let points = series(state, &name);
            (name, points)
        })
        .collect();

    let root = SVGBackend::new(&path, (900, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let draw = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                title: &str,
                lines: &[(&str, &Series, RGBColor)]|
     -> Result<()> {
        let all: Vec<&Series> = lines.iter().map(|l| l.1).collect();
        let (lo, hi) = range(&all);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_step, lo..hi)?;
        chart.configure_mesh().x_desc("step").draw()?;
        for (name, points, color) in lines {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    };
    draw(
        &panels[0],
        "loss",
        &[
            ("train loss", &train_loss, BLUE),
            ("eval loss", &eval_loss, RED),
        ],
    )?;
    let palette = [GREEN, MAGENTA, CYAN, BLACK];
    let metric_lines: Vec<(&str, &Series, RGBColor)> = metrics
        .iter()
        .zip(palette.iter().cycle())
        .map(|((name, points), color)| (name.as_str(), points, *color))
        .collect();
    draw(&panels[1], "evaluation metrics", &metric_lines)?;
    draw(
        &panels[2],
        "learning rate",
        &[("learning rate", &learning_rate, BLUE)],
    )?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
