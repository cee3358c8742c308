//! Tokenization parity with Python transformers: every MRPC train and dev pair of
//! all-MiniLM-L6-v2 (bert-base-uncased's vocabulary) encodes to the same `input_ids` and
//! `token_type_ids` as `AutoTokenizer(...)(s1, s2, truncation=True)`.
//! The fixture comes from fixtures/make_tokenizer_fixture.py.

use std::collections::BTreeMap;

use ft_collate::{AutoTokenizer, EncodedDataset};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    model_max_length: usize,
    splits: BTreeMap<String, SplitHashes>,
    full_rows: Vec<FullRow>,
    edge_cases: Vec<EdgeCase>,
}

#[derive(Deserialize)]
struct SplitHashes {
    rows: usize,
    input_ids: Vec<String>,
    token_type_ids: Vec<String>,
    tokens: usize,
}

#[derive(Deserialize)]
struct FullRow {
    split: String,
    row: usize,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    attention_mask: Vec<u32>,
}

#[derive(Deserialize)]
struct EdgeCase {
    name: String,
    text_a: String,
    text_b: Option<String>,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/tokenizer_parity.json")).unwrap()
}

fn tokenizer() -> AutoTokenizer {
    AutoTokenizer::from_pretrained(test_support::minilm_dir().to_str().unwrap()).unwrap()
}

#[test]
fn every_mrpc_train_and_dev_pair_matches_python() {
    let fixture = fixture();
    let tokenizer = tokenizer();
    assert_eq!(tokenizer.model_max_length(), Some(fixture.model_max_length));
    let raw = glue_data::load_dataset(test_support::glue_dir().to_str().unwrap(), "mrpc").unwrap();
    for (split, fixture_split) in [("train", "train"), ("validation", "dev")] {
        let expected = &fixture.splits[fixture_split];
        let encoded = EncodedDataset::map(raw.split(split).unwrap(), &tokenizer).unwrap();
        assert_eq!(encoded.len(), expected.rows);
        assert_eq!(encoded.num_tokens(), expected.tokens, "{split}");
        let mut mismatches = Vec::new();
        for (i, row) in encoded.rows().enumerate() {
            let ids = test_support::fnv1a64(row.input_ids.iter().copied());
            let types =
                test_support::fnv1a64(row.token_type_ids.unwrap().iter().map(|&t| u32::from(t)));
            if ids != expected.input_ids[i] || types != expected.token_type_ids[i] {
                mismatches.push(i);
            }
        }
        assert!(
            mismatches.is_empty(),
            "{split}: rows differ from Python: {mismatches:?}"
        );
        for full in fixture
            .full_rows
            .iter()
            .filter(|r| r.split == fixture_split)
        {
            let row = encoded.row(full.row).unwrap();
            assert_eq!(row.input_ids, full.input_ids.as_slice());
            let types: Vec<u32> = row
                .token_type_ids
                .unwrap()
                .iter()
                .map(|&t| u32::from(t))
                .collect();
            assert_eq!(types, full.token_type_ids);
            assert!(full.attention_mask.iter().all(|&m| m == 1));
        }
    }
}

#[test]
fn empty_long_and_unknown_text_encode_as_python_does() {
    let tokenizer = tokenizer();
    let cases = fixture().edge_cases;
    assert!(cases.len() >= 8);
    for case in cases {
        let encoding = tokenizer
            .encode(&case.text_a, case.text_b.as_deref())
            .unwrap();
        assert_eq!(
            encoding.get_ids(),
            case.input_ids.as_slice(),
            "{}",
            case.name
        );
        assert_eq!(
            encoding.get_type_ids(),
            case.token_type_ids.as_slice(),
            "{}",
            case.name
        );
    }
}
