//! What the access log and metrics record of one request, filled in as it goes.

use http::Response;
use http_body_util::Either;

use super::RespBody;
use crate::error::ErrorCode;
use crate::metrics::RouteKind;
use crate::{tags, trace};

/// What the access log and metrics record of a request.
pub struct Record {
    pub route: RouteKind,
    /// The traceId parameter's value and the request's trace id.
    pub trace: Option<(String, String)>,
    pub code: Option<ErrorCode>,
    /// Set once WeChat or a credential vouched for it, when the access log is on; logged only
    /// as a hash.
    pub openid: Option<String>,
    /// The span exported for a traced request, when an OTLP endpoint is configured.
    pub span: Option<trace::RequestSpan>,
    /// The Tag plugin's tags, added with the login plugin's by [`Record::emit_tags`].
    pub tags: Vec<(String, String)>,
}

impl Record {
    /// Answers with the error contract and records why.
    pub fn reject(&mut self, code: ErrorCode) -> Response<RespBody> {
        self.code = Some(code);
        code.response()
            .map(|b| Either::Right(http_body_util::Full::new(b)))
    }

    /// Adds the request's tags for the app and its span, once, just before it is forwarded:
    /// the login plugin's `wechat` tags, then the Tag plugin's (see [`tags::emit`]).
    pub fn emit_tags(&mut self, headers: &mut http::HeaderMap, wechat: Vec<(String, String)>) {
        let added = tags::emit(headers, wechat, std::mem::take(&mut self.tags));
        if let Some(span) = &mut self.span {
            for (name, value) in &added {
                span.tag(name, value);
            }
        }
    }
}
