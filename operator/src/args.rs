//! Command line and environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// wxgate operator: renders GatewayPlugins and PluginBindings into the config of each bound
/// Service's sidecars and manages credential keys.
#[derive(Clone, Debug, Parser)]
#[command(name = "wxgate-operator", version)]
pub struct Args {
    /// Outside a pod: the kubeconfig to use (in a pod: the service account).
    #[arg(long, env = "WXGATE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// /healthz, /ready, /metrics.
    #[arg(
        long,
        env = "WXGATE_OPERATOR_ADMIN_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub admin_listen: SocketAddr,
    /// Seconds in a day of `keyRotationDays`. Only tests shorten it.
    #[arg(long, env = "WXGATE_ROTATION_DAY_SECONDS", default_value_t = 86_400)]
    pub rotation_day_seconds: i64,
    /// How long a new credential key is verify-only before it signs, in seconds (time for every
    /// sidecar to receive it; kubelet refreshes mounted Secrets within about a minute).
    #[arg(long, env = "WXGATE_KEY_PROPAGATION_SECONDS", default_value_t = 600)]
    pub key_propagation_seconds: i64,
    /// The operator's own namespace (never injected).
    #[arg(
        long,
        env = "WXGATE_OPERATOR_NAMESPACE",
        default_value = "wxgate-system"
    )]
    pub namespace: String,
    /// Run the controllers only while holding the Lease `wxgate-operator` in `--namespace`
    /// (several replicas: one reconciles, all serve the webhook).
    #[arg(long, env = "WXGATE_LEADER_ELECT", default_value_t = false, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// This replica's name in the Lease (default: the host name).
    #[arg(long, env = "WXGATE_POD_NAME")]
    pub identity: Option<String>,
    /// The injection webhook's HTTPS port.
    #[arg(long, env = "WXGATE_WEBHOOK_LISTEN", default_value = "0.0.0.0:9443")]
    pub webhook_listen: SocketAddr,
    /// Folder with the webhook's tls.crt and tls.key (re-read when they change). Without it the
    /// webhook is not served.
    #[arg(long, env = "WXGATE_WEBHOOK_CERT_DIR")]
    pub webhook_cert_dir: Option<PathBuf>,
    /// Image of the injected sidecar.
    #[arg(long, env = "WXGATE_SIDECAR_IMAGE", default_value = concat!("wxgate/wxgate-sidecar:", env!("CARGO_PKG_VERSION")))]
    pub sidecar_image: String,
    /// CPU request of the injected sidecar.
    #[arg(long, env = "WXGATE_SIDECAR_CPU_REQUEST", default_value = "10m")]
    pub sidecar_cpu_request: String,
    /// Memory request of the injected sidecar.
    #[arg(long, env = "WXGATE_SIDECAR_MEMORY_REQUEST", default_value = "16Mi")]
    pub sidecar_memory_request: String,
    /// Memory limit of the injected sidecar.
    #[arg(long, env = "WXGATE_SIDECAR_MEMORY_LIMIT", default_value = "64Mi")]
    pub sidecar_memory_limit: String,
    /// OTLP/HTTP receiver the injected sidecars export traced requests' spans to (their
    /// `--otlp-endpoint`); none: no spans.
    #[arg(long, env = "WXGATE_SIDECAR_OTLP_ENDPOINT")]
    pub sidecar_otlp_endpoint: Option<String>,
    /// Where injected sidecars call WeChat (their `--wechat-api-base`), e.g. a WeChat simulator's
    /// Service. For tests and simulators only; none: WeChat itself.
    #[arg(long, env = "WXGATE_SIDECAR_WECHAT_API_BASE")]
    pub sidecar_wechat_api_base: Option<String>,
    /// Where injected sidecars call QQ for `platform: qq` plugins (their `--qq-api-base`), e.g.
    /// a simulator's `/qq`. For tests and simulators only; none: QQ itself.
    #[arg(long, env = "WXGATE_SIDECAR_QQ_API_BASE")]
    pub sidecar_qq_api_base: Option<String>,
    /// Seconds an injected sidecar keeps serving after its pod starts terminating (a `preStop`
    /// sleep, so the endpoint's removal reaches kube-proxy first); the app container's stop is
    /// delayed twice as long. 0: no delays.
    #[arg(long, env = "WXGATE_SIDECAR_SHUTDOWN_DELAY_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=300))]
    pub sidecar_shutdown_delay_seconds: u32,
    /// The injected sidecars' open-API port, on the pod's loopback only (their
    /// `--open-api-listen 127.0.0.1:PORT`); it serves AppIDs whose plugin sets openApi. 0: none.
    #[arg(long, env = "WXGATE_SIDECAR_OPEN_API_PORT", default_value_t = 15081)]
    pub sidecar_open_api_port: u16,
    /// Credentials each login plugin of an injected sidecar remembers once verified (their
    /// `--credential-cache`). 0: none.
    #[arg(long, env = "WXGATE_SIDECAR_CREDENTIAL_CACHE", default_value_t = 4096)]
    pub sidecar_credential_cache: usize,
    /// Reconciles in flight per controller. Higher: a large backlog (a restart with many
    /// objects) clears faster but holds more memory at once.
    #[arg(long, env = "WXGATE_OPERATOR_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Log format.
    #[arg(long, env = "WXGATE_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "WXGATE_OPERATOR_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}
