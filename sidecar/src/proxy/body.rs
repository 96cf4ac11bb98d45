//! Body types and the bounded reads the sidecar needs.

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;

use super::upstream::{AppBody, UpBody};

/// Body of a response to the client: the app's stream, or a body the sidecar made.
pub type RespBody = Either<AppBody, Full<Bytes>>;

/// The client's body, streamed upstream, cut off beyond `max` bytes.
pub fn stream_up(body: Incoming, max: u64) -> UpBody {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    Either::Left(Limited::new(body, max))
}

/// A body the sidecar rewrote.
pub fn full_up(bytes: Bytes) -> UpBody {
    Either::Right(Full::new(bytes))
}

/// Reads a whole body of at most `max` bytes; `None` when larger or broken.
pub async fn read_bounded<B>(body: B, max: usize) -> Option<Bytes>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Limited::new(body, max)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
}
