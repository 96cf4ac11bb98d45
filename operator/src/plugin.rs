//! The plugin controller: a GatewayPlugin's `Ready` condition (spec valid, Secrets and keys
//! present) and, for login plugins, its credential key ring (created and rotated).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use wxgate_crds::conditions::{READY, REASON_RESOLVED};
use wxgate_crds::keys::{CredentialKey, KeyRing, Kid, key_ring_secret_name};
use wxgate_crds::render::{render_plugin, secret_data};
use wxgate_crds::{GatewayPlugin, name_of, namespace_of};

use crate::keys::{Policy, Ring, RingState, STATE_ANNOTATION, step};
use crate::status::Cond;
use crate::{Context, Error, FIELD_MANAGER, MANAGED_BY};

pub const CONTROLLER: &str = "plugin";

/// Re-check at least this often (Secrets the operator does not watch may change).
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(plugin: Arc<GatewayPlugin>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let (ns, name) = (namespace_of(&plugin.metadata), name_of(&plugin.metadata));
    let mut next = RESYNC;
    if let Some(login) = &plugin.spec.wechat_mp_login
        && plugin.spec.validate().is_empty()
    {
        let policy = Policy {
            rotation_days: login.session.key_rotation_days,
            ttl_minutes: login.session.ttl_minutes,
        };
        next = next.min(ensure_key_ring(&plugin, policy, &ctx).await?);
    }
    let secrets = ctx
        .secrets(ns, plugin.spec.referenced_secrets(name))
        .await?;
    let ready = match render_plugin(&plugin, &secrets) {
        Ok(_) => Cond::new(
            READY,
            true,
            REASON_RESOLVED,
            "the spec is valid and its Secrets and keys exist",
        ),
        Err(problems) => Cond::new(
            READY,
            false,
            problems[0].reason.as_str(),
            problems
                .iter()
                .map(|p| format!("{} ({}): {}", p.field, p.reason, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    crate::status::write(&ctx, &*plugin, plugin.status.as_ref(), &[ready]).await?;
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    Ok(Action::requeue(next))
}

/// Creates or advances the operator's key ring; a user's own key ring is left alone. Returns
/// the time until the next stage.
async fn ensure_key_ring(
    plugin: &GatewayPlugin,
    policy: Policy,
    ctx: &Context,
) -> Result<Duration, Error> {
    let (ns, name) = (namespace_of(&plugin.metadata), name_of(&plugin.metadata));
    let ring_name = key_ring_secret_name(name);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let existing = api.get_opt(&ring_name).await?;
    let managed = |s: &Secret| {
        s.labels()
            .get(MANAGED_BY.0)
            .is_some_and(|v| v == MANAGED_BY.1)
    };
    if existing.as_ref().is_some_and(|s| !managed(s)) {
        return Ok(RESYNC);
    }
    let current = match existing.as_ref().map(read_ring).transpose() {
        Ok(current) => current,
        Err(problems) => {
            // Never replace keys that may still verify credentials: the plugin's Ready
            // condition names the problem; deleting the Secret makes a new ring.
            tracing::warn!(plugin = %format!("{ns}/{name}"), secret = %ring_name, problems = %problems.join("; "), "credential key ring unreadable: left as it is");
            return Ok(RESYNC);
        }
    };
    let now = jiff::Timestamp::now().as_second();
    let (ring, next) = step(current.clone(), policy, ctx.schedule, now, || {
        (Kid::random(), CredentialKey::random())
    });
    if current.as_ref() != Some(&ring) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(ring_name.clone()),
                namespace: Some(ns.to_owned()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
                    ("wxgate.dev/plugin".into(), name.to_owned()),
                ])),
                annotations: Some(BTreeMap::from([(
                    STATE_ANNOTATION.into(),
                    serde_json::to_string(&ring.state)?,
                )])),
                owner_references: plugin_owner(plugin).map(|o| vec![o]),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            data: Some(ring.keys.to_secret_data()),
            ..Secret::default()
        };
        let mut body = serde_json::to_value(&secret)?;
        body["apiVersion"] = "v1".into();
        body["kind"] = "Secret".into();
        api.patch(
            &ring_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        ctx.metrics.wrote("Secret");
        tracing::info!(plugin = %format!("{ns}/{name}"), active = %ring.keys.active, keys = ring.keys.keys.len(), "credential key ring updated");
    }
    Ok(Duration::from_secs(
        u64::try_from(next - now).unwrap_or(1).max(1),
    ))
}

/// The operator's ring and its schedule; a schedule that cannot be read is adopted afresh.
fn read_ring(secret: &Secret) -> Result<Ring, Vec<String>> {
    let keys = KeyRing::from_secret_data(&secret_data(secret))?;
    let state: RingState = secret
        .annotations()
        .get(STATE_ANNOTATION)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    Ok(Ring { keys, state })
}

fn plugin_owner(plugin: &GatewayPlugin) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: GatewayPlugin::api_version(&()).into_owned(),
        kind: GatewayPlugin::kind(&()).into_owned(),
        name: plugin.metadata.name.clone()?,
        uid: plugin.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: None,
    })
}
