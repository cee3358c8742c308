//! Hugging Face checkpoints in and out: [`HubWeights`], the `from_pretrained` and
//! `save_pretrained` of every [`PreTrainedModel`].
//!
//! Tensors are read and written by burn-store, whose adapters transpose `Linear` weights
//! (PyTorch keeps them `[out, in]`) and rename LayerNorm's `weight`/`bias` to burn's
//! `gamma`/`beta`. Each architecture's regex tables ([`Architecture::load_remapper`]) map the
//! spellings this crate's Rust field names cannot take (`LayerNorm`, the keyword `self`) and
//! another architecture's module names onto the shared encoder, and the prefix
//! (`bert.`, `roberta.`, `distilbert.`) that bare `...Model` checkpoints lack.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot,
    ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::{DType, Device};
use ft_hub::{HubOptions, HubRepo};

use crate::architecture::Architecture;
use crate::config::BertConfig;
use crate::error::BertError;
use crate::pretrained::PreTrainedModel;

/// `from_pretrained`, `save_pretrained` and loading weights into a model, for every
/// [`PreTrainedModel`] (the classes and `AutoModelForSequenceClassification` alike).
pub trait HubWeights: PreTrainedModel {
    /// `from_pretrained(name_or_path, num_labels=...)`: loads a local folder or Hub model,
    /// with a newly initialised head where the checkpoint has none. The load report goes to
    /// the log, as transformers' warning does.
    fn from_pretrained(
        name_or_path: &str,
        num_labels: usize,
        device: &Device,
    ) -> Result<Self, BertError> {
        let options = PretrainedOptions {
            num_labels: Some(num_labels),
            ..PretrainedOptions::default()
        };
        let (model, info) = Self::from_pretrained_with_info(name_or_path, &options, device)?;
        info.warn();
        Ok(model)
    }

    /// `from_pretrained(..., output_loading_info=True)`: the model and what loading found.
    fn from_pretrained_with_info(
        name_or_path: &str,
        options: &PretrainedOptions,
        device: &Device,
    ) -> Result<(Self, LoadingInfo), BertError> {
        let files = CheckpointFiles::resolve(name_or_path, options.hub.as_ref())?;
        from_files(name_or_path, &files, options, device)
    }

    /// `save_pretrained(dir)`: `config.json` and `model.safetensors` with transformers'
    /// names, which `AutoModelForSequenceClassification.from_pretrained(dir)` loads as they
    /// are.
    fn save_pretrained(&self, dir: &Path) -> Result<(), BertError> {
        save_pretrained(self, dir)
    }

    /// Loads tensors named as transformers names them from a safetensors or PyTorch file
    /// into this model, such as a head or a whole checkpoint's `model.safetensors`. Tensors
    /// the file lacks keep their values and are listed as missing; a shape mismatch is an
    /// error.
    fn load_weights(&mut self, path: &Path) -> Result<LoadingInfo, BertError> {
        load_weights(self, path)
    }
}

impl<M: PreTrainedModel> HubWeights for M {}

/// Weight files, in the order transformers prefers them.
const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// Options of [`HubWeights::from_pretrained_with_info`].
#[derive(Debug, Clone)]
pub struct PretrainedOptions {
    /// Number of labels of the head; `None` keeps the checkpoint's.
    pub num_labels: Option<usize>,
    /// Seed of the newly initialised weights (the classifier head).
    pub seed: u64,
    /// Where Hub downloads come from; `None` reads the environment.
    pub hub: Option<HubOptions>,
}

impl Default for PretrainedOptions {
    fn default() -> Self {
        Self {
            num_labels: None,
            seed: 42,
            hub: None,
        }
    }
}

/// What loading found: transformers' `output_loading_info`, printed as its load report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadingInfo {
    /// The checkpoint, as given.
    pub source: String,
    /// The architecture it was loaded as, whose class name heads the report.
    pub architecture: Architecture,
    /// Checkpoint tensors the model does not use (`cls.predictions.*`), by checkpoint name.
    pub unexpected_keys: Vec<String>,
    /// Model weights the checkpoint lacks, newly initialised (`classifier.weight`).
    pub missing_keys: Vec<String>,
}

/// transformers 5's load report.
impl fmt::Display for LoadingInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<(&str, &str)> = self
            .unexpected_keys
            .iter()
            .map(|key| (key.as_str(), "UNEXPECTED"))
            .chain(
                self.missing_keys
                    .iter()
                    .map(|key| (key.as_str(), "MISSING")),
            )
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        // Columns as wide as their widest cell, header included, as transformers pads them.
        let width = rows
            .iter()
            .map(|(key, _)| key.len())
            .max()
            .unwrap_or(0)
            .max(3);
        let status_width = rows.iter().map(|(_, s)| s.len()).max().unwrap_or(0).max(6);
        let class = self.architecture.class_name();
        writeln!(f, "{class} LOAD REPORT from: {}", self.source)?;
        writeln!(f, "{:<width$} | {:<status_width$} | ", "Key", "Status")?;
        writeln!(f, "{}-+-{}-+-", "-".repeat(width), "-".repeat(status_width))?;
        for (key, status) in &rows {
            writeln!(f, "{key:<width$} | {status:<status_width$} | ")?;
        }
        writeln!(f, "\nNotes:")?;
        if !self.unexpected_keys.is_empty() {
            writeln!(
                f,
                "- UNEXPECTED:\tcan be ignored when loading from different task/architecture; \
                 not ok if you expect identical arch."
            )?;
        }
        if !self.missing_keys.is_empty() {
            writeln!(
                f,
                "- MISSING:\tthose params were newly initialized because missing from the \
                 checkpoint. Consider training on your downstream task."
            )?;
        }
        Ok(())
    }
}

impl LoadingInfo {
    /// Logs the report as transformers' warning, when there is anything to report.
    pub fn warn(&self) {
        if !self.unexpected_keys.is_empty() || !self.missing_keys.is_empty() {
            tracing::warn!("{self}");
        }
    }
}

/// The files of a local or Hub checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    /// `config.json`.
    pub config: PathBuf,
    /// `model.safetensors` or `pytorch_model.bin`.
    pub weights: PathBuf,
}

impl CheckpointFiles {
    /// Finds the files of a folder, or downloads them from a Hub model repository.
    pub fn resolve(name_or_path: &str, hub: Option<&HubOptions>) -> Result<Self, BertError> {
        let dir = Path::new(name_or_path);
        if dir.is_dir() {
            let config = dir.join("config.json");
            if !config.is_file() {
                return Err(BertError::io(
                    "reading",
                    config,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "config.json not found"),
                ));
            }
            let weights = WEIGHT_FILES
                .iter()
                .map(|name| dir.join(name))
                .find(|path| path.is_file())
                .ok_or_else(|| BertError::NoWeights {
                    location: name_or_path.to_string(),
                })?;
            return Ok(Self { config, weights });
        }
        let options = hub.cloned().unwrap_or_else(HubOptions::from_env);
        let repo = HubRepo::model(name_or_path, &options)?;
        let listed = repo.list_files()?;
        let weights_name = WEIGHT_FILES
            .iter()
            .find(|name| listed.iter().any(|file| file == *name))
            .ok_or_else(|| BertError::NoWeights {
                location: name_or_path.to_string(),
            })?;
        Ok(Self {
            config: repo.get("config.json")?,
            weights: repo.get(weights_name)?,
        })
    }
}

impl BertConfig {
    /// `AutoConfig.from_pretrained(name_or_path)`: the `config.json` of a local folder or of a
    /// Hub model repository, without its weights.
    pub fn from_pretrained(
        name_or_path: &str,
        hub: Option<&HubOptions>,
    ) -> Result<Self, BertError> {
        let dir = Path::new(name_or_path);
        let path = if dir.is_dir() {
            dir.join("config.json")
        } else {
            let options = hub.cloned().unwrap_or_else(HubOptions::from_env);
            HubRepo::model(name_or_path, &options)?.get("config.json")?
        };
        BertConfig::from_file(&path)
    }
}

/// Builds `M` from a checkpoint's config and loads its weights, with a newly initialised
/// head where the checkpoint has none.
fn from_files<M: PreTrainedModel>(
    source: &str,
    files: &CheckpointFiles,
    options: &PretrainedOptions,
    device: &Device,
) -> Result<(M, LoadingInfo), BertError> {
    let mut config = BertConfig::from_file(&files.config)?;
    let architecture = config.architecture;
    let names = tensor_shapes(&files.weights)?;
    let prefixed = is_prefixed(architecture, names.keys());
    if let Some(num_labels) = options.num_labels {
        if let Some(shape) = names.get(architecture.head_output_weight())
            && shape.first() != Some(&num_labels)
        {
            return Err(BertError::NumLabels {
                path: files.weights.clone(),
                expected: num_labels,
                found: shape.first().copied().unwrap_or(0),
            });
        }
        config.set_num_labels(num_labels);
    }
    let mut model = M::from_config(&config, options.seed, device).map_err(|e| match e {
        BertError::ArchitectureMismatch { config, expected } => BertError::InvalidConfig {
            path: files.config.clone(),
            reason: format!(
                "model_type {:?} is not {:?}: load it as {} or with \
                 AutoModelForSequenceClassification",
                config.model_type(),
                expected.model_type(),
                config.class_name()
            ),
        },
        BertError::InvalidConfigValues { reason, .. } => BertError::InvalidConfig {
            path: files.config.clone(),
            reason,
        },
        other => other,
    })?;
    let result = apply_weights(&mut model, &files.weights, prefixed)?;
    let info = loading_info(architecture, source, &files.weights, &result, prefixed)?;
    Ok((model, info))
}

/// Whether a checkpoint's names carry the encoder's prefix (a classifier's checkpoint) or
/// not (a bare `...Model`'s).
fn is_prefixed<'a>(
    architecture: Architecture,
    mut names: impl Iterator<Item = &'a String>,
) -> bool {
    let prefix = format!("{}.", architecture.base_model_prefix());
    names.any(|name| name.starts_with(&prefix))
}

/// [`HubWeights::save_pretrained`].
fn save_pretrained<M: PreTrainedModel>(model: &M, dir: &Path) -> Result<(), BertError> {
    std::fs::create_dir_all(dir).map_err(|e| BertError::io("creating", dir, e))?;
    let mut config = model.config().clone();
    let num_labels = config.num_labels();
    config.set_num_labels(num_labels);
    let config_path = dir.join("config.json");
    let json = config
        .to_json()
        .map_err(|source| BertError::SerializeConfig {
            path: config_path.clone(),
            source,
        })?;
    std::fs::write(&config_path, json).map_err(|e| BertError::io("writing", &config_path, e))?;

    let weights = dir.join("model.safetensors");
    let mut store = SafetensorsStore::from_file(&weights)
        .with_to_adapter(BurnToPyTorchAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .metadata("format", "pt")
        .skip_enum_variants(true)
        .overwrite(true)
        .remap(model.architecture().save_remapper());
    model
        .save_into(&mut store)
        .map_err(|source| BertError::SaveWeights {
            path: weights.clone(),
            source,
        })
}

/// [`HubWeights::load_weights`].
fn load_weights<M: PreTrainedModel>(model: &mut M, path: &Path) -> Result<LoadingInfo, BertError> {
    let architecture = model.architecture();
    let prefixed = is_prefixed(architecture, tensor_shapes(path)?.keys());
    let result = apply_weights(model, path, prefixed)?;
    let mut missing_keys: Vec<String> = result
        .missing
        .iter()
        .map(|(name, _)| to_transformers_name(architecture, name))
        .collect();
    missing_keys.sort();
    let mut unexpected_keys: Vec<String> = result
        .unused
        .iter()
        .map(|name| to_checkpoint_name(architecture, name, prefixed))
        .collect();
    unexpected_keys.sort();
    Ok(LoadingInfo {
        source: path.display().to_string(),
        architecture,
        unexpected_keys,
        missing_keys,
    })
}

/// Tensor names and shapes in a weights file, without reading the data.
fn tensor_shapes(path: &Path) -> Result<BTreeMap<String, Vec<usize>>, BertError> {
    let error = |source: Box<dyn std::error::Error + Send + Sync>| BertError::Weights {
        path: path.to_path_buf(),
        source,
    };
    let tensors = if is_pickle(path) {
        let mut store = PytorchStore::from_file(path);
        collect_shapes(store.get_all_tensors().map_err(|e| error(e.into()))?)
    } else {
        let mut store = SafetensorsStore::from_file(path);
        collect_shapes(store.get_all_tensors().map_err(|e| error(e.into()))?)
    };
    Ok(tensors)
}

fn collect_shapes(
    tensors: &BTreeMap<String, burn::store::burn_pack::Tensor>,
) -> BTreeMap<String, Vec<usize>> {
    tensors
        .iter()
        .map(|(name, tensor)| (name.clone(), tensor.shape.to_vec()))
        .collect()
}

fn is_pickle(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "bin" || e == "pt" || e == "pth")
}

/// Loads the file's tensors into the model; a tensor of the wrong shape is an error, never
/// a silent fallback to the random initialisation.
fn apply_weights<M: PreTrainedModel>(
    model: &mut M,
    path: &Path,
    prefixed: bool,
) -> Result<ApplyResult, BertError> {
    let architecture = model.architecture();
    let error = |source: Box<dyn std::error::Error + Send + Sync>| BertError::Weights {
        path: path.to_path_buf(),
        source,
    };
    let remapper = architecture.load_remapper(prefixed);
    // `skip_enum_variants`: the auto class's variant (`Roberta`) is burn's, not the
    // checkpoint's; without it the enum and the class it holds read and write one file.
    let result = if is_pickle(path) {
        // Never unpickles code: burn-store's reader interprets only tensor-rebuild calls.
        let mut store = PytorchStore::from_file(path)
            .skip_enum_variants(true)
            .allow_partial(true)
            .validate(false)
            .remap(remapper);
        model.load_from(&mut store).map_err(|e| error(e.into()))?
    } else {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
            .skip_enum_variants(true)
            .allow_partial(true)
            .validate(false)
            .remap(remapper);
        model.load_from(&mut store).map_err(|e| error(e.into()))?
    };
    let mismatches: Vec<String> = result
        .errors
        .iter()
        .map(|e| match e {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => format!(
                "{}: checkpoint {:?} vs model {:?}",
                to_transformers_name(architecture, path),
                pytorch_layout(path, found.to_vec()),
                pytorch_layout(path, expected.to_vec())
            ),
            other => other.to_string(),
        })
        .collect();
    if !mismatches.is_empty() {
        return Err(BertError::ShapeMismatch {
            path: path.to_path_buf(),
            mismatches: mismatches.join("; "),
        });
    }
    Ok(result)
}

/// A shape as PyTorch lays it out: burn keeps `Linear` weights `[in, out]`, PyTorch
/// `[out, in]`; embedding tables are the same in both.
fn pytorch_layout(path: &str, mut shape: Vec<usize>) -> Vec<usize> {
    if shape.len() == 2 && path.ends_with(".weight") && !path.ends_with("_embeddings.weight") {
        shape.reverse();
    }
    shape
}

/// A model parameter path as the checkpoint spells it: through the architecture's save
/// table, without the encoder's prefix where the checkpoint has none.
fn to_checkpoint_name(architecture: Architecture, path: &str, prefixed: bool) -> String {
    let name = architecture.to_checkpoint_name(path);
    let prefix = format!("{}.", architecture.base_model_prefix());
    match name.strip_prefix(&prefix) {
        Some(bare) if !prefixed => bare.to_string(),
        _ => name,
    }
}

/// A model parameter path as transformers names the parameter (`weight`/`bias` of a
/// LayerNorm rather than burn's `gamma`/`beta`).
fn to_transformers_name(architecture: Architecture, path: &str) -> String {
    let name = to_checkpoint_name(architecture, path, true);
    let layer_norm = |module: &str| module.ends_with("LayerNorm") || module.ends_with("layer_norm");
    match name.rsplit_once('.') {
        Some((module, "gamma")) if layer_norm(module) => format!("{module}.weight"),
        Some((module, "beta")) if layer_norm(module) => format!("{module}.bias"),
        _ => name,
    }
}

/// Sorts out what was missing and unused; missing encoder weights are an error.
fn loading_info(
    architecture: Architecture,
    source: &str,
    path: &Path,
    result: &ApplyResult,
    prefixed: bool,
) -> Result<LoadingInfo, BertError> {
    // transformers initialises a new head (and a pooler the checkpoint lacks); anything else
    // missing means the checkpoint is not this architecture.
    let prefix = format!("{}.", architecture.base_model_prefix());
    let pooler = format!("{prefix}pooler.");
    let newly_initialised = |name: &str| !name.starts_with(&prefix) || name.starts_with(&pooler);
    let (missing, fatal): (Vec<&str>, Vec<&str>) = result
        .missing
        .iter()
        .map(|(name, _)| name.as_str())
        .partition(|name| newly_initialised(name));
    if !fatal.is_empty() {
        let names: Vec<String> = fatal
            .iter()
            .map(|name| to_transformers_name(architecture, name))
            .collect();
        return Err(BertError::MissingWeights {
            path: path.to_path_buf(),
            missing: names.join(", "),
        });
    }
    let mut unexpected_keys: Vec<String> = result
        .unused
        .iter()
        .map(|name| to_checkpoint_name(architecture, name, prefixed))
        // transformers drops buffers such as `embeddings.position_ids` without a word.
        .filter(|name| !name.ends_with("position_ids"))
        .collect();
    unexpected_keys.sort();
    let mut missing_keys: Vec<String> = missing
        .iter()
        .map(|name| to_transformers_name(architecture, name))
        .collect();
    missing_keys.sort();
    Ok(LoadingInfo {
        source: source.to_string(),
        architecture,
        unexpected_keys,
        missing_keys,
    })
}
