//! Stand-ins for what surrounds the sidecar, for tests and the quickstart. Neither is ever a
//! default of the sidecar.
//!
//! - [`wechat`]: a WeChat code2Session **simulator** following `reference/wechat-api.md`,
//!   with deterministic openids and scriptable errcodes and delays.
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
