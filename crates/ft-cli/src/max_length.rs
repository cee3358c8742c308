//! A tokenizer's truncation fitted to the model it feeds.
//!
//! Older tools, and transformers itself, saved tokenizers whose `tokenizer_config.json` gives
//! no `model_max_length` (or transformers' "no limit" marker). transformers then truncates
//! nothing, and its model fails on any input longer than its positions. Where a command knows
//! the model, it truncates to what the model takes instead: a deliberate difference, which
//! changes no input that transformers' model accepts.

use anyhow::{Context, Result};
use ft_collate::AutoTokenizer;

/// Lowers `tokenizer`'s `model_max_length` to `max_sequence_length`, the positions of the
/// model it feeds. Returns the warning to show, once, where that changed the tokenizer.
pub fn fit_to_model(
    tokenizer: &mut AutoTokenizer,
    max_sequence_length: usize,
) -> Result<Option<String>> {
    let before = tokenizer.model_max_length();
    let lowered = tokenizer
        .limit_model_max_length(max_sequence_length)
        .with_context(|| {
            format!(
                "truncating the tokenizer of {} to the model's {max_sequence_length} positions",
                tokenizer.name_or_path()
            )
        })?;
    Ok(lowered.then(|| warning(tokenizer.name_or_path(), before, max_sequence_length)))
}

fn warning(name_or_path: &str, before: Option<usize>, max_sequence_length: usize) -> String {
    let (given, transformers) = match before {
        None => (
            "gives no model_max_length".to_string(),
            "truncate nothing".to_string(),
        ),
        Some(length) => (
            format!("gives model_max_length {length}, more than the model's positions"),
            format!("truncate to {length}"),
        ),
    };
    format!(
        "{name_or_path}: the tokenizer {given}; truncating to the model's \
         {max_sequence_length} positions (transformers would {transformers}, and its model \
         would fail on a longer input)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_says_what_the_files_gave_and_what_transformers_would_do() {
        let none = warning("old-model", None, 512);
        assert!(none.starts_with("old-model: the tokenizer gives no model_max_length"));
        assert!(none.contains("truncating to the model's 512 positions"));
        assert!(none.contains("transformers would truncate nothing"));
        let longer = warning("m", Some(1024), 512);
        assert!(longer.contains("model_max_length 1024"));
        assert!(longer.contains("transformers would truncate to 1024"));
    }
}
