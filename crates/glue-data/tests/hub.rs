//! The Hub code path for real: hf-hub downloads from a small server on 127.0.0.1 that serves
//! the Hub's URL layout, into a cache under `HF_HOME`; then the cache is read offline.
//!
//! This file holds one test because it sets process-wide environment variables.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use ft_hub::HubError;
use glue_data::{GlueError, Label, load_dataset};
use test_support::{COMMIT, FakeHub, FakeRepo, RepoKind};

fn glue_repo(dir: &Path) -> FakeRepo {
    let mut files = BTreeMap::new();
    for (split, rows) in common::mrpc_rows() {
        let name = format!("mrpc/{split}-00000-of-00001.parquet");
        let path = dir.join(&name);
        common::write_mrpc_parquet(&path, &rows);
        files.insert(name, std::fs::read(&path).unwrap());
    }
    // Another task's files are listed too, and must not be read for mrpc.
    files.insert(
        "cola/train-00000-of-00001.parquet".into(),
        b"not read".to_vec(),
    );
    files.insert("README.md".into(), b"# GLUE".to_vec());
    FakeRepo {
        kind: RepoKind::Dataset,
        id: "nyu-mll/glue".into(),
        files,
    }
}

fn set_env(endpoint: &str, home: &Path, offline: bool) {
    // SAFETY: this test binary runs a single test, so no other thread reads the environment.
    unsafe {
        std::env::set_var("HF_ENDPOINT", endpoint);
        std::env::set_var("HF_HOME", home);
        std::env::remove_var("HF_HUB_CACHE");
        if offline {
            std::env::set_var("HF_HUB_OFFLINE", "1");
        } else {
            std::env::remove_var("HF_HUB_OFFLINE");
        }
    }
}

#[test]
fn downloads_through_hf_hub_then_reads_the_cache_offline() {
    let served = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut hub = FakeHub::start(vec![glue_repo(served.path())]);
    let url = hub.url().to_string();

    // Online: `glue` is the retired alias of `nyu-mll/glue`.
    set_env(&url, home.path(), false);
    let online = load_dataset("glue", "mrpc").unwrap();
    assert_eq!(online.split("train").unwrap().len(), 3);
    assert_eq!(
        online.split("validation").unwrap().row(0).unwrap().label,
        Some(Label::Class(1))
    );
    assert!(
        online
            .split("test")
            .unwrap()
            .rows()
            .all(|r| r.label.is_none())
    );
    let cached = home
        .path()
        .join("hub/datasets--nyu-mll--glue/snapshots")
        .join(COMMIT)
        .join("mrpc/train-00000-of-00001.parquet");
    assert!(
        cached.is_file(),
        "hf-hub stores files in the standard cache layout"
    );
    let requests = hub.requests();
    assert!(
        requests >= 4,
        "file list + 3 files, got {requests} requests"
    );

    // Online again: cached files are not downloaded twice.
    let again = load_dataset("nyu-mll/glue", "mrpc").unwrap();
    assert_eq!(again, online);
    assert_eq!(hub.requests(), requests + 1, "only the file list");

    // Offline, with the server gone: the cache alone serves the same data.
    hub.stop();
    set_env(&url, home.path(), true);
    let offline = load_dataset("nyu-mll/glue", "mrpc").unwrap();
    assert_eq!(offline, online);

    // Offline with an empty cache: a typed error that says what to do.
    let empty = tempfile::tempdir().unwrap();
    set_env(&url, empty.path(), true);
    let err = load_dataset("glue", "mrpc").unwrap_err();
    assert!(
        matches!(err, GlueError::Hub(HubError::NotInOfflineCache { .. })),
        "{err:?}"
    );

    // Online with the server gone: a typed error naming the id and the endpoint, no panic.
    set_env(&url, empty.path(), false);
    let err = load_dataset("glue", "mrpc").unwrap_err();
    assert!(
        matches!(&err, GlueError::Hub(HubError::Unreachable { endpoint, .. }) if endpoint == &url),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("`nyu-mll/glue` is neither a local folder nor reachable on the Hub"),
        "{err}"
    );
}
