//! The architecture's dependency rule, checked: core ← store ← service ← http ← the binary,
//! pdf a leaf. The HTTP edge sees only what the service returns: it cannot name a store
//! type, because it does not depend on the store and the service re-exports none of it.

use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace crates a crate's `[dependencies]` section names (dev-dependencies are
/// free to reach further: tests look underneath).
fn workspace_dependencies(krate: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(crates_dir().join(krate).join("Cargo.toml")).unwrap();
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps
            && line.starts_with("signeur")
            && let Some(name) = line.split(['.', ' ', '=']).next()
        {
            out.push(name.to_string());
        }
    }
    out.sort();
    out
}

fn rust_sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path, text));
        }
    }
    out
}

#[test]
fn dependencies_point_one_way() {
    let expected: &[(&str, &[&str])] = &[
        ("signeur-core", &[]),
        ("signeur-pdf", &[]),
        // Integrators depend on it: it must stay free of the server.
        ("signeur-webhook", &[]),
        ("signeur-store", &["signeur-core"]),
        (
            "signeur-service",
            // The service signs webhook deliveries with the integrators' verifier crate.
            &[
                "signeur-core",
                "signeur-pdf",
                "signeur-store",
                "signeur-webhook",
            ],
        ),
        ("signeur-http", &["signeur-core", "signeur-service"]),
    ];
    for (krate, deps) in expected {
        assert_eq!(
            workspace_dependencies(krate),
            deps.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "{krate}'s [dependencies] break the rule core ← store ← service ← http (pdf and webhook leaves)"
        );
    }
}

#[test]
fn the_service_hands_out_no_store_types() {
    for (path, text) in rust_sources(&crates_dir().join("signeur-service/src")) {
        for banned in [
            "pub use signeur_store",
            "pub db:",
            "pub blobs:",
            "pub mod store",
        ] {
            assert!(
                !text.contains(banned),
                "{} has `{banned}`: the service returns its own read models, never the store's rows or handles",
                path.display()
            );
        }
    }
}

#[test]
fn the_http_edge_never_names_the_store() {
    for (path, text) in rust_sources(&crates_dir().join("signeur-http/src")) {
        for banned in ["signeur_store", "store::", "sqlx"] {
            assert!(
                !text.contains(banned),
                "{} names `{banned}`: handlers call the service and render what it returns",
                path.display()
            );
        }
    }
}

/// The service's modules (one per use case) import each other one way only: no module
/// uses one that uses it back, however far round.
#[test]
fn service_modules_import_without_cycles() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = crates_dir().join("signeur-service/src");
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in rust_sources(&src) {
        let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let module = module.to_string();
        let mut targets = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                targets.insert(name);
            }
        }
        uses.entry(module).or_default().extend(targets);
    }
    for (start, direct) in &uses {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = direct
            .iter()
            .map(|d| (d.clone(), vec![d.clone()]))
            .collect();
        while let Some((m, path)) = stack.pop() {
            assert!(
                &m != start,
                "signeur-service: {start} -> {} imports back into {start}",
                path.join(" -> ")
            );
            if seen.insert(m.clone()) {
                for next in uses.get(&m).into_iter().flatten() {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
}

/// Nothing public in the service takes or returns a store row or transaction: callers get
/// read models (`model.rs`). (`Service::new` takes the database and blob handles: the binary
/// assembles the service from them.)
#[test]
fn the_service_api_speaks_read_models() {
    for (path, text) in rust_sources(&crates_dir().join("signeur-service/src")) {
        let mut rest = text.as_str();
        while let Some(i) = rest.find("pub ") {
            let item = &rest[i..];
            let is_public_item = ["pub fn ", "pub async fn ", "pub struct ", "pub enum "]
                .iter()
                .any(|p| item.starts_with(p))
                || item[4..].split_once(':').is_some_and(|(name, _)| {
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                });
            // The signature or field up to its body (or the end of a field).
            let end = item.find(['{', ';', ',']).unwrap_or(item.len());
            let head = &item[..end];
            if is_public_item {
                for banned in ["Row", "Tx", "signeur_store::"] {
                    assert!(
                        !head.contains(banned),
                        "{}: public `{}` names a store type ({banned})",
                        path.display(),
                        head.trim()
                    );
                }
            }
            rest = &item[4..];
        }
    }
}

/// A use case with a transaction open reads through it (`tx.…`), never through the pool
/// (`self.db.…`): on PostgreSQL, once as many requests hold a transaction as the pool has
/// connections, each would wait for a second connection that never comes (issue 14).
#[test]
fn no_pool_read_while_a_transaction_is_open() {
    let mut offenders = Vec::new();
    for (path, text) in rust_sources(&crates_dir().join("signeur-service/src")) {
        let mut open_since: Option<usize> = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with("//") {
                continue;
            }
            if line.contains(".db.begin()") {
                open_since = Some(i + 1);
                continue;
            }
            let new_fn = line.starts_with("fn ")
                || line.starts_with("async fn ")
                || (line.starts_with("pub") && line.contains(" fn "));
            if line.contains("tx.commit()") || new_fn {
                open_since = None;
                continue;
            }
            if let Some(since) = open_since
                && line.contains(".db.")
            {
                offenders.push(format!(
                    "{}:{} (transaction opened on line {since}): {line}",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
