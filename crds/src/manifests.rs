//! Reading the YAML manifests a user would `kubectl apply`: GatewayPlugins, PluginBindings and
//! Secrets, several documents per file. Used by the sidecar's standalone mode and by tests.

use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

use crate::binding::PluginBinding;
use crate::plugin::GatewayPlugin;

/// The objects render needs, as read from manifests.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub plugins: Vec<GatewayPlugin>,
    pub bindings: Vec<PluginBinding>,
    pub secrets: Vec<Secret>,
}

impl Objects {
    pub fn inputs(&self) -> crate::render::Inputs<'_> {
        crate::render::Inputs {
            plugins: &self.plugins,
            bindings: &self.bindings,
            secrets: &self.secrets,
        }
    }

    pub fn extend(&mut self, other: Objects) {
        self.plugins.extend(other.plugins);
        self.bindings.extend(other.bindings);
        self.secrets.extend(other.secrets);
    }
}

/// Why a manifest cannot be read. Messages never quote Secret values.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not YAML: {0}")]
    Yaml(String),
    #[error("document {index}: {message}")]
    Document { index: usize, message: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Parses every document of one YAML text. Documents of other kinds (a Deployment kept beside
/// the plugin, say) are skipped; a wxgate or Secret document that does not parse is an error.
pub fn parse(yaml: &str) -> Result<Objects, ManifestError> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml)
        .map_err(|e| ManifestError::Yaml(redact(&e.to_string())))?;
    let mut objects = Objects::default();
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let err = |message: String| ManifestError::Document { index, message };
        let meta = TypeMeta::deserialize(&doc).map_err(|e| err(e.to_string()))?;
        let group = meta.api_version.split_once('/').map_or("", |(g, _)| g);
        match (group, meta.kind.as_str()) {
            (crate::GROUP, "GatewayPlugin") => objects
                .plugins
                .push(serde_json::from_value(doc).map_err(|e| err(format!("GatewayPlugin: {e}")))?),
            (crate::GROUP, "PluginBinding") => objects
                .bindings
                .push(serde_json::from_value(doc).map_err(|e| err(format!("PluginBinding: {e}")))?),
            ("", "Secret") if meta.api_version == "v1" => objects.secrets.push(
                // serde's message for a bad Secret could quote a value: keep only its position.
                serde_json::from_value(doc).map_err(|e| {
                    err(format!(
                        "Secret: invalid at line {} column {}",
                        e.line(),
                        e.column()
                    ))
                })?,
            ),
            (crate::GROUP, kind) => return Err(err(format!("unknown wxgate kind {kind:?}"))),
            _ => {}
        }
    }
    Ok(objects)
}

/// YAML errors may echo the offending line; drop anything after the position.
fn redact(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}
