//! The operator→sidecar contract, pinned: the fixture `contract/manifests.yaml` renders to
//! exactly `contract/config.json` and `contract/secret.json` (the sidecar's tests read the same
//! files). A change to a CRD type that reaches the rendered documents fails here, so a contract
//! change is always deliberate: when it is, bump `render::FORMAT` if running sidecars could
//! misread the new documents, and write the files again with `WXGATE_UPDATE_CONTRACT=1 cargo
//! test -p wxgate-crds --test contract`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;

use wxgate_crds::manifests;
use wxgate_crds::render::{FORMAT, ServiceRef, render};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/contract")
        .join(name)
}

fn check(name: &str, rendered: &serde_json::Value) {
    let text = serde_json::to_string_pretty(rendered).unwrap() + "\n";
    if std::env::var_os("WXGATE_UPDATE_CONTRACT").is_some() {
        std::fs::write(path(name), &text).unwrap();
    }
    let pinned = std::fs::read_to_string(path(name)).unwrap();
    assert!(
        pinned == text,
        "the rendered {name} no longer matches crds/tests/contract/{name}: the operator→sidecar \
         contract changed. If that is deliberate, bump render::FORMAT when running sidecars could \
         misread it, then run WXGATE_UPDATE_CONTRACT=1 cargo test -p wxgate-crds --test contract.\n\
         rendered now:\n{text}"
    );
}

#[test]
fn the_fixture_renders_to_the_pinned_documents() {
    let text = std::fs::read_to_string(path("manifests.yaml")).unwrap();
    let objects = manifests::parse(&text).unwrap();
    let rendered = render(&ServiceRef::new("shop", "shop-api"), objects.inputs()).unwrap();
    assert_eq!(rendered.config.format, FORMAT);
    assert_eq!(rendered.config.plugins.len(), 2);
    assert_eq!(rendered.config.routes.len(), 4);
    check(
        "config.json",
        &serde_json::to_value(&rendered.config).unwrap(),
    );
    check(
        "secret.json",
        &serde_json::to_value(&rendered.secret).unwrap(),
    );
}
