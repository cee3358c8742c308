//! `AutoModelForSequenceClassification`: the classifier `config.json`'s `model_type` names.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::architecture::Architecture;
use crate::classification::BertForSequenceClassification;
use crate::config::BertConfig;
use crate::distilbert::DistilBertForSequenceClassification;
use crate::error::BertError;
use crate::input::DropoutRows;
use crate::model::{BertModel, BertModelOutput};
use crate::pretrained::PreTrainedModel;
use crate::roberta::RobertaForSequenceClassification;

/// One of the sequence classifiers, chosen by `model_type` when built or loaded, as
/// transformers' `AutoModelForSequenceClassification` returns the matching class. It is a
/// [`PreTrainedModel`] like each of them, so loading ([`crate::HubWeights`]), gradient
/// checkpointing and the Trainer take it as they take the classes.
#[derive(Module, Debug)]
pub enum AutoModelForSequenceClassification {
    /// `model_type: "bert"`.
    Bert(BertForSequenceClassification),
    /// `model_type: "distilbert"`.
    DistilBert(DistilBertForSequenceClassification),
    /// `model_type: "roberta"`.
    Roberta(RobertaForSequenceClassification),
}

impl AutoModelForSequenceClassification {
    /// The model the enum holds, as the core trait.
    fn as_dyn(&self) -> &dyn ClassifierParts {
        match self {
            Self::Bert(model) => model,
            Self::DistilBert(model) => model,
            Self::Roberta(model) => model,
        }
    }

    /// The model the enum holds, as the core trait, mutably.
    fn as_dyn_mut(&mut self) -> &mut dyn ClassifierParts {
        match self {
            Self::Bert(model) => model,
            Self::DistilBert(model) => model,
            Self::Roberta(model) => model,
        }
    }
}

/// The object-safe part of [`PreTrainedModel`] that the enum forwards to the model it holds.
trait ClassifierParts {
    fn config(&self) -> &BertConfig;
    fn config_mut(&mut self) -> &mut BertConfig;
    fn base_model(&self) -> &BertModel;
    fn base_model_mut(&mut self) -> &mut BertModel;
    fn classify(&self, output: BertModelOutput, rows: DropoutRows) -> Tensor<2>;
}

impl<M: PreTrainedModel> ClassifierParts for M {
    fn config(&self) -> &BertConfig {
        PreTrainedModel::config(self)
    }

    fn config_mut(&mut self) -> &mut BertConfig {
        PreTrainedModel::config_mut(self)
    }

    fn base_model(&self) -> &BertModel {
        PreTrainedModel::base_model(self)
    }

    fn base_model_mut(&mut self) -> &mut BertModel {
        PreTrainedModel::base_model_mut(self)
    }

    fn classify(&self, output: BertModelOutput, rows: DropoutRows) -> Tensor<2> {
        PreTrainedModel::classify(self, output, rows)
    }
}

impl PreTrainedModel for AutoModelForSequenceClassification {
    /// `AutoModelForSequenceClassification.from_config(config)`: the config's architecture,
    /// randomly initialised from `seed`.
    fn from_config(config: &BertConfig, seed: u64, device: &Device) -> Result<Self, BertError> {
        Ok(match config.architecture {
            Architecture::Bert => Self::Bert(PreTrainedModel::from_config(config, seed, device)?),
            Architecture::DistilBert => {
                Self::DistilBert(PreTrainedModel::from_config(config, seed, device)?)
            }
            Architecture::Roberta => {
                Self::Roberta(PreTrainedModel::from_config(config, seed, device)?)
            }
        })
    }

    fn config(&self) -> &BertConfig {
        self.as_dyn().config()
    }

    fn config_mut(&mut self) -> &mut BertConfig {
        self.as_dyn_mut().config_mut()
    }

    fn base_model(&self) -> &BertModel {
        self.as_dyn().base_model()
    }

    fn base_model_mut(&mut self) -> &mut BertModel {
        self.as_dyn_mut().base_model_mut()
    }

    fn classify(&self, output: BertModelOutput, rows: DropoutRows) -> Tensor<2> {
        self.as_dyn().classify(output, rows)
    }
}
