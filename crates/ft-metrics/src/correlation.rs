//! Correlation metrics, following scipy.stats.

use crate::error::{MetricError, check_lengths};

fn check_finite(values: &[f64]) -> Result<(), MetricError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricError::NonFinite {
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Pearson's r (`scipy.stats.pearsonr(...)[0]`), clipped to [-1, 1]. Like scipy, a constant
/// input has no correlation and gives NaN.
pub fn pearson(predictions: &[f64], references: &[f64]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    check_finite(predictions)?;
    check_finite(references)?;
    Ok(pearson_unchecked(predictions, references))
}

fn pearson_unchecked(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
    let (mean_x, mean_y) = (mean(x), mean(y));
    let centred = |v: &[f64], m: f64| v.iter().map(|value| value - m).collect::<Vec<_>>();
    let (xm, ym) = (centred(x, mean_x), centred(y, mean_y));
    let norm = |v: &[f64]| v.iter().map(|value| value * value).sum::<f64>().sqrt();
    let (norm_x, norm_y) = (norm(&xm), norm(&ym));
    if norm_x == 0.0 || norm_y == 0.0 {
        return f64::NAN;
    }
    // scipy normalises before the dot product, which keeps large inputs from overflowing.
    let r: f64 = xm
        .iter()
        .zip(&ym)
        .map(|(a, b)| (a / norm_x) * (b / norm_y))
        .sum();
    r.clamp(-1.0, 1.0)
}

/// Ranks from 1, ties sharing their average rank (`scipy.stats.rankdata(method="average")`).
pub fn rankdata(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end; each gets their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = rank;
        }
        start = end;
    }
    ranks
}

/// Spearman's rho (`scipy.stats.spearmanr(...)[0]`): Pearson's r of the average ranks.
pub fn spearman(predictions: &[f64], references: &[f64]) -> Result<f64, MetricError> {
    check_lengths(predictions.len(), references.len())?;
    check_finite(predictions)?;
    check_finite(references)?;
    Ok(pearson_unchecked(
        &rankdata(predictions),
        &rankdata(references),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_the_average_rank() {
        assert_eq!(rankdata(&[10.0, 20.0, 10.0, 5.0]), vec![2.5, 4.0, 2.5, 1.0]);
    }

    #[test]
    fn constant_input_has_no_correlation() {
        assert!(
            pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0])
                .unwrap()
                .is_nan()
        );
        assert!(
            pearson(&[f64::NAN, 1.0], &[1.0, 2.0]).is_err(),
            "NaN input must be refused"
        );
    }

    #[test]
    fn monotone_is_perfect_rank_correlation() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let y = [1.0, 8.0, 27.0, 64.0];
        assert_eq!(spearman(&x, &y).unwrap(), 1.0);
        assert!(pearson(&x, &y).unwrap() < 1.0);
    }
}
