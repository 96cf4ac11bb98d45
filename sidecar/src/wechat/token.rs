//! The AppID's access_token, from getStableAccessToken (`POST /cgi-bin/stable_token`, never
//! `cgi-bin/token`, which would invalidate the token of every other caller of the AppID), as
//! `reference/wechat-api.md` 2.6 describes it.
//!
//! - Fetched on first need and cached until it expires, counted from when the fetch started
//!   (so the sidecar never believes a token lives longer than WeChat does).
//! - In its last [`REFRESH_AHEAD`] a request that uses it starts one refresh in the background
//!   and goes on with the current token (WeChat keeps the old token valid to its expiry).
//! - One call per AppID at a time: requests that find no usable token wait for that one call
//!   and share its outcome; a failure is shared for [`FAILURE_MEMORY`] so a queue of waiters does
//!   not turn into a queue of calls while WeChat is down.
//! - When WeChat rejects a token (40001, 42001) [`AccessTokens::rejected`] first asks again
//!   normally, which costs nothing and gives WeChat's current token if another caller forced a
//!   new one; only if WeChat still hands out the rejected token does it force a refresh, at most
//!   once per [`FORCE_SPACING`] and within a daily budget (WeChat allows 20 a day for the AppID,
//!   shared by every caller), reported as `wxgate_access_token_force_budget`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use wxgate_crds::secret::SecretString;

use super::client::LazyClient;
use super::{Failure, post_json};
use crate::error::ErrorCode;
use crate::metrics::Metrics;

/// How long before its expiry a token is refreshed in the background.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// How long a failed fetch is the answer for the AppID before the next call to WeChat.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(2);
/// The least time between two forced refreshes (WeChat's limit).
pub const FORCE_SPACING: Duration = Duration::from_secs(30);
/// The window of the daily forced-refresh budget.
const DAY: Duration = Duration::from_secs(86_400);
/// The least time between two background refreshes of one AppID.
const REFRESH_SPACING: Duration = Duration::from_secs(10);
/// Longest token stored (WeChat asks for 512 characters of storage).
const MAX_TOKEN_LEN: usize = 512;

/// An access_token: cheap to clone, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<SecretString>);

impl AccessToken {
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The clock token lifetimes are measured with: the monotonic clock, which tests can move
/// forward ([`Clock::advance`]); the sidecar itself never moves it.
#[derive(Default)]
pub struct Clock {
    ahead_ms: AtomicU64,
}

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.ahead_ms.load(Ordering::Relaxed))
    }

    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ahead_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Settings of the token manager.
#[derive(Clone, Copy, Debug)]
pub struct TokenConfig {
    /// Forced refreshes allowed per AppID in 24 hours (WeChat's limit is 20 for the AppID,
    /// shared by all its callers).
    pub force_per_day: usize,
}

/// The access_tokens of every AppID this sidecar serves.
pub struct AccessTokens {
    http: Arc<LazyClient>,
    url: String,
    config: TokenConfig,
    clock: Clock,
    apps: Mutex<HashMap<String, Arc<Slot>>>,
    metrics: Arc<Metrics>,
}

/// One AppID's token.
#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    /// Held for each call to WeChat: one at a time.
    calling: tokio::sync::Mutex<()>,
    /// A background refresh is under way.
    refreshing: AtomicBool,
}

#[derive(Default)]
struct State {
    token: Option<(AccessToken, Instant)>,
    failed: Option<(Instant, ErrorCode)>,
    fetched: Option<Instant>,
    forced: VecDeque<Instant>,
}

impl State {
    fn usable(&self, now: Instant) -> Option<&(AccessToken, Instant)> {
        self.token.as_ref().filter(|(_, expires)| now < *expires)
    }

    fn recent_failure(&self, now: Instant) -> Option<ErrorCode> {
        self.failed
            .filter(|(at, _)| now.duration_since(*at) < FAILURE_MEMORY)
            .map(|(_, e)| e)
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl AccessTokens {
    pub fn new(
        http: Arc<LazyClient>,
        api_base: &str,
        config: TokenConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            url: format!("{}/cgi-bin/stable_token", api_base.trim_end_matches('/')),
            config,
            clock: Clock::default(),
            apps: Mutex::default(),
            metrics,
        })
    }

    /// The clock token lifetimes are measured with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn slot(&self, app_id: &str) -> Arc<Slot> {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(apps.entry(app_id.to_owned()).or_default())
    }

    /// The AppID's current token: the cached one, else one fetched now (one call at a time).
    pub async fn get(
        self: &Arc<Self>,
        app_id: &str,
        secret: &SecretString,
    ) -> Result<AccessToken, ErrorCode> {
        let slot = self.slot(app_id);
        let now = self.clock.now();
        let cached = lock(&slot.state).usable(now).cloned();
        if let Some((token, expires)) = cached {
            if expires.duration_since(now) < REFRESH_AHEAD {
                self.refresh_in_background(&slot, app_id, secret);
            }
            return Ok(token);
        }
        let _calling = slot.calling.lock().await;
        let now = self.clock.now();
        {
            let state = lock(&slot.state);
            if let Some((token, _)) = state.usable(now) {
                return Ok(token.clone());
            }
            if let Some(error) = state.recent_failure(now) {
                return Err(error);
            }
        }
        self.fetch(&slot, app_id, secret, false).await
    }

    /// WeChat answered 40001 or 42001 to a call made with `token`: the AppID's next token, from
    /// a normal call if WeChat has moved on to another one, else from a forced refresh within
    /// its spacing and budget.
    pub async fn rejected(
        self: &Arc<Self>,
        app_id: &str,
        secret: &SecretString,
        token: &AccessToken,
    ) -> Result<AccessToken, ErrorCode> {
        let slot = self.slot(app_id);
        let _calling = slot.calling.lock().await;
        let now = self.clock.now();
        {
            let mut state = lock(&slot.state);
            match state.usable(now) {
                Some((current, _)) if current != token => return Ok(current.clone()),
                _ => state.token = None,
            }
            if let Some(error) = state.recent_failure(now) {
                return Err(error);
            }
        }
        let fresh = self.fetch(&slot, app_id, secret, false).await?;
        if fresh != *token {
            return Ok(fresh);
        }
        lock(&slot.state).token = None;
        let now = self.clock.now();
        let allowed = {
            let mut state = lock(&slot.state);
            while state
                .forced
                .front()
                .is_some_and(|t| now.duration_since(*t) >= DAY)
            {
                state.forced.pop_front();
            }
            let spaced = state
                .forced
                .back()
                .is_none_or(|t| now.duration_since(*t) >= FORCE_SPACING);
            let within = state.forced.len() < self.config.force_per_day;
            if spaced && within {
                state.forced.push_back(now);
            } else {
                // Shared like a failed fetch: a storm of rejections costs one call per
                // FAILURE_MEMORY, not one each.
                state.failed = Some((now, ErrorCode::WxTokenUnavailable));
            }
            self.metrics.token_force_budget(
                app_id,
                self.config.force_per_day.saturating_sub(state.forced.len()),
            );
            spaced && within
        };
        if !allowed {
            self.metrics.token_forced("refused");
            tracing::warn!(
                app_id,
                "WeChat rejected the access_token and a forced refresh is not allowed now (30 s apart, daily budget)"
            );
            return Err(ErrorCode::WxTokenUnavailable);
        }
        let forced = self.fetch(&slot, app_id, secret, true).await;
        self.metrics
            .token_forced(if forced.is_ok() { "ok" } else { "error" });
        forced
    }

    fn refresh_in_background(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        app_id: &str,
        secret: &SecretString,
    ) {
        if slot.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (this, slot, app_id, secret) = (
            Arc::clone(self),
            Arc::clone(slot),
            app_id.to_owned(),
            secret.clone(),
        );
        tokio::spawn(async move {
            {
                let _calling = slot.calling.lock().await;
                let now = this.clock.now();
                let due = {
                    let state = lock(&slot.state);
                    let recent = state
                        .fetched
                        .is_some_and(|t| now.duration_since(t) < REFRESH_SPACING);
                    let ahead = state
                        .usable(now)
                        .is_none_or(|(_, e)| e.duration_since(now) < REFRESH_AHEAD);
                    ahead && !recent && state.recent_failure(now).is_none()
                };
                if due {
                    let _ = this.fetch(&slot, &app_id, &secret, false).await;
                }
            }
            slot.refreshing.store(false, Ordering::Release);
        });
    }

    /// One call to stable_token, its outcome stored in the slot. The caller holds `calling`.
    async fn fetch(
        &self,
        slot: &Slot,
        app_id: &str,
        secret: &SecretString,
        force: bool,
    ) -> Result<AccessToken, ErrorCode> {
        let started = self.clock.now();
        let result = self.request(app_id, secret, force).await;
        self.metrics.wechat_api_call(
            "stable_token",
            result.as_ref().err().map_or("0", Failure::label),
        );
        let mut state = lock(&slot.state);
        state.fetched = Some(started);
        match result {
            Ok((token, lifetime)) => {
                state.token = Some((token.clone(), started + lifetime));
                state.failed = None;
                Ok(token)
            }
            Err(failure) => {
                let error = token_error(&failure, app_id);
                state.failed = Some((self.clock.now(), error));
                Err(error)
            }
        }
    }

    async fn request(
        &self,
        app_id: &str,
        secret: &SecretString,
        force: bool,
    ) -> Result<(AccessToken, Duration), Failure> {
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": app_id,
            "secret": secret.expose(),
            "force_refresh": force,
        });
        parse_answer(&post_json(self.http.get()?.post(&self.url), &body).await?)
    }
}

/// Reads stable_token's answer: a token of at most 512 visible ASCII characters and a lifetime
/// of 1 s to a day, or WeChat's errcode.
pub fn parse_answer(body: &[u8]) -> Result<(AccessToken, Duration), Failure> {
    let answer: Answer = serde_json::from_slice(body).map_err(|_| Failure::Unreadable)?;
    match answer.errcode {
        Some(0) | None => {}
        Some(errcode) => return Err(Failure::Errcode(errcode)),
    }
    let token = answer
        .access_token
        .filter(|t| {
            !t.is_empty() && t.len() <= MAX_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or(Failure::Unreadable)?;
    let lifetime = answer
        .expires_in
        .filter(|s| (1..=86_400).contains(s))
        .ok_or(Failure::Unreadable)?;
    Ok((
        AccessToken(Arc::new(SecretString::new(token))),
        Duration::from_secs(lifetime),
    ))
}

/// The error contract's answer for a failed token fetch, logged once here.
fn token_error(failure: &Failure, app_id: &str) -> ErrorCode {
    match failure {
        Failure::Errcode(errcode @ (40013 | 40125 | 41002 | 41004 | 40002)) => {
            tracing::error!(
                errcode,
                app_id,
                "WeChat rejected the AppID or AppSecret when asked for the access_token"
            );
            ErrorCode::WxConfigError
        }
        Failure::Errcode(errcode @ 40164) => {
            tracing::error!(
                errcode,
                app_id,
                "WeChat refused the access_token: this egress IP is not in the AppID's IP whitelist"
            );
            ErrorCode::WxConfigError
        }
        Failure::Errcode(errcode @ (45009 | 45011)) => {
            tracing::warn!(errcode, app_id, "WeChat's access_token quota was reached");
            ErrorCode::WxTokenUnavailable
        }
        Failure::Errcode(errcode) => {
            tracing::warn!(errcode, app_id, "WeChat gave no access_token");
            ErrorCode::WxTokenUnavailable
        }
        other => {
            tracing::warn!(
                app_id,
                failure = other.label(),
                "WeChat gave no access_token"
            );
            ErrorCode::WxTokenUnavailable
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
