//! Which binding applies to a request: path normalization and route matching.
//!
//! Matching uses a normalized form of the path so that an app which decodes or strips parts of
//! the path cannot be reached around a binding: unreserved percent-escapes are decoded and
//! `;parameters` are cut from each segment. Paths the sidecar refuses to interpret (encoded
//! `/`, `\` or `.`, NUL, `.` or `..` segments, empty segments, bad escapes) are answered 400
//! before routing. Matching is case-sensitive; the app receives the path as sent.

use std::borrow::Cow;

use wxgate_crds::render::contract::{ApiMatch, PathMatch};

/// The path used for matching, or `None` when the sidecar refuses to interpret it.
pub fn normalize(path: &str) -> Option<Cow<'_, str>> {
    if !path.starts_with('/') {
        return if path == "*" {
            Some(Cow::Borrowed(path))
        } else {
            None
        };
    }
    let simple = !path.bytes().any(|b| b == b'%' || b == b';' || b == b'\\') && segments_ok(path);
    if simple {
        return Some(Cow::Borrowed(path));
    }
    if path.contains('\\') {
        return None;
    }
    // Bytes, not chars: a non-ASCII character passes through as its UTF-8 bytes, unchanged.
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        let segment = segment.split(';').next().unwrap_or_default();
        let mut bytes = segment.bytes();
        while let Some(b) = bytes.next() {
            if b != b'%' {
                out.push(b);
                continue;
            }
            let hi = bytes.next().and_then(|c| (c as char).to_digit(16))?;
            let lo = bytes.next().and_then(|c| (c as char).to_digit(16))?;
            let decoded = (hi * 16 + lo) as u8;
            match decoded {
                // Unreserved: decoding cannot change the path's structure.
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => out.push(decoded),
                // Encoded separators, dots and NUL could be read differently by the app.
                b'/' | b'\\' | b'.' | 0 => return None,
                _ => out.extend_from_slice(format!("%{decoded:02X}").as_bytes()),
            }
        }
    }
    // Only ASCII bytes were added to the input's UTF-8, so this cannot fail.
    let out = String::from_utf8(out).ok()?;
    segments_ok(&out).then_some(Cow::Owned(out))
}

/// No empty (except a trailing slash), `.` or `..` segments.
fn segments_ok(path: &str) -> bool {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    trimmed.is_empty()
        || trimmed
            .split('/')
            .skip(1)
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// Whether an API of a binding matches a (normalized) request path and method.
pub fn api_matches(api: &ApiMatch, path: &str, method: &http::Method) -> bool {
    if let Some(methods) = &api.methods
        && !methods.iter().any(|m| m.as_str() == method.as_str())
    {
        return false;
    }
    path_matches(api.match_type, &api.path, path)
}

/// Whether a request path matches a binding's path. Exact and Template paths match with and
/// without one trailing slash (`/login` covers `/login/`, `/users/{id}` covers `/users/42/`):
/// frameworks such as Express route both to one handler, so a binding covers both (fail closed).
pub fn path_matches(kind: PathMatch, pattern: &str, path: &str) -> bool {
    match kind {
        PathMatch::Exact => same_path(pattern, path),
        PathMatch::Prefix => {
            let base = pattern.strip_suffix('/').unwrap_or(pattern);
            base.is_empty()
                || path == base
                || (path.starts_with(base) && path.as_bytes().get(base.len()) == Some(&b'/'))
        }
        PathMatch::Template => template_params(pattern, path).is_some(),
    }
}

/// Whether two paths are the same but for one trailing slash.
pub fn same_path(a: &str, b: &str) -> bool {
    without_trailing_slash(a) == without_trailing_slash(b)
}

/// A path without its one trailing slash (`/` stays `/`).
fn without_trailing_slash(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    }
}

/// The `{name}` values of a template match (with or without one trailing slash), or `None`
/// when the path does not match.
pub fn template_params<'p>(pattern: &'p str, path: &'p str) -> Option<Vec<(&'p str, &'p str)>> {
    let mut params = Vec::new();
    let mut want = without_trailing_slash(pattern).split('/');
    let mut got = without_trailing_slash(path).split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name, g));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use wxgate_crds::render::contract::Method;

    use super::*;

    #[test]
    fn non_ascii_characters_pass_normalization_unchanged() {
        assert_eq!(normalize("/用户/%41;x").as_deref(), Some("/用户/A"));
        assert_eq!(
            normalize("/uNsers/42\u{cd}\u{90}rder%0f").as_deref(),
            Some("/uNsers/42\u{cd}\u{90}rder%0F")
        );
        let once = normalize("/Í%0f").map(Cow::into_owned);
        assert_eq!(
            normalize(once.as_deref().unwrap_or_default()).as_deref(),
            once.as_deref()
        );
    }

    #[test]
    fn normalization_decodes_unreserved_and_refuses_ambiguity() {
        assert_eq!(normalize("/orders/7").as_deref(), Some("/orders/7"));
        assert!(matches!(normalize("/orders/7"), Some(Cow::Borrowed(_))));
        assert_eq!(normalize("/%6Frders").as_deref(), Some("/orders"));
        assert_eq!(
            normalize("/orders;jsessionid=1/7").as_deref(),
            Some("/orders/7")
        );
        assert_eq!(normalize("/a%20b").as_deref(), Some("/a%20b"));
        assert_eq!(normalize("/").as_deref(), Some("/"));
        assert_eq!(normalize("/orders/").as_deref(), Some("/orders/"));
        for bad in [
            "/wx/login/../api",
            "/api/..;/wx/login",
            "//wx/login",
            "/wx%2flogin",
            "/wx%2Flogin",
            "/wx/login%00",
            "/a/./b",
            "/a\\b",
            "/%2e%2e/x",
            "/a/%2E/b",
            "/a%zz",
            "/a%4",
            "/a/..",
            "api",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
        // A double-encoded slash stays encoded: the app sees %2F, never a separator.
        assert_eq!(normalize("/wx%252flogin").as_deref(), Some("/wx%252flogin"));
    }

    #[test]
    fn prefix_matches_whole_segments() {
        assert!(path_matches(PathMatch::Prefix, "/orders", "/orders"));
        assert!(path_matches(PathMatch::Prefix, "/orders", "/orders/7"));
        assert!(path_matches(PathMatch::Prefix, "/orders/", "/orders/7"));
        assert!(!path_matches(PathMatch::Prefix, "/orders", "/orders7"));
        assert!(!path_matches(PathMatch::Prefix, "/orders", "/Orders"));
        assert!(path_matches(PathMatch::Prefix, "/", "/anything"));
    }

    #[test]
    fn exact_and_template() {
        assert!(path_matches(PathMatch::Exact, "/login", "/login"));
        // One trailing slash either way is the same path; two, or a longer path, is not.
        for (pattern, path) in [("/login", "/login/"), ("/login/", "/login"), ("/", "/")] {
            assert!(
                path_matches(PathMatch::Exact, pattern, path),
                "{pattern} {path}"
            );
        }
        for (pattern, path) in [("/login", "/login//"), ("/login", "/logins"), ("/", "/a")] {
            assert!(
                !path_matches(PathMatch::Exact, pattern, path),
                "{pattern} {path}"
            );
        }
        assert_eq!(
            template_params("/users/{id}", "/users/42/"),
            Some(vec![("id", "42")])
        );
        assert_eq!(
            template_params("/users/{id}/", "/users/42"),
            Some(vec![("id", "42")])
        );
        assert_eq!(template_params("/users/{id}", "/users/42//"), None);
        assert_eq!(
            template_params("/users/{id}/orders", "/users/42/orders"),
            Some(vec![("id", "42")])
        );
        assert_eq!(template_params("/users/{id}", "/users/"), None);
        assert_eq!(template_params("/users/{id}", "/users/1/2"), None);
        assert_eq!(template_params("/users/{id}", "/people/1"), None);
    }

    #[test]
    fn methods_restrict_an_api() {
        let api = ApiMatch {
            path: "/orders".into(),
            match_type: PathMatch::Prefix,
            methods: Some(vec![Method::Get]),
        };
        assert!(api_matches(&api, "/orders/1", &http::Method::GET));
        assert!(!api_matches(&api, "/orders/1", &http::Method::POST));
    }
}
