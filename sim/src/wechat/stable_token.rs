//! `POST /cgi-bin/stable_token` (getStableAccessToken), as `reference/wechat-api.md` 2.6
//! describes it: JSON body `{grant_type: "client_credential", appid, secret, force_refresh}`,
//! answer `{access_token, expires_in}`.
//!
//! - Normal mode returns the same token while it has more than 5 minutes left; in its last 5
//!   minutes a new one is issued and the old one stays valid until it expires (so `expires_in`
//!   is always above 300). Tokens live 7200 s.
//! - `force_refresh: true` issues a new token and invalidates the old one at once; at most 20
//!   a day and 30 s apart. The reference names no errcode for breaking those two limits: the
//!   simulator answers 45009 (daily limit) and 45011 (too frequent), the codes WeChat uses for
//!   its quota limits.
//! - Other errors: not POST 43002, body not JSON 47001, grant_type other than
//!   `client_credential` 40002, appid missing 41002, secret missing 41004, unknown appid 40013,
//!   wrong secret 40125 (the last two only with apps configured). A secret `errNNNNN` answers
//!   that errcode (`err40164`: IP not in the whitelist; `errm1`: -1).
//! - The simulator's clock can be moved ([`Simulator::advance`]) so tests see expiry.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{Simulator, error};

/// Lifetime of a token.
pub const TOKEN_TTL_SECS: i64 = 7200;
/// In its last this many seconds a token is replaced by a normal call.
pub const REFRESH_EARLY_SECS: i64 = 300;
/// Forced refreshes allowed per day.
pub const FORCE_PER_DAY: usize = 20;
/// The least time between two forced refreshes.
pub const FORCE_SPACING_SECS: i64 = 30;

#[derive(Clone, Debug)]
struct Issued {
    token: String,
    expires_at: i64,
}

/// The tokens of one appid.
#[derive(Default)]
pub(super) struct AppTokens {
    current: Option<Issued>,
    /// The token before `current`, still valid until it expires (normal refresh only).
    previous: Option<Issued>,
    /// `current` was revoked ([`Simulator::revoke_token`]): APIs refuse it, stable_token still
    /// hands it out until a forced refresh.
    revoked: bool,
    /// When forced refreshes happened (simulator seconds).
    forced: Vec<i64>,
    issued: u32,
}

/// Tokens by appid.
pub(super) type Tokens = HashMap<String, AppTokens>;

impl AppTokens {
    fn issue(&mut self, appid: &str, now: i64) -> Issued {
        self.issued += 1;
        let digest = Sha256::digest(format!("token:{appid}:{}:{now}", self.issued));
        let issued = Issued {
            // About 130 characters, like WeChat's (which asks for 512 of storage).
            token: format!("sim{}", URL_SAFE_NO_PAD.encode(digest)).repeat(3),
            expires_at: now + TOKEN_TTL_SECS,
        };
        self.previous = self.current.replace(issued.clone());
        self.revoked = false;
        issued
    }

    pub(super) fn is_valid(&self, token: &str, now: i64) -> bool {
        let current = self.current.as_ref().filter(|_| !self.revoked).cloned();
        [&current, &self.previous]
            .into_iter()
            .flatten()
            .any(|i| i.token == token && now < i.expires_at)
    }

    /// Whether `token` was issued here, not invalidated, and is past its expiry.
    pub(super) fn has_expired(&self, token: &str, now: i64) -> bool {
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .any(|i| i.token == token && now >= i.expires_at)
    }
}

impl Simulator {
    /// Whether `token` is a valid access_token of `appid` now.
    pub fn token_is_valid(&self, appid: &str, token: &str) -> bool {
        let now = self.now();
        self.seen()
            .tokens
            .get(appid)
            .is_some_and(|t| t.is_valid(token, now))
    }

    /// Revokes the current token of `appid` the way WeChat may (after an AppSecret reset): APIs
    /// answer it 40001, while stable_token in normal mode still hands it out; only a forced
    /// refresh replaces it.
    pub fn revoke_token(&self, appid: &str) {
        if let Some(t) = self.seen().tokens.get_mut(appid) {
            t.revoked = true;
        }
    }

    /// Every token issued to `appid` that is still known (current and previous).
    pub fn tokens_of(&self, appid: &str) -> Vec<String> {
        self.seen().tokens.get(appid).map_or_else(Vec::new, |t| {
            [&t.current, &t.previous]
                .into_iter()
                .flatten()
                .map(|i| i.token.clone())
                .collect()
        })
    }

    /// stable_token calls received, and how many of them forced a refresh.
    pub fn stable_token_calls(&self) -> (u32, u32) {
        let seen = self.seen();
        (seen.stable_token_calls, seen.stable_token_forced)
    }
}

/// 43002 for any method but POST (the JSON-only APIs).
pub(super) async fn require_post() -> Response {
    error(43002)
}

pub(super) async fn stable_token(State(sim): State<Simulator>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(47001);
    };
    let text = |k: &str| req.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let (appid, secret) = (text("appid").to_owned(), text("secret").to_owned());
    let force = req
        .get("force_refresh")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let now = sim.now();
    let mut seen = sim.seen();
    seen.stable_token_calls += 1;
    if text("grant_type") != "client_credential" {
        return error(40002);
    }
    if appid.is_empty() {
        return error(41002);
    }
    if secret.is_empty() {
        return error(41004);
    }
    if let Some(errcode) = secret.strip_prefix("err") {
        return error(if errcode == "m1" {
            -1
        } else {
            errcode.parse().unwrap_or(40125)
        });
    }
    match sim.apps.get(&appid) {
        None if !sim.apps.is_empty() => return error(40013),
        Some(expected) if *expected != secret => return error(40125),
        _ => {}
    }
    let tokens = seen.tokens.entry(appid.clone()).or_default();
    let issued = if force {
        tokens.forced.retain(|t| now - t < 86_400);
        if tokens
            .forced
            .last()
            .is_some_and(|t| now - t < FORCE_SPACING_SECS)
        {
            return error(45011);
        }
        if tokens.forced.len() >= FORCE_PER_DAY {
            return error(45009);
        }
        tokens.forced.push(now);
        let issued = tokens.issue(&appid, now);
        tokens.previous = None;
        seen.stable_token_forced += 1;
        issued
    } else {
        match &tokens.current {
            Some(c) if c.expires_at - now > REFRESH_EARLY_SECS => c.clone(),
            _ => tokens.issue(&appid, now),
        }
    };
    axum::Json(serde_json::json!({
        "access_token": issued.token,
        "expires_in": issued.expires_at - now,
    }))
    .into_response()
}
