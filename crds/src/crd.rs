//! The CustomResourceDefinitions as YAML, generated from the types. `crdgen` writes them into
//! the CRD chart; a test fails when the committed files differ.

use kube::CustomResourceExt;

use crate::{GatewayPlugin, PluginBinding};

/// Where the CRD chart keeps the generated files, relative to the repository root.
pub const CHART_TEMPLATES_DIR: &str = "charts/wxgate-crds/templates";

const HEADER: &str = "# Generated from the wxgate-crds types by `cargo run -p wxgate-crds --bin crdgen`. Do not edit.\n";

/// Each CRD as (file name, YAML text).
pub fn files() -> Vec<(&'static str, String)> {
    vec![
        ("gatewayplugins.yaml", to_yaml(&GatewayPlugin::crd())),
        ("pluginbindings.yaml", to_yaml(&PluginBinding::crd())),
    ]
}

fn to_yaml<T: serde::Serialize>(value: &T) -> String {
    // Serializing a CRD (plain maps, strings, numbers) cannot fail.
    let body = serde_saphyr::to_string(value).unwrap_or_else(|e| panic!("CRD to YAML: {e}"));
    format!("{HEADER}{body}")
}
