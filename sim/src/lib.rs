//! Stand-ins for what surrounds the sidecar, for tests and the quickstart. Neither is ever a
//! default of the sidecar.
//!
//! - [`wechat`]: a WeChat code2Session and stable_token **simulator** following
//!   `reference/wechat-api.md`, with deterministic openids and scriptable errcodes and delays.
//! - [`app`]: an echo app that answers with what it received.

pub mod app;
pub mod wechat;

use std::net::SocketAddr;

/// Serves a router on an address (`127.0.0.1:0` picks a port) in the background.
pub async fn spawn(addr: SocketAddr, router: axum::Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(bound)
}

/// Serves a router until SIGTERM or Ctrl-C, then lets open requests finish. In a container the
/// binary is PID 1, which ignores SIGTERM unless it handles it: without this a pod would wait out
/// its whole grace period.
pub async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(stop_signal())
        .await
}

async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return tokio::signal::ctrl_c().await.unwrap_or_default(),
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
