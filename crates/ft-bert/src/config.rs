//! `BertConfig`, read straight from a checkpoint's `config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::architecture::Architecture;
use crate::error::BertError;

/// BERT's activation in the feed-forward block: the names of transformers' `ACT2FN` that
/// BERT-family checkpoints use, spelled as there. Any other name is refused when the config
/// is read, with the list of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenAct {
    /// `"gelu"`: exact GELU, `x·Φ(x)` with erf.
    Gelu,
    /// `"gelu_new"`: the tanh approximation of GELU,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (Google BERT's and OpenAI GPT's).
    GeluNew,
    /// `"gelu_pytorch_tanh"`: the same tanh approximation, which transformers computes with
    /// torch's `gelu(approximate="tanh")` kernel.
    GeluPytorchTanh,
    /// `"gelu_fast"`: the tanh approximation written as
    /// `0.5·x·(1 + tanh(0.7978845608·x·(1 + 0.044715·x²)))`.
    GeluFast,
    /// `"quick_gelu"`: `x·σ(1.702·x)`.
    QuickGelu,
    /// `"relu"`: `max(x, 0)`.
    Relu,
    /// `"silu"`: `x·σ(x)`.
    Silu,
    /// `"swish"`: the same function as [`HiddenAct::Silu`], kept as its own name so that a
    /// config is written back as it was read.
    Swish,
    /// `"mish"`: `x·tanh(softplus(x))`.
    Mish,
    /// `"tanh"`.
    Tanh,
    /// `"linear"`: the identity.
    Linear,
    /// `"sigmoid"`: `σ(x) = 1 / (1 + e⁻ˣ)`.
    Sigmoid,
}

impl HiddenAct {
    /// Every activation, in declaration order.
    pub const ALL: [HiddenAct; 12] = [
        HiddenAct::Gelu,
        HiddenAct::GeluNew,
        HiddenAct::GeluPytorchTanh,
        HiddenAct::GeluFast,
        HiddenAct::QuickGelu,
        HiddenAct::Relu,
        HiddenAct::Silu,
        HiddenAct::Swish,
        HiddenAct::Mish,
        HiddenAct::Tanh,
        HiddenAct::Linear,
        HiddenAct::Sigmoid,
    ];

    /// The name in `config.json` (transformers' `ACT2FN` key).
    pub fn name(self) -> &'static str {
        match self {
            HiddenAct::Gelu => "gelu",
            HiddenAct::GeluNew => "gelu_new",
            HiddenAct::GeluPytorchTanh => "gelu_pytorch_tanh",
            HiddenAct::GeluFast => "gelu_fast",
            HiddenAct::QuickGelu => "quick_gelu",
            HiddenAct::Relu => "relu",
            HiddenAct::Silu => "silu",
            HiddenAct::Swish => "swish",
            HiddenAct::Mish => "mish",
            HiddenAct::Tanh => "tanh",
            HiddenAct::Linear => "linear",
            HiddenAct::Sigmoid => "sigmoid",
        }
    }
}

impl std::fmt::Display for HiddenAct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the classification head is trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    /// One float target, mean squared error.
    Regression,
    /// One class per example, cross-entropy.
    SingleLabelClassification,
    /// Several independent classes per example, binary cross-entropy.
    MultiLabelClassification,
}

fn default_vocab_size() -> usize {
    30522
}
fn default_hidden_size() -> usize {
    768
}
fn default_layers() -> usize {
    12
}
fn default_heads() -> usize {
    12
}
fn default_intermediate_size() -> usize {
    3072
}
fn default_hidden_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn default_dropout() -> f64 {
    0.1
}
fn default_max_position_embeddings() -> usize {
    512
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_initializer_range() -> f64 {
    0.02
}

/// A BERT-family configuration, with transformers' BERT field names and defaults. Another
/// architecture's keys (DistilBERT's `dim`, `n_layers`, ...) are read into these fields and
/// written back under their own names. Fields this crate does not use are kept in
/// [`BertConfig::extra`] and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// The architecture, from `model_type`.
    #[serde(skip)]
    pub architecture: Architecture,
    /// Vocabulary size.
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// Width of every hidden state.
    #[serde(default = "default_hidden_size")]
    pub hidden_size: usize,
    /// Encoder layers.
    #[serde(default = "default_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    #[serde(default = "default_heads")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    #[serde(default = "default_intermediate_size")]
    pub intermediate_size: usize,
    /// Feed-forward activation.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: HiddenAct,
    /// Dropout after embeddings and each sub-layer.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Longest sequence the position embeddings cover.
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Number of token types (segments).
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Standard deviation of the normal initialisation.
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
    /// Dropout before the classifier; `None` means `hidden_dropout_prob`.
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    /// The head's training objective; `None` is inferred from the labels.
    #[serde(default)]
    pub problem_type: Option<ProblemType>,
    /// Class names by id, as strings of the id (`{"0": "LABEL_0"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    /// Class ids by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, usize>>,
    /// `num_labels`, which transformers reads but derives from `id2label` when writing.
    #[serde(default, skip_serializing)]
    num_labels: Option<usize>,
    /// Every other field of `config.json`, kept as it was.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Default for BertConfig {
    fn default() -> Self {
        // Deserialising an empty object applies every serde default above.
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("defaults deserialise"))
    }
}

impl BertConfig {
    /// Reads `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, BertError> {
        let bytes = std::fs::read(path).map_err(|e| BertError::io("reading", path, e))?;
        Self::from_json_bytes(path, &bytes)
    }

    /// Parses and validates the contents of a `config.json`; `path` only names the file in
    /// errors.
    pub fn from_json_bytes(path: &Path, bytes: &[u8]) -> Result<Self, BertError> {
        let parse_error = |source| BertError::Config {
            path: path.to_path_buf(),
            source,
        };
        // The architecture is read first: another family's config would otherwise parse as
        // BERT's (most keys have defaults) and fail later, on weights it cannot name.
        let architecture = Architecture::from_config_json(path, bytes)?;
        let mut value: Value = serde_json::from_slice(bytes).map_err(parse_error)?;
        if let Value::Object(map) = &mut value {
            map.remove("model_type");
            for (key, default) in architecture.config_defaults() {
                map.entry(*key).or_insert_with(|| Value::from(*default));
            }
            for (ours, theirs) in architecture.config_keys() {
                if let Some(v) = map.remove(*theirs) {
                    map.insert((*ours).to_string(), v);
                }
            }
        }
        let mut config: Self = serde_json::from_value(value).map_err(parse_error)?;
        config.architecture = architecture;
        config
            .validate()
            .map_err(|reason| BertError::InvalidConfig {
                path: path.to_path_buf(),
                reason,
            })?;
        Ok(config)
    }

    /// Checks that the sizes fit together.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("{name} must be positive"));
        }
        if self.max_sequence_length() == 0 {
            return Err(format!(
                "max_position_embeddings {} leaves no position past pad_token_id {}",
                self.max_position_embeddings, self.pad_token_id
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
            ("classifier_dropout", self.classifier_dropout.unwrap_or(0.0)),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{name} must be in [0, 1), got {p}"));
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.initializer_range >= 0.0) {
            return Err(
                "layer_norm_eps must be positive and initializer_range non-negative".into(),
            );
        }
        if self.pad_token_id as usize >= self.vocab_size {
            return Err(format!(
                "pad_token_id {} is outside the vocabulary of {}",
                self.pad_token_id, self.vocab_size
            ));
        }
        if let Some(map) = &self.id2label
            && map.keys().any(|key| key.parse::<usize>().is_err())
        {
            return Err("id2label keys must be class ids".into());
        }
        // Sizes whose tensors cannot even be counted in 64 bits come from a broken file, not
        // a model; refusing them here keeps shape arithmetic from overflowing later.
        if self.parameter_count().is_none() {
            return Err("the sizes overflow: the parameter count does not fit in 64 bits".into());
        }
        Ok(())
    }

    /// Number of parameters of the model with its classification head, or `None` where the
    /// count overflows.
    pub fn parameter_count(&self) -> Option<u64> {
        let [v, h, l, i, p, t, n] = [
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.intermediate_size,
            self.max_position_embeddings,
            self.type_vocab_size,
            self.num_labels(),
        ]
        .map(|x| x as u64);
        let embeddings = v.checked_add(p)?.checked_add(t)?.checked_mul(h)?;
        let attention = h.checked_mul(h)?.checked_add(h)?.checked_mul(4)?;
        let feed_forward = h.checked_mul(i)?.checked_mul(2)?.checked_add(i)?;
        let layer = attention
            .checked_add(feed_forward)?
            .checked_add(h.checked_mul(5)?)?;
        let head = h.checked_add(1)?.checked_mul(n)?;
        embeddings
            .checked_add(layer.checked_mul(l)?)?
            .checked_add(h.checked_mul(h)?)?
            .checked_add(h.checked_mul(3)?)?
            .checked_add(head)
    }

    /// Number of classifier outputs: `len(id2label)`, else `num_labels`, else 2.
    pub fn num_labels(&self) -> usize {
        match (&self.id2label, self.num_labels) {
            (Some(map), _) if !map.is_empty() => map.len(),
            (_, Some(n)) => n,
            _ => 2,
        }
    }

    /// Sets `num_labels`, with transformers' default names `LABEL_i` unless the current
    /// names already have that many entries.
    pub fn set_num_labels(&mut self, num_labels: usize) {
        if self.id2label.as_ref().map(BTreeMap::len) == Some(num_labels) {
            return;
        }
        let names: Vec<String> = (0..num_labels).map(|i| format!("LABEL_{i}")).collect();
        self.set_label_names(&names);
    }

    /// Sets the class names, in id order.
    pub fn set_label_names(&mut self, names: &[String]) {
        self.id2label = Some(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (i.to_string(), name.clone()))
                .collect(),
        );
        self.label2id = Some(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), i))
                .collect(),
        );
        self.num_labels = Some(names.len());
    }

    /// Dropout before the classifier.
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// The longest input: `max_position_embeddings`, less the rows RoBERTa keeps before its
    /// first position (514 - 2 = 512 for roberta-base).
    pub fn max_sequence_length(&self) -> usize {
        let offset = self.architecture.position_offset(self.pad_token_id);
        self.max_position_embeddings.saturating_sub(offset)
    }

    /// DistilBERT's `sinusoidal_pos_embds`: position embeddings initialised as sines and
    /// cosines rather than drawn at random.
    pub fn sinusoidal_pos_embds(&self) -> bool {
        self.architecture == Architecture::DistilBert
            && self.extra.get("sinusoidal_pos_embds") == Some(&Value::Bool(true))
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Parameters outside the embeddings (what `total_flos` counts, as transformers'
    /// `num_parameters(exclude_embeddings=True)`).
    pub fn non_embedding_parameters(&self) -> usize {
        let h = self.hidden_size;
        let i = self.intermediate_size;
        let layer = 4 * (h * h + h) + 2 * (h * i) + i + h + 2 * 2 * h;
        let pooler = h * h + h;
        let classifier = h * self.num_labels() + self.num_labels();
        // The embeddings' LayerNorm is counted: transformers excludes only nn.Embedding weights.
        self.num_hidden_layers * layer + pooler + classifier + 2 * h
    }

    /// The config as `save_pretrained` writes it for the architecture's sequence classifier:
    /// transformers' keys for that architecture, sorted, indented by two spaces.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let architecture = self.architecture;
        let mut value = serde_json::to_value(self)?;
        if let Value::Object(map) = &mut value {
            for (ours, theirs) in architecture.config_keys() {
                if let Some(v) = map.remove(*ours) {
                    map.insert((*theirs).to_string(), v);
                }
            }
            for key in architecture.absent_config_keys() {
                map.remove(*key);
            }
            map.insert(
                "architectures".into(),
                Value::from(vec![architecture.class_name()]),
            );
            map.insert("model_type".into(), Value::from(architecture.model_type()));
            map.insert("dtype".into(), Value::from("float32"));
            map.remove("torch_dtype");
            map.remove("_name_or_path");
            map.insert("transformers_version".into(), Value::from("5.24.0"));
            // Sort keys, as transformers does (serde_json's map is a BTreeMap).
            let sorted: serde_json::Map<String, Value> = std::mem::take(map).into_iter().collect();
            *map = sorted;
        }
        let mut text = serde_json::to_string_pretty(&value)?;
        text.push('\n');
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bert_base() {
        let config = BertConfig::default();
        assert_eq!(config.hidden_size, 768);
        assert_eq!(config.num_hidden_layers, 12);
        assert_eq!(config.num_labels(), 2);
        assert_eq!(config.hidden_act, HiddenAct::Gelu);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn parameter_count_is_bert_base_and_overflow_is_refused() {
        // transformers' BertForSequenceClassification(BertConfig()) has 109,483,778.
        assert_eq!(BertConfig::default().parameter_count(), Some(109_483_778));
        let huge: BertConfig =
            serde_json::from_str(r#"{"vocab_size": 18446744073709551615}"#).unwrap();
        assert!(huge.validate().unwrap_err().contains("overflow"));
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let config: BertConfig = serde_json::from_str(
            r#"{"hidden_size": 8, "num_attention_heads": 2, "gradient_checkpointing": false,
                "position_embedding_type": "absolute", "num_labels": 3}"#,
        )
        .unwrap();
        assert_eq!(config.num_labels(), 3);
        assert_eq!(config.extra["position_embedding_type"], "absolute");
        let text = config.to_json().unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["position_embedding_type"], "absolute");
        assert_eq!(back["architectures"][0], "BertForSequenceClassification");
        assert!(back.get("num_labels").is_none(), "derived from id2label");
    }

    #[test]
    fn id2label_sets_num_labels_and_is_written() {
        let mut config = BertConfig::default();
        config.set_num_labels(3);
        assert_eq!(config.num_labels(), 3);
        let value: Value = serde_json::from_str(&config.to_json().unwrap()).unwrap();
        assert_eq!(value["id2label"]["2"], "LABEL_2");
        assert_eq!(value["label2id"]["LABEL_0"], 0);
    }

    #[test]
    fn bad_sizes_are_refused() {
        let config: BertConfig =
            serde_json::from_str(r#"{"hidden_size": 10, "num_attention_heads": 3}"#).unwrap();
        assert!(config.validate().unwrap_err().contains("multiple"));
        let config: BertConfig = serde_json::from_str(r#"{"hidden_dropout_prob": 1.5}"#).unwrap();
        assert!(config.validate().is_err());
        let err = serde_json::from_str::<BertConfig>(r#"{"hidden_act": "gelu_10"}"#).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unknown variant `gelu_10`"), "{message}");
        for act in HiddenAct::ALL {
            assert!(message.contains(&format!("`{act}`")), "{message}");
        }
    }

    #[test]
    fn every_activation_is_written_back_as_it_was_read() {
        // The keys of transformers 5.24's ACT2FN (activations.py), which `from_pretrained`
        // looks `hidden_act` up in.
        const ACT2FN: [&str; 24] = [
            "gelu",
            "gelu_10",
            "gelu_fast",
            "gelu_new",
            "gelu_python",
            "gelu_pytorch_tanh",
            "gelu_python_tanh",
            "gelu_accurate",
            "hardswish",
            "laplace",
            "leaky_relu",
            "linear",
            "mish",
            "quick_gelu",
            "relu",
            "relu2",
            "relu6",
            "sigmoid",
            "silu",
            "sqrtsoftplus",
            "swish",
            "tanh",
            "prelu",
            "xielu",
        ];
        for act in HiddenAct::ALL {
            let name = act.name();
            assert!(ACT2FN.contains(&name), "{name}");
            assert_eq!(act.to_string(), name);
            let config: BertConfig =
                serde_json::from_str(&format!(r#"{{"hidden_act": "{name}"}}"#)).unwrap();
            assert_eq!(config.hidden_act, act);
            let text = config.to_json().unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            // `swish` stays `swish`, not the `silu` it computes.
            assert_eq!(back["hidden_act"], name);
        }
    }

    #[test]
    fn errors_keep_their_cause() {
        use std::error::Error as _;

        // Corrupt JSON: the parser's error is the source, and the message does not repeat it.
        let path = Path::new("/models/tiny/config.json");
        let err = BertConfig::from_json_bytes(path, b"{ not json").unwrap_err();
        assert!(matches!(&err, BertError::Config { .. }), "{err:?}");
        let source = err.source().expect("the JSON error is kept");
        assert!(
            source.downcast_ref::<serde_json::Error>().is_some(),
            "{source:?}"
        );
        assert!(
            err.to_string().contains("/models/tiny/config.json"),
            "{err}"
        );
        assert!(!err.to_string().contains(&source.to_string()), "{err}");

        // A missing file: the operating system's error is the source.
        let err = BertConfig::from_file(Path::new("/nonexistent/config.json")).unwrap_err();
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            source.map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "reading /nonexistent/config.json");

        // An architecture this crate does not build is refused by name, before its keys are
        // read as BERT's.
        let err = BertConfig::from_json_bytes(path, br#"{"model_type": "xlnet", "d_model": 768}"#)
            .unwrap_err();
        assert!(
            matches!(&err, BertError::UnsupportedModelType { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "/models/tiny/config.json: model_type \"xlnet\" is not supported; supported: bert, \
             distilbert, roberta"
        );
        let config =
            BertConfig::from_json_bytes(path, br#"{"model_type": "bert", "hidden_size": 96}"#)
                .unwrap();
        assert_eq!(config.hidden_size, 96);

        // Our own checks have no underlying error: their text is the message.
        let err = BertConfig::from_json_bytes(path, br#"{"num_attention_heads": 5}"#).unwrap_err();
        assert!(matches!(&err, BertError::InvalidConfig { .. }), "{err:?}");
        assert!(err.source().is_none());
        assert!(err.to_string().contains("not a multiple"), "{err}");
    }

    #[test]
    fn distilbert_keys_are_read_as_such_and_written_back() {
        let json = br#"{"model_type": "distilbert", "dim": 64, "n_layers": 3, "n_heads": 4,
            "hidden_dim": 100, "activation": "relu", "dropout": 0.15, "attention_dropout": 0.05,
            "sinusoidal_pos_embds": false, "qa_dropout": 0.1}"#;
        let config = BertConfig::from_json_bytes(Path::new("config.json"), json).unwrap();
        assert_eq!(config.architecture, Architecture::DistilBert);
        assert_eq!(
            (
                config.hidden_size,
                config.num_hidden_layers,
                config.num_attention_heads
            ),
            (64, 3, 4)
        );
        assert_eq!(config.intermediate_size, 100);
        assert_eq!(config.hidden_act, HiddenAct::Relu);
        assert_eq!(config.hidden_dropout_prob, 0.15);
        assert_eq!(config.attention_probs_dropout_prob, 0.05);
        // `seq_classif_dropout`'s default is DistilBERT's, not BERT's hidden dropout.
        assert_eq!(config.classifier_dropout_prob(), 0.2);

        let written: Value = serde_json::from_str(&config.to_json().unwrap()).unwrap();
        assert_eq!(written["model_type"], "distilbert");
        assert_eq!(
            written["architectures"][0],
            "DistilBertForSequenceClassification"
        );
        assert_eq!(written["dim"], 64);
        assert_eq!(written["activation"], "relu");
        assert_eq!(written["seq_classif_dropout"], 0.2);
        assert_eq!(written["qa_dropout"], 0.1);
        for bert_key in [
            "hidden_size",
            "n_layer",
            "type_vocab_size",
            "layer_norm_eps",
        ] {
            assert!(written.get(bert_key).is_none(), "{bert_key} in {written}");
        }
        let again =
            BertConfig::from_json_bytes(Path::new("config.json"), written.to_string().as_bytes())
                .unwrap();
        assert_eq!(again.hidden_size, 64);
    }
}
