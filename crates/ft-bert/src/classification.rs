//! `BertForSequenceClassification`: BERT, dropout and a linear head over the pooled `[CLS]`.

use crate::input::DropoutRows;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Device, FloatDType, Tensor};

use crate::architecture::Architecture;
use crate::config::BertConfig;
use crate::error::BertError;
use crate::init::Init;
use crate::model::{BertModel, BertModelOutput};
use crate::positions::ElementKeys;
use crate::pretrained::{PreTrainedModel, validated};

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

impl PreTrainedModel for BertForSequenceClassification {
    fn from_config(config: &BertConfig, seed: u64, device: &Device) -> Result<Self, BertError> {
        validated(config, Architecture::Bert)?;
        let init = Init::new(seed, config.initializer_range, device);
        Ok(Self {
            bert: BertModel::new(config, &init, "bert", true),
            dropout: DropoutConfig::new(config.classifier_dropout_prob()).init(),
            classifier: init.linear("classifier", config.hidden_size, config.num_labels()),
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
        &self.bert
    }

    fn base_model_mut(&mut self) -> &mut BertModel {
        &mut self.bert
    }

    /// Dropout and the classifier on the pooled `[CLS]` states.
    fn classify(&self, output: BertModelOutput, rows: DropoutRows) -> Tensor<2> {
        let pooled = output
            .pooler_output
            .unwrap_or_else(|| crate::model::first_token(output.last_hidden_state));
        logits(&self.classifier, keyed_dropout(&self.dropout, pooled, rows))
    }
}

/// Dropout on `[batch, width]` rows, its masks keyed by the rows' places in the step's batch.
pub(crate) fn keyed_dropout(dropout: &Dropout, x: Tensor<2>, rows: DropoutRows) -> Tensor<2> {
    let [batch, width] = x.dims();
    crate::ops::dropout(dropout, x, || ElementKeys::rows(rows, batch, width))
}

/// The output projection, in fp32 whatever the compute precision, as under autocast.
pub(crate) fn logits(out_proj: &Linear, x: Tensor<2>) -> Tensor<2> {
    out_proj.forward(x).cast(FloatDType::F32)
}
