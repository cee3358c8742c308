//! What keys each dropout decision: a position that neither the batch's padding nor the split
//! of a step's batch across processes changes.
//!
//! flex's dropout decides each element from a hash of a per-call key and a counter. Were the
//! counter the element's place in the tensor, it would depend on how long the batch is padded
//! and on which rows a process holds, and two processes at batch 4 would draw other masks than
//! one at batch 8. The counter is instead built from the row's place in the whole step's batch
//! ([`DropoutRows`]), the token's place in its sequence (below `max_position_embeddings`), and
//! the element's place in its hidden vector or attention row.

use std::sync::Arc;

use crate::input::{DropoutRows, TokenLayout};

/// The counters of one dropout call: the tensor is read as rows of `row_len` elements, and
/// element `e` gets `bases[e / row_len] + e % row_len`.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(feature = "flex"),
    allow(
        dead_code,
        reason = "only flex's dropout reads the keys; the others draw in order"
    )
)]
pub(crate) struct ElementKeys {
    pub(crate) row_len: usize,
    pub(crate) bases: Arc<[u64]>,
}

impl ElementKeys {
    /// Each element keyed by its place in the tensor, for a tensor of `len` elements.
    pub(crate) fn flat(len: usize) -> Self {
        Self {
            row_len: len.max(1),
            bases: Arc::from([0u64]),
        }
    }

    /// The elements of `[batch, width]` rows (the pooled output), by global row.
    pub(crate) fn rows(global_rows: DropoutRows, batch: usize, width: usize) -> Self {
        let width64 = width as u64;
        Self {
            row_len: width.max(1),
            bases: (0..batch)
                .map(|row| global_rows.position(row) as u64 * width64)
                .collect(),
        }
    }

    /// The number of elements these keys describe.
    #[cfg_attr(
        not(feature = "flex"),
        allow(
            dead_code,
            reason = "only flex's dropout reads the keys; the others draw in order"
        )
    )]
    pub(crate) fn len(&self) -> usize {
        self.row_len * self.bases.len()
    }
}

/// Where a batch's rows and real tokens sit, for keying dropout.
#[derive(Debug, Clone)]
pub(crate) struct DropoutPositions {
    global_rows: DropoutRows,
    /// `(row, position)` of each real token, in the packed order.
    tokens: Arc<[(u32, u32)]>,
    batch: usize,
    max_positions: u64,
}

impl DropoutPositions {
    /// The positions of a batch laid out as `layout`, whose rows sit at `global_rows` in the
    /// step's batch, for a model of `max_positions` positions.
    pub(crate) fn new(
        global_rows: DropoutRows,
        layout: &TokenLayout,
        max_positions: usize,
    ) -> Self {
        Self {
            global_rows,
            tokens: layout.token_positions(),
            batch: layout.dims()[0],
            max_positions: max_positions as u64,
        }
    }

    fn row(&self, row: usize) -> u64 {
        self.global_rows.position(row) as u64
    }

    /// The packed tokens' states, `[tokens, width]`: keyed by global row, position and
    /// feature.
    pub(crate) fn tokens(&self, width: usize) -> ElementKeys {
        let width64 = width as u64;
        ElementKeys {
            row_len: width.max(1),
            bases: self
                .tokens
                .iter()
                .map(|&(row, position)| {
                    (self.row(row as usize) * self.max_positions + u64::from(position)) * width64
                })
                .collect(),
        }
    }

    /// Attention probabilities, `[batch, heads, seq, seq]`: keyed by global row, head, query
    /// and key position, whatever `seq` the batch is padded to.
    pub(crate) fn attention(&self, heads: usize, seq: usize) -> ElementKeys {
        let positions = self.max_positions;
        let mut bases = Vec::with_capacity(self.batch * heads * seq);
        for row in 0..self.batch {
            for head in 0..heads as u64 {
                let head_base = (self.row(row) * heads as u64 + head) * positions;
                bases.extend((0..seq as u64).map(|query| (head_base + query) * positions));
            }
        }
        ElementKeys {
            row_len: seq.max(1),
            bases: bases.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(mask: Vec<i64>, shape: [usize; 2]) -> TokenLayout {
        TokenLayout::from_mask_values(&mask, shape).expect("a mask of that shape")
    }

    #[test]
    fn a_token_is_keyed_alike_alone_or_in_a_bigger_padded_batch() {
        // One process: rows 0 and 1 of a batch padded to 4.
        let whole = DropoutPositions::new(
            DropoutRows::WHOLE_BATCH,
            &layout(vec![1, 1, 1, 0, 1, 1, 0, 0], [2, 4]),
            16,
        );
        // Rank 1 of 2: its one row (global row 1), padded to 2 only.
        let shard = DropoutPositions::new(
            DropoutRows {
                offset: 1,
                stride: 2,
            },
            &layout(vec![1, 1], [1, 2]),
            16,
        );
        let (whole, shard) = (whole.tokens(8), shard.tokens(8));
        assert_eq!(whole.bases[3..], shard.bases[..]);
        assert_eq!(whole.len(), 5 * 8);
    }

    #[test]
    fn attention_keys_do_not_depend_on_the_padded_length() {
        let positions = |seq| {
            DropoutPositions::new(
                DropoutRows::WHOLE_BATCH,
                &layout(vec![1; seq], [1, seq]),
                16,
            )
            .attention(2, seq)
        };
        let (short, long) = (positions(3), positions(5));
        assert_eq!(short.len(), 2 * 3 * 3);
        // Head 1, query 2 starts at the same counter whatever the padding.
        assert_eq!(short.bases[3 + 2], long.bases[5 + 2]);
        let mut all: Vec<u64> = long
            .bases
            .iter()
            .flat_map(|&base| (0..5).map(move |k| base + k))
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), long.len(), "no two elements share a counter");
    }
}
