//! Status conditions: built from what reconcile found, written only when they change, with
//! `lastTransitionTime` moving only when a condition's status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition as reconcile decides it (without times and generation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn new(
        type_: &'static str,
        ok: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            ok,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The conditions to write, keeping `lastTransitionTime` of conditions whose status did not
/// change; `None` when nothing would change (so no write, and no reconcile loop).
pub fn merge(
    existing: &[Condition],
    wanted: &[Cond],
    generation: Option<i64>,
    observed: Option<i64>,
) -> Option<Vec<Condition>> {
    let now = Time(jiff::Timestamp::now());
    let next: Vec<Condition> = wanted
        .iter()
        .map(|w| {
            let status = if w.ok { "True" } else { "False" };
            let old = existing.iter().find(|c| c.type_ == w.type_);
            let last_transition_time = match old {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: w.type_.to_owned(),
                status: status.to_owned(),
                reason: w.reason.clone(),
                message: truncate(&w.message),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    let same = observed == generation
        && next.len() == existing.len()
        && next.iter().all(|n| {
            existing.iter().any(|e| {
                e.type_ == n.type_
                    && e.status == n.status
                    && e.reason == n.reason
                    && e.message == n.message
                    && e.observed_generation == n.observed_generation
            })
        });
    (!same).then_some(next)
}

/// Condition messages are capped at 32768 bytes by the API; stay well below.
fn truncate(message: &str) -> String {
    const MAX: usize = 4000;
    if message.len() <= MAX {
        return message.to_owned();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

/// Writes an object's conditions (server-side apply on the status subresource) when they
/// changed, and records an Event for each condition whose status flipped.
pub async fn write<K>(
    ctx: &crate::Context,
    obj: &K,
    existing: Option<&wxgate_crds::conditions::Status>,
    wanted: &[Cond],
) -> Result<(), crate::Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let meta = obj.meta();
    let key = crate::context::status_key(obj);
    // What is there now: what this process wrote, while the store still shows the object from
    // before that write; else what the store shows.
    let written = {
        let statuses = ctx.statuses.lock().unwrap_or_else(|e| e.into_inner());
        statuses
            .get(&key)
            .filter(|(before, _)| *before == meta.resource_version)
            .map(|(_, status)| status.clone())
    };
    let existing = written.as_ref().or(existing);
    let before = existing
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let Some(conditions) = merge(
        before,
        wanted,
        meta.generation,
        existing.and_then(|s| s.observed_generation),
    ) else {
        return Ok(());
    };
    let api: kube::Api<K> =
        kube::Api::namespaced(ctx.client.clone(), wxgate_crds::namespace_of(meta));
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": {"observedGeneration": meta.generation, "conditions": conditions},
    });
    let params = kube::api::PatchParams::apply(crate::FIELD_MANAGER).force();
    api.patch_status(
        wxgate_crds::name_of(meta),
        &params,
        &kube::api::Patch::Apply(&patch),
    )
    .await?;
    ctx.metrics.wrote(&format!("{}/status", K::kind(&())));
    ctx.record_transitions(obj, before, &conditions).await;
    let status = wxgate_crds::conditions::Status {
        observed_generation: meta.generation,
        conditions,
    };
    ctx.statuses
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (meta.resource_version.clone(), status));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing(status: &str, reason: &str, time: jiff::Timestamp) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: "m".into(),
            observed_generation: Some(1),
            last_transition_time: Time(time),
        }
    }

    #[test]
    fn unchanged_conditions_are_not_written() {
        let t = jiff::Timestamp::UNIX_EPOCH;
        let wanted = [Cond::new("Ready", true, "Resolved", "m")];
        assert_eq!(
            merge(
                &[existing("True", "Resolved", t)],
                &wanted,
                Some(1),
                Some(1)
            ),
            None
        );
        assert!(
            merge(
                &[existing("True", "Resolved", t)],
                &wanted,
                Some(2),
                Some(1)
            )
            .is_some(),
            "new generation"
        );
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let t = jiff::Timestamp::UNIX_EPOCH;
        let reason_only = merge(
            &[existing("True", "Old", t)],
            &[Cond::new("Ready", true, "New", "m")],
            Some(1),
            Some(1),
        )
        .unwrap();
        assert_eq!(reason_only[0].last_transition_time.0, t);
        let flipped = merge(
            &[existing("True", "Old", t)],
            &[Cond::new("Ready", false, "Broken", "m")],
            Some(1),
            Some(1),
        )
        .unwrap();
        assert_ne!(flipped[0].last_transition_time.0, t);
    }
}
