//! The course notebook "Fine-tuning a model with the Trainer API", cell by cell, in Rust.
//!
//! ```sh
//! cargo run --release -p examples --example finetune_mrpc            # bert-base-uncased, Hub
//! cargo run --release -p examples --example finetune_mrpc -- \
//!     ../shared/models/all-MiniLM-L6-v2 ../shared/data/glue           # local copies
//! ```

use std::sync::Arc;

use burn::tensor::Device;
use ft_bert::prelude::*;
use ft_collate::{AutoTokenizer, DataCollatorWithPadding, EncodedDatasetDict};
use ft_trainer::{EvalPrediction, IntervalStrategy, Metrics, Trainer, TrainingArguments};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cli = std::env::args().skip(1);
    let checkpoint = cli
        .next()
        .unwrap_or_else(|| "bert-base-uncased".to_string());
    let dataset = cli.next().unwrap_or_else(|| "glue".to_string());
    let device = Device::flex();

    // raw_datasets = load_dataset("glue", "mrpc")
    let raw_datasets = glue_data::load_dataset(&dataset, "mrpc")?;
    // tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    let tokenizer = AutoTokenizer::from_pretrained(&checkpoint)?;
    // tokenized_datasets = raw_datasets.map(tokenize_function, batched=True)
    let tokenized_datasets = EncodedDatasetDict::map(&raw_datasets, &tokenizer)?;
    // data_collator = DataCollatorWithPadding(tokenizer=tokenizer)
    let data_collator = DataCollatorWithPadding::new(&tokenizer);
    println!("{data_collator}");

    // def compute_metrics(eval_preds): argmax, then evaluate.load("glue", "mrpc")
    let metric = ft_metrics::glue_metric("mrpc")?;
    let compute_metrics =
        move |eval_preds: &EvalPrediction| -> Result<Metrics, ft_trainer::TrainerError> {
            let predictions = eval_preds.argmax();
            let labels: Vec<i64> = eval_preds
                .label_ids
                .as_ref()
                .map(|labels| labels.iter().map(|&l| l as i64).collect())
                .unwrap_or_default();
            Ok(metric.compute(&predictions, &labels)?)
        };

    // training_args = TrainingArguments("test-trainer", eval_strategy="epoch")
    let training_args =
        TrainingArguments::new("test-trainer").with_eval_strategy(IntervalStrategy::Epoch);
    // model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
    let model = AutoModelForSequenceClassification::from_pretrained(&checkpoint, 2, &device)?;

    // trainer = Trainer(model, training_args, train_dataset=..., eval_dataset=..., ...)
    let validation = Arc::new(tokenized_datasets.split("validation")?.clone());
    let mut trainer = Trainer::new(model, training_args, &device)?
        .with_train_dataset(tokenized_datasets.split("train")?.clone())
        .with_eval_dataset(validation.clone())
        .with_data_collator(data_collator)
        .with_tokenizer(tokenizer)
        .with_compute_metrics(Box::new(compute_metrics));

    // trainer.train()
    let output = trainer.train(None)?;
    println!("{output}");

    // predictions = trainer.predict(tokenized_datasets["validation"])
    let predictions = trainer.predict(&validation)?;
    let (rows, labels) = predictions.predictions_shape();
    println!("({rows}, {labels}) ({rows},)");

    // preds = np.argmax(predictions.predictions, axis=-1); metric.compute(...)
    let preds = predictions.prediction.argmax();
    let references: Vec<i64> = predictions
        .prediction
        .label_ids
        .iter()
        .flatten()
        .map(|&l| l as i64)
        .collect();
    let scores = ft_metrics::glue_metric("mrpc")?.compute(&preds, &references)?;
    println!("{scores:?}");
    Ok(())
}
