//! A Hugging Face Hub stand-in: an HTTP server on 127.0.0.1 that serves the Hub's
//! URL layout for the repositories it is given, so that `hf-hub`'s real client code downloads
//! from it (point `HF_ENDPOINT`, or `HubOptions::endpoint`, at [`FakeHub::url`]).
//!
//! It answers the two calls `hf-hub` makes:
//! - `GET /api/{models|datasets}/{id}/revision/main`: the file list (`siblings`) and commit;
//! - `GET /{id}` or `/datasets/{id}` + `/resolve/main/{file}`, with `Range` support and the
//!   `x-repo-commit`, `etag` and `Content-Range` headers the client reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tiny_http::{Header, Response, Server};

/// The commit every served repository is at.
pub const COMMIT: &str = "bd8e6e6e5d5a3b2c1f0e9d8c7b6a5f4e3d2c1b0a";

/// Whether a repository is a model or a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// `/{id}/resolve/...`, `/api/models/{id}/...`.
    Model,
    /// `/datasets/{id}/resolve/...`, `/api/datasets/{id}/...`.
    Dataset,
}

/// One served repository: its kind, id and files (path in the repo → bytes).
#[derive(Debug, Clone)]
pub struct FakeRepo {
    /// Model or dataset.
    pub kind: RepoKind,
    /// `owner/name` or `name`.
    pub id: String,
    /// Files by path within the repository.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A running server; it stops when dropped.
pub struct FakeHub {
    url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    /// Starts serving `repos` on a free port of 127.0.0.1.
    pub fn start(repos: Vec<FakeRepo>) -> Self {
        let server = Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(20)) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let response = respond(&repos, request.url(), range(&request));
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

    /// The base URL, for `HF_ENDPOINT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops the server; later requests fail to connect.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop();
    }
}

fn range(request: &tiny_http::Request) -> Option<(usize, Option<usize>)> {
    let header = request.headers().iter().find(|h| h.field.equiv("Range"))?;
    let spec = header.value.as_str().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

type Reply = Response<std::io::Cursor<Vec<u8>>>;

fn not_found(what: &str) -> Reply {
    Response::from_data(format!("{what} not found").into_bytes()).with_status_code(404)
}

fn respond(repos: &[FakeRepo], url: &str, range: Option<(usize, Option<usize>)>) -> Reply {
    for repo in repos {
        let (api, resolve) = match repo.kind {
            RepoKind::Model => (
                format!("/api/models/{}/revision/main", repo.id),
                format!("/{}/resolve/main/", repo.id),
            ),
            RepoKind::Dataset => (
                format!("/api/datasets/{}/revision/main", repo.id),
                format!("/datasets/{}/resolve/main/", repo.id),
            ),
        };
        if url == api {
            let siblings: Vec<serde_json::Value> = repo
                .files
                .keys()
                .map(|name| serde_json::json!({ "rfilename": name }))
                .collect();
            let body = serde_json::json!({ "sha": COMMIT, "siblings": siblings });
            return Response::from_data(body.to_string().into_bytes())
                .with_header(header("Content-Type", "application/json"));
        }
        if let Some(name) = url.strip_prefix(&resolve) {
            let Some(bytes) = repo.files.get(name) else {
                return not_found("entry");
            };
            return file_response(name, bytes, range);
        }
    }
    not_found("repository")
}

fn file_response(name: &str, bytes: &[u8], range: Option<(usize, Option<usize>)>) -> Reply {
    let last = bytes.len().saturating_sub(1);
    let (start, end) = range.unwrap_or((0, None));
    let end = end.unwrap_or(last).min(last);
    let body = bytes.get(start..=end).unwrap_or_default().to_vec();
    Response::from_data(body)
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
