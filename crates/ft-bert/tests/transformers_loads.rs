//! What `save_pretrained` writes loads in Python transformers as it is, and gives the same
//! logits there. Runs python/check_transformers_load.py with the project's Python
//! environment (`.venv`, or `$FT_PYTHON`), which CI installs.

use crate::common;
use std::process::Command;

use burn::module::Module;
use burn::tensor::Device;
use ft_bert::BertForSequenceClassification;
use ft_bert::prelude::*;
use ft_collate::{AutoTokenizer, DataCollatorWithPadding, EncodedDataset};
use glue_data::{Example, Split, Task};

#[test]
fn transformers_loads_a_saved_model_and_agrees_on_its_logits() {
    let device = Device::flex();
    let minilm = test_support::minilm_dir();
    let mut model =
        BertForSequenceClassification::from_pretrained(minilm.to_str().unwrap(), 2, &device)
            .unwrap();
    model
        .load_weights(&common::fixture("head.safetensors"))
        .unwrap();
    let tokenizer = AutoTokenizer::from_pretrained(minilm.to_str().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save_pretrained(dir.path()).unwrap();
    tokenizer.save_pretrained(dir.path()).unwrap();

    let pairs = [
        ("The cat sat on the mat .", "A cat was sitting on a mat ."),
        (
            "Shares rose 5 percent on Tuesday .",
            "The company reported a loss .",
        ),
        (
            "Short .",
            "A much longer second sentence, to make the batch need padding .",
        ),
    ];
    let split = Split::from_examples(
        "check",
        Task::Mrpc.features(),
        pairs.iter().enumerate().map(|(i, (a, b))| Example {
            idx: i as u32,
            text_a: a.to_string(),
            text_b: Some(b.to_string()),
            label: None,
        }),
    )
    .unwrap();
    let encoded = EncodedDataset::map(&split, &tokenizer).unwrap();
    let rows: Vec<_> = encoded.rows().collect();
    let batch = DataCollatorWithPadding::new(&tokenizer)
        .collate(&rows, &device)
        .unwrap();
    let logits = common::values(
        model
            .valid()
            .forward(&common::input(&batch))
            .unwrap()
            .logits,
    );
    let expected = serde_json::json!({
        "text_a": pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
        "text_b": pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        "logits": logits.chunks(2).map(<[f32]>::to_vec).collect::<Vec<_>>(),
        "tolerance": 1e-4,
    });
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();

    let script = test_support::python_script("check_transformers_load.py");
    let output = Command::new(test_support::python())
        .arg(script)
        .arg(dir.path())
        .arg(&expected_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("no missing or unexpected keys"), "{stdout}");
    assert!(stdout.contains("logits match"), "{stdout}");
}
