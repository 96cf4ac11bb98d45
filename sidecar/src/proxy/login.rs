//! A login request: take the code, exchange it with WeChat, forward the login to the app with
//! WeChat's data and without the code, and if the app accepts it, issue the credential.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, Response};
use http_body_util::Either;
use hyper::body::Incoming;
use tokio::sync::Mutex;

use super::forward::forward;
use super::identity::{self, Identity};
use super::record::Record;
use super::upstream::UpstreamConn;
use super::{RespBody, State, body, session};
use crate::active::{Active, LoginPlugin};
use crate::credential::{Claims, unix_now};
use crate::error::ErrorCode;
use crate::params::{self, Found, Location};

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
    up: &Mutex<UpstreamConn>,
    active: &Active,
    plugin: &LoginPlugin,
    mut parts: Parts,
    body: Incoming,
    rec: &mut Record,
) -> Response<RespBody> {
    let name = plugin.config.code.name.as_str();
    let (code, up_body) = match Location::of_code(plugin.config.code.location) {
        None => {
            match take_from_body(&mut parts, body, name, state.limits.max_login_body_bytes).await {
                Ok((code, rest)) => (code, body::full_up(rest)),
                Err(e) => return rec.reject(e),
            }
        }
        Some(at) => {
            let Found::One(code) = params::read(&parts, at, name) else {
                return rec.reject(ErrorCode::BadLoginRequest);
            };
            let code = code.into_owned();
            params::remove(&mut parts, at, name);
            (code, body::stream_up(body, state.limits.max_body_bytes))
        }
    };
    if !crate::ids::is_valid_code(&code) {
        return rec.reject(ErrorCode::BadLoginRequest);
    }
    let session = match state
        .wechat
        .code2session(&plugin.id, plugin.app_id(), &plugin.app_secret, &code)
        .await
    {
        Ok(s) => s,
        Err(e) => return rec.reject(e),
    };
    drop(code);
    rec.openid = Some(session.openid.clone());
    let id = Identity {
        openid: &session.openid,
        unionid: session.unionid.as_deref(),
        appid: plugin.app_id(),
        session_key: Some(session.session_key.expose()),
    };
    identity::forward(&mut parts, plugin, &id);
    let profile = match &plugin.config.tags {
        Some(config) => match profile(&parts, config, &session.session_key, plugin.app_id()) {
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
            plugin.app_id(),
            profile.as_ref(),
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
        ..Claims::issue(
            session.openid.clone(),
            session.unionid.clone(),
            plugin.app_id().to_owned(),
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

/// Reads a JSON object or form body, takes the code field out, and returns the code and the
/// body without it.
async fn take_from_body(
    parts: &mut Parts,
    body: Incoming,
    name: &str,
    max: usize,
) -> Result<(String, Bytes), ErrorCode> {
    let kind = body_kind(&parts.headers).ok_or(ErrorCode::BadLoginRequest)?;
    let bytes = body::read_bounded(body, max)
        .await
        .ok_or(ErrorCode::RequestTooLarge)?;
    let (code, rest) = take_code(kind, &bytes, name)?;
    parts.headers.remove(CONTENT_LENGTH);
    Ok((code, rest))
}

/// Takes the code field out of a login body: the code and the body without it. The field must
/// be there once, as a string (JSON) or a single pair (form).
pub fn take_code(kind: BodyKind, bytes: &[u8], name: &str) -> Result<(String, Bytes), ErrorCode> {
    match kind {
        BodyKind::Json => {
            let mut value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|_| ErrorCode::BadLoginRequest)?;
            let object = value.as_object_mut().ok_or(ErrorCode::BadLoginRequest)?;
            let code = match object.remove(name) {
                Some(serde_json::Value::String(code)) => code,
                _ => return Err(ErrorCode::BadLoginRequest),
            };
            Ok((code, Bytes::from(value.to_string())))
        }
        BodyKind::Form => {
            let mut code = None;
            let mut rest = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form_urlencoded::parse(bytes) {
                if k == name {
                    if code.replace(v.into_owned()).is_some() {
                        return Err(ErrorCode::BadLoginRequest);
                    }
                } else {
                    rest.append_pair(&k, &v);
                }
            }
            Ok((
                code.ok_or(ErrorCode::BadLoginRequest)?,
                Bytes::from(rest.finish()),
            ))
        }
    }
}

/// The two body types a login code may travel in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

/// The body type a `Content-Type` names: JSON (`application/json`, `application/*+json`) or a
/// form, anything else none.
pub fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = ct.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Some(BodyKind::Json),
        "application/x-www-form-urlencoded" => Some(BodyKind::Form),
        e if e.starts_with("application/") && e.ends_with("+json") => Some(BodyKind::Json),
        _ => None,
    }
}
