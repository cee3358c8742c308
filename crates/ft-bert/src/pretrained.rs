//! `PreTrainedModel`: what the three sequence classifiers share. Each is the shared encoder
//! ([`BertModel`]) under its architecture's name and a head of its own; everything else
//! (the forward pass on a batch, the loss, checkpoints in and out, gradient checkpointing)
//! is written once, here and in `checkpoint.rs`.

use std::path::Path;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use ft_collate::{Batch, GlobalRows, Labels};

use crate::architecture::Architecture;
use crate::attention::AttentionImpl;
use crate::checkpoint::{self, LoadingInfo, PretrainedOptions};
use crate::config::{BertConfig, ProblemType};
use crate::error::BertError;
use crate::model::{BertModel, BertModelOutput};

/// What a forward pass returns, as `SequenceClassifierOutput`.
#[derive(Debug, Clone)]
pub struct SequenceClassifierOutput {
    /// `[batch, num_labels]` logits.
    pub logits: Tensor<2>,
    /// The mean loss, `[1]`, when labels were given.
    pub loss: Option<Tensor<1>>,
}

/// A BERT-family sequence classifier, as transformers' `PreTrainedModel` subclasses
/// `...ForSequenceClassification`: built from a config, loaded from and saved to Hugging
/// Face checkpoints, run on collated batches.
pub trait PreTrainedModel: Module + Sized {
    /// The architecture whose names its checkpoints use.
    const ARCHITECTURE: Architecture;

    /// A model with transformers' random initialisation, drawn from `seed`: the same weights
    /// on every backend.
    fn new(config: &BertConfig, seed: u64, device: &Device) -> Result<Self, BertError>;

    /// The configuration.
    fn config(&self) -> &BertConfig;

    /// The configuration, to change what `save_pretrained` writes (label names).
    fn config_mut(&mut self) -> &mut BertConfig;

    /// The encoder under the head (`model.base_model`).
    fn base_model(&self) -> &BertModel;

    /// The encoder under the head, mutably.
    fn base_model_mut(&mut self) -> &mut BertModel;

    /// The head on the encoder's output, `[batch, num_labels]` fp32 logits; its dropout is
    /// keyed by the rows' places in the step's batch.
    fn classify(&self, output: BertModelOutput, rows: GlobalRows) -> Tensor<2>;

    /// Number of outputs.
    fn num_labels(&self) -> usize {
        self.config().num_labels()
    }

    /// The longest input.
    fn max_sequence_length(&self) -> usize {
        self.base_model().max_sequence_length()
    }

    /// Chooses how every layer computes attention.
    fn set_attention_impl(&mut self, implementation: AttentionImpl) {
        for layer in &mut self.base_model_mut().encoder.layer {
            layer
                .attention
                .self_attention
                .set_implementation(implementation);
        }
    }

    /// Copies the label names into the config, so that `save_pretrained` writes them.
    fn set_label_names(&mut self, names: &[String]) {
        self.config_mut().set_label_names(names);
    }

    /// Logits for `[batch, seq]` inputs, and the loss when `labels` are given. Token types
    /// default to zeros, as transformers fills them; an architecture without them ignores
    /// them.
    fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Tensor<2, Int>,
        labels: Option<&Labels>,
    ) -> Result<SequenceClassifierOutput, BertError> {
        forward_rows(
            self,
            input_ids,
            token_type_ids,
            attention_mask,
            labels,
            GlobalRows::LOCAL,
        )
    }

    /// [`PreTrainedModel::forward`] on a collated batch, its dropout keyed by the batch's
    /// rows in the step's batch over all processes.
    fn forward_batch(&self, batch: &Batch) -> Result<SequenceClassifierOutput, BertError> {
        forward_rows(
            self,
            batch.input_ids.clone(),
            batch.token_type_ids.clone(),
            batch.attention_mask.clone(),
            batch.labels.as_ref(),
            batch.global_rows,
        )
    }

    /// The problem type: the config's, else inferred from the labels as transformers does.
    fn problem_type(&self, labels: &Labels) -> ProblemType {
        match (self.config().problem_type, labels) {
            (Some(problem), _) => problem,
            _ if self.num_labels() == 1 => ProblemType::Regression,
            (None, Labels::Class(_)) => ProblemType::SingleLabelClassification,
            (None, Labels::Score(_)) => ProblemType::MultiLabelClassification,
        }
    }

    /// The loss of `[batch, num_labels]` logits against `labels`, for the problem type:
    /// cross-entropy for classes, mean squared error for a single regression output.
    fn loss(&self, logits: Tensor<2>, labels: &Labels) -> Result<Tensor<1>, BertError> {
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

    /// One training micro-batch's forward and backward pass with gradient checkpointing
    /// (see `checkpointing.rs`): `loss` turns the logits into the loss to minimise, whose
    /// backward pass is scaled by `loss_scale`. Returns the logits and the unscaled loss,
    /// detached, and the gradient of every parameter.
    fn forward_backward_checkpointed<E: From<BertError>>(
        &self,
        batch: &Batch,
        loss: impl FnOnce(Tensor<2>) -> Result<Tensor<1>, E>,
        loss_scale: f64,
    ) -> Result<(SequenceClassifierOutput, GradientsParams), E> {
        crate::checkpointing::forward_backward(self, batch, loss, loss_scale)
    }

    /// `AutoModelForSequenceClassification.from_pretrained(name_or_path, num_labels=...)`:
    /// loads a local folder or Hub model, with a newly initialised head where the checkpoint
    /// has none. The load report goes to the log, as transformers' warning does.
    fn from_pretrained(
        name_or_path: &str,
        num_labels: usize,
        device: &Device,
    ) -> Result<Self, BertError> {
        let options = PretrainedOptions {
            num_labels: Some(num_labels),
            ..PretrainedOptions::default()
        };
        let (model, info) = Self::from_pretrained_with_info(name_or_path, &options, device)?;
        info.warn();
        Ok(model)
    }

    /// `from_pretrained(..., output_loading_info=True)`: the model and what loading found.
    fn from_pretrained_with_info(
        name_or_path: &str,
        options: &PretrainedOptions,
        device: &Device,
    ) -> Result<(Self, LoadingInfo), BertError> {
        checkpoint::from_pretrained(name_or_path, options, device)
    }

    /// `save_pretrained(dir)`: `config.json` and `model.safetensors` with transformers' names,
    /// which `AutoModelForSequenceClassification.from_pretrained(dir)` loads as they are.
    fn save_pretrained(&self, dir: &Path) -> Result<(), BertError> {
        checkpoint::save_pretrained(self, dir)
    }

    /// Loads tensors named as transformers names them from a safetensors or PyTorch file into
    /// this model, such as a head or a whole checkpoint's `model.safetensors`. Tensors the
    /// file lacks keep their values and are listed as missing; a shape mismatch is an error.
    fn load_weights(&mut self, path: &Path) -> Result<LoadingInfo, BertError> {
        checkpoint::load_weights(self, path)
    }
}

/// [`PreTrainedModel::forward`] for rows at `rows` in the step's batch.
fn forward_rows<M: PreTrainedModel>(
    model: &M,
    input_ids: Tensor<2, Int>,
    token_type_ids: Option<Tensor<2, Int>>,
    attention_mask: Tensor<2, Int>,
    labels: Option<&Labels>,
    rows: GlobalRows,
) -> Result<SequenceClassifierOutput, BertError> {
    let output =
        model
            .base_model()
            .forward_rows(input_ids, token_type_ids, attention_mask, rows)?;
    let logits = model.classify(output, rows);
    let loss = labels
        .map(|labels| model.loss(logits.clone(), labels))
        .transpose()?;
    Ok(SequenceClassifierOutput { logits, loss })
}

/// Checks a config before a model is built from it.
pub(crate) fn validated(config: &BertConfig, architecture: Architecture) -> Result<(), BertError> {
    if config.architecture != architecture {
        return Err(BertError::Input(format!(
            "a {} config cannot build a {}",
            config.architecture,
            architecture.class_name()
        )));
    }
    config
        .validate()
        .map_err(|reason| BertError::Input(format!("invalid config: {reason}")))
}
