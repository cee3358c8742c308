//! The BERT family on burn, module for module as transformers' `modeling_bert.py`, so that
//! checkpoint names map one to one, plus Hugging Face checkpoints in and out:
//!
//! ```python
//! model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
//! ```
//!
//! ```no_run
//! use burn::tensor::Device;
//! use ft_bert::prelude::*;
//!
//! let device = Device::flex();
//! let model = AutoModelForSequenceClassification::from_pretrained(
//!     "../shared/models/all-MiniLM-L6-v2",
//!     2,
//!     &device,
//! )?;
//! model.save_pretrained(std::path::Path::new("my-model"))?;
//! # Ok::<(), ft_bert::BertError>(())
//! ```
//!
//! `config.json`'s `model_type` picks the architecture ([`Architecture`]): BERT, DistilBERT or
//! RoBERTa. All three run one encoder, [`BertModel`], under their own names (`bert`,
//! `distilbert`, `roberta`), with their own heads. [`PreTrainedModel`] is the one interface
//! of a classifier (config, forward pass with its loss, architecture); [`HubWeights`]
//! (`from_pretrained`, `save_pretrained`) and [`GradientCheckpointing`] extend every model
//! that has it, [`AutoModelForSequenceClassification`] included.
//!
//! A forward pass takes a [`ModelInput`]: the tensors transformers' `model(**batch)` takes,
//! the attention mask's layout on the host ([`TokenLayout`]), and where the rows sit in the
//! step's batch ([`DropoutRows`]). This crate knows nothing of datasets, collators or
//! processes; whoever holds a batch builds the input.
//!
//! Module tree (transformers' names; Rust fields are snake_case, `LayerNorm` is `layer_norm`
//! and `self` is `self_attention`):
//!
//! ```text
//! BertForSequenceClassification
//! ├── bert: BertModel
//! │   ├── embeddings: BertEmbeddings (word, position, token_type, LayerNorm, dropout)
//! │   ├── encoder: BertEncoder
//! │   │   └── layer.{i}: BertLayer
//! │   │       ├── attention: BertAttention (self: query/key/value, output: dense/LayerNorm)
//! │   │       ├── intermediate: BertIntermediate (dense, hidden_act)
//! │   │       └── output: BertOutput (dense, LayerNorm)
//! │   └── pooler: BertPooler (dense, tanh)
//! ├── dropout
//! └── classifier: Linear
//!
//! RobertaForSequenceClassification
//! ├── roberta: BertModel (positions from padding_idx + 1, no pooler)
//! └── classifier: RobertaClassificationHead (dense, tanh, out_proj on <s>)
//!
//! DistilBertForSequenceClassification
//! ├── distilbert: BertModel (no token types, no pooler; checkpoint names
//! │   transformer.layer.{i}.attention.q_lin, sa_layer_norm, ffn.lin1, ...)
//! ├── pre_classifier: Linear, ReLU
//! ├── dropout (seq_classif_dropout)
//! └── classifier: Linear
//! ```

#![warn(missing_docs)]

mod architecture;
mod attention;
mod auto;
pub mod autocast;
#[cfg(any(feature = "flex", feature = "tch"))]
mod autodiff_node;
mod classification;
mod config;
pub mod device_read;
mod distilbert;
mod embeddings;
mod encoder;
mod error;
#[cfg(feature = "flex")]
mod flex;
mod gradient_checkpointing;
mod hub_weights;
mod init;
mod input;
#[cfg(all(test, any(feature = "flex", feature = "tch")))]
mod kernel_tests;
#[cfg(feature = "tch")]
#[allow(
    deprecated,
    reason = "burn marks its libtorch backend deprecated; it is our route to CUDA (tch-cuda)"
)]
mod libtorch;
mod model;
pub mod ops;
mod packing;
mod positions;
mod pretrained;
pub mod random;
mod roberta;
pub mod simd;

pub use architecture::{Architecture, SUPPORTED_MODEL_TYPES};
pub use attention::{
    AttentionImpl, AttentionMask, BertAttention, BertSelfAttention, BertSelfOutput,
};
pub use auto::AutoModelForSequenceClassification;
pub use classification::BertForSequenceClassification;
pub use config::{BertConfig, HiddenAct, ProblemType};
pub use distilbert::DistilBertForSequenceClassification;
pub use embeddings::BertEmbeddings;
pub use encoder::{BertEncoder, BertIntermediate, BertLayer, BertOutput};
pub use error::BertError;
pub use gradient_checkpointing::GradientCheckpointing;
pub use hub_weights::{CheckpointFiles, HubWeights, LoadingInfo, PretrainedOptions};
pub use input::{DropoutRows, Labels, ModelInput, TokenLayout};
pub use model::{BertModel, BertModelOutput, BertPooler};
pub use pretrained::{PreTrainedModel, SequenceClassifierOutput};
pub use roberta::{RobertaClassificationHead, RobertaForSequenceClassification};

/// The traits a user of the models calls through, and the auto class:
/// `use ft_bert::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AutoModelForSequenceClassification, GradientCheckpointing, HubWeights, ModelInput,
        PreTrainedModel,
    };
}
