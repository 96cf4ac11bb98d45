//! One request: hygiene, routing, then pass-through, login or verification; metrics and the
//! access log at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;
use sha2::{Digest, Sha256};

use super::forward::forward;
use super::record::Record;
use super::upstream::AppSlot;
use super::{RespBody, State, body, hygiene, login, verify};
use crate::error::ErrorCode;
use crate::metrics::RouteKind;
use crate::routing;
use crate::{tags, trace};

/// What a request knows of its client connection (one per connection, shared by its requests).
pub struct Conn {
    /// The client's address as an X-Forwarded-For entry, written once per connection.
    forwarded_for: Option<HeaderValue>,
    /// The connection's own upstream connection.
    pub up: Arc<AppSlot>,
    /// Raised by the framing guard when a request carried both Content-Length and
    /// Transfer-Encoding.
    pub smuggling: Arc<AtomicBool>,
}

impl Conn {
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            forwarded_for: HeaderValue::try_from(peer.ip().to_string()).ok(),
            up: Arc::default(),
            smuggling: Arc::default(),
        }
    }
}

pub async fn handle(state: &State, conn: &Conn, req: Request<Incoming>) -> Response<RespBody> {
    let started = state.access_log.then(Instant::now);
    // The request head lives here; every step below borrows it.
    let (mut parts, body) = req.into_parts();
    let path = state.access_log.then(|| parts.uri.path().to_owned());
    let mut rec = Record {
        route: RouteKind::None,
        trace: None,
        code: None,
        openid: None,
        span: None,
        tags: Vec::new(),
    };
    // Framing that cannot be trusted, or a head too large to keep reading from: answered, and
    // the connection closed (hyper closes it after an answer saying `Connection: close`).
    let refused = if conn.smuggling.swap(false, Ordering::AcqRel) || hygiene::is_ambiguous(&parts) {
        Some(ErrorCode::BadRequest)
    } else if header_bytes(&parts) > state.limits.max_header_bytes {
        Some(ErrorCode::HeadersTooLarge)
    } else {
        None
    };
    let response = match refused {
        Some(code) => {
            let mut r = rec.reject(code);
            r.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        None => dispatch(state, conn, &mut parts, body, &mut rec).await,
    };
    let mut response = response;
    if let Some((_, trace_id)) = &rec.trace
        && let Ok(v) = HeaderValue::from_str(trace_id)
    {
        response.headers_mut().insert("x-wxgate-trace-id", v);
    }
    if let Some(span) = rec.span.take() {
        let code = rec.code.map(ErrorCode::as_str);
        span.finish(response.status().as_u16(), rec.route.as_str(), code);
    }
    state.metrics.request(rec.route, rec.code);
    if let Some(path) = path {
        let openid_hash = rec.openid.as_deref().map(hash_openid);
        tracing::info!(
            target: "wxgate::access",
            method = %parts.method,
            path = %path,
            status = response.status().as_u16(),
            route = rec.route.as_str(),
            code = rec.code.map(ErrorCode::as_str),
            openid_hash = openid_hash.as_deref(),
            trace_param = rec.trace.as_ref().map(|(v, _)| v.as_str()),
            trace_id = rec.trace.as_ref().map(|(_, t)| t.as_str()),
            duration_us = started.map_or(0, |s| s.elapsed().as_micros() as u64),
        );
    }
    response
}

/// Bytes of the request line and headers, as the client sent them (give or take whitespace).
fn header_bytes(parts: &Parts) -> usize {
    let target = parts.uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    let line = parts.method.as_str().len() + target + 12;
    parts
        .headers
        .iter()
        .fold(line, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

/// 16 hex characters of the SHA-256 of an openid: enough to follow one user in the logs.
pub fn hash_openid(openid: &str) -> String {
    hex::encode(&Sha256::digest(openid.as_bytes())[..8])
}

async fn dispatch(
    state: &State,
    conn: &Conn,
    parts: &mut Parts,
    body: Incoming,
    rec: &mut Record,
) -> Response<RespBody> {
    let active = state.active.load();
    hygiene::clean_request(parts, active.as_deref());
    let Some(active) = active else {
        return rec.reject(ErrorCode::NotReady);
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > state.limits.max_body_bytes) {
        return rec.reject(ErrorCode::RequestTooLarge);
    }
    let (plugin, is_login, tagged) = {
        let Some(path) = routing::normalize(parts.uri.path()) else {
            return rec.reject(ErrorCode::BadRequest);
        };
        let tagged = active.tag_plugin(&path, &parts.method).map(|(tag, api)| {
            let route = api.map(|a| a.path.clone());
            (tags::extract(tag, api, &path, parts), route)
        });
        match active.login_plugin(&path, &parts.method) {
            None => (None, false, tagged),
            Some(p) => (Some(p), login::is_login(p, &path, parts), tagged),
        }
    };
    if let Some((tagged, route)) = tagged {
        if let Some(value) = tagged.trace_value {
            let trace_id = match &state.spans {
                Some(spans) => {
                    let path = parts.uri.path().to_owned();
                    let (span, trace_id) =
                        spans.start(&mut parts.headers, &parts.method, &path, route.as_deref());
                    rec.span = Some(span);
                    trace_id
                }
                None => trace::ensure_traceparent(&mut parts.headers),
            };
            rec.trace = Some((value, trace_id));
        }
        // Added with the login plugin's WeChat tags, which come first under the cap.
        rec.tags = tagged.tags;
    }
    origin_form(parts);
    append_forwarded_for(parts, conn);
    let up = &conn.up;
    match plugin {
        None => {
            rec.route = RouteKind::Unbound;
            rec.emit_tags(&mut parts.headers, Vec::new());
            let up_body = body::stream_up(body, state.limits.max_body_bytes);
            match forward(state, up, &active, parts, up_body).await {
                Ok(r) => r.map(Either::Left),
                Err(code) => rec.reject(code),
            }
        }
        Some(plugin) if is_login => {
            rec.route = RouteKind::Login;
            // Boxed: a login's WeChat call holds a large future, which would otherwise be part
            // of (and be moved with) every request's.
            Box::pin(login::handle(state, up, &active, plugin, parts, body, rec)).await
        }
        Some(plugin) => {
            rec.route = RouteKind::Verify;
            verify::handle(state, up, &active, plugin, parts, body, rec).await
        }
    }
}

/// The app gets `/path?query`, whatever form the client used.
fn origin_form(parts: &mut Parts) {
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::from(pq);
    }
}

/// Appends the client's address to X-Forwarded-For (the client's own entries first).
fn append_forwarded_for(parts: &mut Parts, conn: &Conn) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    let Some(ip) = &conn.forwarded_for else {
        return;
    };
    let value = match parts.headers.get(&XFF).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.is_empty() => {
            let mut joined = Vec::with_capacity(prev.len() + 2 + ip.len());
            joined.extend_from_slice(prev.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(ip.as_bytes());
            HeaderValue::from_bytes(&joined).ok()
        }
        // The usual case: the connection's value, shared.
        _ => Some(ip.clone()),
    };
    if let Some(v) = value {
        parts.headers.insert(XFF, v);
    }
}
