//! `BertModel`: embeddings, encoder and pooler; RoBERTa's and DistilBERT's encoders too,
//! which compute the same under other names (see [`crate::Architecture`]).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{DType, Int, Tensor};

use ft_collate::GlobalRows;

use crate::attention::AttentionMask;
use crate::config::BertConfig;
use crate::embeddings::BertEmbeddings;
use crate::encoder::BertEncoder;
use crate::error::BertError;
use crate::init::Init;
use crate::ops::dropout;
use crate::packing::TokenLayout;
use crate::positions::DropoutPositions;

/// `pooler`: `tanh(dense(hidden[:, 0]))`, the `[CLS]` summary.
#[derive(Module, Debug)]
pub struct BertPooler {
    /// `dense`.
    pub dense: Linear,
}

impl BertPooler {
    fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        let h = config.hidden_size;
        Self {
            dense: init.linear(&format!("{path}.dense"), h, h),
        }
    }

    /// `[batch, seq, hidden]` to `[batch, hidden]`.
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        self.dense.forward(first_token(hidden)).tanh()
    }
}

/// `bert`: the encoder without a task head.
#[derive(Module, Debug)]
pub struct BertModel {
    /// `embeddings`.
    pub embeddings: BertEmbeddings,
    /// `encoder`.
    pub encoder: BertEncoder,
    /// `pooler`; `None` where the classifier has its own head on the first token, as
    /// transformers' `add_pooling_layer=False`.
    pub pooler: Option<BertPooler>,
    /// The longest input: the position table's rows past RoBERTa's offset.
    max_positions: usize,
}

/// What [`BertModel::forward`] returns.
#[derive(Debug, Clone)]
pub struct BertModelOutput {
    /// `[batch, seq, hidden]`, the last layer's states; zero on padding, where the encoder
    /// computes nothing (transformers leaves values there that nothing reads).
    pub last_hidden_state: Tensor<3>,
    /// `[batch, hidden]`, the pooler's output, where the model has a pooler.
    pub pooler_output: Option<Tensor<2>>,
}

impl BertModel {
    pub(crate) fn new(
        config: &BertConfig,
        init: &Init,
        path: &str,
        add_pooling_layer: bool,
    ) -> Self {
        Self {
            embeddings: BertEmbeddings::new(config, init, &format!("{path}.embeddings")),
            encoder: BertEncoder::new(config, init, &format!("{path}.encoder")),
            pooler: add_pooling_layer
                .then(|| BertPooler::new(config, init, &format!("{path}.pooler"))),
            max_positions: config.max_sequence_length(),
        }
    }

    /// The longest input the position embeddings cover.
    pub fn max_sequence_length(&self) -> usize {
        self.max_positions
    }

    /// Runs the encoder on `[batch, seq]` ids, token types (zeros when `None`) and attention
    /// mask (1 on tokens, 0 on padding).
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Tensor<2, Int>,
    ) -> Result<BertModelOutput, BertError> {
        self.forward_rows(input_ids, token_type_ids, attention_mask, GlobalRows::LOCAL)
    }

    /// [`BertModel::forward`] for rows that sit at `rows` in a step's batch split across
    /// processes, which keys their dropout.
    pub(crate) fn forward_rows(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Tensor<2, Int>,
        rows: GlobalRows,
    ) -> Result<BertModelOutput, BertError> {
        let (packed, mask) = self.embed(input_ids, token_type_ids, attention_mask, rows)?;
        let packed = self.encoder.forward(packed, &mask);
        Ok(self.pool(packed, &mask))
    }

    /// The checked inputs' embeddings on the packed tokens, `[tokens, hidden]`, after dropout,
    /// and the mask every layer takes.
    pub(crate) fn embed(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Tensor<2, Int>,
        rows: GlobalRows,
    ) -> Result<(Tensor<2>, AttentionMask), BertError> {
        let [batch, seq] = input_ids.dims();
        let types_shape = token_type_ids.as_ref().map(Tensor::dims);
        if types_shape.is_some_and(|shape| shape != [batch, seq])
            || attention_mask.dims() != [batch, seq]
        {
            return Err(BertError::Input(format!(
                "input_ids {:?}, token_type_ids {:?} and attention_mask {:?} must have one shape",
                input_ids.dims(),
                types_shape,
                attention_mask.dims()
            )));
        }
        if seq > self.max_positions {
            return Err(BertError::Input(format!(
                "sequence length {seq} exceeds the longest input the position embeddings \
                 cover, {}",
                self.max_positions
            )));
        }
        if batch == 0 || seq == 0 {
            return Err(BertError::Input("an empty batch".into()));
        }
        let hidden = self
            .embeddings
            .forward_before_dropout(input_ids, token_type_ids);
        let mask = attention_mask_for(attention_mask, hidden.dtype(), rows, self.max_positions)?;
        let [_, _, width] = hidden.dims();
        let packed = dropout(&self.embeddings.dropout, mask.layout.pack(hidden), || {
            mask.positions.tokens(width)
        });
        Ok((packed, mask))
    }

    /// The last layer's packed tokens back in the padded layout, and the pooler on them.
    pub(crate) fn pool(&self, packed: Tensor<2>, mask: &AttentionMask) -> BertModelOutput {
        let last_hidden_state = mask.layout.unpack(packed);
        let pooler_output = self
            .pooler
            .as_ref()
            .map(|pooler| pooler.forward(last_hidden_state.clone()));
        BertModelOutput {
            last_hidden_state,
            pooler_output,
        }
    }
}

/// `hidden[:, 0]`: each row's first token (`[CLS]`, `<s>`), `[batch, hidden]`.
pub(crate) fn first_token(hidden: Tensor<3>) -> Tensor<2> {
    let [batch, _, width] = hidden.dims();
    hidden.slice([0..batch, 0..1]).reshape([batch, width])
}

/// transformers' extended attention mask: padding keys get the dtype's lowest value.
fn attention_mask_for(
    attention_mask: Tensor<2, Int>,
    dtype: DType,
    rows: GlobalRows,
    max_positions: usize,
) -> Result<AttentionMask, BertError> {
    let layout = TokenLayout::from_attention_mask(&attention_mask)?;
    let positions = DropoutPositions::new(rows, &layout, max_positions);
    let [batch, seq] = attention_mask.dims();
    let device = attention_mask.device();
    let padding = attention_mask.equal_elem(0).reshape([batch, 1, 1, seq]);
    let lowest = match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.389_531_4e38,
        _ => f32::MIN,
    };
    let bias =
        Tensor::<4>::zeros([batch, 1, 1, seq], (&device, dtype)).mask_fill(padding.clone(), lowest);
    Ok(AttentionMask {
        padding,
        bias,
        layout,
        positions,
    })
}
