//! The login flow against the WeChat simulator and the echo app, over real sockets.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use wxgate_sim::wechat;

#[tokio::test]
async fn login_round_trip_then_a_business_call() {
    let env = Env::start(Setup::default()).await;
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", "alice_1")
        .header("x-other", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let credential = r.headers()["user_session"].to_str().unwrap().to_owned();
    assert!(credential.starts_with("v1."));
    assert!(r.headers().get("x-wx-session-key").is_none());
    let seen: serde_json::Value = r.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-wx-openid"], wechat::openid(APPID, "alice_1"));
    assert_eq!(h["x-wx-unionid"], wechat::unionid(APPID, "alice_1"));
    assert_eq!(h["x-wx-appid"], APPID);
    assert_eq!(h["x-wx-session-key"], wechat::session_key(APPID, "alice_1"));
    assert_eq!(h["x-other"], "kept");
    assert!(
        h.get("js_code").is_none(),
        "the code is removed before forwarding"
    );

    let (status, seen, _) = env.get_with("/orders/7?x=1", &credential).await;
    assert_eq!(status, 200);
    let h = &seen["headers"];
    assert_eq!(
        h["x-wx-openid"],
        wechat::openid(APPID, "alice_2"),
        "same user, same openid"
    );
    assert_eq!(h["x-wx-appid"], APPID);
    assert!(
        h.get("x-wx-session-key").is_none(),
        "session_key only on login without embedSessionKey"
    );
    assert!(
        h.get("user_session").is_none(),
        "the app never sees the credential"
    );
    assert_eq!(seen["path"], "/orders/7");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(env.sim.calls("alice_1"), 1);
}

#[tokio::test]
async fn code_in_query_cookie_json_and_form_bodies() {
    for (location, request) in [("query", 0), ("cookie", 1), ("body", 2), ("body", 3)] {
        let env = Env::start(Setup::default().login(&format!(
            "    code: {{ in: {location}, name: js_code }}\n    login: {{ paths: [/login] }}\n"
        )))
        .await;
        let code = format!("loc{request}_x");
        let b = env.http.post(env.url("/login?keep=1"));
        let b = match request {
            0 => b.query(&[("js_code", &code)]),
            1 => b.header("cookie", format!("a=1; js_code={code}; b=2")),
            2 => b
                .header("content-type", "application/json")
                .body(format!(r#"{{"js_code":"{code}","nick":"n"}}"#)),
            _ => b
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("nick=n&js_code={code}")),
        };
        let r = b.send().await.unwrap();
        assert_eq!(r.status(), 200, "{location} {request}");
        assert!(r.headers().contains_key("user_session"));
        let seen: serde_json::Value = r.json().await.unwrap();
        assert_eq!(seen["headers"]["x-wx-openid"], wechat::openid(APPID, &code));
        let echoed = seen.to_string();
        assert!(
            !echoed.contains(&code),
            "code forwarded in {location}: {echoed}"
        );
        match request {
            0 => assert_eq!(seen["query"], "keep=1"),
            1 => assert_eq!(seen["headers"]["cookie"], "a=1; b=2"),
            2 => assert_eq!(seen["body"], r#"{"nick":"n"}"#),
            _ => assert_eq!(seen["body"], "nick=n"),
        }
    }
}

#[tokio::test]
async fn credential_returned_in_a_cookie_or_merged_into_the_body() {
    let env = Env::start(Setup::default().login("    login: { paths: [/login, /text] }\n    session: { returnIn: cookie, acceptIn: cookie, ttlMinutes: 30 }\n")).await;
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", "bob_1")
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("user_session=v1."), "{cookie}");
    for attr in [
        "Path=/",
        "Max-Age=1800",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let pair = cookie.split(';').next().unwrap();
    let r = env
        .http
        .get(env.url("/orders"))
        .header("cookie", format!("theme=dark; {pair}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        seen["headers"]["cookie"], "theme=dark",
        "the credential cookie is removed"
    );
    assert_eq!(seen["headers"]["x-wx-openid"], wechat::openid(APPID, "bob"));

    let env = Env::start(
        Setup::default()
            .login("    login: { paths: [/login, /text] }\n    session: { returnIn: body }\n"),
    )
    .await;
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", "carol_1")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let credential = body["user_session"].as_str().unwrap();
    assert_eq!(
        body["path"], "/login",
        "merged into the app's own JSON answer"
    );
    assert_eq!(env.get_with("/orders", credential).await.0, 200);
    // An answer that is not a JSON object gets the credential in a header instead.
    let r = env
        .http
        .post(env.url("/text"))
        .header("js_code", "carol_2")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["user_session"]
            .to_str()
            .unwrap()
            .starts_with("v1.")
    );
    assert_eq!(r.text().await.unwrap(), "plain text\n");
}

#[tokio::test]
async fn identity_forwarded_as_json_or_in_the_query() {
    let env = Env::start(Setup::default().login(
        "    login: { paths: [/login] }\n    forward: { format: json, name: x-wx-login }\n",
    ))
    .await;
    let credential = env.login("dave_1").await;
    let (_, seen, _) = env.get_with("/orders", &credential).await;
    let login: serde_json::Value =
        serde_json::from_str(seen["headers"]["x-wx-login"].as_str().unwrap()).unwrap();
    assert_eq!(login["openid"], wechat::openid(APPID, "dave"));
    assert_eq!(login["appid"], APPID);
    assert!(login.get("session_key").is_none());
    assert!(seen["headers"].get("x-wx-openid").is_none());

    let env = Env::start(
        Setup::default().login("    login: { paths: [/login] }\n    forward: { in: query }\n"),
    )
    .await;
    let credential = env.login("erin_1").await;
    let (_, seen, _) = env
        .get_with("/orders?a=1&X-WX-OPENID=spoofed", &credential)
        .await;
    let query = seen["query"].as_str().unwrap();
    assert!(query.starts_with("a=1&X-WX-OPENID=o"), "{query}");
    assert!(!query.contains("spoofed"));
}

#[tokio::test]
async fn an_app_refusing_the_login_gets_its_answer_back_and_no_credential() {
    let env = Env::start(Setup::default().login("    login: { paths: [/status/409] }\n")).await;
    let r = env
        .http
        .post(env.url("/status/409"))
        .header("js_code", "frank_1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.headers().get("user_session").is_none());
    assert!(
        r.headers().get("x-wxgate-error").is_none(),
        "the app's own answer"
    );
}

async fn login_status(env: &Env, code: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", code)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body: serde_json::Value = r.json().await.unwrap();
    if status != 200 {
        assert_eq!(headers["x-wxgate-error"], body["code"].as_str().unwrap());
        assert!(headers.get("user_session").is_none());
    }
    (
        status,
        body["code"].as_str().unwrap_or_default().to_owned(),
        headers,
    )
}

#[tokio::test]
async fn every_wechat_outcome_maps_to_the_error_contract() {
    let env = Env::start(Setup::default().arg("--wechat-timeout-ms", "300")).await;
    let cases: &[(&str, u16, &str, u32)] = &[
        ("err40029-a", 401, "WX_CODE_INVALID", 1),
        ("err40163-a", 401, "WX_CODE_USED", 1),
        ("err40226-a", 403, "WX_USER_BLOCKED", 1),
        ("err45011-a", 429, "WX_RATE_LIMITED", 1),
        ("errm1-a", 503, "WX_UNAVAILABLE", 2),
        ("flaky-a", 200, "", 2),
        ("delay1000-a", 504, "WX_TIMEOUT", 1),
        ("garbage-a", 502, "WX_BAD_RESPONSE", 1),
        ("huge-a", 502, "WX_BAD_RESPONSE", 1),
        ("http500-a", 502, "WX_BAD_RESPONSE", 1),
        ("badopenid-a", 502, "WX_BAD_RESPONSE", 1),
        ("err40125-a", 500, "WX_CONFIG_ERROR", 1),
        ("err40013-a", 500, "WX_CONFIG_ERROR", 1),
        ("err41002-a", 500, "WX_CONFIG_ERROR", 1),
        ("err99999-a", 502, "WX_BAD_RESPONSE", 1),
        ("json-a", 200, "", 1),
        ("nounion-a", 200, "", 1),
    ];
    for (code, status, error, calls) in cases {
        let (got, got_error, headers) = login_status(&env, code).await;
        assert_eq!((got, got_error.as_str()), (*status, *error), "{code}");
        assert_eq!(env.sim.calls(code), *calls, "calls for {code}");
        match *error {
            "WX_RATE_LIMITED" => assert_eq!(headers["retry-after"], "60"),
            "WX_UNAVAILABLE" => assert!(headers.contains_key("retry-after")),
            _ => {}
        }
    }
    // A used code: the simulator answers 40163 on a second exchange; within the code's five
    // minutes the sidecar shares the first outcome instead of spending the code again.
    assert_eq!(login_status(&env, "grace_1").await.0, 200);
    assert_eq!(login_status(&env, "grace_1").await.0, 200);
    assert_eq!(env.sim.calls("grace_1"), 1);
    assert_eq!(
        env.app.requests() as usize,
        2 + 3,
        "the app saw only the successful logins"
    );
}

#[tokio::test]
async fn a_missing_or_malformed_code_is_refused_before_wechat() {
    let env = Env::start(Setup::default()).await;
    let r = env.http.post(env.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-wxgate-error"], "BAD_LOGIN_REQUEST");
    let long = "a".repeat(10_000);
    for bad in [
        "",
        "abc&appid=wxEVIL&secret=x",
        "%00",
        "has space",
        long.as_str(),
        "表情",
    ] {
        let r = env
            .http
            .post(env.url("/login"))
            .header(
                "js_code",
                reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", "a")
        .header("js_code", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "two codes are ambiguous");
    assert_eq!(env.sim.total(), 0);
    assert_eq!(env.app.requests(), 0);
}

#[tokio::test]
async fn the_query_sent_to_wechat_carries_one_appid_one_secret_one_code() {
    let env = Env::start(Setup::default()).await;
    env.login("henry_1").await;
    let q = &env.sim.queries()[0];
    let names: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["appid", "secret", "js_code", "grant_type"]);
    assert_eq!(q[0].1, APPID);
    assert_eq!(q[1].1, APPSECRET);
    assert_eq!(q[3].1, "authorization_code");
}

#[tokio::test]
async fn concurrent_logins_with_one_code_share_one_wechat_call() {
    let env = Env::start(Setup::default()).await;
    let logins = (0..20).map(|_| {
        env.http
            .post(env.url("/login"))
            .header("js_code", "delay200-ivy_1")
            .send()
    });
    let results = futures_util::future::join_all(logins).await;
    for r in results {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        let credential = r.headers()["user_session"].to_str().unwrap().to_owned();
        assert_eq!(env.get_with("/orders", &credential).await.0, 200);
    }
    assert_eq!(env.sim.calls("delay200-ivy_1"), 1);
}

#[tokio::test]
async fn one_code_sent_to_two_plugins_is_two_wechat_calls_each_with_its_own_appid() {
    let second = second_plugin("");
    let env = Env::start(Setup::default().extra(&second)).await;
    let code = "delay200-kim_1";
    let login = |path: &'static str| env.http.post(env.url(path)).header("js_code", code).send();
    let (a, b) = tokio::join!(login("/login"), login("/b/login"));
    assert_eq!(env.sim.calls(code), 2, "no single-flight across plugins");
    let mut appids: Vec<String> = env.sim.queries().iter().map(|q| q[0].1.clone()).collect();
    appids.sort();
    assert_eq!(appids, [APPID_B, APPID]);
    // The simulator spends a code once, whichever app presents it: one login succeeds, the
    // other is told the code is used; neither gets the other's identity.
    let mut succeeded = 0;
    for (r, appid) in [(a.unwrap(), APPID), (b.unwrap(), APPID_B)] {
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap();
        if status == 200 {
            succeeded += 1;
            assert_eq!(body["headers"]["x-wx-appid"], appid);
            assert_eq!(
                body["headers"]["x-wx-openid"],
                wechat::openid(appid, code).as_str()
            );
        } else {
            assert_eq!(
                (status.as_u16(), body["code"].as_str()),
                (401, Some("WX_CODE_USED"))
            );
        }
    }
    assert_eq!(succeeded, 1);
}

#[tokio::test]
async fn logins_beyond_the_in_flight_limit_are_shed_at_once() {
    let env = Env::start(Setup::default().arg("--wechat-max-in-flight", "1")).await;
    let slow = env
        .http
        .post(env.url("/login"))
        .header("js_code", "delay500-jack_1")
        .send();
    let fast = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let r = env
            .http
            .post(env.url("/login"))
            .header("js_code", "kate_1")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), started.elapsed())
    };
    let (slow, (status, took)) = tokio::join!(slow, fast);
    assert_eq!(slow.unwrap().status(), 200);
    assert_eq!(status, 503);
    assert!(
        took < std::time::Duration::from_millis(300),
        "shed at once, took {took:?}"
    );
    assert_eq!(env.sim.calls("kate_1"), 0);
}

#[tokio::test]
async fn without_login_paths_any_bound_request_carrying_the_code_is_a_login() {
    let env = Env::start(Setup::default().login("    code: { in: query, name: code }\n")).await;
    let r = env
        .http
        .get(env.url("/anything"))
        .query(&[("code", "lara_1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("user_session"));
    let r = env.http.get(env.url("/anything")).send().await.unwrap();
    assert_eq!(r.status(), 401, "no code: an ordinary bound request");
}

#[tokio::test]
async fn a_code_wechat_did_not_take_can_be_tried_again_but_a_spent_one_cannot() {
    let env = Env::start(Setup::default()).await;
    // -1 twice: WeChat did not take the code; a retry calls WeChat again (and -1s again).
    assert_eq!(login_status(&env, "errm1-mia_1").await.0, 503);
    assert_eq!(login_status(&env, "errm1-mia_1").await.0, 503);
    assert_eq!(env.sim.calls("errm1-mia_1"), 4);
    // 45011 likewise.
    assert_eq!(login_status(&env, "err45011-mia_2").await.0, 429);
    assert_eq!(login_status(&env, "err45011-mia_2").await.0, 429);
    assert_eq!(env.sim.calls("err45011-mia_2"), 2);
    // 40029 is final: shared, WeChat is not asked twice.
    assert_eq!(login_status(&env, "err40029-mia_3").await.0, 401);
    assert_eq!(login_status(&env, "err40029-mia_3").await.0, 401);
    assert_eq!(env.sim.calls("err40029-mia_3"), 1);
}

#[tokio::test]
async fn a_run_of_unanswered_calls_opens_the_breaker_and_one_probe_closes_it() {
    let env = Env::start(
        Setup::default()
            .arg("--wechat-timeout-ms", "100")
            .arg("--wechat-breaker-failures", "3")
            .arg("--wechat-breaker-cooldown-ms", "400"),
    )
    .await;
    for i in 0..3 {
        let (status, body, _) = login_status(&env, &format!("delay1000-olga_{i}")).await;
        assert_eq!((status, body.as_str()), (504, "WX_TIMEOUT"));
    }
    assert_eq!(env.sim.total(), 3);
    // Open: refused at once, WeChat not called, a good code is not spent.
    for i in 0..10 {
        let (status, body, headers) = login_status(&env, &format!("olga_{i}")).await;
        assert_eq!((status, body.as_str()), (503, "WX_UNAVAILABLE"));
        assert!(headers.contains_key("retry-after"));
    }
    assert_eq!(env.sim.total(), 3);
    assert!(
        env.metrics()
            .await
            .contains("wxgate_code2session_shed_total 10")
    );
    // After the cool-down a failed probe opens it again...
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    assert_eq!(login_status(&env, "delay1000-olga_9").await.0, 504);
    assert_eq!(login_status(&env, "olga_10").await.0, 503);
    assert_eq!(env.sim.total(), 4);
    // ...and an answered one closes it.
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    env.login("olga_11").await;
    env.login("olga_12").await;
    assert_eq!(env.sim.total(), 6);
}
