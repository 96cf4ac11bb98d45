//! Forwarding to the app: one request over the client connection's own app connection, and the
//! response cleaned of what the app must not send.

use http::request::Parts;
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::Mutex;

use super::State;
use super::hygiene;
use super::upstream::{UpBody, UpstreamConn};
use crate::active::Active;
use crate::error::ErrorCode;

/// Sends a request to the app and cleans its response.
pub async fn forward(
    state: &State,
    up: &Mutex<UpstreamConn>,
    active: &Active,
    parts: Parts,
    body: UpBody,
) -> Result<Response<Incoming>, ErrorCode> {
    let mut response = up
        .lock()
        .await
        .send(&state.upstream, Request::from_parts(parts, body))
        .await?;
    hygiene::clean_response(response.headers_mut(), Some(active));
    Ok(response)
}
