//! The traffic port: an HTTP/1.1 server in front of the app.
//!
//! Each request step only calls down: [`handler`] (one request: hygiene, routing) → [`login`] /
//! [`verify`] → [`identity`], [`session`], [`forward`] → [`upstream`]; [`record`] is what they
//! all fill in for the access log and metrics.

mod body;
pub mod codes;
mod deadline;
mod forward;
pub mod framing;
mod handler;
pub mod hygiene;
mod identity;
pub mod login;
mod phone;
mod record;
mod session;
pub mod upstream;
mod verify;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::HeaderValue;
use http::header::CONNECTION;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::active::ActiveConfig;
use crate::metrics::Metrics;
use crate::wechat::WeChat;
use upstream::Upstream;

pub use body::RespBody;

/// Limits on what a client may send, and how long the sidecar waits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A client must send a request's headers within this time (slowloris); an idle kept-alive
    /// connection is closed after it too.
    pub header_read_timeout: Duration,
    /// Most bytes of request headers (at least 8 KiB); more is answered 431.
    pub max_header_bytes: usize,
    /// Largest request body forwarded (413 when Content-Length says more; a chunked body is cut
    /// off at this size).
    pub max_body_bytes: u64,
    /// Largest login body read when the code travels in the body.
    pub max_login_body_bytes: usize,
    /// Largest app JSON answer the credential is merged into (`returnIn: body`).
    pub max_merge_body_bytes: usize,
    /// How long connections may finish their requests after shutdown starts.
    pub drain_timeout: Duration,
    /// After shutdown starts, how long a kept-alive connection may stay idle before it is
    /// closed (one that sends a request gets `Connection: close` on its answer instead).
    pub drain_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            max_login_body_bytes: 64 * 1024,
            max_merge_body_bytes: 1024 * 1024,
            drain_timeout: Duration::from_secs(20),
            drain_idle: Duration::from_secs(2),
        }
    }
}

/// What every request handler shares.
pub struct State {
    pub active: Arc<ActiveConfig>,
    pub wechat: Arc<WeChat>,
    pub metrics: Arc<Metrics>,
    pub upstream: Upstream,
    pub limits: Limits,
    /// Write one JSON access log line per request.
    pub access_log: bool,
    /// Exports traced requests' spans, when an OTLP endpoint is configured.
    pub spans: Option<crate::trace::SpanExport>,
    /// Raised when shutdown starts: every answer then carries `Connection: close`.
    pub draining: AtomicBool,
}

/// Serves the traffic port until `shutdown` resolves, then drains: no new connections; each
/// kept-alive connection's next answer carries `Connection: close` (so a busy client moves to
/// another endpoint between requests, never losing one to a close racing its request), one idle
/// for `drain_idle` is closed, and open requests may finish for up to `drain_timeout`.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let mut http = http1::Builder::new();
    http.header_read_timeout(state.limits.header_read_timeout)
        .max_buf_size(state.limits.max_header_bytes.max(8192))
        .keep_alive(true)
        // A client may shut down its sending side after its request and still get the answer
        // (RFC 9112 section 9.6). It also spares hyper a read in the middle of every request,
        // made to notice a client gone early: that read's buffer reservation came while the
        // request still held slices of the buffer, so each request cost a fresh 8 KiB buffer
        // (3.6% of the CPU per verified request).
        .half_close(true);
    let (drain_started, drain) = watch::channel(false);
    // Each connection task holds a sender; the channel closes when the last one ends.
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                let conn = Arc::new(handler::Conn::new(peer));
                let tracker = framing::Tracker::new(Arc::clone(&conn.smuggling));
                let stream = framing::Sniffed::new(stream, tracker);
                let idle = state.limits.drain_idle;
                let service = service_fn(move |req| {
                    let conn = Arc::clone(&conn);
                    let state = Arc::clone(&state);
                    async move {
                        let mut resp = handler::handle(&state, &conn, req).await;
                        if state.draining.load(Ordering::Relaxed) {
                            resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                // Each connection has its own timer for the header read timeout (see deadline).
                let conn = http
                    .clone()
                    .timer(deadline::ConnTimer::default())
                    .serve_connection(TokioIo::new(stream), service);
                let (alive, mut drain) = (alive.clone(), drain.clone());
                tokio::spawn(async move {
                    let _alive = alive;
                    tokio::pin!(conn);
                    let drain_started = async move {
                        let _ = drain.wait_for(|d| *d).await;
                    };
                    let ended = tokio::select! {
                        ended = conn.as_mut() => ended,
                        () = drain_started => tokio::select! {
                            ended = conn.as_mut() => ended,
                            () = tokio::time::sleep(idle) => {
                                conn.as_mut().graceful_shutdown();
                                conn.await
                            }
                        },
                    };
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "client connection ended");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    state.draining.store(true, Ordering::Relaxed);
    let _ = drain_started.send(true);
    drop(alive);
    tokio::select! {
        _ = all_ended.recv() => {}
        () = tokio::time::sleep(state.limits.drain_timeout) => {
            tracing::warn!("drain timeout: closing remaining connections");
        }
    }
}
