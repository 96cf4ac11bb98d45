//! Wiring: the client, the plugin controller and the Service queue with everything they watch,
//! the admin port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::collections::BTreeSet;

use futures_util::{Stream, StreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxgate_crds::render::ServiceRef;
use wxgate_crds::{GatewayPlugin, PluginBinding};

use crate::args::Args;
use crate::context::Written;
use crate::keys::Schedule;
use crate::metrics::Metrics;
use crate::{Context, MANAGED_BY, index, plugin, queue, service};

pub struct Running {
    /// Resolves when the controllers stopped on their own: leadership was lost.
    pub lost: tokio::sync::watch::Receiver<bool>,
    pub admin: SocketAddr,
    /// The webhook's port, when served.
    pub webhook: Option<SocketAddr>,
    pub metrics: Arc<Metrics>,
    stop: oneshot::Sender<()>,
    controllers: JoinHandle<()>,
    admin_task: JoinHandle<()>,
    webhook_task: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the controllers after their current reconciles.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.controllers.await;
        self.admin_task.abort();
        if let Some(t) = self.webhook_task {
            t.abort();
        }
    }
}

/// A metadata-only watch of every object of a kind (the mappers need no more).
fn meta<K>(
    client: &Client,
    config: &watcher::Config,
) -> impl Stream<Item = PartialObjectMeta<K>> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watcher(
        Api::<PartialObjectMeta<K>>::all(client.clone()),
        config.clone(),
    )
    .default_backoff()
    .touched_objects()
    .filter_map(|r| async move { logged(r) })
}

/// The operator's own objects of a kind (its label), metadata only, kept in a store; yields
/// the Service of each one touched.
fn rendered<K>(
    client: &Client,
    config: &watcher::Config,
) -> (
    Store<PartialObjectMeta<K>>,
    impl Stream<Item = ServiceRef> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(
        Api::<PartialObjectMeta<K>>::all(client.clone()),
        config.clone(),
    )
    .default_backoff()
    .reflect(writer)
    .touched_objects()
    .filter_map(|r| async move { logged(r).and_then(|m| index::service_of_rendered(&m.metadata)) });
    (reader, stream)
}

/// A watch error is logged; the watch retries with a backoff.
fn logged<T>(item: Result<T, watcher::Error>) -> Option<T> {
    item.map_err(|e| tracing::warn!(error = %e, "watch failed; retrying"))
        .ok()
}

/// The leader Lease `wxgate-operator` in the operator's namespace.
async fn lease(
    client: &Client,
    args: &Args,
) -> anyhow::Result<(
    tokio::sync::watch::Receiver<bool>,
    JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
)> {
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("wxgate-operator-{:08x}", rand::random::<u32>()));
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), "wxgate-operator")
        .with_namespace(&args.namespace)
        .with_identity(identity)
        .with_duration(15)
        .with_grace(5)
        .with_field_manager(crate::FIELD_MANAGER)
        .build()
        .await?;
    Ok(manager.watch().await)
}

/// A store of every PluginBinding for the webhook, kept on every replica (the controllers' own
/// stores run only on the leader).
fn binding_mirror(client: &Client) -> Store<PluginBinding> {
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = kube::runtime::reflector(
        writer,
        watcher(
            Api::<PluginBinding>::all(client.clone()),
            watcher::Config::default(),
        ),
    );
    tokio::spawn(async move {
        use kube::runtime::WatchStreamExt;
        stream.default_backoff().for_each(|_| async {}).await;
    });
    reader
}

/// Lists GatewayPlugins once: without the CRDs the operator stops at once with a plain sentence
/// and the install hint, never the API server's raw Status.
async fn require_crds(plugins: &Api<GatewayPlugin>) -> anyhow::Result<()> {
    let Err(e) = plugins.list(&ListParams::default().limit(1)).await else {
        return Ok(());
    };
    let why = match &e {
        kube::Error::Api(s) if s.code == 404 => {
            "the API server does not know GatewayPlugins (404)".to_owned()
        }
        kube::Error::Api(s) => format!(
            "the API server answered {} {}: {}",
            s.code, s.reason, s.message
        ),
        other => other.to_string(),
    };
    anyhow::bail!(
        "cannot list GatewayPlugins: {why}. Are the wxgate CRDs installed? `helm install wxgate-crds charts/wxgate-crds`, or `cargo run -p wxgate-crds --bin crdgen -- --stdout | kubectl apply -f -`"
    )
}

pub async fn start(args: Args) -> anyhow::Result<Running> {
    let client = wxgate_crds::client::client(args.kubeconfig.as_deref()).await?;
    let plugins_api: Api<GatewayPlugin> = Api::all(client.clone());
    require_crds(&plugins_api).await?;
    // Only the two controlled kinds are kept whole in memory. Everything else is watched as
    // metadata, in small pages.
    let all = watcher::Config::default().page_size(100);
    let managed = all
        .clone()
        .labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));

    // Bounded concurrency: a burst (a restart with many objects) is worked through a few at a
    // time instead of holding every reconcile's buffers at once.
    let concurrency = args.concurrency.max(1);
    let plugin_ctl = Controller::new(plugins_api.clone(), all.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let plugins = plugin_ctl.store();
    let (bindings, binding_writer) = reflector::store();
    let binding_events = watcher(Api::<PluginBinding>::all(client.clone()), all.clone())
        .default_backoff()
        .reflect(binding_writer)
        .touched_objects()
        .filter_map(|r| async move { logged(r) });
    let (config_maps, config_map_events) = rendered::<ConfigMap>(&client, &managed);
    let (secrets, secret_events) = rendered::<Secret>(&client, &managed);
    let (roles, role_events) = rendered::<Role>(&client, &managed);
    let (role_bindings, role_binding_events) = rendered::<RoleBinding>(&client, &managed);
    let metrics = Arc::new(Metrics::default());
    let reporter = kube::runtime::events::Reporter {
        controller: crate::FIELD_MANAGER.into(),
        instance: args
            .identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok()),
    };
    let ctx = Arc::new(Context {
        recorder: kube::runtime::events::Recorder::new(client.clone(), reporter),
        client: client.clone(),
        plugins: plugins.clone(),
        bindings: bindings.clone(),
        written: Written::new(
            config_maps.clone(),
            secrets.clone(),
            roles.clone(),
            role_bindings.clone(),
        ),
        schedule: Schedule {
            day_secs: args.rotation_day_seconds.max(1),
            propagation_secs: args.key_propagation_seconds.max(0),
        },
        metrics: Arc::clone(&metrics),
        statuses: Default::default(),
    });

    let p = plugins.clone();
    let plugin_ctl = plugin_ctl.watches_stream(
        meta::<Secret>(&client, &all).map(Ok::<_, watcher::Error>),
        move |s: PartialObjectMeta<Secret>| {
            let (ns, name) = (s.namespace().unwrap_or_default(), s.name_any());
            index::plugins_reading(&p.state(), &ns, &name)
                .map(|p| ObjectRef::from_obj(&**p))
                .collect::<Vec<_>>()
        },
    );

    // Every change becomes the Services it touches (crate::index).
    let (b1, b2, b3, p2) = (
        bindings.clone(),
        bindings.clone(),
        bindings.clone(),
        plugins.clone(),
    );
    let cms = config_maps.clone();
    let triggers = stream::select_all([
        binding_events
            .map(move |b| {
                let cms = cms.state();
                index::services_of_binding(&b, cms.iter().map(|m| &m.metadata))
            })
            .boxed(),
        meta::<GatewayPlugin>(&client, &all)
            .map(move |p| {
                let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
                index::services_using_plugin(&b1.state(), &ns, &name)
            })
            .boxed(),
        meta::<Secret>(&client, &all)
            .map(move |s| {
                let (ns, name) = (s.namespace().unwrap_or_default(), s.name_any());
                index::services_reading_secret(&p2.state(), &b2.state(), &ns, &name)
            })
            .boxed(),
        meta::<Service>(&client, &all)
            .map(move |s| {
                let (ns, name) = (s.namespace().unwrap_or_default(), s.name_any());
                index::bound_service(&b3.state(), &ns, &name)
                    .into_iter()
                    .collect()
            })
            .boxed(),
        stream::select_all([
            config_map_events.boxed(),
            secret_events.boxed(),
            role_events.boxed(),
            role_binding_events.boxed(),
        ])
        .map(|service| BTreeSet::from([service]))
        .boxed(),
    ])
    .flat_map(stream::iter);
    // No Service is reconciled before every store it reads holds its first full list.
    let stores_ready = {
        let (b, p) = (bindings.clone(), plugins.clone());
        async move {
            let _ = futures_util::join!(
                b.wait_until_ready(),
                p.wait_until_ready(),
                config_maps.wait_until_ready(),
                secrets.wait_until_ready(),
                roles.wait_until_ready(),
                role_bindings.wait_until_ready(),
            );
        }
    };

    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = futures_util::future::FutureExt::shared(async move {
        let _ = stopped.await;
    });
    let ready = Arc::new(AtomicBool::new(false));
    let c1 = Arc::clone(&ctx);
    let plugin_run = plugin_ctl
        .graceful_shutdown_on(stopped.clone())
        .run(
            plugin::reconcile,
            move |_, e, _| Action::requeue(c1.error_policy(plugin::CONTROLLER, e)),
            Arc::clone(&ctx),
        )
        .for_each(|_| async {});
    let c2 = Arc::clone(&ctx);
    let service_run = queue::run(
        triggers,
        stores_ready,
        usize::from(concurrency),
        stopped,
        move |s| service::reconcile(s, Arc::clone(&c2)),
    );
    // Statuses written to objects since deleted are forgotten now and then.
    let c3 = Arc::clone(&ctx);
    let prune = async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            every.tick().await;
            c3.prune_statuses();
        }
    };
    let run = async move {
        tokio::select! {
            _ = futures_util::future::join(plugin_run, service_run) => {}
            () = prune => {}
        }
    };
    let leader = match args.leader_elect {
        true => Some(lease(&client, &args).await?),
        false => None,
    };
    let (lost_tx, lost) = tokio::sync::watch::channel(false);
    let controllers = tokio::spawn(async move {
        let Some((mut leading, task)) = leader else {
            run.await;
            return;
        };
        tracing::info!("waiting for the leader Lease");
        if leading.wait_for(|l| *l).await.is_err() {
            return;
        }
        tracing::info!("leading: controllers start");
        tokio::select! {
            () = run => {}
            _ = leading.wait_for(|l| !*l) => {
                tracing::error!("leader Lease lost: stopping");
                let _ = lost_tx.send(true);
            }
        }
        drop(leading);
        let _ = task.await;
    });
    ready.store(true, Ordering::Release);

    let listener = tokio::net::TcpListener::bind(args.admin_listen).await?;
    let admin = listener.local_addr()?;
    let router = crate::admin::router(ready, Arc::clone(&metrics));
    let admin_task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let (webhook, webhook_task) = match &args.webhook_cert_dir {
        Some(dir) => {
            let tls = crate::webhook::load_tls(dir)?;
            let listener = tokio::net::TcpListener::bind(args.webhook_listen).await?;
            let addr = listener.local_addr()?;
            let hook = Arc::new(crate::webhook::Webhook {
                settings: crate::webhook::Settings {
                    image: args.sidecar_image.clone(),
                    cpu_request: args.sidecar_cpu_request.clone(),
                    memory_request: args.sidecar_memory_request.clone(),
                    memory_limit: args.sidecar_memory_limit.clone(),
                    otlp_endpoint: args.sidecar_otlp_endpoint.clone(),
                    wechat_api_base: args.sidecar_wechat_api_base.clone(),
                    qq_api_base: args.sidecar_qq_api_base.clone(),
                    shutdown_delay_seconds: args.sidecar_shutdown_delay_seconds,
                    open_api_port: Some(args.sidecar_open_api_port).filter(|p| *p != 0),
                    credential_cache: args.sidecar_credential_cache,
                    own_namespace: args.namespace.clone(),
                },
                client: client.clone(),
                bindings: binding_mirror(&client),
            });
            (
                Some(addr),
                Some(tokio::spawn(crate::webhook::serve(listener, tls, hook))),
            )
        }
        None => {
            tracing::warn!("no --webhook-cert-dir: the injection webhook is not served");
            (None, None)
        }
    };
    tracing::info!(admin = %admin, webhook = ?webhook, "wxgate operator running");
    Ok(Running {
        lost,
        admin,
        webhook,
        metrics,
        stop,
        controllers,
        admin_task,
        webhook_task,
    })
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;

    use super::*;

    #[tokio::test]
    async fn missing_crds_are_one_plain_sentence_with_the_install_hint() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("a request");
            assert!(
                request
                    .uri()
                    .path()
                    .ends_with("/apis/wxgate.dev/v1alpha1/gatewayplugins"),
                "{}",
                request.uri()
            );
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404});
            send.send_response(
                Response::builder()
                    .status(404)
                    .body(Body::from(serde_json::to_vec(&status).expect("json")))
                    .expect("response"),
            );
        });
        let plugins: Api<GatewayPlugin> = Api::all(Client::new(mock, "default"));
        let message = require_crds(&plugins)
            .await
            .expect_err("no CRDs")
            .to_string();
        server.await.expect("served");
        assert_eq!(
            message,
            "cannot list GatewayPlugins: the API server does not know GatewayPlugins (404). Are the wxgate CRDs installed? `helm install wxgate-crds charts/wxgate-crds`, or `cargo run -p wxgate-crds --bin crdgen -- --stdout | kubectl apply -f -`"
        );
        assert!(!message.contains("Status {"), "{message}");
    }
}
