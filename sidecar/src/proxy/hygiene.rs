//! What is done to every request and response, bound or not, before anything else:
//! hop-by-hop headers (and those a `Connection` header nominates) go, identity parameters and
//! wxgate's own `x-wxgate-` headers go, so only what the sidecar verified reaches the app.

use http::header::{CONNECTION, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderMap, Version};

use crate::active::{Active, is_default_identity};
use crate::params;

/// Hop-by-hop headers (RFC 9110 section 7.6.1), plus `expect`, which the sidecar answers
/// itself, and `proxy-authorization`, which is meant for a proxy.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Removes, in one pass over the header names, the hop-by-hop headers, those the `Connection`
/// header nominates and those `also` selects.
fn remove_headers(headers: &mut HeaderMap, also: impl Fn(&str) -> bool) {
    // `close`, `keep-alive` and the other hop-by-hop names go anyway: only other names are
    // kept (and copied), which the usual `Connection: keep-alive` never is.
    let nominated: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case("close")
                && !HOP_BY_HOP.iter().any(|h| t.eq_ignore_ascii_case(h))
        })
        .map(str::to_ascii_lowercase)
        .collect();
    params::remove_headers(headers, |name| {
        HOP_BY_HOP.contains(&name) || nominated.iter().any(|n| n == name) || also(name)
    });
}

fn is_identity(active: Option<&Active>, name: &str) -> bool {
    match active {
        Some(a) => a.is_identity(name),
        None => is_default_identity(name),
    }
}

/// Whether a request is one hyper lets through but wxgate refuses: an HTTP/1.1 request without
/// exactly one valid `Host` (RFC 9112 section 3.2: `host[:port]`, no userinfo, a numeric port),
/// a transfer coding other than one `chunked` (a `gzip, chunked` body would reach the app still
/// encoded, `chunked, chunked` is not allowed), or a `Connection` header nominating `Host` or
/// `Content-Length` (end-to-end fields a sender must not nominate, RFC 9110 section 7.6.1; the
/// app would get a request without them). Answered 400 and the connection closed, like
/// Content-Length with Transfer-Encoding.
pub fn is_ambiguous(parts: &Parts) -> bool {
    let mut hosts = parts.headers.get_all(HOST).iter();
    let host_ok = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().is_ok_and(is_valid_host),
        (None, _) => parts.version < Version::HTTP_11,
        _ => false,
    };
    let coding_ok = transfer_coding(&parts.headers) != Coding::Other;
    let nominations_ok = parts
        .headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .map(str::trim)
        .all(|t| !t.eq_ignore_ascii_case("host") && !t.eq_ignore_ascii_case("content-length"));
    !(host_ok && coding_ok && nominations_ok)
}

/// The transfer coding of a message's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// No `Transfer-Encoding`.
    None,
    /// Exactly one coding, `chunked` (any letter case).
    Chunked,
    /// Several codings, another one, or an empty list element: framing the sidecar does not
    /// forward.
    Other,
}

/// What the `Transfer-Encoding` fields of a message say, all of them taken together. An empty
/// list element (`chunked,`, `, chunked`) is `Other`: RFC 9110 section 5.6.1 would skip it, but
/// hyper reads `chunked,` as not chunked (a request is refused, an answer read until close), so
/// the only reading every hop shares is none.
pub fn transfer_coding(headers: &HeaderMap) -> Coding {
    let mut fields = headers.get_all(TRANSFER_ENCODING).iter().peekable();
    if fields.peek().is_none() {
        return Coding::None;
    }
    let mut codings = fields
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim);
    match (codings.next(), codings.next()) {
        (Some(c), None) if c.eq_ignore_ascii_case("chunked") => Coding::Chunked,
        _ => Coding::Other,
    }
}

/// A `Host` value as RFC 9112 section 3.2 allows it: `uri-host [ ":" port ]` (RFC 3986: a
/// reg-name of unreserved, sub-delims and `%`, or an IP literal in brackets), without userinfo,
/// the port all digits (at most 65535; empty is allowed, as RFC 3986 allows it). Read in place:
/// it runs on every request.
pub fn is_valid_host(value: &str) -> bool {
    let (host_ok, rest) = match value.strip_prefix('[') {
        Some(literal) => match literal.split_once(']') {
            Some((ip, rest)) => (
                !ip.is_empty()
                    && ip
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
                rest,
            ),
            None => return false,
        },
        None => {
            let end = value.find(':').unwrap_or(value.len());
            let host = &value[..end];
            (
                !host.is_empty() && host.bytes().all(is_reg_name_byte),
                &value[end..],
            )
        }
    };
    host_ok
        && match rest.strip_prefix(':') {
            None => rest.is_empty(),
            Some("") => true,
            Some(port) => port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok(),
        }
}

/// A byte of an RFC 3986 reg-name: unreserved, sub-delims, or `%` of a percent-encoding.
fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)
}

/// Cleans a request before it is routed.
pub fn clean_request(parts: &mut Parts, active: Option<&Active>) {
    remove_headers(&mut parts.headers, |name| is_identity(active, name));
    if parts.uri.query().is_some() {
        params::remove_query(parts, |name| is_identity(active, name));
    }
}

/// Cleans the app's response: its hop-by-hop headers, and any identity or `x-wxgate-` header
/// it set (a session_key echoed by the app never reaches the client; `x-wxgate-error` always
/// comes from the sidecar).
pub fn clean_response(headers: &mut HeaderMap, active: Option<&Active>) {
    remove_headers(headers, |name| is_identity(active, name));
}

#[cfg(test)]
mod tests {
    use super::is_valid_host;

    #[test]
    fn hosts_are_host_and_numeric_port_only() {
        for ok in [
            "x",
            "x:80",
            "x:",
            "10.0.0.1:8080",
            "[::1]",
            "[::1]:443",
            "a-b.example",
        ] {
            assert!(is_valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "user@evil.example",
            "u:p@x",
            "@x",
            "x:abc",
            "x:80a",
            "x:65536",
            "x:-1",
            "a b",
            "x:80:80",
            "[::1]x",
            "x/y",
            "x?y",
            "x#y",
            "[]",
            "[::1",
            "[g::1]",
            "a{b",
            "a\"b",
        ] {
            assert!(!is_valid_host(bad), "{bad}");
        }
    }
}
