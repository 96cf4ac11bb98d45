//! Stopping without losing a request: after shutdown starts the sidecar accepts no new
//! connection, answers the next request of a kept-alive connection with `Connection: close`
//! (so a busy client moves on between requests), closes a connection idle for
//! `--drain-idle-ms`, and lets an open request finish.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn draining_closes_kept_alive_connections_between_requests_never_during_one() {
    let env = Env::start(Setup::default().arg("--drain-idle-ms", "500")).await;
    let credential = env.login("drain_1").await;
    let addr = env.sidecar.traffic;
    let mut busy = TcpStream::connect(addr).await.unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    for s in [&mut busy, &mut idle] {
        let head = exchange(s, "/orders/1", &credential).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
    }
    // A request the app answers after 1.5 s, open when shutdown starts.
    let req =
        format!("GET /slow/1500 HTTP/1.1\r\nHost: shop\r\nuser_session: {credential}\r\n\r\n");
    slow.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let Env { sidecar, .. } = env;
    let stopped = tokio::spawn(sidecar.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted while draining"
    );
    // The busy connection's next request is answered, with Connection: close, then closed.
    let head = exchange(&mut busy, "/orders/3", &credential).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(closed_within(&mut busy, Duration::from_secs(1)).await);
    // The idle one is closed once idle for --drain-idle-ms, without an answer.
    assert!(closed_within(&mut idle, Duration::from_secs(2)).await);
    assert!(started.elapsed() >= Duration::from_millis(500));
    // The open request finishes, and the sidecar stops once it has.
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1300));
}
