//! The operator→sidecar contract: what the operator writes into ConfigMap `wxgate-<service>`
//! (non-secret) and Secret `wxgate-<service>` (APPIDs, APPSECRETs, credential keys), and what
//! the sidecar reads. Serde only, versioned by [`FORMAT`]; the plugin settings are the
//! contract's own types ([`super::contract`]), converted from the CRD specs by `render`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::KeyRing;
use crate::plugin::MAX_TAGS;
use crate::render::contract::{
    ApiMatch, AppIdParam, CodeParam, ForwardSpec, PhoneSpec, Platform, PluginType, SessionSpec,
    TagPlugin, WeChatTags,
};
use crate::secret::SecretString;

/// Format of the rendered documents; bumped on any incompatible change.
pub const FORMAT: u32 = 1;
/// ConfigMap data entry holding the [`RenderedConfig`] as JSON.
pub const CONFIG_ENTRY: &str = "config.json";
/// Secret data entry holding the [`RenderedSecret`] as JSON.
pub const SECRET_ENTRY: &str = "secret.json";

/// Name of the ConfigMap and of the Secret rendered for a Service.
pub fn rendered_object_name(service: &str) -> String {
    format!("wxgate-{service}")
}

/// The Service a config is rendered for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
}

impl ServiceRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Non-secret config of one bound Service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedConfig {
    /// [`FORMAT`] at the time of rendering.
    pub format: u32,
    /// Content hash (16 hex characters): changes exactly when the content does.
    pub version: String,
    pub service: ServiceRef,
    /// Plugins by `<namespace>/<name>`.
    pub plugins: BTreeMap<String, RenderedPlugin>,
    /// Routes in precedence order: for each plugin type, the first route that matches a
    /// request decides which plugin of that type applies.
    pub routes: Vec<Route>,
}

/// Settings of one plugin, without anything secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RenderedPlugin {
    WeChatMpLogin(Box<LoginConfig>),
    Tag(TagPlugin),
}

impl RenderedPlugin {
    pub fn plugin_type(&self) -> PluginType {
        match self {
            RenderedPlugin::WeChatMpLogin(_) => PluginType::WeChatMpLogin,
            RenderedPlugin::Tag(_) => PluginType::Tag,
        }
    }
}

/// Settings of a WeChatMpLogin plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginConfig {
    pub code: CodeParam,
    /// Exact login paths; absent: any bound request carrying the code is a login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_paths: Option<Vec<String>>,
    pub session: SessionSpec,
    pub forward: ForwardSpec,
    /// WeChat default tags, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<WeChatTags>,
    /// Phone-number settings, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneSpec>,
    /// Served on the sidecar's open-API port.
    #[serde(default)]
    pub open_api: bool,
    /// The mini program platform (absent: WeChat).
    #[serde(default, skip_serializing_if = "Platform::is_wechat")]
    pub platform: Platform,
    /// Where a login request may name its AppID (before the Referer), when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id_param: Option<AppIdParam>,
}

/// One bound route: which plugin applies to which requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// `<namespace>/<name>` of the PluginBinding.
    pub binding: String,
    /// `<namespace>/<name>` of the GatewayPlugin (a key of `plugins`).
    pub plugin: String,
    #[serde(rename = "type")]
    pub plugin_type: PluginType,
    /// The API matched; absent: every request to the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiMatch>,
}

/// Secret config of one bound Service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedSecret {
    pub format: u32,
    /// Content hash (16 hex characters) of the secret material.
    pub version: String,
    /// Per WeChatMpLogin plugin, by `<namespace>/<name>`.
    pub plugins: BTreeMap<String, PluginSecret>,
}

/// What a login plugin needs that must stay secret. The first mini program's AppID and
/// APPSECRET are `appId` and `appSecret` (all a one-app plugin has, as before `apps` existed);
/// the others, in the plugin's order, are `moreApps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSecret {
    pub app_id: String,
    pub app_secret: SecretString,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_apps: Vec<AppCredentials>,
    pub keys: KeyRing,
}

impl PluginSecret {
    /// Every mini program of the plugin, the first one first.
    pub fn apps(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        std::iter::once((self.app_id.as_str(), &self.app_secret)).chain(
            self.more_apps
                .iter()
                .map(|a| (a.app_id.as_str(), &a.app_secret)),
        )
    }
}

/// The AppID and APPSECRET of one more mini program of a login plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppCredentials {
    pub app_id: String,
    pub app_secret: SecretString,
}

/// 16 hex characters of the SHA-256 of a value's JSON form: a version that changes exactly
/// when the content does.
pub(crate) fn content_version<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

impl RenderedConfig {
    /// A note when one request of this Service could be due more than [`MAX_TAGS`] tags: the
    /// most WeChat tag fields of one login plugin plus the most rules of one Tag plugin (an
    /// upper bound: it assumes their routes can meet on one request). The sidecar sends the
    /// first 16, the login plugin's first, and drops the rest.
    pub fn tag_overflow(&self) -> Option<String> {
        let most = |count: fn(&RenderedPlugin) -> usize| {
            self.plugins.values().map(count).max().unwrap_or(0)
        };
        let fields = most(|p| match p {
            RenderedPlugin::WeChatMpLogin(c) => c.tags.as_ref().map_or(0, |t| t.fields.len()),
            RenderedPlugin::Tag(_) => 0,
        });
        let rules = most(|p| match p {
            RenderedPlugin::Tag(t) => t.rules.len(),
            RenderedPlugin::WeChatMpLogin(_) => 0,
        });
        (fields > 0 && rules > 0 && fields + rules > MAX_TAGS).then(|| {
            format!(
                "a request may be due {} tags ({fields} WeChat tag fields + {rules} Tag rules); \
                 only the first {MAX_TAGS} reach the app, the Tag plugin's are dropped first",
                fields + rules
            )
        })
    }

    /// Sets `version` from the content.
    pub(crate) fn seal(mut self) -> Self {
        self.version.clear();
        self.version = content_version(&self);
        self
    }
}

impl RenderedSecret {
    pub(crate) fn seal(mut self) -> Self {
        self.version.clear();
        self.version = content_version(&self);
        self
    }
}
