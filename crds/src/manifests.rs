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
                .push(typed(doc).map_err(|e| err(format!("GatewayPlugin {e}")))?),
            (crate::GROUP, "PluginBinding") => objects
                .bindings
                .push(typed(doc).map_err(|e| err(format!("PluginBinding {e}")))?),
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

/// A document as a wxgate type; the error names the field (`spec.session.ttlMinutes`) and says
/// in plain words what is wrong with it.
fn typed<T: serde::de::DeserializeOwned>(doc: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let problem = plain(&e.inner().to_string());
        if path == "." {
            problem
        } else {
            format!("field {path}: {problem}")
        }
    })
}

/// serde's wording in a user's terms: `invalid type: integer `5`, expected a string` becomes
/// `expected a string, got integer `5``; `missing field `x`` and the rest stay as they are.
fn plain(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((got, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            let expected = match expected {
                "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" | "isize" => {
                    "a whole number"
                }
                "a sequence" => "a list",
                "a map" => "an object",
                e if e.starts_with("struct ") => "an object",
                e => e,
            };
            let got = got
                .replace("unit value", "null")
                .replace("sequence", "a list")
                .replace("map", "an object");
            return format!("expected {expected}, got {got}");
        }
    }
    message.to_owned()
}

/// YAML errors may echo the offending line; drop anything after the position.
fn redact(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(yaml: &str) -> String {
        match parse(yaml) {
            Ok(_) => panic!("{yaml} parsed"),
            Err(e) => e.to_string(),
        }
    }

    const PLUGIN: &str = "apiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: { name: p }\nspec:\n  type: WeChatMpLogin\n  wechatMpLogin:\n    credentialsSecretRef: { name: s }\n";

    #[test]
    fn errors_name_the_field_in_plain_words() {
        assert_eq!(
            problem(&format!("{PLUGIN}    appId: 5\n")),
            "document 0: GatewayPlugin field spec.wechatMpLogin.appId: expected a string, got integer `5`"
        );
        assert_eq!(
            problem(&format!("{PLUGIN}    session: {{ ttlMinutes: soon }}\n")),
            "document 0: GatewayPlugin field spec.wechatMpLogin.session.ttlMinutes: expected a whole number, got string \"soon\""
        );
        assert_eq!(
            problem(
                "apiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: b }\nspec: { pluginRef: { name: }, targetRef: { name: x } }\n"
            ),
            "document 0: PluginBinding field spec.pluginRef.name: expected a string, got null"
        );
        let secret =
            problem("apiVersion: v1\nkind: Secret\nmetadata: { name: s }\ndata: { k: 5 }\n");
        assert!(
            !secret.contains('5'),
            "a Secret's value is never quoted: {secret}"
        );
    }
}
