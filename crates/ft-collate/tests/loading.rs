//! Loading tokenizers: from tokenizer.json, from vocab.txt alone, from the Hub, and bad files.

use std::collections::BTreeMap;
use std::path::Path;

use ft_collate::{AutoTokenizer, CollateError, EncodedDataset, TokenizerOptions};
use ft_hub::HubOptions;
use test_support::{FakeHub, FakeRepo, RepoKind, minilm_dir};

fn copy(from: &Path, to: &Path, names: &[&str]) {
    for name in names {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

fn mrpc_dev() -> glue_data::Split {
    let mut raw =
        glue_data::load_dataset(test_support::glue_dir().to_str().unwrap(), "mrpc").unwrap();
    raw.take("validation").unwrap()
}

#[test]
fn vocab_txt_alone_builds_the_same_bert_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    copy(
        &minilm_dir(),
        dir.path(),
        &["vocab.txt", "tokenizer_config.json"],
    );
    let from_vocab = AutoTokenizer::from_pretrained(dir.path().to_str().unwrap()).unwrap();
    let from_json = AutoTokenizer::from_pretrained(minilm_dir().to_str().unwrap()).unwrap();
    assert_eq!(from_vocab.vocab_size(), from_json.vocab_size());
    let dev = mrpc_dev();
    let a = EncodedDataset::map(&dev, &from_vocab).unwrap();
    let b = EncodedDataset::map(&dev, &from_json).unwrap();
    assert_eq!(
        a, b,
        "vocab.txt and tokenizer.json encode MRPC dev identically"
    );
    // Special tokens written in the text stay whole, as transformers registers them.
    let encoding = from_vocab.encode("a [SEP] b", None).unwrap();
    assert_eq!(
        encoding.get_ids(),
        from_json.encode("a [SEP] b", None).unwrap().get_ids()
    );
}

#[test]
fn lower_casing_follows_tokenizer_config() {
    let dir = tempfile::tempdir().unwrap();
    copy(&minilm_dir(), dir.path(), &["vocab.txt"]);
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"do_lower_case": false, "model_max_length": 512}"#,
    )
    .unwrap();
    let cased = AutoTokenizer::from_pretrained(dir.path().to_str().unwrap()).unwrap();
    let uncased = AutoTokenizer::from_pretrained(minilm_dir().to_str().unwrap()).unwrap();
    let text = "Paris";
    assert_ne!(
        cased.encode(text, None).unwrap().get_ids(),
        uncased.encode(text, None).unwrap().get_ids(),
        "an uncased vocabulary has no `Paris`, so the cased tokenizer must differ"
    );
}

#[test]
fn missing_and_corrupt_files_are_clear_errors() {
    let empty = tempfile::tempdir().unwrap();
    let err = AutoTokenizer::from_pretrained(empty.path().to_str().unwrap()).unwrap_err();
    assert!(matches!(err, CollateError::NoTokenizer { .. }), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"model_max_length": 512}"#,
    )
    .unwrap();
    let err = AutoTokenizer::from_pretrained(dir.path().to_str().unwrap()).unwrap_err();
    assert!(matches!(err, CollateError::NoTokenizer { .. }), "{err:?}");

    std::fs::write(dir.path().join("tokenizer.json"), b"{ not json").unwrap();
    let err = AutoTokenizer::from_pretrained(dir.path().to_str().unwrap()).unwrap_err();
    assert!(
        matches!(&err, CollateError::InvalidFile { path, .. } if path.ends_with("tokenizer.json")),
        "{err:?}"
    );

    std::fs::write(dir.path().join("tokenizer_config.json"), b"[1, 2").unwrap();
    let err = AutoTokenizer::from_pretrained(dir.path().to_str().unwrap()).unwrap_err();
    assert!(
        matches!(&err, CollateError::InvalidFile { path, .. } if path.ends_with("tokenizer_config.json")),
        "{err:?}"
    );
}

#[test]
fn a_hub_model_id_downloads_its_tokenizer_through_hf_hub() {
    let files: BTreeMap<String, Vec<u8>> = [
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "config.json",
    ]
    .iter()
    .map(|name| {
        (
            name.to_string(),
            std::fs::read(minilm_dir().join(name)).unwrap(),
        )
    })
    .collect();
    let hub = FakeHub::start(vec![FakeRepo {
        kind: RepoKind::Model,
        id: "sentence-transformers/all-MiniLM-L6-v2".into(),
        files,
    }]);
    let cache = tempfile::tempdir().unwrap();
    let options = TokenizerOptions {
        model_max_length: None,
        model_input_names: None,
        hub: Some(HubOptions {
            endpoint: hub.url().to_string(),
            cache_dir: cache.path().to_path_buf(),
            offline: false,
            progress: false,
        }),
    };
    let tokenizer =
        AutoTokenizer::from_pretrained_with("sentence-transformers/all-MiniLM-L6-v2", &options)
            .unwrap();
    let local = AutoTokenizer::from_pretrained(minilm_dir().to_str().unwrap()).unwrap();
    let text = "Amrozi accused his brother";
    assert_eq!(
        tokenizer.encode(text, Some("x")).unwrap().get_ids(),
        local.encode(text, Some("x")).unwrap().get_ids()
    );
    assert_eq!(tokenizer.model_max_length(), Some(512));

    // The tokenizer's files go into a checkpoint folder, where they load again.
    let saved = tempfile::tempdir().unwrap();
    tokenizer.save_pretrained(saved.path()).unwrap();
    assert!(saved.path().join("tokenizer.json").is_file());
    assert!(
        !saved.path().join("vocab.txt").exists(),
        "tokenizer.json made vocab.txt unneeded"
    );
    let reloaded = AutoTokenizer::from_pretrained(saved.path().to_str().unwrap()).unwrap();
    assert_eq!(
        reloaded.encode(text, None).unwrap().get_ids(),
        local.encode(text, None).unwrap().get_ids()
    );
}
