//! The Service reconcile: everything is decided per bound Service. A change to any binding,
//! plugin, Secret or Service queues the Services it touches ([`crate::index`]); each reconcile
//! reads what its bindings need, renders the Service's config with the shared `render`
//! function, decides the objects and conditions ([`crate::desired`]), and writes only what
//! differs from what is stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wxgate_crds::render::{self, Inputs, ServiceRef, rendered_object_name};
use wxgate_crds::{GatewayPlugin, PluginBinding, name_of, namespace_of};

use crate::desired::{Desired, Found, desired};
use crate::index::service_of;
use crate::{Context, Error, FIELD_MANAGER};

pub const CONTROLLER: &str = "service";

/// Resync period: drift the watches missed is corrected within it.
const RESYNC: Duration = Duration::from_secs(300);

/// Reconciles one Service; returns when to do it again.
pub async fn reconcile(service: ServiceRef, ctx: Arc<Context>) -> Duration {
    let started = Instant::now();
    match reconcile_service(&service, &ctx).await {
        Ok(()) => {
            ctx.metrics.reconciled(CONTROLLER, started.elapsed());
            RESYNC
        }
        Err(e) => ctx.error_policy(CONTROLLER, &e),
    }
}

/// Renders one Service and writes its objects and its bindings' status.
pub async fn reconcile_service(service: &ServiceRef, ctx: &Context) -> Result<(), Error> {
    let mut bindings: Vec<PluginBinding> = ctx
        .bindings
        .state()
        .iter()
        .filter(|b| service_of(b) == *service && b.meta().deletion_timestamp.is_none())
        .map(|b| (**b).clone())
        .collect();
    bindings.sort_by(|a, b| name_of(&a.metadata).cmp(name_of(&b.metadata)));
    if bindings.is_empty() {
        // The last binding went: garbage collection removes what it owned; delete what is
        // still there now (a binding moved away does not own it any more).
        let w = &ctx.written;
        delete_stored(ctx, &w.config_maps, service).await?;
        delete_stored(ctx, &w.secrets, service).await?;
        delete_stored(ctx, &w.roles, service).await?;
        return delete_stored(ctx, &w.role_bindings, service).await;
    }

    let plugins: Vec<GatewayPlugin> = ctx
        .plugins
        .state()
        .iter()
        .filter(|p| namespace_of(&p.metadata) == service.namespace)
        .map(|p| (**p).clone())
        .collect();
    let referenced: Vec<String> = plugins
        .iter()
        .filter(|p| {
            bindings
                .iter()
                .any(|b| b.spec.plugin_ref.name == name_of(&p.metadata))
        })
        .flat_map(|p| p.spec.referenced_secrets(name_of(&p.metadata)))
        .collect();
    let secrets = ctx.secrets(&service.namespace, referenced).await?;
    let service_exists = Api::<Service>::namespaced(ctx.client.clone(), &service.namespace)
        .get_opt(&service.name)
        .await?
        .is_some();
    let rendered = render::render(
        service,
        Inputs {
            plugins: &plugins,
            bindings: &bindings,
            secrets: &secrets,
        },
    );
    let Desired {
        objects,
        conditions,
    } = desired(service, &bindings, &Found::new(rendered, service_exists))?;
    if let Some(o) = objects {
        // The Secret first: a sidecar that sees the new ConfigMap finds its Secret.
        let w = &ctx.written;
        apply_unless_stored(ctx, &w.secrets, o.secret).await?;
        apply_unless_stored(ctx, &w.config_maps, o.config_map).await?;
        apply_unless_stored(ctx, &w.roles, o.role).await?;
        apply_unless_stored(ctx, &w.role_bindings, o.role_binding).await?;
    }
    for (binding, conditions) in bindings.iter().zip(conditions) {
        crate::status::write(ctx, binding, binding.status.as_ref(), &conditions).await?;
    }
    Ok(())
}

/// Server-side applies `obj` (the operator's field manager, forced), unless the stored object
/// is the one this process last applied with this same content: its resourceVersion, as the
/// metadata watch in `stored` last saw it, is the one the apply returned.
async fn apply_unless_stored<K>(
    ctx: &Context,
    stored: &Store<PartialObjectMeta<K>>,
    obj: K,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let mut body = serde_json::to_value(&obj)?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let key = format!("{}/{ns}/{name}", K::kind(&()));
    let content = crate::context::content_hash(&body);
    let current = stored
        .get(&ObjectRef::new(&name).within(&ns))
        .and_then(|m| m.metadata.resource_version.clone());
    if current.is_some() && ctx.written.last_applied(&key) == Some((content, current)) {
        return Ok(());
    }
    let applied: K = Api::namespaced(ctx.client.clone(), &ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    ctx.metrics.wrote(K::kind(&()).as_ref());
    ctx.written
        .applied(key, content, applied.meta().resource_version.clone());
    Ok(())
}

/// Deletes the object rendered for `service` of this kind, if the watch has seen it.
async fn delete_stored<K>(
    ctx: &Context,
    stored: &Store<PartialObjectMeta<K>>,
    service: &ServiceRef,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let name = rendered_object_name(&service.name);
    if stored
        .get(&ObjectRef::new(&name).within(&service.namespace))
        .is_none()
    {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &service.namespace);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            ctx.metrics.wrote(K::kind(&()).as_ref());
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    //! The request shape of one Service reconcile, against a mocked API server: reads by name,
    //! then server-side apply of each rendered object with the operator's field manager and
    //! force, then the binding's status; and nothing written again once the stores show it.

    use std::sync::{Arc, Mutex};

    use http::{Request, Response};
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::client::Body;
    use kube::runtime::reflector::{Store, store};
    use kube::runtime::watcher::Event;
    use tower_test::mock::Handle;

    use super::*;
    use crate::context::Written;
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

    /// Answers requests until the client goes away; returns "METHOD path" of each (Events
    /// left out). Applies answer with the applied object at resourceVersion 7; the last status
    /// applied is kept in `status`.
    async fn serve(
        mut handle: Handle<Request<Body>, Response<Body>>,
        status: Arc<Mutex<Option<serde_json::Value>>>,
    ) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let (method, uri) = (request.method().clone(), request.uri().to_string());
            let path = uri.split('?').next().unwrap().to_owned();
            if method == http::Method::PATCH {
                assert!(
                    uri.contains("fieldManager=wxgate-operator") && uri.contains("force=true"),
                    "{uri}"
                );
                let content_type = request.headers().get("content-type").unwrap();
                assert_eq!(content_type, "application/apply-patch+yaml", "{uri}");
            }
            if !path.ends_with("/events") {
                seen.push(format!("{method} {path}"));
            }
            let response = match (method.as_str(), path.as_str()) {
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
                    let body = request.into_body().collect_bytes().await.unwrap();
                    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    *status.lock().unwrap() = Some(body["status"].clone());
                    json(
                        serde_json::json!({"apiVersion": "wxgate.dev/v1alpha1", "kind": "PluginBinding", "metadata": {"name": "b", "namespace": "shop"}, "spec": {"pluginRef": {"name": "mp-login"}, "targetRef": {"name": "shop-api"}}}),
                    )
                }
                ("PATCH", _) => {
                    let body = request.into_body().collect_bytes().await.unwrap();
                    let mut applied: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    applied["metadata"]["resourceVersion"] = "7".into();
                    json(applied)
                }
                ("POST", path) if path.ends_with("/events") => json(
                    serde_json::json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": "2026-01-01T00:00:00.000000Z"}),
                ),
                other => panic!("unexpected request {other:?}"),
            };
            send.send_response(response);
        }
        seen
    }

    /// A metadata store holding `wxgate-shop-api` at resourceVersion `rv`.
    fn stored<K>(rv: &str) -> Store<PartialObjectMeta<K>>
    where
        K: Resource<DynamicType = ()> + Clone + Default + 'static,
    {
        let (reader, mut writer) = store::<PartialObjectMeta<K>>();
        let mut meta = PartialObjectMeta::<K>::default();
        meta.metadata.name = Some("wxgate-shop-api".into());
        meta.metadata.namespace = Some("shop".into());
        meta.metadata.resource_version = Some(rv.into());
        writer.apply_watcher_event(&Event::Apply(meta));
        reader
    }

    fn context(client: kube::Client, binding: &PluginBinding, written: Written) -> Context {
        let (plugins, mut plugin_writer) = store::<GatewayPlugin>();
        let (bindings, mut binding_writer) = store::<PluginBinding>();
        let plugin: GatewayPlugin = serde_json::from_value(serde_json::json!({
            "apiVersion": "wxgate.dev/v1alpha1", "kind": "GatewayPlugin",
            "metadata": {"name": "mp-login", "namespace": "shop"},
            "spec": {"type": "WeChatMpLogin", "wechatMpLogin": {"appId": "wx0123456789abcdef", "credentialsSecretRef": {"name": "creds"}}}
        }))
        .unwrap();
        plugin_writer.apply_watcher_event(&Event::Apply(plugin));
        binding_writer.apply_watcher_event(&Event::Apply(binding.clone()));
        let reporter = kube::runtime::events::Reporter {
            controller: "test".into(),
            instance: None,
        };
        Context {
            recorder: kube::runtime::events::Recorder::new(client.clone(), reporter),
            client,
            plugins,
            bindings,
            written,
            schedule: Schedule {
                day_secs: 86_400,
                propagation_secs: 600,
            },
            metrics: Arc::new(Metrics::default()),
            statuses: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_service_is_applied_once_with_the_operator_field_manager_and_force() {
        let mut binding: PluginBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "wxgate.dev/v1alpha1", "kind": "PluginBinding",
            "metadata": {"name": "b", "namespace": "shop", "uid": "u-1", "generation": 1},
            "spec": {"pluginRef": {"name": "mp-login"}, "targetRef": {"name": "shop-api"}}
        }))
        .unwrap();
        let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let status = Arc::new(Mutex::new(None));
        let server = tokio::spawn(serve(handle, Arc::clone(&status)));
        let ctx = context(
            kube::Client::new(mock, "shop"),
            &binding,
            Written::default(),
        );
        let service = ServiceRef::new("shop", "shop-api");
        reconcile_service(&service, &ctx).await.unwrap();
        let reads = [
            "GET /api/v1/namespaces/shop/secrets/creds",
            "GET /api/v1/namespaces/shop/secrets/mp-login-credential-keys",
            "GET /api/v1/namespaces/shop/services/shop-api",
        ];
        let writes = [
            "PATCH /api/v1/namespaces/shop/secrets/wxgate-shop-api",
            "PATCH /api/v1/namespaces/shop/configmaps/wxgate-shop-api",
            "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles/wxgate-shop-api",
            "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/wxgate-shop-api",
            "PATCH /apis/wxgate.dev/v1alpha1/namespaces/shop/pluginbindings/b/status",
        ];

        // The watches now show what was written (resourceVersion 7, the status): the same
        // reconcile only reads.
        let last_applied = |kind: &str| {
            ctx.written
                .last_applied(&format!("{kind}/shop/wxgate-shop-api"))
        };
        let applied: Vec<_> = ["ConfigMap", "Secret", "Role", "RoleBinding"]
            .into_iter()
            .map(|kind| (kind, last_applied(kind).expect(kind)))
            .collect();
        binding.status = serde_json::from_value(status.lock().unwrap().clone().unwrap()).unwrap();
        let written = Written::new(stored("7"), stored("7"), stored("7"), stored("7"));
        for (kind, (content, rv)) in applied {
            assert_eq!(rv.as_deref(), Some("7"));
            written.applied(format!("{kind}/shop/wxgate-shop-api"), content, rv);
        }
        let again = context(ctx.client.clone(), &binding, written);
        reconcile_service(&service, &again).await.unwrap();

        // A change by someone else (drift) moves the resourceVersion: applied again.
        let written = Written::new(
            stored::<ConfigMap>("8"),
            stored::<Secret>("7"),
            stored::<Role>("7"),
            stored::<RoleBinding>("7"),
        );
        for kind in ["ConfigMap", "Secret", "Role", "RoleBinding"] {
            let (content, rv) = again
                .written
                .last_applied(&format!("{kind}/shop/wxgate-shop-api"))
                .unwrap();
            written.applied(format!("{kind}/shop/wxgate-shop-api"), content, rv);
        }
        let drift = context(ctx.client.clone(), &binding, written);
        reconcile_service(&service, &drift).await.unwrap();

        drop((ctx, again, drift));
        let seen = server.await.unwrap();
        let expected: Vec<&str> = reads
            .iter()
            .chain(&writes)
            .chain(&reads)
            .chain(&reads)
            .chain(&writes[1..2])
            .copied()
            .collect();
        assert_eq!(seen, expected);
    }
}
