//! `PluginBinding`: which Service (or which of its APIs) a plugin applies to.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Status;
use crate::problem::FieldError;
use crate::validate::{self, Path};

/// At most this many APIs per binding.
pub const MAX_APIS: usize = 64;

/// Specification of a PluginBinding.
// Each printcolumn(...) repeats `type_ = "string"`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "wxgate.dev",
    version = "v1alpha1",
    kind = "PluginBinding",
    namespaced,
    status = "Status",
    derive = "PartialEq",
    shortname = "pb",
    category = "wxgate",
    annotation("helm.sh/resource-policy", "keep"),
    doc = "Binds a GatewayPlugin to a Service (all of it, or some of its APIs): the pods behind the Service get the wxgate sidecar, which applies the plugin.",
    printcolumn(
        name = "Plugin",
        type_ = "string",
        json_path = ".spec.pluginRef.name",
        description = "The GatewayPlugin applied"
    ),
    printcolumn(
        name = "Target",
        type_ = "string",
        json_path = ".spec.targetRef.name",
        description = "The Service the plugin applies to"
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status",
        description = "Whether the sidecar config for the Service has been written"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].reason",
        description = "Why the binding is (not) programmed",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PluginBindingSpec {
    /// The GatewayPlugin to apply, in the binding's namespace.
    pub plugin_ref: PluginRef,
    /// The Service whose pods get the sidecar: the "group" of TSF.
    pub target_ref: TargetRef,
    /// Bind only these APIs of the Service. Absent: the whole Service. Other requests pass
    /// through untouched (identity parameters are still stripped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_APIS))]
    pub apis: Option<Vec<ApiMatch>>,
}

/// Reference to a GatewayPlugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    /// Name of the GatewayPlugin, in the binding's namespace.
    #[schemars(length(min = 1, max = 237), regex(pattern = validate::DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

/// Reference to the target Service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// Kind of the target; only `Service`.
    #[serde(default)]
    pub kind: TargetKind,
    /// Name of the Service, in the binding's namespace.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// Kind of a binding target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetKind {
    /// A core/v1 Service.
    #[default]
    Service,
}

/// One API of the Service.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatch {
    /// Request path: `/orders`, or a template such as `/users/{id}` with match `Template`.
    #[schemars(length(min = 1, max = 1024), regex(pattern = "^/"))]
    pub path: String,
    /// `Exact`: the path only. `Prefix`: the path and everything below it, by whole segments
    /// (`/orders` matches `/orders` and `/orders/7`, not `/orders7`). `Template`: `{name}`
    /// segments match one segment each.
    #[serde(rename = "match", default)]
    pub match_type: PathMatch,
    /// Only these methods. Absent: every method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 9))]
    pub methods: Option<Vec<Method>>,
}

/// How an API path matches a request path. Declared in precedence order: when several
/// bindings of one plugin type match, `Exact` wins over `Template` over `Prefix`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum PathMatch {
    /// The path exactly.
    Exact,
    /// `{name}` segments match any one segment.
    Template,
    /// The path and everything below it, by whole segments.
    #[default]
    Prefix,
}

/// An HTTP method.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
        }
    }
}

impl PluginBindingSpec {
    /// Every problem the schema cannot express (or that a manifest read without an API server
    /// may carry), each with its field path.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let spec = Path::root("spec");
        validate::dns_subdomain(
            &spec.field("pluginRef").field("name"),
            &self.plugin_ref.name,
            &mut errors,
        );
        let target = &self.target_ref.name;
        let dns_label = (1..=63).contains(&target.len())
            && target
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase())
            && target
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && target
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !dns_label {
            errors.push(
                spec.field("targetRef")
                    .error("name", "must be a Service name (a DNS label)"),
            );
        }
        if let Some(apis) = &self.apis {
            let at = spec.field("apis");
            if apis.is_empty() || apis.len() > MAX_APIS {
                errors.push(at.here(format!(
                    "must list 1 to {MAX_APIS} APIs, or be left out to bind the whole Service"
                )));
            }
            for (i, api) in apis.iter().enumerate() {
                let at = at.index(i);
                validate::request_path(
                    &at.field("path"),
                    &api.path,
                    api.match_type == PathMatch::Template,
                    &mut errors,
                );
                if let Some(methods) = &api.methods {
                    let unique: std::collections::BTreeSet<_> = methods.iter().collect();
                    if methods.is_empty() || unique.len() != methods.len() {
                        errors.push(at.error(
                            "methods",
                            "must list distinct methods, or be left out for every method",
                        ));
                    }
                }
                if apis[..i].iter().any(|earlier| earlier == api) {
                    errors.push(at.here("repeats an earlier API"));
                }
            }
        }
        errors
    }
}
