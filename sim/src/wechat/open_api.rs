//! A few of WeChat's other server APIs, for tests of a caller that adds the access_token: each
//! checks the token as [`super::phone`] does (41001, 40001, 42001) and records the call.
//!
//! - `GET /cgi-bin/getcallbackip`: `{"ip_list": [...]}`.
//! - `POST /wxa/msg_sec_check`: `{"errcode": 0, "errmsg": "ok"}` for a JSON body, 47001 for any
//!   other.
//! - `POST /wxa/getwxacodeunlimit`: a 200 KiB `image/jpeg` body (an answer too long to be
//!   buffered whole), 47001 for a body that is not JSON.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, Uri, header};
use axum::response::{IntoResponse, Response};

use super::phone::TokenQuery;
use super::{Simulator, error};

/// Size of the simulated QR-code image.
pub const IMAGE_BYTES: usize = 200 * 1024;

/// One call to an open API, as received (the access_token left out of the query).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenApiCall {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The appid of the token, or the errcode it was refused with.
    pub appid: Result<String, i64>,
}

impl Simulator {
    /// Every open-API call received so far.
    pub fn open_api_calls(&self) -> Vec<OpenApiCall> {
        self.seen().open_api.clone()
    }

    fn record(&self, method: &Method, uri: &Uri, token: &str, body: &Bytes) -> Result<String, i64> {
        let appid = self.token_owner(token);
        let query = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .filter(|(k, _)| k != "access_token")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        self.seen().open_api.push(OpenApiCall {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query,
            body: body.to_vec(),
            appid: appid.clone(),
        });
        appid
    }
}

pub(super) async fn getcallbackip(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Err(errcode) = sim.record(&method, &uri, &q.access_token, &Bytes::new()) {
        return error(errcode);
    }
    axum::Json(serde_json::json!({"ip_list": ["101.226.103.0/25", "101.226.233.128/25"]}))
        .into_response()
}

pub(super) async fn msg_sec_check(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    if let Err(errcode) = sim.record(&method, &uri, &q.access_token, &body) {
        return error(errcode);
    }
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return error(47001);
    }
    axum::Json(serde_json::json!({"errcode": 0, "errmsg": "ok"})).into_response()
}

pub(super) async fn getwxacodeunlimit(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    if let Err(errcode) = sim.record(&method, &uri, &q.access_token, &body) {
        return error(errcode);
    }
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return error(47001);
    }
    ([(header::CONTENT_TYPE, "image/jpeg")], image()).into_response()
}

/// The simulated image: [`IMAGE_BYTES`] bytes, the same every time.
pub fn image() -> Vec<u8> {
    (0..IMAGE_BYTES).map(|i| (i % 251) as u8).collect()
}
