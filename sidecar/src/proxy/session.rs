//! Putting a fresh credential into a response at the plugin's return location.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, SET_COOKIE};
use http::{HeaderMap, Response};
use http_body_util::{Either, Full};
use wxgate_crds::render::contract::ReturnIn;

use super::upstream::AppBody;
use super::{RespBody, body};
use crate::active::LoginPlugin;

/// Adds the credential to the app's (2xx) response. With `returnIn: body`, it is merged into
/// the app's JSON object answer when that has a known length of at most `max_merge` bytes;
/// otherwise, it travels in the header of the same name.
pub async fn put(
    mut response: Response<AppBody>,
    plugin: &LoginPlugin,
    credential: &str,
    max_merge: usize,
) -> Response<RespBody> {
    let s = &plugin.config.session;
    match s.return_in {
        ReturnIn::Header => {
            set_header(response.headers_mut(), &s.name, credential);
            response.map(Either::Left)
        }
        ReturnIn::Cookie => {
            let cookie = format!(
                "{}={credential}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
                s.name,
                u64::from(s.ttl_minutes) * 60
            );
            if let Ok(v) = HeaderValue::try_from(cookie) {
                response.headers_mut().append(SET_COOKIE, v);
            }
            response.map(Either::Left)
        }
        ReturnIn::Body => {
            let mergeable = is_json(response.headers())
                && response
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
                    .is_some_and(|len| len <= max_merge);
            if !mergeable {
                set_header(response.headers_mut(), &s.name, credential);
                return response.map(Either::Left);
            }
            let (mut parts, incoming) = response.into_parts();
            let Some(bytes) = body::read_bounded(incoming, max_merge).await else {
                // The app's body broke off; say so rather than forward a truncated answer.
                return crate::error::ErrorCode::UpstreamUnavailable
                    .response()
                    .map(|b| Either::Right(Full::new(b)));
            };
            let merged = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Object(mut object)) => {
                    object.insert(s.name.clone(), credential.into());
                    Some(Bytes::from(serde_json::Value::Object(object).to_string()))
                }
                _ => None,
            };
            let body = merged.unwrap_or_else(|| {
                set_header(&mut parts.headers, &s.name, credential);
                bytes
            });
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, Either::Right(Full::new(body)))
        }
    }
}

fn set_header(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|e| {
            e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
        })
}
