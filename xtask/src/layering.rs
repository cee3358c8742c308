//! The workspace's layering invariant, checked by a test against `cargo metadata`.
//!
//! The crates follow the notebook's flow, **data → collate → model → trainer → cli**, in
//! layers (lowest first, see [`LAYERS`]):
//!
//! | layer | crates |
//! |---|---|
//! | 0 leaves | `ft-hub`, `ft-metrics`, `bench-report`, `test-support` |
//! | 1 data | `glue-data` |
//! | 2 collate | `ft-collate` |
//! | 3 model | `ft-bert` |
//! | 4 trainer | `ft-trainer` |
//! | 5 front ends | `ft-cli`, `examples`, `fuzz-harness`, `xtask` |
//!
//! A workspace member may depend (normal, build or dev dependency) only on members in strictly
//! lower layers, and besides:
//!
//! - the model knows nothing of data: `ft-bert` may not depend on `ft-collate` or
//!   `glue-data` (it may use `ft-hub`); only its tests may, to run the model on MRPC as the
//!   tokenizer and collator give it (a dev-dependency is not part of the library);
//! - nothing depends on `ft-cli` (it is the top of the graph) or on `fuzz-harness` (only the
//!   cargo-fuzz targets under `fuzz/`, outside the workspace, use it);
//! - `test-support` is only ever a dev-dependency, and the one dev-dependency any member may
//!   have whatever its layer;
//! - `xtask` runs `bert-ft` as a process, so of the members it depends only on `bench-report`
//!   (and `test-support` in its tests), and compiles in seconds;
//! - the crates without tensors (`glue-data`, `ft-metrics`, `ft-hub`, `bench-report`) do
//!   not depend on `burn` or any `burn-*` crate, except `glue-data` on `burn-dataset`;
//! - every member is in the layer table, so that a new crate cannot slip past the check.
//!
//! Why: each layer can then be built, tested and understood with only the layers below it,
//! there are no dependency cycles to untangle later, the data side and the model side can
//! change independently, and the crates that need no tensors build without burn.
//!
//! The rules are the tables below; [`violations`] applies them to a [`Metadata`] (the output of
//! `cargo metadata --no-deps`, whose packages are exactly the workspace members), and the test
//! `workspace_is_layered` applies them to this workspace. A crate of the tables that is not
//! (or no longer) a member is no error.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Deserializer};

use crate::cargo::workspace_root;

/// Each workspace member and its layer, lowest first.
pub const LAYERS: &[(&str, u8)] = &[
    ("ft-hub", 0),
    ("ft-metrics", 0),
    ("bench-report", 0),
    ("test-support", 0),
    ("glue-data", 1),
    ("ft-collate", 2),
    ("ft-bert", 3),
    ("ft-trainer", 4),
    ("ft-cli", 5),
    ("examples", 5),
    ("fuzz-harness", 5),
    ("xtask", 5),
];

/// The layers' names, indexed by layer.
const LAYER_NAMES: &[&str] = &[
    "leaves",
    "data",
    "collate",
    "model",
    "trainer",
    "front ends",
];

/// Edges the layers alone would allow but which are forbidden in the library (normal and
/// build dependencies; the crate's own tests may have them): (from, to, why).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "ft-bert",
        "ft-collate",
        "the model layer may not depend on the data layers",
    ),
    (
        "ft-bert",
        "glue-data",
        "the model layer may not depend on the data layers",
    ),
];

/// Members that no member may depend on, in any kind of dependency: (crate, why).
const NO_DEPENDENTS: &[(&str, &str)] = &[
    ("ft-cli", "nothing depends on the bert-ft binary"),
    (
        "fuzz-harness",
        "only the cargo-fuzz targets under fuzz/, outside the workspace, use it",
    ),
];

/// Members that may only be dev-dependencies, and may be one of any member whatever its layer.
const DEV_ONLY: &[&str] = &["test-support"];

/// Members whose workspace dependencies (besides the dev-only crates in their tests) are
/// limited to a list: (crate, allowed, why).
const ONLY_DEPENDS_ON: &[(&str, &[&str], &str)] = &[(
    "xtask",
    &["bench-report"],
    "xtask runs bert-ft as a process and uses no library crate but bench-report",
)];

/// Members without tensors, which may not depend on `burn` or any `burn-*` crate, and the
/// `burn-*` crates each may use nonetheless.
const NO_BURN: &[(&str, &[&str])] = &[
    ("glue-data", &["burn-dataset"]),
    ("ft-metrics", &[]),
    ("ft-hub", &[]),
    ("bench-report", &[]),
];

/// What `cargo metadata --format-version 1 --no-deps` prints, as far as the check reads it.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    /// The workspace members (with `--no-deps`, cargo lists nothing else).
    pub packages: Vec<Package>,
}

/// A workspace member.
#[derive(Debug, Deserialize)]
pub struct Package {
    /// The package name (`ft-bert`).
    pub name: String,
    /// Its dependencies as its manifest declares them, of every kind and target.
    pub dependencies: Vec<Dependency>,
}

/// One dependency of a package.
#[derive(Debug, Deserialize)]
pub struct Dependency {
    /// The depended-on package's name (not a `package = …` rename).
    pub name: String,
    /// Which kind of dependency it is (`null` in cargo's output for a normal one).
    #[serde(default, deserialize_with = "kind_or_normal")]
    pub kind: Kind,
}

/// The kind of a dependency.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `[dependencies]`.
    #[default]
    Normal,
    /// `[dev-dependencies]`.
    Dev,
    /// `[build-dependencies]`.
    Build,
}

impl Kind {
    /// The kind as the violations name it.
    fn as_str(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::Dev => "dev",
            Kind::Build => "build",
        }
    }
}

/// Reads cargo's `null` kind as [`Kind::Normal`].
fn kind_or_normal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Kind, D::Error> {
    Ok(Option::<Kind>::deserialize(deserializer)?.unwrap_or_default())
}

/// Runs `cargo metadata --format-version 1 --no-deps` in the workspace root and parses it.
pub fn metadata() -> Result<Metadata> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .with_context(|| format!("running {} metadata", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("parsing the output of `cargo metadata`")
}

/// Every breach of the layering rules in `metadata`, one line each, sorted; empty when the
/// workspace is layered.
pub fn violations(metadata: &Metadata) -> Vec<String> {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let members: BTreeSet<&str> = metadata.packages.iter().map(|p| p.name.as_str()).collect();
    let mut found = BTreeSet::new();
    for package in &metadata.packages {
        let from = package.name.as_str();
        let from_layer = layers.get(from).copied();
        if from_layer.is_none() {
            found.insert(format!(
                "{from}: a workspace member missing from the layer table; \
                 add it to LAYERS in xtask/src/layering.rs"
            ));
        }
        for dependency in &package.dependencies {
            let to = dependency.name.as_str();
            let kind = dependency.kind;
            let edge = format!("{from} -> {to} ({})", kind.as_str());
            if !members.contains(to) {
                if let Some(why) = burn_violation(from, to) {
                    found.insert(format!("{edge}: {why}"));
                }
                continue;
            }
            let dev_only = DEV_ONLY.contains(&to);
            // A test helper in a member's tests: allowed whatever the layers.
            let test_helper = dev_only && kind == Kind::Dev;
            if dev_only && !test_helper {
                found.insert(format!("{edge}: {to} may only be a dev-dependency"));
            }
            if let (Some(from_layer), Some(&to_layer)) = (from_layer, layers.get(to))
                && to_layer >= from_layer
                && !test_helper
            {
                found.insert(format!(
                    "{edge}: {from} is in layer {from_layer} ({}) and {to} in layer {to_layer} \
                     ({}); a crate may depend only on crates in lower layers",
                    layer_name(from_layer),
                    layer_name(to_layer)
                ));
            }
            let library = kind != Kind::Dev;
            for &(_, _, why) in FORBIDDEN
                .iter()
                .filter(|f| library && (f.0, f.1) == (from, to))
            {
                found.insert(format!("{edge}: {why}"));
            }
            for &(_, why) in NO_DEPENDENTS.iter().filter(|n| n.0 == to) {
                found.insert(format!("{edge}: {why}"));
            }
            for &(_, allowed, why) in ONLY_DEPENDS_ON.iter().filter(|o| o.0 == from) {
                if !(allowed.contains(&to) || test_helper) {
                    found.insert(format!("{edge}: {why}"));
                }
            }
        }
    }
    found.into_iter().collect()
}

/// Why `from` may not depend on the non-member `to`, if it is a burn crate and `from` has no
/// tensors.
fn burn_violation(from: &str, to: &str) -> Option<String> {
    let (_, allowed) = NO_BURN.iter().find(|(krate, _)| *krate == from)?;
    let is_burn = to == "burn" || to.starts_with("burn-");
    (is_burn && !allowed.contains(&to)).then(|| match allowed {
        [] => format!("{from} has no tensors and may not depend on burn or its crates"),
        _ => format!(
            "{from} has no tensors; of burn and its crates it may use only {}",
            allowed.join(", ")
        ),
    })
}

/// The name of `layer`, or `?` past the table.
fn layer_name(layer: u8) -> &'static str {
    LAYER_NAMES.get(usize::from(layer)).copied().unwrap_or("?")
}

/// The rules on hand-made metadata, then on this workspace.
#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made package's dependencies: (name, kind), `None` for a normal one.
    type Deps = Vec<(&'static str, Option<&'static str>)>;

    /// A hand-made `cargo metadata`, one (name, dependencies) per member.
    fn metadata_of(packages: &[(&'static str, Deps)]) -> Metadata {
        let packages: Vec<_> = packages
            .iter()
            .map(|(name, dependencies)| {
                let dependencies: Vec<_> = dependencies
                    .iter()
                    .map(|(name, kind)| serde_json::json!({ "name": name, "kind": kind }))
                    .collect();
                serde_json::json!({ "name": name, "dependencies": dependencies })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "packages": packages })).unwrap()
    }

    /// The intended graph, as a list of packages to start the synthetic tests from.
    fn layered() -> Vec<(&'static str, Deps)> {
        let dev = Some("dev");
        vec![
            ("ft-hub", vec![("hf-hub", None)]),
            ("ft-metrics", vec![("thiserror", None)]),
            ("bench-report", vec![("serde", None), ("serde_json", dev)]),
            ("test-support", vec![("tiny_http", None)]),
            (
                "glue-data",
                vec![
                    ("ft-hub", None),
                    ("burn-dataset", None),
                    ("test-support", dev),
                ],
            ),
            (
                "ft-collate",
                vec![
                    ("glue-data", None),
                    ("ft-hub", None),
                    ("burn", None),
                    ("test-support", dev),
                ],
            ),
            (
                "ft-bert",
                vec![("ft-hub", None), ("burn", None), ("test-support", dev)],
            ),
            (
                "ft-trainer",
                vec![
                    ("ft-bert", None),
                    ("ft-collate", None),
                    ("glue-data", None),
                    ("ft-metrics", None),
                    ("test-support", dev),
                ],
            ),
            (
                "ft-cli",
                vec![
                    ("ft-trainer", None),
                    ("bench-report", None),
                    ("test-support", dev),
                ],
            ),
            ("examples", vec![("ft-trainer", None), ("ft-bert", None)]),
            (
                "fuzz-harness",
                vec![("ft-bert", None), ("ft-collate", None)],
            ),
            (
                "xtask",
                vec![("bench-report", None), ("serde_json", Some("build"))],
            ),
        ]
    }

    /// Adds the dependency `to` of `kind` to `from` in `packages`.
    fn add(
        packages: &mut [(&'static str, Deps)],
        from: &str,
        to: &'static str,
        kind: Option<&'static str>,
    ) {
        let package = packages.iter_mut().find(|(name, _)| *name == from).unwrap();
        package.1.push((to, kind));
    }

    /// The graph the layers describe has no violations.
    #[test]
    fn the_intended_graph_passes() {
        assert_eq!(violations(&metadata_of(&layered())), Vec::<String>::new());
    }

    /// A crate of the table that is not (yet) a member is no error.
    #[test]
    fn a_crate_of_the_table_may_be_absent() {
        let mut packages = layered();
        packages.retain(|(name, _)| *name != "ft-hub");
        assert_eq!(violations(&metadata_of(&packages)), Vec::<String>::new());
    }

    /// The model's own tests may run it on tokenized, collated data.
    #[test]
    fn the_models_tests_may_use_the_data_layers() {
        let mut packages = layered();
        add(&mut packages, "ft-bert", "ft-collate", Some("dev"));
        add(&mut packages, "ft-bert", "glue-data", Some("dev"));
        assert_eq!(violations(&metadata_of(&packages)), Vec::<String>::new());
    }

    /// Each rule, broken once, gives a violation that names the edge and the rule.
    #[test]
    fn every_rule_names_the_edge_it_breaks() {
        let mut packages = layered();
        add(&mut packages, "ft-collate", "ft-bert", None);
        add(&mut packages, "ft-bert", "glue-data", None);
        add(&mut packages, "ft-bert", "ft-collate", Some("build"));
        add(&mut packages, "examples", "ft-cli", Some("dev"));
        add(&mut packages, "ft-trainer", "test-support", None);
        add(&mut packages, "ft-cli", "fuzz-harness", None);
        add(&mut packages, "xtask", "ft-metrics", None);
        add(&mut packages, "ft-metrics", "burn", None);
        add(&mut packages, "glue-data", "burn-tensor", None);
        add(&mut packages, "glue-data", "ft-metrics", Some("build"));
        packages.push(("ft-new", vec![("ft-hub", None)]));
        let found = violations(&metadata_of(&packages));
        let expect = [
            "ft-collate -> ft-bert (normal): ft-collate is in layer 2 (collate) and ft-bert in layer 3 (model)",
            "ft-bert -> glue-data (normal): the model layer may not depend on the data layers",
            "ft-bert -> ft-collate (build): the model layer may not depend on the data layers",
            "examples -> ft-cli (dev): nothing depends on the bert-ft binary",
            "examples -> ft-cli (dev): examples is in layer 5 (front ends) and ft-cli in layer 5",
            "ft-trainer -> test-support (normal): test-support may only be a dev-dependency",
            "ft-cli -> fuzz-harness (normal): only the cargo-fuzz targets",
            "ft-cli -> fuzz-harness (normal): ft-cli is in layer 5 (front ends) and fuzz-harness in layer 5",
            "xtask -> ft-metrics (normal): xtask runs bert-ft as a process",
            "ft-metrics -> burn (normal): ft-metrics has no tensors",
            "glue-data -> burn-tensor (normal): glue-data has no tensors; of burn and its crates it may use only burn-dataset",
            "ft-new: a workspace member missing from the layer table; add it to LAYERS",
        ];
        for expected in expect {
            assert!(
                found.iter().any(|v| v.starts_with(expected)),
                "no violation starting {expected:?} in:\n{}",
                found.join("\n")
            );
        }
        // glue-data -> ft-metrics goes down a layer: allowed, whatever its kind.
        assert!(!found.iter().any(|v| v.contains("glue-data -> ft-metrics")));
        assert_eq!(found.len(), expect.len(), "{}", found.join("\n"));
    }

    /// Cargo's `null`, `"dev"` and `"build"` (or no `kind` at all) read as their kinds.
    #[test]
    fn the_kinds_are_read_from_cargo_metadata() {
        let metadata: Metadata = serde_json::from_str(
            r#"{"packages": [{"name": "a", "dependencies": [
                {"name": "n", "kind": null}, {"name": "d", "kind": "dev"},
                {"name": "b", "kind": "build"}, {"name": "m"}]}]}"#,
        )
        .unwrap();
        let kinds: Vec<_> = metadata.packages[0]
            .dependencies
            .iter()
            .map(|d| d.kind)
            .collect();
        assert_eq!(kinds, [Kind::Normal, Kind::Dev, Kind::Build, Kind::Normal]);
    }

    /// Every layer of the table has a name for the messages.
    #[test]
    fn every_layer_has_a_name() {
        assert!(
            LAYERS
                .iter()
                .all(|&(_, layer)| usize::from(layer) < LAYER_NAMES.len())
        );
    }

    /// This workspace keeps its layering.
    #[test]
    fn workspace_is_layered() {
        let found = violations(&metadata().expect("cargo metadata"));
        assert!(
            found.is_empty(),
            "the workspace breaks its layering (see xtask/src/layering.rs):\n{}",
            found.join("\n")
        );
    }
}
