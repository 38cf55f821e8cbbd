//! The rule "which crate may call which" of docs/ARCHITECTURE.md, checked against every crate's
//! `Cargo.toml`: a crate's `[dependencies]` may name fleetd crates of lower layers only, every
//! crate is placed in a layer, and the pure domain crate takes no IO library.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first; a crate may depend on crates of lower layers only. Crates listed
/// here need not exist yet; only those in crates/ are checked.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["fleet-core", "fleet-config"]),
    ("infrastructure", &["fleet-db", "fleet-embedded-pg", "fleet-tracksolid"]),
    (
        "services",
        &[
            "fleet-accounts",
            "fleet-ingest",
            "fleet-analytics",
            "fleet-ops",
            "fleet-sim",
            "fleet-notify",
        ],
    ),
    ("API", &["fleet-http"]),
    ("pages", &["fleet-web"]),
    ("binaries and harness", &["fleetd", "fleet-bench", "fleet-testkit"]),
];

/// Libraries that do IO, which the domain crate must not take.
const IO_LIBRARIES: &[&str] = &["sqlx", "tokio", "reqwest", "axum", "hyper", "nix"];

fn layer_of(krate: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, crates)| crates.contains(&krate))
}

/// What is wrong with `krate` depending on `deps` (names from its `[dependencies]`).
fn violations(krate: &str, deps: &[String]) -> Vec<String> {
    let Some(own) = layer_of(krate) else {
        return vec![format!("{krate} is in no layer of docs/ARCHITECTURE.md's table")];
    };
    let mut found = Vec::new();
    for dep in deps {
        match layer_of(dep) {
            Some(l) if l >= own => found.push(format!(
                "{krate} ({} layer) may not depend on {dep} ({} layer)",
                LAYERS[own].0, LAYERS[l].0
            )),
            None if dep.starts_with("fleet") => {
                found.push(format!("{krate} depends on {dep}, which is in no layer"))
            }
            _ => {}
        }
        if krate == "fleet-core" && IO_LIBRARIES.contains(&dep.as_str()) {
            found.push(format!("fleet-core is pure and may not depend on {dep}"));
        }
    }
    found
}

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every crate under crates/: its package name and the names of its normal dependencies.
fn workspace_crates() -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(crates_dir()).expect("crates/") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let doc: toml::Table = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not TOML: {e}", manifest.display()));
        let name = doc["package"]["name"].as_str().expect("package.name").to_owned();
        let deps = doc
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        out.insert(name, deps);
    }
    out
}

#[test]
fn every_crate_calls_only_the_layers_below_it() {
    let crates = workspace_crates();
    assert!(crates.len() >= 10, "found the crates: {:?}", crates.keys());
    let problems: Vec<String> =
        crates.iter().flat_map(|(name, deps)| violations(name, deps)).collect();
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_rule_refuses_upward_sideways_and_impure_dependencies() {
    let deps = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert!(violations("fleet-db", &deps(&["fleet-config", "sqlx"])).is_empty());
    assert!(
        violations("fleet-accounts", &deps(&["fleet-core", "fleet-config", "fleet-db"])).is_empty()
    );
    assert_eq!(violations("fleet-db", &deps(&["fleet-http"])).len(), 1, "upwards");
    assert_eq!(violations("fleet-ingest", &deps(&["fleet-analytics"])).len(), 1, "sideways");
    assert_eq!(violations("fleet-http", &deps(&["fleetd"])).len(), 1, "into the binary");
    assert_eq!(violations("fleet-core", &deps(&["tokio"])).len(), 1, "IO in the domain");
    assert_eq!(violations("fleet-new", &deps(&[])).len(), 1, "a crate must be placed");
}

#[test]
fn the_architecture_document_places_every_crate_of_the_rule() {
    let doc = std::fs::read_to_string(crates_dir().join("../docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md");
    let table = doc.split("### Which crate may call which").nth(1).expect("the rule's section");
    for (layer, crates) in LAYERS {
        let row = table
            .lines()
            .find(|l| l.contains(&format!(" {layer} |")))
            .unwrap_or_else(|| panic!("a row for the {layer} layer"));
        for krate in *crates {
            assert!(row.contains(&format!("`{krate}`")), "{krate} in the {layer} row: {row}");
        }
    }
}
