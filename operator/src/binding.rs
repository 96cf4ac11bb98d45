//! The binding controller: everything is decided per bound Service. A change to any binding,
//! plugin, Secret or Service reaches every binding of the affected Services, which renders the
//! Service's config with the shared `render` function, writes ConfigMap and Secret
//! `wxgate-<service>` (owned by all of the Service's bindings, so garbage collection removes them
//! with the last one) and sets each binding's conditions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use wxgate_crds::conditions::{
    ACCEPTED, PROGRAMMED, REASON_ACCEPTED, REASON_PROGRAMMED, REASON_RESOLVED,
    REASON_SERVICE_NOT_FOUND, RESOLVED_REFS,
};
use wxgate_crds::problem::{Kind, Problem, Reason};
use wxgate_crds::render::{
    self, CONFIG_ENTRY, Inputs, SECRET_ENTRY, ServiceRef, rendered_object_name,
};
use wxgate_crds::{GatewayPlugin, PluginBinding, key_of, name_of, namespace_of};

use crate::status::Cond;
use crate::{Context, Error, FIELD_MANAGER, MANAGED_BY, SERVICE_LABEL};

pub const CONTROLLER: &str = "binding";

/// Resync period: drift the watches missed is corrected within it.
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(binding: Arc<PluginBinding>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let service = service_of(&binding);
    reconcile_service(&service, &ctx).await?;
    // A binding moved to another Service may have left a config behind there.
    for stale in stale_services(&binding, &service, &ctx).await? {
        reconcile_service(&stale, &ctx).await?;
    }
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    Ok(Action::requeue(RESYNC))
}

pub fn service_of(binding: &PluginBinding) -> ServiceRef {
    ServiceRef::new(
        namespace_of(&binding.metadata),
        &binding.spec.target_ref.name,
    )
}

/// Services whose rendered objects list this binding as an owner but which it no longer targets.
async fn stale_services(
    binding: &PluginBinding,
    current: &ServiceRef,
    ctx: &Context,
) -> Result<Vec<ServiceRef>, Error> {
    let Some(uid) = binding.metadata.uid.as_deref() else {
        return Ok(Vec::new());
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &current.namespace);
    let managed = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    Ok(api
        .list_metadata(&managed)
        .await?
        .items
        .into_iter()
        .filter(|cm| cm.owner_references().iter().any(|o| o.uid == uid))
        .filter_map(|cm| cm.labels().get(SERVICE_LABEL).cloned())
        .filter(|name| *name != current.name)
        .map(|name| ServiceRef::new(&current.namespace, name))
        .collect())
}

/// Renders one Service and writes its config and its bindings' status.
pub async fn reconcile_service(service: &ServiceRef, ctx: &Context) -> Result<(), Error> {
    let mut bindings: Vec<PluginBinding> = ctx
        .bindings
        .state()
        .iter()
        .filter(|b| service_of(b) == *service && b.meta().deletion_timestamp.is_none())
        .map(|b| (**b).clone())
        .collect();
    bindings.sort_by(|a, b| name_of(&a.metadata).cmp(name_of(&b.metadata)));
    let name = rendered_object_name(&service.name);
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &service.namespace);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &service.namespace);
    if bindings.is_empty() {
        for result in [
            configmaps
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| ()),
            secrets
                .delete(&name, &DeleteParams::default())
                .await
                .map(|_| ()),
        ] {
            match result {
                Ok(()) | Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(());
    }

    let plugins: Vec<GatewayPlugin> = ctx
        .plugins
        .state()
        .iter()
        .filter(|p| namespace_of(&p.metadata) == service.namespace)
        .map(|p| (**p).clone())
        .collect();
    let wanted: BTreeSet<&str> = bindings
        .iter()
        .map(|b| b.spec.plugin_ref.name.as_str())
        .collect();
    let referenced: Vec<String> = plugins
        .iter()
        .filter(|p| wanted.contains(name_of(&p.metadata)))
        .flat_map(|p| p.spec.referenced_secrets(name_of(&p.metadata)))
        .collect();
    let found_secrets = ctx.secrets(&service.namespace, referenced).await?;
    let service_exists = Api::<Service>::namespaced(ctx.client.clone(), &service.namespace)
        .get_opt(&service.name)
        .await?
        .is_some();

    let rendered = render::render(
        service,
        Inputs {
            plugins: &plugins,
            bindings: &bindings,
            secrets: &found_secrets,
        },
    );
    let outcome = match rendered {
        Ok(r) if service_exists => {
            let meta = cm_meta_template(service, &bindings);
            let cm = ConfigMap {
                metadata: meta.clone(),
                data: Some(BTreeMap::from([(
                    CONFIG_ENTRY.to_owned(),
                    serde_json::to_string(&r.config)?,
                )])),
                ..ConfigMap::default()
            };
            let secret = Secret {
                metadata: meta.clone(),
                type_: Some("Opaque".into()),
                data: Some(BTreeMap::from([(
                    SECRET_ENTRY.to_owned(),
                    ByteString(serde_json::to_vec(&r.secret)?),
                )])),
                ..Secret::default()
            };
            let apply = PatchParams::apply(FIELD_MANAGER).force();
            secrets
                .patch(&name, &apply, &Patch::Apply(&typed(secret)))
                .await?;
            configmaps
                .patch(&name, &apply, &Patch::Apply(&typed(cm)))
                .await?;
            apply_sidecar_rbac(ctx, service, &meta).await?;
            Outcome::Programmed(r.config.version.clone(), r.config.tag_overflow())
        }
        Ok(_) => Outcome::NoService,
        Err(problems) => Outcome::Problems(problems),
    };
    for binding in &bindings {
        crate::status::write(
            ctx,
            binding,
            binding.status.as_ref(),
            &conditions(binding, service, &outcome),
        )
        .await?;
    }
    Ok(())
}

/// Metadata of everything rendered for a Service: named `wxgate-<service>`, labelled, owned by
/// every binding of the Service (so it goes with the last of them).
fn cm_meta_template(service: &ServiceRef, bindings: &[PluginBinding]) -> ObjectMeta {
    ObjectMeta {
        name: Some(rendered_object_name(&service.name)),
        namespace: Some(service.namespace.clone()),
        labels: Some(BTreeMap::from([
            (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
            (SERVICE_LABEL.into(), service.name.clone()),
        ])),
        owner_references: Some(bindings.iter().filter_map(owner_ref).collect()),
        ..ObjectMeta::default()
    }
}

/// Lets the sidecars of the Service read their ConfigMap, and nothing else: a Role on that one
/// ConfigMap (get, list, watch; list and watch are narrowed by the name field selector the
/// sidecar sends) bound to the namespace's ServiceAccounts. The operator cannot know which
/// account each pod uses without watching Pods; the ConfigMap holds nothing secret. No Secret
/// access is granted: the Secret is mounted into the sidecar container by the webhook.
async fn apply_sidecar_rbac(
    ctx: &Context,
    service: &ServiceRef,
    meta: &ObjectMeta,
) -> Result<(), Error> {
    let name = rendered_object_name(&service.name);
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": meta,
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [name], "verbs": ["get", "list", "watch"]}],
    }))?;
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": format!("system:serviceaccounts:{}", service.namespace)}],
    }))?;
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    Api::<Role>::namespaced(ctx.client.clone(), &service.namespace)
        .patch(&name, &apply, &Patch::Apply(&typed(role)))
        .await?;
    Api::<RoleBinding>::namespaced(ctx.client.clone(), &service.namespace)
        .patch(&name, &apply, &Patch::Apply(&typed(binding)))
        .await?;
    Ok(())
}

/// A typed object with apiVersion and kind set, as server-side apply wants.
fn typed<K: Resource<DynamicType = ()> + serde::Serialize>(obj: K) -> serde_json::Value {
    let mut v = serde_json::to_value(&obj).unwrap_or_default();
    v["apiVersion"] = K::api_version(&()).into();
    v["kind"] = K::kind(&()).into();
    v
}

fn owner_ref(binding: &PluginBinding) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: PluginBinding::api_version(&()).into_owned(),
        kind: PluginBinding::kind(&()).into_owned(),
        name: binding.metadata.name.clone()?,
        uid: binding.metadata.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

enum Outcome {
    /// The config version, and a note for the user, if any.
    Programmed(String, Option<String>),
    NoService,
    Problems(Vec<Problem>),
}

/// The three conditions of one binding of the Service.
fn conditions(binding: &PluginBinding, service: &ServiceRef, outcome: &Outcome) -> Vec<Cond> {
    let me = key_of(&binding.metadata);
    let plugin = format!("{}/{}", service.namespace, binding.spec.plugin_ref.name);
    let none: Vec<Problem> = Vec::new();
    let problems = match outcome {
        Outcome::Problems(p) => p,
        _ => &none,
    };
    let mine: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.kind == Kind::PluginBinding && p.object == me)
        .collect();
    let spec_problems: Vec<&&Problem> = mine
        .iter()
        .filter(|p| matches!(p.reason, Reason::InvalidSpec | Reason::Conflict))
        .collect();
    let accepted = match spec_problems.first() {
        Some(p) => Cond::new(
            ACCEPTED,
            false,
            p.reason.as_str(),
            describe(spec_problems.iter().map(|p| **p)),
        ),
        None => Cond::new(ACCEPTED, true, REASON_ACCEPTED, "the spec is valid"),
    };
    let ref_problems: Vec<&Problem> = problems
        .iter()
        .filter(|p| {
            (p.kind == Kind::PluginBinding && p.object == me && p.reason == Reason::PluginNotFound)
                || (p.kind == Kind::GatewayPlugin && p.object == plugin)
        })
        .collect();
    let resolved = match (ref_problems.first(), outcome) {
        (Some(p), _) => Cond::new(
            RESOLVED_REFS,
            false,
            p.reason.as_str(),
            describe(ref_problems.iter().copied()),
        ),
        (None, Outcome::NoService) => Cond::new(
            RESOLVED_REFS,
            false,
            REASON_SERVICE_NOT_FOUND,
            format!("Service {service} not found"),
        ),
        (None, _) => Cond::new(
            RESOLVED_REFS,
            true,
            REASON_RESOLVED,
            format!("GatewayPlugin {plugin}, its Secrets and Service {service} exist"),
        ),
    };
    let name = rendered_object_name(&service.name);
    let programmed = match outcome {
        Outcome::Programmed(version, note) => Cond::new(
            PROGRAMMED,
            true,
            REASON_PROGRAMMED,
            format!(
                "config {version} written to ConfigMap and Secret {}/{name}{}",
                service.namespace,
                note.as_ref()
                    .map(|n| format!("; note: {n}"))
                    .unwrap_or_default()
            ),
        ),
        Outcome::NoService => Cond::new(
            PROGRAMMED,
            false,
            REASON_SERVICE_NOT_FOUND,
            format!("Service {service} not found; nothing written"),
        ),
        Outcome::Problems(problems) => {
            let reason = if !mine.is_empty() || !ref_problems.is_empty() {
                (mine.first().copied().or(ref_problems.first().copied()))
                    .map_or("Invalid", |p| p.reason.as_str())
            } else {
                "OtherBindingInvalid"
            };
            Cond::new(
                PROGRAMMED,
                false,
                reason,
                format!(
                    "the config of Service {service} is not updated (the last good one stays): {}",
                    describe(problems.iter())
                ),
            )
        }
    };
    vec![accepted, resolved, programmed]
}

fn describe<'a>(problems: impl Iterator<Item = &'a Problem>) -> String {
    problems
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    //! The request shape of one Service reconcile, against a mocked API server: reads by name,
    //! then server-side apply of each rendered object with the operator's field manager and
    //! force, then the binding's status.

    use std::sync::Arc;

    use http::{Request, Response};
    use kube::client::Body;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::keys::Schedule;
    use crate::metrics::Metrics;

    fn json(v: serde_json::Value) -> Response<Body> {
        Response::builder()
            .body(Body::from(serde_json::to_vec(&v).unwrap()))
            .unwrap()
    }

    fn secret(name: &str, data: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"}, "data": data})
    }

    #[test]
    fn a_note_of_the_render_reaches_the_programmed_condition() {
        let binding: PluginBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "wxgate.dev/v1alpha1", "kind": "PluginBinding",
            "metadata": {"name": "b", "namespace": "shop"},
            "spec": {"pluginRef": {"name": "mp"}, "targetRef": {"kind": "Service", "name": "shop-api"}}
        }))
        .unwrap();
        let service = ServiceRef::new("shop", "shop-api");
        let message = |note: Option<&str>| {
            let outcome = Outcome::Programmed("v1".into(), note.map(str::to_owned));
            conditions(&binding, &service, &outcome)
                .into_iter()
                .find(|c| c.type_ == PROGRAMMED)
                .map(|c| (c.ok, c.message))
                .unwrap()
        };
        let (status, plain) = message(None);
        assert!(status && !plain.contains("note"), "{plain}");
        let (status, noted) = message(Some("17 tags"));
        assert!(status && noted.ends_with("; note: 17 tags"), "{noted}");
    }

    #[tokio::test]
    async fn a_service_is_applied_with_the_operator_field_manager_and_force() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(mock, "shop");
        let (plugins, mut plugin_writer) = store::<GatewayPlugin>();
        let (bindings, mut binding_writer) = store::<PluginBinding>();
        let plugin: GatewayPlugin = serde_json::from_value(serde_json::json!({
            "apiVersion": "wxgate.dev/v1alpha1", "kind": "GatewayPlugin",
            "metadata": {"name": "mp-login", "namespace": "shop"},
            "spec": {"type": "WeChatMpLogin", "wechatMpLogin": {"appId": "wx0123456789abcdef", "credentialsSecretRef": {"name": "creds"}}}
        }))
        .unwrap();
        let binding: PluginBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "wxgate.dev/v1alpha1", "kind": "PluginBinding",
            "metadata": {"name": "b", "namespace": "shop", "uid": "u-1", "generation": 1},
            "spec": {"pluginRef": {"name": "mp-login"}, "targetRef": {"name": "shop-api"}}
        }))
        .unwrap();
        plugin_writer.apply_watcher_event(&Event::Apply(plugin));
        binding_writer.apply_watcher_event(&Event::Apply(binding));
        let reporter = kube::runtime::events::Reporter {
            controller: "test".into(),
            instance: None,
        };
        let ctx = Context {
            recorder: kube::runtime::events::Recorder::new(client.clone(), reporter),
            client,
            plugins,
            bindings,
            schedule: Schedule {
                day_secs: 86_400,
                propagation_secs: 600,
            },
            metrics: Arc::new(Metrics::default()),
            announced: Default::default(),
        };
        let reconcile = tokio::spawn(async move {
            reconcile_service(&ServiceRef::new("shop", "shop-api"), &ctx).await
        });

        let mut seen = Vec::new();
        loop {
            let Some((request, send)) = handle.next_request().await else {
                break;
            };
            let (method, uri) = (request.method().clone(), request.uri().to_string());
            let content_type = request
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            seen.push(format!("{method} {}", uri.split('?').next().unwrap()));
            if method == http::Method::PATCH {
                assert!(
                    uri.contains("fieldManager=wxgate-operator") && uri.contains("force=true"),
                    "{uri}"
                );
                assert_eq!(
                    content_type.as_deref(),
                    Some("application/apply-patch+yaml"),
                    "{uri}"
                );
            }
            let response = match (method.as_str(), uri.split('?').next().unwrap()) {
                ("GET", "/api/v1/namespaces/shop/secrets/creds") => {
                    json(secret("creds", serde_json::json!({"appsecret": "eA=="})))
                }
                ("GET", "/api/v1/namespaces/shop/secrets/mp-login-credential-keys") => {
                    json(secret(
                        "mp-login-credential-keys",
                        serde_json::json!({"active": "MDEwMjAzMDQ=", "01020304": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}),
                    ))
                }
                ("GET", "/api/v1/namespaces/shop/services/shop-api") => json(
                    serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop-api", "namespace": "shop"}}),
                ),
                ("PATCH", path) if path.ends_with("/status") => {
                    let done = json(
                        serde_json::json!({"apiVersion": "wxgate.dev/v1alpha1", "kind": "PluginBinding", "metadata": {"name": "b", "namespace": "shop"}, "spec": {"pluginRef": {"name": "mp-login"}, "targetRef": {"name": "shop-api"}}}),
                    );
                    send.send_response(done);
                    continue;
                }
                ("PATCH", _) => {
                    let body = request.into_body().collect_bytes().await.unwrap();
                    json(serde_json::from_slice(&body).unwrap())
                }
                ("POST", path) if path.ends_with("/events") => json(
                    serde_json::json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": "2026-01-01T00:00:00.000000Z"}),
                ),
                other => panic!("unexpected request {other:?}"),
            };
            send.send_response(response);
        }
        reconcile.await.unwrap().unwrap();
        let seen: Vec<&str> = seen
            .iter()
            .map(String::as_str)
            .filter(|s| !s.ends_with("/events"))
            .collect();
        assert_eq!(
            seen,
            [
                "GET /api/v1/namespaces/shop/secrets/creds",
                "GET /api/v1/namespaces/shop/secrets/mp-login-credential-keys",
                "GET /api/v1/namespaces/shop/services/shop-api",
                "PATCH /api/v1/namespaces/shop/secrets/wxgate-shop-api",
                "PATCH /api/v1/namespaces/shop/configmaps/wxgate-shop-api",
                "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles/wxgate-shop-api",
                "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/wxgate-shop-api",
                "PATCH /apis/wxgate.dev/v1alpha1/namespaces/shop/pluginbindings/b/status",
            ]
        );
    }
}
