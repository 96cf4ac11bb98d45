//! Request heads written for the app and response heads read from it (RFC 9112).

use std::io::Write as _;
use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderMap, Method, Response, StatusCode, Version};
use hyper::body::SizeHint;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::Failure;
use crate::proxy::hygiene::{Coding, transfer_coding};

/// The longest response head read: hyper's own read buffer limit.
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// The most response header fields: as many as hyper accepts.
const MAX_HEADERS: usize = 100;

/// How the app's response body is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: a HEAD request, or a 1xx, 204 or 304 answer.
    Empty,
    Length(u64),
    Chunked,
    /// Until the app closes the connection.
    Close,
}

/// Writes the request head for the app into `out` (emptied first), and says whether its body
/// goes chunked. The framing comes from the body itself: a body of known size gets its
/// `Content-Length` (a bodiless GET, HEAD, DELETE, OPTIONS or TRACE none, unless the client sent
/// one), any other body is chunked.
pub fn encode_request(parts: &Parts, body: &SizeHint, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut declared = false;
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH {
            declared = true;
            continue;
        }
        if name == TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodiless = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    );
    let chunked = match body.exact() {
        Some(0) if bodiless && !declared => false,
        Some(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
            false
        }
        None => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            true
        }
    };
    out.extend_from_slice(b"\r\n");
    chunked
}

/// Reads the app's final response head (informational 1xx answers are skipped), and whether
/// the app keeps the connection open after it.
pub async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<(Response<()>, bool), Failure> {
    let mut heard = !buf.is_empty();
    loop {
        while let Some(parsed) = parse(buf)? {
            if let Some(head) = parsed {
                return Ok(head);
            }
        }
        if buf.len() >= MAX_HEAD {
            return Err(Failure::Malformed);
        }
        buf.reserve(8192);
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(Failure::App { silent: !heard }),
            Ok(_) => heard = true,
        }
    }
}

/// Parses one response head off the front of `buf`: `None` when more bytes are needed,
/// `Some(None)` for an informational answer (consumed), `Some(Some(..))` for the final one.
#[allow(clippy::type_complexity)]
pub(super) fn parse(buf: &mut BytesMut) -> Result<Option<Option<(Response<()>, bool)>>, Failure> {
    // Left uninitialized: only the fields parsed are written, not 3 KiB per response.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let parsing = httparse::ParserConfig::default();
    let len = match parsing.parse_response_with_uninit_headers(&mut parsed, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Failure::Malformed),
    };
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(Failure::Malformed)?;
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    // Where each name and value lies in the head, so values can share its bytes once split off.
    // (The buffer holds at most MAX_HEAD bytes and one read more: offsets fit in u32.)
    let start = buf.as_ptr() as usize;
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let count = parsed.headers.len();
    for (span, field) in spans.iter_mut().zip(parsed.headers.iter()) {
        let name = (field.name.as_ptr() as usize - start) as u32;
        let value = (field.value.as_ptr() as usize - start) as u32;
        *span = (
            name,
            name + field.name.len() as u32,
            value,
            value + field.value.len() as u32,
        );
    }
    let head = buf.split_to(len).freeze();
    if status.is_informational() {
        // 101 would switch protocols, which the sidecar never asks for (Upgrade is hop-by-hop).
        return match status {
            StatusCode::SWITCHING_PROTOCOLS => Err(Failure::Malformed),
            _ => Ok(Some(None)),
        };
    }
    let mut headers = HeaderMap::with_capacity(count);
    for &(n0, n1, v0, v1) in &spans[..count] {
        let (n0, n1, v0, v1) = (n0 as usize, n1 as usize, v0 as usize, v1 as usize);
        let name = HeaderName::from_bytes(&head[n0..n1]).map_err(|_| Failure::Malformed)?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(v0..v1)).map_err(|_| Failure::Malformed)?;
        headers.append(name, value);
    }
    let keep = match version {
        Version::HTTP_11 => !has_token(&headers, "close"),
        _ => has_token(&headers, "keep-alive"),
    };
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    Ok(Some(Some((response, keep))))
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// How the response body is delimited, and whether the connection may be reused after it;
/// `None` for framing the sidecar will not forward (a transfer coding other than `chunked`,
/// any transfer coding in HTTP/1.0, conflicting lengths). With `chunked` the app's `Content-Length`, if any, is removed
/// (RFC 9112 section 6.3), and the length of several equal ones is kept once.
pub fn response_framing(response: &mut Response<()>, is_head: bool) -> Option<(Framing, bool)> {
    let status = response.status();
    if is_head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Some((Framing::Empty, true));
    }
    let old = response.version() == Version::HTTP_10;
    let headers = response.headers_mut();
    let coded = match transfer_coding(headers) {
        Coding::None => false,
        // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding is faulty framing.
        _ if old => return None,
        Coding::Chunked => true,
        Coding::Other => return None,
    };
    if coded {
        let had_length = headers.remove(CONTENT_LENGTH).is_some();
        return Some((Framing::Chunked, !had_length));
    }
    let values = headers.get_all(CONTENT_LENGTH);
    let several = values.iter().count() > 1 || values.iter().any(|v| v.as_bytes().contains(&b','));
    let mut lengths = values
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|l| {
            let l = l.trim();
            l.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| l.parse::<u64>().ok())
                .flatten()
        });
    let Some(first) = lengths.next() else {
        return Some((Framing::Close, false));
    };
    let length = first?;
    if lengths.any(|l| l != Some(length)) {
        return None;
    }
    if several {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    Some((Framing::Length(length), true))
}
