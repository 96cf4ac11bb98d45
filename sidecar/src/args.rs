//! Command line and environment (each flag also reads `WXGATE_<FLAG>`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::proxy::Limits;

/// The WeChat API outside tests.
pub const WECHAT_API: &str = "https://api.weixin.qq.com";
/// QQ's server API base URL (code2Session of `platform: qq` plugins).
pub const QQ_API: &str = "https://api.q.qq.com";

/// wxgate sidecar: WeChat Mini Program login, credential verification and identity forwarding
/// in front of an app.
#[derive(Clone, Debug, Parser)]
#[command(name = "wxgate-sidecar", version)]
pub struct Args {
    /// Standalone: read GatewayPlugin, PluginBinding and Secret manifests from this folder and
    /// reload on change. Without it: in-cluster sources (ConfigMap by API, Secret folder).
    #[arg(long, env = "WXGATE_MANIFESTS")]
    pub manifests: Option<PathBuf>,
    /// Traffic port.
    #[arg(long, env = "WXGATE_LISTEN", default_value = "0.0.0.0:15080")]
    pub listen: SocketAddr,
    /// Admin port: /healthz, /ready, /metrics.
    #[arg(long, env = "WXGATE_ADMIN_LISTEN", default_value = "0.0.0.0:15090")]
    pub admin_listen: SocketAddr,
    /// Open-API port, on a loopback address only (off when absent): the app calls WeChat's
    /// server APIs here without an access_token, for AppIDs whose plugin sets openApi.
    #[arg(long, env = "WXGATE_OPEN_API_LISTEN")]
    pub open_api_listen: Option<SocketAddr>,
    /// Deadline of one open-API call to WeChat, in milliseconds.
    #[arg(long, env = "WXGATE_OPEN_API_TIMEOUT_MS", default_value_t = 30000)]
    pub open_api_timeout_ms: u64,
    /// Largest open-API request body, in bytes (held whole, for the one retry after 40001).
    #[arg(long, env = "WXGATE_OPEN_API_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub open_api_max_body_bytes: usize,
    /// Open-API calls at once; more are answered 503 WX_UNAVAILABLE.
    #[arg(long, env = "WXGATE_OPEN_API_MAX_IN_FLIGHT", default_value_t = 32)]
    pub open_api_max_in_flight: usize,
    /// The app, http://host:port.
    #[arg(long, env = "WXGATE_UPSTREAM", default_value = "http://127.0.0.1:8080")]
    pub upstream: String,
    /// WeChat API base URL. Change it only for tests and simulators: the APPSECRET is sent there.
    #[arg(long, env = "WXGATE_WECHAT_API_BASE", default_value = WECHAT_API)]
    pub wechat_api_base: String,
    /// QQ's server API base URL, for plugins with `platform: qq` (change only for tests and
    /// simulators).
    #[arg(long, env = "WXGATE_QQ_API_BASE", default_value = QQ_API)]
    pub qq_api_base: String,
    /// Which bound Service this sidecar serves (NAME or NAMESPACE/NAME); standalone default:
    /// the only one. Required in a cluster.
    #[arg(long, env = "WXGATE_SERVICE")]
    pub service: Option<String>,
    /// In a cluster: the namespace of the ConfigMap (default: the pod's).
    #[arg(long, env = "WXGATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Outside a pod: the kubeconfig to reach the cluster with (in a pod: the service account).
    #[arg(long, env = "WXGATE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// In a cluster: where Secret wxgate-<service> is mounted.
    #[arg(
        long,
        env = "WXGATE_SECRET_DIR",
        default_value = "/var/run/wxgate/secret"
    )]
    pub secret_dir: PathBuf,
    /// Deadline of one code2Session call, in milliseconds.
    #[arg(long, env = "WXGATE_WECHAT_TIMEOUT_MS", default_value_t = 5000)]
    pub wechat_timeout_ms: u64,
    /// Most code2Session calls in flight; more logins are answered 503 WX_UNAVAILABLE at once.
    #[arg(long, env = "WXGATE_WECHAT_MAX_IN_FLIGHT", default_value_t = 64)]
    pub wechat_max_in_flight: usize,
    /// Pause before the single retry after errcode -1, in milliseconds (plus up to as much jitter).
    #[arg(long, env = "WXGATE_WECHAT_RETRY_DELAY_MS", default_value_t = 100)]
    pub wechat_retry_delay_ms: u64,
    /// Consecutive code2Session calls WeChat does not answer (timeout, unreachable, garbage,
    /// -1) after which logins are refused at once (503 WX_UNAVAILABLE) for the cool-down; 0: never.
    #[arg(long, env = "WXGATE_WECHAT_BREAKER_FAILURES", default_value_t = 20)]
    pub wechat_breaker_failures: u32,
    /// How long the circuit breaker stays open before one login probes WeChat, in milliseconds.
    #[arg(
        long,
        env = "WXGATE_WECHAT_BREAKER_COOLDOWN_MS",
        default_value_t = 10000
    )]
    pub wechat_breaker_cooldown_ms: u64,
    /// Forced access_token refreshes this sidecar may make per AppID in 24 hours, after WeChat
    /// rejected a token. WeChat allows 20 a day for the AppID, shared by every caller: with
    /// several replicas, give each its share.
    #[arg(long, env = "WXGATE_TOKEN_FORCE_REFRESH_PER_DAY", default_value_t = 20)]
    pub token_force_refresh_per_day: usize,
    /// Deadline to connect to the app, in milliseconds.
    #[arg(
        long,
        env = "WXGATE_UPSTREAM_CONNECT_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub upstream_connect_timeout_ms: u64,
    /// Deadline for the app's response headers, in milliseconds.
    #[arg(long, env = "WXGATE_UPSTREAM_TIMEOUT_MS", default_value_t = 30000)]
    pub upstream_timeout_ms: u64,
    /// Deadline for a client to send a request's headers (and idle keep-alive), in milliseconds.
    #[arg(long, env = "WXGATE_HEADER_READ_TIMEOUT_MS", default_value_t = 10000)]
    pub header_read_timeout_ms: u64,
    /// Most bytes of request headers (at least 8192); more is answered 431.
    #[arg(long, env = "WXGATE_MAX_HEADER_BYTES", default_value_t = 32768)]
    pub max_header_bytes: usize,
    /// Largest request body forwarded, in bytes.
    #[arg(long, env = "WXGATE_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: u64,
    /// Largest login body read when the code travels in the body, in bytes.
    #[arg(long, env = "WXGATE_MAX_LOGIN_BODY_BYTES", default_value_t = 65536)]
    pub max_login_body_bytes: usize,
    /// How long open requests may finish after SIGTERM, in milliseconds.
    #[arg(long, env = "WXGATE_DRAIN_TIMEOUT_MS", default_value_t = 20000)]
    pub drain_timeout_ms: u64,
    /// After SIGTERM, a kept-alive connection's next answer carries `Connection: close`; one that
    /// stays idle this long (milliseconds) is closed.
    #[arg(long, env = "WXGATE_DRAIN_IDLE_MS", default_value_t = 2000)]
    pub drain_idle_ms: u64,
    /// OTLP/HTTP receiver (base URL, e.g. http://otel-collector:4318) to export the span of each
    /// traced request to, at <URL>/v1/traces; none: no spans are exported.
    #[arg(long, env = "WXGATE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Write one JSON access log line per request (openid hashed, no query string).
    #[arg(long, env = "WXGATE_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,
    /// Log format.
    #[arg(long, env = "WXGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter: a default level and `target=level` pairs, comma-separated
    /// (`warn,wxgate_sidecar=debug`).
    #[arg(long, env = "WXGATE_LOG", default_value = "info")]
    pub log: String,
    /// Opened credentials each login plugin remembers, so that a user's later requests are only
    /// checked for expiry (0: open every credential on every request).
    #[arg(long, env = "WXGATE_CREDENTIAL_CACHE", default_value_t = 4096)]
    pub credential_cache: usize,
    /// Worker threads (1: a single-threaded runtime, the lightest).
    #[arg(long, env = "WXGATE_WORKER_THREADS", default_value_t = 1)]
    pub worker_threads: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

impl Args {
    pub fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_header_bytes: self.max_header_bytes,
            max_body_bytes: self.max_body_bytes,
            max_login_body_bytes: self.max_login_body_bytes,
            drain_timeout: Duration::from_millis(self.drain_timeout_ms),
            drain_idle: Duration::from_millis(self.drain_idle_ms),
            ..Limits::default()
        }
    }
}
