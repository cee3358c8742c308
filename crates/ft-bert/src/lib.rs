//! BERT on burn, module for module as transformers' `modeling_bert.py`, so that checkpoint
//! names map one to one, plus Hugging Face checkpoints in and out:
//!
//! ```python
//! model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
//! ```
//!
//! ```no_run
//! use burn::tensor::Device;
//! use ft_bert::BertForSequenceClassification;
//!
//! let device = Device::flex();
//! let model = BertForSequenceClassification::from_pretrained(
//!     "../shared/models/all-MiniLM-L6-v2",
//!     2,
//!     &device,
//! )?;
//! model.save_pretrained(std::path::Path::new("my-model"))?;
//! # Ok::<(), ft_bert::BertError>(())
//! ```
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
//! ```

mod attention;
mod checkpoint;
mod checkpointing;
mod classification;
mod config;
mod embeddings;
mod encoder;
mod error;
#[cfg(feature = "flex")]
mod flex;
mod init;
mod model;
mod ops;
mod packing;
mod positions;
pub mod simd;

pub use attention::{
    AttentionImpl, AttentionMask, BertAttention, BertSelfAttention, BertSelfOutput,
};
pub use checkpoint::{ARCHITECTURE, CheckpointFiles, LoadingInfo, PretrainedOptions};
pub use classification::{BertForSequenceClassification, SequenceClassifierOutput};
pub use config::{BertConfig, HiddenAct, ProblemType, SUPPORTED_MODEL_TYPES};
pub use embeddings::BertEmbeddings;
pub use encoder::{BertEncoder, BertIntermediate, BertLayer, BertOutput};
pub use error::BertError;
pub use model::{BertModel, BertModelOutput, BertPooler};
pub use packing::TokenLayout;
pub use positions::DropoutPositions;
