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

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::input::TokenLayout;

/// A batch's [`TokenLayout`] with the real tokens' flat positions on the device, for
/// gathering them out of the padded layout and scattering them back.
#[derive(Debug, Clone)]
pub(crate) struct Packing {
    layout: TokenLayout,
    /// Flat `batch * seq` positions of the real tokens, in order; `None` when nothing is
    /// packed, so that packing is a reshape.
    tokens: Option<Tensor<1, Int>>,
}

impl Packing {
    /// Uploads `layout`'s token positions to `device` (nothing is read back).
    pub(crate) fn new(layout: &TokenLayout, device: &Device) -> Self {
        let [_, seq] = layout.dims();
        let tokens = layout.is_packed().then(|| {
            let flat: Vec<i64> = layout
                .token_positions()
                .iter()
                .map(|&(row, position)| (row as usize * seq + position as usize) as i64)
                .collect();
            let n = flat.len();
            Tensor::<1, Int>::from_data(TensorData::new(flat, [n]), device)
        });
        Self {
            layout: layout.clone(),
            tokens,
        }
    }

    /// `[batch, seq, width]` to the real tokens' rows, `[rows, width]`.
    pub(crate) fn pack(&self, padded: Tensor<3>) -> Tensor<2> {
        let [batch, seq, width] = padded.dims();
        let flat = padded.reshape([batch * seq, width]);
        match &self.tokens {
            Some(tokens) => flat.select(0, tokens.clone()),
            None => flat,
        }
    }

    /// `[rows, width]` back to `[batch, seq, width]`, zero on padding.
    pub(crate) fn unpack(&self, packed: Tensor<2>) -> Tensor<3> {
        let [_, width] = packed.dims();
        let [batch, seq] = self.layout.dims();
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

    #[test]
    fn pack_keeps_real_tokens_in_order_and_unpack_zeroes_padding() {
        let device = Device::flex();
        let layout = TokenLayout::from_row_lengths(4, &[3, 2]).expect("rows fit");
        let packing = Packing::new(&layout, &device);
        assert_eq!(packing.layout.num_rows(), 5);
        let values: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let padded = Tensor::<3>::from_data(TensorData::new(values, [2, 4, 2]), &device);
        let packed = packing.pack(padded);
        assert_eq!(packed.dims(), [5, 2]);
        let rows: Vec<f32> = packed.to_data().iter::<f32>().collect();
        assert_eq!(rows, [0., 1., 2., 3., 4., 5., 8., 9., 10., 11.]);
        let back: Vec<f32> = packing.unpack(packed).to_data().iter::<f32>().collect();
        assert_eq!(
            back,
            [
                0., 1., 2., 3., 4., 5., 0., 0., 8., 9., 10., 11., 0., 0., 0., 0.
            ]
        );
    }

    #[test]
    fn an_unpadded_batch_packs_by_reshaping() {
        let layout = TokenLayout::from_row_lengths(3, &[3, 3]).expect("rows fit");
        let packing = Packing::new(&layout, &Device::flex());
        assert!(packing.tokens.is_none());
        assert_eq!(packing.layout.num_rows(), 6);
    }
}
