//! `TrainingArguments` and the `Trainer`: the rest of the course notebook.
//!
//! ```no_run
//! use std::sync::Arc;
//! use burn::tensor::Device;
//! use ft_bert::prelude::*;
//! use ft_collate::{AutoTokenizer, EncodedDatasetDict};
//! use ft_trainer::{IntervalStrategy, Trainer, TrainingArguments, glue_compute_metrics};
//!
//! let device = Device::flex();
//! let raw = glue_data::load_dataset("../shared/data/glue", "mrpc")?;
//! let checkpoint = "../shared/models/all-MiniLM-L6-v2";
//! let tokenizer = AutoTokenizer::from_pretrained(checkpoint)?;
//! let tokenized = EncodedDatasetDict::map(&raw, &tokenizer)?;
//! let args = TrainingArguments::new("test-trainer").with_eval_strategy(IntervalStrategy::Epoch);
//! let model = AutoModelForSequenceClassification::from_pretrained(checkpoint, 2, &device)?;
//! let mut trainer = Trainer::new(model, args, &device)?
//!     .with_train_dataset(tokenized.split("train")?.clone())
//!     .with_eval_dataset(tokenized.split("validation")?.clone())
//!     .with_tokenizer(tokenizer)
//!     .with_compute_metrics(glue_compute_metrics(ft_metrics::glue_metric("mrpc")?));
//! let output = trainer.train(None)?;
//! println!("{output:?}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod args;
mod callbacks;
mod checkpoint;
pub mod distributed;
mod error;
mod evaluation;
mod hf_checkpoint;
mod label_smoothing;
mod metrics;
mod model;
mod optimizer;
mod precision;
mod saving;
mod schedule;
mod state;
pub mod tensorboard;
mod torch_save;
mod trainer;

pub use args::{
    Integration, IntervalStrategy, OptimizerNames, SaveStrategy, SchedulerType,
    TrainSamplingStrategy, TrainingArguments,
};
pub use callbacks::{
    ConsoleCallback, EarlyStoppingCallback, TrainerCallback, format_g4, metric_key,
};
pub use checkpoint::{
    CHECKPOINT_PREFIX, get_last_checkpoint, rotate_checkpoints, sorted_checkpoints,
};
pub use error::{
    ArgumentsError, ArgumentsFileError, BoxedError, CheckpointProblem, SetupError, TrainerError,
};
pub use label_smoothing::LabelSmoother;
pub use metrics::{
    ComputeMetrics, EvalPrediction, Metrics, PredictionOutput, TrainOutput, glue_compute_metrics,
    python_dict, python_float, speed_metrics,
};
pub use model::{TrainableModel, model_input};
pub use optimizer::{AdamW, AdamWConfig, Clipping, MomentValues, OPTIMIZER_FILE, is_no_decay};
pub use precision::{LossScaler, Precision};
pub use schedule::Schedule;
pub use state::{LogEntry, StepRecord, TRAINER_STATE_FILE, TrainerControl, TrainerState};
pub use trainer::{ResumeFrom, Trainer};
