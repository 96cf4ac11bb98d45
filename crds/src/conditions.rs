//! Status shared by both kinds, and the condition types and reasons wxgate writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// GatewayPlugin: the spec is valid and everything it references exists.
pub const READY: &str = "Ready";
/// PluginBinding: the spec is valid.
pub const ACCEPTED: &str = "Accepted";
/// PluginBinding: the plugin, its Secrets and the target Service exist.
pub const RESOLVED_REFS: &str = "ResolvedRefs";
/// PluginBinding: the rendered config for the target Service has been written.
pub const PROGRAMMED: &str = "Programmed";

/// Reason of a True condition whose references all resolved.
pub const REASON_RESOLVED: &str = "Resolved";
/// Reason of `Accepted=True`.
pub const REASON_ACCEPTED: &str = "Accepted";
/// Reason of `Programmed=True`.
pub const REASON_PROGRAMMED: &str = "Programmed";
/// Reason of a binding whose target Service does not exist.
pub const REASON_SERVICE_NOT_FOUND: &str = "ServiceNotFound";

/// Observed state of a GatewayPlugin or PluginBinding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current state, one entry per condition type. GatewayPlugin: `Ready`. PluginBinding:
    /// `Accepted`, `ResolvedRefs`, `Programmed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
