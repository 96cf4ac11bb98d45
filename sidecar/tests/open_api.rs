//! The open-API port against the WeChat simulator over loopback: the AppID's token added and
//! cached, a token WeChat rejects replaced and the call made once more, long answers streamed,
//! the AppID chosen by header, limits, and nothing of it reachable from the traffic port.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use wxgate_sim::wechat;

const OPEN: &str = "    login: { paths: [/login] }\n    openApi: true\n";

async fn open_env(login: &str, extra: &str) -> (Env, String) {
    let env = Env::start(
        Setup::default()
            .login(login)
            .extra(extra)
            .arg("--open-api-listen", "127.0.0.1:0")
            .arg("--open-api-max-body-bytes", "4096"),
    )
    .await;
    let base = format!("http://{}", env.sidecar.open_api.unwrap());
    (env, base)
}

#[tokio::test]
async fn the_token_is_added_once_for_a_thousand_calls_and_the_apps_own_dropped() {
    let (env, open) = open_env(OPEN, "").await;
    for i in 0..1000 {
        let r = env
            .http
            .get(format!(
                "{open}/cgi-bin/getcallbackip?access_token=app-own&n={i}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["ip_list"].is_array(), "{body}");
    }
    assert_eq!(env.sim.stable_token_calls(), (1, 0));
    let calls = env.sim.open_api_calls();
    assert_eq!(calls.len(), 1000);
    assert!(calls.iter().all(|c| c.appid.as_deref() == Ok(APPID)));
    assert_eq!(calls[7].query, [("n".to_owned(), "7".to_owned())]);
    let metrics = env.metrics().await;
    assert!(
        metrics.contains(
            "wxgate_wechat_api_calls_total{api=\"/cgi-bin/getcallbackip\",errcode=\"0\"} 1000"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_rejected_token_is_replaced_and_the_call_made_once_more_with_its_body() {
    let (env, open) = open_env(OPEN, "").await;
    let check = |text: &str| {
        env.http
            .post(format!("{open}/wxa/msg_sec_check"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"content": text}).to_string())
            .send()
    };
    assert_eq!(check("first").await.unwrap().status(), 200);
    let forced = env
        .http
        .post(format!("http://{}/cgi-bin/stable_token", env.sim_addr))
        .body(serde_json::json!({"grant_type": "client_credential", "appid": APPID, "secret": APPSECRET, "force_refresh": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 200);
    let r = check("second").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["errcode"], 0);
    let calls = env.sim.open_api_calls();
    let outcomes: Vec<_> = calls.iter().map(|c| c.appid.clone()).collect();
    assert_eq!(outcomes, [Ok(APPID.into()), Err(40001), Ok(APPID.into())]);
    assert_eq!(calls[1].body, calls[2].body, "the same body, sent again");
    assert_eq!(
        String::from_utf8(calls[2].body.clone()).unwrap(),
        r#"{"content":"second"}"#
    );
    assert_eq!(
        env.sim.stable_token_calls(),
        (3, 1),
        "no forced refresh by the sidecar"
    );
}

#[tokio::test]
async fn a_token_wechat_revoked_but_still_hands_out_is_forced_once_and_the_call_succeeds() {
    let (env, open) = open_env(OPEN, "").await;
    let get = || env.http.get(format!("{open}/cgi-bin/getcallbackip")).send();
    assert_eq!(get().await.unwrap().status(), 200);
    env.sim.revoke_token(APPID);
    let r = get().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<serde_json::Value>().await.unwrap()["ip_list"].is_array());
    let outcomes: Vec<_> = env
        .sim
        .open_api_calls()
        .into_iter()
        .map(|c| c.appid)
        .collect();
    assert_eq!(outcomes, [Ok(APPID.into()), Err(40001), Ok(APPID.into())]);
    assert_eq!(
        env.sim.stable_token_calls(),
        (3, 1),
        "a normal call gave the revoked token back, so one forced refresh"
    );
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("wxgate_access_token_forced_refreshes_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "wxgate_access_token_force_budget{{appid=\"{APPID}\"}} 19"
    )));
}

#[tokio::test]
async fn a_long_answer_is_streamed_back_whole() {
    let (env, open) = open_env(OPEN, "").await;
    let r = env
        .http
        .post(format!("{open}/wxa/getwxacodeunlimit"))
        .header("content-type", "application/json")
        .body(r#"{"scene":"a=1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().to_vec(), wechat::image());
}

#[tokio::test]
async fn the_appid_is_chosen_by_header_and_only_plugins_with_open_api_are_served() {
    let (env, open) = open_env(OPEN, &second_plugin("    openApi: true\n")).await;
    let get = |appid: Option<&str>| {
        let mut r = env.http.get(format!("{open}/cgi-bin/getcallbackip"));
        if let Some(a) = appid {
            r = r.header("x-wx-appid", a);
        }
        r.send()
    };
    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 400, "two AppIDs: one must be named");
    assert_eq!(r.headers()["x-wxgate-error"], "OPEN_API_APPID_UNKNOWN");
    assert_eq!(get(Some(APPID_B)).await.unwrap().status(), 200);
    assert_eq!(get(Some(APPID)).await.unwrap().status(), 200);
    assert_eq!(get(Some("wx00000000000000cc")).await.unwrap().status(), 400);
    let owners: Vec<_> = env
        .sim
        .open_api_calls()
        .into_iter()
        .map(|c| c.appid)
        .collect();
    assert_eq!(owners, [Ok(APPID_B.to_owned()), Ok(APPID.to_owned())]);

    let (env, open) = open_env("    login: { paths: [/login] }\n", "").await;
    let r = env
        .http
        .get(format!("{open}/cgi-bin/getcallbackip"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-wxgate-error"],
        "OPEN_API_APPID_UNKNOWN",
        "no plugin asks for it"
    );
    assert_eq!(env.sim.stable_token_calls(), (0, 0));
}

#[tokio::test]
async fn limits_bad_paths_and_the_traffic_port() {
    let (env, open) = open_env(OPEN, "").await;
    let r = env
        .http
        .post(format!("{open}/wxa/msg_sec_check"))
        .body("x".repeat(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    for path in ["/cgi-bin/../sns/jscode2session", "/", "/a%2Fb", "/a//b"] {
        // Raw, as an HTTP client would otherwise resolve the dots itself.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(env.sidecar.open_api.unwrap())
            .await
            .unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
    // The traffic port knows nothing of it: the request is the app's (here refused for want of
    // a login), and WeChat sees nothing.
    let r = env
        .http
        .get(env.url("/cgi-bin/getcallbackip"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-wxgate-error"], "LOGIN_REQUIRED");
    let credential = env.login("frank_1").await;
    let (status, seen, _) = env.get_with("/cgi-bin/getcallbackip", &credential).await;
    assert_eq!(status, 200);
    assert_eq!(
        seen["path"], "/cgi-bin/getcallbackip",
        "the echo app answered"
    );
    assert!(env.sim.open_api_calls().is_empty());
    assert_eq!(env.sim.stable_token_calls(), (0, 0));
}

#[tokio::test]
async fn the_open_api_port_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wxgate.yaml"), manifests(&Setup::default())).unwrap();
    let args = <wxgate_sidecar::args::Args as clap::Parser>::parse_from([
        "wxgate-sidecar",
        "--manifests",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--open-api-listen",
        "0.0.0.0:0",
    ]);
    let error = wxgate_sidecar::run::start(args).await.err().unwrap();
    assert!(error.to_string().contains("loopback"), "{error}");
}
