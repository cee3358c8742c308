//! The GLUE metrics: accuracy, binary F1, precision and recall, the Matthews correlation,
//! and Pearson's and Spearman's correlations, with the conventions of scikit-learn and scipy,
//! plus [`glue_metric`], which returns the keys that `evaluate.load("glue", task)` returns.
//!
//! ```
//! let metric = ft_metrics::glue_metric("mrpc")?;
//! let scores = metric.compute(&[1, 0, 1, 1], &[1, 0, 0, 1])?;
//! assert_eq!(scores["accuracy"], 0.75);
//! assert_eq!(scores["f1"], 0.8);
//! # Ok::<(), ft_metrics::MetricError>(())
//! ```

#![warn(missing_docs)]

mod classification;
mod correlation;
mod error;
mod glue;

pub use classification::{accuracy, f1, matthews_correlation, precision, recall};
pub use correlation::{pearson, rankdata, spearman};
pub use error::MetricError;
pub use glue::{GlueMetric, Metrics, glue_metric};
