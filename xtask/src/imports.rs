//! Inside each crate, no two files import each other in a circle: the files of a crate form
//! layers too, so that each can be read, tested and changed knowing only those it names.
//!
//! A file's imports are the paths it names that start with `crate::`, `super::` or `self::`
//! (in `use` items and anywhere in its code), outside `#[cfg(test)]` items, read with `syn`.
//! Each path is resolved to the longest module it names, so `crate::flex::dropout(…)` is an
//! edge to the module `flex::dropout` when that is a file; a path into the crate root
//! (`crate::BertError`, a re-export) is no edge, since the root is the crate's face rather
//! than a layer. [`cycles`] finds the strongly connected groups of files. The test `no_crate_has_a_circle_of_files` checks every crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A crate's modules (`""` for its root, `flex::dropout` for `src/flex/dropout.rs`) and the
/// modules each imports.
type ImportGraph = BTreeMap<String, BTreeSet<String>>;

/// The module a source file holds, from its path under `src/`.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The paths a file names that start with `crate`, `super` or `self`, as segments, outside
/// `#[cfg(test)]` items.
#[derive(Default)]
struct LocalPaths {
    paths: Vec<Vec<String>>,
}

impl LocalPaths {
    fn push(&mut self, segments: Vec<String>) {
        if matches!(
            segments.first().map(String::as_str),
            Some("crate" | "super" | "self")
        ) {
            self.paths.push(segments);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => self.push(extend(prefix, &name.ident)),
            syn::UseTree::Rename(rename) => self.push(extend(prefix, &rename.ident)),
            syn::UseTree::Glob(_) => self.push(prefix.clone()),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

fn extend(prefix: &[String], ident: &syn::Ident) -> Vec<String> {
    let mut segments = prefix.to_vec();
    segments.push(ident.to_string());
    segments
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

impl<'ast> Visit<'ast> for LocalPaths {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(item) => &item.attrs,
            syn::Item::Fn(item) => &item.attrs,
            syn::Item::Impl(item) => &item.attrs,
            syn::Item::Use(item) => &item.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

/// The module a path names, resolved from `from`: the longest prefix that is a module.
fn resolve(from: &str, segments: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let mut base: Vec<&str> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").collect()
    };
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate") => base.clear(),
        Some("self") => {}
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            return resolve_under(&base, rest, modules);
        }
        _ => return None,
    }
    resolve_under(&base, &rest[1..], modules)
}

fn resolve_under(base: &[&str], rest: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let mut path: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    let mut found = Some(path.join("::")).filter(|m| modules.contains(m));
    for segment in rest {
        path.push(segment.clone());
        let candidate = path.join("::");
        if modules.contains(&candidate) {
            found = Some(candidate);
        } else {
            break;
        }
    }
    found
}

/// The import graph of the crate whose sources are in `src`.
fn import_graph(src: &Path) -> anyhow::Result<ImportGraph> {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|file| file.strip_prefix(src).ok())
        .map(module_of)
        .collect();
    let mut graph = ImportGraph::new();
    for file in &files {
        let Ok(relative) = file.strip_prefix(src) else {
            continue;
        };
        let module = module_of(relative);
        let text = std::fs::read_to_string(file)?;
        let parsed = syn::parse_file(&text)
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", file.display()))?;
        let mut paths = LocalPaths::default();
        paths.visit_file(&parsed);
        let imports = graph.entry(module.clone()).or_default();
        for segments in &paths.paths {
            // The crate root is the crate's face (its re-exports), not a layer of its own.
            if let Some(target) = resolve(&module, segments, &modules)
                && target != module
                && !target.is_empty()
            {
                imports.insert(target);
            }
        }
    }
    Ok(graph)
}

/// The groups of two or more modules that import each other, directly or round a circle
/// (Tarjan's strongly connected components).
fn cycles(graph: &ImportGraph) -> Vec<Vec<String>> {
    struct Search<'a> {
        graph: &'a ImportGraph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut group = Vec::new();
                while let Some(member) = self.stack.pop() {
                    group.push(member.to_string());
                    if member == node {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut search = Search {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !search.index.contains_key(node.as_str()) {
            search.visit(node);
        }
    }
    search.found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cargo::workspace_root;

    #[test]
    fn no_crate_has_a_circle_of_files() {
        let root = workspace_root();
        let mut sources: Vec<PathBuf> = rust_files(&root.join("crates"))
            .iter()
            .filter_map(|file| {
                let src = file.ancestors().find(|dir| dir.ends_with("src"))?;
                Some(src.to_path_buf())
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        sources.push(root.join("xtask/src"));
        assert!(sources.len() >= 8, "{sources:?}");
        let mut circles = Vec::new();
        for src in &sources {
            let graph = import_graph(src).unwrap();
            for group in cycles(&graph) {
                circles.push(format!("{}: {}", src.display(), group.join(" ↔ ")));
            }
        }
        assert!(
            circles.is_empty(),
            "files that import each other in a circle:\n{}",
            circles.join("\n")
        );
    }

    /// The two circles ft-bert had before issue 29, as the check reads them.
    #[test]
    fn a_circle_through_crate_and_super_paths_is_found() {
        let dir = tempfile_dir();
        let src = dir.join("src");
        let write = |name: &str, text: &str| {
            let path = src.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("lib.rs", "mod ops; mod flex; mod a; mod b; mod c;");
        write(
            "ops.rs",
            "pub fn key() {} fn f() { crate::flex::dropout::run(); }",
        );
        write("flex/mod.rs", "mod dropout;");
        write(
            "flex/dropout.rs",
            "pub fn run() { crate::ops::key(); } #[cfg(test)] mod tests { use crate::a::x; }",
        );
        write("a.rs", "use crate::b::y; pub fn x() {}");
        write("b.rs", "use super::c::z; pub fn y() {}");
        write("c.rs", "pub fn z() { crate::a::x() }");
        let graph = import_graph(&src).unwrap();
        assert_eq!(
            cycles(&graph),
            [
                vec!["a".to_string(), "b".to_string(), "c".to_string()],
                vec!["flex::dropout".to_string(), "ops".to_string()],
            ]
        );
        std::fs::write(src.join("c.rs"), "pub fn z() {}").unwrap();
        assert_eq!(cycles(&import_graph(&src).unwrap()).len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A fresh folder under the target directory (xtask has no tempfile).
    fn tempfile_dir() -> PathBuf {
        let dir = workspace_root()
            .join("target/xtask-imports-test")
            .join(format!("{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
