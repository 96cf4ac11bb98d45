//! Tags reach the app as `x-wxgate-tag-<name>` headers and as W3C `baggage` entries (DESIGN.md
//! section 7); the openid bucket gives percentage canaries a stable 0-99 number.

use crate::referer::MiniReferer;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// Prefix of the header carrying each tag.
pub const TAG_HEADER_PREFIX: &str = "x-wxgate-tag-";
/// W3C Baggage limits: at most 8192 bytes and 180 list members in all.
pub const BAGGAGE_MAX_BYTES: usize = 8192;
pub const BAGGAGE_MAX_MEMBERS: usize = 180;

/// A stable number 0-99 for an openid: the same user always lands in the same bucket, users
/// spread evenly (SHA-256, first 8 bytes, modulo 100).
pub fn bucket(openid: &str) -> u8 {
    let digest = Sha256::digest(openid.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// Characters percent-encoded in a baggage value: everything but unreserved URL characters.
const BAGGAGE_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Merges tags into an incoming `baggage` header value: the incoming members are kept (except
/// ones our tags replace), ours are appended, values percent-encoded; members that would pass
/// the W3C limits are left out, ours first.
pub fn merge_baggage(existing: Option<&str>, tags: &[(String, String)]) -> String {
    let ours: Vec<String> = tags
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, BAGGAGE_VALUE)))
        .collect();
    let mut members: Vec<String> = existing
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .filter(|m| {
            let key = m.split(['=', ';']).next().unwrap_or_default().trim();
            !tags.iter().any(|(k, _)| k == key)
        })
        .map(str::to_owned)
        .collect();
    let mut out = String::new();
    let mut count = 0;
    members.splice(0..0, ours);
    for m in members {
        let extra = if out.is_empty() { m.len() } else { m.len() + 1 };
        if count == BAGGAGE_MAX_MEMBERS || out.len() + extra > BAGGAGE_MAX_BYTES {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&m);
        count += 1;
    }
    out
}

/// At most this many tags per request (TSF's limit); extra ones are dropped.
pub const MAX_TAGS: usize = 16;

/// The WeChat default tags of a request: identity fields from the verified identity, profile
/// fields from what the credential (or this login) carries, `version`, `channel` and `referer`
/// from the request's mini program Referer (`referer`: whether it names the verified AppID).
pub fn wechat_tags(
    config: &wxgate_crds::render::contract::WeChatTags,
    openid: &str,
    unionid: Option<&str>,
    appid: &str,
    profile: Option<&std::collections::BTreeMap<String, String>>,
    referer: Option<&MiniReferer<'_>>,
) -> Vec<(String, String)> {
    use wxgate_crds::render::contract::WeChatTagField as F;
    config
        .fields
        .iter()
        .filter_map(|f| {
            let value = match f {
                F::AppId => Some(appid.to_owned()),
                F::OpenId => Some(openid.to_owned()),
                F::UnionId => unionid.map(str::to_owned),
                F::Bucket => Some(bucket(openid).to_string()),
                F::Version => referer.map(|r| r.version.to_owned()),
                F::Channel => referer.map(|r| r.channel().to_owned()),
                F::Referer => Some(referer_match(referer, appid).to_owned()),
                _ => profile.and_then(|p| p.get(f.tag_name()).cloned()),
            }?;
            Some((f.tag_name().to_owned(), value))
        })
        .collect()
}

/// Whether a request's mini program Referer names the verified AppID: `match`, `mismatch`, or
/// `none` without one.
pub fn referer_match(referer: Option<&MiniReferer<'_>>, appid: &str) -> &'static str {
    match referer {
        None => "none",
        Some(r) if r.app_id == appid => "match",
        Some(_) => "mismatch",
    }
}

/// The profile fields a plugin wants, from WeChat's profile JSON, by tag name (values as
/// text: numbers such as gender become "1").
pub fn profile_tags(
    config: &wxgate_crds::render::contract::WeChatTags,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> std::collections::BTreeMap<String, String> {
    config
        .fields
        .iter()
        .filter_map(|f| {
            let value = fields.get(f.profile_key()?)?;
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((f.tag_name().to_owned(), text))
        })
        .collect()
}

/// Adds a request's tags: the login plugin's WeChat tags first, then the Tag plugin's (one of
/// the same name as a WeChat tag is left out), at most [`MAX_TAGS`] of those the request
/// actually carries. Each becomes one `x-wxgate-tag-<name>` header (value percent-encoded
/// UTF-8) and a `baggage` member merged with the client's (every `baggage` header it sent, as
/// one list, as W3C Baggage allows). Returns the tags added.
pub fn emit(
    headers: &mut http::HeaderMap,
    wechat: Vec<(String, String)>,
    custom: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut tags = wechat;
    let from_wechat = tags.len();
    for tag in custom {
        if !tags[..from_wechat].iter().any(|(k, _)| *k == tag.0) {
            tags.push(tag);
        }
    }
    tags.truncate(MAX_TAGS);
    if tags.is_empty() {
        return tags;
    }
    for (name, value) in &tags {
        let name = http::HeaderName::from_bytes(format!("{TAG_HEADER_PREFIX}{name}").as_bytes());
        let value =
            http::HeaderValue::from_str(&utf8_percent_encode(value, BAGGAGE_VALUE).to_string());
        if let (Ok(n), Ok(v)) = (name, value) {
            headers.insert(n, v);
        }
    }
    let existing: Vec<&str> = headers
        .get_all("baggage")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let merged = merge_baggage(Some(&existing.join(",")), &tags);
    if let Ok(v) = http::HeaderValue::from_str(&merged) {
        headers.insert("baggage", v);
    }
    tags
}

/// What a Tag plugin takes from one request.
#[derive(Debug, Default, PartialEq)]
pub struct Extracted {
    pub tags: Vec<(String, String)>,
    /// The value of the rule marked `traceId`, when present.
    pub trace_value: Option<String>,
}

/// Reads every rule of a Tag plugin from a request: `path` from the `{name}` segments of the
/// Template API that matched, `query`, `header`, `cookie` (a parameter present twice is skipped).
pub fn extract(
    plugin: &wxgate_crds::render::contract::TagPlugin,
    api: Option<&wxgate_crds::render::contract::ApiMatch>,
    path: &str,
    parts: &http::request::Parts,
) -> Extracted {
    use wxgate_crds::render::contract::PathMatch;
    use wxgate_crds::render::contract::TagIn;
    let path_params = api
        .filter(|a| a.match_type == PathMatch::Template)
        .and_then(|a| crate::routing::template_params(&a.path, path))
        .unwrap_or_default();
    let mut out = Extracted::default();
    for rule in &plugin.rules {
        let name = rule.from.name.as_str();
        let value = match rule.from.location {
            TagIn::Path => path_params
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned()),
            TagIn::Query => one(crate::params::query(&parts.uri, name)),
            TagIn::Header => one(crate::params::header(&parts.headers, name)),
            TagIn::Cookie => one(crate::params::cookie(&parts.headers, name)),
        };
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        if rule.trace_id {
            out.trace_value = Some(value.clone());
        }
        out.tags.push((rule.tag.clone(), value));
    }
    out
}

fn one(found: crate::params::Found<'_>) -> Option<String> {
    match found {
        crate::params::Found::One(v) => Some(v.into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_uniform_within_one_percent_per_decile() {
        assert_eq!(bucket("oAlice"), bucket("oAlice"));
        let mut deciles = [0u32; 10];
        for i in 0..100_000 {
            let b = bucket(&format!("o{i:027}"));
            assert!(b < 100);
            deciles[usize::from(b / 10)] += 1;
        }
        for (d, n) in deciles.iter().enumerate() {
            let share = f64::from(*n) / 100_000.0;
            assert!((share - 0.10).abs() <= 0.01, "decile {d}: {share}");
        }
    }

    #[test]
    fn baggage_merges_encodes_and_respects_limits() {
        let tags = vec![
            ("bucket".to_owned(), "42".to_owned()),
            ("city".to_owned(), "Guang zhou/广州".to_owned()),
        ];
        assert_eq!(
            merge_baggage(None, &tags),
            "bucket=42,city=Guang%20zhou%2F%E5%B9%BF%E5%B7%9E"
        );
        assert_eq!(
            merge_baggage(
                Some("userId=alice, bucket=7;p=1 ,serverNode=DF%2028"),
                &tags[..1]
            ),
            "bucket=42,userId=alice,serverNode=DF%2028",
            "ours replace a client's member of the same key"
        );
        let big = (0..300)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let merged = merge_baggage(Some(&big), &tags[..1]);
        assert!(merged.starts_with("bucket=42,"));
        assert_eq!(merged.split(',').count(), BAGGAGE_MAX_MEMBERS);
        let huge = format!("a={}", "x".repeat(9000));
        assert_eq!(merge_baggage(Some(&huge), &tags[..1]), "bucket=42");
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// A Tag plugin as the CRD states it, converted as `render` does.
    fn plugin(yaml: &str) -> wxgate_crds::render::contract::TagPlugin {
        let spec: wxgate_crds::plugin::TagPlugin = serde_saphyr::from_str(yaml).unwrap();
        (&spec).into()
    }

    #[test]
    fn each_extractor_reads_its_location_once() {
        let p = plugin(
            "rules:\n- { from: { in: path, name: id }, tag: uid }\n- { from: { in: query, name: q }, tag: q }\n- { from: { in: header, name: x-h }, tag: h }\n- { from: { in: cookie, name: c }, tag: c, traceId: true }\n- { from: { in: query, name: twice }, tag: twice }\n",
        );
        let api: wxgate_crds::render::contract::ApiMatch =
            serde_json::from_value(serde_json::json!({"path": "/u/{id}", "match": "Template"}))
                .unwrap();
        let req = parts(
            "/u/9?q=a%20b&twice=1&twice=2",
            &[("x-h", "H"), ("cookie", "c=C; d=D")],
        );
        let got = extract(&p, Some(&api), "/u/9", &req);
        assert_eq!(
            got.tags,
            [
                ("uid".into(), "9".into()),
                ("q".into(), "a b".into()),
                ("h".into(), "H".into()),
                ("c".into(), "C".into())
            ]
        );
        assert_eq!(got.trace_value.as_deref(), Some("C"));
        // Without a Template API there are no path parameters.
        let prefix: wxgate_crds::render::contract::ApiMatch =
            serde_json::from_value(serde_json::json!({"path": "/u", "match": "Prefix"})).unwrap();
        assert!(
            extract(&p, Some(&prefix), "/u/9", &req)
                .tags
                .iter()
                .all(|(k, _)| k != "uid")
        );
    }

    fn named(prefix: &str, n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("{prefix}{i}"), "1".into()))
            .collect()
    }

    fn tag_headers(headers: &http::HeaderMap) -> Vec<&str> {
        headers
            .keys()
            .map(|k| k.as_str())
            .filter(|k| k.starts_with(TAG_HEADER_PREFIX))
            .collect()
    }

    #[test]
    fn the_cap_counts_the_tags_a_request_carries_login_tags_first() {
        for (wechat, custom) in [(0, 20), (4, 11), (4, 12), (7, 9), (16, 3), (20, 0), (3, 0)] {
            let mut headers = http::HeaderMap::new();
            let added = emit(&mut headers, named("w", wechat), named("c", custom));
            let want = (wechat + custom).min(MAX_TAGS);
            assert_eq!(added.len(), want, "{wechat}+{custom}");
            let names = tag_headers(&headers);
            assert_eq!(names.len(), want, "{wechat}+{custom}");
            let kept_wechat = wechat.min(MAX_TAGS);
            assert!(
                (0..kept_wechat)
                    .all(|i| names.contains(&format!("{TAG_HEADER_PREFIX}w{i}").as_str())),
                "{names:?}"
            );
            if want > 0 {
                let baggage = headers["baggage"].to_str().unwrap();
                assert_eq!(baggage.split(',').count(), want);
                assert!(baggage.starts_with(if wechat > 0 { "w0=1" } else { "c0=1" }));
            }
        }
        // A custom tag named like a WeChat tag does not take a second place, nor its value.
        let mut headers = http::HeaderMap::new();
        let added = emit(
            &mut headers,
            vec![("bucket".into(), "7".into())],
            vec![("bucket".into(), "99".into()), ("x".into(), "1".into())],
        );
        assert_eq!(added.len(), 2);
        assert_eq!(headers["x-wxgate-tag-bucket"], "7");
    }

    #[test]
    fn every_baggage_header_the_client_sent_is_kept() {
        let mut headers = http::HeaderMap::new();
        headers.append("baggage", "a=1,b=2".parse().unwrap());
        headers.append("baggage", "c=3".parse().unwrap());
        headers.append("baggage", "bucket=0".parse().unwrap());
        emit(
            &mut headers,
            vec![("bucket".into(), "7".into())],
            Vec::new(),
        );
        let all: Vec<&str> = headers
            .get_all("baggage")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all, ["bucket=7,a=1,b=2,c=3"]);
    }
}
