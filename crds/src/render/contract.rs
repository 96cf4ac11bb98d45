//! The plugin settings a sidecar reads, as the rendered `config.json` carries them. These types
//! belong to the operator→sidecar contract, not to the CRDs: `render` converts the CRD specs
//! into them, so a CRD may evolve (a renamed or restructured field, a new version) while the
//! rendered documents stay what running sidecars read, and any change to these documents shows
//! in the pinned `crds/tests/contract/` files. The value sets (where a parameter travels, path
//! match kinds, methods, tag fields) are shared with the CRDs and re-exported here, so the
//! sidecar imports everything it reads from this module.

use serde::{Deserialize, Serialize};

pub use crate::binding::{Method, PathMatch};
pub use crate::plugin::{
    AcceptIn, AppIdIn, CodeIn, ForwardFormat, ForwardIn, IDENTITY_HEADERS, Platform, PluginType,
    ProfileIn, ReturnIn, TagIn, WeChatTagField,
};
use crate::{binding, plugin};

/// Where the login code travels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CodeParam {
    #[serde(rename = "in")]
    pub location: CodeIn,
    pub name: String,
}

/// Where a login request may name its AppID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppIdParam {
    #[serde(rename = "in")]
    pub location: AppIdIn,
    pub name: String,
}

impl From<&plugin::AppIdParam> for AppIdParam {
    fn from(p: &plugin::AppIdParam) -> Self {
        Self {
            location: p.location,
            name: p.name.clone(),
        }
    }
}

/// The login credential: its name, where it is returned and accepted, its lifetime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSpec {
    pub name: String,
    pub return_in: ReturnIn,
    pub accept_in: AcceptIn,
    pub ttl_minutes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before_minutes: Option<u32>,
    pub key_rotation_days: u32,
    pub embed_session_key: bool,
}

/// How the identity reaches the app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardSpec {
    #[serde(rename = "in")]
    pub location: ForwardIn,
    pub format: ForwardFormat,
    pub name: String,
}

impl ForwardSpec {
    /// Every parameter name this plugin forwards to the app (and therefore strips from
    /// incoming requests).
    pub fn identity_names(&self) -> Vec<&str> {
        match self.format {
            ForwardFormat::Headers => IDENTITY_HEADERS.to_vec(),
            ForwardFormat::Json => vec![self.name.as_str()],
        }
    }
}

/// WeChat default tags of a login plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeChatTags {
    pub fields: Vec<WeChatTagField>,
    pub profile: ProfileParams,
}

/// Where the four profile parameters travel on a login request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileParams {
    pub raw_data: ProfileParam,
    pub signature: ProfileParam,
    pub encrypted_data: ProfileParam,
    pub iv: ProfileParam,
}

/// One profile parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileParam {
    #[serde(rename = "in")]
    pub location: ProfileIn,
    pub name: String,
}

/// Phone-number settings of a login plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneSpec {
    pub code: CodeParam,
    pub on_login: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    pub keep_in_credential: bool,
}

/// A Tag plugin: request parameters to tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagPlugin {
    pub rules: Vec<TagRule>,
}

/// One tag and the parameter it is read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagRule {
    pub from: TagSource,
    pub tag: String,
    pub trace_id: bool,
}

/// The request parameter of a tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagSource {
    #[serde(rename = "in")]
    pub location: TagIn,
    pub name: String,
}

/// The API a route matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ApiMatch {
    pub path: String,
    #[serde(rename = "match")]
    pub match_type: PathMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<Method>>,
}

impl From<&plugin::CodeParam> for CodeParam {
    fn from(c: &plugin::CodeParam) -> Self {
        Self {
            location: c.location,
            name: c.name.clone(),
        }
    }
}

impl From<&plugin::PhoneSpec> for PhoneSpec {
    fn from(p: &plugin::PhoneSpec) -> Self {
        Self {
            code: (&p.code).into(),
            on_login: p.on_login,
            paths: p.paths.clone(),
            keep_in_credential: p.keep_in_credential,
        }
    }
}

impl From<&plugin::SessionSpec> for SessionSpec {
    fn from(s: &plugin::SessionSpec) -> Self {
        Self {
            name: s.name.clone(),
            return_in: s.return_in,
            accept_in: s.accept_in,
            ttl_minutes: s.ttl_minutes,
            renew_before_minutes: s.renew_before_minutes,
            key_rotation_days: s.key_rotation_days,
            embed_session_key: s.embed_session_key,
        }
    }
}

impl From<&plugin::ForwardSpec> for ForwardSpec {
    fn from(f: &plugin::ForwardSpec) -> Self {
        Self {
            location: f.location,
            format: f.format,
            name: f.name.clone(),
        }
    }
}

impl From<&plugin::ProfileParam> for ProfileParam {
    fn from(p: &plugin::ProfileParam) -> Self {
        Self {
            location: p.location,
            name: p.name.clone(),
        }
    }
}

impl From<&plugin::WeChatTags> for WeChatTags {
    fn from(t: &plugin::WeChatTags) -> Self {
        let p = &t.profile;
        Self {
            fields: t.fields.clone(),
            profile: ProfileParams {
                raw_data: (&p.raw_data).into(),
                signature: (&p.signature).into(),
                encrypted_data: (&p.encrypted_data).into(),
                iv: (&p.iv).into(),
            },
        }
    }
}

impl From<&plugin::TagPlugin> for TagPlugin {
    fn from(t: &plugin::TagPlugin) -> Self {
        Self {
            rules: t
                .rules
                .iter()
                .map(|r| TagRule {
                    from: TagSource {
                        location: r.from.location,
                        name: r.from.name.clone(),
                    },
                    tag: r.tag.clone(),
                    trace_id: r.trace_id,
                })
                .collect(),
        }
    }
}

impl From<&binding::ApiMatch> for ApiMatch {
    fn from(a: &binding::ApiMatch) -> Self {
        Self {
            path: a.path.clone(),
            match_type: a.match_type,
            methods: a.methods.clone(),
        }
    }
}
