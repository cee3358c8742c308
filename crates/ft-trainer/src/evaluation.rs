//! `evaluate()` and `predict()`.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::{FloatDType, Tensor, TensorReadError};
use ft_bert::SequenceClassifierOutput;
use ft_bert::device_read::read_vec;
use ft_collate::{DataLoader, EncodedDataset, Sampler, Shard};

use crate::error::{SetupError, TrainerError};
use crate::metrics::{EvalPrediction, Metrics, PredictionOutput, speed_metrics};
use crate::model::{TrainableModel, model_input};
use crate::trainer::Trainer;

/// What one pass over a dataset gives.
struct LoopOutput {
    prediction: EvalPrediction,
    loss: Option<f64>,
    batches: usize,
}

impl<M: TrainableModel> Trainer<M> {
    /// `trainer.evaluate()`: `eval_loss`, the `eval_*` metrics and speed on the eval dataset,
    /// logged to `log_history` with the epoch.
    pub fn evaluate(&mut self) -> Result<Metrics, TrainerError> {
        let dataset = self
            .data
            .eval_dataset
            .clone()
            .ok_or(SetupError::NoEvalDataset)?;
        let start = Instant::now();
        let output = self.evaluation_loop(&dataset, "evaluation")?;
        let mut metrics = self.finish_metrics(&output, "eval")?;
        metrics.extend(speed_metrics(
            "eval",
            start.elapsed().as_secs_f64(),
            output.prediction.len() as f64,
            output.batches as f64,
        ));
        self.log(metrics.clone());
        metrics.insert("epoch".into(), self.progress.state.epoch);
        self.run_callbacks(|c, a, s, ctl| c.on_evaluate(a, s, ctl, &metrics));
        self.progress.control.should_evaluate = false;
        Ok(metrics)
    }

    /// `trainer.predict(dataset)`: the logits of every row, the labels when the data has
    /// them, and `test_*` metrics. Nothing is logged to `log_history`.
    pub fn predict(
        &mut self,
        dataset: &Arc<EncodedDataset>,
    ) -> Result<PredictionOutput, TrainerError> {
        self.check_dataset(dataset, "test")?;
        let start = Instant::now();
        let output = self.evaluation_loop(dataset, "prediction")?;
        let mut metrics = self.finish_metrics(&output, "test")?;
        metrics.extend(speed_metrics(
            "test",
            start.elapsed().as_secs_f64(),
            output.prediction.len() as f64,
            output.batches as f64,
        ));
        self.run_callbacks(|c, a, s, ctl| c.on_predict(a, s, ctl, &metrics));
        Ok(PredictionOutput {
            prediction: output.prediction,
            metrics,
        })
    }

    /// `{prefix}_loss` and the prefixed `compute_metrics` results.
    fn finish_metrics(&self, output: &LoopOutput, prefix: &str) -> Result<Metrics, TrainerError> {
        let mut metrics = Metrics::new();
        if let Some(loss) = output.loss {
            metrics.insert(format!("{prefix}_loss"), loss);
        }
        if let (Some(compute), Some(_)) = (&self.compute_metrics, &output.prediction.label_ids) {
            for (key, value) in compute(&output.prediction)? {
                let key = if key.starts_with(&format!("{prefix}_")) {
                    key
                } else {
                    format!("{prefix}_{key}")
                };
                metrics.insert(key, value);
            }
        }
        Ok(metrics)
    }

    /// Runs the model without autodiff or dropout over `dataset`, each process over its
    /// share of the rows, and gathers every process's logits back into the dataset's order.
    fn evaluation_loop(
        &self,
        dataset: &Arc<EncodedDataset>,
        what: &str,
    ) -> Result<LoopOutput, TrainerError> {
        let master = self.model().valid();
        let model = self
            .optimization
            .precision
            .compute_model(&master)
            .unwrap_or(master);
        let num_labels = model.num_labels();
        let loader = self.eval_loader(dataset, self.group.rank())?;
        let mut local = Vec::new();
        let (mut loss_sum, mut rows, mut batches) = (0.0, 0usize, 0usize);
        for (index, batch) in loader.iter(0, 0, &self.device).enumerate() {
            let batch = batch?;
            let size = batch.batch_size();
            let context = || format!("{what} batch {index}");
            let input = model_input(&batch).map_err(|e| TrainerError::model(context(), e))?;
            let precision = self.optimization.precision;
            let output = precision.autocast(|| self.compute_loss(&model, &input, context))?;
            let read_error = |source| TrainerError::DeviceRead {
                what: format!("the output of {what} batch {index}"),
                source,
            };
            let (logits, loss) = read_output(output).map_err(read_error)?;
            local.extend(logits);
            if let Some(loss) = loss {
                // transformers averages per sample, so a short last batch weighs less.
                loss_sum += loss * size as f64;
            }
            rows += size;
            batches += 1;
        }
        let mut sums = [loss_sum, rows as f64];
        self.group.all_reduce_sum_f64(&mut sums);
        let order = self.gathered_order(dataset)?;
        let (rows_in_order, predictions) = self.gather_logits(&local, &order, num_labels)?;
        let labelled = dataset.has_labels();
        let labels = labelled.then(|| {
            rows_in_order
                .iter()
                .filter_map(|&row| dataset.row(row)?.label.map(|l| l.as_f32()))
                .collect()
        });
        let [loss_sum, rows] = sums;
        Ok(LoopOutput {
            prediction: EvalPrediction {
                predictions,
                num_labels,
                label_ids: labels,
            },
            loss: (labelled && rows > 0.0).then(|| loss_sum / rows),
            batches,
        })
    }

    /// Rank `rank`'s loader over `dataset`: in order, every row on exactly one rank.
    fn eval_loader(
        &self,
        dataset: &Arc<EncodedDataset>,
        rank: usize,
    ) -> Result<DataLoader, TrainerError> {
        let shard = Shard::without_padding(rank, self.group.world_size())?;
        Ok(DataLoader::new(
            dataset.clone(),
            self.collator()?.clone(),
            Sampler::Sequential,
            self.args.per_device_eval_batch_size,
            self.args.dataloader_drop_last,
        )?
        .with_shard(shard))
    }

    /// The rows every rank predicted, rank after rank: the order in which
    /// [`ProcessGroup::all_gather`](crate::distributed::ProcessGroup::all_gather) returns
    /// their logits. Every rank computes every rank's share itself; nothing is sent.
    fn gathered_order(&self, dataset: &Arc<EncodedDataset>) -> Result<Vec<usize>, TrainerError> {
        let mut order = Vec::with_capacity(dataset.len());
        for rank in 0..self.group.world_size() {
            order.extend(self.eval_loader(dataset, rank)?.epoch_batches(0).concat());
        }
        Ok(order)
    }

    /// Every rank's logits, received in `order`, sorted into the dataset's order: the rows,
    /// and their logits.
    fn gather_logits(
        &self,
        local: &[f32],
        order: &[usize],
        num_labels: usize,
    ) -> Result<(Vec<usize>, Vec<f32>), TrainerError> {
        let gathered = self.group.all_gather(local).concat();
        if gathered.len() != order.len() * num_labels {
            debug_assert!(false, "{} logits for {} rows", gathered.len(), order.len());
            return Err(TrainerError::Internal {
                context: "gathering the processes' logits".into(),
                what: "the processes returned another number of logits than of rows",
            });
        }
        let mut rows: Vec<(usize, &[f32])> = order
            .iter()
            .copied()
            .zip(gathered.chunks(num_labels.max(1)))
            .collect();
        rows.sort_by_key(|&(row, _)| row);
        let logits = rows
            .iter()
            .flat_map(|(_, logits)| *logits)
            .copied()
            .collect();
        Ok((rows.into_iter().map(|(row, _)| row).collect(), logits))
    }
}

/// A batch's logits, flattened, and its loss, read to the host together: one read.
fn read_output(
    output: SequenceClassifierOutput,
) -> Result<(Vec<f32>, Option<f64>), TensorReadError> {
    let logits = output.logits.cast(FloatDType::F32);
    let Some(loss) = output.loss else {
        return read_vec::<f32, 2>(logits).map(|logits| (logits, None));
    };
    let count = logits.shape().num_elements();
    let loss = loss.cast(FloatDType::F32).reshape([1]);
    let both = Tensor::cat(vec![logits.reshape([count]), loss], 0);
    let mut values = read_vec::<f32, 1>(both)?;
    let loss = values.pop().map(f64::from);
    Ok((values, loss))
}
