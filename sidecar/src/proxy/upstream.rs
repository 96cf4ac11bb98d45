//! The app behind the sidecar. Each downstream connection keeps its own upstream connection
//! (HTTP/1.1 keep-alive), so a request needs no pool lookup and connections are reused for as
//! long as the client keeps its own.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::ErrorCode;

/// Request body sent upstream: the client's stream, or a body the sidecar rewrote.
pub type UpBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Where the app listens and how long to wait for it.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// `host:port`.
    pub addr: String,
    pub connect_timeout: Duration,
    /// Deadline for the app's response headers.
    pub response_timeout: Duration,
}

impl Upstream {
    /// From `http://host:port` (the only scheme: the app is in the same pod).
    pub fn parse(
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let uri: http::Uri = url.parse()?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "--upstream must be http://host:port, got {url}"
        );
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("--upstream has no host: {url}"))?;
        let port = uri.port_u16().unwrap_or(80);
        anyhow::ensure!(
            uri.path() == "/" || uri.path().is_empty(),
            "--upstream must not have a path: {url}"
        );
        Ok(Self {
            addr: format!("{host}:{port}"),
            connect_timeout,
            response_timeout,
        })
    }
}

/// The upstream connection of one downstream connection.
pub struct UpstreamConn {
    sender: Option<SendRequest<UpBody>>,
}

impl UpstreamConn {
    pub fn new() -> Self {
        Self { sender: None }
    }

    async fn connect(
        &mut self,
        upstream: &Upstream,
    ) -> Result<&mut SendRequest<UpBody>, ErrorCode> {
        let stream =
            tokio::time::timeout(upstream.connect_timeout, TcpStream::connect(&upstream.addr))
                .await
                .map_err(|_| ErrorCode::UpstreamTimeout)?
                .map_err(|_| ErrorCode::UpstreamUnavailable)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ErrorCode::UpstreamUnavailable)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(self.sender.insert(sender))
    }

    /// Sends a request and waits for the response headers. A request that never left (the
    /// kept-alive connection had closed) is resent once on a fresh connection.
    pub async fn send(
        &mut self,
        upstream: &Upstream,
        mut req: Request<UpBody>,
    ) -> Result<Response<Incoming>, ErrorCode> {
        for attempt in 0..2 {
            let sender = match self.sender.as_mut() {
                Some(s) if !s.is_closed() => s,
                _ => self.connect(upstream).await?,
            };
            if sender.ready().await.is_err() {
                self.sender = None;
                continue;
            }
            match tokio::time::timeout(upstream.response_timeout, sender.try_send_request(req))
                .await
            {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(mut e)) => {
                    self.sender = None;
                    if let Some(code) = client_body_fault(e.error()) {
                        return Err(code);
                    }
                    match e.take_message() {
                        Some(unsent) if attempt == 0 => req = unsent,
                        _ => return Err(ErrorCode::UpstreamUnavailable),
                    }
                }
                Err(_) => {
                    self.sender = None;
                    return Err(ErrorCode::UpstreamTimeout);
                }
            }
        }
        Err(ErrorCode::UpstreamUnavailable)
    }
}

/// A request that failed on the client's own body, not on the app: the body passed
/// `--max-body-bytes` (413), or its framing broke mid-stream (400).
fn client_body_fault(error: &hyper::Error) -> Option<ErrorCode> {
    if !error.is_user() {
        return None;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return Some(ErrorCode::RequestTooLarge);
        }
        cause = c.source();
    }
    Some(ErrorCode::BadRequest)
}

impl Default for UpstreamConn {
    fn default() -> Self {
        Self::new()
    }
}
