//! Class metrics, following scikit-learn's definitions and edge cases.
//!
//! Arguments come in `evaluate`'s order, `(predictions, references)`; scikit-learn's own
//! functions take `(y_true, y_pred)`.

use std::collections::BTreeMap;

use crate::error::{MetricError, check_lengths};

/// Fraction of predictions equal to their reference (`sklearn.metrics.accuracy_score`).
pub fn accuracy(predictions: &[i64], references: &[i64]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    let correct = predictions
        .iter()
        .zip(references)
        .filter(|(p, r)| p == r)
        .count();
    Ok(correct as f64 / predictions.len() as f64)
}

/// The binary confusion counts with positive label 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Binary {
    true_positives: u64,
    predicted_positives: u64,
    actual_positives: u64,
}

impl Binary {
    fn count(
        metric: &'static str,
        predictions: &[i64],
        references: &[i64],
    ) -> Result<Self, MetricError> {
        check_lengths(predictions.len(), references.len())?;
        let mut counts = Binary {
            true_positives: 0,
            predicted_positives: 0,
            actual_positives: 0,
        };
        for (&p, &r) in predictions.iter().zip(references) {
            for label in [p, r] {
                if label != 0 && label != 1 {
                    return Err(MetricError::NotBinary { metric, label });
                }
            }
            counts.true_positives += u64::from(p == 1 && r == 1);
            counts.predicted_positives += u64::from(p == 1);
            counts.actual_positives += u64::from(r == 1);
        }
        Ok(counts)
    }
}

/// scikit-learn's `zero_division=0.0`: an undefined ratio scores 0.
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Binary precision for label 1 (`precision_score`, 0.0 when nothing is predicted positive).
pub fn precision(predictions: &[i64], references: &[i64]) -> Result<f64, MetricError> {
    let c = Binary::count("precision", predictions, references)?;
    Ok(ratio(c.true_positives, c.predicted_positives))
}

/// Binary recall for label 1 (`recall_score`, 0.0 when no reference is positive).
pub fn recall(predictions: &[i64], references: &[i64]) -> Result<f64, MetricError> {
    let c = Binary::count("recall", predictions, references)?;
    Ok(ratio(c.true_positives, c.actual_positives))
}

/// Binary F1 for label 1 (`f1_score` with `average="binary"`, 0.0 on zero division).
///
/// Computed as the harmonic mean `2·p·r / (p + r)`, as scikit-learn did when the course
/// notebook ran, so that its `'f1': 0.8885135135135136` is reproduced to the last bit.
/// scikit-learn 1.3 and later divide once, `2·tp / (tp + fp + tp + fn)`, which can differ
/// from this by one ulp.
pub fn f1(predictions: &[i64], references: &[i64]) -> Result<f64, MetricError> {
    let c = Binary::count("f1", predictions, references)?;
    let p = ratio(c.true_positives, c.predicted_positives);
    let r = ratio(c.true_positives, c.actual_positives);
    if p + r == 0.0 {
        return Ok(0.0);
    }
    Ok(2.0 * p * r / (p + r))
}

/// The Matthews correlation coefficient for any number of classes
/// (`sklearn.metrics.matthews_corrcoef`: 0.0 when either side has a single class).
pub fn matthews_correlation(predictions: &[i64], references: &[i64]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    let mut true_counts: BTreeMap<i64, i128> = BTreeMap::new();
    let mut pred_counts: BTreeMap<i64, i128> = BTreeMap::new();
    let mut correct: i128 = 0;
    for (&p, &r) in predictions.iter().zip(references) {
        *true_counts.entry(r).or_default() += 1;
        *pred_counts.entry(p).or_default() += 1;
        correct += i128::from(p == r);
    }
    let n = predictions.len() as i128;
    let dot_true_pred: i128 = true_counts
        .iter()
        .map(|(label, t)| t * pred_counts.get(label).copied().unwrap_or(0))
        .sum();
    let sum_squares = |counts: &BTreeMap<i64, i128>| counts.values().map(|c| c * c).sum::<i128>();
    let cov_ytyp = correct * n - dot_true_pred;
    let cov_ypyp = n * n - sum_squares(&pred_counts);
    let cov_ytyt = n * n - sum_squares(&true_counts);
    let denominator = cov_ytyt * cov_ypyp;
    if denominator == 0 {
        return Ok(0.0);
    }
    Ok(cov_ytyp as f64 / (denominator as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_division_scores_zero() {
        assert_eq!(f1(&[0, 0], &[0, 0]).unwrap(), 0.0);
        assert_eq!(precision(&[0, 0], &[1, 0]).unwrap(), 0.0);
        assert_eq!(recall(&[1, 0], &[0, 0]).unwrap(), 0.0);
        assert_eq!(matthews_correlation(&[1, 1], &[0, 1]).unwrap(), 0.0);
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            accuracy(&[1], &[1, 0]),
            Err(MetricError::LengthMismatch {
                predictions: 1,
                references: 2
            })
        );
        assert_eq!(accuracy(&[], &[]), Err(MetricError::Empty));
        assert_eq!(
            f1(&[2], &[1]),
            Err(MetricError::NotBinary {
                metric: "f1",
                label: 2
            })
        );
    }

    #[test]
    fn perfect_and_inverse_predictions() {
        let truth = [0, 1, 1, 0, 1];
        let inverse: Vec<i64> = truth.iter().map(|t| 1 - t).collect();
        assert_eq!(accuracy(&truth, &truth).unwrap(), 1.0);
        assert_eq!(f1(&truth, &truth).unwrap(), 1.0);
        assert_eq!(matthews_correlation(&truth, &truth).unwrap(), 1.0);
        assert_eq!(matthews_correlation(&inverse, &truth).unwrap(), -1.0);
    }
}
