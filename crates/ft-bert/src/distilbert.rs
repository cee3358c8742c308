//! `DistilBertForSequenceClassification`: BERT's encoder under DistilBERT's names, without
//! token types, and `pre_classifier` with ReLU before the classifier.

use crate::input::DropoutRows;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::architecture::Architecture;
use crate::classification::{keyed_dropout, logits};
use crate::config::BertConfig;
use crate::error::BertError;
use crate::init::Init;
use crate::model::{BertModel, BertModelOutput, first_token};
use crate::pretrained::{PreTrainedModel, validated};

/// `distilbert-base-uncased` and its kin, as `AutoModelForSequenceClassification` builds
/// them.
#[derive(Module, Debug)]
pub struct DistilBertForSequenceClassification {
    /// `distilbert`; its `transformer` is this crate's `encoder`.
    pub distilbert: BertModel,
    /// `pre_classifier`, dim to dim, then ReLU.
    pub pre_classifier: Linear,
    /// Dropout with `seq_classif_dropout`.
    pub dropout: Dropout,
    /// `classifier`, dim to `num_labels`.
    pub classifier: Linear,
    #[module(skip)]
    config: BertConfig,
}

impl PreTrainedModel for DistilBertForSequenceClassification {
    fn from_config(config: &BertConfig, seed: u64, device: &Device) -> Result<Self, BertError> {
        validated(config, Architecture::DistilBert)?;
        let init = Init::new(seed, config.initializer_range, device);
        let h = config.hidden_size;
        Ok(Self {
            distilbert: BertModel::new(config, &init, "distilbert", false),
            pre_classifier: init.linear("pre_classifier", h, h),
            dropout: DropoutConfig::new(config.classifier_dropout_prob()).init(),
            classifier: init.linear("classifier", h, config.num_labels()),
            config: config.clone(),
        })
    }

    fn config(&self) -> &BertConfig {
        &self.config
    }

    fn config_mut(&mut self) -> &mut BertConfig {
        &mut self.config
    }

    fn base_model(&self) -> &BertModel {
        &self.distilbert
    }

    fn base_model_mut(&mut self) -> &mut BertModel {
        &mut self.distilbert
    }

    fn classify(&self, output: BertModelOutput, rows: DropoutRows) -> Tensor<2> {
        let x = relu(
            self.pre_classifier
                .forward(first_token(output.last_hidden_state)),
        );
        logits(&self.classifier, keyed_dropout(&self.dropout, x, rows))
    }
}
