//! `AutoTokenizer.from_pretrained`: a model folder's or Hub repository's tokenizer, set up as
//! transformers sets it up for `tokenizer(s1, s2, truncation=True)`.

use std::fmt;
use std::path::{Path, PathBuf};

use ft_hub::{HubOptions, HubRepo};
use serde::Deserialize;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{
    AddedToken, PostProcessor, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::CollateError;

/// The files a tokenizer may come with, in the order transformers reads them: a fast
/// tokenizer's `tokenizer.json`, else WordPiece's `vocab.txt` or byte-level BPE's
/// `vocab.json` and `merges.txt`.
pub const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
];

/// Tokenizer classes whose `model_input_names` lack `token_type_ids`, as transformers 5.24
/// declares them (without the `Fast` suffix). Any other class returns token types, as BERT's.
const CLASSES_WITHOUT_TOKEN_TYPES: [&str; 6] = [
    "RobertaTokenizer",
    "DistilBertTokenizer",
    "XLMRobertaTokenizer",
    "CamembertTokenizer",
    "BartTokenizer",
    "GPT2Tokenizer",
];

/// Above this, `model_max_length` is transformers' "no limit" marker (`int(1e30)`).
const UNBOUNDED_MAX_LENGTH: f64 = 1e12;

/// transformers' `VERY_LARGE_INTEGER`, which it shows as the `model_max_length` of a tokenizer
/// whose files give none.
const VERY_LARGE_INTEGER: &str = "1000000000000000019884624838656";

/// One of the special tokens in `tokenizer_config.json`: a string or an `AddedToken` object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SpecialToken {
    Plain(String),
    Added { content: String },
}

impl SpecialToken {
    fn content(&self) -> &str {
        match self {
            SpecialToken::Plain(text) => text,
            SpecialToken::Added { content } => content,
        }
    }
}

/// The parts of `tokenizer_config.json` (and `special_tokens_map.json`) that matter here.
#[derive(Debug, Clone, Default, Deserialize)]
struct TokenizerConfigFile {
    tokenizer_class: Option<String>,
    model_input_names: Option<Vec<String>>,
    model_max_length: Option<f64>,
    do_lower_case: Option<bool>,
    strip_accents: Option<bool>,
    tokenize_chinese_chars: Option<bool>,
    add_prefix_space: Option<bool>,
    unk_token: Option<SpecialToken>,
    sep_token: Option<SpecialToken>,
    pad_token: Option<SpecialToken>,
    cls_token: Option<SpecialToken>,
    mask_token: Option<SpecialToken>,
}

impl TokenizerConfigFile {
    /// Fills tokens this file lacks from `special_tokens_map.json`.
    fn merge_special_tokens(&mut self, map: TokenizerConfigFile) {
        self.unk_token = self.unk_token.take().or(map.unk_token);
        self.sep_token = self.sep_token.take().or(map.sep_token);
        self.pad_token = self.pad_token.take().or(map.pad_token);
        self.cls_token = self.cls_token.take().or(map.cls_token);
        self.mask_token = self.mask_token.take().or(map.mask_token);
    }

    fn token(token: &Option<SpecialToken>, default: &str) -> String {
        token
            .as_ref()
            .map_or(default, SpecialToken::content)
            .to_string()
    }
}

/// Options for [`AutoTokenizer::from_pretrained_with`].
#[derive(Debug, Clone, Default)]
pub struct TokenizerOptions {
    /// Overrides `tokenizer_config.json`'s `model_max_length`.
    pub model_max_length: Option<usize>,
    /// Overrides the inputs the tokenizer returns (`model_input_names=[...]`), such as
    /// BERT's vocabulary without `token_type_ids` for a model that takes none.
    pub model_input_names: Option<Vec<String>>,
    /// Where Hub downloads come from; `None` reads the environment.
    pub hub: Option<HubOptions>,
}

/// A fast (Rust) tokenizer with transformers' settings: truncation longest-first to
/// `model_max_length`, no padding (padding is the collator's job).
#[derive(Clone)]
pub struct AutoTokenizer {
    name_or_path: String,
    tokenizer: tokenizers::Tokenizer,
    /// `None` where the files give no limit: then, as in transformers, nothing is truncated.
    model_max_length: Option<usize>,
    special: SpecialTokens,
    /// `tokenizer_class` without `Fast`, `BertTokenizer` when the files do not say.
    class: String,
    model_input_names: Vec<String>,
    files: Vec<PathBuf>,
}

/// The special tokens and their ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Unknown-word token (`[UNK]`).
    pub unk_token: String,
    /// Separator (`[SEP]`).
    pub sep_token: String,
    /// Padding (`[PAD]`).
    pub pad_token: String,
    /// Classification token (`[CLS]`).
    pub cls_token: String,
    /// Mask token (`[MASK]`).
    pub mask_token: String,
    /// The id of `pad_token`.
    pub pad_token_id: u32,
}

impl AutoTokenizer {
    /// Loads the tokenizer of a local model folder or of a Hub model id
    /// (`bert-base-uncased`), as `AutoTokenizer.from_pretrained` does.
    pub fn from_pretrained(name_or_path: &str) -> Result<Self, CollateError> {
        Self::from_pretrained_with(name_or_path, &TokenizerOptions::default())
    }

    /// [`AutoTokenizer::from_pretrained`] with options.
    pub fn from_pretrained_with(
        name_or_path: &str,
        options: &TokenizerOptions,
    ) -> Result<Self, CollateError> {
        let dir = Path::new(name_or_path);
        let files = if dir.is_dir() {
            TOKENIZER_FILES
                .iter()
                .map(|name| dir.join(name))
                .filter(|path| path.is_file())
                .collect()
        } else {
            let hub = options.hub.clone().unwrap_or_else(HubOptions::from_env);
            download(name_or_path, &hub)?
        };
        Self::from_files(name_or_path, files, options)
    }

    fn from_files(
        name_or_path: &str,
        files: Vec<PathBuf>,
        options: &TokenizerOptions,
    ) -> Result<Self, CollateError> {
        let find = |name: &str| files.iter().find(|path| path.ends_with(name));
        let mut config: TokenizerConfigFile = match find("tokenizer_config.json") {
            Some(path) => read_json(path)?,
            None => TokenizerConfigFile::default(),
        };
        if let Some(path) = find("special_tokens_map.json") {
            config.merge_special_tokens(read_json(path)?);
        }
        let model_max_length = model_max_length(&config, options);
        let mut tokenizer = read_tokenizer(name_or_path, &files, &config)?;
        let special = special_tokens(name_or_path, &tokenizer, &config)?;
        truncate_only(name_or_path, &mut tokenizer, model_max_length)?;
        let class = config
            .tokenizer_class
            .as_deref()
            .map_or("BertTokenizer", |class| class.trim_end_matches("Fast"))
            .to_string();
        let model_input_names = options
            .model_input_names
            .clone()
            .or(config.model_input_names)
            .unwrap_or_else(|| default_input_names(&class));
        Ok(Self {
            name_or_path: name_or_path.to_string(),
            tokenizer,
            model_max_length,
            special,
            class,
            model_input_names,
            files,
        })
    }

    /// Encodes one example as `tokenizer([text_a], [text_b], truncation=True)` does: with
    /// the post-processor's special tokens (`[CLS] a [SEP] b [SEP]`, `<s> a </s></s> b </s>`),
    /// token types 0 then 1, truncated longest-first to `model_max_length`.
    pub fn encode(
        &self,
        text_a: &str,
        text_b: Option<&str>,
    ) -> Result<tokenizers::Encoding, tokenizers::Error> {
        match text_b {
            Some(text_b) => self.tokenizer.encode_fast((text_a, text_b), true),
            None => self.tokenizer.encode_fast(text_a, true),
        }
    }

    /// The inputs the model takes, as the tokenizer's `model_input_names`: `tokenizer_config.json`'s
    /// list, else its `tokenizer_class`'s (`["input_ids", "attention_mask"]` for RoBERTa and
    /// DistilBERT, BERT's with `token_type_ids` otherwise).
    pub fn model_input_names(&self) -> &[String] {
        &self.model_input_names
    }

    /// Whether encoded rows carry `token_type_ids`.
    pub fn returns_token_type_ids(&self) -> bool {
        self.model_input_names
            .iter()
            .any(|name| name == "token_type_ids")
    }

    /// The folder or Hub id it was loaded from.
    pub fn name_or_path(&self) -> &str {
        &self.name_or_path
    }

    /// The length `truncation=True` truncates to; `None` where the files give none (no
    /// `model_max_length`, or transformers' "no limit" marker), and nothing is truncated.
    pub fn model_max_length(&self) -> Option<usize> {
        self.model_max_length
    }

    /// Truncates to at most `max_length` tokens, what a model with that many positions takes;
    /// true when that lowers the limit (the files gave none, or a longer one). Inputs within
    /// the limit are tokenized as before.
    ///
    /// transformers does not do this: with no limit in the files it truncates nothing, and
    /// its model then fails on a longer input.
    pub fn limit_model_max_length(&mut self, max_length: usize) -> Result<bool, CollateError> {
        if self
            .model_max_length
            .is_some_and(|length| length <= max_length)
        {
            return Ok(false);
        }
        truncate_only(&self.name_or_path, &mut self.tokenizer, Some(max_length))?;
        self.model_max_length = Some(max_length);
        Ok(true)
    }

    /// The special tokens.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// The id used to pad.
    pub fn pad_token_id(&self) -> u32 {
        self.special.pad_token_id
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Copies the tokenizer's files into `dir`, so that a checkpoint folder loads with
    /// `AutoTokenizer.from_pretrained(dir)` in Python or here.
    pub fn save_pretrained(&self, dir: &Path) -> Result<(), CollateError> {
        std::fs::create_dir_all(dir).map_err(|e| CollateError::io("creating", dir, e))?;
        for source in &self.files {
            if let Some(name) = source.file_name() {
                let target = dir.join(name);
                std::fs::copy(source, &target)
                    .map_err(|e| CollateError::io("copying to", &target, e))?;
            }
        }
        Ok(())
    }
}

/// Prints like transformers' tokenizer repr, which the notebook shows inside the collator.
impl fmt::Display for AutoTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.special;
        write!(
            f,
            "{}Fast(name_or_path='{}', vocab_size={}, model_max_length={}, \
             is_fast=True, padding_side='right', truncation_side='right', \
             special_tokens={{'unk_token': '{}', 'sep_token': '{}', 'pad_token': '{}', \
             'cls_token': '{}', 'mask_token': '{}'}})",
            self.class,
            self.name_or_path,
            self.tokenizer.get_vocab_size(false),
            self.model_max_length.map_or_else(
                || VERY_LARGE_INTEGER.to_string(),
                |length| length.to_string()
            ),
            s.unk_token,
            s.sep_token,
            s.pad_token,
            s.cls_token,
            s.mask_token
        )
    }
}

impl fmt::Debug for AutoTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CollateError> {
    let invalid = |source: Box<dyn std::error::Error + Send + Sync>| CollateError::InvalidFile {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.into()))?;
    serde_json::from_str(&text).map_err(|e| invalid(e.into()))
}

/// Downloads a Hub model's tokenizer files: `tokenizer.json` when the repository has it,
/// otherwise `vocab.txt` or `vocab.json` and `merges.txt`, plus the config files that exist.
fn download(id: &str, options: &HubOptions) -> Result<Vec<PathBuf>, CollateError> {
    let repo = HubRepo::model(id, options)?;
    let listed = repo.list_files()?;
    let mut files = Vec::new();
    for name in TOKENIZER_FILES {
        let vocabulary = matches!(name, "vocab.txt" | "vocab.json" | "merges.txt");
        if vocabulary && listed.iter().any(|f| f == "tokenizer.json") {
            continue;
        }
        if listed.iter().any(|f| f == name) {
            files.push(repo.get(name)?);
        }
    }
    Ok(files)
}

/// The longest input: the option's, else the config's unless it is transformers' "no
/// limit" marker; `None` when neither gives one.
fn model_max_length(config: &TokenizerConfigFile, options: &TokenizerOptions) -> Option<usize> {
    match (options.model_max_length, config.model_max_length) {
        (Some(length), _) => Some(length),
        (None, Some(length)) if length.is_finite() && length < UNBOUNDED_MAX_LENGTH => {
            Some(length as usize)
        }
        _ => None,
    }
}

/// The tokenizer of `tokenizer.json`, else of WordPiece's `vocab.txt`, else of byte-level
/// BPE's `vocab.json` and `merges.txt`.
fn read_tokenizer(
    name_or_path: &str,
    files: &[PathBuf],
    config: &TokenizerConfigFile,
) -> Result<tokenizers::Tokenizer, CollateError> {
    let find = |name: &str| files.iter().find(|path| path.ends_with(name));
    let bpe_files = find("vocab.json").zip(find("merges.txt"));
    match (find("tokenizer.json"), find("vocab.txt"), bpe_files) {
        (Some(path), _, _) => {
            tokenizers::Tokenizer::from_file(path).map_err(|source| CollateError::InvalidFile {
                path: path.clone(),
                source,
            })
        }
        (None, Some(vocab), _) => wordpiece_from_vocab(vocab, config),
        (None, None, Some((vocab, merges))) => byte_level_bpe(vocab, merges, config),
        (None, None, None) => Err(CollateError::NoTokenizer {
            location: name_or_path.to_string(),
        }),
    }
}

/// The special tokens, each of which the vocabulary must have: every pair uses them, and a
/// vocabulary without them would fail row by row later.
fn special_tokens(
    name_or_path: &str,
    tokenizer: &tokenizers::Tokenizer,
    config: &TokenizerConfigFile,
) -> Result<SpecialTokens, CollateError> {
    let token = |t: &Option<SpecialToken>, default: &str| TokenizerConfigFile::token(t, default);
    let id_of = |token: &str| {
        tokenizer
            .token_to_id(token)
            .ok_or_else(|| CollateError::MissingSpecialToken {
                location: name_or_path.to_string(),
                token: token.to_string(),
            })
    };
    let pad_token = token(&config.pad_token, "[PAD]");
    let pad_token_id = id_of(&pad_token)?;
    let special = SpecialTokens {
        unk_token: token(&config.unk_token, "[UNK]"),
        sep_token: token(&config.sep_token, "[SEP]"),
        pad_token,
        cls_token: token(&config.cls_token, "[CLS]"),
        mask_token: token(&config.mask_token, "[MASK]"),
        pad_token_id,
    };
    for token in [&special.unk_token, &special.sep_token, &special.cls_token] {
        id_of(token)?;
    }
    Ok(special)
}

/// Truncation to `model_max_length` (none without one) and no padding. tokenizer.json may
/// carry its own (all-MiniLM-L6-v2's pads to 128); transformers' `__call__` replaces them, and
/// so do we.
fn truncate_only(
    name_or_path: &str,
    tokenizer: &mut tokenizers::Tokenizer,
    model_max_length: Option<usize>,
) -> Result<(), CollateError> {
    let pair_special_tokens = tokenizer
        .get_post_processor()
        .map_or(0, |p| p.added_tokens(true));
    if let Some(length) = model_max_length
        && length <= pair_special_tokens
    {
        return Err(CollateError::NoRoomForText {
            name_or_path: name_or_path.to_string(),
            model_max_length: length,
            special_tokens: pair_special_tokens,
        });
    }
    let truncation = model_max_length.map(|max_length| TruncationParams {
        direction: TruncationDirection::Right,
        max_length,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
    });
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(truncation)
        .map_err(|source| CollateError::Truncation {
            location: name_or_path.to_string(),
            max_length: model_max_length,
            source,
        })?;
    Ok(())
}

/// The inputs a tokenizer class returns when its config does not say (transformers'
/// `model_input_names`): token types, except for the classes that have none.
fn default_input_names(class: &str) -> Vec<String> {
    let names: &[&str] = if CLASSES_WITHOUT_TOKEN_TYPES.contains(&class) {
        &["input_ids", "attention_mask"]
    } else {
        &["input_ids", "token_type_ids", "attention_mask"]
    };
    names.iter().map(|name| name.to_string()).collect()
}

/// The BERT WordPiece tokenizer that transformers builds from `vocab.txt` alone.
fn wordpiece_from_vocab(
    vocab: &Path,
    config: &TokenizerConfigFile,
) -> Result<tokenizers::Tokenizer, CollateError> {
    let invalid = |source: tokenizers::Error| CollateError::InvalidFile {
        path: vocab.to_path_buf(),
        source,
    };
    // Our own checks' messages become the source as text: `Box<dyn Error>` from a `&str`.
    let vocab_path = vocab
        .to_str()
        .ok_or_else(|| invalid("path is not UTF-8".into()))?;
    let token = |t: &Option<SpecialToken>, default: &str| TokenizerConfigFile::token(t, default);
    let unk = token(&config.unk_token, "[UNK]");
    let model = WordPiece::from_file(vocab_path)
        .unk_token(unk)
        .build()
        .map_err(invalid)?;
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    let id = |name: String| match tokenizer.token_to_id(&name) {
        Some(id) => Ok((name, id)),
        None => Err(invalid(
            format!("special token `{name}` is not in the vocabulary").into(),
        )),
    };
    let sep = id(token(&config.sep_token, "[SEP]"))?;
    let cls = id(token(&config.cls_token, "[CLS]"))?;
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(
            true,
            config.tokenize_chinese_chars.unwrap_or(true),
            config.strip_accents,
            config.do_lower_case.unwrap_or(true),
        )))
        .map_err(invalid)?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(sep, cls)));
    tokenizer.with_decoder(Some(WordPieceDecoder::default()));
    // transformers registers the special tokens as added tokens, so that "[SEP]" written in
    // the text is one token rather than "[", "sep", "]".
    let specials: Vec<AddedToken> = [
        &config.pad_token,
        &config.unk_token,
        &config.cls_token,
        &config.sep_token,
        &config.mask_token,
    ]
    .into_iter()
    .zip(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    .map(|(t, default)| AddedToken::from(token(t, default), true))
    .collect();
    tokenizer.add_special_tokens(specials).map_err(invalid)?;
    Ok(tokenizer)
}

/// The byte-level BPE tokenizer that transformers builds from RoBERTa's `vocab.json` and
/// `merges.txt`: GPT-2's byte-level pre-tokenizer and decoder, and `<s> a </s></s> b </s>`.
fn byte_level_bpe(
    vocab: &Path,
    merges: &Path,
    config: &TokenizerConfigFile,
) -> Result<tokenizers::Tokenizer, CollateError> {
    let invalid = |source: tokenizers::Error| CollateError::InvalidFile {
        path: vocab.to_path_buf(),
        source,
    };
    let utf8 = |path: &Path| {
        path.to_str()
            .map(str::to_string)
            .ok_or_else(|| CollateError::InvalidFile {
                path: path.to_path_buf(),
                source: "path is not UTF-8".into(),
            })
    };
    let model = BPE::from_file(&utf8(vocab)?, &utf8(merges)?)
        .build()
        .map_err(invalid)?;
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    let token = |t: &Option<SpecialToken>, default: &str| TokenizerConfigFile::token(t, default);
    let id = |name: String| match tokenizer.token_to_id(&name) {
        Some(id) => Ok((name, id)),
        None => Err(invalid(
            format!("special token `{name}` is not in the vocabulary").into(),
        )),
    };
    let sep = id(token(&config.sep_token, "</s>"))?;
    let cls = id(token(&config.cls_token, "<s>"))?;
    let add_prefix_space = config.add_prefix_space.unwrap_or(false);
    tokenizer.with_pre_tokenizer(Some(
        ByteLevel::default().add_prefix_space(add_prefix_space),
    ));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new(sep, cls).add_prefix_space(add_prefix_space),
    ));
    let specials: Vec<AddedToken> = [
        &config.cls_token,
        &config.pad_token,
        &config.sep_token,
        &config.unk_token,
        &config.mask_token,
    ]
    .into_iter()
    .zip(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    // `<mask>` takes the space before it, as RoBERTa's tokenizer declares it.
    .map(|(t, default)| AddedToken::from(token(t, default), true).lstrip(default == "<mask>"))
    .collect();
    tokenizer.add_special_tokens(specials).map_err(invalid)?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn errors_keep_their_cause() {
        let dir = tempfile::tempdir().unwrap();

        // Corrupt JSON: the parser's error is the source, and the message does not repeat it.
        let corrupt = dir.path().join("tokenizer_config.json");
        std::fs::write(&corrupt, b"[1, 2").unwrap();
        let err = read_json::<serde_json::Value>(&corrupt).unwrap_err();
        assert!(
            matches!(&err, CollateError::InvalidFile { path, .. } if *path == corrupt),
            "{err:?}"
        );
        let source = err.source().expect("the JSON error is kept");
        assert!(
            source.downcast_ref::<serde_json::Error>().is_some(),
            "{source:?}"
        );
        assert!(err.to_string().contains("tokenizer_config.json"), "{err}");
        assert!(!err.to_string().contains(&source.to_string()), "{err}");

        // A missing file: the operating system's error is the source.
        let missing = dir.path().join("special_tokens_map.json");
        let err = read_json::<serde_json::Value>(&missing).unwrap_err();
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            source.map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound),
            "{err:?}"
        );

        // A corrupt tokenizer.json: the `tokenizers` error is the source.
        std::fs::write(dir.path().join("tokenizer.json"), b"{ not json").unwrap();
        std::fs::write(&corrupt, br#"{"model_max_length": 512}"#).unwrap();
        let err = AutoTokenizer::from_pretrained(dir.path().to_str().unwrap()).unwrap_err();
        assert!(matches!(&err, CollateError::InvalidFile { .. }), "{err:?}");
        assert!(err.source().is_some(), "{err:?}");
    }
}
