//! The Hub code path for real: hf-hub downloads from a small server on 127.0.0.1 that serves
//! the Hub's URL layout, into a cache under `HF_HOME`; then the cache is read offline.
//!
//! This file holds one test because it sets process-wide environment variables.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use glue_data::{GlueError, Label, hub::HubError, load_dataset};
use tiny_http::{Header, Response, Server};

const COMMIT: &str = "bd8e6e6e5d5a3b2c1f0e9d8c7b6a5f4e3d2c1b0a";

/// Serves `files` (repo path → bytes) as dataset `nyu-mll/glue` at revision `main`.
struct FakeHub {
    url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    fn start(files: BTreeMap<String, Vec<u8>>) -> Self {
        let server = Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(20)) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let response = respond(&files, request.url(), range(&request));
                let _ = request.respond(response);
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

fn range(request: &tiny_http::Request) -> Option<(usize, Option<usize>)> {
    let header = request.headers().iter().find(|h| h.field.equiv("Range"))?;
    let spec = header.value.as_str().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

fn respond(
    files: &BTreeMap<String, Vec<u8>>,
    url: &str,
    range: Option<(usize, Option<usize>)>,
) -> Response<std::io::Cursor<Vec<u8>>> {
    if url == "/api/datasets/nyu-mll/glue/revision/main" {
        let siblings: Vec<String> = files
            .keys()
            .map(|name| format!("{{\"rfilename\":\"{name}\"}}"))
            .collect();
        let body = format!(
            "{{\"sha\":\"{COMMIT}\",\"siblings\":[{}]}}",
            siblings.join(",")
        );
        return Response::from_data(body.into_bytes())
            .with_header(header("Content-Type", "application/json"));
    }
    let Some(name) = url.strip_prefix("/datasets/nyu-mll/glue/resolve/main/") else {
        return Response::from_data(b"not found".to_vec()).with_status_code(404);
    };
    let Some(bytes) = files.get(name) else {
        return Response::from_data(b"entry not found".to_vec()).with_status_code(404);
    };
    let (start, end) = range.unwrap_or((0, None));
    let end = end.unwrap_or(bytes.len() - 1).min(bytes.len() - 1);
    Response::from_data(bytes[start..=end].to_vec())
        .with_status_code(206)
        .with_header(header("x-repo-commit", COMMIT))
        .with_header(header(
            "etag",
            &format!("\"etag-{}\"", name.replace('/', "-")),
        ))
        .with_header(header(
            "Content-Range",
            &format!("bytes {start}-{end}/{}", bytes.len()),
        ))
}

fn hub_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
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
    files
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
    let mut hub = FakeHub::start(hub_files(served.path()));

    // Online: `glue` is the retired alias of `nyu-mll/glue`.
    set_env(&hub.url, home.path(), false);
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
    let cached: PathBuf = home
        .path()
        .join("hub/datasets--nyu-mll--glue/snapshots")
        .join(COMMIT)
        .join("mrpc/train-00000-of-00001.parquet");
    assert!(
        cached.is_file(),
        "hf-hub stores files in the standard cache layout"
    );
    let requests = hub.requests.load(Ordering::SeqCst);
    assert!(
        requests >= 4,
        "file list + 3 files, got {requests} requests"
    );

    // Online again: cached files are not downloaded twice.
    let again = load_dataset("nyu-mll/glue", "mrpc").unwrap();
    assert_eq!(again, online);
    assert_eq!(
        hub.requests.load(Ordering::SeqCst),
        requests + 1,
        "only the file list"
    );

    // Offline, with the server gone: the cache alone serves the same data.
    hub.stop();
    set_env(&hub.url, home.path(), true);
    let offline = load_dataset("nyu-mll/glue", "mrpc").unwrap();
    assert_eq!(offline, online);

    // Offline with an empty cache: a typed error that says what to do.
    let empty = tempfile::tempdir().unwrap();
    set_env(&hub.url, empty.path(), true);
    let err = load_dataset("glue", "mrpc").unwrap_err();
    assert!(
        matches!(err, GlueError::Hub(HubError::NotCached { .. })),
        "{err:?}"
    );

    // Online with the server gone: a typed request error naming the endpoint, no panic.
    set_env(&hub.url, empty.path(), false);
    let err = load_dataset("glue", "mrpc").unwrap_err();
    assert!(
        matches!(&err, GlueError::Hub(HubError::Request { endpoint, .. }) if endpoint == &hub.url),
        "{err:?}"
    );
}
