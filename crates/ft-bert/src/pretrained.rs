//! `PreTrainedModel`: the one interface of a sequence classifier. Each classifier is the
//! shared encoder ([`BertModel`]) under its architecture's name and a head of its own; the
//! trait holds the config, the forward pass with its loss, and the architecture. Hub I/O
//! ([`crate::HubWeights`], `hub_weights.rs`) and gradient checkpointing
//! ([`crate::GradientCheckpointing`], `gradient_checkpointing.rs`) extend it for every model
//! that implements it, so the arrows between these files run one way, towards this one.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};

use crate::architecture::Architecture;
use crate::attention::AttentionImpl;
use crate::config::{BertConfig, ProblemType};
use crate::error::BertError;
use crate::input::{DropoutRows, Labels, ModelInput};
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
/// `...ForSequenceClassification`: built from a config and run on a [`ModelInput`].
pub trait PreTrainedModel: Module + Sized {
    /// A model of `config`'s architecture with transformers' random initialisation, drawn
    /// from `seed`: the same weights on every backend (`AutoModel.from_config`).
    ///
    /// # Errors
    /// [`BertError::ArchitectureMismatch`] where this type cannot hold that architecture;
    /// [`BertError::InvalidConfigValues`] where the values do not fit together.
    fn from_config(config: &BertConfig, seed: u64, device: &Device) -> Result<Self, BertError>;

    /// The configuration.
    fn config(&self) -> &BertConfig;

    /// The configuration, to change what `save_pretrained` writes (label names).
    fn config_mut(&mut self) -> &mut BertConfig;

    /// The encoder under the head (`model.base_model`).
    fn base_model(&self) -> &BertModel;

    /// The encoder under the head, mutably.
    fn base_model_mut(&mut self) -> &mut BertModel;

    /// The head on the encoder's output, fp32 logits; its dropout is keyed by the rows'
    /// places in the step's batch.
    ///
    /// # Shapes
    /// - `output.last_hidden_state`: `[batch, seq, hidden]`
    /// - output: `[batch, num_labels]`
    fn classify(&self, output: BertModelOutput, rows: DropoutRows) -> Tensor<2>;

    /// The architecture, whose names its checkpoints use.
    fn architecture(&self) -> Architecture {
        self.config().architecture
    }

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

    /// Logits, and the loss when `input` has labels (`model(**batch)`). Dropout is active on
    /// an autodiff device (training) and off after `Module::valid` (evaluation).
    ///
    /// # Shapes
    /// - `input`: `[batch, seq]` (see [`ModelInput`])
    /// - `logits`: `[batch, num_labels]`; `loss`: `[1]`
    fn forward(&self, input: &ModelInput) -> Result<SequenceClassifierOutput, BertError> {
        let output = self.base_model().forward(input)?;
        let logits = self.classify(output, input.dropout_rows);
        let loss = input
            .labels
            .as_ref()
            .map(|labels| self.loss(logits.clone(), labels))
            .transpose()?;
        Ok(SequenceClassifierOutput { logits, loss })
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

    /// The loss of logits against `labels`, for the problem type: cross-entropy for
    /// classes, mean squared error for a single regression output.
    ///
    /// # Shapes
    /// - `logits`: `[batch, num_labels]`; `labels`: `[batch]`
    /// - output: `[1]`
    fn loss(&self, logits: Tensor<2>, labels: &Labels) -> Result<Tensor<1>, BertError> {
        let [batch, num_labels] = logits.dims();
        match (self.problem_type(labels), labels) {
            (ProblemType::Regression, labels) => {
                if num_labels != 1 {
                    return Err(BertError::RegressionNeedsOneLabel { num_labels });
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
            (problem, labels) => Err(BertError::LabelsDoNotFit {
                problem,
                labels: match labels {
                    Labels::Class(_) => "class",
                    Labels::Score(_) => "score",
                },
            }),
        }
    }
}

/// Checks a config before a model of `architecture` is built from it.
pub(crate) fn validated(config: &BertConfig, architecture: Architecture) -> Result<(), BertError> {
    if config.architecture != architecture {
        return Err(BertError::ArchitectureMismatch {
            config: config.architecture,
            expected: architecture,
        });
    }
    config
        .validate()
        .map_err(|reason| BertError::InvalidConfigValues {
            class: architecture.class_name(),
            reason,
        })
}
