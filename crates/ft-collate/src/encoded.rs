//! The `dataset.map(tokenize_function, batched=True)` step and the encoded dataset it makes.

use std::io::IsTerminal;

use burn_dataset::{Dataset, DatasetError};
use glue_data::{DatasetDict, Features, Label, LabelColumn, Split};
use rayon::prelude::*;

use crate::error::CollateError;
use crate::tokenizer::AutoTokenizer;

/// Rows per batch of the map, as `datasets.map`'s default `batch_size=1000`.
const MAP_BATCH_SIZE: usize = 1000;

/// Batches encoded in parallel before they are appended: enough to keep every core busy.
const MAP_WINDOW_CHUNKS: usize = 32;

/// Below this many rows the map runs without a progress bar.
const PROGRESS_MIN_ROWS: usize = 10_000;

/// One encoded row, borrowed from its dataset. The attention mask is all ones, so it is not
/// stored; the collator writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodedRow<'a> {
    /// Token ids, `[CLS] a [SEP] b [SEP]` (`<s> a </s></s> b </s>` for RoBERTa).
    pub input_ids: &'a [u32],
    /// 0 for the first segment, 1 for the second; `None` where the tokenizer's
    /// `model_input_names` have no `token_type_ids`.
    pub token_type_ids: Option<&'a [u8]>,
    /// The label, `None` in unlabelled splits.
    pub label: Option<Label>,
    /// The row's `idx`.
    pub idx: u32,
}

/// One encoded row, owned: what [`Dataset::get`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedExample {
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// Token types, where the tokenizer returns them.
    pub token_type_ids: Option<Vec<u8>>,
    /// All ones, one per token, as transformers returns it.
    pub attention_mask: Vec<u8>,
    /// The label.
    pub label: Option<Label>,
    /// The row's `idx`.
    pub idx: u32,
}

/// A tokenized split: every row's ids in one flat buffer, with the label and idx columns.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedDataset {
    name: String,
    features: Features,
    input_ids: Vec<u32>,
    /// `None` where the tokenizer returns no token types.
    token_type_ids: Option<Vec<u8>>,
    /// Row `i` is `offsets[i]..offsets[i + 1]` of the flat buffers.
    offsets: Vec<usize>,
    labels: LabelColumn,
    idx: Vec<u32>,
}

impl EncodedDataset {
    /// Tokenizes `split` in parallel, in batches of 1000 rows as `datasets.map` does, keeping
    /// row order, labels and idx. A progress bar shows on long inputs when stderr is a
    /// terminal.
    pub fn map(split: &Split, tokenizer: &AutoTokenizer) -> Result<Self, CollateError> {
        let rows = split.len();
        let progress = (rows >= PROGRESS_MIN_ROWS && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(rows as u64);
            bar.set_message(format!("Map ({})", split.name()));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg}: {percent}% {wide_bar} {pos}/{len} [{elapsed}<{eta}, {per_sec}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });

        let text_b = split.text_b();
        let with_types = tokenizer.returns_token_type_ids();
        let encode_chunk = |start: usize| {
            let end = (start + MAP_BATCH_SIZE).min(rows);
            let mut chunk = Chunk::default();
            for row in start..end {
                let a = &split.text_a()[row];
                let b = text_b.map(|column| column[row].as_str());
                let encoding = tokenizer
                    .encode(a, b)
                    .map_err(|source| CollateError::Encode {
                        split: split.name().to_string(),
                        row,
                        source,
                    })?;
                chunk.push(&encoding, with_types);
            }
            if let Some(bar) = &progress {
                bar.inc((end - start) as u64);
            }
            Ok::<_, CollateError>(chunk)
        };

        let mut dataset = Self {
            name: split.name().to_string(),
            features: split.features().clone(),
            input_ids: Vec::new(),
            token_type_ids: with_types.then(Vec::new),
            offsets: Vec::with_capacity(rows + 1),
            labels: split.labels().clone(),
            idx: split.idx().to_vec(),
        };
        dataset.offsets.push(0);
        // Chunks are encoded in parallel a window at a time and appended in order, so the
        // memory beyond the encoded ids stays one window's worth however long the split is.
        let window = MAP_BATCH_SIZE * MAP_WINDOW_CHUNKS;
        for window_start in (0..rows).step_by(window) {
            let window_end = (window_start + window).min(rows);
            let chunks: Vec<Chunk> = (window_start..window_end)
                .into_par_iter()
                .step_by(MAP_BATCH_SIZE)
                .map(encode_chunk)
                .collect::<Result<_, CollateError>>()?;
            for chunk in chunks {
                dataset.append(chunk);
            }
        }
        if let Some(bar) = progress {
            bar.finish();
        }
        dataset.input_ids.shrink_to_fit();
        if let Some(types) = &mut dataset.token_type_ids {
            types.shrink_to_fit();
        }
        Ok(dataset)
    }

    fn append(&mut self, chunk: Chunk) {
        let base = self.input_ids.len();
        self.offsets
            .extend(chunk.lengths.iter().scan(base, |end, &len| {
                *end += len;
                Some(*end)
            }));
        self.input_ids.extend(chunk.input_ids);
        if let Some(types) = &mut self.token_type_ids {
            types.extend(chunk.token_type_ids);
        }
    }

    /// The split's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The features of the split it was made from.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// Row `index`, borrowed.
    pub fn row(&self, index: usize) -> Option<EncodedRow<'_>> {
        let (start, end) = (*self.offsets.get(index)?, *self.offsets.get(index + 1)?);
        Some(EncodedRow {
            input_ids: &self.input_ids[start..end],
            token_type_ids: self.token_type_ids.as_ref().map(|types| &types[start..end]),
            label: self.labels.get(index),
            idx: self.idx[index],
        })
    }

    /// All rows in order.
    pub fn rows(&self) -> impl Iterator<Item = EncodedRow<'_>> + '_ {
        (0..self.len()).filter_map(|index| self.row(index))
    }

    /// Token count of each row (what `group_by_length` sorts by).
    pub fn lengths(&self) -> Vec<usize> {
        self.offsets.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Tokens in all rows, without padding.
    pub fn num_tokens(&self) -> usize {
        self.input_ids.len()
    }

    /// The `label` column.
    pub fn labels(&self) -> &LabelColumn {
        &self.labels
    }

    /// Whether the rows have `token_type_ids` (the tokenizer's `model_input_names` decide).
    pub fn has_token_type_ids(&self) -> bool {
        self.token_type_ids.is_some()
    }

    /// Whether every row has a label.
    pub fn has_labels(&self) -> bool {
        !self.is_empty() && self.labels.is_complete()
    }
}

impl Dataset<EncodedExample> for EncodedDataset {
    /// Row `index`, owned; panics past the end, as the trait requires.
    fn get(&self, index: usize) -> Result<EncodedExample, DatasetError> {
        let Some(row) = self.row(index) else {
            panic!("Index out of bounds for dataset: {index} >= {}", self.len());
        };
        Ok(EncodedExample {
            input_ids: row.input_ids.to_vec(),
            token_type_ids: row.token_type_ids.map(<[u8]>::to_vec),
            attention_mask: vec![1; row.input_ids.len()],
            label: row.label,
            idx: row.idx,
        })
    }

    fn len(&self) -> usize {
        EncodedDataset::len(self)
    }
}

/// One map batch's output.
#[derive(Default)]
struct Chunk {
    input_ids: Vec<u32>,
    token_type_ids: Vec<u8>,
    lengths: Vec<usize>,
}

impl Chunk {
    fn push(&mut self, encoding: &tokenizers::Encoding, with_types: bool) {
        self.input_ids.extend_from_slice(encoding.get_ids());
        if with_types {
            // BERT has two segment types; anything larger is clamped rather than wrapped.
            self.token_type_ids.extend(
                encoding
                    .get_type_ids()
                    .iter()
                    .map(|&t| u8::try_from(t).unwrap_or(u8::MAX)),
            );
        }
        self.lengths.push(encoding.len());
    }
}

/// Every split of a task, tokenized: `raw_datasets.map(tokenize_function, batched=True)`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedDatasetDict {
    splits: Vec<EncodedDataset>,
}

impl EncodedDatasetDict {
    /// Tokenizes every split of `raw`.
    pub fn map(raw: &DatasetDict, tokenizer: &AutoTokenizer) -> Result<Self, CollateError> {
        let splits = raw
            .splits()
            .iter()
            .map(|split| EncodedDataset::map(split, tokenizer))
            .collect::<Result<_, _>>()?;
        Ok(Self { splits })
    }

    /// A split by name.
    pub fn get(&self, name: &str) -> Option<&EncodedDataset> {
        self.splits.iter().find(|split| split.name() == name)
    }

    /// A split by name, or an error naming the splits present.
    pub fn split(&self, name: &str) -> Result<&EncodedDataset, CollateError> {
        self.get(name).ok_or_else(|| CollateError::NoSuchSplit {
            name: name.to_string(),
            present: self
                .splits
                .iter()
                .map(|split| split.name().to_string())
                .collect(),
        })
    }

    /// All splits, in order.
    pub fn splits(&self) -> &[EncodedDataset] {
        &self.splits
    }
}
