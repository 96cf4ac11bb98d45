//! `GatewayPlugin`: what a plugin does (WeChat Mini Program login, or tags) and where its
//! parameters travel.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Status;
use crate::validate;

mod validation;

/// Longest credential lifetime: 30 days.
pub const MAX_TTL_MINUTES: u32 = 43_200;
/// Longest key rotation period: one year.
pub const MAX_KEY_ROTATION_DAYS: u32 = 365;
/// At most this many tags per request (TSF's limit).
pub const MAX_TAGS: usize = 16;
pub use crate::validate::MAX_TAG_NAME_BYTES;
/// At most this many mini programs per login plugin.
pub const MAX_APPS: usize = 16;
/// An AppID of a supported platform: WeChat's (`wx` and 16 lowercase hex digits) or QQ's (6 to
/// 20 digits); validation checks it against the plugin's `platform`.
pub const APPID_PATTERN: &str = "^(wx[0-9a-f]{16}|[1-9][0-9]{5,19})$";

/// Specification of a GatewayPlugin.
// Each printcolumn(...) repeats `type_ = "string"`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "wxgate.dev",
    version = "v1alpha1",
    kind = "GatewayPlugin",
    namespaced,
    status = "Status",
    derive = "PartialEq",
    shortname = "gwp",
    category = "wxgate",
    annotation("helm.sh/resource-policy", "keep"),
    doc = "A wxgate gateway plugin: WeChat Mini Program login (WeChatMpLogin) or request tags (Tag). Bind it to a Service with a PluginBinding.",
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".spec.type",
        description = "Plugin type"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the plugin is valid and its references resolve"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Why the plugin is (not) ready",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self.type == 'WeChatMpLogin' ? (has(self.wechatMpLogin) && !has(self.tag)) : (has(self.tag) && !has(self.wechatMpLogin))").message("set exactly the settings block of the plugin's type: wechatMpLogin for WeChatMpLogin, tag for Tag").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new("!has(self.wechatMpLogin) || (has(self.wechatMpLogin.credentialsSecretRef) != (has(self.wechatMpLogin.apps) && size(self.wechatMpLogin.apps) > 0))").message("wechatMpLogin needs credentialsSecretRef (one mini program) or apps (several), not both").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new("!has(self.wechatMpLogin) || !has(self.wechatMpLogin.appId) || has(self.wechatMpLogin.credentialsSecretRef)").message("wechatMpLogin.appId goes with credentialsSecretRef; with apps, set each app's appId").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct GatewayPluginSpec {
    /// What the plugin does: `WeChatMpLogin` (WeChat Mini Program login and credential
    /// verification) or `Tag` (request parameters to tags).
    #[serde(rename = "type")]
    pub plugin_type: PluginType,
    /// Free text for people reading the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// Settings of a `WeChatMpLogin` plugin; required when `type` is `WeChatMpLogin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_mp_login: Option<WeChatMpLogin>,
    /// Settings of a `Tag` plugin; required when `type` is `Tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagPlugin>,
}

/// Plugin type.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum PluginType {
    /// WeChat Mini Program login: code exchange, credential issue and verification.
    WeChatMpLogin,
    /// Request parameters to tags.
    Tag,
}

/// WeChat Mini Program login settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeChatMpLogin {
    /// The platform of the mini programs: `wechat` (the default; `wx.login()`, code2Session at
    /// api.weixin.qq.com) or `qq` (QQ mini programs: `qq.login()`, code2Session at
    /// api.q.qq.com, AppIDs of digits). The login flow, credential, locations, tags and error
    /// codes are the same; `phone` and `openApi` are WeChat's only.
    #[serde(default)]
    pub platform: Platform,
    /// The mini program's AppID (`wx` and 16 hex digits; for QQ, digits). When absent, it is
    /// read from the `appIdKey` entry of `credentialsSecretRef`. For several mini programs, use
    /// `apps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = APPID_PATTERN))]
    pub app_id: Option<String>,
    /// The Secret (in the plugin's namespace) holding the APPSECRET and, unless `appId` is set,
    /// the AppID. The APPSECRET is never written in a custom resource. Set this (one mini
    /// program) or `apps` (several), not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// Several mini programs sharing this login (a main app, a lite version, a mini game), each
    /// with its AppID and Secret. A login request names its AppID in the `Referer` WeChat sets
    /// (`https://servicewechat.com/{appid}/{version}/page-frame.html`) or in `appIdParam`; a
    /// credential verifies for any listed AppID, and the app receives the request's AppID in
    /// `X-WX-APPID`. At most 16; instead of `appId` and `credentialsSecretRef`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_APPS))]
    pub apps: Vec<MiniProgram>,
    /// Where a login request may name its AppID, read before the `Referer` (e.g. a header set by
    /// a client whose requests carry no WeChat Referer). Only an AppID of this plugin is
    /// accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id_param: Option<AppIdParam>,
    /// Where the mini program sends the `js_code` from `wx.login()` on a login request.
    #[serde(default)]
    pub code: CodeParam,
    /// Which requests are login requests. Absent: any bound request that carries the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginSpec>,
    /// The login-state credential wxgate issues after a successful login.
    #[serde(default)]
    pub session: SessionSpec,
    /// How the WeChat identity is handed to the app.
    #[serde(default)]
    pub forward: ForwardSpec,
    /// WeChat default tags for gray release and trace search (`x-wxgate-tag-<name>` headers
    /// and `baggage` entries on every bound request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<WeChatTags>,
    /// The user's phone number: the sidecar exchanges the phone code from the mini program's
    /// `getPhoneNumber` button with WeChat (each successful exchange is paid) and hands the
    /// number to the app in `X-WX-PHONE-NUMBER` and `X-WX-PHONE-COUNTRY-CODE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneSpec>,
    /// Serve this AppID on the sidecar's open-API port (pod loopback only): the app calls any
    /// WeChat server API there without an access_token and the sidecar adds the AppID's.
    #[serde(default)]
    pub open_api: bool,
}

/// One mini program of a login plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MiniProgram {
    /// Its AppID (of the plugin's platform); when absent, read from the `appIdKey` entry of
    /// `credentialsSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = APPID_PATTERN))]
    pub app_id: Option<String>,
    /// The Secret (in the plugin's namespace) holding its APPSECRET (and, without `appId`, its
    /// AppID).
    pub credentials_secret_ref: CredentialsSecretRef,
}

/// A mini program platform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// WeChat mini programs.
    #[default]
    WeChat,
    /// QQ mini programs.
    #[serde(rename = "qq")]
    QQ,
}

impl Platform {
    pub fn is_wechat(&self) -> bool {
        *self == Platform::WeChat
    }

    /// Whether `s` is an AppID of this platform: WeChat's `wx` and 16 lowercase hex digits,
    /// QQ's 6 to 20 digits (no leading zero).
    pub fn is_app_id(self, s: &str) -> bool {
        match self {
            Platform::WeChat => validate::is_app_id(s),
            Platform::QQ => {
                (6..=20).contains(&s.len())
                    && !s.starts_with('0')
                    && s.bytes().all(|b| b.is_ascii_digit())
            }
        }
    }

    /// What an AppID of this platform looks like, for error messages.
    pub fn app_id_shape(self) -> &'static str {
        match self {
            Platform::WeChat => "wx followed by 16 lowercase hex digits",
            Platform::QQ => "6 to 20 digits (a QQ mini program AppID)",
        }
    }

    /// The host in the `Referer` of the platform's mini program requests
    /// (`https://{host}/{appid}/{version}/page-frame.html`).
    pub fn referer_host(self) -> &'static str {
        match self {
            Platform::WeChat => "servicewechat.com",
            Platform::QQ => "appservice.qq.com",
        }
    }
}

/// Where a login request names its AppID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppIdParam {
    /// `header` or `query`.
    #[serde(rename = "in", default)]
    pub location: AppIdIn,
    /// Parameter name, e.g. `x-mp-appid`.
    #[schemars(length(min = 1, max = 64), regex(pattern = validate::TOKEN_PATTERN))]
    pub name: String,
}

/// Location of the AppID parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppIdIn {
    /// A request header.
    #[default]
    Header,
    /// A query parameter.
    Query,
}

impl WeChatMpLogin {
    /// The plugin's mini programs: `apps`, or the single `appId`/`credentialsSecretRef` as a
    /// list of one (none when neither is set, which validation refuses).
    pub fn mini_programs(&self) -> Vec<MiniProgram> {
        match &self.credentials_secret_ref {
            Some(secret) => vec![MiniProgram {
                app_id: self.app_id.clone(),
                credentials_secret_ref: secret.clone(),
            }],
            None => self.apps.clone(),
        }
    }
}

/// Phone-number settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneSpec {
    /// Where the phone code travels (default: header `phone_code`); `body` needs `login.paths`
    /// or `paths`, and is read only on those requests.
    #[serde(default = "default_phone_code")]
    pub code: CodeParam,
    /// Whether a phone code sent along a login request is exchanged (default true); the login
    /// then fails when the phone code does.
    #[serde(default = "default_true")]
    pub on_login: bool,
    /// Exact paths where a logged-in user sends a phone code ("bind phone" after a silent
    /// login); the credential is verified first and the code is required there. They must be
    /// covered by the binding, and differ from `login.paths`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(min = 1, max = 1024), regex(pattern = "^/"))
    )]
    pub paths: Vec<String>,
    /// After the app answers 2xx to a request that carried a phone code, issue a credential
    /// that also holds the phone number, so later requests carry it (default false; the
    /// credential grows by about 40 bytes).
    #[serde(default)]
    pub keep_in_credential: bool,
}

fn default_phone_code() -> CodeParam {
    CodeParam {
        location: CodeIn::Header,
        name: "phone_code".into(),
    }
}

fn default_true() -> bool {
    true
}

/// WeChat default tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeChatTags {
    /// Tags to add. `appid`, `openid`, `unionid`, and `bucket` (a stable 0-99 number from the
    /// openid, for percentage canaries) come from the verified identity; `version`, `channel`
    /// and `referer` from the request's `Referer` (a hint any client can forge: they route
    /// traffic, they never grant anything); `nickName`, `gender`,
    /// `language`, `city`, `province`, `country` only from profile data WeChat vouches for on the
    /// login request, kept in the credential. Tag names are the lowercase field names.
    #[schemars(length(min = 1, max = 13))]
    pub fields: Vec<WeChatTagField>,
    /// Where a login request carries WeChat's profile data.
    #[serde(default)]
    pub profile: ProfileParams,
}

/// A WeChat default tag.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum WeChatTagField {
    #[serde(rename = "appid")]
    AppId,
    #[serde(rename = "openid")]
    OpenId,
    #[serde(rename = "unionid")]
    UnionId,
    #[serde(rename = "bucket")]
    Bucket,
    /// The mini program's version from the request's `Referer`: a number for a release, `0`
    /// for develop, trial and review builds, `devtools` in WeChat's developer tools.
    #[serde(rename = "version")]
    Version,
    /// The build's channel from the request's `Referer`: `release`, `trial-or-develop` or
    /// `devtools`.
    #[serde(rename = "channel")]
    Channel,
    /// Whether the `Referer`'s AppID is the verified one: `match`, `mismatch` or `none` (no
    /// WeChat Referer).
    #[serde(rename = "referer")]
    Referer,
    #[serde(rename = "nickName")]
    NickName,
    #[serde(rename = "gender")]
    Gender,
    #[serde(rename = "language")]
    Language,
    #[serde(rename = "city")]
    City,
    #[serde(rename = "province")]
    Province,
    #[serde(rename = "country")]
    Country,
}

impl WeChatTagField {
    /// The tag name: the field name in lowercase.
    pub fn tag_name(self) -> &'static str {
        match self {
            WeChatTagField::AppId => "appid",
            WeChatTagField::OpenId => "openid",
            WeChatTagField::UnionId => "unionid",
            WeChatTagField::Bucket => "bucket",
            WeChatTagField::Version => "version",
            WeChatTagField::Channel => "channel",
            WeChatTagField::Referer => "referer",
            WeChatTagField::NickName => "nickname",
            WeChatTagField::Gender => "gender",
            WeChatTagField::Language => "language",
            WeChatTagField::City => "city",
            WeChatTagField::Province => "province",
            WeChatTagField::Country => "country",
        }
    }

    /// The key in WeChat's profile JSON, for profile fields.
    pub fn profile_key(self) -> Option<&'static str> {
        match self {
            WeChatTagField::NickName => Some("nickName"),
            WeChatTagField::Gender => Some("gender"),
            WeChatTagField::Language => Some("language"),
            WeChatTagField::City => Some("city"),
            WeChatTagField::Province => Some("province"),
            WeChatTagField::Country => Some("country"),
            _ => None,
        }
    }
}

/// Where the four profile parameters travel on a login request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileParams {
    /// `rawData` of `wx.getUserProfile`, checked with `signature`.
    #[serde(default = "default_raw_data")]
    pub raw_data: ProfileParam,
    /// `signature`: sha1(rawData + session_key).
    #[serde(default = "default_signature")]
    pub signature: ProfileParam,
    /// `encryptedData`, decrypted with the session_key (its watermark appid is checked).
    #[serde(default = "default_encrypted_data")]
    pub encrypted_data: ProfileParam,
    /// `iv` of `encryptedData`.
    #[serde(default = "default_iv")]
    pub iv: ProfileParam,
}

impl Default for ProfileParams {
    fn default() -> Self {
        Self {
            raw_data: default_raw_data(),
            signature: default_signature(),
            encrypted_data: default_encrypted_data(),
            iv: default_iv(),
        }
    }
}

fn header_param(name: &str) -> ProfileParam {
    ProfileParam {
        location: ProfileIn::Header,
        name: name.to_owned(),
    }
}
fn default_raw_data() -> ProfileParam {
    header_param("X-WX-Raw-Data")
}
fn default_signature() -> ProfileParam {
    header_param("X-WX-Signature")
}
fn default_encrypted_data() -> ProfileParam {
    header_param("X-WX-Encrypted-Data")
}
fn default_iv() -> ProfileParam {
    header_param("X-WX-IV")
}

/// One profile parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileParam {
    /// `header` or `query`.
    #[serde(rename = "in")]
    pub location: ProfileIn,
    /// Parameter name.
    #[schemars(length(min = 1, max = 64), regex(pattern = validate::TOKEN_PATTERN))]
    pub name: String,
}

/// Location of a profile parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProfileIn {
    Header,
    Query,
}

/// Reference to the Secret with the mini program's credentials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret, in the plugin's namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = validate::DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// Entry holding the AppID; used when `appId` is not set.
    #[serde(default = "default_app_id_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = validate::SECRET_KEY_PATTERN))]
    pub app_id_key: String,
    /// Entry holding the APPSECRET.
    #[serde(default = "default_app_secret_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = validate::SECRET_KEY_PATTERN))]
    pub app_secret_key: String,
}

fn default_app_id_key() -> String {
    "appid".into()
}
fn default_app_secret_key() -> String {
    "appsecret".into()
}

/// Where the login code travels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodeParam {
    /// `header`, `query`, `cookie`, or `body` (a field of a JSON object or form body; needs
    /// `login.paths`, so other requests' bodies are never read).
    #[serde(rename = "in", default)]
    pub location: CodeIn,
    /// Parameter name.
    #[serde(default = "default_code_name")]
    #[schemars(length(min = 1, max = 64), regex(pattern = validate::TOKEN_PATTERN))]
    pub name: String,
}

impl Default for CodeParam {
    fn default() -> Self {
        Self {
            location: CodeIn::default(),
            name: default_code_name(),
        }
    }
}

fn default_code_name() -> String {
    "js_code".into()
}

/// Location of the login code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CodeIn {
    /// A request header.
    #[default]
    Header,
    /// A query parameter.
    Query,
    /// A cookie.
    Cookie,
    /// A field of a JSON object body or an `application/x-www-form-urlencoded` body.
    Body,
}

/// Which requests are login requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginSpec {
    /// Exact request paths of the login API, e.g. `/login`. They must be covered by the
    /// binding.
    #[schemars(
        length(min = 1, max = 32),
        inner(length(min = 1, max = 1024), regex(pattern = "^/"))
    )]
    pub paths: Vec<String>,
}

/// The custom login-state credential.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionSpec {
    /// Parameter name of the credential, where it is returned and where it is accepted.
    #[serde(default = "default_session_name")]
    #[schemars(length(min = 1, max = 64), regex(pattern = validate::TOKEN_PATTERN))]
    pub name: String,
    /// Where a login response carries the credential: `header`, `cookie` (HttpOnly, Secure,
    /// SameSite=Lax, Max-Age) or `body` (a field merged into the app's JSON object answer).
    #[serde(default)]
    pub return_in: ReturnIn,
    /// Where later requests carry the credential: `header`, `cookie` or `query`.
    #[serde(default)]
    pub accept_in: AcceptIn,
    /// Lifetime of a credential in minutes (1 to 43200).
    #[serde(default = "default_ttl_minutes")]
    #[schemars(range(min = 1, max = MAX_TTL_MINUTES), extend("format" = "int32"))]
    pub ttl_minutes: u32,
    /// Sliding renewal: when a valid credential has at most this many minutes left, the
    /// response carries a fresh one at the return location. Must be below `ttlMinutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_TTL_MINUTES), extend("format" = "int32"))]
    pub renew_before_minutes: Option<u32>,
    /// How often the operator rotates the credential keys, in days (1 to 365).
    #[serde(default = "default_key_rotation_days")]
    #[schemars(range(min = 1, max = MAX_KEY_ROTATION_DAYS), extend("format" = "int32"))]
    pub key_rotation_days: u32,
    /// Keep WeChat's session_key inside the (encrypted) credential so every request can hand it
    /// to the app. Off by default: the session_key then reaches the app on login only.
    #[serde(default)]
    pub embed_session_key: bool,
}

impl Default for SessionSpec {
    fn default() -> Self {
        Self {
            name: default_session_name(),
            return_in: ReturnIn::default(),
            accept_in: AcceptIn::default(),
            ttl_minutes: default_ttl_minutes(),
            renew_before_minutes: None,
            key_rotation_days: default_key_rotation_days(),
            embed_session_key: false,
        }
    }
}

fn default_session_name() -> String {
    "user_session".into()
}
fn default_ttl_minutes() -> u32 {
    120
}
fn default_key_rotation_days() -> u32 {
    30
}

/// Where a login response carries the credential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReturnIn {
    /// A response header.
    #[default]
    Header,
    /// A `Set-Cookie` with HttpOnly, Secure, SameSite=Lax and Max-Age.
    Cookie,
    /// A field merged into the app's JSON object body.
    Body,
}

/// Where later requests carry the credential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcceptIn {
    /// A request header.
    #[default]
    Header,
    /// A cookie.
    Cookie,
    /// A query parameter (removed before the request reaches the app).
    Query,
}

/// How the WeChat identity reaches the app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardSpec {
    /// `header` or `query`.
    #[serde(rename = "in", default)]
    pub location: ForwardIn,
    /// `headers`: one parameter per field, named as WeChat Cloud Run does (`X-WX-OPENID`,
    /// `X-WX-UNIONID`, `X-WX-APPID`, and `X-WX-SESSION-KEY` on login requests or with
    /// `embedSessionKey`). `json`: one parameter `name` holding
    /// `{"openid","unionid","appid","session_key"?}`.
    #[serde(default)]
    pub format: ForwardFormat,
    /// Parameter name used by format `json`.
    #[serde(default = "default_forward_name")]
    #[schemars(length(min = 1, max = 64), regex(pattern = validate::TOKEN_PATTERN))]
    pub name: String,
}

impl Default for ForwardSpec {
    fn default() -> Self {
        Self {
            location: ForwardIn::default(),
            format: ForwardFormat::default(),
            name: default_forward_name(),
        }
    }
}

fn default_forward_name() -> String {
    "x-wx-login".into()
}

/// Where the identity is forwarded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForwardIn {
    /// Request headers.
    #[default]
    Header,
    /// Query parameters.
    Query,
}

/// Shape of the forwarded identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForwardFormat {
    /// One parameter per field (`X-WX-OPENID`, ...).
    #[default]
    Headers,
    /// One JSON parameter named `forward.name`.
    Json,
}

/// Tag plugin settings: request parameters to tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagPlugin {
    /// Rules, at most 16; at most one marked `traceId`.
    #[schemars(length(min = 1, max = MAX_TAGS))]
    pub rules: Vec<TagRule>,
}

/// One parameter turned into one tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagRule {
    /// Where the value comes from.
    pub from: TagSource,
    /// Tag name: lowercase letters, digits, `_`, `-`, `.`; at most 32 bytes.
    #[schemars(length(min = 1, max = MAX_TAG_NAME_BYTES), regex(pattern = "^[a-z0-9][a-z0-9_.-]*$"))]
    pub tag: String,
    /// Tie this parameter to the request's trace id (at most one rule per plugin).
    #[serde(default)]
    pub trace_id: bool,
}

/// The request parameter a tag is read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagSource {
    /// `path` (a `{name}` of a Template API path), `query`, `header` or `cookie`.
    #[serde(rename = "in")]
    pub location: TagIn,
    /// Parameter name, lowercase.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = "^[a-z0-9!#$%&'*+.^_`|~-]+$")
    )]
    pub name: String,
}

/// Location of a tag parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TagIn {
    Path,
    Query,
    Header,
    Cookie,
}

impl GatewayPluginSpec {
    /// Names of the Secrets (in the plugin's namespace) this plugin reads, given its name: the
    /// credentials Secret and the key ring `<name>-credential-keys`.
    pub fn referenced_secrets(&self, plugin_name: &str) -> Vec<String> {
        match &self.wechat_mp_login {
            Some(login) => {
                let mut names: Vec<String> = login
                    .mini_programs()
                    .into_iter()
                    .map(|app| app.credentials_secret_ref.name)
                    .collect();
                names.sort();
                names.dedup();
                names.push(crate::keys::key_ring_secret_name(plugin_name));
                names
            }
            None => Vec::new(),
        }
    }
}

/// Identity header names of format `headers` (WeChat Cloud Run's names).
pub const IDENTITY_HEADERS: [&str; 6] = [
    "X-WX-OPENID",
    "X-WX-UNIONID",
    "X-WX-APPID",
    "X-WX-SESSION-KEY",
    "X-WX-PHONE-NUMBER",
    "X-WX-PHONE-COUNTRY-CODE",
];
