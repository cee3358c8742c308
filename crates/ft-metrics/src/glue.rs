//! `evaluate.load("glue", config)`: the metric set of each GLUE config, under the same keys.

use std::collections::BTreeMap;

use crate::classification::{accuracy, f1, matthews_correlation};
use crate::correlation::{pearson, spearman};
use crate::error::MetricError;

/// Metric values by key, as evaluate's `compute` returns them.
pub type Metrics = BTreeMap<String, f64>;

/// Which metrics a GLUE config reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `accuracy` and `f1` (mrpc, qqp).
    AccuracyF1,
    /// `pearson` and `spearmanr` (stsb).
    Correlation,
    /// `matthews_correlation` (cola).
    Matthews,
    /// `accuracy` (every other config).
    Accuracy,
}

/// The GLUE metric for one config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueMetric {
    config: String,
    kind: Kind,
}

/// `evaluate.load("glue", config)`.
pub fn glue_metric(config: &str) -> Result<GlueMetric, MetricError> {
    let kind = match config {
        "mrpc" | "qqp" => Kind::AccuracyF1,
        "stsb" => Kind::Correlation,
        "cola" => Kind::Matthews,
        "sst2" | "mnli" | "mnli_mismatched" | "mnli_matched" | "qnli" | "rte" | "wnli" | "hans"
        | "ax" => Kind::Accuracy,
        other => {
            return Err(MetricError::UnknownConfig {
                name: other.to_string(),
            });
        }
    };
    Ok(GlueMetric {
        config: config.to_string(),
        kind,
    })
}

impl GlueMetric {
    /// The config name.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// The keys `compute` returns, in evaluate's order.
    pub fn keys(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::AccuracyF1 => &["accuracy", "f1"],
            Kind::Correlation => &["pearson", "spearmanr"],
            Kind::Matthews => &["matthews_correlation"],
            Kind::Accuracy => &["accuracy"],
        }
    }

    /// Whether predictions are scores (stsb) rather than classes.
    pub fn is_regression(&self) -> bool {
        self.kind == Kind::Correlation
    }

    /// Scores class predictions (every config but stsb).
    pub fn compute(&self, predictions: &[i64], references: &[i64]) -> Result<Metrics, MetricError> {
        let mut metrics = Metrics::new();
        match self.kind {
            Kind::AccuracyF1 => {
                metrics.insert("accuracy".into(), accuracy(predictions, references)?);
                metrics.insert("f1".into(), f1(predictions, references)?);
            }
            Kind::Matthews => {
                let value = matthews_correlation(predictions, references)?;
                metrics.insert("matthews_correlation".into(), value);
            }
            Kind::Accuracy => {
                metrics.insert("accuracy".into(), accuracy(predictions, references)?);
            }
            Kind::Correlation => {
                return Err(MetricError::WrongKind {
                    config: self.config.clone(),
                    expected: "float scores; use compute_scores",
                });
            }
        }
        Ok(metrics)
    }

    /// Scores regression predictions (stsb).
    pub fn compute_scores(
        &self,
        predictions: &[f64],
        references: &[f64],
    ) -> Result<Metrics, MetricError> {
        if self.kind != Kind::Correlation {
            return Err(MetricError::WrongKind {
                config: self.config.clone(),
                expected: "class ids; use compute",
            });
        }
        let mut metrics = Metrics::new();
        metrics.insert("pearson".into(), pearson(predictions, references)?);
        metrics.insert("spearmanr".into(), spearman(predictions, references)?);
        Ok(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_evaluate() {
        let keys = |config: &str| glue_metric(config).unwrap().keys().to_vec();
        assert_eq!(keys("mrpc"), ["accuracy", "f1"]);
        assert_eq!(keys("qqp"), ["accuracy", "f1"]);
        assert_eq!(keys("stsb"), ["pearson", "spearmanr"]);
        assert_eq!(keys("cola"), ["matthews_correlation"]);
        for config in ["sst2", "mnli", "qnli", "rte", "wnli", "ax"] {
            assert_eq!(keys(config), ["accuracy"], "{config}");
        }
        assert!(matches!(
            glue_metric("squad"),
            Err(MetricError::UnknownConfig { .. })
        ));
    }

    #[test]
    fn computed_keys_are_the_declared_keys() {
        let metric = glue_metric("mrpc").unwrap();
        let metrics = metric.compute(&[1, 0, 1], &[1, 1, 1]).unwrap();
        assert_eq!(metrics.keys().collect::<Vec<_>>(), metric.keys());
        assert!(metric.compute_scores(&[1.0], &[1.0]).is_err());
        assert!(glue_metric("stsb").unwrap().compute(&[1], &[1]).is_err());
    }
}
