//! Tokenizer folders that give no length limit, as older tools (and transformers itself) saved
//! them: `model_max_length` missing, or transformers' "no limit" marker. They load and, as in
//! transformers, truncate nothing; `limit_model_max_length` then truncates to what a model
//! takes. Each case is checked against transformers run on the same folder.

use std::path::Path;

use ft_collate::{AutoTokenizer, TokenizerOptions};
use serde::Deserialize;
use test_support::minilm_dir;

/// The configs that give no limit.
const NO_LIMIT_CONFIGS: [&str; 2] = [
    r#"{"do_lower_case": true}"#,
    r#"{"do_lower_case": true, "model_max_length": 1000000000000000019884624838656}"#,
];

/// What `python/tokenize_pairs.py` prints.
#[derive(Deserialize)]
struct Python {
    model_max_length: u128,
    input_ids: Vec<Vec<u32>>,
    token_type_ids: Vec<Vec<u32>>,
}

/// A MiniLM tokenizer folder with `config` as its `tokenizer_config.json`.
fn folder(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["tokenizer.json", "vocab.txt", "config.json"] {
        std::fs::copy(minilm_dir().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("tokenizer_config.json"), config).unwrap();
    dir
}

/// MRPC dev's first pairs, then one pair far longer than 512 tokens.
fn pairs() -> Vec<(String, String)> {
    let mut raw =
        glue_data::load_dataset(test_support::glue_dir().to_str().unwrap(), "mrpc").unwrap();
    let dev = raw.take("validation").unwrap();
    let text_b = dev.text_b().unwrap();
    let mut pairs: Vec<(String, String)> = (0..16)
        .map(|i| (dev.text_a()[i].clone(), text_b[i].clone()))
        .collect();
    pairs.push(("the cat sat . ".repeat(100), "on the mat . ".repeat(100)));
    pairs
}

fn transformers_ids(
    transformers: &test_support::Transformers,
    dir: &Path,
    pairs: &[(String, String)],
    max_length: Option<usize>,
) -> Python {
    let pairs_file = dir.join("pairs.json");
    std::fs::write(&pairs_file, serde_json::to_vec(pairs).unwrap()).unwrap();
    let mut command = transformers.command();
    command
        .arg(test_support::python_script("tokenize_pairs.py"))
        .arg(dir)
        .arg(&pairs_file);
    if let Some(length) = max_length {
        command.arg(length.to_string());
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{transformers}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_file(pairs_file).unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

fn ours(tokenizer: &AutoTokenizer, pairs: &[(String, String)]) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    pairs
        .iter()
        .map(|(a, b)| {
            let encoding = tokenizer.encode(a, Some(b)).unwrap();
            (
                encoding.get_ids().to_vec(),
                encoding.get_type_ids().to_vec(),
            )
        })
        .unzip()
}

#[test]
fn a_folder_without_a_limit_tokenizes_as_transformers_does_and_truncates_when_limited() {
    let pairs = pairs();
    for config in NO_LIMIT_CONFIGS {
        let dir = folder(config);
        let mut tokenizer = AutoTokenizer::from_pretrained(dir.path().to_str().unwrap())
            .unwrap_or_else(|err| panic!("{config}: {err}"));
        assert_eq!(tokenizer.model_max_length(), None, "{config}");
        assert!(
            tokenizer
                .to_string()
                .contains("model_max_length=1000000000000000019884624838656"),
            "shown as transformers shows it: {tokenizer}"
        );
        let (ids, types) = ours(&tokenizer, &pairs);
        assert!(ids.last().unwrap().len() > 512, "nothing is truncated");

        assert!(tokenizer.limit_model_max_length(512).unwrap());
        assert_eq!(tokenizer.model_max_length(), Some(512));
        assert!(
            !tokenizer.limit_model_max_length(600).unwrap(),
            "never raised"
        );
        let (limited, limited_types) = ours(&tokenizer, &pairs);
        assert_eq!(limited.last().unwrap().len(), 512);

        for transformers in test_support::transformers() {
            let python = transformers_ids(&transformers, dir.path(), &pairs, None);
            assert_eq!(python.model_max_length, 1000000000000000019884624838656);
            assert_eq!(ids, python.input_ids, "{transformers}, {config}");
            assert_eq!(types, python.token_type_ids, "{transformers}, {config}");
            // Within the limit, what transformers' model accepts, limiting changes nothing;
            // beyond it, ours is transformers' truncation to 512.
            let truncated = transformers_ids(&transformers, dir.path(), &pairs, Some(512));
            assert_eq!(limited, truncated.input_ids, "{transformers}, {config}");
            assert_eq!(limited_types, truncated.token_type_ids);
            assert_eq!(limited[..16], python.input_ids[..16]);
        }
    }
}

#[test]
fn a_given_max_length_overrides_a_missing_one() {
    let dir = folder("{}");
    let options = TokenizerOptions {
        model_max_length: Some(16),
        ..TokenizerOptions::default()
    };
    let tokenizer =
        AutoTokenizer::from_pretrained_with(dir.path().to_str().unwrap(), &options).unwrap();
    assert_eq!(tokenizer.model_max_length(), Some(16));
    let long = "word ".repeat(100);
    let encoding = tokenizer.encode(&long, Some(&long)).unwrap();
    assert_eq!(
        encoding.get_ids().len(),
        16,
        "truncated longest-first to the given length"
    );
}

#[test]
fn a_limit_in_the_files_is_lowered_to_the_model_but_never_raised() {
    let mut tokenizer = AutoTokenizer::from_pretrained(minilm_dir().to_str().unwrap()).unwrap();
    assert!(
        !tokenizer.limit_model_max_length(512).unwrap(),
        "already 512"
    );
    assert!(tokenizer.limit_model_max_length(128).unwrap());
    let long = "word ".repeat(300);
    assert_eq!(tokenizer.encode(&long, None).unwrap().get_ids().len(), 128);
    let err = tokenizer.limit_model_max_length(2).unwrap_err();
    assert!(
        matches!(err, ft_collate::CollateError::NoRoomForText { .. }),
        "{err:?}"
    );
}
