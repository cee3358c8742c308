//! `BertForSequenceClassification`: BERT, dropout and a linear head over the pooled `[CLS]`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, FloatDType, Int, Tensor};
use ft_collate::{Batch, GlobalRows, Labels};

use crate::attention::AttentionImpl;
use crate::config::{BertConfig, ProblemType};
use crate::error::BertError;
use crate::init::Init;
use crate::model::BertModel;
use crate::positions::ElementKeys;

/// The model the course notebook fine-tunes.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification {
    /// `bert`.
    pub bert: BertModel,
    /// Dropout before the classifier.
    pub dropout: Dropout,
    /// `classifier`, hidden size to `num_labels`.
    pub classifier: Linear,
    #[module(skip)]
    config: BertConfig,
}

/// What a forward pass returns, as `SequenceClassifierOutput`.
#[derive(Debug, Clone)]
pub struct SequenceClassifierOutput {
    /// `[batch, num_labels]` logits.
    pub logits: Tensor<2>,
    /// The mean loss, `[1]`, when labels were given.
    pub loss: Option<Tensor<1>>,
}

impl BertForSequenceClassification {
    /// A model with transformers' random initialisation, drawn from `seed`: the same weights
    /// on every backend.
    pub fn new(config: &BertConfig, seed: u64, device: &Device) -> Result<Self, BertError> {
        config
            .validate()
            .map_err(|reason| BertError::Input(format!("invalid config: {reason}")))?;
        let init = Init::new(seed, config.initializer_range, device);
        Ok(Self {
            bert: BertModel::new(config, &init, "bert"),
            dropout: DropoutConfig::new(config.classifier_dropout_prob()).init(),
            classifier: init.linear("classifier", config.hidden_size, config.num_labels()),
            config: config.clone(),
        })
    }

    /// Chooses how every layer computes attention.
    pub fn set_attention_impl(&mut self, implementation: AttentionImpl) {
        for layer in &mut self.bert.encoder.layer {
            layer
                .attention
                .self_attention
                .set_implementation(implementation);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Number of outputs.
    pub fn num_labels(&self) -> usize {
        self.config.num_labels()
    }

    pub(crate) fn config_mut(&mut self) -> &mut BertConfig {
        &mut self.config
    }

    /// Logits for `[batch, seq]` inputs, and the loss when `labels` are given: cross-entropy
    /// for classes, mean squared error for a single regression output.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        labels: Option<&Labels>,
    ) -> Result<SequenceClassifierOutput, BertError> {
        self.forward_rows(
            input_ids,
            token_type_ids,
            attention_mask,
            labels,
            GlobalRows::LOCAL,
        )
    }

    /// [`BertForSequenceClassification::forward`] for rows at `rows` in the step's batch.
    fn forward_rows(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        labels: Option<&Labels>,
        rows: GlobalRows,
    ) -> Result<SequenceClassifierOutput, BertError> {
        let output = self
            .bert
            .forward_rows(input_ids, token_type_ids, attention_mask, rows)?;
        let logits = self.head(output.pooler_output, rows);
        let loss = labels
            .map(|labels| self.loss(logits.clone(), labels))
            .transpose()?;
        Ok(SequenceClassifierOutput { logits, loss })
    }

    /// Dropout and the classifier on the pooled `[CLS]` states, `[batch, num_labels]`.
    pub(crate) fn head(&self, pooler_output: Tensor<2>, rows: GlobalRows) -> Tensor<2> {
        let [batch, width] = pooler_output.dims();
        let pooled = crate::ops::dropout(&self.dropout, pooler_output, || {
            ElementKeys::rows(rows, batch, width)
        });
        // Logits and loss are fp32 whatever the compute precision, as under autocast.
        self.classifier.forward(pooled).cast(FloatDType::F32)
    }

    /// [`BertForSequenceClassification::forward`] on a collated batch, its dropout keyed by
    /// the batch's rows in the step's batch over all processes.
    pub fn forward_batch(&self, batch: &Batch) -> Result<SequenceClassifierOutput, BertError> {
        self.forward_rows(
            batch.input_ids.clone(),
            batch.token_type_ids.clone(),
            batch.attention_mask.clone(),
            batch.labels.as_ref(),
            batch.global_rows,
        )
    }

    /// The problem type: the config's, else inferred from the labels as transformers does.
    pub fn problem_type(&self, labels: &Labels) -> ProblemType {
        match (self.config.problem_type, labels) {
            (Some(problem), _) => problem,
            _ if self.num_labels() == 1 => ProblemType::Regression,
            (None, Labels::Class(_)) => ProblemType::SingleLabelClassification,
            (None, Labels::Score(_)) => ProblemType::MultiLabelClassification,
        }
    }

    /// The loss of `[batch, num_labels]` logits against `labels`, for the problem type:
    /// cross-entropy for classes, mean squared error for a single regression output.
    pub fn loss(&self, logits: Tensor<2>, labels: &Labels) -> Result<Tensor<1>, BertError> {
        let [batch, num_labels] = logits.dims();
        match (self.problem_type(labels), labels) {
            (ProblemType::Regression, labels) => {
                if num_labels != 1 {
                    return Err(BertError::Input(format!(
                        "regression needs num_labels=1, the model has {num_labels}"
                    )));
                }
                let targets = match labels {
                    Labels::Score(scores) => scores.clone(),
                    Labels::Class(classes) => classes.clone().float(),
                };
                let predictions = logits.reshape([batch]);
                let targets = targets.cast(predictions.dtype());
                Ok((predictions - targets).square().mean())
            }
            (ProblemType::SingleLabelClassification, Labels::Class(classes)) => {
                let log_probs = log_softmax(logits, 1);
                let picked = log_probs.gather(1, classes.clone().reshape([batch, 1]));
                Ok(picked.mean().neg())
            }
            (problem, _) => Err(BertError::Input(format!(
                "{problem:?} is not supported with these labels"
            ))),
        }
    }
}
