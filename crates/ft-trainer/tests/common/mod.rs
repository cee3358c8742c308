//! A tiny BERT and a small learnable task, for fast training tests.

#![allow(dead_code)]

use std::sync::Arc;

use burn::tensor::Device;
use ft_bert::prelude::*;
use ft_bert::{BertConfig, BertForSequenceClassification};
use ft_collate::{AutoTokenizer, EncodedDataset};
use ft_trainer::{IntervalStrategy, Trainer, TrainingArguments, glue_compute_metrics};
use glue_data::{Example, Label, Split, Task};

/// burn's random numbers (dropout masks) come from one generator per backend, shared by the
/// whole process, so training tests that check exact values run one at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn tokenizer() -> AutoTokenizer {
    AutoTokenizer::from_pretrained(test_support::minilm_dir().to_str().unwrap()).unwrap()
}

/// A BERT small enough to train in a second, with bert-base-uncased's vocabulary.
pub fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 30522,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
    }))
    .unwrap()
}

/// Pairs whose label is the mood word in the second sentence: learnable by a tiny model in a
/// few dozen steps.
pub fn task_split(name: &str, rows: usize, offset: usize) -> Split {
    let nouns = [
        "car", "house", "dog", "tree", "river", "book", "film", "meal",
    ];
    let moods = [("great", 1), ("awful", 0), ("lovely", 1), ("terrible", 0)];
    let examples = (0..rows).map(|i| {
        let k = i + offset;
        let noun = nouns[(k * 7) % nouns.len()];
        let (mood, label) = moods[(k * 3 + k / 5) % moods.len()];
        Example {
            idx: i as u32,
            text_a: format!("the {noun} is here ."),
            text_b: Some(format!("it was a {mood} {noun} .")),
            label: Some(Label::Class(label)),
        }
    });
    Split::from_examples(name, Task::Mrpc.features(), examples).unwrap()
}

pub fn encoded(name: &str, rows: usize, offset: usize) -> Arc<EncodedDataset> {
    Arc::new(EncodedDataset::map(&task_split(name, rows, offset), &tokenizer()).unwrap())
}

pub fn args(output_dir: &std::path::Path) -> TrainingArguments {
    let mut args = TrainingArguments::new(output_dir);
    args.learning_rate = 2e-2;
    args.warmup_steps = 0.1;
    args.logging_steps = 4.0;
    args.eval_strategy = IntervalStrategy::Epoch;
    args.save_steps = 8.0;
    args.num_train_epochs = 5.0;
    args.disable_tqdm = true;
    args
}

/// A Trainer on flex for the tiny model and task.
pub fn trainer(args: TrainingArguments) -> Trainer<BertForSequenceClassification> {
    let device = Device::flex();
    let model = BertForSequenceClassification::from_config(&tiny_config(), 42, &device).unwrap();
    Trainer::new(model, args, &device)
        .unwrap()
        .without_console()
        .with_train_dataset(encoded("train", 64, 0))
        .with_eval_dataset(encoded("validation", 24, 1000))
        .with_tokenizer(tokenizer())
        .with_compute_metrics(glue_compute_metrics(
            ft_metrics::glue_metric("mrpc").unwrap(),
        ))
}

/// Every parameter's values, in visiting order.
pub fn weights<M: burn::module::Module>(model: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            self.0
                .push(param.val().into_data().try_into_vec_as::<f32>().unwrap());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// The training losses in `log_history`.
pub fn losses(trainer: &Trainer<BertForSequenceClassification>) -> Vec<f64> {
    trainer
        .state()
        .log_history
        .iter()
        .filter_map(|e| e.get("loss").and_then(|v| v.as_f64()))
        .collect()
}
