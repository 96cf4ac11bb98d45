//! The single-use codes a request carries (the login code, a phone code): each read at its
//! location and taken out of the request, so the app never sees one. A code in the body is a
//! field of a JSON object or form body, which is then read whole (bounded) and forwarded
//! without it.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use hyper::body::Incoming;
use wxgate_crds::render::contract::{CodeIn, CodeParam};

use super::Limits;
use super::body;
use super::upstream::UpBody;
use crate::error::ErrorCode;
use crate::ids::is_valid_code;
use crate::params::{self, Found, Location};

/// A code a request may carry.
pub struct Wanted<'a> {
    pub param: &'a CodeParam,
    /// Absent is an error (else it is `None`).
    pub required: bool,
    /// The answer when it is required and absent, or present but unusable.
    pub error: ErrorCode,
}

/// Takes the wanted codes out of a request: each one found (`None` where an optional one is
/// absent), and the body to forward.
pub async fn take(
    parts: &mut Parts,
    body: Incoming,
    wanted: &[Wanted<'_>],
    limits: &Limits,
) -> Result<(Vec<Option<String>>, UpBody), ErrorCode> {
    let mut codes: Vec<Option<String>> = vec![None; wanted.len()];
    for (code, w) in codes.iter_mut().zip(wanted) {
        let Some(at) = Location::of_code(w.param.location) else {
            continue;
        };
        match params::read(parts, at, &w.param.name) {
            Found::Absent if !w.required => {}
            Found::One(found) => *code = Some(found.into_owned()),
            Found::Absent | Found::Many => return Err(w.error),
        }
        params::remove(parts, at, &w.param.name);
    }
    let in_body: Vec<usize> = (0..wanted.len())
        .filter(|&i| wanted[i].param.location == CodeIn::Body)
        .collect();
    let required = in_body.iter().find(|&&i| wanted[i].required);
    let up_body = match (in_body.first(), body_kind(&parts.headers)) {
        (None, _) => body::stream_up(body, limits.max_body_bytes),
        (Some(_), None) => match required {
            Some(&i) => return Err(wanted[i].error),
            None => body::stream_up(body, limits.max_body_bytes),
        },
        (Some(&first), Some(kind)) => {
            let bytes = body::read_bounded(body, limits.max_login_body_bytes)
                .await
                .ok_or(ErrorCode::RequestTooLarge)?;
            let names: Vec<&str> = in_body
                .iter()
                .map(|&i| wanted[i].param.name.as_str())
                .collect();
            let (found, rest) = take_fields(kind, &bytes, &names).map_err(|m| match m {
                Malformed::Body => wanted[required.copied().unwrap_or(first)].error,
                Malformed::Field(j) => wanted[in_body[j]].error,
            })?;
            for (&i, found) in in_body.iter().zip(found) {
                if found.is_none() && wanted[i].required {
                    return Err(wanted[i].error);
                }
                codes[i] = found;
            }
            parts.headers.remove(CONTENT_LENGTH);
            body::full_up(rest)
        }
    };
    for (code, w) in codes.iter().zip(wanted) {
        if code.as_deref().is_some_and(|c| !is_valid_code(c)) {
            return Err(w.error);
        }
    }
    Ok((codes, up_body))
}

/// Why fields could not be taken out of a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not a JSON object, or not a form.
    Body,
    /// The field of this index is there twice, or (JSON) not as a string.
    Field(usize),
}

/// Takes fields out of a JSON object or form body: each one's value where it is there once as
/// a string (JSON) or a single pair (form), and the body without them.
pub fn take_fields(
    kind: BodyKind,
    bytes: &[u8],
    names: &[&str],
) -> Result<(Vec<Option<String>>, Bytes), Malformed> {
    let mut found = vec![None; names.len()];
    match kind {
        BodyKind::Json => {
            let mut value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|_| Malformed::Body)?;
            let object = value.as_object_mut().ok_or(Malformed::Body)?;
            for (i, name) in names.iter().enumerate() {
                match object.remove(*name) {
                    Some(serde_json::Value::String(v)) => found[i] = Some(v),
                    Some(_) => return Err(Malformed::Field(i)),
                    None => {}
                }
            }
            Ok((found, Bytes::from(value.to_string())))
        }
        BodyKind::Form => {
            let mut rest = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form_urlencoded::parse(bytes) {
                match names.iter().position(|n| *n == k) {
                    Some(i) => {
                        if found[i].replace(v.into_owned()).is_some() {
                            return Err(Malformed::Field(i));
                        }
                    }
                    None => {
                        rest.append_pair(&k, &v);
                    }
                }
            }
            Ok((found, Bytes::from(rest.finish())))
        }
    }
}

/// The two body types a code may travel in.
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
