//! The backends `bert-ft` can be built with: the one table of `--backend` names and the cargo
//! features that compile them in. `cargo xtask` reads it to pick the features of a build from
//! `--backend`, before any `bert-ft` exists; `bert-ft` reads it to name the feature a missing
//! backend needs.

/// Each `--backend` name (without its `:N` device index) and its cargo feature.
pub const BACKENDS: [(&str, &str); 6] = [
    ("flex", "flex"),
    ("ndarray", "ndarray"),
    ("tch-cpu", "tch"),
    ("tch-cuda", "tch"),
    ("wgpu", "wgpu"),
    ("cuda", "cuda"),
];

/// What `--backend` takes, for messages.
pub const BACKEND_CHOICES: &str = "flex, ndarray, tch-cpu, tch-cuda[:N], wgpu[:N] or cuda[:N]";

/// The cargo feature of `backend` (`tch-cuda:1` or `tch-cuda`), or `None` for a name that
/// is no backend.
pub fn backend_feature(backend: &str) -> Option<&'static str> {
    let name = backend.split_once(':').map_or(backend, |(name, _)| name);
    BACKENDS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, feature)| feature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_has_one_feature_and_the_index_is_ignored() {
        assert_eq!(backend_feature("tch-cuda:1"), Some("tch"));
        assert_eq!(backend_feature("flex"), Some("flex"));
        assert_eq!(backend_feature("tpu"), None);
        for (name, _) in BACKENDS {
            assert!(BACKEND_CHOICES.contains(name), "{name}");
        }
    }
}
