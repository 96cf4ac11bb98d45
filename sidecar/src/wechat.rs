//! WeChat's server APIs, as `reference/wechat-api.md` describes them, over one shared client:
//! code2Session (`GET /sns/jscode2session`, here: a bounded number of calls in flight, one retry
//! for errcode -1 and none after anything else, and single-flight per (plugin, appid, code) for
//! the code's five minutes so concurrent or repeated logins with one code share one call and one
//! result), the AppID's access_token ([`token`]) and the phone number ([`phone`]).

pub mod client;
pub mod phone;
pub mod token;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Semaphore;
use wxgate_crds::render::contract::Platform;
use wxgate_crds::secret::SecretString;

use crate::breaker::{Breaker, BreakerConfig};
use crate::error::ErrorCode;
use crate::flights::{Flights, once};
use crate::ids::{is_session_key, is_wechat_id};
use crate::metrics::Metrics;
use client::LazyClient;
use token::{AccessTokens, TokenConfig};

/// How long a login code is valid at WeChat, and so the longest its outcome is remembered.
pub const CODE_LIFETIME: Duration = Duration::from_secs(300);
/// Longest WeChat answer read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most codes remembered at once (a few hundred bytes each); past it the oldest is forgotten.
pub const MAX_REMEMBERED: usize = 4096;

/// What WeChat vouched for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: SecretString,
}

/// The outcome of a code2Session exchange, shared by every login with the same code.
pub type Outcome = Result<Session, ErrorCode>;

/// Settings of the WeChat client.
#[derive(Clone, Debug)]
pub struct WeChatConfig {
    /// Base URL, `https://api.weixin.qq.com` outside tests.
    pub api_base: String,
    /// QQ's base URL (code2Session of QQ mini programs), `https://api.q.qq.com` outside tests.
    pub qq_api_base: String,
    /// Deadline of one call, connection included.
    pub timeout: Duration,
    /// Most calls in flight; further logins are answered WX_UNAVAILABLE at once.
    pub max_in_flight: usize,
    /// Pause before the single retry after errcode -1 (a random jitter of up to as much again
    /// is added).
    pub retry_delay: Duration,
    pub breaker: BreakerConfig,
    pub token: TokenConfig,
}

/// The code2Session client.
pub struct WeChat {
    http: Arc<LazyClient>,
    /// code2Session of each platform, with its own circuit breaker: one platform's outage
    /// never refuses the other's logins.
    code2session: [(String, Breaker); 2],
    phone_url: String,
    base: String,
    permits: Arc<Semaphore>,
    retry_delay: Duration,
    flights: Arc<Mutex<Flights<Outcome>>>,
    phones: Arc<Mutex<Flights<phone::Outcome>>>,
    pub tokens: Arc<AccessTokens>,
    metrics: Arc<Metrics>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    session_key: Option<String>,
}

impl WeChat {
    pub fn new(config: &WeChatConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        let (timeout, https_only) = (
            config.timeout,
            config.api_base.starts_with("https://") && config.qq_api_base.starts_with("https://"),
        );
        let http = Arc::new(LazyClient::new(move || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .https_only(https_only)
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
        }));
        let base = config.api_base.trim_end_matches('/');
        Arc::new(Self {
            tokens: AccessTokens::new(Arc::clone(&http), base, config.token, Arc::clone(&metrics)),
            http,
            code2session: [base, config.qq_api_base.trim_end_matches('/')].map(|base| {
                (
                    format!("{base}/sns/jscode2session"),
                    Breaker::new(config.breaker),
                )
            }),
            phone_url: format!("{base}/wxa/business/getuserphonenumber"),
            base: base.to_owned(),
            permits: Arc::new(Semaphore::new(config.max_in_flight)),
            retry_delay: config.retry_delay,
            flights: Arc::new(Mutex::new(Flights::new(MAX_REMEMBERED, CODE_LIFETIME))),
            phones: Arc::new(Mutex::new(Flights::new(MAX_REMEMBERED, CODE_LIFETIME))),
            metrics,
        })
    }

    /// The shared HTTP client (TLS verified, no redirects), built on first use.
    pub(crate) fn http(&self) -> Result<&reqwest::Client, Failure> {
        self.http.get()
    }

    /// The WeChat API base URL, without a trailing `/`.
    pub(crate) fn api_base(&self) -> &str {
        &self.base
    }

    /// Exchanges a code, sharing the outcome with every other exchange of the same code.
    pub async fn code2session(
        self: &Arc<Self>,
        plugin: &str,
        platform: Platform,
        app_id: &str,
        app_secret: &SecretString,
        code: &str,
    ) -> Outcome {
        let key = crate::flights::key(&[plugin, app_id, code]);
        let this = Arc::clone(self);
        let (app_id, app_secret, code) = (app_id.to_owned(), app_secret.clone(), code.to_owned());
        let start = move || {
            // Refuse at once, without remembering anything, when all permits are out or the
            // circuit breaker is open.
            let Ok(permit) = this.permits.clone().try_acquire_owned() else {
                this.metrics.code2session_shed();
                return Err(Err(ErrorCode::WxUnavailable));
            };
            if !this.endpoint(platform).1.admit() {
                this.metrics.code2session_shed();
                return Err(Err(ErrorCode::WxUnavailable));
            }
            Ok(async move {
                let outcome = this
                    .call_with_retry(platform, &app_id, &app_secret, &code)
                    .await;
                drop(permit);
                outcome
            })
        };
        // WeChat did not take the code (unreachable, -1, 45011): callers waiting now share this
        // outcome, a later retry calls again.
        let spent = |outcome: &Outcome| match outcome {
            Ok(_) => true,
            Err(e) => spends_code(*e),
        };
        once(
            &self.flights,
            key,
            start,
            spent,
            Err(ErrorCode::WxUnavailable),
        )
        .await
    }

    /// code2Session's URL and circuit breaker for a platform.
    fn endpoint(&self, platform: Platform) -> &(String, Breaker) {
        match platform {
            Platform::WeChat => &self.code2session[0],
            Platform::QQ => &self.code2session[1],
        }
    }

    async fn call_with_retry(
        &self,
        platform: Platform,
        app_id: &str,
        app_secret: &SecretString,
        code: &str,
    ) -> Outcome {
        match self.call(platform, app_id, app_secret, code).await {
            Err(Retry::Once) => {
                let jitter = rand::random_range(0..=self.retry_delay.as_millis() as u64);
                tokio::time::sleep(self.retry_delay + Duration::from_millis(jitter)).await;
                match self.call(platform, app_id, app_secret, code).await {
                    Err(Retry::Once) => Err(ErrorCode::WxUnavailable),
                    Err(Retry::No(code)) => Err(code),
                    Ok(session) => Ok(session),
                }
            }
            Err(Retry::No(code)) => Err(code),
            Ok(session) => Ok(session),
        }
    }

    /// One call. Only errcode -1 asks for a retry.
    async fn call(
        &self,
        platform: Platform,
        app_id: &str,
        app_secret: &SecretString,
        code: &str,
    ) -> Result<Session, Retry> {
        let started = Instant::now();
        let (url, breaker) = self.endpoint(platform);
        let result = self.request(url, app_id, app_secret, code).await;
        let label = result.as_ref().err().map_or("0", Failure::label);
        self.metrics.code2session_call(label, started.elapsed());
        // WeChat answered unless it timed out, was unreachable, answered garbage or was busy.
        let answered = match &result {
            Ok(_) => true,
            Err(Failure::Errcode(e)) => *e != -1,
            Err(_) => false,
        };
        breaker.record(answered);
        match result {
            Ok(session) => Ok(session),
            Err(Failure::Errcode(-1)) => Err(Retry::Once),
            Err(Failure::Errcode(errcode)) => {
                let mapped = map_errcode(errcode);
                if mapped == ErrorCode::WxConfigError {
                    tracing::error!(errcode, app_id, "WeChat rejected the AppID or AppSecret");
                } else if mapped == ErrorCode::WxBadResponse {
                    tracing::warn!(errcode, "WeChat answered an unexpected errcode");
                }
                Err(Retry::No(mapped))
            }
            Err(Failure::Timeout) => {
                tracing::warn!("WeChat code2Session timed out");
                Err(Retry::No(ErrorCode::WxTimeout))
            }
            Err(Failure::Unreachable) => {
                tracing::warn!("WeChat code2Session unreachable");
                Err(Retry::No(ErrorCode::WxUnavailable))
            }
            Err(Failure::Unreadable) => {
                tracing::warn!("WeChat code2Session answer unreadable");
                Err(Retry::No(ErrorCode::WxBadResponse))
            }
        }
    }

    async fn request(
        &self,
        url: &str,
        app_id: &str,
        app_secret: &SecretString,
        code: &str,
    ) -> Result<Session, Failure> {
        let response = self
            .http
            .get()?
            .get(url)
            .query(&[
                ("appid", app_id),
                ("secret", app_secret.expose()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(|e| send_failure(&e))?;
        parse_answer(&read_answer(response).await?)
    }
}

/// Why a request to WeChat got no answer. reqwest errors carry the URL, which may hold the
/// secret, a code or a token: they are never logged, only classified.
pub(crate) fn send_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::Timeout
    } else if e.is_connect() {
        Failure::Unreachable
    } else {
        Failure::Unreadable
    }
}

/// POSTs a JSON body and reads WeChat's answer ([`read_answer`]).
async fn post_json(
    request: reqwest::RequestBuilder,
    body: &serde_json::Value,
) -> Result<Vec<u8>, Failure> {
    let response = request
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| send_failure(&e))?;
    read_answer(response).await
}

/// WeChat's answer body: an HTTP 2xx of at most [`MAX_RESPONSE_BYTES`].
async fn read_answer(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    if !response.status().is_success() {
        return Err(Failure::Unreadable);
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_RESPONSE_BYTES => {
                body.extend_from_slice(&chunk)
            }
            Ok(Some(_)) => return Err(Failure::Unreadable),
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(Failure::Timeout),
            Err(_) => return Err(Failure::Unreadable),
        }
    }
}

/// Reads code2Session's answer: a session only when `errcode` is absent or 0 and openid, unionid
/// and session_key look like WeChat's (anything else from WeChat is [`Failure::Unreadable`]).
pub fn parse_answer(body: &[u8]) -> Result<Session, Failure> {
    // Success may come as text/plain and without errcode: read the JSON whatever the type.
    let answer: Answer = serde_json::from_slice(body).map_err(|_| Failure::Unreadable)?;
    match answer.errcode {
        Some(0) | None => {}
        Some(errcode) => return Err(Failure::Errcode(errcode)),
    }
    let openid = answer
        .openid
        .filter(|s| is_wechat_id(s))
        .ok_or(Failure::Unreadable)?;
    let unionid = match answer.unionid {
        Some(u) if is_wechat_id(&u) => Some(u),
        Some(_) => return Err(Failure::Unreadable),
        None => None,
    };
    let session_key = answer
        .session_key
        .filter(|k| is_session_key(k))
        .ok_or(Failure::Unreadable)?;
    Ok(Session {
        openid,
        unionid,
        session_key: SecretString::new(session_key),
    })
}

enum Retry {
    Once,
    No(ErrorCode),
}

/// Why a code2Session call gave no session.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// WeChat answered this non-zero errcode.
    Errcode(i64),
    /// No answer within the deadline.
    Timeout,
    /// No connection.
    Unreachable,
    /// Not an HTTP 2xx, too long, not JSON, or a session whose ids do not look like WeChat's.
    Unreadable,
}

impl Failure {
    /// The metrics label: the errcode (bounded, see [`errcode_label`]) or the kind of failure.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Errcode(e) => errcode_label(*e),
            Failure::Timeout => "timeout",
            Failure::Unreachable => "unreachable",
            Failure::Unreadable => "unreadable",
        }
    }
}

/// Whether an outcome may have used up the code at WeChat, so that it is shared with every
/// later login with the same code. Unreachable, -1 and 45011 mean WeChat did not take it.
fn spends_code(error: ErrorCode) -> bool {
    !matches!(error, ErrorCode::WxUnavailable | ErrorCode::WxRateLimited)
}

/// The metrics label of an errcode: the errcodes of DESIGN.md section 6 and of the access_token
/// and phone-number APIs (`reference/wechat-api.md` 2.5, 2.6) as their number, any other one
/// `other` (WeChat's answer never picks label values: their number stays bounded).
fn errcode_label(errcode: i64) -> &'static str {
    match errcode {
        0 => "0",
        -1 => "-1",
        40029 => "40029",
        40163 => "40163",
        40226 => "40226",
        45011 => "45011",
        40013 => "40013",
        40125 => "40125",
        41002 => "41002",
        40001 => "40001",
        40002 => "40002",
        40164 => "40164",
        41001 => "41001",
        41004 => "41004",
        42001 => "42001",
        43002 => "43002",
        45009 => "45009",
        47001 => "47001",
        _ => "other",
    }
}

/// DESIGN.md section 6, for every errcode but -1 (retried once, then WX_UNAVAILABLE).
pub fn map_errcode(errcode: i64) -> ErrorCode {
    match errcode {
        40029 => ErrorCode::WxCodeInvalid,
        40163 => ErrorCode::WxCodeUsed,
        40226 => ErrorCode::WxUserBlocked,
        45011 => ErrorCode::WxRateLimited,
        -1 => ErrorCode::WxUnavailable,
        40013 | 40125 | 41002 => ErrorCode::WxConfigError,
        _ => ErrorCode::WxBadResponse,
    }
}
