//! Differential: the app's answer as the sidecar reads it (`proxy::upstream::read_whole`)
//! against hyper's own HTTP/1.1 client reading the same bytes after a GET or a HEAD. Whenever
//! both read a whole answer they must agree on its status and body, so the sidecar never hands
//! a client other bytes than the app meant, nor takes bytes of one answer for another. Where
//! only one of them refuses, they differ in strictness, which is allowed (the sidecar then
//! answers 502). The body is never longer than what the app sent.
#![no_main]

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wxgate_fuzz::{RUNTIME, mode};
use wxgate_sidecar::proxy::upstream::read_whole;

fuzz_target!(|data: &[u8]| {
    let Some((m, answer)) = mode(data) else {
        return;
    };
    let method = if m % 2 == 1 {
        Method::HEAD
    } else {
        Method::GET
    };
    let ours = read_whole(answer, method == Method::HEAD);
    if let Some((_, body)) = &ours {
        assert!(body.len() <= answer.len());
    }
    let theirs = RUNTIME.block_on(hyper_reads(answer, method));
    if let (Some((response, body)), Some((status, expected))) = (ours, theirs) {
        assert_eq!(response.status(), status, "status");
        assert_eq!(body, expected, "body");
    }
});

/// What hyper's client reads: the app takes the request head, answers with `answer` and closes.
async fn hyper_reads(answer: &[u8], method: Method) -> Option<(StatusCode, Vec<u8>)> {
    let (client, mut app) = tokio::io::duplex(64 * 1024);
    let (mut send, conn) = http1::handshake(TokioIo::new(client)).await.ok()?;
    let serve = async move {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if app.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let _ = app.write_all(answer).await;
        let _ = app.shutdown().await;
        let mut rest = Vec::new();
        let _ = app.read_to_end(&mut rest).await;
    };
    let request = Request::builder()
        .method(method)
        .uri("/")
        .header("host", "app")
        .body(Empty::<Bytes>::new())
        .ok()?;
    let exchange = async move {
        let response = send.send_request(request).await.ok()?;
        let status = response.status();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, body.to_vec()))
    };
    let (read, _, _) = tokio::join!(exchange, conn, serve);
    read
}
