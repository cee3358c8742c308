//! The batch's real tokens packed together, without padding.
//!
//! Everything in a BERT layer except the attention scores works token by token: the linear
//! layers, LayerNorm, GELU, dropout and the residual additions. The encoder therefore runs
//! them on the real tokens only, `[tokens, hidden]`, and only queries, keys and values are
//! scattered into the padded `[batch, seq]` layout for the scores, the attended context being
//! gathered back. The values on real tokens are those of the padded computation, because
//! padded keys are masked out and padded queries feed nothing; on MRPC's batches, padded to
//! their longest pair, this skips about a quarter of the work. transformers' BetterTransformer
//! fast path removes padding the same way.

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::BertError;

/// Where a batch's real tokens sit in its padded `[batch, seq]` layout.
#[derive(Debug, Clone)]
pub struct TokenLayout {
    batch: usize,
    seq: usize,
    /// Flat `batch * seq` positions of the real tokens, in order; `None` when the batch has
    /// no padding (or no token at all), so that packing is a reshape.
    tokens: Option<Tensor<1, Int>>,
    /// `(row, position)` of each packed row, on the host.
    host: Arc<[(u32, u32)]>,
}

impl TokenLayout {
    /// The layout of an attention mask (`[batch, seq]`, 1 on tokens, 0 on padding), read
    /// back to the host once per batch.
    pub fn from_attention_mask(attention_mask: &Tensor<2, Int>) -> Result<Self, BertError> {
        let [batch, seq] = attention_mask.dims();
        let data = attention_mask
            .try_to_data()
            .map_err(|source| BertError::DeviceRead {
                what: "the attention mask",
                source,
            })?;
        let positions: Vec<i64> = data
            .iter::<i64>()
            .enumerate()
            .filter(|&(_, value)| value != 0)
            .map(|(position, _)| position as i64)
            .collect();
        let num_tokens = positions.len();
        let packed = num_tokens != 0 && num_tokens != batch * seq;
        let host = if packed {
            positions
                .iter()
                .map(|&flat| ((flat as usize / seq) as u32, (flat as usize % seq) as u32))
                .collect()
        } else {
            (0..batch * seq)
                .map(|flat| ((flat / seq) as u32, (flat % seq) as u32))
                .collect()
        };
        let tokens = packed.then(|| {
            Tensor::<1, Int>::from_data(
                TensorData::new(positions, [num_tokens]),
                &attention_mask.device(),
            )
        });
        Ok(Self {
            batch,
            seq,
            tokens,
            host,
        })
    }

    /// Rows of the padded layout.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// `(row, position in the row)` of each packed row, in order.
    pub fn token_positions(&self) -> Arc<[(u32, u32)]> {
        self.host.clone()
    }

    /// Rows of the packed layout: the real tokens, or every position when nothing is packed.
    pub fn num_rows(&self) -> usize {
        self.tokens
            .as_ref()
            .map_or(self.batch * self.seq, |tokens| tokens.dims()[0])
    }

    /// `[batch, seq, width]` to the real tokens' rows, `[rows, width]`.
    pub fn pack(&self, padded: Tensor<3>) -> Tensor<2> {
        let [batch, seq, width] = padded.dims();
        let flat = padded.reshape([batch * seq, width]);
        match &self.tokens {
            Some(tokens) => flat.select(0, tokens.clone()),
            None => flat,
        }
    }

    /// `[rows, width]` back to `[batch, seq, width]`, zero on padding.
    pub fn unpack(&self, packed: Tensor<2>) -> Tensor<3> {
        let [_, width] = packed.dims();
        let (batch, seq) = (self.batch, self.seq);
        match &self.tokens {
            Some(tokens) => {
                let zeros =
                    Tensor::<2>::zeros([batch * seq, width], (&packed.device(), packed.dtype()));
                // An addition onto zeros, not an assignment: burn differentiates the former.
                zeros
                    .select_assign(
                        0,
                        tokens.clone(),
                        packed,
                        burn::tensor::IndexingUpdateOp::Add,
                    )
                    .reshape([batch, seq, width])
            }
            None => packed.reshape([batch, seq, width]),
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn pack_keeps_real_tokens_in_order_and_unpack_zeroes_padding() {
        let device = device();
        let mask = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 1, 1, 0, 1, 1, 0, 0], [2, 4]),
            &device,
        );
        let layout = TokenLayout::from_attention_mask(&mask).expect("a readable mask");
        assert_eq!(layout.num_rows(), 5);
        let values: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let padded = Tensor::<3>::from_data(TensorData::new(values, [2, 4, 2]), &device);
        let packed = layout.pack(padded);
        assert_eq!(packed.dims(), [5, 2]);
        let rows: Vec<f32> = packed.to_data().iter::<f32>().collect();
        assert_eq!(rows, [0., 1., 2., 3., 4., 5., 8., 9., 10., 11.]);
        let back: Vec<f32> = layout.unpack(packed).to_data().iter::<f32>().collect();
        assert_eq!(
            back,
            [
                0., 1., 2., 3., 4., 5., 0., 0., 8., 9., 10., 11., 0., 0., 0., 0.
            ]
        );
    }

    #[test]
    fn no_padding_or_no_tokens_packs_nothing() {
        let device = device();
        for (mask, rows) in [(vec![1i64; 6], 6), (vec![0i64; 6], 6)] {
            let mask = Tensor::<2, Int>::from_data(TensorData::new(mask, [2, 3]), &device);
            let layout = TokenLayout::from_attention_mask(&mask).expect("a readable mask");
            assert!(layout.tokens.is_none());
            assert_eq!(layout.num_rows(), rows);
        }
    }
}
