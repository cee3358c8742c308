//! `TrainingArguments` and the `Trainer`: train, evaluate, predict, checkpoints and callbacks.
