//! The CustomResourceDefinitions as YAML, generated from the types. `crdgen` writes them into
//! the CRD chart; a test fails when the committed files differ.

use kube::CustomResourceExt;
use serde_json::Value;

use crate::{GatewayPlugin, PluginBinding};

/// Where the CRD chart keeps the generated files, relative to the repository root.
pub const CHART_TEMPLATES_DIR: &str = "charts/wxgate-crds/templates";

const HEADER: &str = "# Generated from the wxgate-crds types by `cargo run -p wxgate-crds --bin crdgen`. Do not edit.\n";

/// Each CRD as (file name, definition), with every description reflowed (see [`reflow`]).
pub fn definitions() -> Vec<(&'static str, Value)> {
    // Serializing a CRD (plain maps, strings, numbers) cannot fail.
    let json = |crd| serde_json::to_value(crd).unwrap_or_else(|e| panic!("CRD to JSON: {e}"));
    let mut crds = vec![
        ("gatewayplugins.yaml", json(GatewayPlugin::crd())),
        ("pluginbindings.yaml", json(PluginBinding::crd())),
    ];
    for (_, crd) in &mut crds {
        reflow_descriptions(crd);
    }
    crds
}

/// Each CRD as (file name, YAML text).
pub fn files() -> Vec<(&'static str, String)> {
    definitions()
        .into_iter()
        .map(|(name, crd)| (name, to_yaml(&crd)))
        .collect()
}

fn to_yaml(value: &Value) -> String {
    let body = serde_saphyr::to_string(value).unwrap_or_else(|e| panic!("CRD to YAML: {e}"));
    format!("{HEADER}{body}")
}

fn reflow_descriptions(node: &mut Value) {
    match node {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => *text = reflow(text),
                    _ => reflow_descriptions(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(reflow_descriptions),
        _ => {}
    }
}

/// Undoes the hard wrapping of doc comments, so `kubectl explain` can wrap a description to
/// its terminal: lines of one paragraph are joined with a space; blank lines (paragraphs) and
/// lines starting a list item (`- `, `* `, `1. `) stay where they are.
pub fn reflow(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let starts_item = line.starts_with("- ")
            || line.starts_with("* ")
            || line
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if i > 0 {
            if line.is_empty() || out.ends_with('\n') || starts_item {
                out.push('\n');
            } else {
                out.push(' ');
                out.push_str(line.trim_start());
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::reflow;

    #[test]
    fn joins_wrapped_lines_and_keeps_paragraphs_and_lists() {
        assert_eq!(reflow("one line"), "one line");
        assert_eq!(reflow("wrapped\nsentence."), "wrapped sentence.");
        assert_eq!(
            reflow("first\nparagraph.\n\nsecond\none."),
            "first paragraph.\n\nsecond one."
        );
        assert_eq!(
            reflow("a list:\n- one\n  more\n- two\n1. three"),
            "a list:\n- one more\n- two\n1. three"
        );
    }
}
