//! Request smuggling guard. hyper resolves a request carrying both Content-Length and
//! Transfer-Encoding by RFC 9112 (Transfer-Encoding wins, the connection closes after); wxgate
//! refuses such requests outright. hyper drops the evidence while parsing, so this wrapper
//! follows the HTTP/1.1 framing of the bytes the client sends and raises a flag when a request
//! head carries both; the handler then answers 400 and the connection closes.
//!
//! Heads are found by httparse, hyper's own parser with hyper's settings, so a head ends exactly
//! where hyper's does (CRLF or bare LF line ends alike: RFC 9112 section 2.2 lets a recipient
//! accept a bare LF, and hyper does). Bodies are followed by Content-Length or chunked framing.
//!
//! The tracker only watches: bytes pass to hyper unchanged. Framing it cannot follow raises the
//! flag too (fail closed): the next request hyper reads on that connection is refused, so no
//! request ever reaches the app unwatched.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest request head or chunk line followed: past hyper's own limits (its buffer, 16 KiB of
/// chunk extensions and of trailers), so only what hyper refuses anyway is cut off.
const MAX_HEAD: usize = 256 * 1024;
/// Most headers parsed in a head: at least hyper's 100, past which hyper refuses the request.
const MAX_HEADERS: usize = 128;

/// A client connection whose request framing is followed.
pub struct Sniffed<IO> {
    io: IO,
    tracker: Tracker,
}

impl<IO> Sniffed<IO> {
    /// Wraps a connection whose bytes `tracker` follows.
    pub fn new(io: IO, tracker: Tracker) -> Self {
        Self { io, tracker }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Sniffed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let fresh = &buf.filled()[before..];
            self.tracker.feed(fresh);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Sniffed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[derive(Debug, PartialEq)]
enum State {
    /// Collecting a request head.
    Head,
    /// A body of known length: bytes left.
    Fixed(u64),
    /// A chunk-size line.
    ChunkSize,
    /// Chunk data: bytes left, then CRLF.
    ChunkData(u64),
    /// The CRLF after chunk data: bytes of it left.
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, up to an empty line (lines end in CRLF, as hyper
    /// reads them).
    Trailer,
    /// Framing not understood: the flag is raised and nothing more is followed.
    Lost,
}

/// Follows the framing of one connection's request bytes.
pub struct Tracker {
    state: State,
    /// The partial head or line being collected.
    line: Vec<u8>,
    flag: Arc<AtomicBool>,
    /// For tests: the method and target of every head seen, in order.
    seen: Option<Arc<std::sync::Mutex<Vec<String>>>>,
}

impl Tracker {
    pub fn new(flag: Arc<AtomicBool>) -> Self {
        Self {
            state: State::Head,
            line: Vec::new(),
            flag,
            seen: None,
        }
    }

    /// A tracker that also writes `METHOD target` of each head it finds into `seen` (the
    /// differential fuzz target compares it with what hyper dispatched).
    pub fn recording(flag: Arc<AtomicBool>, seen: Arc<std::sync::Mutex<Vec<String>>>) -> Self {
        Self {
            seen: Some(seen),
            ..Self::new(flag)
        }
    }

    /// Follows the next bytes the client sent.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Lost => return,
                State::Head => {
                    // Fast path: a whole head in this read, nothing buffered.
                    if self.line.is_empty() {
                        match self.head(bytes) {
                            Some(end) => {
                                bytes = &bytes[end..];
                                continue;
                            }
                            None if self.state == State::Lost => return,
                            None => {}
                        }
                        self.line.extend_from_slice(bytes);
                    } else {
                        self.line.extend_from_slice(bytes);
                        // A head ends with a LF: parse again only when one arrived.
                        if bytes.contains(&b'\n') {
                            let buffered = std::mem::take(&mut self.line);
                            match self.head(&buffered) {
                                Some(end) => return self.feed(&buffered[end..]),
                                None if self.state == State::Lost => return,
                                None => self.line = buffered,
                            }
                        }
                    }
                    if self.line.len() > MAX_HEAD {
                        self.lose();
                    }
                    return;
                }
                State::Fixed(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if n == left {
                        State::Head
                    } else {
                        State::Fixed(left - n)
                    };
                }
                State::ChunkSize | State::Trailer => {
                    let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(bytes);
                        if self.line.len() > MAX_HEAD {
                            self.lose();
                        }
                        return;
                    };
                    self.line.extend_from_slice(&bytes[..=nl]);
                    bytes = &bytes[nl + 1..];
                    // hyper ends a trailer line only at CRLF: a bare LF is part of the line.
                    if self.state == State::Trailer && !self.line.ends_with(b"\r\n") {
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line);
                }
                State::ChunkData(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if n == left {
                        State::ChunkEnd(2)
                    } else {
                        State::ChunkData(left - n)
                    };
                }
                State::ChunkEnd(left) => {
                    let expected = if left == 2 { b'\r' } else { b'\n' };
                    if bytes[0] != expected {
                        return self.lose();
                    }
                    bytes = &bytes[1..];
                    self.state = if left == 1 {
                        State::ChunkSize
                    } else {
                        State::ChunkEnd(1)
                    };
                }
            }
        }
    }

    /// Stops following, raising the flag: what comes next on this connection is refused.
    fn lose(&mut self) {
        self.state = State::Lost;
        self.line = Vec::new();
        self.flag.store(true, Ordering::Release);
    }

    /// Parses a request head at the start of `bytes` as hyper does; when complete, moves to its
    /// body and returns the head's length. `None` when more bytes are needed (or, with the state
    /// lost, when hyper would refuse the head too).
    fn head(&mut self, bytes: &[u8]) -> Option<usize> {
        // Left uninitialized, as hyper does: only the fields parsed are written.
        let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        let end = match request.parse_with_uninit_headers(bytes, &mut headers) {
            Ok(httparse::Status::Complete(end)) => end,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => {
                self.lose();
                return None;
            }
        };
        if let Some(seen) = &self.seen {
            let line = format!(
                "{} {}",
                request.method.unwrap_or_default(),
                request.path.unwrap_or_default()
            );
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
        let mut length = None;
        let mut chunked = None;
        for h in request.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let parsed = std::str::from_utf8(h.value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok());
                match (length, parsed) {
                    (None, Some(n)) => length = Some(n),
                    (Some(a), Some(b)) if a == b => {}
                    _ => {
                        self.lose();
                        return Some(end);
                    }
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
        }
        if length.is_some() && chunked.is_some() {
            self.flag.store(true, Ordering::Release);
        }
        match (chunked, length) {
            (Some(true), _) => self.state = State::ChunkSize,
            (Some(false), _) => self.lose(),
            (None, Some(n)) if n > 0 => self.state = State::Fixed(n),
            _ => self.state = State::Head,
        }
        Some(end)
    }

    /// A complete chunk-size or trailer line.
    fn line_done(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.state == State::Trailer {
            if line.is_empty() {
                self.state = State::Head;
            }
            return;
        }
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size.trim_ascii())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        match size {
            Some(0) => self.state = State::Trailer,
            Some(n) => self.state = State::ChunkData(n),
            None => self.lose(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(chunks: &[&[u8]]) -> (bool, State) {
        let flag = Arc::new(AtomicBool::new(false));
        let mut t = Tracker::new(Arc::clone(&flag));
        for c in chunks {
            t.feed(c);
        }
        (flag.load(Ordering::Acquire), t.state)
    }

    #[test]
    fn flags_both_framing_headers_in_any_order() {
        assert!(
            track(&[b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"])
                .0
        );
        assert!(
            track(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n"])
                .0
        );
    }

    #[test]
    fn follows_bodies_to_the_next_head_across_reads() {
        let pipelined: &[u8] = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /c HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(track(&[pipelined]), (true, State::ChunkSize));
        // Byte by byte, the same.
        let bytes: Vec<&[u8]> = pipelined.chunks(1).collect();
        assert_eq!(track(&bytes), (true, State::ChunkSize));
        // A body that merely contains header-like text is not a head.
        let body = b"POST /a HTTP/1.1\r\nContent-Length: 49\r\n\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(track(&[body]), (false, State::Head));
    }

    #[test]
    fn ordinary_requests_are_not_flagged() {
        assert_eq!(
            track(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"]),
            (false, State::Head)
        );
    }

    #[test]
    fn bare_lf_heads_end_where_hyper_ends_them() {
        // A bare-LF head, then a request with both framing headers: flagged (the CRLF-only
        // search of old never found the first head's end, and lost the connection).
        let after_bare = b"GET /a HTTP/1.1\nHost: x\n\nPOST /b HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(track(&[after_bare]), (true, State::ChunkSize));
        let bytes: Vec<&[u8]> = after_bare.chunks(1).collect();
        assert_eq!(track(&bytes), (true, State::ChunkSize));
        // Mixed line ends, and a bare-LF body boundary.
        let mixed = b"POST /a HTTP/1.1\r\nContent-Length: 2\n\r\nokGET /c HTTP/1.1\n\n";
        assert_eq!(track(&[mixed]), (false, State::Head));
    }

    #[test]
    fn framing_it_cannot_follow_raises_the_flag() {
        for lost in [
            &b"garbage\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY",
        ] {
            assert_eq!(track(&[lost]), (true, State::Lost), "{lost:?}");
        }
        // A long chunk extension (hyper allows 16 KiB of them) is still followed.
        let mut long = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        long.extend(std::iter::repeat_n(b'x', 10_000));
        long.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
        assert_eq!(track(&[&long]), (false, State::Head));
    }

    #[test]
    fn trailer_lines_end_at_crlf_only() {
        // hyper reads "\nGET ..." as trailer bytes up to the empty CRLF line: no head there.
        let t = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\nGET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(track(&[t]), (false, State::Head));
    }
}
