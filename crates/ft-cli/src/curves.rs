//! `training_curves.svg`: the loss, evaluation metrics and learning rate of a run.
//!
//! The training loss and the learning rate come from the Trainer's per-step record, so that
//! a short run still draws a line rather than a point per logging step; `log_history` gives
//! the evaluations, and the logged steps from before a resume.

use std::path::Path;

use anyhow::{Context, Result};
use ft_trainer::{StepRecord, TrainerState};
use plotters::coord::Shift;
use plotters::prelude::*;

/// A series of (step, value) points.
type Series = Vec<(f64, f64)>;

/// One line of a panel, with its legend entry.
struct Line<'a> {
    name: &'a str,
    points: &'a Series,
    color: RGBColor,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// The legend's share of a panel's width, on the right of the plot: never over the data.
const LEGEND_WIDTH: u32 = 190;

fn logged(state: &TrainerState, key: &str) -> Series {
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

/// `value` of every step: the logged steps before the record starts (a resumed run), then
/// the record.
fn per_step(
    state: &TrainerState,
    steps: &[StepRecord],
    key: &str,
    value: fn(&StepRecord) -> f64,
) -> Series {
    let first = steps.first().map_or(usize::MAX, |record| record.step) as f64;
    let before = logged(state, key)
        .into_iter()
        .filter(|&(step, _)| step < first);
    let recorded = steps
        .iter()
        .map(|record| (record.step as f64, value(record)))
        .filter(|(_, value)| value.is_finite());
    before.chain(recorded).collect()
}

/// The evaluation metrics other than the loss and the speed figures.
fn metric_names(state: &TrainerState) -> Vec<String> {
    let mut names: Vec<String> = state
        .log_history
        .iter()
        .flat_map(|entry| entry.keys())
        .filter(|key| {
            key.starts_with("eval_")
                && *key != "eval_loss"
                && !key.ends_with("runtime")
                && !key.ends_with("per_second")
        })
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The steps at which an epoch ended, before the last step.
fn epoch_boundaries(steps: &[StepRecord]) -> Vec<(f64, usize)> {
    steps
        .windows(2)
        .filter(|pair| pair[1].epoch.floor() > pair[0].epoch.floor())
        .map(|pair| {
            let epoch = pair[1].epoch.floor();
            // The epoch ended at the later step when it lands exactly there.
            let step = if pair[1].epoch == epoch {
                pair[1].step
            } else {
                pair[0].step
            };
            (step as f64, epoch as usize)
        })
        .filter(|&(step, _)| step < steps.last().map_or(0.0, |last| last.step as f64))
        .collect()
}

fn value_range(lines: &[Line]) -> (f64, f64) {
    let values = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() && hi > lo {
        (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    } else if lo.is_finite() {
        let pad = if lo == 0.0 { 0.5 } else { 0.5 * lo.abs() };
        (lo - pad, hi + pad)
    } else {
        (0.0, 1.0)
    }
}

/// A tick label: scientific notation with at most three significant digits where the
/// axis's values are small or large (`3e-5`, `2.5e-5`), plain decimals otherwise.
pub fn tick_label(value: f64, magnitude: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    if !(1e-2..1e5).contains(&magnitude) {
        let text = format!("{value:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exponent}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A step tick: steps are whole numbers, and a fractional tick is left blank rather than
/// rounded onto its neighbour's label.
fn step_label(step: &f64) -> String {
    if step.fract() == 0.0 {
        format!("{}", *step as i64)
    } else {
        String::new()
    }
}

fn draw_panel(
    area: &Area,
    title: &str,
    max_step: f64,
    boundaries: &[(f64, usize)],
    lines: &[Line],
) -> Result<()> {
    let (plot, legend) = area.split_horizontally(area.dim_in_pixel().0 - LEGEND_WIDTH);
    let (lo, hi) = value_range(lines);
    let magnitude = lo.abs().max(hi.abs());
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_step, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&step_label)
        .y_label_formatter(&|value| tick_label(*value, magnitude))
        .draw()?;
    let boundary_style = ShapeStyle::from(&BLACK.mix(0.35)).stroke_width(1);
    for &(step, epoch) in boundaries {
        chart.draw_series(DashedLineSeries::new(
            [(step, lo), (step, hi)],
            4,
            4,
            boundary_style,
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("epoch {epoch}"),
            (step, hi),
            ("sans-serif", 12).into_font().color(&BLACK.mix(0.6)),
        )))?;
    }
    for line in lines {
        let style = line
            .color
            .stroke_width(if line.points.len() > 50 { 1 } else { 2 });
        chart.draw_series(LineSeries::new(line.points.iter().copied(), style))?;
        if line.points.len() <= 50 {
            let dots = line
                .points
                .iter()
                .map(|&p| Circle::new(p, 3, line.color.filled()));
            chart.draw_series(dots)?;
        }
    }
    draw_legend(&legend, lines)
}

/// The legend, in its own area on the right of the plot.
fn draw_legend(area: &Area, lines: &[Line]) -> Result<()> {
    for (i, line) in lines.iter().enumerate() {
        let y = 40 + 22 * i as i32;
        area.draw(&PathElement::new(
            vec![(8, y), (30, y)],
            line.color.stroke_width(2),
        ))?;
        area.draw(&Text::new(
            line.name.to_string(),
            (36, y - 7),
            ("sans-serif", 14),
        ))?;
    }
    Ok(())
}

/// Writes `output_dir/training_curves.svg`: the training loss at every step with the
/// evaluation loss, the evaluation metrics, and the learning rate at every step, against the
/// step, with the epochs' ends marked.
pub fn write(output_dir: &Path, state: &TrainerState, steps: &[StepRecord]) -> Result<()> {
    let path = output_dir.join("training_curves.svg");
    let max_step = state.global_step.max(1) as f64;
    let boundaries = epoch_boundaries(steps);
    let train_loss = per_step(state, steps, "loss", |record| record.loss);
    let eval_loss = logged(state, "eval_loss");
    let learning_rate = per_step(state, steps, "learning_rate", |r| r.learning_rate);
    let metrics: Vec<(String, Series)> = metric_names(state)
        .into_iter()
        .map(|name| {
            let points = logged(state, &name);
            (name, points)
        })
        .collect();
    let palette = [GREEN, MAGENTA, CYAN, BLACK];
    let metric_lines: Vec<Line> = metrics
        .iter()
        .zip(palette.iter().cycle())
        .map(|((name, points), color)| Line {
            name,
            points,
            color: *color,
        })
        .collect();

    let root = SVGBackend::new(&path, (900, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let loss_lines = [
        Line {
            name: "train loss",
            points: &train_loss,
            color: BLUE,
        },
        Line {
            name: "eval loss",
            points: &eval_loss,
            color: RED,
        },
    ];
    let lr_line = [Line {
        name: "learning rate",
        points: &learning_rate,
        color: BLUE,
    }];
    draw_panel(&panels[0], "loss", max_step, &boundaries, &loss_lines)?;
    draw_panel(
        &panels[1],
        "evaluation metrics",
        max_step,
        &boundaries,
        &metric_lines,
    )?;
    draw_panel(&panels[2], "learning rate", max_step, &boundaries, &lr_line)?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: usize, epoch: f64) -> StepRecord {
        StepRecord {
            step,
            epoch,
            loss: 0.5,
            learning_rate: 3e-5,
            grad_norm: 1.0,
        }
    }

    #[test]
    fn small_values_are_ticked_in_scientific_notation() {
        assert_eq!(tick_label(3e-5, 5e-5), "3e-5");
        assert_eq!(tick_label(2.5e-5, 5e-5), "2.5e-5");
        assert_eq!(tick_label(0.000030000000000000004, 5e-5), "3e-5");
        assert_eq!(tick_label(0.0, 5e-5), "0");
        assert_eq!(tick_label(0.25, 0.7), "0.25");
        assert_eq!(tick_label(0.8000000001, 0.9), "0.8");
    }

    #[test]
    fn steps_are_whole_numbers() {
        assert_eq!(step_label(&100.0), "100");
        assert_eq!(step_label(&1.5), "");
    }

    #[test]
    fn an_epoch_ends_where_the_epoch_count_crosses_a_whole_number() {
        // 3 steps per epoch, 2 epochs.
        let steps: Vec<StepRecord> = (1..=6).map(|s| record(s, s as f64 / 3.0)).collect();
        assert_eq!(epoch_boundaries(&steps), [(3.0, 1)]);
        // No boundary at the last step, which ends the run.
        let steps: Vec<StepRecord> = (1..=3).map(|s| record(s, s as f64 / 3.0)).collect();
        assert!(epoch_boundaries(&steps).is_empty());
    }
}
