//! What both controllers share, and their error type.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{Store, store};
use kube::{Api, Client};
use wxgate_crds::{GatewayPlugin, PluginBinding};

use crate::keys::Schedule;
use crate::metrics::Metrics;

pub struct Context {
    pub client: Client,
    /// Publishes Kubernetes Events on condition transitions.
    pub recorder: kube::runtime::events::Recorder,
    pub plugins: Store<GatewayPlugin>,
    pub bindings: Store<PluginBinding>,
    /// The objects rendered for Services, as the watches last saw them, and what was applied.
    pub written: Written,
    pub schedule: Schedule,
    pub metrics: Arc<Metrics>,
    /// The status this process last wrote per object (by kind, namespace, name and uid), with
    /// the resourceVersion the object had before. A reconcile soon after a status write often
    /// still reads the object from before it (the watch has not delivered the write yet): while
    /// the store shows that resourceVersion, what was written is what is there, so the same
    /// conditions are not written again and each transition is one Event.
    pub statuses: Statuses,
}

/// See [`Context::statuses`].
pub type Statuses = Mutex<HashMap<String, (Option<String>, wxgate_crds::conditions::Status)>>;

/// The operator's rendered objects (ConfigMap, Secret, Role and RoleBinding of each Service),
/// metadata only, kept by watches of the operator's label; and per object the content this
/// process last applied with the resourceVersion the API server gave it. An object whose stored
/// resourceVersion is still that one holds that content, so applying it again is skipped; any
/// other change to it (drift) moves the resourceVersion and is overwritten.
pub struct Written {
    pub config_maps: Store<PartialObjectMeta<ConfigMap>>,
    pub secrets: Store<PartialObjectMeta<Secret>>,
    pub roles: Store<PartialObjectMeta<Role>>,
    pub role_bindings: Store<PartialObjectMeta<RoleBinding>>,
    last: Mutex<HashMap<String, Applied>>,
}

/// A content hash and the resourceVersion its apply returned.
pub type Applied = (u64, Option<String>);

impl Written {
    pub fn new(
        config_maps: Store<PartialObjectMeta<ConfigMap>>,
        secrets: Store<PartialObjectMeta<Secret>>,
        roles: Store<PartialObjectMeta<Role>>,
        role_bindings: Store<PartialObjectMeta<RoleBinding>>,
    ) -> Self {
        Self {
            config_maps,
            secrets,
            roles,
            role_bindings,
            last: Mutex::default(),
        }
    }

    /// What was last applied to the object `kind/namespace/name`.
    pub fn last_applied(&self, key: &str) -> Option<Applied> {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub fn applied(&self, key: String, content: u64, resource_version: Option<String>) {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (content, resource_version));
    }
}

impl Default for Written {
    /// Empty stores that no watch fills (tests).
    fn default() -> Self {
        Self::new(store().0, store().0, store().0, store().0)
    }
}

/// A hash of a JSON value's serialized form, stable within the process.
pub fn content_hash(value: &serde_json::Value) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(value).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// The key of an object in [`Context::statuses`]: kind, namespace, name and uid.
pub fn status_key<K: kube::Resource<DynamicType = ()>>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{}/{}/{}/{}",
        K::kind(&()),
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
        meta.uid.as_deref().unwrap_or_default()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A short label for the failures metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(e)) if e.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(e)) if e.code == 403 => "forbidden",
            Error::Kube(_) => "api",
            Error::Json(_) => "json",
        }
    }
}

impl Context {
    /// One Event per condition whose status changed (Warning when it became False).
    pub async fn record_transitions<K>(
        &self,
        obj: &K,
        before: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
        after: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    ) where
        K: kube::Resource<DynamicType = ()>,
    {
        use kube::runtime::events::{Event, EventType};
        // Conditions that flipped together for one reason (a missing plugin makes ResolvedRefs
        // and Programmed False) are one Event: the API server keys Events by reason, so two
        // would show as one Event seen twice.
        let mut grouped: Vec<(bool, &str, Vec<String>, &str)> = Vec::new();
        for c in after {
            let old = before
                .iter()
                .find(|b| b.type_ == c.type_)
                .map(|b| b.status.as_str());
            if old == Some(c.status.as_str()) {
                continue;
            }
            let normal = c.status == "True";
            let flipped = format!("{}={}", c.type_, c.status);
            match grouped
                .iter_mut()
                .find(|(n, reason, _, _)| *n == normal && *reason == c.reason)
            {
                Some((_, _, conditions, _)) => conditions.push(flipped),
                None => grouped.push((normal, &c.reason, vec![flipped], &c.message)),
            }
        }
        for (normal, reason, conditions, message) in grouped {
            let event = Event {
                type_: if normal {
                    EventType::Normal
                } else {
                    EventType::Warning
                },
                reason: reason.to_owned(),
                note: Some(
                    format!("{}: {message}", conditions.join(", "))
                        .chars()
                        .take(1000)
                        .collect(),
                ),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
                tracing::debug!(error = %e, "event not recorded");
            }
        }
    }

    /// The Secrets of a namespace with these names that exist (read one by one: the operator
    /// never lists Secrets).
    pub async fn secrets(
        &self,
        namespace: &str,
        names: impl IntoIterator<Item = String>,
    ) -> Result<Vec<Secret>, Error> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let mut found = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for name in names {
            if seen.insert(name.clone())
                && let Some(s) = api.get_opt(&name).await?
            {
                found.push(s);
            }
        }
        Ok(found)
    }

    /// Retry with a short backoff after an error: the delay until the retry.
    pub fn error_policy(&self, controller: &'static str, error: &Error) -> Duration {
        tracing::warn!(controller, error = %error, "reconcile failed");
        self.metrics.failure(controller, error.metric_label());
        Duration::from_secs(5)
    }

    /// Forgets the statuses written to objects no longer in the stores.
    pub fn prune_statuses(&self) {
        let live: std::collections::HashSet<String> = (self.plugins.state().iter())
            .map(|p| status_key(&**p))
            .chain(self.bindings.state().iter().map(|b| status_key(&**b)))
            .collect();
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| live.contains(key));
    }
}
