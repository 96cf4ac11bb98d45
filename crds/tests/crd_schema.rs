//! The committed CRD YAML is exactly what the types generate, and every schema node is
//! structural (the API server rejects non-structural schemas).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;

use kube::CustomResourceExt;
use serde_json::Value;
use wxgate_crds::{GatewayPlugin, PluginBinding, crd};

/// The formats the API server knows (k8s.io/kube-openapi `strfmt` and the OpenAPI number
/// formats); any other draws `unrecognized format` warnings on every install.
const KNOWN_FORMATS: [&str; 8] = [
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "date-time",
    "date",
    "duration",
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn committed_crd_yaml_matches_the_types() {
    for (name, generated) in crd::files() {
        let path = repo_root().join(crd::CHART_TEMPLATES_DIR).join(name);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `cargo run -p wxgate-crds --bin crdgen`",
                path.display()
            )
        });
        assert!(
            committed == generated,
            "{} differs from the types; run `cargo run -p wxgate-crds --bin crdgen` and commit it",
            path.display()
        );
    }
}

/// Walks a schema node and collects the paths of nodes with no `type` (unless they are
/// int-or-string or preserve unknown fields on purpose).
fn non_structural(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        out.push(format!("{path}: not an object"));
        return;
    };
    let exempt = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !exempt {
        out.push(format!("{path}: no type"));
    }
    if let Some(format) = obj.get("format").and_then(Value::as_str)
        && !KNOWN_FORMATS.contains(&format)
    {
        out.push(format!(
            "{path}: format {format:?} the API server does not know"
        ));
    }
    for forbidden in ["anyOf", "oneOf", "allOf", "not", "$ref", "additionalItems"] {
        if let Some(v) = obj.get(forbidden) {
            // Structural schemas allow these only as pure value validations without types; we
            // generate none, so any occurrence is a mistake.
            out.push(format!("{path}: has {forbidden}: {v}"));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            non_structural(child, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = obj.get("items") {
        non_structural(items, &format!("{path}[]"), out);
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        non_structural(extra, &format!("{path}{{}}"), out);
    }
}

#[test]
fn every_schema_node_is_structural() {
    for crd in [GatewayPlugin::crd(), PluginBinding::crd()] {
        let crd = serde_json::to_value(crd).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut problems = Vec::new();
        non_structural(schema, "", &mut problems);
        assert!(
            problems.is_empty(),
            "{}: {problems:#?}",
            crd["metadata"]["name"]
        );
    }
}

#[test]
fn the_walk_catches_a_node_without_type() {
    let schema = serde_json::json!({"type": "object", "properties": {
        "ok": {"type": "string"},
        "free": {"x-kubernetes-preserve-unknown-fields": true},
        "port": {"x-kubernetes-int-or-string": true},
        "bad": {"description": "no type"},
        "count": {"type": "integer", "format": "uint32"},
        "list": {"type": "array", "items": {"anyOf": [{"type": "string"}]}}
    }});
    let mut problems = Vec::new();
    non_structural(&schema, "", &mut problems);
    assert_eq!(problems.len(), 4, "{problems:?}");
}

#[test]
fn descriptions_are_not_hard_wrapped() {
    fn walk(node: &Value, path: &str, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        Value::String(text)
                            if key == "description" && text != &crd::reflow(text) =>
                        {
                            out.push(path.to_owned())
                        }
                        _ => walk(value, &format!("{path}.{key}"), out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, path, out)),
            _ => {}
        }
    }
    for (name, crd) in crd::definitions() {
        let mut wrapped = Vec::new();
        walk(&crd, "", &mut wrapped);
        assert!(
            wrapped.is_empty(),
            "{name}: hard-wrapped descriptions at {wrapped:?}"
        );
    }
}

#[test]
fn every_field_has_a_description() {
    fn walk(node: &Value, path: &str, out: &mut Vec<String>) {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, child) in props {
            let p = format!("{path}.{name}");
            let standard = matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
            if !standard
                && child
                    .get("description")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                out.push(p.clone());
            }
            walk(child, &p, out);
            if let Some(items) = child.get("items") {
                walk(items, &format!("{p}[]"), out);
            }
        }
    }
    for crd in [GatewayPlugin::crd(), PluginBinding::crd()] {
        let crd = serde_json::to_value(crd).unwrap();
        let mut missing = Vec::new();
        walk(
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            "",
            &mut missing,
        );
        assert!(
            missing.is_empty(),
            "{} lacks descriptions: {missing:?}",
            crd["metadata"]["name"]
        );
    }
}

#[test]
fn names_printer_columns_and_status_follow_the_design() {
    let plugin = GatewayPlugin::crd();
    assert_eq!(plugin.spec.group, "wxgate.dev");
    assert_eq!(plugin.spec.scope, "Namespaced");
    assert_eq!(
        plugin.spec.names.short_names.as_deref(),
        Some(&["gwp".to_owned()][..])
    );
    assert_eq!(
        plugin.spec.names.categories.as_deref(),
        Some(&["wxgate".to_owned()][..])
    );
    let v = &plugin.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    let cols: Vec<_> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Type", "Ready", "Reason", "Age"]);
    assert!(
        v.subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );

    let binding = PluginBinding::crd();
    let v = &binding.spec.versions[0];
    let cols: Vec<_> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Plugin", "Target", "Programmed", "Reason", "Age"]);
    let json = serde_json::to_value(&binding).unwrap();
    let conditions = &json["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        ["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(
        conditions["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
}
