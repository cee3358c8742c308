//! `TrainingArguments` from JSON, such as the `training_args.json` that transformers 5.24
//! writes with `to_json_string()`, without ignoring anything in it: every key is either a field
//! we implement, a transformers field we do not implement but that holds transformers'
//! default, or an error that names it.

use serde_json::{Map, Value};

use crate::args::TrainingArguments;
use crate::error::ArgumentsFileError;

/// transformers 5.24 fields that bert-ft does not implement, with the values that mean "off":
/// the default as declared, and as `__post_init__` leaves it (in JSON). A file may hold one of
/// these and nothing else.
const UNSUPPORTED: &[(&str, &[&str])] = &[
    ("lr_scheduler_kwargs", &["null", "{}"]),
    ("optim_args", &["null"]),
    ("optim_target_modules", &["null"]),
    ("average_tokens_across_devices", &["true"]),
    ("bf16_full_eval", &["false"]),
    ("fp16_full_eval", &["false"]),
    ("tf32", &["null"]),
    ("activation_checkpointing_kwargs", &["null"]),
    ("gradient_checkpointing_kwargs", &["null"]),
    ("torch_compile", &["false"]),
    ("torch_compile_backend", &["null"]),
    ("torch_compile_mode", &["null"]),
    ("use_liger_kernel", &["false"]),
    ("liger_kernel_config", &["null"]),
    ("use_cache", &["false"]),
    ("neftune_noise_alpha", &["null"]),
    ("torch_empty_cache_steps", &["null"]),
    ("auto_find_batch_size", &["false"]),
    ("log_on_each_node", &["true"]),
    ("logging_nan_inf_filter", &["true"]),
    ("include_num_input_tokens_seen", &["\"no\"", "false"]),
    ("log_level", &["\"passive\""]),
    ("log_level_replica", &["\"warning\""]),
    ("run_name", &["null"]),
    ("project", &["\"huggingface\""]),
    ("trackio_space_id", &["null"]),
    ("trackio_bucket_id", &["null"]),
    ("trackio_static_space_id", &["null"]),
    ("eval_delay", &["0"]),
    ("prediction_loss_only", &["false"]),
    ("eval_do_concat_batches", &["true"]),
    ("eval_use_gather_object", &["false"]),
    ("eval_accumulation_steps", &["null"]),
    ("include_for_metrics", &["[]"]),
    ("batch_eval_metrics", &["false"]),
    ("save_only_model", &["false"]),
    ("save_on_each_node", &["false"]),
    ("push_to_hub", &["false"]),
    ("hub_token", &["\"<HUB_TOKEN>\"", "null"]),
    ("hub_private_repo", &["null"]),
    ("hub_model_id", &["null"]),
    ("hub_strategy", &["\"every_save\""]),
    ("hub_always_push", &["false"]),
    ("hub_revision", &["null"]),
    ("ignore_data_skip", &["false"]),
    ("restore_callback_states_from_checkpoint", &["false"]),
    ("full_determinism", &["false"]),
    ("use_cpu", &["false"]),
    (
        "accelerator_config",
        &[
            "null",
            r#"{"split_batches": false, "dispatch_batches": null, "even_batches": true,
                "use_seedable_sampler": true, "non_blocking": false,
                "gradient_accumulation_kwargs": null}"#,
        ],
    ),
    ("parallelism_config", &["null"]),
    ("dataloader_num_workers", &["0"]),
    ("dataloader_pin_memory", &["true"]),
    ("dataloader_persistent_workers", &["false"]),
    ("dataloader_prefetch_factor", &["null"]),
    ("dataloader_multiprocessing_context", &["null"]),
    ("dataloader_in_order", &["true"]),
    ("remove_unused_columns", &["true"]),
    ("label_names", &["null"]),
    ("length_column_name", &["\"length\""]),
    ("ddp_find_unused_parameters", &["null"]),
    ("ddp_bucket_cap_mb", &["null"]),
    ("ddp_broadcast_buffers", &["null"]),
    ("ddp_static_graph", &["null"]),
    ("ddp_backend", &["null"]),
    ("ddp_timeout", &["1800"]),
    ("fsdp", &["null", "\"\"", "[]"]),
    ("fsdp_config", &["null"]),
    ("deepspeed", &["null"]),
    ("debug", &["[]", "\"\""]),
    ("skip_memory_metrics", &["true"]),
    ("resume_from_checkpoint", &["null"]),
    ("local_rank", &["-1"]),
];

/// Fields that transformers' Trainer does not read either (example scripts do): any value is
/// accepted, as it is there.
const SCRIPT_ONLY: &[&str] = &["do_train", "do_eval", "do_predict"];

/// transformers' name before 5.x for `train_sampling_strategy="group_by_length"`.
const GROUP_BY_LENGTH: &str = "group_by_length";

/// transformers' name before 5.24 for `activation_checkpointing`, still its deprecated alias.
const GRADIENT_CHECKPOINTING: &str = "gradient_checkpointing";

/// Overlays the keys of `json` on `base`: each key present replaces the field, the others keep
/// `base`'s values. Not yet validated.
pub(crate) fn merge(
    base: &TrainingArguments,
    json: Value,
) -> Result<TrainingArguments, ArgumentsFileError> {
    let Value::Object(entries) = json else {
        return Err(ArgumentsFileError::NotAnObject);
    };
    let Value::Object(mut fields) = serde_json::to_value(base)? else {
        return Err(ArgumentsFileError::NotAnObject);
    };
    // The aliases see the file's own values of their new names, whatever the key order.
    let explicit_strategy = entries.get("train_sampling_strategy").cloned();
    let explicit_checkpointing = entries
        .get("activation_checkpointing")
        .is_some_and(|value| !value.is_null());
    for (key, value) in entries {
        if fields.contains_key(&key) {
            check_field(&key, &value)?;
            fields.insert(key, value);
        } else if key == GROUP_BY_LENGTH {
            group_by_length_alias(&mut fields, &value, explicit_strategy.as_ref())?;
        } else if key == GRADIENT_CHECKPOINTING {
            gradient_checkpointing_alias(&mut fields, value, explicit_checkpointing)?;
        } else if let Some((_, defaults)) = UNSUPPORTED.iter().find(|(name, _)| *name == key) {
            refuse_unless_default(&key, value, defaults)?;
        } else if !SCRIPT_ONLY.contains(&key.as_str()) {
            let suggestion = nearest(&key, fields.keys().map(String::as_str));
            return Err(ArgumentsFileError::UnknownField { key, suggestion });
        }
    }
    Ok(serde_json::from_value(Value::Object(fields))?)
}

/// Reads one supported field alone, so that a wrong type names the field.
fn check_field(key: &str, value: &Value) -> Result<(), ArgumentsFileError> {
    let single = Value::Object(Map::from_iter([(key.to_string(), value.clone())]));
    serde_json::from_value::<TrainingArguments>(single)
        .map(drop)
        .map_err(|source| ArgumentsFileError::Field {
            key: key.to_string(),
            source,
        })
}

/// `gradient_checkpointing` (deprecated) is `activation_checkpointing` where the file does not
/// set that, as transformers' `__post_init__` reads it: then with its FutureWarning, and
/// otherwise ignored, since transformers' own files hold both names with one value.
fn gradient_checkpointing_alias(
    fields: &mut Map<String, Value>,
    value: Value,
    explicit_checkpointing: bool,
) -> Result<(), ArgumentsFileError> {
    if explicit_checkpointing || value.is_null() {
        return Ok(());
    }
    check_field("activation_checkpointing", &value).map_err(|error| match error {
        ArgumentsFileError::Field { source, .. } => ArgumentsFileError::Field {
            key: GRADIENT_CHECKPOINTING.to_string(),
            source,
        },
        other => other,
    })?;
    tracing::warn!(
        "`gradient_checkpointing` is deprecated and will be removed in transformers v6; use \
         `activation_checkpointing`"
    );
    fields.insert("activation_checkpointing".to_string(), value);
    Ok(())
}

/// `group_by_length` (deprecated) is `train_sampling_strategy` `"group_by_length"` when true
/// and `"random"` when false, as it was before transformers 5; a strategy the same file sets
/// must agree with it.
fn group_by_length_alias(
    fields: &mut Map<String, Value>,
    value: &Value,
    explicit_strategy: Option<&Value>,
) -> Result<(), ArgumentsFileError> {
    let on = value
        .as_bool()
        .ok_or_else(|| ArgumentsFileError::GroupByLengthNotBool {
            value: value.clone(),
        })?;
    tracing::warn!(
        "`group_by_length` is deprecated (transformers 5 removed it); use \
         `train_sampling_strategy`"
    );
    let meant = Value::from(if on { GROUP_BY_LENGTH } else { "random" });
    let contradicts = match explicit_strategy {
        Some(strategy) if on => *strategy != meant,
        Some(strategy) => strategy.as_str() == Some(GROUP_BY_LENGTH),
        None => false,
    };
    if contradicts {
        return Err(ArgumentsFileError::GroupByLengthContradicts {
            on,
            strategy: explicit_strategy.cloned().unwrap_or(Value::Null),
        });
    }
    if explicit_strategy.is_none() {
        fields.insert("train_sampling_strategy".into(), meant);
    }
    Ok(())
}

fn refuse_unless_default(
    key: &str,
    value: Value,
    defaults: &[&str],
) -> Result<(), ArgumentsFileError> {
    let defaults: Vec<Value> = defaults
        .iter()
        .filter_map(|text| serde_json::from_str(text).ok())
        .collect();
    if defaults.iter().any(|default| same_json(default, &value)) {
        return Ok(());
    }
    Err(ArgumentsFileError::Unsupported {
        key: key.to_string(),
        value,
        default: defaults.into_iter().next().unwrap_or(Value::Null),
    })
}

/// JSON equality with numbers compared by value (`0` and `0.0` are the same default).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

/// Every name a file may hold: our fields, the unsupported ones, aliases and script-only ones.
fn known_names<'a>(fields: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    fields
        .chain(UNSUPPORTED.iter().map(|(name, _)| *name))
        .chain(SCRIPT_ONLY.iter().copied())
        .chain([GROUP_BY_LENGTH])
        .collect()
}

/// The known name closest to `key`, if it is close enough to be a typo.
fn nearest<'a>(key: &str, fields: impl Iterator<Item = &'a str>) -> Option<String> {
    known_names(fields)
        .into_iter()
        .map(|name| (strsim::damerau_levenshtein(key, name), name))
        .filter(|&(distance, _)| distance <= (key.len() / 3).max(2))
        .min()
        .map(|(_, name)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `TrainingArguments("test-trainer").to_json_string()` from transformers 5.24, and the
    /// dataclass's declared defaults: `tests/fixtures/make_training_args_fixture.py`.
    const TRANSFORMERS: &str = include_str!("../../tests/fixtures/training_args_5_24.json");
    const DECLARED: &str =
        include_str!("../../tests/fixtures/training_args_5_24_dataclass_defaults.json");

    fn merged(json: Value) -> Result<TrainingArguments, ArgumentsFileError> {
        merge(&TrainingArguments::default(), json)
    }

    #[test]
    fn every_transformers_field_is_ours_or_listed_with_both_its_defaults() {
        let ours = serde_json::to_value(TrainingArguments::default()).unwrap();
        let theirs: Map<String, Value> = serde_json::from_str(TRANSFORMERS).unwrap();
        let declared: Map<String, Value> = serde_json::from_str(DECLARED).unwrap();
        for (key, value) in &theirs {
            if ours.get(key).is_some()
                || SCRIPT_ONLY.contains(&key.as_str())
                || key == GRADIENT_CHECKPOINTING
            {
                continue;
            }
            let (_, defaults) = UNSUPPORTED
                .iter()
                .find(|(name, _)| name == key)
                .unwrap_or_else(|| panic!("`{key}` is neither ours nor listed as unsupported"));
            assert!(
                refuse_unless_default(key, value.clone(), defaults).is_ok(),
                "{key}"
            );
            if let Some(declared) = declared.get(key) {
                assert!(
                    refuse_unless_default(key, declared.clone(), defaults).is_ok(),
                    "{key} declared {declared}"
                );
            }
        }
        for (name, _) in UNSUPPORTED {
            assert!(theirs.contains_key(*name), "`{name}` is not a 5.24 field");
        }
        for key in ours.as_object().unwrap().keys() {
            assert!(theirs.contains_key(key), "our `{key}` is not a 5.24 field");
        }
    }

    #[test]
    fn transformers_own_file_loads_with_its_values() {
        let args = merged(serde_json::from_str(TRANSFORMERS).unwrap()).unwrap();
        let expected = TrainingArguments::new("test-trainer");
        assert_eq!(args, expected);
    }

    #[test]
    fn an_unknown_key_is_named_with_the_nearest_field() {
        let error = merged(serde_json::json!({"learning_rte": 1e-3})).unwrap_err();
        assert!(matches!(
            &error,
            ArgumentsFileError::UnknownField { key, suggestion: Some(s) }
                if key == "learning_rte" && s == "learning_rate"
        ));
        assert_eq!(
            error.to_string(),
            "unknown TrainingArguments field `learning_rte`; did you mean `learning_rate`?"
        );
        let error = merged(serde_json::json!({"evaluation_strategy": "epoch"})).unwrap_err();
        assert!(
            error.to_string().contains("did you mean `eval_strategy`?"),
            "{error}"
        );
        let error = merged(serde_json::json!({"zzz": 1})).unwrap_err();
        assert_eq!(error.to_string(), "unknown TrainingArguments field `zzz`");
    }

    #[test]
    fn an_unsupported_field_away_from_its_default_is_refused_by_name() {
        for (key, value) in [
            ("deepspeed", serde_json::json!("ds_config.json")),
            ("fsdp", serde_json::json!("full_shard")),
            ("torch_compile", serde_json::json!(true)),
            ("push_to_hub", serde_json::json!(true)),
        ] {
            let error = merged(serde_json::json!({ key: value })).unwrap_err();
            assert!(
                matches!(&error, ArgumentsFileError::Unsupported { key: k, .. } if k == key),
                "{error}"
            );
            assert!(error.to_string().contains(&format!("`{key}`")), "{error}");
        }
        let args = merged(serde_json::json!({"fsdp": "", "ddp_timeout": 1800.0})).unwrap();
        assert_eq!(args, TrainingArguments::default());
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let error = merged(serde_json::json!({"learning_rate": "fast"})).unwrap_err();
        assert_eq!(error.to_string(), "`learning_rate` has an invalid value");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(cause.is_some_and(|c| c.starts_with("invalid type: string \"fast\"")));
    }

    #[test]
    fn gradient_checkpointing_is_read_as_activation_checkpointing_unless_that_is_set() {
        let on = |json: Value| merged(json).unwrap().activation_checkpointing;
        assert!(on(serde_json::json!({"activation_checkpointing": true})));
        assert!(on(serde_json::json!({"gradient_checkpointing": true})));
        assert!(on(serde_json::json!({
            "activation_checkpointing": null, "gradient_checkpointing": true
        })));
        // The new name wins, as transformers' `__post_init__` has it.
        assert!(!on(serde_json::json!({
            "activation_checkpointing": false, "gradient_checkpointing": true
        })));
        assert!(!on(serde_json::json!({"gradient_checkpointing": null})));
        let error = merged(serde_json::json!({"gradient_checkpointing": "yes"})).unwrap_err();
        assert!(
            matches!(&error, ArgumentsFileError::Field { key, .. } if key == "gradient_checkpointing"),
            "{error:?}"
        );
        // What we write has the new name alone.
        let written = serde_json::to_value(TrainingArguments::default()).unwrap();
        assert_eq!(written["activation_checkpointing"], false);
        assert!(written.get(GRADIENT_CHECKPOINTING).is_none());
    }

    #[test]
    fn eval_on_start_and_jit_checkpoints_are_read_on() {
        let args = merged(serde_json::json!({
            "eval_on_start": true, "enable_jit_checkpoint": true
        }))
        .unwrap();
        assert!(args.eval_on_start && args.enable_jit_checkpoint);
    }

    #[test]
    fn group_by_length_is_a_deprecated_alias() {
        use crate::args::TrainSamplingStrategy;
        let args = merged(serde_json::json!({"group_by_length": true})).unwrap();
        assert_eq!(
            args.train_sampling_strategy,
            TrainSamplingStrategy::GroupByLength
        );
        let grouped = TrainingArguments {
            train_sampling_strategy: TrainSamplingStrategy::GroupByLength,
            ..TrainingArguments::default()
        };
        let args = merge(&grouped, serde_json::json!({"group_by_length": false})).unwrap();
        assert_eq!(args.train_sampling_strategy, TrainSamplingStrategy::Random);
        let args = merged(serde_json::json!({
            "group_by_length": false, "train_sampling_strategy": "sequential"
        }))
        .unwrap();
        assert_eq!(
            args.train_sampling_strategy,
            TrainSamplingStrategy::Sequential
        );
        let error = merged(serde_json::json!({
            "group_by_length": true, "train_sampling_strategy": "sequential"
        }))
        .unwrap_err();
        assert!(
            matches!(
                &error,
                ArgumentsFileError::GroupByLengthContradicts { on: true, strategy }
                    if strategy == "sequential"
            ),
            "{error}"
        );
        // The file's own strategy decides, whatever the layer below held.
        let args = merged(serde_json::json!({
            "group_by_length": true, "train_sampling_strategy": "group_by_length"
        }))
        .unwrap();
        assert_eq!(
            args.train_sampling_strategy,
            TrainSamplingStrategy::GroupByLength
        );
        let error = merge(
            &grouped,
            serde_json::json!({"group_by_length": true, "train_sampling_strategy": "random"}),
        )
        .unwrap_err();
        assert!(
            matches!(
                &error,
                ArgumentsFileError::GroupByLengthContradicts { on: true, strategy }
                    if strategy == "random"
            ),
            "{error}"
        );
    }

    #[test]
    fn keys_present_replace_the_base_and_absent_ones_keep_it() {
        let mut base = TrainingArguments::new("mine");
        base.num_train_epochs = 1.0;
        let args = merge(&base, serde_json::json!({"learning_rate": 1e-3})).unwrap();
        assert_eq!(args.learning_rate, 1e-3);
        assert_eq!(args.num_train_epochs, 1.0);
        assert_eq!(args.output_dir, std::path::PathBuf::from("mine"));
    }
}
