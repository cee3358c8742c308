//! `RobertaForSequenceClassification`: BERT's encoder with RoBERTa's positions, and a
//! two-layer head on `<s>` instead of a pooler.

use crate::input::DropoutRows;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Device, Tensor};

use crate::architecture::Architecture;
use crate::classification::{keyed_dropout, logits};
use crate::config::BertConfig;
use crate::error::BertError;
use crate::init::Init;
use crate::model::{BertModel, BertModelOutput, first_token};
use crate::pretrained::{PreTrainedModel, validated};

/// `classifier`: dropout → dense → tanh → dropout → out_proj, on the `<s>` token.
#[derive(Module, Debug)]
pub struct RobertaClassificationHead {
    /// `dense`, hidden to hidden.
    pub dense: Linear,
    /// Dropout with `classifier_dropout`, else `hidden_dropout_prob`.
    pub dropout: Dropout,
    /// `out_proj`, hidden size to `num_labels`.
    pub out_proj: Linear,
}

impl RobertaClassificationHead {
    fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        let h = config.hidden_size;
        Self {
            dense: init.linear(&format!("{path}.dense"), h, h),
            dropout: DropoutConfig::new(config.classifier_dropout_prob()).init(),
            out_proj: init.linear(&format!("{path}.out_proj"), h, config.num_labels()),
        }
    }

    /// fp32 logits from the first token (`<s>`). Both dropouts draw their masks from the
    /// rows' places in the step's batch.
    ///
    /// # Shapes
    /// - `hidden`: `[batch, seq, hidden]`
    /// - output: `[batch, num_labels]`
    pub fn forward(&self, hidden: Tensor<3>, rows: DropoutRows) -> Tensor<2> {
        let x = keyed_dropout(&self.dropout, first_token(hidden), rows);
        let x = self.dense.forward(x).tanh();
        logits(&self.out_proj, keyed_dropout(&self.dropout, x, rows))
    }
}

/// `roberta-base` and its kin, as `AutoModelForSequenceClassification` builds them.
#[derive(Module, Debug)]
pub struct RobertaForSequenceClassification {
    /// `roberta`, without a pooler.
    pub roberta: BertModel,
    /// `classifier`.
    pub classifier: RobertaClassificationHead,
    #[module(skip)]
    config: BertConfig,
}

impl PreTrainedModel for RobertaForSequenceClassification {
    fn from_config(config: &BertConfig, seed: u64, device: &Device) -> Result<Self, BertError> {
        validated(config, Architecture::Roberta)?;
        let init = Init::new(seed, config.initializer_range, device);
        Ok(Self {
            roberta: BertModel::new(config, &init, "roberta", false),
            classifier: RobertaClassificationHead::new(config, &init, "classifier"),
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
        &self.roberta
    }

    fn base_model_mut(&mut self) -> &mut BertModel {
        &mut self.roberta
    }

    fn classify(&self, output: BertModelOutput, rows: DropoutRows) -> Tensor<2> {
        self.classifier.forward(output.last_hidden_state, rows)
    }
}
