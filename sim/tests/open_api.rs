//! The simulator's stable_token and getuserphonenumber, over real HTTP on loopback, against
//! reference/wechat-api.md 2.6 and 2.5.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use wxgate_sim::wechat::Simulator;

const APP: &str = "wx0123456789abcdef";

struct Sim {
    sim: Simulator,
    base: String,
    url: String,
    http: reqwest::Client,
}

async fn sim() -> Sim {
    let sim = Simulator::new(HashMap::from([(APP.to_owned(), "s3cret".to_owned())]));
    let addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), sim.router())
        .await
        .unwrap();
    Sim {
        sim,
        base: format!("http://{addr}"),
        url: format!("http://{addr}/cgi-bin/stable_token"),
        http: reqwest::Client::new(),
    }
}

impl Sim {
    async fn post(&self, body: Value) -> Value {
        let answer = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
    }

    async fn phone(&self, token: &str, body: Value) -> Value {
        let answer = self
            .http
            .post(format!(
                "{}/wxa/business/getuserphonenumber?access_token={token}",
                self.base
            ))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
    }

    async fn token(&self, force: bool) -> Value {
        self.post(json!({"grant_type": "client_credential", "appid": APP, "secret": "s3cret", "force_refresh": force}))
            .await
    }
}

fn token(answer: &Value) -> String {
    answer["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_same_token_while_valid_a_new_one_in_its_last_five_minutes() {
    let s = sim().await;
    let first = s.token(false).await;
    assert_eq!(first["expires_in"], 7200);
    assert!(token(&first).len() >= 100, "{first}");
    s.sim.advance(Duration::from_secs(6000));
    let again = s.token(false).await;
    assert_eq!(token(&again), token(&first));
    assert_eq!(again["expires_in"], 1200);
    s.sim.advance(Duration::from_secs(901));
    let renewed = s.token(false).await;
    assert_ne!(token(&renewed), token(&first));
    assert_eq!(renewed["expires_in"], 7200);
    assert!(
        s.sim.token_is_valid(APP, &token(&first)),
        "the old token works until it expires"
    );
    s.sim.advance(Duration::from_secs(300));
    assert!(!s.sim.token_is_valid(APP, &token(&first)));
    assert!(s.sim.token_is_valid(APP, &token(&renewed)));
    assert_eq!(s.sim.stable_token_calls(), (3, 0));
}

#[tokio::test]
async fn force_refresh_invalidates_at_once_30_s_apart_and_20_a_day() {
    let s = sim().await;
    let old = token(&s.token(false).await);
    let forced = token(&s.token(true).await);
    assert_ne!(forced, old);
    assert!(!s.sim.token_is_valid(APP, &old));
    assert!(s.sim.token_is_valid(APP, &forced));
    assert_eq!(s.token(true).await["errcode"], 45011, "within 30 s");
    for _ in 1..20 {
        s.sim.advance(Duration::from_secs(30));
        assert!(s.token(true).await["access_token"].is_string());
    }
    s.sim.advance(Duration::from_secs(30));
    assert_eq!(s.token(true).await["errcode"], 45009, "the 21st of the day");
    assert!(
        s.token(false).await["access_token"].is_string(),
        "normal calls still work"
    );
    s.sim.advance(Duration::from_secs(86_400));
    assert!(s.token(true).await["access_token"].is_string(), "a new day");
    assert_eq!(s.sim.stable_token_calls().1, 21);
}

#[tokio::test]
async fn bad_requests_get_wechats_errcodes() {
    let s = sim().await;
    let get = s.http.get(&s.url).send().await.unwrap();
    let get: Value = serde_json::from_slice(&get.bytes().await.unwrap()).unwrap();
    assert_eq!(get["errcode"], 43002);
    let not_json = s.http.post(&s.url).body("appid=x").send().await.unwrap();
    let not_json: Value = serde_json::from_slice(&not_json.bytes().await.unwrap()).unwrap();
    assert_eq!(not_json["errcode"], 47001);
    for (body, errcode) in [
        (
            json!({"grant_type": "password", "appid": APP, "secret": "s3cret"}),
            40002,
        ),
        (
            json!({"grant_type": "client_credential", "secret": "s3cret"}),
            41002,
        ),
        (
            json!({"grant_type": "client_credential", "appid": APP}),
            41004,
        ),
        (
            json!({"grant_type": "client_credential", "appid": "wxffffffffffffffff", "secret": "s3cret"}),
            40013,
        ),
        (
            json!({"grant_type": "client_credential", "appid": APP, "secret": "wrong"}),
            40125,
        ),
        (
            json!({"grant_type": "client_credential", "appid": APP, "secret": "err40164"}),
            40164,
        ),
        (
            json!({"grant_type": "client_credential", "appid": APP, "secret": "errm1"}),
            -1,
        ),
    ] {
        let answer = s.post(body.clone()).await;
        assert_eq!(answer["errcode"], errcode, "{body}");
        assert!(answer["errmsg"].is_string(), "{answer}");
    }
}

#[tokio::test]
async fn a_phone_code_gives_its_users_number_once_and_each_answer_is_paid() {
    let s = sim().await;
    let t = token(&s.token(false).await);
    let alice = wxgate_sim::wechat::openid(APP, "alice_1");
    let answer = s
        .phone(&t, json!({"code": "13800138000_p1", "openid": wxgate_sim::wechat::openid(APP, "13800138000_x")}))
        .await;
    assert_eq!(answer["errcode"], 0, "{answer}");
    let info = &answer["phone_info"];
    assert_eq!(info["purePhoneNumber"], "13800138000");
    assert_eq!(info["phoneNumber"], "13800138000");
    assert_eq!(info["countryCode"], "86");
    assert_eq!(info["watermark"]["appid"], APP);
    assert!(info["watermark"]["timestamp"].is_i64());
    assert_eq!(
        s.phone(&t, json!({"code": "13800138000_p1"})).await["errcode"],
        40029,
        "single use"
    );
    assert_eq!(
        s.phone(&t, json!({"code": "bob_p1", "openid": alice}))
            .await["errcode"],
        40029,
        "another user's code"
    );
    let named = s
        .phone(&t, json!({"code": "alice_p2", "openid": alice}))
        .await;
    assert_eq!(
        named["phone_info"]["purePhoneNumber"],
        wxgate_sim::wechat::phone_number("alice_p2")
    );
    let other = s.phone(&t, json!({"code": "otherapp-alice_p3"})).await;
    assert_eq!(
        other["phone_info"]["watermark"]["appid"],
        wxgate_sim::wechat::OTHER_APPID
    );
    assert_eq!(
        s.phone(&t, json!({"code": "err40029-x"})).await["errcode"],
        40029
    );
    assert_eq!(s.phone(&t, json!({"code": "errm1-x"})).await["errcode"], -1);
    assert_eq!(s.sim.phone_calls(), (7, 3));
}

#[tokio::test]
async fn the_phone_number_needs_a_valid_access_token() {
    let s = sim().await;
    let code = json!({"code": "alice_p1"});
    assert_eq!(s.phone("", code.clone()).await["errcode"], 41001);
    assert_eq!(s.phone("made-up", code.clone()).await["errcode"], 40001);
    let old = token(&s.token(false).await);
    s.sim.advance(Duration::from_secs(7200));
    assert_eq!(s.phone(&old, code.clone()).await["errcode"], 42001);
    let current = token(&s.token(false).await);
    let forced = token(&s.token(true).await);
    assert_eq!(
        s.phone(&current, code.clone()).await["errcode"],
        40001,
        "invalidated by a forced refresh"
    );
    assert_eq!(s.phone(&forced, code).await["errcode"], 0);
    assert_eq!(s.sim.phone_calls(), (5, 1));
}
