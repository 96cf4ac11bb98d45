//! The wxgate operator (DESIGN.md sections 3 and 4): reconciles GatewayPlugins and
//! PluginBindings into one ConfigMap and one Secret per bound Service, keeps their status, and
//! manages credential key rings.
//!
//! Two controllers share one [`Context`]: [`plugin`] (validation, Secrets, key rings → the
//! plugin's `Ready`) and [`binding`] (render per Service → ConfigMap/Secret → the bindings'
//! `Accepted`, `ResolvedRefs`, `Programmed`).

pub mod admin;
pub mod args;
pub mod binding;
pub mod context;
pub mod keys;
pub mod metrics;
pub mod plugin;
pub mod run;
pub mod status;
pub mod webhook;

pub use context::{Context, Error};

/// Field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "wxgate-operator";
/// Label on everything the operator creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "wxgate-operator");
/// Label naming the Service a rendered ConfigMap or Secret is for.
pub const SERVICE_LABEL: &str = "wxgate.dev/service";
