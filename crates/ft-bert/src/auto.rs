//! `AutoModelForSequenceClassification`: the classifier `config.json`'s `model_type` names.

use std::path::Path;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use ft_collate::{Batch, Labels};

use crate::architecture::Architecture;
use crate::checkpoint::{self, CheckpointFiles, LoadingInfo, PretrainedOptions};
use crate::classification::BertForSequenceClassification;
use crate::config::BertConfig;
use crate::distilbert::DistilBertForSequenceClassification;
use crate::error::BertError;
use crate::model::BertModel;
use crate::pretrained::{PreTrainedModel, SequenceClassifierOutput};
use crate::roberta::RobertaForSequenceClassification;

/// One of the sequence classifiers, chosen by `model_type` when loaded, as transformers'
/// `AutoModelForSequenceClassification` returns the matching class.
#[derive(Module, Debug)]
pub enum AutoModelForSequenceClassification {
    /// `model_type: "bert"`.
    Bert(BertForSequenceClassification),
    /// `model_type: "distilbert"`.
    DistilBert(DistilBertForSequenceClassification),
    /// `model_type: "roberta"`.
    Roberta(RobertaForSequenceClassification),
}

/// The same expression on whichever model the enum holds.
macro_rules! dispatch {
    ($self:expr, $model:ident => $body:expr) => {
        match $self {
            AutoModelForSequenceClassification::Bert($model) => $body,
            AutoModelForSequenceClassification::DistilBert($model) => $body,
            AutoModelForSequenceClassification::Roberta($model) => $body,
        }
    };
}

impl AutoModelForSequenceClassification {
    /// `AutoModelForSequenceClassification.from_config(config)`: the config's architecture,
    /// randomly initialised from `seed`.
    pub fn from_config(config: &BertConfig, seed: u64, device: &Device) -> Result<Self, BertError> {
        Ok(match config.architecture {
            Architecture::Bert => Self::Bert(PreTrainedModel::new(config, seed, device)?),
            Architecture::DistilBert => {
                Self::DistilBert(PreTrainedModel::new(config, seed, device)?)
            }
            Architecture::Roberta => Self::Roberta(PreTrainedModel::new(config, seed, device)?),
        })
    }

    /// `AutoModelForSequenceClassification.from_pretrained(name_or_path, num_labels=...)`,
    /// with the load report logged as transformers warns it.
    pub fn from_pretrained(
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

    /// `from_pretrained(..., output_loading_info=True)`: reads `model_type` from the
    /// checkpoint's `config.json`, then loads that architecture.
    pub fn from_pretrained_with_info(
        name_or_path: &str,
        options: &PretrainedOptions,
        device: &Device,
    ) -> Result<(Self, LoadingInfo), BertError> {
        let files = CheckpointFiles::resolve(name_or_path, options.hub.as_ref())?;
        let bytes =
            std::fs::read(&files.config).map_err(|e| BertError::io("reading", &files.config, e))?;
        let source = name_or_path;
        match Architecture::from_config_json(&files.config, &bytes)? {
            Architecture::Bert => load(source, &files, options, device, Self::Bert),
            Architecture::DistilBert => load(source, &files, options, device, Self::DistilBert),
            Architecture::Roberta => load(source, &files, options, device, Self::Roberta),
        }
    }

    /// The architecture.
    pub fn architecture(&self) -> Architecture {
        self.config().architecture
    }

    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        dispatch!(self, model => model.config())
    }

    /// The encoder under the head.
    pub fn base_model(&self) -> &BertModel {
        dispatch!(self, model => model.base_model())
    }

    /// Number of outputs.
    pub fn num_labels(&self) -> usize {
        self.config().num_labels()
    }

    /// The longest input.
    pub fn max_sequence_length(&self) -> usize {
        self.base_model().max_sequence_length()
    }

    /// See [`PreTrainedModel::set_attention_impl`].
    pub fn set_attention_impl(&mut self, implementation: crate::AttentionImpl) {
        dispatch!(self, model => model.set_attention_impl(implementation))
    }

    /// See [`PreTrainedModel::set_label_names`].
    pub fn set_label_names(&mut self, names: &[String]) {
        dispatch!(self, model => model.set_label_names(names))
    }

    /// See [`PreTrainedModel::forward_batch`].
    pub fn forward_batch(&self, batch: &Batch) -> Result<SequenceClassifierOutput, BertError> {
        dispatch!(self, model => model.forward_batch(batch))
    }

    /// See [`PreTrainedModel::loss`].
    pub fn loss(&self, logits: Tensor<2>, labels: &Labels) -> Result<Tensor<1>, BertError> {
        dispatch!(self, model => model.loss(logits, labels))
    }

    /// See [`PreTrainedModel::forward_backward_checkpointed`].
    pub fn forward_backward_checkpointed<E: From<BertError>>(
        &self,
        batch: &Batch,
        loss: impl FnOnce(Tensor<2>) -> Result<Tensor<1>, E>,
        loss_scale: f64,
    ) -> Result<(SequenceClassifierOutput, GradientsParams), E> {
        // The gradients are keyed by parameter id, which the enum shares with its model.
        dispatch!(self, model => model.forward_backward_checkpointed(batch, loss, loss_scale))
    }

    /// See [`PreTrainedModel::save_pretrained`].
    pub fn save_pretrained(&self, dir: &Path) -> Result<(), BertError> {
        dispatch!(self, model => model.save_pretrained(dir))
    }

    /// See [`PreTrainedModel::load_weights`].
    pub fn load_weights(&mut self, path: &Path) -> Result<LoadingInfo, BertError> {
        dispatch!(self, model => model.load_weights(path))
    }
}

/// Loads the checkpoint's files as `M`, held by `variant`.
fn load<M: PreTrainedModel>(
    source: &str,
    files: &CheckpointFiles,
    options: &PretrainedOptions,
    device: &Device,
    variant: fn(M) -> AutoModelForSequenceClassification,
) -> Result<(AutoModelForSequenceClassification, LoadingInfo), BertError> {
    let (model, info) = checkpoint::from_files(source, files, options, device)?;
    Ok((variant(model), info))
}
