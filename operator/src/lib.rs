//! The wxgate operator (DESIGN.md sections 3 and 4): reconciles GatewayPlugins and
//! PluginBindings into one ConfigMap and one Secret per bound Service, keeps their status, and
//! manages credential key rings.
//!
//! Two controllers share one [`Context`]: [`plugin`] (validation, Secrets, key rings → the
//! plugin's `Ready`), keyed by plugin, and [`service`] (render per Service → ConfigMap/Secret →
//! the bindings' `Accepted`, `ResolvedRefs`, `Programmed`), keyed by bound Service through
//! [`queue`], with [`index`] deciding which Services a change touches and [`desired`] what
//! each should look like.

pub mod admin;
pub mod args;
pub mod context;
pub mod desired;
pub mod index;
pub mod keys;
pub mod metrics;
pub mod plugin;
pub mod queue;
pub mod run;
pub mod service;
pub mod status;
pub mod webhook;

pub use context::{Context, Error};

/// Field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "wxgate-operator";
/// Label on everything the operator creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "wxgate-operator");
/// Label naming the Service a rendered ConfigMap or Secret is for.
pub const SERVICE_LABEL: &str = "wxgate.dev/service";
