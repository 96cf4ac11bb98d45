//! Reading, removing and adding request parameters in headers, the query string and cookies.
//! Values are read exactly once per location: a parameter present twice is ambiguous.

use std::borrow::Cow;

use http::header::{COOKIE, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};

/// Where a code or credential travels (body fields are read by the login flow itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Header,
    Query,
    Cookie,
}

impl From<wxgate_crds::render::contract::AcceptIn> for Location {
    fn from(l: wxgate_crds::render::contract::AcceptIn) -> Self {
        use wxgate_crds::render::contract::AcceptIn;
        match l {
            AcceptIn::Header => Location::Header,
            AcceptIn::Query => Location::Query,
            AcceptIn::Cookie => Location::Cookie,
        }
    }
}

impl Location {
    /// The location of a code, `None` for a body field.
    pub fn of_code(l: wxgate_crds::render::contract::CodeIn) -> Option<Self> {
        use wxgate_crds::render::contract::CodeIn;
        match l {
            CodeIn::Header => Some(Location::Header),
            CodeIn::Query => Some(Location::Query),
            CodeIn::Cookie => Some(Location::Cookie),
            CodeIn::Body => None,
        }
    }
}

/// A parameter at a location.
pub fn read<'a>(parts: &'a Parts, location: Location, name: &str) -> Found<'a> {
    match location {
        Location::Header => header(&parts.headers, name),
        Location::Query => query(&parts.uri, name),
        Location::Cookie => cookie(&parts.headers, name),
    }
}

/// Removes a parameter from a location (every copy).
pub fn remove(parts: &mut Parts, location: Location, name: &str) {
    match location {
        Location::Header => {
            parts.headers.remove(name);
        }
        Location::Query => {
            remove_query(parts, |n| n == name);
        }
        Location::Cookie => remove_cookie(&mut parts.headers, name),
    }
}

/// What a location holds for one parameter name.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    Absent,
    One(Cow<'a, str>),
    /// Present more than once: the sidecar will not pick one.
    Many,
}

impl<'a> Found<'a> {
    fn push(self, value: Cow<'a, str>) -> Self {
        match self {
            Found::Absent => Found::One(value),
            _ => Found::Many,
        }
    }
}

/// A header by name (names are case-insensitive). A value that is not visible ASCII counts
/// as present but unusable, so it is returned as an empty string.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Found<'a> {
    let mut found = Found::Absent;
    for value in headers.get_all(name) {
        found = found.push(Cow::Borrowed(value.to_str().unwrap_or_default()));
    }
    found
}

/// A query parameter by exact name, decoded.
pub fn query<'a>(uri: &'a Uri, name: &str) -> Found<'a> {
    let mut found = Found::Absent;
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if k == name {
            found = found.push(v);
        }
    }
    found
}

/// A cookie by exact name, across every `Cookie` header.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Found<'a> {
    let mut found = Found::Absent;
    for value in headers.get_all(COOKIE) {
        for pair in value.to_str().unwrap_or_default().split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                found = found.push(Cow::Borrowed(v.trim_matches('"')));
            }
        }
    }
    found
}

/// Removes query parameters whose decoded name `remove` accepts; the rest of the query is kept
/// byte for byte. Returns whether anything was removed.
pub fn remove_query(parts: &mut Parts, remove: impl Fn(&str) -> bool) -> bool {
    let Some(q) = parts.uri.query() else {
        return false;
    };
    let keep: Vec<&str> = q
        .split('&')
        .filter(|piece| {
            let raw_name = piece.split('=').next().unwrap_or_default();
            let name: String = form_urlencoded::parse(raw_name.as_bytes())
                .map(|(k, _)| k)
                .collect();
            !remove(&name)
        })
        .collect();
    if keep.len() == q.split('&').count() {
        return false;
    }
    let query = keep.join("&");
    set_query(parts, &query);
    true
}

/// Appends `name=value` pairs (encoded) to the query string.
pub fn append_query(parts: &mut Parts, pairs: &[(&str, &str)]) {
    let mut query = parts.uri.query().unwrap_or_default().to_owned();
    let mut extra = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        extra.append_pair(k, v);
    }
    let extra = extra.finish();
    if !query.is_empty() && !extra.is_empty() {
        query.push('&');
    }
    query.push_str(&extra);
    set_query(parts, &query);
}

fn set_query(parts: &mut Parts, query: &str) {
    let path = parts.uri.path();
    let pq = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    // The path and query come from a parsed URI and form_urlencoded output: always valid.
    uri.path_and_query = PathAndQuery::try_from(pq).ok();
    parts.uri = Uri::from_parts(uri).unwrap_or_default();
}

/// Removes a cookie by exact name from every `Cookie` header, keeping the others.
pub fn remove_cookie(headers: &mut HeaderMap, name: &str) {
    let values: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .map(|v| {
            v.to_str()
                .unwrap_or_default()
                .split(';')
                .map(str::trim)
                .filter(|pair| pair.split('=').next() != Some(name))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|v| !v.is_empty())
        .collect();
    headers.remove(COOKIE);
    for v in values {
        if let Ok(v) = HeaderValue::try_from(v) {
            headers.append(COOKIE, v);
        }
    }
}

/// Removes every header `remove` accepts (names are lowercase).
pub fn remove_headers(headers: &mut HeaderMap, remove: impl Fn(&str) -> bool) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| remove(k.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn reads_each_location_once() {
        let p = parts(
            "/x?a=1&b=%20two&a=3",
            &[("cookie", "s=abc; t=\"q\""), ("cookie", "u=1"), ("h", "v")],
        );
        assert_eq!(query(&p.uri, "b"), Found::One(" two".into()));
        assert_eq!(query(&p.uri, "a"), Found::Many);
        assert_eq!(query(&p.uri, "z"), Found::Absent);
        assert_eq!(cookie(&p.headers, "t"), Found::One("q".into()));
        assert_eq!(cookie(&p.headers, "u"), Found::One("1".into()));
        assert_eq!(header(&p.headers, "H"), Found::One("v".into()));
    }

    #[test]
    fn removes_and_appends_query_parameters() {
        let mut p = parts("/x?keep=1&js_code=abc&other=%2F", &[]);
        assert!(remove_query(&mut p, |n| n == "js_code"));
        assert_eq!(p.uri.to_string(), "/x?keep=1&other=%2F");
        assert!(!remove_query(&mut p, |n| n == "absent"));
        append_query(&mut p, &[("X-WX-OPENID", "o 1")]);
        assert_eq!(p.uri.to_string(), "/x?keep=1&other=%2F&X-WX-OPENID=o+1");
        let mut p = parts("/x?only=1", &[]);
        remove_query(&mut p, |n| n == "only");
        assert_eq!(p.uri.to_string(), "/x");
    }

    #[test]
    fn removes_one_cookie() {
        let mut p = parts(
            "/",
            &[
                ("cookie", "a=1; user_session=v1.x; b=2"),
                ("cookie", "user_session=y"),
            ],
        );
        remove_cookie(&mut p.headers, "user_session");
        let all: Vec<_> = p
            .headers
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all, ["a=1; b=2"]);
    }
}
