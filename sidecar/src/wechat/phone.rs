//! The phone number (phonenumber.getPhoneNumber, `POST /wxa/business/getuserphonenumber`), as
//! `reference/wechat-api.md` 2.5 describes it: the phone code from the mini program's button,
//! sent with the user's openid so WeChat checks the code is that user's, and the AppID's
//! access_token ([`super::token`]).
//!
//! Each successful call is paid and each code is single use, so a code is exchanged once:
//! concurrent and repeated requests with one code (for one plugin, AppID and openid) share one
//! call and its outcome for the code's five minutes, and no call that WeChat may have answered is
//! repeated. The one retry is after WeChat rejected the token (40001, 42001): WeChat then did
//! not look at the code.

use std::sync::Arc;

use serde::Deserialize;
use wxgate_crds::secret::SecretString;

use super::token::AccessToken;
use super::{Failure, WeChat, post_json};
use crate::error::ErrorCode;
use crate::flights::{key, once};

/// A phone number WeChat vouched for: digits only. In a credential's claims it is
/// `{"n": number, "cc": country code}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Phone {
    /// Without the country code (`purePhoneNumber`).
    #[serde(rename = "n")]
    pub number: String,
    /// `countryCode`, e.g. `86`.
    #[serde(rename = "cc")]
    pub country_code: String,
}

impl Phone {
    /// Whether both parts are digits of a sensible length (1-20, 1-4): what WeChat gives, and
    /// what may be forwarded as header values.
    pub fn is_well_formed(&self) -> bool {
        digits(&self.number, 20) && digits(&self.country_code, 4)
    }
}

fn digits(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
}

/// The outcome of a phone-code exchange, shared by every request with the same code.
pub type Outcome = Result<Phone, ErrorCode>;

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    phone_info: Option<PhoneInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneInfo {
    pure_phone_number: String,
    country_code: String,
    watermark: Watermark,
}

#[derive(Deserialize)]
struct Watermark {
    appid: String,
}

impl WeChat {
    /// Exchanges a phone code of the user `openid`, sharing the outcome with every other
    /// exchange of the same code.
    pub async fn phone_number(
        self: &Arc<Self>,
        plugin: &str,
        app_id: &str,
        app_secret: &SecretString,
        openid: &str,
        code: &str,
    ) -> Outcome {
        let key = key(&[plugin, app_id, openid, code]);
        let this = Arc::clone(self);
        let (app_id, app_secret, openid, code) = (
            app_id.to_owned(),
            app_secret.clone(),
            openid.to_owned(),
            code.to_owned(),
        );
        let start = move || {
            let Ok(permit) = this.permits.clone().try_acquire_owned() else {
                return Err(Err(ErrorCode::WxUnavailable));
            };
            Ok(async move {
                let outcome = this
                    .exchange_phone(&app_id, &app_secret, &openid, &code)
                    .await;
                drop(permit);
                outcome
            })
        };
        once(
            &self.phones,
            key,
            start,
            spends_phone_code,
            Err(ErrorCode::WxUnavailable),
        )
        .await
    }

    async fn exchange_phone(
        &self,
        app_id: &str,
        app_secret: &SecretString,
        openid: &str,
        code: &str,
    ) -> Outcome {
        let token = self.tokens.get(app_id, app_secret).await?;
        let result = match self.phone_call(&token, openid, code).await {
            Err(Failure::Errcode(40001 | 42001)) => {
                let token = self.tokens.rejected(app_id, app_secret, &token).await?;
                self.phone_call(&token, openid, code).await
            }
            result => result,
        };
        match result {
            Ok((phone, watermark)) if watermark == app_id => Ok(phone),
            Ok(_) => {
                tracing::error!(
                    app_id,
                    "WeChat's phone number carries another AppID's watermark"
                );
                Err(ErrorCode::WxBadResponse)
            }
            Err(Failure::Errcode(40029)) => Err(ErrorCode::WxPhoneCodeInvalid),
            Err(Failure::Errcode(45011)) => Err(ErrorCode::WxRateLimited),
            Err(Failure::Errcode(40001 | 42001)) => {
                tracing::warn!(app_id, "WeChat rejected the access_token twice");
                Err(ErrorCode::WxTokenUnavailable)
            }
            Err(Failure::Errcode(40013)) => {
                tracing::error!(
                    app_id,
                    "WeChat rejected the AppID when asked for a phone number"
                );
                Err(ErrorCode::WxConfigError)
            }
            Err(Failure::Errcode(-1) | Failure::Timeout | Failure::Unreachable) => {
                Err(ErrorCode::WxUnavailable)
            }
            Err(failure) => {
                tracing::warn!(
                    failure = failure.label(),
                    "WeChat's phone number answer was not usable"
                );
                Err(ErrorCode::WxBadResponse)
            }
        }
    }

    /// One call.
    async fn phone_call(
        &self,
        token: &AccessToken,
        openid: &str,
        code: &str,
    ) -> Result<(Phone, String), Failure> {
        let body = serde_json::json!({"code": code, "openid": openid});
        let result = async {
            let request = self
                .http
                .get()?
                .post(&self.phone_url)
                .query(&[("access_token", token.expose())]);
            parse_answer(&post_json(request, &body).await?)
        }
        .await;
        self.metrics.wechat_api_call(
            "getuserphonenumber",
            result.as_ref().err().map_or("0", Failure::label),
        );
        result
    }
}

/// Reads getuserphonenumber's answer: the phone number and the watermark's appid, when errcode
/// is 0 and the number and country code are digits (they are forwarded as headers).
pub fn parse_answer(body: &[u8]) -> Result<(Phone, String), Failure> {
    let answer: Answer = serde_json::from_slice(body).map_err(|_| Failure::Unreadable)?;
    match answer.errcode {
        Some(0) | None => {}
        Some(errcode) => return Err(Failure::Errcode(errcode)),
    }
    let info = answer.phone_info.ok_or(Failure::Unreadable)?;
    let phone = Phone {
        number: info.pure_phone_number,
        country_code: info.country_code,
    };
    match phone.is_well_formed() {
        true => Ok((phone, info.watermark.appid)),
        false => Err(Failure::Unreadable),
    }
}

/// Whether an outcome is remembered for the code's lifetime: a number (paid: asking again would
/// pay again or meet "code used") and WeChat's refusals of the code. Unavailable, rate-limited
/// and token failures are not: WeChat did not take the code, or may not have, and a retry is
/// at worst refused as used, never paid twice.
fn spends_phone_code(outcome: &Outcome) -> bool {
    match outcome {
        Ok(_) => true,
        Err(e) => matches!(e, ErrorCode::WxPhoneCodeInvalid | ErrorCode::WxBadResponse),
    }
}
