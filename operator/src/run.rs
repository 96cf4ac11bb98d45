//! Wiring: the client, the two controllers with everything they watch, the admin port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxgate_crds::{GatewayPlugin, PluginBinding, name_of, namespace_of};

use crate::args::Args;
use crate::keys::Schedule;
use crate::metrics::Metrics;
use crate::{Context, MANAGED_BY, binding, plugin};

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

pub async fn client(args: &Args) -> anyhow::Result<Client> {
    Ok(match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?)?
        }
        None => Client::try_default().await?,
    })
}

/// A metadata-only watch of every object of a kind.
fn meta<K>(
    client: &Client,
    config: &watcher::Config,
) -> impl futures_util::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
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
}

/// Plugins of a namespace that read a Secret.
fn plugins_reading(
    plugins: &Store<GatewayPlugin>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<Arc<GatewayPlugin>> {
    let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
    plugins
        .state()
        .into_iter()
        .filter(|p| {
            namespace_of(&p.metadata) == ns
                && p.spec
                    .referenced_secrets(name_of(&p.metadata))
                    .contains(&name)
        })
        .collect()
}

fn bindings_where(
    bindings: &Store<PluginBinding>,
    keep: impl Fn(&PluginBinding) -> bool,
) -> Vec<ObjectRef<PluginBinding>> {
    bindings
        .state()
        .iter()
        .filter(|b| keep(b))
        .map(|b| ObjectRef::from_obj(&**b))
        .collect()
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

pub async fn start(args: Args) -> anyhow::Result<Running> {
    let client = client(&args).await?;
    let plugins_api: Api<GatewayPlugin> = Api::all(client.clone());
    if let Err(e) = plugins_api.list(&ListParams::default().limit(1)).await {
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
        );
    }
    let bindings_api: Api<PluginBinding> = Api::all(client.clone());
    // Only the two controlled kinds are kept in memory. Everything else is watched as metadata
    // (the mappers need no more), in small pages.
    let all = watcher::Config::default().page_size(100);
    let managed = all
        .clone()
        .labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));

    // Bounded concurrency: a burst (a restart with many objects) is worked through a few at a
    // time instead of holding every reconcile's buffers at once.
    let concurrency =
        kube::runtime::controller::Config::default().concurrency(args.concurrency.max(1));
    let plugin_ctl =
        Controller::new(plugins_api.clone(), all.clone()).with_config(concurrency.clone());
    let binding_ctl = Controller::new(bindings_api, all.clone()).with_config(concurrency);
    let (plugins, bindings) = (plugin_ctl.store(), binding_ctl.store());
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
        schedule: Schedule {
            day_secs: args.rotation_day_seconds.max(1),
            propagation_secs: args.key_propagation_seconds.max(0),
        },
        metrics: Arc::clone(&metrics),
        announced: Default::default(),
    });

    let p = plugins.clone();
    let plugin_ctl = plugin_ctl.watches_stream(
        meta::<Secret>(&client, &all),
        move |s: PartialObjectMeta<Secret>| {
            plugins_reading(&p, &s)
                .iter()
                .map(|p| ObjectRef::from_obj(&**p))
                .collect::<Vec<_>>()
        },
    );
    let (b1, b2, b3, p2) = (
        bindings.clone(),
        bindings.clone(),
        bindings.clone(),
        plugins.clone(),
    );
    let binding_ctl = binding_ctl
        .owns_stream(meta::<ConfigMap>(&client, &managed))
        .owns_stream(meta::<Secret>(&client, &managed))
        .watches_stream(
            meta::<GatewayPlugin>(&client, &all),
            move |p: PartialObjectMeta<GatewayPlugin>| {
                let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
                bindings_where(&b1, |b| {
                    namespace_of(&b.metadata) == ns && b.spec.plugin_ref.name == name
                })
            },
        )
        .watches_stream(
            meta::<Secret>(&client, &all),
            move |s: PartialObjectMeta<Secret>| {
                let readers: Vec<(String, String)> = plugins_reading(&p2, &s)
                    .iter()
                    .map(|p| {
                        (
                            namespace_of(&p.metadata).to_owned(),
                            name_of(&p.metadata).to_owned(),
                        )
                    })
                    .collect();
                bindings_where(&b2, |b| {
                    readers.iter().any(|(ns, n)| {
                        namespace_of(&b.metadata) == ns && b.spec.plugin_ref.name == *n
                    })
                })
            },
        )
        .watches_stream(
            meta::<Service>(&client, &all),
            move |s: PartialObjectMeta<Service>| {
                let (ns, name) = (s.namespace().unwrap_or_default(), s.name_any());
                bindings_where(&b3, |b| {
                    namespace_of(&b.metadata) == ns && b.spec.target_ref.name == name
                })
            },
        );

    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = futures_util::future::FutureExt::shared(async move {
        let _ = stopped.await;
    });
    let ready = Arc::new(AtomicBool::new(false));
    let (c1, c2) = (Arc::clone(&ctx), Arc::clone(&ctx));
    let plugin_run = plugin_ctl
        .graceful_shutdown_on(stopped.clone())
        .run(
            plugin::reconcile,
            move |_, e, _| c1.error_policy(plugin::CONTROLLER, e),
            Arc::clone(&ctx),
        )
        .for_each(|_| async {});
    let binding_run = binding_ctl
        .graceful_shutdown_on(stopped)
        .run(
            binding::reconcile,
            move |_, e, _| c2.error_policy(binding::CONTROLLER, e),
            Arc::clone(&ctx),
        )
        .for_each(|_| async {});
    let leader = match args.leader_elect {
        true => Some(lease(&client, &args).await?),
        false => None,
    };
    let (lost_tx, lost) = tokio::sync::watch::channel(false);
    let controllers = tokio::spawn(async move {
        let Some((mut leading, task)) = leader else {
            futures_util::future::join(plugin_run, binding_run).await;
            return;
        };
        tracing::info!("waiting for the leader Lease");
        if leading.wait_for(|l| *l).await.is_err() {
            return;
        }
        tracing::info!("leading: controllers start");
        tokio::select! {
            _ = futures_util::future::join(plugin_run, binding_run) => {}
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
                    shutdown_delay_seconds: args.sidecar_shutdown_delay_seconds,
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
