//! What evaluation and prediction return, and how metrics are computed from them.

use std::collections::BTreeMap;

use ft_metrics::GlueMetric;

use crate::error::TrainerError;

/// Metric names to values (`eval_loss`, `eval_accuracy`, `train_runtime`, ...).
pub type Metrics = BTreeMap<String, f64>;

/// Model outputs and labels of a whole dataset: what `compute_metrics` receives.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPrediction {
    /// `[rows × num_labels]` logits, row-major.
    pub predictions: Vec<f32>,
    /// Outputs per row.
    pub num_labels: usize,
    /// The labels (class ids, or scores for regression), if the data had them.
    pub label_ids: Option<Vec<f32>>,
}

impl EvalPrediction {
    /// Rows.
    pub fn len(&self) -> usize {
        self.predictions.len() / self.num_labels.max(1)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`'s logits.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.predictions[i * self.num_labels..(i + 1) * self.num_labels]
    }

    /// `np.argmax(predictions, axis=-1)`: the first maximum of each row.
    pub fn argmax(&self) -> Vec<i64> {
        (0..self.len())
            .map(|i| {
                let row = self.row(i);
                let mut best = 0;
                for (j, value) in row.iter().enumerate() {
                    if *value > row[best] {
                        best = j;
                    }
                }
                best as i64
            })
            .collect()
    }
}

/// `compute_metrics`: an [`EvalPrediction`] to named metrics (without the `eval_` prefix).
pub type ComputeMetrics =
    Box<dyn Fn(&EvalPrediction) -> Result<Metrics, TrainerError> + Send + Sync>;

/// The notebook's `compute_metrics` for a GLUE task: argmax (or the raw score for STS-B),
/// then evaluate's `glue` metric.
pub fn glue_compute_metrics(metric: GlueMetric) -> ComputeMetrics {
    Box::new(move |prediction: &EvalPrediction| {
        let Some(labels) = &prediction.label_ids else {
            return Ok(Metrics::new());
        };
        let metrics = if metric.is_regression() {
            let predictions: Vec<f64> = prediction
                .predictions
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let references: Vec<f64> = labels.iter().map(|&v| f64::from(v)).collect();
            metric.compute_scores(&predictions, &references)?
        } else {
            let references: Vec<i64> = labels.iter().map(|&v| v as i64).collect();
            metric.compute(&prediction.argmax(), &references)?
        };
        Ok(metrics)
    })
}

/// `PredictionOutput`: logits, labels and metrics (`test_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionOutput {
    /// Logits and labels.
    pub prediction: EvalPrediction,
    /// `test_loss` (with labels), the metrics and speed.
    pub metrics: Metrics,
}

impl PredictionOutput {
    /// `predictions.shape`: `(rows, num_labels)`.
    pub fn predictions_shape(&self) -> (usize, usize) {
        (self.prediction.len(), self.prediction.num_labels)
    }
}

/// `TrainOutput(global_step, training_loss, metrics)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutput {
    /// Optimizer steps done.
    pub global_step: usize,
    /// Mean training loss over this call's steps.
    pub training_loss: f64,
    /// `train_runtime`, `train_samples_per_second`, `train_steps_per_second`, `total_flos`,
    /// `train_loss`, `epoch`.
    pub metrics: Metrics,
}

/// transformers' `speed_metrics`: runtime (4 decimals) and rates (3 decimals).
pub fn speed_metrics(prefix: &str, seconds: f64, samples: f64, steps: f64) -> Metrics {
    let round = |value: f64, digits: i32| {
        let scale = 10f64.powi(digits);
        (value * scale).round() / scale
    };
    let mut metrics = Metrics::from([(format!("{prefix}_runtime"), round(seconds, 4))]);
    if seconds > 0.0 {
        metrics.insert(
            format!("{prefix}_samples_per_second"),
            round(samples / seconds, 3),
        );
        metrics.insert(
            format!("{prefix}_steps_per_second"),
            round(steps / seconds, 3),
        );
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum() {
        let prediction = EvalPrediction {
            predictions: vec![-3.8, 3.5, 3.0, -2.8, 1.0, 1.0],
            num_labels: 2,
            label_ids: Some(vec![1.0, 0.0, 1.0]),
        };
        assert_eq!(prediction.argmax(), [1, 0, 0]);
        let metrics =
            glue_compute_metrics(ft_metrics::glue_metric("mrpc").unwrap())(&prediction).unwrap();
        assert!((metrics["accuracy"] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn speed_metrics_round_like_transformers() {
        let metrics = speed_metrics("train", 0.18619, 100.0, 14.0);
        assert_eq!(metrics["train_runtime"], 0.1862);
        assert_eq!(metrics["train_samples_per_second"], 537.086);
    }
}

/// A float as Python's `repr` writes it (`1.0`, `5e-05`, `0.8382352941176471`).
pub fn python_float(value: f64) -> String {
    if !value.is_finite() {
        return match value {
            v if v.is_nan() => "nan".into(),
            v if v > 0.0 => "inf".into(),
            _ => "-inf".into(),
        };
    }
    let magnitude = value.abs();
    if value != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let text = format!("{value}");
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Metrics as a Python dict literal, in the given key order.
pub fn python_dict<'a>(entries: impl IntoIterator<Item = (&'a str, f64)>) -> String {
    let items: Vec<String> = entries
        .into_iter()
        .map(|(key, value)| format!("'{key}': {}", python_float(value)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// Prints as the notebook shows `trainer.train()`'s return value.
impl std::fmt::Display for TrainOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let order = [
            "train_runtime",
            "train_samples_per_second",
            "train_steps_per_second",
            "total_flos",
            "train_loss",
            "epoch",
        ];
        let entries = order
            .iter()
            .filter_map(|key| self.metrics.get(*key).map(|v| (*key, *v)));
        write!(
            f,
            "TrainOutput(global_step={}, training_loss={}, metrics={})",
            self.global_step,
            python_float(self.training_loss),
            python_dict(entries)
        )
    }
}

#[cfg(test)]
mod repr_tests {
    use super::*;

    #[test]
    fn floats_print_as_python_reprs() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(5e-5), "5e-05");
        assert_eq!(python_float(0.8382352941176471), "0.8382352941176471");
        assert_eq!(python_float(406183858377360.0), "406183858377360.0");
        assert_eq!(python_float(3e16), "3e+16");
        let output = TrainOutput {
            global_step: 1377,
            training_loss: 0.5,
            metrics: Metrics::from([
                ("epoch".to_string(), 3.0),
                ("train_runtime".to_string(), 139.008),
            ]),
        };
        assert_eq!(
            output.to_string(),
            "TrainOutput(global_step=1377, training_loss=0.5, metrics={'train_runtime': 139.008, 'epoch': 3.0})"
        );
    }
}
