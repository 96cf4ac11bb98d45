//! The header read timeout and the app's response timeout are timers kept per connection and
//! moved for each request: on one kept-alive connection each request gets the whole time again,
//! a request slower than the header read timeout is never cut off by it, and a connection idle
//! past it is closed.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::net::TcpStream;

#[tokio::test]
async fn each_request_on_a_kept_alive_connection_gets_the_whole_header_read_timeout() {
    let env = Env::start(Setup::default().arg("--header-read-timeout-ms", "400")).await;
    let credential = env.login("dana_1").await;
    let before = env.app.requests();
    let mut s = TcpStream::connect(env.sidecar.traffic).await.unwrap();
    let started = Instant::now();
    // Five requests 250 ms apart: 1.25 s on one connection, each within 400 ms of the last.
    for _ in 0..5 {
        let head = exchange(&mut s, "/orders", &credential).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(started.elapsed() > Duration::from_millis(1200));
    // An app slower than the header read timeout: the request in flight is not cut off.
    let head = exchange(&mut s, "/slow/900", &credential).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    // Idle after that answer: closed once the timeout passes, not before.
    let idle = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_millis(1400),
        "{waited:?}"
    );
    assert_eq!(env.app.requests() - before, 6);
}

#[tokio::test]
async fn each_request_on_a_kept_app_connection_gets_the_whole_response_timeout() {
    let env = Env::start(Setup::default().arg("--upstream-timeout-ms", "500")).await;
    let credential = env.login("erin_1").await;
    let mut s = TcpStream::connect(env.sidecar.traffic).await.unwrap();
    // Three answers of 300 ms over one app connection: 900 ms, each within its own 500 ms.
    for _ in 0..3 {
        let head = exchange(&mut s, "/slow/300", &credential).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
    }
    let started = Instant::now();
    let head = exchange(&mut s, "/slow/1500", &credential).await;
    assert!(head.starts_with("http/1.1 504"), "{head}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1400),
        "{took:?}"
    );
}
