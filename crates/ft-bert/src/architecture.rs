//! The BERT-family architectures this crate builds, and everything that differs between them
//! besides their heads: the `model_type`, the class name, the config keys and the checkpoint
//! names. All three run the same encoder ([`crate::BertModel`]); a checkpoint's names are
//! mapped one to one onto it by the tables here, as transformers' modules differ only in
//! their names.
//!
//! A fourth architecture that computes what BERT's encoder computes is a variant here, with
//! its tables, and a model struct beside [`crate::RobertaForSequenceClassification`].

use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use burn::store::KeyRemapper;
use regex::Regex;
use serde::Deserialize;

use crate::error::BertError;

/// An architecture, as `config.json`'s `model_type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Architecture {
    /// `"bert"`: BERT, with token types and a pooler.
    #[default]
    Bert,
    /// `"distilbert"`: DistilBERT, without token types or pooler, with a `pre_classifier`.
    DistilBert,
    /// `"roberta"`: RoBERTa, BERT's encoder with positions offset past the padding index and
    /// a two-layer head on `<s>`.
    Roberta,
}

/// The `model_type`s of `config.json` this crate builds a model for.
pub const SUPPORTED_MODEL_TYPES: [&str; 3] = ["bert", "distilbert", "roberta"];

/// The one key of `config.json` that says which architecture the rest describes. A config
/// without it (written before transformers recorded it) is taken as BERT's.
#[derive(Deserialize)]
struct ModelType {
    #[serde(default)]
    model_type: Option<String>,
}

impl Architecture {
    /// Every architecture, in the order of [`SUPPORTED_MODEL_TYPES`].
    pub const ALL: [Architecture; 3] = [
        Architecture::Bert,
        Architecture::DistilBert,
        Architecture::Roberta,
    ];

    /// `config.json`'s `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::DistilBert => "distilbert",
            Architecture::Roberta => "roberta",
        }
    }

    /// The sequence classifier's class name, which transformers writes in `architectures`
    /// and prints in its load report.
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Bert => "BertForSequenceClassification",
            Architecture::DistilBert => "DistilBertForSequenceClassification",
            Architecture::Roberta => "RobertaForSequenceClassification",
        }
    }

    /// The encoder's attribute in the classifier (`base_model_prefix`): the prefix of its
    /// checkpoint names, which a bare `...Model` checkpoint lacks.
    pub fn base_model_prefix(self) -> &'static str {
        self.model_type()
    }

    /// The head's output weight, whose rows are the checkpoint's `num_labels`.
    pub(crate) fn head_output_weight(self) -> &'static str {
        match self {
            Architecture::Bert | Architecture::DistilBert => "classifier.weight",
            Architecture::Roberta => "classifier.out_proj.weight",
        }
    }

    /// The architecture of a `config.json`'s contents; `path` only names the file in errors.
    pub fn from_config_json(path: &Path, bytes: &[u8]) -> Result<Self, BertError> {
        let ModelType { model_type } =
            serde_json::from_slice(bytes).map_err(|source| BertError::Config {
                path: path.to_path_buf(),
                source,
            })?;
        let Some(model_type) = model_type else {
            return Ok(Architecture::Bert);
        };
        Self::ALL
            .into_iter()
            .find(|arch| arch.model_type() == model_type)
            .ok_or_else(|| BertError::UnsupportedModelType {
                path: path.to_path_buf(),
                model_type,
            })
    }

    /// Config keys that name a [`crate::BertConfig`] field otherwise: (BERT's key, this
    /// architecture's key).
    pub(crate) fn config_keys(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Architecture::Bert | Architecture::Roberta => &[],
            Architecture::DistilBert => &[
                ("hidden_size", "dim"),
                ("num_hidden_layers", "n_layers"),
                ("num_attention_heads", "n_heads"),
                ("intermediate_size", "hidden_dim"),
                ("hidden_act", "activation"),
                ("hidden_dropout_prob", "dropout"),
                ("attention_probs_dropout_prob", "attention_dropout"),
                ("classifier_dropout", "seq_classif_dropout"),
            ],
        }
    }

    /// transformers' defaults for this architecture's keys where they differ from BERT's,
    /// applied when the file lacks them (in this architecture's spelling).
    pub(crate) fn config_defaults(self) -> &'static [(&'static str, f64)] {
        match self {
            Architecture::Bert | Architecture::Roberta => &[],
            Architecture::DistilBert => &[("seq_classif_dropout", 0.2)],
        }
    }

    /// [`crate::BertConfig`] fields this architecture's config does not have, left out when
    /// it is written.
    pub(crate) fn absent_config_keys(self) -> &'static [&'static str] {
        match self {
            Architecture::Bert | Architecture::Roberta => &[],
            Architecture::DistilBert => &["type_vocab_size", "layer_norm_eps"],
        }
    }

    /// Whether the embeddings add token-type embeddings.
    pub fn has_token_types(self) -> bool {
        self != Architecture::DistilBert
    }

    /// Rows of the position table before the first token's: RoBERTa numbers positions from
    /// `padding_idx + 1`, keeping the rows up to the padding index unused.
    pub(crate) fn position_offset(self, pad_token_id: u32) -> usize {
        match self {
            Architecture::Roberta => pad_token_id as usize + 1,
            Architecture::Bert | Architecture::DistilBert => 0,
        }
    }

    /// The one name table: each module path as the checkpoint spells it, and as this crate
    /// does. Loading and saving both derive their regexes from it ([`NameMaps`]), so the two
    /// directions cannot drift apart.
    fn renames(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Architecture::Bert | Architecture::Roberta => &[
                ("LayerNorm", "layer_norm"),
                ("attention.self", "attention.self_attention"),
            ],
            Architecture::DistilBert => &[
                ("LayerNorm", "layer_norm"),
                ("distilbert.transformer", "distilbert.encoder"),
                ("attention.q_lin", "attention.self_attention.query"),
                ("attention.k_lin", "attention.self_attention.key"),
                ("attention.v_lin", "attention.self_attention.value"),
                ("attention.out_lin", "attention.output.dense"),
                ("sa_layer_norm", "attention.output.layer_norm"),
                ("ffn.lin1", "intermediate.dense"),
                ("ffn.lin2", "output.dense"),
                ("output_layer_norm", "output.layer_norm"),
            ],
        }
    }

    /// This architecture's name maps, built once per process.
    fn name_maps(self) -> &'static NameMaps {
        static BERT: LazyLock<NameMaps> = LazyLock::new(|| NameMaps::new(Architecture::Bert));
        static DISTILBERT: LazyLock<NameMaps> =
            LazyLock::new(|| NameMaps::new(Architecture::DistilBert));
        static ROBERTA: LazyLock<NameMaps> = LazyLock::new(|| NameMaps::new(Architecture::Roberta));
        match self {
            Architecture::Bert => &BERT,
            Architecture::DistilBert => &DISTILBERT,
            Architecture::Roberta => &ROBERTA,
        }
    }

    /// Checkpoint names to this crate's parameter paths, as burn-store applies them; a bare
    /// checkpoint's (not `prefixed`) first move under [`Architecture::base_model_prefix`].
    pub(crate) fn load_remapper(self, prefixed: bool) -> KeyRemapper {
        let maps = self.name_maps();
        match prefixed {
            true => maps.load.clone(),
            false => maps.load_bare.clone(),
        }
    }

    /// This crate's parameter paths to the checkpoint's names: the inverse of
    /// [`Architecture::load_remapper`] for a prefixed checkpoint.
    pub(crate) fn save_remapper(self) -> KeyRemapper {
        self.name_maps().save.clone()
    }

    /// A parameter path as the checkpoint spells it.
    pub(crate) fn to_checkpoint_name(self, path: &str) -> String {
        rename(&self.name_maps().save, path)
    }

    /// The prefix remap a bare `...Model` checkpoint needs: its top-level modules moved under
    /// [`Architecture::base_model_prefix`].
    pub(crate) fn bare_remap(self) -> (&'static str, &'static str) {
        match self {
            Architecture::Bert => (r"^(embeddings|encoder|pooler)\.", "bert.$1."),
            Architecture::DistilBert => (r"^(embeddings|transformer)\.", "distilbert.$1."),
            Architecture::Roberta => (r"^(embeddings|encoder|pooler)\.", "roberta.$1."),
        }
    }
}

/// An architecture's checkpoint names both ways, as regex remaps in the order they apply.
///
/// Each module path is replaced whole: it must start the name or follow a `.`, and end at a
/// `.`. The more specific (longer) path goes first, so that DistilBERT's
/// `attention.output.layer_norm` becomes `sa_layer_norm` before the layer's own
/// `output.layer_norm` could take its tail, and what one rename writes is never the start of
/// another's match.
struct NameMaps {
    /// A prefixed checkpoint's names to ours.
    load: KeyRemapper,
    /// A bare checkpoint's names to ours: the base model's prefix, then `load`.
    load_bare: KeyRemapper,
    /// Ours to the checkpoint's.
    save: KeyRemapper,
}

impl NameMaps {
    fn new(architecture: Architecture) -> Self {
        let renames = architecture.renames();
        let load = compile(renames.iter().map(|&(theirs, ours)| (theirs, ours)));
        let save = compile(renames.iter().map(|&(theirs, ours)| (ours, theirs)));
        let (bare, prefixed) = architecture.bare_remap();
        let mut load_bare = load.clone();
        // A fixed pattern: the table's tests load bare checkpoints of every architecture.
        if let Ok(bare) = Regex::new(bare) {
            load_bare.insert(0, (bare, prefixed.to_string()));
        }
        Self {
            load: KeyRemapper::from_compiled_patterns(load),
            load_bare: KeyRemapper::from_compiled_patterns(load_bare),
            save: KeyRemapper::from_compiled_patterns(save),
        }
    }
}

/// Module renames as whole-path regexes, the longest first.
fn compile<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(Regex, String)> {
    let mut pairs: Vec<_> = pairs.collect();
    pairs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    pairs
        .into_iter()
        // Escaped literals between fixed anchors; the table's tests count every one.
        .filter_map(|(from, to)| {
            let pattern = format!(r"(^|\.){}\.", regex::escape(from));
            let regex = Regex::new(&pattern).ok()?;
            Some((regex, format!("${{1}}{to}.")))
        })
        .collect()
}

/// `name` through `remapper`'s patterns, in order, as burn-store renames a tensor.
fn rename(remapper: &KeyRemapper, name: &str) -> String {
    remapper
        .patterns
        .iter()
        .fold(name.to_string(), |name, (from, to)| {
            from.replace_all(&name, to.as_str()).into_owned()
        })
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.model_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_in_both_directions() {
        for arch in Architecture::ALL {
            let maps = arch.name_maps();
            let renames = arch.renames().len();
            assert_eq!(maps.load.patterns.len(), renames, "{arch}");
            assert_eq!(maps.save.patterns.len(), renames, "{arch}");
            assert_eq!(maps.load_bare.patterns.len(), renames + 1, "{arch}");
        }
    }

    #[test]
    fn every_checkpoint_name_maps_there_and_back() {
        let names = [
            (
                Architecture::Bert,
                "bert.encoder.layer.3.attention.self.query.weight",
            ),
            (Architecture::Bert, "bert.embeddings.LayerNorm.weight"),
            (
                Architecture::Roberta,
                "roberta.encoder.layer.0.output.LayerNorm.bias",
            ),
            (
                Architecture::DistilBert,
                "distilbert.transformer.layer.1.attention.q_lin.weight",
            ),
            (
                Architecture::DistilBert,
                "distilbert.transformer.layer.1.attention.out_lin.bias",
            ),
            (
                Architecture::DistilBert,
                "distilbert.transformer.layer.0.sa_layer_norm.weight",
            ),
            (
                Architecture::DistilBert,
                "distilbert.transformer.layer.0.ffn.lin1.weight",
            ),
            (
                Architecture::DistilBert,
                "distilbert.transformer.layer.0.ffn.lin2.bias",
            ),
            (
                Architecture::DistilBert,
                "distilbert.transformer.layer.0.output_layer_norm.bias",
            ),
            (
                Architecture::DistilBert,
                "distilbert.embeddings.LayerNorm.weight",
            ),
            (Architecture::DistilBert, "pre_classifier.weight"),
        ];
        for (arch, name) in names {
            let ours = rename(&arch.load_remapper(true), name);
            assert!(
                !ours.contains("LayerNorm") && !ours.contains("lin"),
                "{ours}"
            );
            assert_eq!(
                rename(&arch.save_remapper(), &ours),
                name,
                "{arch}: via {ours}"
            );
            assert_eq!(arch.to_checkpoint_name(&ours), name, "{arch}");
        }
        assert_eq!(
            rename(
                &Architecture::DistilBert.load_remapper(true),
                "distilbert.transformer.layer.1.sa_layer_norm.weight"
            ),
            "distilbert.encoder.layer.1.attention.output.layer_norm.weight"
        );
    }

    #[test]
    fn model_type_is_read_and_an_unknown_one_is_refused_by_name() {
        let path = Path::new("config.json");
        let read = |json: &str| Architecture::from_config_json(path, json.as_bytes());
        assert_eq!(
            read(r#"{"model_type": "roberta"}"#).unwrap(),
            Architecture::Roberta
        );
        assert_eq!(read("{}").unwrap(), Architecture::Bert);
        let err = read(r#"{"model_type": "gpt2"}"#).unwrap_err().to_string();
        assert!(
            err.contains("\"gpt2\"") && err.contains("bert, distilbert, roberta"),
            "{err}"
        );
    }
}
