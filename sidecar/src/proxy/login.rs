//! A login request: take the code, exchange it with WeChat, forward the login to the app with
//! WeChat's data and without the code, and if the app accepts it, issue the credential.

use std::sync::Arc;

use http::Response;
use http::request::Parts;
use http_body_util::Either;
use hyper::body::Incoming;

use super::codes::{self, Wanted};
use super::forward::forward;
use super::identity::{self, Identity};
use super::record::Record;
use super::upstream::AppSlot;
use super::{RespBody, State, phone, session};
use crate::active::{Active, App, LoginPlugin};
use crate::credential::{Claims, unix_now};
use crate::error::ErrorCode;
use crate::params::{self, Found, Location};
use crate::referer::MiniReferer;
use wxgate_crds::render::contract::AppIdIn;

/// Whether a bound request is a login: its path is in `login.paths`, or, without them, it
/// carries the code.
pub(super) fn is_login(plugin: &LoginPlugin, path: &str, parts: &Parts) -> bool {
    if plugin.config.login_paths.is_some() {
        return plugin.is_login_path(path);
    }
    Location::of_code(plugin.config.code.location)
        .is_some_and(|at| params::read(parts, at, &plugin.config.code.name) != Found::Absent)
}

pub(super) async fn handle(
    state: &State,
    up: &Arc<AppSlot>,
    active: &Active,
    plugin: &LoginPlugin,
    parts: &mut Parts,
    body: Incoming,
    rec: &mut Record,
) -> Response<RespBody> {
    let mut wanted = vec![Wanted {
        param: &plugin.config.code,
        required: true,
        error: ErrorCode::BadLoginRequest,
    }];
    let phone_config = plugin.config.phone.as_ref().filter(|p| p.on_login);
    if let Some(p) = phone_config {
        wanted.push(phone::wanted(p, false));
    }
    let (mut codes, up_body) = match codes::take(parts, body, &wanted, &state.limits).await {
        Ok(taken) => taken,
        Err(e) => return rec.reject(e),
    };
    let phone_code = match phone_config {
        Some(_) => codes.pop().flatten(),
        None => None,
    };
    let Some(Some(code)) = codes.into_iter().next() else {
        return rec.reject(ErrorCode::BadLoginRequest);
    };
    let referer_header = MiniReferer::header(&parts.headers);
    let platform = plugin.config.platform;
    let referer = referer_header
        .as_ref()
        .and_then(|v| MiniReferer::of(v, platform));
    let Some(app) = app_of(plugin, parts, referer.as_ref()) else {
        return rec.reject(ErrorCode::LoginAppUnknown);
    };
    let session = match state
        .wechat
        .code2session(&plugin.id, platform, &app.app_id, &app.app_secret, &code)
        .await
    {
        Ok(s) => s,
        Err(e) => return rec.reject(e),
    };
    drop(code);
    rec.openid = state.access_log.then(|| session.openid.clone());
    let phone = match phone_code {
        Some(code) => match phone::exchange(state, plugin, app, &session.openid, &code).await {
            Ok(p) => Some(p),
            Err(e) => return rec.reject(e),
        },
        None => None,
    };
    let id = Identity {
        openid: &session.openid,
        unionid: session.unionid.as_deref(),
        appid: &app.app_id,
        session_key: Some(session.session_key.expose()),
        phone: phone.as_ref(),
    };
    identity::forward(parts, plugin, &id);
    let profile = match &plugin.config.tags {
        Some(config) => match profile(parts, config, &session.session_key, &app.app_id) {
            Ok(p) => p,
            Err(code) => return rec.reject(code),
        },
        None => None,
    };
    let tags = plugin.config.tags.as_ref().map(|config| {
        crate::tags::wechat_tags(
            config,
            &session.openid,
            session.unionid.as_deref(),
            &app.app_id,
            profile.as_ref(),
            referer.as_ref(),
        )
    });
    rec.emit_tags(&mut parts.headers, tags.unwrap_or_default());
    let response = match forward(state, up, active, parts, up_body).await {
        Ok(r) => r,
        Err(e) => return rec.reject(e),
    };
    if !response.status().is_success() {
        return response.map(Either::Left);
    }
    let s = &plugin.config.session;
    let claims = Claims {
        tags: profile,
        sk: s.embed_session_key.then(|| session.session_key.clone()),
        phone: phone.filter(|_| phone::kept(plugin)),
        ..Claims::issue(
            session.openid.clone(),
            session.unionid.clone(),
            app.app_id.clone(),
            unix_now(),
            s.ttl_minutes,
        )
    };
    session::put(
        response,
        plugin,
        &plugin.sealer.seal(&claims),
        state.limits.max_merge_body_bytes,
    )
    .await
}

/// The mini program a login is for: the one the AppID parameter names, else the one the
/// Referer names, else a one-app plugin's only one. `None` when the named AppID is not the
/// plugin's, or a plugin of several apps is told none.
fn app_of<'a>(
    plugin: &'a LoginPlugin,
    parts: &Parts,
    referer: Option<&MiniReferer<'_>>,
) -> Option<&'a App> {
    let param = plugin.config.app_id_param.as_ref().map(|p| {
        let at = match p.location {
            AppIdIn::Header => Location::Header,
            AppIdIn::Query => Location::Query,
        };
        params::read(parts, at, &p.name)
    });
    match param {
        Some(Found::One(named)) => plugin.app(&named),
        Some(Found::Many) => None,
        _ => match referer {
            Some(r) => plugin.app(r.app_id),
            None if plugin.apps.len() == 1 => plugin.apps.first(),
            None => None,
        },
    }
}

/// Profile tags from the WeChat-vouched data of a login request: `rawData` + `signature`, else
/// `encryptedData` + `iv`; none present: none. Present but not vouched for: refused.
fn profile(
    parts: &Parts,
    config: &wxgate_crds::render::contract::WeChatTags,
    session_key: &wxgate_crds::secret::SecretString,
    app_id: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, ErrorCode> {
    use crate::profile::{from_encrypted_data, from_raw_data};
    if !config.fields.iter().any(|f| f.profile_key().is_some()) {
        return Ok(None);
    }
    let read = |p: &wxgate_crds::render::contract::ProfileParam| -> Option<String> {
        match p.location {
            wxgate_crds::render::contract::ProfileIn::Header => {
                let v = parts.headers.get(p.name.as_str())?;
                String::from_utf8(v.as_bytes().to_vec()).ok()
            }
            wxgate_crds::render::contract::ProfileIn::Query => {
                match params::query(&parts.uri, &p.name) {
                    Found::One(v) => Some(v.into_owned()),
                    _ => None,
                }
            }
        }
    };
    let p = &config.profile;
    let fields = match (
        read(&p.raw_data),
        read(&p.signature),
        read(&p.encrypted_data),
        read(&p.iv),
    ) {
        (Some(raw), Some(sig), _, _) => from_raw_data(&raw, &sig, session_key.expose()),
        (_, _, Some(data), Some(iv)) => {
            from_encrypted_data(&data, &iv, session_key.expose(), app_id)
        }
        (None, None, None, None) => return Ok(None),
        _ => return Err(ErrorCode::ProfileInvalid),
    };
    let fields = fields.map_err(|_| ErrorCode::ProfileInvalid)?;
    Ok(Some(crate::tags::profile_tags(config, &fields)))
}
