//! Files from Hugging Face Hub repositories, through `hf-hub` and the standard cache.
//!
//! The environment is read as `huggingface_hub` reads it: `HF_ENDPOINT` for the server,
//! `HF_HUB_CACHE` or `HF_HOME` for the cache, and `HF_HUB_OFFLINE` to use the cache alone.
//! Datasets (`glue-data`), tokenizers (`ft-collate`) and models (`ft-bert`) all download
//! through this crate, so that every download behaves the same; it sits below them all and
//! knows nothing of what the files hold.

#![warn(missing_docs)]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};

/// Why a Hub file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The name is written as a path (absolute, `./`, `../`, `~`, or under an existing folder)
    /// but no folder is there. The Hub is not asked: a path is never a repository id.
    #[error("{path}: no such folder")]
    NoSuchFolder {
        /// The path as given.
        path: PathBuf,
    },

    /// The repository's file list, the first request for any repository, failed: the name is
    /// neither a local folder nor a repository the Hub gives.
    #[error("`{repo}` is neither a local folder nor reachable on the Hub ({endpoint})")]
    Unreachable {
        /// The server.
        endpoint: String,
        /// The repository id.
        repo: String,
        /// The client's reason.
        source: Box<ApiError>,
    },

    /// The server refused or failed a request for one file of a repository it listed.
    // The reason is left to `source`: `ApiError`'s own message repeats its causes, so an
    // error report that prints the chain would say them again.
    #[error("Hugging Face Hub ({endpoint}), {repo}, `{file}`")]
    Request {
        /// The server.
        endpoint: String,
        /// The repository id.
        repo: String,
        /// The file, or the API call.
        file: String,
        /// The client's reason.
        source: Box<ApiError>,
    },

    /// `HF_HUB_OFFLINE` is set and the repository is not in the cache.
    #[error(
        "`{repo}` is neither a local folder nor in the offline cache ({cache}); HF_HUB_OFFLINE \
         is set, unset it to download"
    )]
    NotInOfflineCache {
        /// The repository id.
        repo: String,
        /// The cache folder searched.
        cache: PathBuf,
    },

    /// `HF_HUB_OFFLINE` is set and the file is not cached.
    #[error(
        "HF_HUB_OFFLINE is set and {repo} has no cached `{file}` under {cache}; unset it to download"
    )]
    NotCached {
        /// The repository id.
        repo: String,
        /// The file, or `*` for the file list.
        file: String,
        /// The cache folder searched.
        cache: PathBuf,
    },

    /// The cache folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Where Hub files come from and go to; [`HubOptions::from_env`] reads the standard variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// Server base URL (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub endpoint: String,
    /// Cache folder (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// Use the cache only (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// Show download progress bars.
    pub progress: bool,
}

impl HubOptions {
    /// The options `huggingface_hub` would use in this environment.
    pub fn from_env() -> Self {
        let cache_dir = match std::env::var_os("HF_HUB_CACHE") {
            Some(dir) => PathBuf::from(dir),
            None => Cache::from_env().path().clone(),
        };
        Self {
            endpoint: std::env::var("HF_ENDPOINT")
                .unwrap_or_else(|_| "https://huggingface.co".to_string()),
            cache_dir,
            offline: std::env::var("HF_HUB_OFFLINE").is_ok_and(|value| is_true(&value)),
            progress: std::io::stderr().is_terminal(),
        }
    }
}

/// `huggingface_hub`'s reading of a boolean variable.
fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

/// One repository (model or dataset) on the Hub, at one revision.
pub struct HubRepo {
    id: String,
    repo: Repo,
    options: HubOptions,
    api: Option<ApiRepo>,
}

impl std::fmt::Debug for HubRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubRepo")
            .field("id", &self.id)
            .field("revision", &self.repo.revision())
            .field("options", &self.options)
            .finish()
    }
}

impl HubRepo {
    /// A model repository (`bert-base-uncased`).
    pub fn model(id: &str, options: &HubOptions) -> Result<Self, HubError> {
        Self::new(id, RepoType::Model, "main", options)
    }

    /// A dataset repository (`nyu-mll/glue`) at `revision`.
    pub fn dataset(id: &str, revision: &str, options: &HubOptions) -> Result<Self, HubError> {
        Self::new(id, RepoType::Dataset, revision, options)
    }

    fn new(
        id: &str,
        kind: RepoType,
        revision: &str,
        options: &HubOptions,
    ) -> Result<Self, HubError> {
        if looks_like_path(id) {
            return Err(HubError::NoSuchFolder { path: id.into() });
        }
        let repo = Repo::with_revision(id.to_string(), kind, revision.to_string());
        let api = if options.offline {
            None
        } else {
            let api = ApiBuilder::from_cache(Cache::new(options.cache_dir.clone()))
                .with_endpoint(options.endpoint.clone())
                .with_progress(options.progress)
                .build()
                .map_err(|source| HubError::Request {
                    endpoint: options.endpoint.clone(),
                    repo: id.to_string(),
                    file: String::new(),
                    source: Box::new(source),
                })?;
            Some(api.repo(repo.clone()))
        };
        Ok(Self {
            id: id.to_string(),
            repo,
            options: options.clone(),
            api,
        })
    }

    /// The repository id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Paths of all files in the repository: from the Hub's API, or offline from the cached
    /// snapshot.
    pub fn list_files(&self) -> Result<Vec<String>, HubError> {
        match &self.api {
            Some(api) => {
                let info = api.info().map_err(|source| HubError::Unreachable {
                    endpoint: self.options.endpoint.clone(),
                    repo: self.id.clone(),
                    source: Box::new(source),
                })?;
                Ok(info.siblings.into_iter().map(|s| s.rfilename).collect())
            }
            None => {
                let snapshot =
                    self.cached_snapshot()
                        .ok_or_else(|| HubError::NotInOfflineCache {
                            repo: self.id.clone(),
                            cache: self.options.cache_dir.clone(),
                        })?;
                let mut files = Vec::new();
                walk(&snapshot, &snapshot, &mut files)?;
                files.sort();
                Ok(files)
            }
        }
    }

    /// The local path of `file`, downloading it into the cache unless it is there already.
    pub fn get(&self, file: &str) -> Result<PathBuf, HubError> {
        match &self.api {
            Some(api) => api
                .get(file)
                .map_err(|source| self.request_error(file, source)),
            None => Cache::new(self.options.cache_dir.clone())
                .repo(self.repo.clone())
                .get(file)
                .ok_or_else(|| self.not_cached(file)),
        }
    }

    /// The cached snapshot folder of this revision, if the cache has one.
    fn cached_snapshot(&self) -> Option<PathBuf> {
        let root = self.options.cache_dir.join(self.repo.folder_name());
        let commit = std::fs::read_to_string(root.join("refs").join(self.repo.revision())).ok()?;
        let snapshot = root.join("snapshots").join(commit.trim());
        snapshot.is_dir().then_some(snapshot)
    }

    fn request_error(&self, file: &str, source: ApiError) -> HubError {
        HubError::Request {
            endpoint: self.options.endpoint.clone(),
            repo: self.id.clone(),
            file: file.to_string(),
            source: Box::new(source),
        }
    }

    fn not_cached(&self, file: &str) -> HubError {
        HubError::NotCached {
            repo: self.id.clone(),
            file: file.to_string(),
            cache: self.options.cache_dir.clone(),
        }
    }
}

/// Whether `name` is written as a local path rather than a Hub id: absolute, starting with
/// `./`, `../` or `~`, or naming something inside a folder that exists here. Hub ids
/// (`bert-base-uncased`, `nyu-mll/glue`) are none of these unless a folder `nyu-mll` sits in the
/// working directory, and then the user most likely meant that folder.
pub fn looks_like_path(name: &str) -> bool {
    let path = Path::new(name);
    path.is_absolute()
        || name.starts_with("./")
        || name.starts_with("../")
        || name == "."
        || name == ".."
        || name.starts_with('~')
        || path
            .parent()
            .is_some_and(|parent| !parent.as_os_str().is_empty() && parent.is_dir())
}

/// Collects the files under `dir` as `/`-separated paths relative to `root`.
fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) -> Result<(), HubError> {
    let io = |source| HubError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(root, &path, files)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<_> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push(parts.join("/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_values_follow_huggingface_hub() {
        for value in ["1", "true", "ON", "yes"] {
            assert!(is_true(value), "{value}");
        }
        for value in ["0", "false", "", "off"] {
            assert!(!is_true(value), "{value}");
        }
    }

    #[test]
    fn offline_without_cache_names_the_cache() {
        let cache = tempfile::tempdir().unwrap();
        let options = HubOptions {
            endpoint: "http://127.0.0.1:9".into(),
            cache_dir: cache.path().to_path_buf(),
            offline: true,
            progress: false,
        };
        let repo = HubRepo::dataset("nyu-mll/glue", "main", &options).unwrap();
        let err = repo.get("mrpc/train-00000-of-00001.parquet").unwrap_err();
        assert!(matches!(err, HubError::NotCached { .. }), "{err:?}");
        assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");
        let err = repo.list_files().unwrap_err();
        assert!(matches!(err, HubError::NotInOfflineCache { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("neither a local folder nor in the offline cache")
        );
    }

    #[test]
    fn paths_are_told_from_hub_ids() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("missing-model");
        for path in ["/no/such/model", "./model", "../model", "~/model", ".."] {
            assert!(looks_like_path(path), "{path}");
        }
        assert!(looks_like_path(inside.to_str().unwrap()));
        for id in ["bert-base-uncased", "nyu-mll/glue", "glue", "org/name-v2"] {
            assert!(!looks_like_path(id), "{id}");
        }
    }

    #[test]
    fn a_missing_path_is_no_such_folder_without_asking_the_hub() {
        // An endpoint nothing listens on: a request would fail with `Unreachable` instead.
        let options = HubOptions {
            endpoint: "http://127.0.0.1:9".into(),
            cache_dir: std::env::temp_dir(),
            offline: false,
            progress: false,
        };
        let err = HubRepo::model("../no-such-model-here", &options).unwrap_err();
        assert!(matches!(err, HubError::NoSuchFolder { .. }), "{err:?}");
        assert_eq!(err.to_string(), "../no-such-model-here: no such folder");
    }
}
