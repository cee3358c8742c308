//! What the Trainer needs of a model, for every [`PreTrainedModel`], and the one place a
//! collated [`Batch`] becomes the model's [`ModelInput`]: the Trainer sees both sides, so
//! neither the model nor the collator knows the other.

use std::path::Path;

use burn::module::Module;
use ft_bert::prelude::*;
use ft_bert::{BertError, DropoutRows, Labels, TokenLayout};
use ft_collate::Batch;

/// A model the [`crate::Trainer`] can train: every [`PreTrainedModel`] is one. What the
/// Trainer needs beyond the core trait (the parameters it counts, loading a checkpoint's
/// weights whole) is written here once.
pub trait TrainableModel: PreTrainedModel + 'static {
    /// Largest token id the model accepts, plus one.
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    /// Token types the model embeds, or `None` for a model that takes none (DistilBERT),
    /// whose batches' token types go unused, as transformers' `remove_unused_columns` drops
    /// them.
    fn type_vocab_size(&self) -> Option<usize> {
        let config = self.config();
        config
            .architecture
            .has_token_types()
            .then_some(config.type_vocab_size)
    }

    /// Parameters outside embedding tables, for `total_flos` (6 × this × tokens).
    fn non_embedding_parameters(&self) -> usize {
        let embeddings = &self.base_model().embeddings;
        self.num_params()
            - embeddings.word_embeddings.num_params()
            - embeddings.position_embeddings.num_params()
            - embeddings.token_type_embeddings.num_params()
    }

    /// The model's configuration as JSON (`model.config.to_json_string()`), which reporting
    /// integrations show beside the run.
    fn config_json(&self) -> Option<String> {
        self.config().to_json().ok()
    }

    /// Loads the weights of a folder written by `save_pretrained`; a weight the folder lacks
    /// is an error, since the Trainer wrote them all.
    fn load_pretrained_weights(&mut self, dir: &Path) -> Result<(), BertError> {
        let path = dir.join("model.safetensors");
        let info = self.load_weights(&path)?;
        if !info.missing_keys.is_empty() {
            return Err(BertError::MissingWeights {
                path,
                missing: info.missing_keys.join(", "),
            });
        }
        Ok(())
    }
}

impl<M: PreTrainedModel + 'static> TrainableModel for M {}

/// A collated batch as the model's input: its tensors, its labels, the layout of its
/// right-padded rows (known on the host, so the forward pass reads nothing back), and its
/// rows' places in the step's batch over all processes, which key dropout.
///
/// # Errors
/// [`BertError::RowLongerThanBatch`] or [`BertError::InputShape`] for a batch whose parts
/// disagree (a collator never makes one).
pub fn model_input(batch: &Batch) -> Result<ModelInput, BertError> {
    let layout = TokenLayout::from_row_lengths(batch.seq_len, &batch.lengths)?;
    let labels = batch.labels.as_ref().map(|labels| match labels {
        ft_collate::Labels::Class(classes) => Labels::Class(classes.clone()),
        ft_collate::Labels::Score(scores) => Labels::Score(scores.clone()),
    });
    let rows = DropoutRows {
        offset: batch.global_rows.offset,
        stride: batch.global_rows.stride,
    };
    Ok(ModelInput::new(
        batch.input_ids.clone(),
        batch.token_type_ids.clone(),
        batch.attention_mask.clone(),
        layout,
    )?
    .with_labels(labels)
    .with_dropout_rows(rows))
}
