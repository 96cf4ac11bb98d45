//! Handing the WeChat identity to the app at the plugin's forward location.

use http::HeaderValue;
use http::header::HeaderName;
use http::request::Parts;
use wxgate_crds::render::contract::{ForwardFormat, ForwardIn};

use crate::active::LoginPlugin;
use crate::params;
use crate::wechat::phone::Phone;

// The identity headers' names, built at compile time.
const OPENID: HeaderName = HeaderName::from_static("x-wx-openid");
const UNIONID: HeaderName = HeaderName::from_static("x-wx-unionid");
const APPID: HeaderName = HeaderName::from_static("x-wx-appid");
const SESSION_KEY: HeaderName = HeaderName::from_static("x-wx-session-key");
const PHONE_NUMBER: HeaderName = HeaderName::from_static("x-wx-phone-number");
const PHONE_COUNTRY_CODE: HeaderName = HeaderName::from_static("x-wx-phone-country-code");

/// The identity of one request.
pub struct Identity<'a> {
    pub openid: &'a str,
    pub unionid: Option<&'a str>,
    pub appid: &'a str,
    /// Present on login requests, and on others with `embedSessionKey`.
    pub session_key: Option<&'a str>,
    /// Exchanged on this request, or kept in its credential.
    pub phone: Option<&'a Phone>,
}

/// Adds the identity to a request (which hygiene has already stripped of any client-sent one).
pub fn forward(parts: &mut Parts, plugin: &LoginPlugin, id: &Identity<'_>) {
    let forward = &plugin.config.forward;
    match forward.format {
        ForwardFormat::Headers if forward.location == ForwardIn::Header => {
            let headers = &mut parts.headers;
            // Values are WeChat ids, base64 and digits (checked when WeChat answered): valid header
            // values.
            let mut set = |name: HeaderName, value: &str| {
                if let Ok(v) = HeaderValue::from_str(value) {
                    headers.insert(name, v);
                }
            };
            set(OPENID, id.openid);
            if let Some(u) = id.unionid {
                set(UNIONID, u);
            }
            set(APPID, id.appid);
            if let Some(sk) = id.session_key {
                set(SESSION_KEY, sk);
            }
            if let Some(p) = id.phone {
                set(PHONE_NUMBER, &p.number);
                set(PHONE_COUNTRY_CODE, &p.country_code);
            }
        }
        ForwardFormat::Headers => {
            let mut pairs = vec![("X-WX-OPENID", id.openid)];
            if let Some(u) = id.unionid {
                pairs.push(("X-WX-UNIONID", u));
            }
            pairs.push(("X-WX-APPID", id.appid));
            if let Some(sk) = id.session_key {
                pairs.push(("X-WX-SESSION-KEY", sk));
            }
            if let Some(p) = id.phone {
                pairs.push(("X-WX-PHONE-NUMBER", &p.number));
                pairs.push(("X-WX-PHONE-COUNTRY-CODE", &p.country_code));
            }
            put(parts, forward.location, &pairs);
        }
        ForwardFormat::Json => {
            let mut json =
                serde_json::json!({"openid": id.openid, "unionid": id.unionid, "appid": id.appid});
            if let Some(sk) = id.session_key {
                json["session_key"] = sk.into();
            }
            if let Some(p) = id.phone {
                json["phone_number"] = p.number.as_str().into();
                json["phone_country_code"] = p.country_code.as_str().into();
            }
            let json = json.to_string();
            put(
                parts,
                forward.location,
                &[(forward.name.as_str(), json.as_str())],
            );
        }
    }
}

fn put(parts: &mut Parts, location: ForwardIn, pairs: &[(&str, &str)]) {
    match location {
        ForwardIn::Header => {
            for (name, value) in pairs {
                // Names are validated tokens; values are WeChat ids, base64 or compact JSON of
                // them: always valid header values.
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    parts.headers.insert(n, v);
                }
            }
        }
        ForwardIn::Query => params::append_query(parts, pairs),
    }
}
