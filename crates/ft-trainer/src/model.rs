//! The small interface the Trainer needs from a model.

use std::path::Path;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use ft_bert::{
    AutoModelForSequenceClassification, BertError, BertForSequenceClassification,
    DistilBertForSequenceClassification, PreTrainedModel, RobertaForSequenceClassification,
};
use ft_collate::{Batch, Labels};

/// A forward pass's result.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// `[batch, num_labels]` logits.
    pub logits: Tensor<2>,
    /// The mean loss, `[1]`, when the batch has labels.
    pub loss: Option<Tensor<1>>,
}

/// A model the [`crate::Trainer`] can train: a batch in, logits and loss out, plus saving and
/// loading its weights in the Hugging Face layout.
pub trait TrainableModel: Module + Sized + 'static {
    /// The model's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Logits, and the loss when the batch has labels. Dropout is active when the model is on
    /// an autodiff device (training) and off after `Module::valid` (evaluation).
    fn forward_batch(&self, batch: &Batch) -> Result<ModelOutput, Self::Error>;

    /// The loss of `[batch, num_labels]` logits against `labels`, as the model computes it
    /// in [`TrainableModel::forward_batch`].
    fn loss(&self, logits: Tensor<2>, labels: &Labels) -> Result<Tensor<1>, Self::Error>;

    /// A training micro-batch's forward and backward pass under `gradient_checkpointing`:
    /// activations inside the encoder layers are recomputed in the backward pass rather than
    /// kept. `loss` maps the logits to the loss, whose backward pass is scaled by
    /// `loss_scale`. Returns the outputs, detached, and every parameter's gradient.
    fn forward_backward_checkpointed(
        &self,
        batch: &Batch,
        loss: impl FnOnce(Tensor<2>) -> Result<Tensor<1>, Self::Error>,
        loss_scale: f64,
    ) -> Result<(ModelOutput, GradientsParams), Self::Error>;

    /// Outputs per example.
    fn num_labels(&self) -> usize;

    /// Largest token id the model accepts, plus one.
    fn vocab_size(&self) -> usize;

    /// Longest sequence the model accepts.
    fn max_sequence_length(&self) -> usize;

    /// Token types the model embeds, or `None` for a model that takes none (DistilBERT),
    /// whose batches' token types go unused, as transformers' `remove_unused_columns` drops
    /// them.
    fn type_vocab_size(&self) -> Option<usize> {
        None
    }

    /// Parameters outside embedding tables, for `total_flos` (6 × this × tokens).
    fn non_embedding_parameters(&self) -> usize;

    /// The model's configuration as JSON (`model.config.to_json_string()`), which reporting
    /// integrations show beside the run; `None` for a model without one.
    fn config_json(&self) -> Option<String> {
        None
    }

    /// Writes `config.json` and `model.safetensors` into `dir`.
    fn save_pretrained(&self, dir: &Path) -> Result<(), Self::Error>;

    /// Loads the weights of a folder written by [`TrainableModel::save_pretrained`].
    fn load_pretrained_weights(&mut self, dir: &Path) -> Result<(), Self::Error>;
}

/// The trait for a sequence classifier of ft-bert: the same body for each, whose calls go
/// `via` [`PreTrainedModel`]'s methods or `AutoModelForSequenceClassification`'s of the same
/// names.
macro_rules! trainable_sequence_classifier {
    ($($model:ty => $via:ident),+) => {$(
        impl TrainableModel for $model {
            type Error = BertError;

            fn forward_batch(&self, batch: &Batch) -> Result<ModelOutput, BertError> {
                let output = $via::forward_batch(self, batch)?;
                Ok(ModelOutput {
                    logits: output.logits,
                    loss: output.loss,
                })
            }

            fn loss(&self, logits: Tensor<2>, labels: &Labels) -> Result<Tensor<1>, BertError> {
                $via::loss(self, logits, labels)
            }

            fn forward_backward_checkpointed(
                &self,
                batch: &Batch,
                loss: impl FnOnce(Tensor<2>) -> Result<Tensor<1>, BertError>,
                loss_scale: f64,
            ) -> Result<(ModelOutput, GradientsParams), BertError> {
                let (output, grads) =
                    $via::forward_backward_checkpointed(self, batch, loss, loss_scale)?;
                let output = ModelOutput {
                    logits: output.logits,
                    loss: output.loss,
                };
                Ok((output, grads))
            }

            fn num_labels(&self) -> usize {
                $via::num_labels(self)
            }

            fn vocab_size(&self) -> usize {
                $via::config(self).vocab_size
            }

            fn max_sequence_length(&self) -> usize {
                $via::max_sequence_length(self)
            }

            fn type_vocab_size(&self) -> Option<usize> {
                let config = $via::config(self);
                config
                    .architecture
                    .has_token_types()
                    .then_some(config.type_vocab_size)
            }

            fn non_embedding_parameters(&self) -> usize {
                let embeddings = &$via::base_model(self).embeddings;
                self.num_params()
                    - embeddings.word_embeddings.num_params()
                    - embeddings.position_embeddings.num_params()
                    - embeddings.token_type_embeddings.num_params()
            }

            fn config_json(&self) -> Option<String> {
                $via::config(self).to_json().ok()
            }

            fn save_pretrained(&self, dir: &Path) -> Result<(), BertError> {
                $via::save_pretrained(self, dir)
            }

            fn load_pretrained_weights(&mut self, dir: &Path) -> Result<(), BertError> {
                let path = dir.join("model.safetensors");
                let info = $via::load_weights(self, &path)?;
                if !info.missing_keys.is_empty() {
                    return Err(BertError::MissingWeights {
                        path,
                        missing: info.missing_keys.join(", "),
                    });
                }
                Ok(())
            }
        }
    )+};
}

trainable_sequence_classifier!(
    BertForSequenceClassification => PreTrainedModel,
    DistilBertForSequenceClassification => PreTrainedModel,
    RobertaForSequenceClassification => PreTrainedModel,
    AutoModelForSequenceClassification => AutoModelForSequenceClassification
);
