//! The open-API port (`--open-api-listen`, loopback only, off by default): the app calls
//! `http://127.0.0.1:PORT/<any WeChat server API path>?<query>` without an access_token; the
//! sidecar adds the AppID's ([`crate::wechat::token`]), forwards the call to WeChat over the
//! shared client (TLS verified, no redirects) and streams the answer back. Only AppIDs whose
//! login plugin sets `openApi: true` are served; with several, the app names one in
//! `X-WX-APPID`.
//!
//! When WeChat answers 40001 or 42001 (it checks the token before anything else, so the call
//! had no effect) the token is replaced and the call is made once more with the same body, which
//! the sidecar holds for that (at most `--open-api-max-body-bytes`). Nothing else is retried.
//! Answers whose first 64 KiB are the whole body are inspected for that errcode; longer ones
//! (media, QR codes) are streamed as they come.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, header};
use tokio::sync::Semaphore;

use crate::active::{ActiveConfig, App, LoginPlugin};
use crate::error::ErrorCode;
use crate::metrics::Metrics;
use crate::wechat::WeChat;
use crate::wechat::token::AccessToken;

/// Header naming the AppID of a call when several are served.
pub const APPID_HEADER: &str = "x-wx-appid";
/// The answer prefix inspected for an errcode.
const INSPECT_BYTES: usize = 64 * 1024;
/// Distinct API paths given their own metrics label; later ones count as `other`.
const MAX_PATH_LABELS: usize = 64;
/// Longest API path accepted.
const MAX_PATH_LEN: usize = 256;

/// Settings of the open-API port.
#[derive(Clone, Copy, Debug)]
pub struct OpenApiConfig {
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub max_in_flight: usize,
}

struct OpenApi {
    active: Arc<ActiveConfig>,
    wechat: Arc<WeChat>,
    metrics: Arc<Metrics>,
    config: OpenApiConfig,
    permits: Semaphore,
    labels: Mutex<BTreeSet<String>>,
}

pub fn router(
    active: Arc<ActiveConfig>,
    wechat: Arc<WeChat>,
    metrics: Arc<Metrics>,
    config: OpenApiConfig,
) -> Router {
    let state = Arc::new(OpenApi {
        active,
        wechat,
        metrics,
        permits: Semaphore::new(config.max_in_flight.max(1)),
        config,
        labels: Mutex::default(),
    });
    Router::new().fallback(call).with_state(state)
}

/// What WeChat answered: headers of the answer and the body, whole or streaming.
enum Answer {
    Whole(http::StatusCode, HeaderMap, Bytes),
    Streaming(http::StatusCode, HeaderMap, Bytes, reqwest::Response),
}

async fn call(State(api): State<Arc<OpenApi>>, request: Request) -> Response {
    let Ok(_permit) = api.permits.try_acquire() else {
        return error(ErrorCode::WxUnavailable);
    };
    match forward(&api, request).await {
        Ok(response) => response,
        Err(code) => error(code),
    }
}

async fn forward(api: &OpenApi, request: Request) -> Result<Response, ErrorCode> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if !is_api_path(&path) || !matches!(parts.method, Method::GET | Method::POST) {
        return Err(ErrorCode::BadRequest);
    }
    let active = api.active.load().ok_or(ErrorCode::NotReady)?;
    let app = choose(&active.plugins, &parts.headers)?;
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .filter(|(k, _)| k != "access_token")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let body = axum::body::to_bytes(body, api.config.max_body_bytes)
        .await
        .map_err(|_| ErrorCode::RequestTooLarge)?;
    let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    let tokens = &api.wechat.tokens;
    let label = api.label(&path);
    let send = |token: AccessToken| {
        let (content_type, body) = (content_type.clone(), body.clone());
        let (method, path, query) = (&parts.method, &path, &query);
        async move {
            api.send(method, path, query, &token, content_type, body)
                .await
        }
    };
    let token = tokens.get(&app.app_id, &app.app_secret).await?;
    let mut answer = send(token.clone()).await;
    if let Ok(Answer::Whole(_, _, bytes)) = &answer
        && matches!(errcode(bytes), Some(40001 | 42001))
    {
        api.metrics.wechat_api_call(&label, errcode_label(bytes));
        let token = tokens
            .rejected(&app.app_id, &app.app_secret, &token)
            .await?;
        answer = send(token).await;
    }
    let answer = answer.inspect_err(|f| api.metrics.wechat_api_call(&label, f.label()));
    match answer.map_err(|f| match f {
        crate::wechat::Failure::Timeout => ErrorCode::WxTimeout,
        crate::wechat::Failure::Unreachable => ErrorCode::WxUnavailable,
        _ => ErrorCode::WxBadResponse,
    })? {
        Answer::Whole(status, headers, bytes) => {
            api.metrics.wechat_api_call(&label, errcode_label(&bytes));
            Ok(respond(status, &headers, Body::from(bytes)))
        }
        Answer::Streaming(status, headers, head, rest) => {
            api.metrics.wechat_api_call(&label, "0");
            let tail = futures_util::stream::unfold(rest, |mut rest| async move {
                match rest.chunk().await {
                    Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), rest)),
                    Ok(None) => None,
                    Err(_) => Some((
                        Err(std::io::Error::other("WeChat's answer broke off")),
                        rest,
                    )),
                }
            });
            let head = futures_util::stream::once(async move { Ok(head) });
            use futures_util::StreamExt as _;
            Ok(respond(
                status,
                &headers,
                Body::from_stream(head.chain(tail)),
            ))
        }
    }
}

impl OpenApi {
    async fn send(
        &self,
        method: &Method,
        path: &str,
        query: &[(String, String)],
        token: &AccessToken,
        content_type: Option<HeaderValue>,
        body: Bytes,
    ) -> Result<Answer, crate::wechat::Failure> {
        let mut request = self
            .wechat
            .http()?
            .request(method.clone(), format!("{}{path}", self.wechat.api_base()))
            .query(query)
            .query(&[("access_token", token.expose())])
            .timeout(self.config.timeout);
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        if *method == Method::POST {
            request = request.body(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| crate::wechat::send_failure(&e))?;
        let (status, headers) = (response.status(), response.headers().clone());
        let mut head = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    head.extend_from_slice(&chunk);
                    if head.len() > INSPECT_BYTES {
                        return Ok(Answer::Streaming(status, headers, head.into(), response));
                    }
                }
                Ok(None) => return Ok(Answer::Whole(status, headers, head.into())),
                Err(e) => return Err(crate::wechat::send_failure(&e)),
            }
        }
    }

    /// The metrics label of an API path: itself for the first [`MAX_PATH_LABELS`] paths seen,
    /// `other` after.
    fn label(&self, path: &str) -> String {
        let mut labels = self.labels.lock().unwrap_or_else(|e| e.into_inner());
        if labels.contains(path) || labels.len() < MAX_PATH_LABELS {
            labels.insert(path.to_owned());
            path.to_owned()
        } else {
            "other".to_owned()
        }
    }
}

/// The mini program whose AppID serves a call: the one `X-WX-APPID` names among those of the
/// plugins with `openApi`, or without the header the only AppID there is.
fn choose<'a>(plugins: &'a [LoginPlugin], headers: &HeaderMap) -> Result<&'a App, ErrorCode> {
    let mut served = plugins
        .iter()
        .filter(|p| p.config.open_api)
        .flat_map(|p| &p.apps);
    match headers.get(APPID_HEADER) {
        Some(named) => served
            .find(|a| a.app_id.as_bytes() == named.as_bytes())
            .ok_or(ErrorCode::OpenApiAppUnknown),
        None => {
            let first = served.next().ok_or(ErrorCode::OpenApiAppUnknown)?;
            match served.all(|a| a.app_id == first.app_id) {
                true => Ok(first),
                false => Err(ErrorCode::OpenApiAppUnknown),
            }
        }
    }
}

/// A WeChat API path: `/` then segments of `[A-Za-z0-9_.-]`, none empty, `.` or `..`.
fn is_api_path(path: &str) -> bool {
    path.len() <= MAX_PATH_LEN
        && path.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            })
        })
}

fn errcode(body: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Errcode {
        errcode: Option<i64>,
    }
    serde_json::from_slice::<Errcode>(body).ok()?.errcode
}

fn errcode_label(body: &[u8]) -> &'static str {
    match errcode(body) {
        Some(e) => crate::wechat::Failure::Errcode(e).label(),
        None => "0",
    }
}

fn error(code: ErrorCode) -> Response {
    code.response().map(Body::from)
}

/// The answer to the app: WeChat's status, its content type and disposition, the body.
fn respond(status: http::StatusCode, headers: &HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
        if let Some(v) = headers.get(&name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_plain_segments() {
        for ok in [
            "/wxa/msg_sec_check",
            "/cgi-bin/message/subscribe/send",
            "/a.b-c_d",
        ] {
            assert!(is_api_path(ok), "{ok}");
        }
        for bad in [
            "", "/", "//a", "/a/../b", "/a/./b", "/a%2fb", "/a b", "/a/", "a",
        ] {
            assert!(!is_api_path(bad), "{bad}");
        }
        assert!(!is_api_path(&format!("/{}", "a".repeat(300))));
    }
}
