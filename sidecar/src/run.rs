//! Starting and stopping a sidecar: bind both ports, start the config source, serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::active::ActiveConfig;
use crate::args::{Args, QQ_API, WECHAT_API};
use crate::breaker::BreakerConfig;
use crate::metrics::Metrics;
use crate::proxy::upstream::Upstream;
use crate::proxy::{self, State};
use crate::source::{self, Publisher};
use crate::trace::SpanExport;
use crate::wechat::token::TokenConfig;
use crate::wechat::{WeChat, WeChatConfig};

/// A running sidecar.
pub struct Running {
    /// The traffic port actually bound.
    pub traffic: SocketAddr,
    /// The admin port actually bound.
    pub admin: SocketAddr,
    /// The open-API port actually bound, if asked for.
    pub open_api: Option<SocketAddr>,
    pub active: Arc<ActiveConfig>,
    pub metrics: Arc<Metrics>,
    stop: oneshot::Sender<()>,
    served: JoinHandle<()>,
    spans: Option<SpanExport>,
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets open requests finish (up to the drain timeout), stops the rest.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.served.await;
        if let Some(spans) = self.spans {
            // Sends the spans still batched; blocks, so off the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || spans.shutdown()).await;
        }
        for task in self.background {
            task.abort();
        }
    }
}

/// Binds the ports and starts serving. Ports given as `:0` are chosen by the system.
pub async fn start(args: Args) -> anyhow::Result<Running> {
    if args.wechat_api_base != WECHAT_API {
        tracing::warn!(base = %args.wechat_api_base, "WeChat API base is not WeChat's: for tests and simulators only");
    }
    if args.qq_api_base != QQ_API {
        tracing::warn!(base = %args.qq_api_base, "QQ API base is not QQ's: for tests and simulators only");
    }
    let metrics = Arc::new(Metrics::default());
    let active = Arc::new(ActiveConfig::default());
    let wechat = WeChat::new(
        &WeChatConfig {
            api_base: args.wechat_api_base.clone(),
            qq_api_base: args.qq_api_base.clone(),
            timeout: Duration::from_millis(args.wechat_timeout_ms),
            max_in_flight: args.wechat_max_in_flight.max(1),
            retry_delay: Duration::from_millis(args.wechat_retry_delay_ms),
            breaker: BreakerConfig {
                failures: args.wechat_breaker_failures,
                cooldown: Duration::from_millis(args.wechat_breaker_cooldown_ms),
            },
            token: TokenConfig {
                force_per_day: args.token_force_refresh_per_day,
            },
        },
        Arc::clone(&metrics),
    );
    let upstream = Upstream::parse(
        &args.upstream,
        Duration::from_millis(args.upstream_connect_timeout_ms),
        Duration::from_millis(args.upstream_timeout_ms),
    )?;
    let spans = args
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| SpanExport::new(endpoint, args.service.as_deref()))
        .transpose()?;
    let traffic = bind(args.listen, "--listen").await?;
    let admin = bind(args.admin_listen, "--admin-listen").await?;
    let (traffic_addr, admin_addr) = (traffic.local_addr()?, admin.local_addr()?);
    let open_api = match args.open_api_listen {
        Some(addr) if !addr.ip().is_loopback() => anyhow::bail!(
            "--open-api-listen {addr}: the open-API port hands out the AppID's access_token, so it listens on a loopback address only (e.g. 127.0.0.1:15081)"
        ),
        Some(addr) => Some(bind(addr, "--open-api-listen").await?),
        None => None,
    };
    let open_api_addr = open_api.as_ref().map(TcpListener::local_addr).transpose()?;

    let publisher = Publisher::new(
        Arc::clone(&active),
        Arc::clone(&metrics),
        args.credential_cache,
    );
    let source_task = match args.manifests.clone() {
        Some(dir) => {
            let service = args.service.clone();
            tokio::spawn(async move {
                if let Err(e) = source::manifests::run(dir, service, publisher).await {
                    tracing::error!(error = %e, "manifest source stopped");
                }
            })
        }
        None => {
            let service = args
                .service
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--service is required without --manifests"))?;
            let namespace = source::cluster::namespace(args.namespace.as_deref())?;
            let client = wxgate_crds::client::client(args.kubeconfig.as_deref()).await?;
            let secret_dir = args.secret_dir.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    source::cluster::run(client, namespace, service, secret_dir, publisher).await
                {
                    tracing::error!(error = %e, "cluster source stopped");
                }
            })
        }
    };

    let admin_router = crate::admin::router(Arc::clone(&active), Arc::clone(&metrics));
    let admin_task = tokio::spawn(async move {
        if let Err(e) = axum::serve(admin, admin_router).await {
            tracing::error!(error = %e, "admin server stopped");
        }
    });

    let mut background = Vec::new();
    if let Some(listener) = open_api {
        let router = crate::open_api::router(
            Arc::clone(&active),
            Arc::clone(&wechat),
            Arc::clone(&metrics),
            crate::open_api::OpenApiConfig {
                timeout: Duration::from_millis(args.open_api_timeout_ms),
                max_body_bytes: args.open_api_max_body_bytes,
                max_in_flight: args.open_api_max_in_flight,
            },
        );
        background.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "open-API server stopped");
            }
        }));
    }
    let state = Arc::new(State {
        active: Arc::clone(&active),
        wechat,
        metrics: Arc::clone(&metrics),
        upstream,
        limits: args.limits(),
        access_log: args.access_log,
        spans: spans.clone(),
        draining: Default::default(),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(proxy::serve(traffic, state, async move {
        let _ = stopped.await;
    }));
    tracing::info!(traffic = %traffic_addr, admin = %admin_addr, open_api = %open_api_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()), upstream = %args.upstream, "wxgate sidecar listening");
    Ok(Running {
        traffic: traffic_addr,
        admin: admin_addr,
        open_api: open_api_addr,
        active,
        metrics,
        stop,
        served,
        spans,
        background: {
            background.extend([source_task, admin_task]);
            background
        },
    })
}

/// Binds a listener; the error names the address and the flag (port taken, no permission).
async fn bind(addr: std::net::SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({flag}): {e}"))
}
