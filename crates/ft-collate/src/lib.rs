//! The notebook's second step, tokenization and dynamic padding:
//!
//! ```python
//! tokenizer = AutoTokenizer.from_pretrained(checkpoint)
//! tokenized_datasets = raw_datasets.map(tokenize_function, batched=True)
//! data_collator = DataCollatorWithPadding(tokenizer=tokenizer)
//! ```
//!
//! ```no_run
//! use ft_collate::{AutoTokenizer, DataCollatorWithPadding, EncodedDatasetDict};
//!
//! let raw_datasets = glue_data::load_dataset("../shared/data/glue/MRPC", "mrpc")?;
//! let tokenizer = AutoTokenizer::from_pretrained("../shared/models/all-MiniLM-L6-v2")?;
//! let tokenized_datasets = EncodedDatasetDict::map(&raw_datasets, &tokenizer)?;
//! let data_collator = DataCollatorWithPadding::new(&tokenizer);
//! let train = tokenized_datasets.split("train")?;
//! let rows: Vec<_> = train.rows().take(8).collect();
//! let batch = data_collator.collate(&rows, &burn::tensor::Device::flex())?;
//! println!("{:?}", batch.input_ids.dims());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Tokenization itself is the `tokenizers` crate's; this crate sets it up as transformers
//! does and keeps the encoded ids compactly.

#![warn(missing_docs)]

mod collator;
mod encoded;
mod error;
mod loader;
mod sampler;
mod tokenizer;

pub use collator::{Batch, DataCollatorWithPadding, GlobalRows, HostLabels, Labels, PaddedBatch};
pub use encoded::{EncodedDataset, EncodedDatasetDict, EncodedExample, EncodedRow};
pub use error::CollateError;
pub use loader::{BatchIter, DataLoader};
pub use sampler::{Sampler, Shard, batches};
pub use tokenizer::{AutoTokenizer, SpecialTokens, TOKENIZER_FILES, TokenizerOptions};
