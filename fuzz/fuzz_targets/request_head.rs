//! The request head path after hyper's parse: the hygiene checks, parameter reading and removal
//! in headers, query and cookies, cleaning against the quickstart's config, and route
//! normalization. After cleaning no identity, `x-wxgate-` or hop-by-hop name is left in the
//! headers or the query; a removed parameter reads as absent; normalizing is idempotent.
#![no_main]

use http::{Request, Version};
use libfuzzer_sys::fuzz_target;
use wxgate_fuzz::ACTIVE;
use wxgate_sidecar::params::{self, Found, Location};
use wxgate_sidecar::proxy::hygiene;
use wxgate_sidecar::routing;

const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut head = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = head.parse(data) else {
        return;
    };
    let (Some(method), Some(target)) = (head.method, head.path) else {
        return;
    };
    let version = if head.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .version(version);
    for h in head.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (mut parts, ()) = request.into_parts();

    let _ = hygiene::is_ambiguous(&parts);
    for location in [Location::Header, Location::Query, Location::Cookie] {
        for name in ["js_code", "user_session"] {
            let _ = params::read(&parts, location, name);
            let mut removed = parts.clone();
            params::remove(&mut removed, location, name);
            assert_eq!(params::read(&removed, location, name), Found::Absent);
        }
    }

    hygiene::clean_request(&mut parts, Some(&ACTIVE));
    for name in parts.headers.keys() {
        assert!(
            !ACTIVE.is_identity(name.as_str()),
            "{name} left after cleaning"
        );
        assert!(
            !HOP_BY_HOP.contains(&name.as_str()),
            "{name} left after cleaning"
        );
    }
    let query = parts.uri.query().unwrap_or_default();
    for (name, _) in form_urlencoded::parse(query.as_bytes()) {
        assert!(
            !ACTIVE.is_identity(&name),
            "query parameter {name} left after cleaning"
        );
    }

    if let Some(path) = routing::normalize(parts.uri.path()) {
        assert_eq!(routing::normalize(&path).as_deref(), Some(&*path));
        let _ = ACTIVE.login_plugin(&path, &parts.method);
        let _ = ACTIVE.tag_plugin(&path, &parts.method);
        let _ = routing::template_params("/users/{id}/orders/{order}", &path);
    }
});
