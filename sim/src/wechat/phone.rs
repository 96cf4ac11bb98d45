//! `POST /wxa/business/getuserphonenumber?access_token=` (phonenumber.getPhoneNumber), as
//! `reference/wechat-api.md` 2.5 describes it: JSON body `{code, openid?}`, answer
//! `{errcode: 0, errmsg, phone_info: {phoneNumber, purePhoneNumber, countryCode, watermark:
//! {timestamp, appid}}}`.
//!
//! - The access_token must be one [`super::stable_token`] issued: missing 41001, unknown or
//!   invalidated by a forced refresh 40001, expired 42001.
//! - A phone code is single use. The reference names no errcode for a spent code, a code of
//!   another user or a missing code: the simulator answers 40029 (invalid code) to each.
//! - The user of a code is the part before its first `_` (after a script word and its `-`), as
//!   for login codes, so `openid`
//!   (optional) must be [`super::openid`] of the token's appid and that user. A user part of 5
//!   to 15 digits is the phone number itself (`13800138000_1`); any other user gets a number
//!   derived from its name. The country code is `86`.
//! - The code's first `-`-separated word scripts the answer: `errNNNNN` / `errm1` (that
//!   errcode), `delayMS` (sleep, then answer), `otherapp` (a watermark of another appid).
//! - Every successful answer is a paid call: [`Simulator::phone_calls`] counts them.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{Simulator, error, openid};

/// The appid the watermark names for `otherapp` codes.
pub const OTHER_APPID: &str = "wx00000000000000ff";

#[derive(serde::Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    pub(super) access_token: String,
}

impl Simulator {
    /// getuserphonenumber calls received, and how many of them were answered with a phone
    /// number (paid).
    pub fn phone_calls(&self) -> (u32, u32) {
        let seen = self.seen();
        (seen.phone_calls, seen.phone_paid)
    }

    /// The appid whose token `token` is, with whether it is valid now: `Err(40001)` unknown or
    /// invalidated, `Err(42001)` expired, `Err(41001)` missing.
    pub(super) fn token_owner(&self, token: &str) -> Result<String, i64> {
        if token.is_empty() {
            return Err(41001);
        }
        let now = self.now();
        let seen = self.seen();
        for (appid, tokens) in &seen.tokens {
            if tokens.is_valid(token, now) {
                return Ok(appid.clone());
            }
            if tokens.has_expired(token, now) {
                return Err(42001);
            }
        }
        Err(40001)
    }
}

/// The phone number the simulator gives a user (the part of a code before its first `_`).
pub fn phone_number(code: &str) -> String {
    let user = code.split('_').next().unwrap_or(code);
    let user = user.rsplit('-').next().unwrap_or(user);
    if (5..=15).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_digit()) {
        return user.to_owned();
    }
    let digest = Sha256::digest(format!("phone:{user}"));
    let n = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default()) % 100_000_000;
    format!("139{n:08}")
}

pub(super) async fn getuserphonenumber(
    State(sim): State<Simulator>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    sim.seen().phone_calls += 1;
    let appid = match sim.token_owner(&q.access_token) {
        Ok(appid) => appid,
        Err(errcode) => return error(errcode),
    };
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(47001);
    };
    let code = req.get("code").and_then(|v| v.as_str()).unwrap_or_default();
    if code.is_empty() {
        return error(40029);
    }
    let script = code.split('-').next().unwrap_or_default();
    if let Some(errcode) = script.strip_prefix("err") {
        return error(if errcode == "m1" {
            -1
        } else {
            errcode.parse().unwrap_or(40029)
        });
    }
    if let Some(ms) = script.strip_prefix("delay") {
        let ms = ms.parse().unwrap_or(0);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let user_code = code.rsplit('-').next().unwrap_or(code);
    if let Some(claimed) = req.get("openid").and_then(|v| v.as_str())
        && claimed != openid(&appid, user_code)
    {
        return error(40029);
    }
    {
        let mut seen = sim.seen();
        if !seen.phone_codes.insert(code.to_owned()) {
            return error(40029);
        }
        seen.phone_paid += 1;
    }
    let number = phone_number(code);
    let watermark_appid = if script == "otherapp" {
        OTHER_APPID.to_owned()
    } else {
        appid
    };
    axum::Json(serde_json::json!({
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": number,
            "purePhoneNumber": number,
            "countryCode": "86",
            "watermark": {"timestamp": sim.now(), "appid": watermark_appid},
        },
    }))
    .into_response()
}
