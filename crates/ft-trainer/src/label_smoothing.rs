//! `LabelSmoother`: transformers' label smoothing of the classification loss.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// transformers' `LabelSmoother(epsilon)` for class labels: `(1 - ε)` times the cross-entropy
/// with each row's label plus `ε` times the mean cross-entropy over all classes, the same as
/// torch's `CrossEntropyLoss(label_smoothing=ε)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSmoother {
    /// The smoothing factor, `label_smoothing_factor`.
    pub epsilon: f64,
}

impl LabelSmoother {
    /// The smoother `args.label_smoothing_factor` asks for; `None` at 0, where transformers
    /// keeps the model's own loss.
    pub fn from_factor(label_smoothing_factor: f64) -> Option<Self> {
        (label_smoothing_factor != 0.0).then_some(Self {
            epsilon: label_smoothing_factor,
        })
    }

    /// The mean smoothed loss, `[1]`, of `[batch, classes]` logits against `[batch]` class ids.
    pub fn loss(&self, logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        let [batch, _] = logits.dims();
        let neg_log_probs = log_softmax(logits, 1).neg();
        let nll = neg_log_probs
            .clone()
            .gather(1, labels.reshape([batch, 1]))
            .mean();
        // transformers divides the sum over rows and classes by rows × classes.
        let uniform = neg_log_probs.mean();
        nll.mul_scalar(1.0 - self.epsilon)
            .add(uniform.mul_scalar(self.epsilon))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    /// torch's `CrossEntropyLoss(label_smoothing=ε)` on fixed logits, written by
    /// `tests/fixtures/make_label_smoothing_fixture.py`, on every compiled backend.
    #[test]
    fn matches_torch_cross_entropy_with_label_smoothing() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/label_smoothing.json")).unwrap();
        let logits: Vec<Vec<f32>> = serde_json::from_value(fixture["logits"].clone()).unwrap();
        let labels: Vec<i64> = serde_json::from_value(fixture["labels"].clone()).unwrap();
        let shape = [logits.len(), logits[0].len()];
        let flat: Vec<f32> = logits.concat();
        for (name, device) in test_support::devices!() {
            let logits = Tensor::<2>::from_data(TensorData::new(flat.clone(), shape), &device);
            let labels = Tensor::<1, Int>::from_data(
                TensorData::new(labels.clone(), [labels.len()]),
                &device,
            );
            for case in fixture["losses"].as_array().unwrap() {
                let epsilon = case["label_smoothing"].as_f64().unwrap();
                let expected = case["loss"].as_f64().unwrap();
                let loss = LabelSmoother { epsilon }
                    .loss(logits.clone(), labels.clone())
                    .into_scalar::<f64>();
                assert!(
                    (loss - expected).abs() < 1e-5,
                    "{name}, ε={epsilon}: {loss} against torch's {expected}"
                );
            }
        }
    }

    #[test]
    fn zero_is_no_smoother() {
        assert_eq!(LabelSmoother::from_factor(0.0), None);
        assert_eq!(
            LabelSmoother::from_factor(0.1),
            Some(LabelSmoother { epsilon: 0.1 })
        );
    }
}
