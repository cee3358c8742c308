//! `BertEmbeddings`: word, position and token-type embeddings, summed, then LayerNorm and
//! dropout.

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
    /// `token_type_embeddings`, `[type_vocab_size, hidden]`.
    pub token_type_embeddings: Embedding,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Dropout with `hidden_dropout_prob`.
    pub dropout: Dropout,
    #[module(skip)]
    layer_norm_eps: f64,
}

impl BertEmbeddings {
    pub(crate) fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        let h = config.hidden_size;
        Self {
            word_embeddings: init.embedding(
                &format!("{path}.word_embeddings"),
                config.vocab_size,
                h,
                Some(config.pad_token_id as usize),
            ),
            position_embeddings: init.embedding(
                &format!("{path}.position_embeddings"),
                config.max_position_embeddings,
                h,
                None,
            ),
            token_type_embeddings: init.embedding(
                &format!("{path}.token_type_embeddings"),
                config.type_vocab_size,
                h,
                None,
            ),
            layer_norm: init.layer_norm(h, config.layer_norm_eps),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// `[batch, seq]` ids and token types to `[batch, seq, hidden]`. Positions are 0..seq,
    /// as transformers uses for absolute position embeddings.
    pub fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let normalized = self.forward_before_dropout(input_ids, token_type_ids);
        let len = normalized.shape().num_elements();
        dropout(&self.dropout, normalized, || ElementKeys::flat(len))
    }

    /// [`BertEmbeddings::forward`] up to its dropout, which `BertModel` applies to the real
    /// tokens only, keyed by their positions.
    pub(crate) fn forward_before_dropout(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
    ) -> Tensor<3> {
        let [_, seq_len] = input_ids.dims();
        let words = self.word_embeddings.forward(input_ids);
        let types = self.token_type_embeddings.forward(token_type_ids);
        // Rows 0..seq of the table, broadcast over the batch: no index tensor needed.
        let positions = self
            .position_embeddings
            .weight
            .val()
            .narrow(0, 0, seq_len)
            .unsqueeze_dim::<3>(0);
        let embeddings = words + types + positions;
        layer_norm(&self.layer_norm, self.layer_norm_eps, embeddings)
    }
}
