//! Field paths and the checks shared by both kinds. Each check mirrors a schema pattern, so a
//! manifest read without an API server (standalone mode) is held to the same rules.

use crate::problem::FieldError;

/// A DNS subdomain name (Secret and object names).
pub const DNS_SUBDOMAIN_PATTERN: &str = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
/// A Secret data key.
pub const SECRET_KEY_PATTERN: &str = "^[-._a-zA-Z0-9]+$";
/// An HTTP token (RFC 9110): header, cookie and query parameter names.
pub const TOKEN_PATTERN: &str = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";
/// Tag names are at most this many bytes (TSF's limit).
pub const MAX_TAG_NAME_BYTES: usize = 32;

/// A JSON path under construction, e.g. `spec.apis[2].path`.
#[derive(Clone, Debug)]
pub struct Path(String);

impl Path {
    pub fn root(name: &str) -> Self {
        Self(name.to_owned())
    }

    pub fn field(&self, name: &str) -> Self {
        Self(format!("{}.{name}", self.0))
    }

    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// An error at a child field.
    pub fn error(&self, field: &str, message: impl Into<String>) -> FieldError {
        FieldError::new(self.field(field).0, message)
    }

    /// An error at this path.
    pub fn here(&self, message: impl Into<String>) -> FieldError {
        FieldError::new(self.0.clone(), message)
    }
}

pub fn is_app_id(s: &str) -> bool {
    s.len() == 18
        && s.starts_with("wx")
        && s.bytes()
            .skip(2)
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b))
}

pub fn is_tag_name(s: &str) -> bool {
    (1..=MAX_TAG_NAME_BYTES).contains(&s.len())
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// Two parameter names the sidecar treats as one: letter case and `_`/`-` do not matter.
pub fn same_param(a: &str, b: &str) -> bool {
    same_param_bytes(a.as_bytes(), b.as_bytes())
}

/// Whether `name` starts with `prefix`, compared as [`same_param`] compares names.
pub fn has_param_prefix(name: &str, prefix: &str) -> bool {
    name.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| same_param_bytes(head, prefix.as_bytes()))
}

fn same_param_bytes(a: &[u8], b: &[u8]) -> bool {
    let norm = |c: &u8| {
        if *c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().map(norm).eq(b.iter().map(norm))
}

pub fn token(at: &Path, s: &str, errors: &mut Vec<FieldError>) {
    if !is_token(s) {
        errors.push(at.here(
            "must be 1 to 64 characters of an HTTP token (letters, digits, !#$%&'*+.^_`|~-)",
        ));
    }
}

pub fn max_len(at: &Path, s: &str, max: usize, errors: &mut Vec<FieldError>) {
    if s.len() > max {
        errors.push(at.here(format!("must be at most {max} bytes")));
    }
}

pub fn dns_subdomain(at: &Path, s: &str, errors: &mut Vec<FieldError>) {
    let ok = (1..=253).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    if !ok {
        errors.push(at.here("must be a DNS subdomain name (lowercase letters, digits, - and .)"));
    }
}

pub fn secret_key(at: &Path, s: &str, errors: &mut Vec<FieldError>) {
    let ok = (1..=253).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !ok {
        errors.push(at.here("must be a Secret key (letters, digits, -, _ and .)"));
    }
}

/// A request path as written in a binding or `login.paths`: absolute, no query or fragment,
/// no empty, `.` or `..` segments, no percent-encoding, and `{name}` segments only in
/// templates.
pub fn request_path(at: &Path, p: &str, template: bool, errors: &mut Vec<FieldError>) {
    let mut problem = |m: &str| errors.push(at.here(format!("{p:?}: {m}")));
    if !p.starts_with('/') {
        return problem("must start with /");
    }
    if p.len() > 1024 {
        return problem("must be at most 1024 bytes");
    }
    if p.bytes().any(|b| {
        b.is_ascii_control()
            || b == b' '
            || b == b'?'
            || b == b'#'
            || b == b'%'
            || b == b'\\'
            || !b.is_ascii()
    }) {
        return problem("must be plain ASCII without spaces, ?, #, % or \\");
    }
    let trimmed = p.strip_suffix('/').filter(|t| !t.is_empty()).unwrap_or(p);
    for segment in trimmed.split('/').skip(1) {
        if segment.is_empty() && trimmed != "/" {
            return problem("must not contain an empty segment (//)");
        }
        if segment == "." || segment == ".." {
            return problem("must not contain . or .. segments");
        }
        let braces = segment.contains('{') || segment.contains('}');
        if braces && !template {
            return problem("{...} is only allowed with match: Template");
        }
        if braces && !is_template_param(segment) {
            return problem(
                "a template segment must be exactly {name}, name in lowercase letters, digits and _",
            );
        }
    }
}

fn is_template_param(segment: &str) -> bool {
    segment
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_errors(p: &str, template: bool) -> Vec<FieldError> {
        let mut errors = Vec::new();
        request_path(&Path::root("x"), p, template, &mut errors);
        errors
    }

    #[test]
    fn request_paths() {
        for ok in ["/", "/login", "/orders/", "/a/b.c/d-e_f~"] {
            assert!(path_errors(ok, false).is_empty(), "{ok}");
        }
        assert!(path_errors("/users/{id}/orders", true).is_empty());
        for bad in [
            "login",
            "//a",
            "/a//b",
            "/a/../b",
            "/a/./b",
            "/a?b",
            "/a#b",
            "/a%2fb",
            "/a b",
            "/ü",
            "/a\\b",
            "/users/{id}",
        ] {
            assert_eq!(path_errors(bad, false).len(), 1, "{bad}");
        }
        for bad in ["/users/{ID}", "/users/{}", "/users/x{id}", "/users/{id"] {
            assert_eq!(path_errors(bad, true).len(), 1, "{bad}");
        }
    }

    #[test]
    fn parameter_names_compare_like_the_sidecar_strips() {
        assert!(same_param("X-WX-OPENID", "x_wx_openid"));
        assert!(!same_param("X-WX-OPENID", "x-wx-openid2"));
        assert!(has_param_prefix("x_WxGate_tag_openid", "x-wxgate-"));
        assert!(!has_param_prefix("x-wxgat", "x-wxgate-"));
        assert!(!has_param_prefix("x-wxgatf-a", "x-wxgate-"));
    }

    #[test]
    fn app_ids() {
        assert!(is_app_id("wx0123456789abcdef"));
        assert!(!is_app_id("wx0123456789ABCDEF"));
        assert!(!is_app_id("wx0123456789abcde"));
    }
}
