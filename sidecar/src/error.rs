//! The error contract (DESIGN.md section 6): answers the sidecar makes itself carry a JSON body
//! `{"code","message","relogin","retryable"}` and the header `x-wxgate-error: <code>`. Messages
//! are fixed strings: never a secret, never WeChat's errmsg.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// Header naming the error code on every answer the sidecar makes itself.
pub const ERROR_HEADER: &str = "x-wxgate-error";

/// Every answer the sidecar can make instead of the app's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadLoginRequest,
    WxCodeInvalid,
    WxCodeUsed,
    WxUserBlocked,
    WxRateLimited,
    WxUnavailable,
    WxTimeout,
    WxBadResponse,
    WxConfigError,
    LoginRequired,
    LoginInvalid,
    LoginExpired,
    UpstreamUnavailable,
    UpstreamTimeout,
    NotReady,
    /// A request the sidecar will not interpret: ambiguous path, both Content-Length and
    /// Transfer-Encoding, a malformed header.
    BadRequest,
    /// A body larger than the sidecar reads or forwards.
    RequestTooLarge,
    /// Request headers larger than `--max-header-bytes`.
    HeadersTooLarge,
    /// Profile data on a login that WeChat does not vouch for (bad signature, undecryptable,
    /// another app's watermark).
    ProfileInvalid,
    /// The AppID's access_token could not be had from WeChat (unreachable, -1, quota, a
    /// rejected token with no forced refresh allowed now).
    WxTokenUnavailable,
    /// A phone-number request without a usable phone code.
    BadPhoneRequest,
    /// WeChat refused the phone code: invalid, expired, used, or another user's.
    WxPhoneCodeInvalid,
    /// An open-API call for an AppID not served there, or without naming one of several.
    OpenApiAppUnknown,
    /// A login naming an AppID that is not one of the plugin's (in the AppID parameter or the
    /// Referer), or naming none when the plugin has several.
    LoginAppUnknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadLoginRequest => "BAD_LOGIN_REQUEST",
            ErrorCode::WxCodeInvalid => "WX_CODE_INVALID",
            ErrorCode::WxCodeUsed => "WX_CODE_USED",
            ErrorCode::WxUserBlocked => "WX_USER_BLOCKED",
            ErrorCode::WxRateLimited => "WX_RATE_LIMITED",
            ErrorCode::WxUnavailable => "WX_UNAVAILABLE",
            ErrorCode::WxTimeout => "WX_TIMEOUT",
            ErrorCode::WxBadResponse => "WX_BAD_RESPONSE",
            ErrorCode::WxConfigError => "WX_CONFIG_ERROR",
            ErrorCode::LoginRequired => "LOGIN_REQUIRED",
            ErrorCode::LoginInvalid => "LOGIN_INVALID",
            ErrorCode::LoginExpired => "LOGIN_EXPIRED",
            ErrorCode::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            ErrorCode::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            ErrorCode::NotReady => "NOT_READY",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::RequestTooLarge => "REQUEST_TOO_LARGE",
            ErrorCode::HeadersTooLarge => "HEADERS_TOO_LARGE",
            ErrorCode::ProfileInvalid => "WX_PROFILE_INVALID",
            ErrorCode::WxTokenUnavailable => "WX_TOKEN_UNAVAILABLE",
            ErrorCode::BadPhoneRequest => "BAD_PHONE_REQUEST",
            ErrorCode::WxPhoneCodeInvalid => "WX_PHONE_CODE_INVALID",
            ErrorCode::OpenApiAppUnknown => "OPEN_API_APPID_UNKNOWN",
            ErrorCode::LoginAppUnknown => "LOGIN_APPID_UNKNOWN",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadLoginRequest
            | ErrorCode::BadRequest
            | ErrorCode::ProfileInvalid
            | ErrorCode::BadPhoneRequest
            | ErrorCode::WxPhoneCodeInvalid
            | ErrorCode::OpenApiAppUnknown
            | ErrorCode::LoginAppUnknown => StatusCode::BAD_REQUEST,
            ErrorCode::WxCodeInvalid
            | ErrorCode::WxCodeUsed
            | ErrorCode::LoginRequired
            | ErrorCode::LoginInvalid
            | ErrorCode::LoginExpired => StatusCode::UNAUTHORIZED,
            ErrorCode::WxUserBlocked => StatusCode::FORBIDDEN,
            ErrorCode::WxRateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::WxUnavailable | ErrorCode::NotReady | ErrorCode::WxTokenUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::WxTimeout | ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::WxBadResponse | ErrorCode::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            ErrorCode::WxConfigError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    /// Whether the client should call `wx.login()` again. After a WeChat timeout the code may
    /// have been used up, so a new one is needed.
    pub fn relogin(self) -> bool {
        matches!(
            self,
            ErrorCode::ProfileInvalid
                | ErrorCode::WxTimeout
                | ErrorCode::WxCodeInvalid
                | ErrorCode::WxCodeUsed
                | ErrorCode::LoginRequired
                | ErrorCode::LoginInvalid
                | ErrorCode::LoginExpired
        )
    }

    /// Whether the same request may succeed later (after backing off), without a new login.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::WxRateLimited
                | ErrorCode::WxUnavailable
                | ErrorCode::WxTokenUnavailable
                | ErrorCode::UpstreamUnavailable
                | ErrorCode::UpstreamTimeout
                | ErrorCode::NotReady
        )
    }

    /// Seconds for `Retry-After`, where the client should wait.
    pub fn retry_after(self) -> Option<u32> {
        match self {
            ErrorCode::WxRateLimited => Some(60),
            ErrorCode::WxUnavailable | ErrorCode::WxTokenUnavailable => Some(5),
            ErrorCode::NotReady => Some(1),
            _ => None,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::BadLoginRequest => "the login request carries no usable code",
            ErrorCode::WxCodeInvalid => "WeChat rejected the login code; call wx.login() again",
            ErrorCode::WxCodeUsed => "the login code was already used; call wx.login() again",
            ErrorCode::WxUserBlocked => "WeChat blocked the login of this user",
            ErrorCode::WxRateLimited => "WeChat's login rate limit was reached; retry later",
            ErrorCode::WxUnavailable => "WeChat is unavailable; retry later",
            ErrorCode::WxTimeout => "WeChat did not answer in time; call wx.login() again",
            ErrorCode::WxBadResponse => "WeChat's answer could not be read",
            ErrorCode::WxConfigError => "WeChat rejected the mini program's AppID or AppSecret",
            ErrorCode::LoginRequired => "this API needs a login credential; call wx.login()",
            ErrorCode::LoginInvalid => "the login credential is not valid; call wx.login() again",
            ErrorCode::LoginExpired => "the login credential expired; call wx.login() again",
            ErrorCode::UpstreamUnavailable => "the service is unavailable",
            ErrorCode::UpstreamTimeout => "the service did not answer in time",
            ErrorCode::NotReady => "wxgate has no valid configuration yet",
            ErrorCode::BadRequest => "the request is malformed or ambiguous",
            ErrorCode::RequestTooLarge => "the request body is too large",
            ErrorCode::HeadersTooLarge => "the request headers are too large",
            ErrorCode::ProfileInvalid => {
                "the profile data is not vouched for by WeChat; call wx.login() again"
            }
            ErrorCode::WxTokenUnavailable => {
                "WeChat gave no access token for the mini program; retry later"
            }
            ErrorCode::BadPhoneRequest => "the request carries no usable phone code",
            ErrorCode::WxPhoneCodeInvalid => {
                "WeChat rejected the phone code; ask the user to authorize the phone number again"
            }
            ErrorCode::OpenApiAppUnknown => {
                "name an AppID served on this port (openApi: true) in X-WX-APPID"
            }
            ErrorCode::LoginAppUnknown => {
                "the login names no AppID of this service's mini programs (Referer or AppID parameter)"
            }
        }
    }

    /// Every code, for tests and metrics.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::BadLoginRequest,
        ErrorCode::WxCodeInvalid,
        ErrorCode::WxCodeUsed,
        ErrorCode::WxUserBlocked,
        ErrorCode::WxRateLimited,
        ErrorCode::WxUnavailable,
        ErrorCode::WxTimeout,
        ErrorCode::WxBadResponse,
        ErrorCode::WxConfigError,
        ErrorCode::LoginRequired,
        ErrorCode::LoginInvalid,
        ErrorCode::LoginExpired,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::UpstreamTimeout,
        ErrorCode::NotReady,
        ErrorCode::BadRequest,
        ErrorCode::RequestTooLarge,
        ErrorCode::HeadersTooLarge,
        ErrorCode::ProfileInvalid,
        ErrorCode::WxTokenUnavailable,
        ErrorCode::BadPhoneRequest,
        ErrorCode::WxPhoneCodeInvalid,
        ErrorCode::OpenApiAppUnknown,
        ErrorCode::LoginAppUnknown,
    ];

    /// The answer, as a full response.
    pub fn response(self) -> Response<Bytes> {
        let body = format!(
            r#"{{"code":"{}","message":"{}","relogin":{},"retryable":{}}}"#,
            self.as_str(),
            self.message(),
            self.relogin(),
            self.retryable()
        );
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(ERROR_HEADER, HeaderValue::from_static(self.as_str()));
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_json_with_the_four_fields() {
        for code in ErrorCode::ALL {
            let r = code.response();
            let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            assert_eq!(v["code"], code.as_str());
            assert_eq!(v["relogin"], code.relogin());
            assert_eq!(v["retryable"], code.retryable());
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert_eq!(r.headers()[ERROR_HEADER], code.as_str());
        }
    }

    #[test]
    fn statuses_follow_the_design_table() {
        use ErrorCode::*;
        let table = [
            (BadLoginRequest, 400),
            (WxCodeInvalid, 401),
            (WxCodeUsed, 401),
            (WxUserBlocked, 403),
            (WxRateLimited, 429),
            (WxUnavailable, 503),
            (WxTimeout, 504),
            (WxBadResponse, 502),
            (WxConfigError, 500),
            (LoginRequired, 401),
            (LoginInvalid, 401),
            (LoginExpired, 401),
            (UpstreamUnavailable, 502),
            (UpstreamTimeout, 504),
            (NotReady, 503),
            (WxTokenUnavailable, 503),
            (BadPhoneRequest, 400),
            (WxPhoneCodeInvalid, 400),
            (OpenApiAppUnknown, 400),
        ];
        for (code, status) in table {
            assert_eq!(code.status().as_u16(), status, "{code}");
        }
        assert!(
            WxRateLimited
                .response()
                .headers()
                .contains_key("retry-after")
        );
        assert!(
            WxUnavailable
                .response()
                .headers()
                .contains_key("retry-after")
        );
    }
}
