//! `BertEmbeddings`: word, position and token-type embeddings, summed, then LayerNorm and
//! dropout. RoBERTa's are the same with positions counted past the padding index, and
//! DistilBERT's have no token types.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm};
use burn::tensor::{Int, Tensor};

use crate::config::BertConfig;
use crate::init::Init;
use crate::ops::{dropout, layer_norm};
use crate::positions::ElementKeys;

/// `bert.embeddings`.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `word_embeddings`, `[vocab_size, hidden]`.
    pub word_embeddings: Embedding,
    /// `position_embeddings`, `[max_position_embeddings, hidden]`.
    pub position_embeddings: Embedding,
    /// `token_type_embeddings`, `[type_vocab_size, hidden]`; DistilBERT has none.
    pub token_type_embeddings: Option<Embedding>,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Dropout with `hidden_dropout_prob`.
    pub dropout: Dropout,
    #[module(skip)]
    layer_norm_eps: f64,
    /// The padding id from which RoBERTa counts positions; `None` counts from row 0.
    #[module(skip)]
    padding_idx: Option<u32>,
}

impl BertEmbeddings {
    pub(crate) fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        let h = config.hidden_size;
        let padding_idx = (config.architecture.position_offset(config.pad_token_id) > 0)
            .then_some(config.pad_token_id);
        Self {
            word_embeddings: init.embedding(
                &format!("{path}.word_embeddings"),
                config.vocab_size,
                h,
                Some(config.pad_token_id as usize),
            ),
            position_embeddings: if config.sinusoidal_pos_embds() {
                init.sinusoidal_embedding(config.max_position_embeddings, h)
            } else {
                // RoBERTa's table, like its word embeddings, zeroes the padding row.
                init.embedding(
                    &format!("{path}.position_embeddings"),
                    config.max_position_embeddings,
                    h,
                    padding_idx.map(|idx| idx as usize),
                )
            },
            token_type_embeddings: config.architecture.has_token_types().then(|| {
                init.embedding(
                    &format!("{path}.token_type_embeddings"),
                    config.type_vocab_size,
                    h,
                    None,
                )
            }),
            layer_norm: init.layer_norm(h, config.layer_norm_eps),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
            padding_idx,
        }
    }

    /// Ids and token types (zeros when `None`, as transformers fills them) to embeddings.
    /// Positions are 0..seq, as transformers uses for absolute position embeddings, or
    /// RoBERTa's, counted from `padding_idx + 1` over the tokens that are not padding.
    ///
    /// # Shapes
    /// - `input_ids`, `token_type_ids`: `[batch, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let normalized = self.forward_before_dropout(input_ids, token_type_ids);
        let len = normalized.shape().num_elements();
        dropout(&self.dropout, normalized, || ElementKeys::flat(len))
    }

    /// [`BertEmbeddings::forward`] up to its dropout, which `BertModel` applies to the real
    /// tokens only, keyed by their positions.
    pub(crate) fn forward_before_dropout(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let [_, seq_len] = input_ids.dims();
        let positions = match self.padding_idx {
            Some(padding_idx) => self.padding_offset_positions(&input_ids, padding_idx),
            // Rows 0..seq of the table, broadcast over the batch: no index tensor needed.
            None => self
                .position_embeddings
                .weight
                .val()
                .narrow(0, 0, seq_len)
                .unsqueeze_dim::<3>(0),
        };
        let mut embeddings = self.word_embeddings.forward(input_ids.clone()) + positions;
        if let Some(table) = &self.token_type_embeddings {
            embeddings = embeddings
                + match token_type_ids {
                    Some(types) => table.forward(types),
                    // Type 0 everywhere: its one row, broadcast.
                    None => table.weight.val().narrow(0, 0, 1).unsqueeze_dim::<3>(0),
                };
        }
        layer_norm(&self.layer_norm, self.layer_norm_eps, embeddings)
    }

    /// RoBERTa's `create_position_ids_from_input_ids`: a token that is not padding sits at
    /// `padding_idx` plus its count among the row's non-padding tokens; padding at
    /// `padding_idx`.
    fn padding_offset_positions(&self, input_ids: &Tensor<2, Int>, padding_idx: u32) -> Tensor<3> {
        let padding_idx = i64::from(padding_idx);
        let tokens = input_ids.clone().not_equal_elem(padding_idx).int();
        let positions = tokens.clone().cumsum(1) * tokens + padding_idx;
        self.position_embeddings.forward(positions)
    }
}
