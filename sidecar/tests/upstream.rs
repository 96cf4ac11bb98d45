//! The app connection: wxgate speaks HTTP/1.1 to the app itself, in the request's own task.
//! A scripted app on a raw socket answers with every framing RFC 9112 allows (and some it does
//! not), and the client, over one kept-alive connection, must get exactly the app's answers,
//! each on the app connection it should have used, never one answer mixed into another.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted app does with one request, given its head.
struct Answer {
    bytes: Vec<u8>,
    /// Read the request body first (by its Content-Length or chunked framing).
    read_body: bool,
    /// Close the connection this long after answering.
    close_after: Option<Duration>,
}

fn answer(bytes: &str) -> Answer {
    Answer {
        bytes: bytes.as_bytes().to_vec(),
        read_body: true,
        close_after: None,
    }
}

type Script = dyn Fn(&str) -> Answer + Send + Sync;

/// An app on a raw socket: counts connections, keeps every request as received.
struct RawApp {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RawApp {
    async fn start(script: impl Fn(&str) -> Answer + Send + Sync + 'static) -> RawApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let (c, r) = (Arc::clone(&connections), Arc::clone(&requests));
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(s, Arc::clone(&script), Arc::clone(&r)));
            }
        });
        RawApp {
            addr,
            connections,
            requests,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(mut s: TcpStream, script: Arc<Script>, requests: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_until(&mut s, &mut buf, b"\r\n\r\n").await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let a = script(&head);
        let mut request = head.clone();
        if a.read_body {
            let lower = head.to_ascii_lowercase();
            if let Some(len) = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
            {
                let len: usize = len.trim().parse().unwrap();
                while buf.len() < len {
                    let mut more = [0u8; 4096];
                    let n = s.read(&mut more).await.unwrap();
                    assert!(n > 0, "the sidecar closed mid-body");
                    buf.extend_from_slice(&more[..n]);
                }
                request.push_str(&String::from_utf8_lossy(&buf[..len]));
                buf.drain(..len);
            } else if lower.contains("transfer-encoding: chunked") {
                let end = read_until(&mut s, &mut buf, b"0\r\n\r\n").await.unwrap();
                request.push_str(&String::from_utf8_lossy(&buf[..end]));
                buf.drain(..end);
            }
        }
        requests.lock().unwrap().push(request);
        if s.write_all(&a.bytes).await.is_err() {
            return;
        }
        if let Some(after) = a.close_after {
            tokio::time::sleep(after).await;
            return;
        }
    }
}

/// Reads until `buf` holds `end`; the length up to and including it, or `None` at EOF.
async fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, end: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(end.len()).position(|w| w == end) {
            return Some(i + end.len());
        }
        let mut more = [0u8; 4096];
        match s.read(&mut more).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&more[..n]),
        }
    }
}

/// A sidecar in front of `app`, passing `/x` through (the binding covers `/login` only).
async fn sidecar(app: &RawApp) -> (wxgate_sidecar::run::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::default().apis("  apis: [ { path: /login, match: Exact } ]\n");
    std::fs::write(dir.path().join("wxgate.yaml"), manifests(&setup)).unwrap();
    let running = start_sidecar(
        dir.path(),
        &format!("http://{}", app.addr),
        "http://127.0.0.1:9",
        &[],
    )
    .await;
    for _ in 0..200 {
        if running.active.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (running, dir)
}

/// One kept-alive client connection.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_framing_of_an_answer_arrives_whole_over_one_app_connection() {
    let app = RawApp::start(|head| {
        let path = head.split(' ').nth(1).unwrap_or_default();
        answer(match path {
            "/x/length" => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "/x/chunked" => {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
            }
            "/x/empty-chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "/x/no-content" => "HTTP/1.1 204 No Content\r\n\r\n",
            "/x/not-modified" => "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
            "/x/early-hints" => {
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
            }
            "/x/same-lengths" => "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
            _ => "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
        })
    })
    .await;
    let (sc, _dir) = sidecar(&app).await;
    let http = client();
    let base = format!("http://{}", sc.traffic);
    for round in 0..3 {
        for (path, status, body) in [
            ("/x/length", 200, "hello"),
            ("/x/chunked", 200, "hello world"),
            ("/x/empty-chunked", 200, ""),
            ("/x/no-content", 204, ""),
            ("/x/not-modified", 304, ""),
            ("/x/early-hints", 201, "ok"),
            ("/x/same-lengths", 200, "abc"),
        ] {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), status, "{path} (round {round})");
            assert!(r.headers().get("x-trailer").is_none());
            assert_eq!(r.text().await.unwrap(), body, "{path} (round {round})");
        }
    }
    assert_eq!(app.connections(), 1, "one app connection for 21 requests");
    // A HEAD answer has a length but no body: the next answer is not taken for it.
    let r = http.head(format!("{base}/x/head")).send().await.unwrap();
    assert_eq!(r.headers()["content-length"], "10");
    assert_eq!(r.text().await.unwrap(), "");
    let r = http.get(format!("{base}/x/length")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "hello");
    assert_eq!(app.requests().len(), 23);
}

#[tokio::test]
async fn the_app_gets_the_request_as_sent_with_its_body_framed_again() {
    let app = RawApp::start(|_| answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")).await;
    let (sc, _dir) = sidecar(&app).await;
    let http = client();
    let base = format!("http://{}", sc.traffic);
    http.get(format!("{base}/x/a?b=1"))
        .header("x-app", "v")
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/x/post"))
        .body("0123456789")
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/x/empty")).send().await.unwrap();
    let pieces = ["ab", "", "cde"].map(|p| Ok::<_, std::io::Error>(Frame::data(Bytes::from(p))));
    let streamed = StreamBody::new(futures_util::stream::iter(pieces));
    let r = http
        .put(format!("{base}/x/stream"))
        .body(reqwest::Body::wrap(streamed))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = app.requests();
    assert!(
        seen[0].starts_with("GET /x/a?b=1 HTTP/1.1\r\n"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains("\r\nx-app: v\r\n"));
    assert!(seen[0].contains("\r\nx-forwarded-for: 127.0.0.1\r\n"));
    assert!(
        !seen[0].contains("content-length"),
        "a bodiless GET gets no length"
    );
    assert!(seen[1].starts_with("POST /x/post HTTP/1.1\r\n"));
    assert!(
        seen[1].ends_with("content-length: 10\r\n\r\n0123456789"),
        "{}",
        seen[1]
    );
    assert!(seen[2].contains("\r\ncontent-length: 0\r\n"), "{}", seen[2]);
    assert!(
        seen[3].contains("\r\ntransfer-encoding: chunked\r\n"),
        "{}",
        seen[3]
    );
    assert!(
        seen[3].ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
        "{}",
        seen[3]
    );
    assert_eq!(app.connections(), 1);
}

#[tokio::test]
async fn answers_the_sidecar_cannot_forward_are_502_and_never_reach_the_next_request() {
    let app = RawApp::start(|head| {
        let path = head.split(' ').nth(1).unwrap_or_default();
        answer(match path {
            "/x/garbage" => "HTTP/1.1 two hundred\r\n\r\n",
            "/x/gzip" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
            // An empty list element: hyper would read this until close, RFC 9110 as chunked.
            "/x/chunked-comma" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\nxx",
            "/x/lengths" => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "/x/switch" => "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            "/x/old-chunked" => "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "/x/bad-chunk" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            // More bytes than announced: the rest must not become the next answer.
            "/x/overlong" => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged",
            _ => "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal",
        })
    })
    .await;
    let (sc, _dir) = sidecar(&app).await;
    let http = client();
    let base = format!("http://{}", sc.traffic);
    for path in [
        "/x/garbage",
        "/x/gzip",
        "/x/chunked-comma",
        "/x/lengths",
        "/x/switch",
        "/x/old-chunked",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 502, "{path}");
        assert_eq!(
            r.headers()["x-wxgate-error"],
            "UPSTREAM_UNAVAILABLE",
            "{path}"
        );
        let r = http.get(format!("{base}/x/next")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "real", "after {path}");
    }
    // A broken chunk ends the client's answer as broken, not as a clean short body.
    let broken = http.get(format!("{base}/x/bad-chunk")).send().await;
    assert!(broken.is_err() || broken.unwrap().text().await.is_err());
    let r = http.get(format!("{base}/x/overlong")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = http.get(format!("{base}/x/next")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "real");
}

#[tokio::test]
async fn a_body_cut_short_or_read_to_close_ends_as_the_app_ended_it() {
    let app = RawApp::start(|head| {
        let path = head.split(' ').nth(1).unwrap_or_default();
        let mut a = answer(match path {
            "/x/short" => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
            "/x/to-close" => "HTTP/1.1 200 OK\r\n\r\nuntil the end",
            // Transfer-Encoding wins over Content-Length; the length is not passed on.
            "/x/both" => "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nboth\r\n0\r\n\r\n",
            _ => "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext",
        });
        if path != "/x/next" {
            a.close_after = Some(Duration::ZERO);
        }
        a
    })
    .await;
    let (sc, _dir) = sidecar(&app).await;
    let http = client();
    let base = format!("http://{}", sc.traffic);
    let r = http.get(format!("{base}/x/short")).send().await.unwrap();
    assert!(r.text().await.is_err(), "a truncated answer is an error");
    let r = http.get(format!("{base}/x/to-close")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "until the end");
    let r = http.get(format!("{base}/x/both")).send().await.unwrap();
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.text().await.unwrap(), "both");
    let r = http.get(format!("{base}/x/next")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "next");
    assert_eq!(app.connections(), 4, "no connection reused after a close");
}

#[tokio::test]
async fn a_kept_connection_the_app_closed_is_replaced_for_any_method() {
    let app = RawApp::start(|_| Answer {
        close_after: Some(Duration::from_millis(20)),
        ..answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    })
    .await;
    let (sc, _dir) = sidecar(&app).await;
    let http = client();
    let base = format!("http://{}", sc.traffic);
    for i in 0..3 {
        let r = http.get(format!("{base}/x/{i}")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let r = http
            .post(format!("{base}/x/post{i}"))
            .body("once")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "a POST on a connection the app had closed");
        assert_eq!(r.text().await.unwrap(), "ok");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let posts = app
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(posts, 3, "each POST reached the app once");
    assert_eq!(app.connections(), 6);
}

#[tokio::test]
async fn an_app_that_answers_before_reading_the_body_is_heard() {
    let app = RawApp::start(|_| Answer {
        read_body: false,
        close_after: Some(Duration::from_millis(50)),
        ..answer(
            "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig",
        )
    })
    .await;
    let (sc, _dir) = sidecar(&app).await;
    let http = client();
    let r = http
        .post(format!("http://{}/x/upload", sc.traffic))
        .body(vec![b'a'; 8 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.text().await.unwrap(), "big");
}
