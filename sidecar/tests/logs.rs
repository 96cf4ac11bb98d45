//! Secrets never reach the logs: a run of logins, verifications and failures with every log
//! line captured at TRACE, then searched for the APPSECRET, every code, every session_key,
//! every credential, every access_token and every phone number.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::*;
use wxgate_sim::wechat;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let env = Env::start(
        Setup::default()
            .arg("--wechat-timeout-ms", "200")
            .login("    login: { paths: [/login] }\n    session: { embedSessionKey: true }\n    phone: { paths: [/bind-phone] }\n"),
    )
    .await;
    let mut codes = vec!["alice_1".to_owned(), "bob_1".to_owned()];
    let mut credentials = Vec::new();
    for code in &codes {
        credentials.push(env.login(code).await);
    }
    for code in [
        "err40029-CANARYCODE1",
        "err40125-CANARYCODE2",
        "errm1-CANARYCODE3",
        "delay500-CANARYCODE4",
        "garbage-CANARYCODE5",
    ] {
        let r = env
            .http
            .post(env.url("/login"))
            .header("js_code", code)
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 200);
        codes.push(code.to_owned());
    }
    let mut tokens = Vec::new();
    let phone_codes = [
        "alice_p1",
        "err40029-CANARYPHONE1",
        "errm1-CANARYPHONE2",
        "alice_p2",
    ];
    for (i, code) in phone_codes.iter().enumerate() {
        if i == 3 {
            // Another caller forces a new token: the sidecar meets 40001 and replaces its own.
            tokens.extend(env.sim.tokens_of(APPID));
            let body = serde_json::json!({"grant_type": "client_credential", "appid": APPID, "secret": APPSECRET, "force_refresh": true});
            let forced = env
                .http
                .post(format!("http://{}/cgi-bin/stable_token", env.sim_addr))
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(forced.status(), 200);
        }
        env.http
            .post(env.url("/bind-phone"))
            .header("user_session", &credentials[0])
            .header("phone_code", *code)
            .send()
            .await
            .unwrap();
        codes.push((*code).to_owned());
    }
    tokens.extend(env.sim.tokens_of(APPID));
    assert_eq!(env.sim.phone_calls(), (5, 2), "the 40001 path was taken");
    for c in &credentials {
        assert_eq!(env.get_with("/orders?q=1", c).await.0, 200);
        let mut tampered = c.clone();
        tampered.push('A');
        assert_eq!(env.get_with("/orders", &tampered).await.0, 401);
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("wxgate::access"),
        "access log lines were captured"
    );
    assert!(logs.contains("openid_hash"), "openids are logged hashed");
    let mut secrets: Vec<String> = vec![APPSECRET.to_owned()];
    secrets.extend(codes.iter().cloned());
    secrets.extend(codes.iter().map(|c| wechat::session_key(APPID, c)));
    secrets.extend(credentials.iter().cloned());
    secrets.extend(credentials.iter().map(|c| c[3..40].to_owned()));
    secrets.extend(["alice", "bob"].map(|u| wechat::openid(APPID, u)));
    secrets.extend(["alice_p1", "alice_p2"].map(wechat::phone_number));
    assert!(tokens.len() >= 2);
    secrets.extend(tokens);
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret} appears in the logs"
        );
    }
}

#[tokio::test]
async fn the_binary_writes_its_access_log_whatever_the_log_level_and_flushes_on_sigterm() {
    let app = wxgate_sim::app::EchoApp::default();
    let app_addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), app.router())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for (access_log, expected) in [("true", 5), ("false", 0)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wxgate.yaml"), manifests(&Setup::default())).unwrap();
        let bin = Binary::start(
            dir.path(),
            &format!("http://{app_addr}"),
            "http://127.0.0.1:1",
            &[("WXGATE_LOG", "warn")],
            &["--access-log", access_log],
        )
        .await;
        for _ in 0..5 {
            let r = http
                .get(format!("http://{}/orders?user_session=CANARY", bin.traffic))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
        let out = bin.stop();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|l: &serde_json::Value| l["target"] == "wxgate::access")
            .collect();
        assert_eq!(lines.len(), expected, "--access-log {access_log}:\n{out}");
        for line in &lines {
            assert_eq!(
                (line["path"].as_str(), line["status"].as_u64()),
                (Some("/orders"), Some(401))
            );
        }
        assert!(!out.contains("CANARY"), "the query is never logged");
    }
}
