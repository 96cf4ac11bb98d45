//! An echo app: answers every request with JSON describing what it received (method, path,
//! query, headers, body), so tests and the quickstart can see exactly what the sidecar forwarded.
//!
//! Special paths: `/status/NNN` answers with that status; `/slow/MS` waits MS milliseconds;
//! `/text` answers `text/plain`. A query `respond_header=NAME:VALUE` adds that header to the
//! answer (to test what the sidecar strips from responses).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

/// The echo app; clone it to keep a handle on its request count.
#[derive(Clone, Default)]
pub struct EchoApp {
    requests: Arc<AtomicU32>,
    redact_session_key: bool,
}

impl EchoApp {
    /// An app that echoes `x-wx-session-key` only as its length, as a real app must never send
    /// the session_key back to the mini program.
    pub fn redacting() -> Self {
        Self {
            redact_session_key: true,
            ..Self::default()
        }
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(echo).with_state(self.clone())
    }

    /// Requests received so far.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn echo(State(app): State<EchoApp>, req: Request) -> Response {
    app.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body: Bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<_> = parts
            .headers
            .get_all(name)
            .iter()
            .map(
                |v| match app.redact_session_key && name == "x-wx-session-key" {
                    true => format!("<{} bytes, not echoed>", v.len()),
                    false => String::from_utf8_lossy(v.as_bytes()).into_owned(),
                },
            )
            .collect();
        headers.insert(name.as_str().to_owned(), values.join(", ").into());
    }
    let path = parts.uri.path().to_owned();
    let echo = serde_json::json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut status = StatusCode::OK;
    if let Some(code) = path.strip_prefix("/status/") {
        status = code
            .parse()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::OK);
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let mut response = if path == "/text" {
        (status, "plain text\n").into_response()
    } else {
        let mut r = Response::new(Body::from(echo.to_string()));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    for (k, v) in form_pairs(parts.uri.query().unwrap_or_default()) {
        if k != "respond_header" {
            continue;
        }
        if let Some((name, value)) = v.split_once(':')
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            )
        {
            response.headers_mut().append(n, v);
        }
    }
    response
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
