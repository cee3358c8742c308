//! Why a metric could not be computed.

/// Invalid metric input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// Predictions and references differ in length.
    #[error("{predictions} predictions but {references} references")]
    LengthMismatch {
        /// Number of predictions.
        predictions: usize,
        /// Number of references.
        references: usize,
    },
    /// There is nothing to score.
    #[error("no predictions to score")]
    Empty,
    /// A binary metric was given a label other than 0 and 1.
    #[error("binary {metric} needs labels 0 and 1, found {label}")]
    NotBinary {
        /// The metric.
        metric: &'static str,
        /// The offending label.
        label: i64,
    },
    /// A score is NaN or infinite.
    #[error("non-finite value {value} at position {index}")]
    NonFinite {
        /// Position in the input.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The GLUE config is unknown.
    #[error(
        "unknown GLUE config `{name}`; expected one of cola, sst2, mrpc, qqp, stsb, mnli, mnli_mismatched, mnli_matched, qnli, rte, wnli, hans, ax"
    )]
    UnknownConfig {
        /// The name given.
        name: String,
    },
    /// Class metrics were asked of a regression config, or the reverse.
    #[error("the `{config}` metric takes {expected}")]
    WrongKind {
        /// The GLUE config.
        config: String,
        /// What it takes.
        expected: &'static str,
    },
}

pub(crate) fn check_lengths(predictions: usize, references: usize) -> Result<(), MetricError> {
    if predictions != references {
        return Err(MetricError::LengthMismatch {
            predictions,
            references,
        });
    }
    if predictions == 0 {
        return Err(MetricError::Empty);
    }
    Ok(())
}
