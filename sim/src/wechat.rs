//! WeChat simulator: code2Session (`GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=`)
//! the AppID's access_token ([`stable_token`]), the phone number ([`phone`]) and a few other
//! server APIs ([`open_api`]).
//!
//! Behaviour (as `reference/wechat-api.md` describes the real service):
//! - success usually has **no errcode** and comes as **`text/plain`**; codes starting with
//!   `json-` get `"errcode":0` and `application/json`;
//! - a code is single use: a second exchange of a code that succeeded answers 40163;
//! - `openid` is deterministic per (appid, user), where the user is the part of the code before
//!   its first `_` (`alice_1` and `alice_2` are the same user); `unionid` likewise (left out
//!   for codes starting with `nounion-`); `session_key` is new per code;
//! - a missing appid answers 41002; with `--app APPID:SECRET` configured, an unknown appid
//!   answers 40013 and a wrong secret 40125;
//! - the code's first `-`-separated word scripts the answer: `errNNNNN` (that errcode, e.g.
//!   `err40029-x`), `errm1` (-1), `flaky` (-1 once, then success), `flaky2` (-1 twice),
//!   `delayMS` (sleep MS milliseconds, then success), `garbage` (not JSON), `huge` (a 5 MB
//!   body), `http500` (HTTP 500), `badopenid` (an openid with CR LF).
//! - QQ's code2Session is served under `/qq` (`/qq/sns/jscode2session`, for a sidecar's
//!   `--qq-api-base http://<sim>/qq`): the same, except that a used code answers QQ's 40029 and
//!   success is JSON with `errcode: 0` (QQ documents only -1, 0, 40029 and 45011).

mod open_api;
mod phone;
mod stable_token;

pub use open_api::{IMAGE_BYTES, OpenApiCall, image};
pub use phone::{OTHER_APPID, phone_number};

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// What the simulator has seen.
#[derive(Default)]
struct Seen {
    calls: HashMap<String, u32>,
    used: std::collections::HashSet<String>,
    total: u32,
    /// Of `total`, the calls to QQ's endpoint.
    qq_total: u32,
    /// Every query received, as (name, value) pairs, for tests that check what was sent.
    queries: Vec<Vec<(String, String)>>,
    tokens: stable_token::Tokens,
    stable_token_calls: u32,
    stable_token_forced: u32,
    phone_calls: u32,
    phone_paid: u32,
    phone_codes: std::collections::HashSet<String>,
    open_api: Vec<open_api::OpenApiCall>,
}

/// A simulator; clone it to keep a handle on its counters.
#[derive(Clone, Default)]
pub struct Simulator {
    apps: Arc<HashMap<String, String>>,
    seen: Arc<Mutex<Seen>>,
    /// Seconds added to the system clock ([`Simulator::advance`]).
    offset: Arc<AtomicI64>,
}

impl Simulator {
    /// `apps`: appid → secret pairs to enforce; empty accepts any non-empty appid and secret.
    pub fn new(apps: HashMap<String, String>) -> Self {
        Self {
            apps: Arc::new(apps),
            seen: Arc::default(),
            offset: Arc::default(),
        }
    }

    /// Moves the simulator's clock forward (token expiry in tests).
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// The simulator's clock, in Unix seconds.
    fn now(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        real.saturating_add(self.offset.load(Ordering::Relaxed))
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/sns/jscode2session", get(code2session))
            .route("/qq/sns/jscode2session", get(qq_code2session))
            .route(
                "/cgi-bin/stable_token",
                post(stable_token::stable_token).get(stable_token::require_post),
            )
            .route(
                "/wxa/business/getuserphonenumber",
                post(phone::getuserphonenumber).get(stable_token::require_post),
            )
            .route("/cgi-bin/getcallbackip", get(open_api::getcallbackip))
            .route("/wxa/msg_sec_check", post(open_api::msg_sec_check))
            .route("/wxa/getwxacodeunlimit", post(open_api::getwxacodeunlimit))
            .route("/sim/calls", get(calls))
            .with_state(self.clone())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls received for one code.
    pub fn calls(&self, code: &str) -> u32 {
        self.seen().calls.get(code).copied().unwrap_or(0)
    }

    /// Calls received in all.
    pub fn total(&self) -> u32 {
        self.seen().total
    }

    /// Calls received at QQ's code2Session (`/qq/sns/jscode2session`).
    pub fn qq_total(&self) -> u32 {
        self.seen().qq_total
    }

    /// Every query received so far.
    pub fn queries(&self) -> Vec<Vec<(String, String)>> {
        self.seen().queries.clone()
    }
}

/// The openid the simulator gives a user of an app.
pub fn openid(appid: &str, code: &str) -> String {
    id("o", "openid", appid, code)
}

/// The unionid the simulator gives a user of an app.
pub fn unionid(appid: &str, code: &str) -> String {
    id("u", "unionid", appid, code)
}

fn id(prefix: &str, label: &str, appid: &str, code: &str) -> String {
    let user = code.split('_').next().unwrap_or(code);
    let digest = Sha256::digest(format!("{label}:{appid}:{user}"));
    format!("{prefix}{}", &URL_SAFE_NO_PAD.encode(digest)[..27])
}

/// The session_key the simulator gives for a code.
pub fn session_key(appid: &str, code: &str) -> String {
    STANDARD.encode(&Sha256::digest(format!("sk:{appid}:{code}"))[..16])
}

fn errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40029 => "invalid code",
        40163 => "code been used",
        40226 => "code blocked",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        40013 => "invalid appid",
        40125 => "invalid appsecret",
        41002 => "appid missing",
        41004 => "appsecret missing",
        40002 => "invalid grant_type",
        40001 => "invalid credential, access_token is invalid or not latest",
        42001 => "access_token expired",
        41001 => "access_token missing",
        40164 => "invalid ip, not in whitelist",
        43002 => "require POST method",
        45009 => "reach max api daily quota limit",
        47001 => "data format error",
        _ => "unknown error",
    }
}

fn error(errcode: i64) -> Response {
    let body = serde_json::json!({"errcode": errcode, "errmsg": errmsg(errcode)}).to_string();
    (
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

/// WeChat's code2Session.
async fn code2session(
    State(sim): State<Simulator>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    exchange(sim, q, false).await
}

/// QQ's code2Session (`GET https://api.q.qq.com/sns/jscode2session`, served under `/qq`): the
/// same parameters and answer fields as WeChat's, and QQ's errcodes only (-1 busy, 40029 code
/// invalid, 45011 rate limit): a code used twice is 40029, as QQ documents no "code used";
/// success carries `errcode: 0` as JSON.
async fn qq_code2session(
    State(sim): State<Simulator>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    exchange(sim, q, true).await
}

async fn exchange(sim: Simulator, q: Vec<(String, String)>, qq: bool) -> Response {
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let (appid, secret, code) = (
        get("appid").to_owned(),
        get("secret").to_owned(),
        get("js_code").to_owned(),
    );
    let attempt = {
        let mut seen = sim.seen();
        seen.total += 1;
        seen.qq_total += u32::from(qq);
        seen.queries.push(q.clone());
        let n = seen.calls.entry(code.clone()).or_default();
        *n += 1;
        *n
    };
    if appid.is_empty() {
        return error(41002);
    }
    match sim.apps.get(&appid) {
        None if !sim.apps.is_empty() => return error(40013),
        Some(expected) if *expected != secret => return error(40125),
        _ if secret.is_empty() => return error(40125),
        _ => {}
    }
    if code.is_empty() || get("grant_type") != "authorization_code" {
        return error(40029);
    }
    let script = code.split('-').next().unwrap_or_default();
    if let Some(errcode) = script.strip_prefix("err") {
        let errcode = if errcode == "m1" {
            -1
        } else {
            errcode.parse().unwrap_or(40029)
        };
        return error(errcode);
    }
    match script {
        "flaky" if attempt == 1 => return error(-1),
        "flaky2" if attempt <= 2 => return error(-1),
        "garbage" => {
            return ([(header::CONTENT_TYPE, "text/html")], "<html>busy</html>").into_response();
        }
        "huge" => {
            return ([(header::CONTENT_TYPE, "text/plain")], "x".repeat(5 << 20)).into_response();
        }
        "http500" => return (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response(),
        s if s.starts_with("delay") => {
            let ms = s["delay".len()..].parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        _ => {}
    }
    if !sim.seen().used.insert(code.clone()) {
        return error(if qq { 40029 } else { 40163 });
    }
    let mut answer = serde_json::json!({
        "openid": if script == "badopenid" { "o\r\nX-Evil: 1".to_owned() } else { openid(&appid, &code) },
        "session_key": session_key(&appid, &code),
    });
    if script != "nounion" {
        answer["unionid"] = unionid(&appid, &code).into();
    }
    if script == "json" || qq {
        answer["errcode"] = 0.into();
        answer["errmsg"] = "ok".into();
        return (
            [(header::CONTENT_TYPE, "application/json")],
            answer.to_string(),
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain")], answer.to_string()).into_response()
}

async fn calls(State(sim): State<Simulator>) -> Response {
    let seen = sim.seen();
    axum::Json(serde_json::json!({
        "total": seen.total,
        "qq": seen.qq_total,
        "codes": seen.calls,
        "stable_token": {"calls": seen.stable_token_calls, "forced": seen.stable_token_forced},
        "phone": {"calls": seen.phone_calls, "paid": seen.phone_paid},
        "open_api": seen.open_api.len(),
    }))
    .into_response()
}
