//! A bound request that is not a login: verify the credential without any network call, then
//! forward with the identity, or answer 401 and never contact the app.

use std::sync::Arc;

use http::Response;
use http::request::Parts;
use http_body_util::Either;
use hyper::body::Incoming;

use super::forward::forward;
use super::identity::{self, Identity};
use super::record::Record;
use super::upstream::AppSlot;
use super::{RespBody, State, body, codes, phone, session};
use crate::active::{Active, LoginPlugin};
use crate::credential::{Claims, Rejection, unix_now};
use crate::error::ErrorCode;
use crate::params::{self, Found, Location};
use crate::referer::MiniReferer;

pub async fn handle(
    state: &State,
    up: &Arc<AppSlot>,
    active: &Active,
    plugin: &LoginPlugin,
    parts: &mut Parts,
    body: Incoming,
    rec: &mut Record,
) -> Response<RespBody> {
    let s = &plugin.config.session;
    let name = s.name.as_str();
    let at = Location::from(s.accept_in);
    let found = params::read(parts, at, name);
    let now = unix_now();
    let referer_header = MiniReferer::header(&parts.headers);
    let platform = plugin.config.platform;
    let referer = referer_header
        .as_ref()
        .and_then(|v| MiniReferer::of(v, platform));
    let claims = match check(state, plugin, found, now, referer.map(|r| r.app_id)) {
        Ok(claims) => claims,
        Err(code) => return rec.reject(code),
    };
    if referer.is_some_and(|r| r.app_id != claims.appid) {
        state.metrics.referer_mismatch();
    }
    rec.openid = state.access_log.then(|| claims.openid.clone());
    // The credential is for the sidecar: the app never sees it.
    params::remove(parts, at, name);
    // The path is normalized again only for a plugin with phone paths: not on every request.
    let has_phone_paths = plugin
        .config
        .phone
        .as_ref()
        .is_some_and(|p| !p.paths.is_empty());
    let phone_path = has_phone_paths
        .then(|| crate::routing::normalize(parts.uri.path()))
        .flatten()
        .and_then(|p| phone::on_path(plugin, &p));
    let (up_body, fresh_phone) = match phone_path {
        None => (body::stream_up(body, state.limits.max_body_bytes), None),
        Some(p) => {
            let wanted = [phone::wanted(p, true)];
            let (codes, up_body) =
                match Box::pin(codes::take(parts, body, &wanted, &state.limits)).await {
                    Ok(taken) => taken,
                    Err(e) => return rec.reject(e),
                };
            let Some(Some(code)) = codes.into_iter().next() else {
                return rec.reject(ErrorCode::BadPhoneRequest);
            };
            let Some(app) = plugin.app(&claims.appid) else {
                return rec.reject(ErrorCode::LoginInvalid);
            };
            match Box::pin(phone::exchange(state, plugin, app, &claims.openid, &code)).await {
                Ok(phone) => (up_body, Some(phone)),
                Err(e) => return rec.reject(e),
            }
        }
    };
    let id = Identity {
        openid: &claims.openid,
        unionid: claims.unionid.as_deref(),
        appid: &claims.appid,
        session_key: if s.embed_session_key {
            claims.sk.as_ref().map(|k| k.expose())
        } else {
            None
        },
        phone: fresh_phone.as_ref().or(claims.phone.as_ref()),
    };
    identity::forward(parts, plugin, &id);
    let tags = plugin.config.tags.as_ref().map(|config| {
        crate::tags::wechat_tags(
            config,
            &claims.openid,
            claims.unionid.as_deref(),
            &claims.appid,
            claims.tags.as_ref(),
            referer.as_ref(),
        )
    });
    rec.emit_tags(&mut parts.headers, tags.unwrap_or_default());
    let response = match forward(state, up, active, parts, up_body).await {
        Ok(r) => r,
        Err(e) => return rec.reject(e),
    };
    let renew_window = s.renew_before_minutes.map(|m| i64::from(m) * 60);
    let due = renew_window.is_some_and(|w| claims.exp - now <= w);
    let keep = fresh_phone.filter(|_| phone::kept(plugin));
    if response.status().is_success() && (due || keep.is_some()) {
        let renewed = Claims {
            phone: keep.or(claims.phone.clone()),
            ..(*claims).clone()
        }
        .reissued(now, s.ttl_minutes);
        return Box::pin(session::put(
            response,
            plugin,
            &plugin.sealer.seal(&renewed),
            state.limits.max_merge_body_bytes,
        ))
        .await;
    }
    response.map(Either::Left)
}

/// The request's credential, opened and checked, counted in the verification metric.
fn check(
    state: &State,
    plugin: &LoginPlugin,
    found: Found,
    now: i64,
    hint: Option<&str>,
) -> Result<Arc<Claims>, ErrorCode> {
    let verified = match found {
        Found::Absent => Err(("missing", ErrorCode::LoginRequired)),
        Found::Many => Err(("invalid", ErrorCode::LoginInvalid)),
        Found::One(credential) => match plugin.sealer.verify(&credential, now, hint) {
            Ok(claims) => Ok(claims),
            Err(Rejection::Invalid) => Err(("invalid", ErrorCode::LoginInvalid)),
            Err(Rejection::Expired) => Err(("expired", ErrorCode::LoginExpired)),
        },
    };
    let outcome = verified.as_ref().map_or_else(|(o, _)| *o, |_| "ok");
    state.metrics.verification(outcome);
    verified.map_err(|(_, code)| code)
}
