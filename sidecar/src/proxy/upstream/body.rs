//! The app's response body, read from its connection as the client connection writes it out;
//! the connection goes back to its slot once the body has ended cleanly.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

use super::head::Framing;
use super::{AppConn, AppSlot};

/// The longest chunk-size line or trailer section followed.
const MAX_LINE: usize = 16 * 1024;

/// The body of an app's response.
pub struct AppBody {
    /// `None` once the body has ended (the connection is then back in its slot, or closed).
    conn: Option<AppConn>,
    state: State,
    /// Whether the connection may carry another request once this body has ended.
    keep: bool,
    slot: Arc<AppSlot>,
}

#[derive(Debug)]
enum State {
    /// Bytes left of a body of known length.
    Length(u64),
    /// A chunk-size line.
    ChunkSize,
    /// Bytes left of a chunk's data.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer fields after the last chunk, up to an empty line (not forwarded).
    Trailers,
    /// Until the app closes the connection.
    Close,
}

impl From<Framing> for State {
    fn from(framing: Framing) -> Self {
        match framing {
            Framing::Empty => State::Length(0),
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        }
    }
}

/// The whole body in `buf` (nothing more will come): `None` when it is broken or cut short.
pub(super) fn read_all(framing: Framing, buf: &mut BytesMut) -> Option<Vec<u8>> {
    let mut state = State::from(framing);
    let mut out = Vec::new();
    loop {
        match step(&mut state, buf).ok()? {
            Step::Data(bytes) => out.extend_from_slice(&bytes),
            Step::End => return Some(out),
            Step::Read => return matches!(state, State::Close).then_some(out),
        }
    }
}

/// What the bytes at hand give.
enum Step {
    Data(Bytes),
    End,
    /// More bytes are needed.
    Read,
}

impl AppBody {
    pub(super) fn new(conn: AppConn, framing: Framing, keep: bool, slot: &Arc<AppSlot>) -> Self {
        let mut body = Self {
            conn: Some(conn),
            state: State::from(framing),
            keep,
            slot: Arc::clone(slot),
        };
        if matches!(body.state, State::Length(0)) {
            body.end();
        }
        body
    }

    /// The body has ended: the connection goes back for the next request when the app keeps
    /// it open and sent nothing beyond the body.
    fn end(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.keep
            && conn.buf.is_empty()
        {
            self.slot.put(conn);
        }
    }
}

fn broken(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Moves past framing (chunk sizes, the CRLF after chunk data, trailers) with the bytes at
/// hand; stops at data, at the end, or where more bytes are needed.
fn advance(state: &mut State, buf: &mut BytesMut) -> io::Result<()> {
    loop {
        match state {
            State::ChunkSize => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, size))) => {
                    let _ = buf.split_to(used);
                    *state = match size {
                        0 => State::Trailers,
                        n => State::ChunkData(n),
                    };
                }
                Ok(httparse::Status::Partial) if buf.len() <= MAX_LINE => return Ok(()),
                _ => return Err(broken("the app sent a bad chunk size")),
            },
            State::ChunkEnd => match buf.get(..2) {
                None => return Ok(()),
                Some(b"\r\n") => {
                    let _ = buf.split_to(2);
                    *state = State::ChunkSize;
                }
                Some(_) => return Err(broken("the app's chunk did not end in CRLF")),
            },
            State::Trailers => {
                let end = if buf.starts_with(b"\r\n") {
                    Some(2)
                } else {
                    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
                };
                match end {
                    Some(end) => {
                        let _ = buf.split_to(end);
                        *state = State::Length(0);
                    }
                    None if buf.len() <= MAX_LINE => return Ok(()),
                    None => return Err(broken("the app's trailers are too long")),
                }
            }
            State::Length(_) | State::ChunkData(_) | State::Close => return Ok(()),
        }
    }
}

/// Takes what the bytes at hand give in `state`.
fn step(state: &mut State, buf: &mut BytesMut) -> io::Result<Step> {
    advance(state, buf)?;
    match state {
        State::Length(0) => Ok(Step::End),
        State::Length(left) | State::ChunkData(left) if !buf.is_empty() => {
            let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
            *left -= take as u64;
            if *left == 0 && matches!(state, State::ChunkData(_)) {
                *state = State::ChunkEnd;
            }
            Ok(Step::Data(buf.split_to(take).freeze()))
        }
        State::Close if !buf.is_empty() => Ok(Step::Data(buf.split().freeze())),
        _ => Ok(Step::Read),
    }
}

/// Reads what the app sent next into the connection's buffer.
fn poll_fill(conn: &mut AppConn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    loop {
        ready!(conn.stream.poll_read_ready(cx))?;
        if conn.buf.capacity() - conn.buf.len() < 4096 {
            conn.buf.reserve(16 * 1024);
        }
        match conn.stream.try_read_buf(&mut conn.buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            read => return Poll::Ready(read),
        }
    }
}

impl Body for AppBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match step(&mut this.state, &mut conn.buf) {
                Ok(Step::Data(bytes)) => {
                    // A body that ends with these bytes gives its connection back now: the
                    // client connection may not ask for more once it has the length it expected.
                    if advance(&mut this.state, &mut conn.buf).is_ok()
                        && matches!(this.state, State::Length(0))
                    {
                        this.end();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Ok(Step::End) => {
                    this.end();
                    return Poll::Ready(None);
                }
                Ok(Step::Read) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match ready!(poll_fill(conn, cx)) {
                Ok(0) if matches!(this.state, State::Close) => {
                    this.keep = false;
                    this.state = State::Length(0);
                }
                Ok(0) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(broken(
                        "the app closed the connection mid-body",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || matches!(self.state, State::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            _ if self.conn.is_none() => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
