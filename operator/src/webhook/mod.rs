//! The sidecar injection webhook: a mutating admission webhook served over TLS. The
//! MutatingWebhookConfiguration (the chart's) sends Pod creations in namespaces labelled
//! `wxgate.dev/injection=enabled` here; [`inject::decide`] says what to change.

pub mod inject;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wxgate_crds::{PluginBinding, namespace_of};

pub use inject::Settings;
pub use tls::load as load_tls;

/// Largest AdmissionReview read.
const MAX_BODY: usize = 4 << 20;
/// Most request head bytes read.
const MAX_HEAD: usize = 64 << 10;
/// A client must finish its TLS handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A client must send a request's head within this time; an idle kept-alive connection is
/// closed after it too.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must send a request's body within this time.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections open at once; past it, new ones wait in the listen backlog (never
/// accepted and dropped, never a busy loop).
const MAX_CONNECTIONS: usize = 512;
/// Pause after a failed accept (too many open files...), doubling up to the maximum.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

pub struct Webhook {
    pub settings: Settings,
    pub client: Client,
    pub bindings: Store<PluginBinding>,
}

/// Serves `POST /inject` over TLS until the task is dropped, with the sidecar's discipline:
/// handshake, head and body timeouts, a bound on connections, a back-off on accept errors and
/// a body limit, so no client (the webhook is reachable from every pod) can hold it from the API
/// server's admission calls.
pub async fn serve(listener: TcpListener, tls: tokio_rustls::TlsAcceptor, hook: Arc<Webhook>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = ACCEPT_BACKOFF.0;
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF.0;
                stream
            }
            Err(e) => {
                tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, "webhook accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        let (tls, hook, http) = (tls.clone(), Arc::clone(&hook), http.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await
            else {
                return;
            };
            let service = service_fn(move |req| {
                let hook = Arc::clone(&hook);
                async move { Ok::<_, std::convert::Infallible>(handle(&hook, req).await) }
            });
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *r.status_mut() = status;
    r
}

pub async fn handle(hook: &Webhook, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/inject" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the webhook serves POST /inject",
        );
    }
    if req.method() != Method::POST {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST an AdmissionReview to /inject",
        );
    }
    let json = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an AdmissionReview must be application/json",
        );
    }
    let body = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, body).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(_)) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the AdmissionReview is too large or broken off",
            );
        }
        Err(_) => {
            return plain(
                StatusCode::REQUEST_TIMEOUT,
                "the AdmissionReview was not sent in time",
            );
        }
    };
    let request = match parse_review(&body) {
        Ok(r) => r,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e),
    };
    let response = review_pod(hook, &request).await;
    match serde_json::to_vec(&response.into_review()) {
        Ok(bytes) => {
            let mut r = Response::new(Full::new(Bytes::from(bytes)));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the response: {e}"),
        ),
    }
}

/// Reads an AdmissionReview body into its request, or says plainly why it is not one.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, String> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| format!("malformed AdmissionReview: {e}"))?;
    review
        .try_into()
        .map_err(|e| format!("malformed AdmissionReview: {e}"))
}

async fn review_pod(
    hook: &Webhook,
    request: &AdmissionRequest<DynamicObject>,
) -> AdmissionResponse {
    let pod = match pod_of(request) {
        Ok(Some(pod)) => pod,
        Ok(None) => return AdmissionResponse::from(request),
        Err(why) => return AdmissionResponse::from(request).deny(why),
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    match bound_services(hook, &namespace).await {
        Ok(bound) => respond(request, &pod, &bound, &hook.settings),
        Err(e) => AdmissionResponse::from(request).deny(format!(
            "wxgate: cannot look up the bound Services of {namespace} ({e}); retry"
        )),
    }
}

/// The Pod an admission request carries: none (nothing to do), or why the request is denied
/// when the object is not a Pod.
pub fn pod_of(request: &AdmissionRequest<DynamicObject>) -> Result<Option<Pod>, String> {
    let Some(object) = &request.object else {
        return Ok(None);
    };
    serde_json::to_value(object)
        .and_then(serde_json::from_value)
        .map(Some)
        .map_err(|e| format!("wxgate: the object is not a Pod: {e}"))
}

/// The answer for a Pod, given the bound Services of its namespace: allowed as is, or allowed
/// with the sidecar's patch and any warnings.
pub fn respond(
    request: &AdmissionRequest<DynamicObject>,
    pod: &Pod,
    bound: &[Service],
    settings: &Settings,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    let namespace = request.namespace.as_deref().unwrap_or_default();
    match inject::decide(pod, namespace, bound, settings) {
        inject::Decision::Skip(why) => {
            tracing::debug!(namespace, reason = %why, "not injected");
            response
        }
        inject::Decision::Inject { patch, warnings } => {
            let name = pod
                .metadata
                .name
                .as_ref()
                .or(pod.metadata.generate_name.as_ref());
            tracing::info!(
                namespace,
                pod = name.map_or("", String::as_str),
                "sidecar injected"
            );
            match response.with_patch(patch) {
                Ok(mut r) => {
                    if !warnings.is_empty() {
                        r.warnings = Some(warnings);
                    }
                    r
                }
                Err(e) => AdmissionResponse::from(request)
                    .deny(format!("wxgate: cannot encode the patch: {e}")),
            }
        }
    }
}

/// Services of a namespace that some PluginBinding targets.
async fn bound_services(hook: &Webhook, namespace: &str) -> Result<Vec<Service>, kube::Error> {
    let mut names: Vec<String> = hook
        .bindings
        .state()
        .iter()
        .filter(|b| namespace_of(&b.metadata) == namespace)
        .map(|b| b.spec.target_ref.name.clone())
        .collect();
    names.sort();
    names.dedup();
    let api: Api<Service> = Api::namespaced(hook.client.clone(), namespace);
    let mut services = Vec::new();
    for name in names {
        if let Some(s) = api.get_opt(&name).await? {
            services.push(s);
        }
    }
    Ok(services)
}
