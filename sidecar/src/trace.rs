//! Trace context (DESIGN.md section 7): the W3C `traceparent` a tagged request carries to the
//! app, and, when an OTLP endpoint is configured, the request's span exported over OTLP/HTTP.

use http::HeaderMap;
use http::header::HeaderValue;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The fields of a valid `traceparent`.
#[derive(Debug, PartialEq, Eq)]
pub struct TraceParent<'a> {
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub flags: u8,
}

/// A valid W3C `traceparent` (lowercase hex, non-zero ids, version not `ff`), or `None`.
pub fn parse_traceparent(value: &str) -> Option<TraceParent<'_>> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace_id, span_id, flags] = parts[..] else {
        return None;
    };
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(span_id, 16)
        && span_id.bytes().any(|b| b != b'0')
        && hex(flags, 2);
    valid.then(|| TraceParent {
        trace_id,
        span_id,
        flags: u8::from_str_radix(flags, 16).unwrap_or_default(),
    })
}

fn incoming(headers: &HeaderMap) -> Option<TraceParent<'_>> {
    headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
}

/// A fresh `traceparent` (sampled) and its trace id.
pub fn new_traceparent() -> (String, String) {
    let mut trace = [0u8; 16];
    let mut span = [0u8; 8];
    rand::fill(&mut trace);
    rand::fill(&mut span);
    let trace_id = hex::encode(trace);
    (format!("00-{trace_id}-{}-01", hex::encode(span)), trace_id)
}

fn set_traceparent(headers: &mut HeaderMap, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(TRACEPARENT, v);
    }
}

/// Keeps a valid incoming `traceparent` or sets a fresh one (dropping the `tracestate` of the
/// trace it does not continue); returns the trace id.
pub fn ensure_traceparent(headers: &mut HeaderMap) -> String {
    if let Some(parent) = incoming(headers) {
        return parent.trace_id.to_owned();
    }
    let (value, trace_id) = new_traceparent();
    set_traceparent(headers, &value);
    headers.remove(TRACESTATE);
    trace_id
}

/// Exports one span per traced request to an OTLP/HTTP receiver, batched in the background.
#[derive(Clone)]
pub struct SpanExport {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// Where spans go: `<endpoint>/v1/traces`, the OTLP/HTTP convention for a base endpoint.
pub fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| anyhow::anyhow!("--otlp-endpoint {endpoint:?}: {e}"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none() || uri.query().is_some() {
        anyhow::bail!("--otlp-endpoint {endpoint:?}: expected http(s)://host[:port][/path]");
    }
    Ok(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
}

impl SpanExport {
    /// An exporter to `endpoint` (see [`traces_url`]); the standard `OTEL_EXPORTER_OTLP_*`
    /// (headers, timeout, compression) and `OTEL_BSP_*` (batching) variables apply.
    pub fn new(endpoint: &str, service: Option<&str>) -> anyhow::Result<Self> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces_url(endpoint)?)
            .build()?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("wxgate-sidecar");
        }
        if let Some(service) = service {
            resource = resource.with_attribute(KeyValue::new("wxgate.service", service.to_owned()));
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("wxgate-sidecar");
        Ok(Self { provider, tracer })
    }

    /// Starts a request's server span, the child of a valid incoming `traceparent` (else the
    /// root of a new trace), and sets the `traceparent` the app receives to name this span as
    /// its parent. Sampling follows the incoming sampled flag; new traces are sampled.
    pub fn start(
        &self,
        headers: &mut HeaderMap,
        method: &http::Method,
        path: &str,
        route: Option<&str>,
    ) -> (RequestSpan, String) {
        let parent = match incoming(headers) {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_hex(p.trace_id).unwrap_or(TraceId::INVALID),
                SpanId::from_hex(p.span_id).unwrap_or(SpanId::INVALID),
                TraceFlags::new(p.flags),
                true,
                TraceState::default(),
            )),
            None => {
                headers.remove(TRACESTATE);
                Context::new()
            }
        };
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        };
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("url.path", path.to_owned()),
        ];
        if let Some(route) = route {
            attributes.push(KeyValue::new("http.route", route.to_owned()));
        }
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        let cx = span.span_context();
        let trace_id = cx.trace_id().to_string();
        set_traceparent(
            headers,
            &format!(
                "00-{trace_id}-{}-{:02x}",
                cx.span_id(),
                cx.trace_flags().to_u8()
            ),
        );
        (RequestSpan(span), trace_id)
    }

    /// Sends what is still batched; called once when the sidecar stops.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "span export did not finish");
        }
    }
}

/// The span of one request, ended by [`RequestSpan::finish`].
pub struct RequestSpan(opentelemetry_sdk::trace::Span);

impl RequestSpan {
    /// Records a tag the request carried to the app, as attribute `wxgate.tag.<name>`.
    pub fn tag(&mut self, name: &str, value: &str) {
        self.0.set_attribute(KeyValue::new(
            format!("wxgate.tag.{name}"),
            value.to_owned(),
        ));
    }

    /// Ends the span with the answer's status, the kind of route and the error code if any.
    pub fn finish(mut self, status: u16, route: &'static str, code: Option<&'static str>) {
        self.0.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        self.0.set_attribute(KeyValue::new("wxgate.route", route));
        if let Some(code) = code {
            self.0
                .set_attribute(KeyValue::new("wxgate.error_code", code));
        }
        if status >= 500 {
            self.0
                .set_status(Status::error(code.unwrap_or("server error")));
        }
        self.0.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_validated_and_created() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(ok),
            Some(TraceParent {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
                span_id: "00f067aa0ba902b7",
                flags: 1
            })
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1x",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
        let (made, trace_id) = new_traceparent();
        assert_eq!(
            parse_traceparent(&made).map(|p| p.trace_id),
            Some(trace_id.as_str())
        );
    }

    #[test]
    fn otlp_endpoints_are_checked() {
        assert_eq!(
            traces_url("http://otel-collector.observability:4318/").unwrap(),
            "http://otel-collector.observability:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://collector.example/otlp").unwrap(),
            "https://collector.example/otlp/v1/traces"
        );
        for bad in [
            "",
            "collector:4318",
            "ftp://collector",
            "http://c:4318/?a=1",
            "http://",
        ] {
            assert!(traces_url(bad).is_err(), "{bad:?}");
        }
    }
}
