//! wxgate's API: the `GatewayPlugin` and `PluginBinding` custom resources, their validation,
//! and the contract between the operator and the sidecar (the rendered config and the pure
//! [`render::render`] function that produces it).
//!
//! The operator renders from objects it watches; the sidecar's standalone mode renders from
//! manifest files ([`manifests`]) with the same function, so both agree by construction.

pub mod binding;
pub mod client;
pub mod conditions;
pub mod crd;
pub mod keys;
pub mod manifests;
pub mod plugin;
pub mod problem;
pub mod render;
pub mod secret;
pub mod validate;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use binding::{PluginBinding, PluginBindingSpec};
pub use plugin::{GatewayPlugin, GatewayPluginSpec};

/// API group of both kinds.
pub const GROUP: &str = "wxgate.dev";
/// API version of both kinds.
pub const VERSION: &str = "v1alpha1";
/// The namespace of a manifest that names none (as `kubectl apply` does).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The namespace of an object, `default` when the manifest names none.
pub fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

/// The name of an object (empty when absent, which the API server never allows).
pub fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// `<namespace>/<name>` of an object: how wxgate names plugins and bindings in rendered config,
/// in credentials' associated data and in messages.
pub fn key_of(meta: &ObjectMeta) -> String {
    format!("{}/{}", namespace_of(meta), name_of(meta))
}
