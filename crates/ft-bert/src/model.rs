//! `BertModel`: embeddings, encoder and pooler; RoBERTa's and DistilBERT's encoders too,
//! which compute the same under other names (see [`crate::Architecture`]).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;

use crate::attention::AttentionMask;
use crate::config::BertConfig;
use crate::embeddings::BertEmbeddings;
use crate::encoder::BertEncoder;
use crate::error::BertError;
use crate::init::Init;
use crate::input::ModelInput;
use crate::ops::dropout;

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

    /// The first token's state, through `dense` and `tanh`.
    ///
    /// # Shapes
    /// - `hidden`: `[batch, seq, hidden]`
    /// - output: `[batch, hidden]`
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

    /// Runs the encoder on `input` (its labels are not read); dropout is keyed by
    /// `input.dropout_rows`.
    ///
    /// # Shapes
    /// - `input.input_ids`, `input.token_type_ids`, `input.attention_mask`: `[batch, seq]`
    /// - `last_hidden_state`: `[batch, seq, hidden]`; `pooler_output`: `[batch, hidden]`
    pub fn forward(&self, input: &ModelInput) -> Result<BertModelOutput, BertError> {
        let (packed, mask) = self.embed(input)?;
        let packed = self.encoder.forward(packed, &mask);
        Ok(self.pool(packed, &mask))
    }

    /// The checked input's embeddings on the packed tokens, `[tokens, hidden]`, after
    /// dropout, and the mask every layer takes.
    pub(crate) fn embed(
        &self,
        input: &ModelInput,
    ) -> Result<(Tensor<2>, AttentionMask), BertError> {
        input.check_shapes()?;
        let [batch, seq] = input.input_ids.dims();
        if seq > self.max_positions {
            return Err(BertError::SequenceTooLong {
                seq,
                max: self.max_positions,
            });
        }
        if batch == 0 || seq == 0 {
            return Err(BertError::EmptyBatch { batch, seq });
        }
        let hidden = self
            .embeddings
            .forward_before_dropout(input.input_ids.clone(), input.token_type_ids.clone());
        let mask = AttentionMask::new(input, hidden.dtype(), self.max_positions);
        let [_, _, width] = hidden.dims();
        let packed = dropout(&self.embeddings.dropout, mask.packing.pack(hidden), || {
            mask.positions.tokens(width)
        });
        Ok((packed, mask))
    }

    /// The last layer's packed tokens back in the padded layout, and the pooler on them.
    pub(crate) fn pool(&self, packed: Tensor<2>, mask: &AttentionMask) -> BertModelOutput {
        let last_hidden_state = mask.packing.unpack(packed);
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
