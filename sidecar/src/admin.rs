//! The admin port: `/healthz`, `/ready`, `/metrics`. Never on the traffic port.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::active::ActiveConfig;
use crate::metrics::Metrics;

#[derive(Clone)]
struct Admin {
    active: Arc<ActiveConfig>,
    metrics: Arc<Metrics>,
}

pub fn router(active: Arc<ActiveConfig>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(Admin { active, metrics })
}

/// 200 once a valid config is in effect (body: its version), 503 before.
async fn ready(State(admin): State<Admin>) -> impl IntoResponse {
    match admin.active.version() {
        Some(version) => (StatusCode::OK, format!("ready {version}\n")),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no valid config yet\n".to_owned(),
        ),
    }
}

async fn metrics_text(State(admin): State<Admin>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.render(),
    )
}
