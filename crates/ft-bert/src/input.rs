//! [`ModelInput`]: what a forward pass takes, as the keyword arguments of transformers'
//! `model(input_ids=..., token_type_ids=..., attention_mask=..., labels=...)`, plus two
//! things of this crate's own: where the real tokens sit, known on the host so that the
//! forward pass never reads the mask back from the device, and which rows of a step's batch
//! these are, which keys their dropout.
//!
//! The model knows nothing of datasets, collators or processes: whoever holds a batch (the
//! Trainer, a test, a user's own loop) builds a `ModelInput` from it.

use std::sync::Arc;

use burn::tensor::{Int, Tensor};

use crate::error::BertError;

/// A batch's labels as tensors.
#[derive(Debug, Clone)]
pub enum Labels {
    /// `[batch]` class ids.
    Class(Tensor<1, Int>),
    /// `[batch]` regression targets.
    Score(Tensor<1>),
}

/// Which rows of a step's batch an input holds: local row `i` is row `offset + i · stride`.
///
/// Dropout is keyed by this row, so a step draws the same masks whether its batch runs in
/// one forward pass or is split across several (a data-parallel job gives rank `r` of `n`
/// the rows `r, r + n, …`: offset `r`, stride `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropoutRows {
    /// The first row's place.
    pub offset: usize,
    /// The distance between consecutive rows.
    pub stride: usize,
}

impl DropoutRows {
    /// The input is the whole batch: row `i` is row `i`.
    pub const WHOLE_BATCH: DropoutRows = DropoutRows {
        offset: 0,
        stride: 1,
    };

    /// The place of local row `row`.
    pub fn position(&self, row: usize) -> usize {
        row * self.stride + self.offset
    }
}

impl Default for DropoutRows {
    fn default() -> Self {
        Self::WHOLE_BATCH
    }
}

/// Where a `[batch, seq]` batch's real tokens sit, on the host: the attention mask's ones.
///
/// The encoder runs its token-wise layers on the real tokens alone (see `packing.rs`) and
/// keys dropout by each token's row and position; both come from here, so that the forward
/// pass never waits on a read from the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLayout {
    batch: usize,
    seq: usize,
    /// `(row, position)` of each real token in row-major order, or of every position when
    /// nothing is padding (or nothing is a token), so that packing is a reshape.
    positions: Arc<[(u32, u32)]>,
    /// Whether some positions are padding and some are tokens.
    packed: bool,
}

impl TokenLayout {
    /// The layout of right-padded rows: row `i` has tokens at positions `0..lengths[i]` of
    /// `seq`, as `DataCollatorWithPadding` pads them.
    ///
    /// # Errors
    /// [`BertError::RowLongerThanBatch`] when a row is longer than `seq`.
    pub fn from_row_lengths(seq: usize, lengths: &[usize]) -> Result<Self, BertError> {
        if let Some((row, &length)) = lengths.iter().enumerate().find(|(_, l)| **l > seq) {
            return Err(BertError::RowLongerThanBatch { row, length, seq });
        }
        let tokens = lengths.iter().enumerate().flat_map(|(row, &length)| {
            (0..length).map(move |position| (row as u32, position as u32))
        });
        Ok(Self::from_tokens(lengths.len(), seq, tokens))
    }

    /// The layout of a row-major `[batch, seq]` attention mask held on the host (non-zero on
    /// tokens, zero on padding).
    ///
    /// # Errors
    /// [`BertError::InputShape`] when `mask` does not hold `batch · seq` values.
    pub fn from_mask_values(mask: &[i64], [batch, seq]: [usize; 2]) -> Result<Self, BertError> {
        if mask.len() != batch * seq {
            return Err(BertError::InputShape {
                what: "the attention mask's values",
                expected: vec![batch, seq],
                found: vec![mask.len()],
            });
        }
        let tokens = mask
            .iter()
            .enumerate()
            .filter(|&(_, &value)| value != 0)
            .map(|(flat, _)| ((flat / seq.max(1)) as u32, (flat % seq.max(1)) as u32));
        Ok(Self::from_tokens(batch, seq, tokens))
    }

    /// The layout of an attention mask on a device, read back once (for inputs made as
    /// tensors; a collator knows the layout without the read).
    ///
    /// # Errors
    /// [`BertError::DeviceRead`] when the device cannot give the values back.
    pub fn from_attention_mask(attention_mask: &Tensor<2, Int>) -> Result<Self, BertError> {
        let data = crate::device_read::read(attention_mask.clone()).map_err(|source| {
            BertError::DeviceRead {
                what: "the attention mask",
                source,
            }
        })?;
        let values: Vec<i64> = data.iter::<i64>().collect();
        Self::from_mask_values(&values, attention_mask.dims())
    }

    fn from_tokens(batch: usize, seq: usize, tokens: impl Iterator<Item = (u32, u32)>) -> Self {
        let tokens: Arc<[(u32, u32)]> = tokens.collect();
        let packed = !tokens.is_empty() && tokens.len() != batch * seq;
        let positions = if packed {
            tokens
        } else {
            (0..batch * seq)
                .map(|flat| ((flat / seq) as u32, (flat % seq) as u32))
                .collect()
        };
        Self {
            batch,
            seq,
            positions,
            packed,
        }
    }

    /// `[batch, seq]`, the padded shape.
    pub fn dims(&self) -> [usize; 2] {
        [self.batch, self.seq]
    }

    /// Whether some positions are padding (and some are tokens): only then do the layers
    /// run on fewer rows than the padded layout has.
    pub fn is_packed(&self) -> bool {
        self.packed
    }

    /// `(row, position in the row)` of each row the layers run on, in order: the real
    /// tokens, or every position when nothing is packed.
    pub fn token_positions(&self) -> Arc<[(u32, u32)]> {
        self.positions.clone()
    }

    /// Rows the layers run on.
    pub fn num_rows(&self) -> usize {
        self.positions.len()
    }
}

/// The inputs of one forward pass.
///
/// # Shapes
/// - `input_ids`, `token_type_ids`, `attention_mask`: `[batch, seq]`
/// - `labels`: `[batch]`
#[derive(Debug, Clone)]
pub struct ModelInput {
    /// Token ids.
    pub input_ids: Tensor<2, Int>,
    /// Token types; zeros when `None`, as transformers fills them. An architecture without
    /// token types ignores them.
    pub token_type_ids: Option<Tensor<2, Int>>,
    /// 1 on tokens, 0 on padding.
    pub attention_mask: Tensor<2, Int>,
    /// The attention mask's layout, on the host.
    pub layout: TokenLayout,
    /// The targets; with them the forward pass also returns the loss.
    pub labels: Option<Labels>,
    /// Where these rows sit in the step's batch.
    pub dropout_rows: DropoutRows,
}

impl ModelInput {
    /// An input whose attention mask's layout the caller knows (a collator does).
    ///
    /// # Errors
    /// [`BertError::InputShape`] when the tensors or the layout disagree on
    /// `[batch, seq]`.
    pub fn new(
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Tensor<2, Int>,
        layout: TokenLayout,
    ) -> Result<Self, BertError> {
        let input = Self {
            input_ids,
            token_type_ids,
            attention_mask,
            layout,
            labels: None,
            dropout_rows: DropoutRows::WHOLE_BATCH,
        };
        input.check_shapes()?;
        Ok(input)
    }

    /// Checks that the tensors and the layout agree on `[batch, seq]` (the fields are
    /// public, so the forward pass checks again).
    ///
    /// # Errors
    /// [`BertError::InputShape`] naming the first that differs from `input_ids`.
    pub fn check_shapes(&self) -> Result<(), BertError> {
        let expected = self.input_ids.dims();
        let others = [
            (
                "token_type_ids",
                self.token_type_ids.as_ref().map(Tensor::dims),
            ),
            ("attention_mask", Some(self.attention_mask.dims())),
            ("the token layout", Some(self.layout.dims())),
        ];
        for (what, found) in others {
            if let Some(found) = found.filter(|found| *found != expected) {
                return Err(BertError::InputShape {
                    what,
                    expected: expected.to_vec(),
                    found: found.to_vec(),
                });
            }
        }
        Ok(())
    }

    /// An input from tensors alone, as transformers takes them; the attention mask is read
    /// back once, here, for its layout.
    ///
    /// # Errors
    /// As [`ModelInput::new`], and [`BertError::DeviceRead`].
    pub fn from_tensors(
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Tensor<2, Int>,
    ) -> Result<Self, BertError> {
        let layout = TokenLayout::from_attention_mask(&attention_mask)?;
        Self::new(input_ids, token_type_ids, attention_mask, layout)
    }

    /// The same input with `labels`.
    pub fn with_labels(mut self, labels: Option<Labels>) -> Self {
        self.labels = labels;
        self
    }

    /// The same input, its rows at `rows` in the step's batch.
    pub fn with_dropout_rows(mut self, rows: DropoutRows) -> Self {
        self.dropout_rows = rows;
        self
    }

    /// Rows in the batch.
    pub fn batch_size(&self) -> usize {
        self.layout.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_padded_lengths_and_mask_values_give_one_layout() {
        let from_lengths = TokenLayout::from_row_lengths(4, &[3, 2]).expect("rows fit");
        let from_mask =
            TokenLayout::from_mask_values(&[1, 1, 1, 0, 1, 1, 0, 0], [2, 4]).expect("2 × 4");
        assert_eq!(from_lengths, from_mask);
        assert!(from_lengths.is_packed());
        assert_eq!(
            from_lengths.token_positions()[..],
            [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
        );
    }

    #[test]
    fn no_padding_or_no_tokens_packs_nothing() {
        for lengths in [[3, 3], [0, 0]] {
            let layout = TokenLayout::from_row_lengths(3, &lengths).expect("rows fit");
            assert!(!layout.is_packed());
            assert_eq!(layout.num_rows(), 6);
        }
    }

    #[test]
    fn a_row_longer_than_the_batch_or_a_short_mask_is_refused() {
        assert!(matches!(
            TokenLayout::from_row_lengths(2, &[1, 3]),
            Err(BertError::RowLongerThanBatch {
                row: 1,
                length: 3,
                seq: 2
            })
        ));
        assert!(matches!(
            TokenLayout::from_mask_values(&[1, 1, 1], [2, 2]),
            Err(BertError::InputShape { .. })
        ));
    }

    #[test]
    fn dropout_rows_place_a_shard_in_the_whole_batch() {
        let rank_1_of_2 = DropoutRows {
            offset: 1,
            stride: 2,
        };
        assert_eq!(rank_1_of_2.position(3), 7);
        assert_eq!(DropoutRows::default().position(3), 3);
    }
}
