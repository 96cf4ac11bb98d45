//! Phone numbers against the WeChat simulator and the echo app, over real sockets: on a login,
//! bound later on `phone.paths`, kept in the credential, refused codes, one paid call per code
//! however many requests carry it, a token WeChat rejects replaced, and WeChat's token endpoint
//! down without harm to verification.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use wxgate_sim::wechat;

const PHONE: &str = "    login: { paths: [/login] }\n    phone: { paths: [/bind-phone] }\n";
const PHONE_KEPT: &str =
    "    login: { paths: [/login] }\n    phone: { paths: [/bind-phone], keepInCredential: true }\n";

impl Env {
    async fn bind(&self, credential: &str, phone_code: Option<&str>) -> reqwest::Response {
        let mut r = self
            .http
            .post(self.url("/bind-phone"))
            .header("user_session", credential);
        if let Some(code) = phone_code {
            r = r.header("phone_code", code);
        }
        r.send().await.unwrap()
    }
}

async fn json(r: reqwest::Response) -> serde_json::Value {
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_phone_code_on_the_login_reaches_the_app_as_two_headers() {
    let env = Env::start(Setup::default().login(PHONE)).await;
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", "13800138000_1")
        .header("phone_code", "13800138000_p1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let credential = r.headers()["user_session"].to_str().unwrap().to_owned();
    let seen = json(r).await;
    let h = &seen["headers"];
    assert_eq!(h["x-wx-phone-number"], "13800138000");
    assert_eq!(h["x-wx-phone-country-code"], "86");
    assert!(h.get("phone_code").is_none(), "the phone code is removed");
    assert_eq!(env.sim.phone_calls(), (1, 1));

    let r = env
        .http
        .get(env.url("/orders"))
        .header("user_session", &credential)
        .header("x-wx-phone-number", "19999999999")
        .send()
        .await
        .unwrap();
    let h = &json(r).await["headers"];
    assert!(
        h.get("x-wx-phone-number").is_none(),
        "a client's phone header is stripped, and the credential holds none: {h}"
    );
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", "13800138000_2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a login without a phone code still works");
    assert!(json(r).await["headers"].get("x-wx-phone-number").is_none());
    assert_eq!(env.sim.phone_calls(), (1, 1));
}

#[tokio::test]
async fn bound_later_and_kept_in_the_credential() {
    let env = Env::start(Setup::default().login(PHONE_KEPT)).await;
    let credential = env.login("alice_1").await;
    let (_, seen, _) = env.get_with("/orders", &credential).await;
    assert!(seen["headers"].get("x-wx-phone-number").is_none());

    let r = env.bind(&credential, Some("alice_p1")).await;
    assert_eq!(r.status(), 200);
    let kept = r.headers()["user_session"].to_str().unwrap().to_owned();
    assert_ne!(kept, credential, "a credential holding the phone number");
    let number = wechat::phone_number("alice_p1");
    assert_eq!(json(r).await["headers"]["x-wx-phone-number"], number);

    let (status, seen, _) = env.get_with("/orders", &kept).await;
    assert_eq!(status, 200);
    assert_eq!(seen["headers"]["x-wx-phone-number"], number);
    assert_eq!(seen["headers"]["x-wx-phone-country-code"], "86");
    assert_eq!(
        seen["headers"]["x-wx-openid"],
        wechat::openid(APPID, "alice_1")
    );
    assert_eq!(env.sim.phone_calls(), (1, 1));
}

#[tokio::test]
async fn refused_phone_codes_and_requests() {
    let env = Env::start(Setup::default().login(PHONE)).await;
    let alice = env.login("alice_1").await;
    let before = env.app.requests();

    let r = env.bind(&alice, None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["code"], "BAD_PHONE_REQUEST");
    let r = env
        .http
        .post(env.url("/bind-phone"))
        .header("phone_code", "alice_p1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a phone path needs a login first");
    assert_eq!(json(r).await["code"], "LOGIN_REQUIRED");

    for code in ["err40029-x", "bob_p1"] {
        let r = env.bind(&alice, Some(code)).await;
        assert_eq!(r.status(), 400, "{code}");
        let body = json(r).await;
        assert_eq!(body["code"], "WX_PHONE_CODE_INVALID", "{code}");
        assert_eq!(body["relogin"], false);
        assert_eq!(body["retryable"], false);
    }
    assert_eq!(env.bind(&alice, Some("alice_p1")).await.status(), 200);
    let again = env.bind(&alice, Some("alice_p1")).await;
    assert_eq!(
        again.status(),
        200,
        "a double submit shares the first answer"
    );
    assert_eq!(
        json(again).await["headers"]["x-wx-phone-number"],
        wechat::phone_number("alice_p1")
    );
    let bob = env.login("bob_1").await;
    let r = env.bind(&bob, Some("alice_p1")).await;
    assert_eq!(
        json(r).await["code"],
        "WX_PHONE_CODE_INVALID",
        "alice's code is not bob's"
    );
    let r = env.bind(&alice, Some("otherapp-alice_p2")).await;
    assert_eq!(r.status(), 502, "another AppID's watermark");
    assert_eq!(json(r).await["code"], "WX_BAD_RESPONSE");
    assert_eq!(
        env.app.requests() - before,
        3,
        "the app saw only the two accepted binds and bob's login"
    );
}

#[tokio::test]
async fn twenty_requests_with_one_phone_code_make_one_paid_call() {
    let env = Env::start(Setup::default().login(PHONE)).await;
    let credential = env.login("carol_1").await;
    let storm: Vec<_> = (0..20)
        .map(|_| {
            let (http, url, credential) =
                (env.http.clone(), env.url("/bind-phone"), credential.clone());
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("user_session", credential)
                    .header("phone_code", "delay200-carol_p1")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let seen: serde_json::Value = r.json().await.unwrap();
                seen["headers"]["x-wx-phone-number"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    for r in storm {
        assert_eq!(r.await.unwrap(), wechat::phone_number("carol_p1"));
    }
    assert_eq!(env.sim.phone_calls(), (1, 1));
    assert_eq!(env.sim.stable_token_calls(), (1, 0));
}

#[tokio::test]
async fn a_token_invalidated_elsewhere_is_replaced_and_the_call_made_once_more() {
    let env = Env::start(Setup::default().login(PHONE)).await;
    let credential = env.login("dave_1").await;
    assert_eq!(env.bind(&credential, Some("dave_p1")).await.status(), 200);
    // Another caller of the AppID forces a new token: the sidecar's is no longer valid.
    let forced = reqwest::Client::new()
        .post(format!("http://{}/cgi-bin/stable_token", env.sim_addr))
        .body(
            serde_json::json!({"grant_type": "client_credential", "appid": APPID, "secret": APPSECRET, "force_refresh": true})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(forced.text().await.unwrap().contains("access_token"));
    let r = env.bind(&credential, Some("dave_p2")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json(r).await["headers"]["x-wx-phone-number"],
        wechat::phone_number("dave_p2")
    );
    assert_eq!(
        env.sim.phone_calls(),
        (3, 2),
        "one call refused with 40001, retried once"
    );
    assert_eq!(
        env.sim.stable_token_calls(),
        (3, 1),
        "the sidecar asked normally and never forced"
    );
    let metrics = env.metrics().await;
    assert!(
        metrics.contains(
            "wxgate_wechat_api_calls_total{api=\"getuserphonenumber\",errcode=\"40001\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_token_endpoint_down_fails_phone_requests_clearly_and_nothing_else() {
    let env = Env::start(Setup::default().login(PHONE)).await;
    let down = start_sidecar(
        env.dir.path(),
        &format!("http://{}", env.app_addr),
        "http://127.0.0.1:9",
        &[],
    )
    .await;
    let credential = sealer().seal(&claims(
        &wechat::openid(APPID, "erin_1"),
        now(),
        now() + 600,
    ));
    let base = format!("http://{}", down.traffic);
    for _ in 0..200 {
        if down.active.is_ready() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let r = env
        .http
        .get(format!("{base}/orders"))
        .header("user_session", &credential)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "verification needs no WeChat");
    let r = env
        .http
        .post(format!("{base}/bind-phone"))
        .header("user_session", &credential)
        .header("phone_code", "erin_p1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body = json(r).await;
    assert_eq!(body["code"], "WX_TOKEN_UNAVAILABLE");
    assert_eq!(body["retryable"], true);
    assert!(!body.to_string().contains(APPSECRET));
}

#[tokio::test]
async fn the_json_forward_format_carries_the_phone_number_too() {
    let login = format!("{PHONE}    forward: {{ format: json, name: x-wx-identity }}\n");
    let env = Env::start(Setup::default().login(&login)).await;
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", "13900001111_1")
        .header("phone_code", "13900001111_p1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = json(r).await;
    let identity: serde_json::Value =
        serde_json::from_str(seen["headers"]["x-wx-identity"].as_str().unwrap()).unwrap();
    assert_eq!(identity["phone_number"], "13900001111");
    assert_eq!(identity["phone_country_code"], "86");
    assert_eq!(identity["openid"], wechat::openid(APPID, "13900001111_1"));
}
