//! `bert-ft bench train` on the tiny shape the GPU proxy uses, with AdamW forced onto the
//! device's path: it trains, evaluates and reports what `cargo xtask bench` reads. Nothing
//! here is timed; the figures are only checked to be there.

use std::process::Command;

#[test]
fn bench_train_runs_the_tiny_bert_with_the_device_optimizer() {
    let output = Command::new(env!("CARGO_BIN_EXE_bert-ft"))
        .args(["bench", "train", "--model", "tiny-bert", "--tokenizer"])
        .arg(test_support::minilm_dir())
        .arg("--dataset")
        .arg(test_support::glue_dir().join("MRPC"))
        .args(["--steps", "3", "--device-optimizer"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("a result line");
    let result: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(result["steps"], 3);
    assert_eq!(result["backend"], "flex");
    for field in ["train_samples_per_second", "eval_samples_per_second"] {
        let value = result[field].as_f64().unwrap_or(f64::NAN);
        assert!(value.is_finite() && value > 0.0, "{field}: {last}");
    }
}
