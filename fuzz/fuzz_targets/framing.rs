//! Differential: the smuggling guard against hyper itself. The bytes a client sends go through
//! the guard into hyper's HTTP/1.1 server, configured as the traffic port is. Every request
//! hyper dispatches while the guard's flag is down must be the head the guard found at that
//! position (method and target): a guard that loses track of the framing must raise the flag
//! (and the request is refused, as the sidecar does), never follow other requests than hyper.
#![no_main]

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wxgate_fuzz::RUNTIME;
use wxgate_sidecar::proxy::framing::{Sniffed, Tracker};

fuzz_target!(|data: &[u8]| {
    RUNTIME.block_on(exchange(data));
});

async fn exchange(data: &[u8]) {
    let (client, server) = tokio::io::duplex(16 * 1024);
    let flag = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let io = Sniffed::new(
        server,
        Tracker::recording(Arc::clone(&flag), Arc::clone(&seen)),
    );
    let dispatched = Arc::new(AtomicUsize::new(0));
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let (flag, seen, dispatched) = (
            Arc::clone(&flag),
            Arc::clone(&seen),
            Arc::clone(&dispatched),
        );
        async move {
            let i = dispatched.fetch_add(1, Ordering::Relaxed);
            if flag.swap(false, Ordering::AcqRel) {
                let mut refused = Response::new(Empty::<Bytes>::new());
                *refused.status_mut() = StatusCode::BAD_REQUEST;
                refused.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                return Ok::<_, Infallible>(refused);
            }
            let head = seen.lock().expect("not poisoned").get(i).cloned();
            let head = head.unwrap_or_else(|| {
                panic!("hyper dispatched request {i}, the guard saw no head for it")
            });
            let (method, target) = head.split_once(' ').expect("METHOD target");
            assert_eq!(
                method,
                req.method().as_str(),
                "request {i}: the guard and hyper disagree on the method"
            );
            assert_eq!(
                Uri::try_from(target).ok().as_ref(),
                Some(req.uri()),
                "request {i}: the guard and hyper disagree on the target"
            );
            let _ = req.into_body().collect().await;
            Ok(Response::new(Empty::<Bytes>::new()))
        }
    });
    let mut http = http1::Builder::new();
    http.max_buf_size(32 * 1024).keep_alive(true);
    let conn = http.serve_connection(TokioIo::new(io), service);
    // The client writes and reads at once, as a pipelining client does (answers to many small
    // requests fill the pipe before all requests are written).
    let (mut answers, mut requests) = tokio::io::split(client);
    let send = async move {
        let _ = requests.write_all(data).await;
        let _ = requests.shutdown().await;
    };
    let receive = async move {
        let mut sink = Vec::new();
        let _ = answers.read_to_end(&mut sink).await;
    };
    let (_, (), ()) = tokio::join!(conn, send, receive);
}
