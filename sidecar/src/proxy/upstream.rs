//! The app behind the sidecar, spoken to in HTTP/1.1 by the request's own task. Each client
//! connection keeps one app connection between its requests ([`AppSlot`]): a request writes its
//! head (and body) to it, reads the app's head, and the app's body is read by [`AppBody`] as the
//! client connection writes it out, which puts the connection back when the body ends. No task,
//! channel or pool sits between the two connections.

mod body;
mod head;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::Response;
use http::request::Parts;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Body as _;
use hyper::body::Incoming;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

use super::deadline::Deadline;
use crate::error::ErrorCode;
pub use body::AppBody;

/// Request body sent upstream: the client's stream (bounded), or a body the sidecar rewrote.
pub type UpBody = Either<Limited<Incoming>, Full<Bytes>>;

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

/// The app connection one client connection keeps between its requests (HTTP/1.1 keep-alive):
/// empty while a request uses it, or when the last answer did not leave it reusable.
#[derive(Default)]
pub struct AppSlot(Mutex<Option<AppConn>>);

impl AppSlot {
    fn take(&self) -> Option<AppConn> {
        self.0.lock().ok()?.take()
    }

    fn put(&self, conn: AppConn) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(conn);
        }
    }
}

/// One connection to the app, the bytes read from it and not yet used, the buffer request heads
/// are written into and the timer of the response deadline (both kept for the next request).
struct AppConn {
    stream: TcpStream,
    buf: BytesMut,
    head_buf: Vec<u8>,
    deadline: Deadline,
}

impl AppConn {
    async fn connect(upstream: &Upstream) -> Result<Self, ErrorCode> {
        let stream =
            tokio::time::timeout(upstream.connect_timeout, TcpStream::connect(&upstream.addr))
                .await
                .map_err(|_| ErrorCode::UpstreamTimeout)?
                .map_err(|_| ErrorCode::UpstreamUnavailable)?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            buf: BytesMut::new(),
            head_buf: Vec::new(),
            deadline: Deadline::default(),
        })
    }

    /// Whether a kept connection can take a request: the app has not closed it, nor sent
    /// anything since its last answer (which would be out of step). Costs a system call only
    /// when the socket was reported readable.
    fn is_reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => matches!(
                self.stream.try_read_buf(&mut self.buf),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            ),
        }
    }
}

/// Why an exchange with the app failed.
enum Failure {
    /// The client's own body broke (400) or passed `--max-body-bytes` (413).
    Client(ErrorCode),
    /// No answer: the connection failed or closed. `silent` when the app sent no byte at all.
    App { silent: bool },
    /// The app's answer is not HTTP/1.1 the sidecar can forward as is.
    Malformed,
}

/// Sends a request to the app and waits for its response head. A kept connection the app has
/// closed is noticed before use; one that closes as the request is sent, with no byte back,
/// costs a resend on a fresh connection when the request is idempotent and has no body.
pub async fn send(
    upstream: &Upstream,
    slot: &Arc<AppSlot>,
    parts: &Parts,
    mut body: UpBody,
) -> Result<Response<AppBody>, ErrorCode> {
    let resendable = body.is_end_stream() && parts.method.is_idempotent();
    let is_head = parts.method == http::Method::HEAD;
    for attempt in 0..2 {
        let kept = slot
            .take()
            .filter(|_| attempt == 0)
            .and_then(|mut c| c.is_reusable().then_some(c));
        let (mut conn, reused) = match kept {
            Some(c) => (c, true),
            None => (Box::pin(AppConn::connect(upstream)).await?, false),
        };
        let chunked = head::encode_request(parts, &body.size_hint(), &mut conn.head_buf);
        conn.deadline
            .set(Instant::now() + upstream.response_timeout);
        let AppConn {
            stream,
            buf,
            head_buf,
            deadline,
        } = &mut conn;
        let exchanged = tokio::select! {
            biased;
            exchanged = exchange(stream, buf, head_buf, &mut body, chunked) => exchanged,
            () = deadline.expired() => return Err(ErrorCode::UpstreamTimeout),
        };
        let failure = match exchanged {
            Ok((mut response, keep)) => {
                let Some((framing, reusable)) = head::response_framing(&mut response, is_head)
                else {
                    return Err(ErrorCode::UpstreamUnavailable);
                };
                let keep = keep && reusable;
                return Ok(response.map(|()| AppBody::new(conn, framing, keep, slot)));
            }
            Err(f) => f,
        };
        match failure {
            Failure::Client(code) => return Err(code),
            Failure::App { silent: true } if reused && resendable => continue,
            Failure::App { .. } | Failure::Malformed => {
                return Err(ErrorCode::UpstreamUnavailable);
            }
        }
    }
    Err(ErrorCode::UpstreamUnavailable)
}

/// Writes the request and reads the response head; the body is written while the head is
/// awaited, since an app may answer before reading it all. Also says whether the connection
/// can carry another request (the body went out whole and the app did not ask to close).
async fn exchange(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head: &[u8],
    body: &mut UpBody,
    chunked: bool,
) -> Result<(Response<()>, bool), Failure> {
    let silent = |buf: &BytesMut| Failure::App {
        silent: buf.is_empty(),
    };
    if body.is_end_stream() {
        stream.write_all(head).await.map_err(|_| silent(buf))?;
        let (response, keep) = head::read_response(stream, buf).await?;
        return Ok((response, keep));
    }
    // Boxed: only requests with a body pay for its larger future.
    Box::pin(exchange_with_body(stream, buf, head, body, chunked)).await
}

/// [`exchange`] for a request with a body.
async fn exchange_with_body(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head: &[u8],
    body: &mut UpBody,
    chunked: bool,
) -> Result<(Response<()>, bool), Failure> {
    let (mut reader, writer) = stream.split();
    let mut writer = BufWriter::with_capacity(16 * 1024, writer);
    let sending = async {
        writer.write_all(head).await.map_err(|_| None)?;
        write_body(&mut writer, body, chunked).await?;
        writer.flush().await.map_err(|_| None)
    };
    let reading = head::read_response(&mut reader, buf);
    tokio::pin!(sending, reading);
    // None: still sending; Some(true): sent whole; Some(false): the app stopped taking it.
    let mut sent: Option<bool> = None;
    loop {
        tokio::select! {
            biased;
            result = &mut sending, if sent.is_none() => match result {
                Ok(()) => sent = Some(true),
                Err(Some(code)) => return Err(Failure::Client(code)),
                Err(None) => sent = Some(false),
            },
            read = &mut reading => {
                let (response, keep) = read?;
                return Ok((response, keep && sent == Some(true)));
            }
        }
    }
}

/// Streams the request body; `Err(Some(code))` when the client's body fails, `Err(None)` when
/// the app's connection does.
async fn write_body<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    body: &mut UpBody,
    chunked: bool,
) -> Result<(), Option<ErrorCode>> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Some(client_body_fault(&*e)))?;
        // Trailers are not forwarded: the `Trailer` header that would announce them is
        // hop-by-hop.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            let size = format!("{:X}\r\n", data.len());
            writer.write_all(size.as_bytes()).await.map_err(|_| None)?;
        }
        writer.write_all(&data).await.map_err(|_| None)?;
        if chunked {
            writer.write_all(b"\r\n").await.map_err(|_| None)?;
        }
        // The head goes out with the first piece of body, each piece as it comes.
        writer.flush().await.map_err(|_| None)?;
    }
    if chunked {
        writer.write_all(b"0\r\n\r\n").await.map_err(|_| None)?;
    }
    Ok(())
}

/// An app's whole answer in `bytes`, read as the sidecar reads it: the final head (1xx skipped)
/// and the body after `is_head` or not; `None` for what the sidecar answers 502 or cuts off.
/// The fuzz target `app_response` holds it against hyper's own client.
pub fn read_whole(bytes: &[u8], is_head: bool) -> Option<(Response<()>, Vec<u8>)> {
    let mut buf = BytesMut::from(bytes);
    let mut response = loop {
        if let Some((response, _)) = head::parse(&mut buf).ok()?? {
            break response;
        }
    };
    let (framing, _) = head::response_framing(&mut response, is_head)?;
    let body = body::read_all(framing, &mut buf)?;
    Some((response, body))
}

/// A body that failed on the client's side: past `--max-body-bytes` (413), or its framing
/// broke mid-stream (400).
fn client_body_fault(error: &(dyn std::error::Error + 'static)) -> ErrorCode {
    let mut cause = Some(error);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return ErrorCode::RequestTooLarge;
        }
        cause = c.source();
    }
    ErrorCode::BadRequest
}
