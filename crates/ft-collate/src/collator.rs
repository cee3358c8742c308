//! `DataCollatorWithPadding`: dynamic padding of encoded rows into a batch.

use std::fmt;

use burn::tensor::{Device, Int, Tensor, TensorData};
use glue_data::Label;

use crate::encoded::EncodedRow;
use crate::error::CollateError;
use crate::tokenizer::AutoTokenizer;

/// Pads each batch to its longest row (optionally rounded up to a multiple), on the right,
/// with the tokenizer's pad id, and writes the attention mask (0 on padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCollatorWithPadding {
    /// The id written into padding positions.
    pub pad_token_id: u32,
    /// Round the padded length up to a multiple of this (8 suits tensor cores).
    pub pad_to_multiple_of: Option<usize>,
    tokenizer_repr: String,
}

impl DataCollatorWithPadding {
    /// `DataCollatorWithPadding(tokenizer=tokenizer)`.
    pub fn new(tokenizer: &AutoTokenizer) -> Self {
        Self {
            pad_token_id: tokenizer.pad_token_id(),
            pad_to_multiple_of: None,
            tokenizer_repr: tokenizer.to_string(),
        }
    }

    /// Pads to a multiple of `multiple` (`pad_to_multiple_of=...`).
    pub fn with_pad_to_multiple_of(mut self, multiple: usize) -> Result<Self, CollateError> {
        if multiple == 0 {
            return Err(CollateError::Zero {
                what: "pad_to_multiple_of",
            });
        }
        self.pad_to_multiple_of = Some(multiple);
        Ok(self)
    }

    /// Pads `rows` into host arrays; [`PaddedBatch::to_device`] makes tensors of them.
    pub fn pad(&self, rows: &[EncodedRow<'_>]) -> Result<PaddedBatch, CollateError> {
        let longest = rows.iter().map(|r| r.input_ids.len()).max().unwrap_or(0);
        let seq_len = match self.pad_to_multiple_of {
            Some(m) => longest.div_ceil(m) * m,
            None => longest,
        };
        let batch_size = rows.len();
        let mut batch = PaddedBatch {
            batch_size,
            seq_len,
            input_ids: vec![i64::from(self.pad_token_id); batch_size * seq_len],
            token_type_ids: rows
                .first()
                .and_then(|row| row.token_type_ids)
                .map(|_| vec![0; batch_size * seq_len]),
            attention_mask: vec![0; batch_size * seq_len],
            labels: None,
            idx: rows.iter().map(|r| r.idx).collect(),
            lengths: rows.iter().map(|r| r.input_ids.len()).collect(),
            num_tokens: rows.iter().map(|r| r.input_ids.len()).sum(),
        };
        for (i, row) in rows.iter().enumerate() {
            let start = i * seq_len;
            let n = row.input_ids.len();
            for (target, &id) in batch.input_ids[start..start + n]
                .iter_mut()
                .zip(row.input_ids)
            {
                *target = i64::from(id);
            }
            if let (Some(types), Some(row_types)) = (&mut batch.token_type_ids, row.token_type_ids)
            {
                for (target, &t) in types[start..start + n].iter_mut().zip(row_types) {
                    *target = i64::from(t);
                }
            }
            batch.attention_mask[start..start + n].fill(1);
        }
        batch.labels = collect_labels(rows)?;
        Ok(batch)
    }

    /// Pads `rows` and makes the batch's tensors on `device`.
    pub fn collate(&self, rows: &[EncodedRow<'_>], device: &Device) -> Result<Batch, CollateError> {
        Ok(self.pad(rows)?.to_device(device))
    }
}

/// Prints like the notebook's `data_collator` cell.
impl fmt::Display for DataCollatorWithPadding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let multiple = self
            .pad_to_multiple_of
            .map_or("None".to_string(), |m| m.to_string());
        write!(
            f,
            "DataCollatorWithPadding(tokenizer={}, padding=True, max_length=None, \
             pad_to_multiple_of={multiple}, return_tensors='burn')",
            self.tokenizer_repr
        )
    }
}

/// The labels of a batch, on the host.
#[derive(Debug, Clone, PartialEq)]
pub enum HostLabels {
    /// Class ids.
    Class(Vec<i64>),
    /// Regression targets.
    Score(Vec<f32>),
}

/// All rows labelled: their labels; none labelled: `None`; a mix is an error.
fn collect_labels(rows: &[EncodedRow<'_>]) -> Result<Option<HostLabels>, CollateError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let missing = |idx| CollateError::MixedLabels { idx };
    match first.label {
        None => match rows.iter().find(|r| r.label.is_some()) {
            Some(_) => Err(missing(first.idx)),
            None => Ok(None),
        },
        Some(Label::Class(_)) => rows
            .iter()
            .map(|r| match r.label {
                Some(Label::Class(c)) => Ok(i64::from(c)),
                _ => Err(missing(r.idx)),
            })
            .collect::<Result<_, _>>()
            .map(|v| Some(HostLabels::Class(v))),
        Some(Label::Score(_)) => rows
            .iter()
            .map(|r| match r.label {
                Some(Label::Score(s)) => Ok(s),
                _ => Err(missing(r.idx)),
            })
            .collect::<Result<_, _>>()
            .map(|v| Some(HostLabels::Score(v))),
    }
}

/// A padded batch on the host, row-major `[batch_size, seq_len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    /// Rows in the batch.
    pub batch_size: usize,
    /// Padded sequence length.
    pub seq_len: usize,
    /// Token ids, padded with the pad id.
    pub input_ids: Vec<i64>,
    /// Token types, 0 on padding; `None` where the rows have none.
    pub token_type_ids: Option<Vec<i64>>,
    /// 1 on tokens, 0 on padding.
    pub attention_mask: Vec<i64>,
    /// Labels, if the rows have them.
    pub labels: Option<HostLabels>,
    /// Each row's `idx`.
    pub idx: Vec<u32>,
    /// Each row's tokens before its padding (the attention mask's ones, on the right).
    pub lengths: Vec<usize>,
    /// Tokens without padding.
    pub num_tokens: usize,
}

impl PaddedBatch {
    /// The batch as tensors on `device`.
    pub fn to_device(self, device: &Device) -> Batch {
        let shape = [self.batch_size, self.seq_len];
        let int2 =
            |values: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(values, shape), device);
        let labels = self.labels.map(|labels| match labels {
            HostLabels::Class(values) => {
                let n = values.len();
                Labels::Class(Tensor::from_data(TensorData::new(values, [n]), device))
            }
            HostLabels::Score(values) => {
                let n = values.len();
                Labels::Score(Tensor::from_data(TensorData::new(values, [n]), device))
            }
        });
        Batch {
            input_ids: int2(self.input_ids),
            token_type_ids: self.token_type_ids.map(int2),
            attention_mask: int2(self.attention_mask),
            labels,
            idx: self.idx,
            seq_len: self.seq_len,
            lengths: self.lengths,
            num_tokens: self.num_tokens,
            global_rows: GlobalRows::LOCAL,
        }
    }
}

/// A batch's labels as a tensor.
#[derive(Debug, Clone)]
pub enum Labels {
    /// `[batch]` class ids.
    Class(Tensor<1, Int>),
    /// `[batch]` regression targets.
    Score(Tensor<1>),
}

/// A model-ready batch: the tensors a BERT forward pass takes.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[batch, seq]` token ids.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq]` token types, where the tokenizer returns them.
    pub token_type_ids: Option<Tensor<2, Int>>,
    /// `[batch, seq]`, 1 on tokens and 0 on padding.
    pub attention_mask: Tensor<2, Int>,
    /// `[batch]` labels, absent for unlabelled data.
    pub labels: Option<Labels>,
    /// Each row's `idx`.
    pub idx: Vec<u32>,
    /// The padded length, `seq`.
    pub seq_len: usize,
    /// Each row's tokens before its padding, on the host: the attention mask without a read
    /// from the device.
    pub lengths: Vec<usize>,
    /// Tokens without padding.
    pub num_tokens: usize,
    /// Where the rows sit in the step's batch over all processes.
    pub global_rows: GlobalRows,
}

/// Where a process's batch sits in the batch of all processes together: with the shards of
/// [`Shard`](crate::Shard), row `i` of rank `r` among `n` is row `i·n + r`. A model keys
/// each row's dropout by this position, so that a step draws the same masks however many
/// processes share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalRows {
    /// The first row's position (the rank).
    pub offset: usize,
    /// The distance between consecutive rows (the world size).
    pub stride: usize,
}

impl GlobalRows {
    /// A batch that is the whole batch: row `i` is row `i`.
    pub const LOCAL: GlobalRows = GlobalRows {
        offset: 0,
        stride: 1,
    };

    /// The position of local row `row`.
    pub fn position(&self, row: usize) -> usize {
        row * self.stride + self.offset
    }
}

impl Batch {
    /// Rows in the batch.
    pub fn batch_size(&self) -> usize {
        self.idx.len()
    }
}
