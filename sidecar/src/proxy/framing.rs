//! Request smuggling guard. hyper resolves a request carrying both Content-Length and
//! Transfer-Encoding by RFC 9112 (Transfer-Encoding wins, the connection closes after); wxgate
//! refuses such requests outright. hyper drops the evidence while parsing, so this wrapper
//! follows the HTTP/1.1 framing of the bytes the client sends and raises a flag when a request
//! head carries both; the handler then answers 400 and the connection closes.
//!
//! The tracker only watches: bytes pass to hyper unchanged. If it ever meets framing it does
//! not understand, it stops watching for that connection (hyper's own parser still applies).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest request head followed; longer heads are hyper's to refuse (431).
const MAX_HEAD: usize = 256 * 1024;

/// A client connection whose request framing is followed.
pub struct Sniffed<IO> {
    io: IO,
    tracker: Tracker,
}

impl<IO> Sniffed<IO> {
    /// Wraps a connection; `flag` is raised when a request has both framing headers.
    pub fn new(io: IO, flag: Arc<AtomicBool>) -> Self {
        Self {
            io,
            tracker: Tracker::new(flag),
        }
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
    /// Trailer lines after the last chunk, up to an empty line.
    Trailer,
    /// Framing not understood: stop following.
    Lost,
}

struct Tracker {
    state: State,
    /// The partial head or line being collected.
    line: Vec<u8>,
    flag: Arc<AtomicBool>,
}

impl Tracker {
    fn new(flag: Arc<AtomicBool>) -> Self {
        Self {
            state: State::Head,
            line: Vec::new(),
            flag,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Lost => return,
                State::Head => {
                    // Fast path: a whole head in this read, nothing buffered.
                    if self.line.is_empty()
                        && let Some(end) = find_head_end(bytes)
                    {
                        self.head(&bytes[..end]);
                        bytes = &bytes[end..];
                        continue;
                    }
                    let start = self.line.len().saturating_sub(3);
                    self.line.extend_from_slice(bytes);
                    bytes = &[];
                    if let Some(end) = find_head_end(&self.line[start..]).map(|e| e + start) {
                        let rest = self.line.split_off(end);
                        let head = std::mem::take(&mut self.line);
                        self.head(&head);
                        self.feed(&rest);
                        return;
                    }
                    if self.line.len() > MAX_HEAD {
                        self.lose();
                    }
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
                        if self.line.len() > 4096 {
                            self.lose();
                        }
                        return;
                    };
                    self.line.extend_from_slice(&bytes[..=nl]);
                    bytes = &bytes[nl + 1..];
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

    fn lose(&mut self) {
        self.state = State::Lost;
        self.line = Vec::new();
    }

    /// A complete request head.
    fn head(&mut self, head: &[u8]) {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return self.lose(),
        }
        let mut length = None;
        let mut chunked = None;
        for h in request.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let parsed = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
                match (length, parsed) {
                    (None, Some(n)) => length = Some(n),
                    (Some(a), Some(b)) if a == b => {}
                    _ => return self.lose(),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
        }
        if length.is_some() && chunked.is_some() {
            self.flag.store(true, Ordering::Release);
        }
        self.state = match (chunked, length) {
            (Some(true), _) => State::ChunkSize,
            (Some(false), _) => State::Lost,
            (None, Some(n)) if n > 0 => State::Fixed(n),
            _ => State::Head,
        };
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
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        self.state = match size {
            Some(0) => State::Trailer,
            Some(n) => State::ChunkData(n),
            None => State::Lost,
        };
    }
}

/// Index just past the blank line ending a request head.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
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
        assert_eq!(track(&[b"garbage\r\n\r\n"]), (false, State::Lost));
    }
}
