//! What happens to every request: identity spoofing, hop-by-hop headers, smuggling, limits,
//! an app that is down or slow, no config.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use wxgate_sim::wechat;

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_app() {
    let env = Env::start(
        Setup::default().apis("  apis: [ { path: /login, match: Exact }, { path: /orders } ]\n"),
    )
    .await;
    let credential = env.login("alice_1").await;
    let real = wechat::openid(APPID, "alice");
    for spoof in [
        "X-WX-OPENID",
        "x-wx-openid",
        "X_WX_OPENID",
        "x_Wx_OpenId",
        "X-WX-SESSION-KEY",
        "x-wx-unionid",
        "X-WX-APPID",
        "x-wxgate-tag-bucket",
        "x_wxgate_tag_openid",
        "X_WXGATE_TAG_BUCKET",
        "x-wxgate_trace-id",
        "x_wxgate-error",
    ] {
        for path in ["/orders", "/public"] {
            let r = env
                .http
                .get(env.url(path))
                .header(spoof, "oVictim")
                .header("user_session", &credential)
                .header("connection", "keep-alive, X-WX-OPENID, X-WX-APPID")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let seen: serde_json::Value = r.json().await.unwrap();
            let text = seen["headers"].to_string();
            assert!(!text.contains("oVictim"), "{spoof} on {path}: {text}");
            if path == "/orders" {
                assert_eq!(
                    seen["headers"]["x-wx-openid"],
                    real.as_str(),
                    "the verified value survives Connection"
                );
                assert_eq!(seen["headers"]["x-wx-appid"], APPID);
            }
            assert!(seen["headers"].get("connection").is_none());
        }
    }
    // Raw bytes: two copies, one with an underscore; no credential on a bound route.
    let raw_req = "GET /orders HTTP/1.1\r\nHost: x\r\nX-WX-OpenId: oVictim\r\nx_wx_openid: oVictim\r\nConnection: close\r\n\r\n".to_string();
    let before = env.app.requests();
    let answer = raw(env.sidecar.traffic, raw_req.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(env.app.requests(), before);
}

#[tokio::test]
async fn wxgate_names_in_any_spelling_never_reach_the_app_from_the_query() {
    let env = Env::start(
        Setup::default().apis("  apis: [ { path: /login, match: Exact }, { path: /orders } ]\n"),
    )
    .await;
    let credential = env.login("carol_1").await;
    for name in [
        "x-wxgate-tag-openid",
        "x_wxgate_tag_openid",
        "X_WxGate_Tag_Bucket",
        "x%5Fwxgate%5Ftag%5Fopenid",
        "x_wx_openid",
    ] {
        for path in ["/orders", "/public"] {
            let r = env
                .http
                .get(env.url(&format!("{path}?keep=1&{name}=o-victim")))
                .header("user_session", &credential)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let seen: serde_json::Value = r.json().await.unwrap();
            let text = seen.to_string();
            assert!(!text.contains("o-victim"), "{name} on {path}: {text}");
            assert!(text.contains("keep=1"), "{name} on {path}: {text}");
        }
    }
}

#[tokio::test]
async fn identity_and_wxgate_headers_set_by_the_app_never_reach_the_client() {
    let env = Env::start(Setup::default()).await;
    let credential = env.login("bob_1").await;
    let r = env
        .http
        .get(env.url("/orders?respond_header=X-WX-SESSION-KEY:leak&respond_header=x-wxgate-error:FAKE&respond_header=x-app:ok"))
        .header("user_session", &credential)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-wx-session-key").is_none());
    assert!(r.headers().get("x-wxgate-error").is_none());
    assert_eq!(r.headers()["x-app"], "ok");
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_and_the_connection_closed() {
    let env = Env::start(Setup::default()).await;
    for req in [
        "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let before = env.app.requests();
        let answer = raw(env.sidecar.traffic, req.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("BAD_REQUEST"), "{answer}");
        assert_eq!(
            answer.matches("HTTP/1.1").count(),
            1,
            "one answer, then the connection closes: {answer}"
        );
        assert_eq!(
            env.app.requests(),
            before,
            "neither request reaches the app"
        );
    }
}

#[tokio::test]
async fn the_framing_guard_follows_every_head_hyper_accepts() {
    // Whatever line ends and bodies come first on a connection, a later request carrying both
    // Content-Length and Transfer-Encoding is refused, and neither it nor what it smuggles
    // reaches the app.
    let env = Env::start(Setup::default()).await;
    let smuggle = |order: usize| {
        let (a, b) = ("Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n");
        let (a, b) = if order == 0 { (a, b) } else { (b, a) };
        format!(
            "POST /both HTTP/1.1\r\nHost: x\r\n{a}{b}\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    };
    let firsts = [
        "GET /a HTTP/1.1\nHost: x\n\n",
        "GET /a HTTP/1.1\r\nHost: x\n\r\n",
        "\r\nGET /a HTTP/1.1\nHost: x\r\n\n",
        "POST /a HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc",
        "POST /a HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n0\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a2 HTTP/1.1\nHost: x\n\n",
    ];
    for first in firsts {
        for order in 0..2 {
            let req = format!("{first}{}", smuggle(order));
            let answer = raw(env.sidecar.traffic, req.as_bytes()).await;
            assert!(answer.contains("HTTP/1.1 400"), "{req:?}: {answer}");
            assert!(answer.contains("BAD_REQUEST"), "{req:?}: {answer}");
            for path in ["/both", "/smuggled"] {
                assert!(
                    !answer.contains(path),
                    "{path} reached the app: {req:?}: {answer}"
                );
            }
            let after_400 = &answer[answer.find("HTTP/1.1 400").unwrap() + 1..];
            assert!(
                !after_400.contains("HTTP/1.1"),
                "closed after the 400: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn oversized_headers_and_bodies_are_refused() {
    let env = Env::start(
        Setup::default()
            .arg("--max-body-bytes", "1000")
            .arg("--max-login-body-bytes", "100")
            .login("    code: { in: body }\n    login: { paths: [/login] }\n"),
    )
    .await;
    let big = "v".repeat(40_000);
    let r = env
        .http
        .get(env.url("/public"))
        .header("x-big", &big)
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(
            e.is_request() || e.is_connect() || e.to_string().contains("closed"),
            "{e}"
        ),
    }
    let r = env
        .http
        .post(env.url("/public"))
        .body("x".repeat(2000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Chunked, so no length to check up front: cut off at the limit, still 413 (on a route
    // without a binding, so the body is streamed to the app).
    let open = Env::start(
        Setup::default()
            .arg("--max-body-bytes", "1000")
            .apis("  apis: [ { path: /orders, match: Prefix } ]\n"),
    )
    .await;
    let chunks = format!("{:x}\r\n{}\r\n", 1500, "x".repeat(1500));
    let answer = raw(
        open.sidecar.traffic,
        format!("POST /public HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}0\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let r = env
        .http
        .post(env.url("/login"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"js_code":"a_1","pad":"{}"}}"#,
            "x".repeat(200)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(env.sim.total(), 0);
}

#[tokio::test]
async fn app_down_is_502_and_app_slow_is_504() {
    let env = Env::start(Setup::default().arg("--upstream-timeout-ms", "300")).await;
    let credential = env.login("carol_1").await;
    let (status, body, _) = env.get_with("/slow/2000", &credential).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (504, Some("UPSTREAM_TIMEOUT"))
    );
    assert_eq!(body["retryable"], true);

    let dir = env.dir.path();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = start_sidecar(dir, &format!("http://{closed}"), "http://127.0.0.1:9", &[]).await;
    for _ in 0..100 {
        if down.active.is_ready() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let r = env
        .http
        .get(format!("http://{}/orders", down.traffic))
        .header("user_session", &credential)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["x-wxgate-error"], "UPSTREAM_UNAVAILABLE");
}

#[tokio::test]
async fn without_a_valid_config_every_route_is_503_and_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "apiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: b }\nspec: { pluginRef: { name: missing }, targetRef: { name: shop-api } }\n").unwrap();
    let app = wxgate_sim::app::EchoApp::default();
    let app_addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), app.router())
        .await
        .unwrap();
    let sidecar = start_sidecar(
        dir.path(),
        &format!("http://{app_addr}"),
        "http://127.0.0.1:9",
        &[],
    )
    .await;
    let http = reqwest::Client::new();
    for path in ["/", "/orders", "/login"] {
        let r = http
            .get(format!("http://{}{path}", sidecar.traffic))
            .header("X-WX-OPENID", "oVictim")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["x-wxgate-error"], "NOT_READY");
    }
    assert_eq!(app.requests(), 0);
    let ready = http
        .get(format!("http://{}/ready", sidecar.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let health = http
        .get(format!("http://{}/healthz", sidecar.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = metrics_at(&http, sidecar.admin).await;
    assert!(
        metrics.contains("wxgate_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn admin_endpoints_live_on_the_admin_port_only() {
    let env = Env::start(Setup::default()).await;
    let credential = env.login("dave_1").await;
    env.get_with("/orders", &credential).await;
    env.get_with("/orders", "bad").await;
    let metrics = env.metrics().await;
    for needle in [
        "wxgate_requests_total{route=\"login\",outcome=\"forwarded\",code=\"\"} 1",
        "wxgate_requests_total{route=\"verify\",outcome=\"answered\",code=\"LOGIN_INVALID\"} 1",
        "wxgate_credential_verifications_total{outcome=\"ok\"} 1",
        "wxgate_credential_verifications_total{outcome=\"invalid\"} 1",
        "wxgate_code2session_calls_total{errcode=\"0\"} 1",
        "wxgate_code2session_duration_seconds_count 1",
        "wxgate_config_info{version=",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    let ready = env
        .http
        .get(format!("{}/ready", env.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // On the traffic port these are ordinary, bound routes.
    for path in ["/metrics", "/ready", "/healthz"] {
        let r = env
            .http
            .get(env.url(path))
            .header("user-agent", "kube-probe/1.30")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start(Setup::default().arg("--header-read-timeout-ms", "300")).await;
    let mut s = tokio::net::TcpStream::connect(env.sidecar.traffic)
        .await
        .unwrap();
    s.write_all(b"GET /orders HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let closed =
        tokio::time::timeout(std::time::Duration::from_secs(3), s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the connection was not closed");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(env.app.requests(), 0);
}

#[tokio::test]
async fn a_client_that_shuts_down_its_side_after_the_request_still_gets_the_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start(Setup::default()).await;
    let credential = env.login("fay_1").await;
    let mut s = tokio::net::TcpStream::connect(env.sidecar.traffic)
        .await
        .unwrap();
    let request =
        format!("GET /slow/300 HTTP/1.1\r\nHost: x\r\nuser_session: {credential}\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    s.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        s.read_to_end(&mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"x-wx-openid\""), "{answer}");
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_unambiguous_variants_are_served_once() {
    // An unbound route: whatever the sidecar accepts reaches the app.
    let env =
        Env::start(Setup::default().apis("  apis: [ { path: /orders, match: Prefix } ]\n")).await;
    let end = "GET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let post = |headers: &str, body: &str| {
        format!("POST /p HTTP/1.1\r\nHost: x\r\n{headers}\r\n{body}{end}")
    };
    let refused = [
        post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
        post("Content-Length: 5, 6\r\n", "hello!"),
        post("Content-Length: +5\r\n", "hello"),
        post("Content-Length: -1\r\n", ""),
        post("Content-Length: 0x5\r\n", "hello"),
        post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"),
        post("Transfer-Encoding: identity\r\n", ""),
        post("Transfer-Encoding : chunked\r\n", "0\r\n\r\n"),
        post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"),
        post(
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\n",
        ),
        post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
        post("Transfer-Encoding: chunked,\r\n", "0\r\n\r\n"),
        post("Transfer-Encoding: , chunked\r\n", "0\r\n\r\n"),
        format!("POST /p HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: a b\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: user@evil.example\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: u:p@x\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: x:abc\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: x:99999\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: x\r\nConnection: host\r\n\r\n{end}"),
        format!("GET /p HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, HOST\r\n\r\n{end}"),
        post(
            "Content-Length: 5\r\nConnection: content-length\r\n",
            "hello",
        ),
        post(
            "Content-Length: 5\r\nConnection: x\r\nConnection: Content-Length\r\n",
            "hello",
        ),
    ];
    for req in &refused {
        let before = env.app.requests();
        let answer = raw(env.sidecar.traffic, req.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{req:?}: {answer}");
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{req:?}: closed after one answer"
        );
        assert_eq!(env.app.requests(), before, "{req:?} reached the app");
    }
    // Unambiguous however unusual: each request reaches the app once, re-framed by the sidecar.
    let served = [
        post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
        post(
            "Transfer-Encoding: chunked\r\n",
            "5;ext=1\r\nhello\r\n0\r\n\r\n",
        ),
        format!("GET /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello{end}"),
        format!("GET /p HTTP/1.1\nHost: x\n\n{end}"),
        "GET /p HTTP/1.0\r\n\r\n".to_owned(),
        format!(
            "GET /p HTTP/1.1\r\nHost: x:8080\r\nConnection: keep-alive, x-a\r\nX-A: 1\r\n\r\n{end}"
        ),
        format!("GET /p HTTP/1.1\r\nHost: [::1]:80\r\n\r\n{end}"),
    ];
    for req in &served {
        let before = env.app.requests();
        let answer = raw(env.sidecar.traffic, req.as_bytes()).await;
        let expected = req.matches(" HTTP/1.").count();
        assert_eq!(
            answer.matches(" 200 OK\r\n").count(),
            expected,
            "{req:?}: {answer}"
        );
        assert_eq!(env.app.requests() - before, expected as u32, "{req:?}");
    }
    // A chunk size past 64 bits: the body fails mid-stream, 400, the connection closes, the app
    // sees no complete request.
    let before = env.app.requests();
    let answer = raw(
        env.sidecar.traffic,
        post(
            "Transfer-Encoding: chunked\r\n",
            "FFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n",
        )
        .as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert_eq!(env.app.requests(), before);
}

#[tokio::test]
async fn forwarded_uri_headers_never_change_the_route() {
    let env = Env::start(Setup::default()).await;
    for header in [
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-uri",
        "x-forwarded-path",
    ] {
        let r = env
            .http
            .get(env.url("/orders"))
            .header(header, "/login")
            .header("js_code", "zed_1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
        assert_eq!(r.headers()["x-wxgate-error"], "LOGIN_REQUIRED", "{header}");
    }
    assert_eq!(env.sim.total(), 0, "no login happened");
    assert_eq!(env.app.requests(), 0);
}

#[tokio::test]
async fn many_headers_and_unread_bodies_cost_nothing_to_refuse() {
    let env = Env::start(Setup::default()).await;
    // 1 000 small headers, and a 16 KB cookie with 20 KB more: refused, the app untouched.
    let many: String = (0..1000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cookie = format!(
        "Cookie: c={}\r\nX-Pad: {}\r\n",
        "c".repeat(16_384),
        "p".repeat(20_000)
    );
    for headers in [many, cookie] {
        let answer = raw(
            env.sidecar.traffic,
            format!("GET /public HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }
    // A large body on a bound route without a credential: answered 401 from the head alone.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(env.sidecar.traffic)
        .await
        .unwrap();
    s.write_all(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[b'x'; 1024]).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(std::time::Duration::from_secs(2), s.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 401");
    assert_eq!(env.app.requests(), 0);
}

#[tokio::test]
async fn the_client_address_is_appended_to_x_forwarded_for() {
    let env = Env::start(Setup::default()).await;
    let credential = env.login("xff_1").await;
    let seen = |prev: Option<&'static str>| {
        let (env, credential) = (&env, credential.clone());
        async move {
            let mut req = env
                .http
                .get(env.url("/orders"))
                .header("user_session", credential);
            if let Some(p) = prev {
                req = req.header("x-forwarded-for", p);
            }
            let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            body["headers"]["x-forwarded-for"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // The same kept-alive connection each time: the address is written once per connection.
    assert_eq!(seen(None).await, "127.0.0.1");
    assert_eq!(seen(Some("203.0.113.7")).await, "203.0.113.7, 127.0.0.1");
    assert_eq!(seen(None).await, "127.0.0.1");
    assert_eq!(
        seen(Some("203.0.113.7, 198.51.100.2")).await,
        "203.0.113.7, 198.51.100.2, 127.0.0.1"
    );
}
