//! Forwarding to the app: one request over the client connection's own app connection, and the
//! response cleaned of what the app must not send.

use std::sync::Arc;

use http::Response;
use http::request::Parts;

use super::State;
use super::hygiene;
use super::upstream::{self, AppBody, AppSlot, UpBody};
use crate::active::Active;
use crate::error::ErrorCode;

/// Sends a request to the app and cleans its response.
pub async fn forward(
    state: &State,
    up: &Arc<AppSlot>,
    active: &Active,
    parts: &Parts,
    body: UpBody,
) -> Result<Response<AppBody>, ErrorCode> {
    let mut response = upstream::send(&state.upstream, up, parts, body).await?;
    hygiene::clean_response(response.headers_mut(), Some(active));
    Ok(response)
}
