//! QQ mini programs (`platform: qq`): the same login flow, credential, locations, tags and
//! error contract as WeChat's, code2Session at QQ's endpoint (the simulator's `/qq`), QQ's
//! errcodes, and QQ's Referer. Real sidecar, simulator and echo app on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use wxgate_sim::wechat;

fn qq() -> Setup {
    Setup::default()
        .apps(&format!(
            "    platform: qq\n    appId: \"{QQ_APPID}\"\n    credentialsSecretRef: {{ name: creds-qq }}\n"
        ))
        .login("    login: { paths: [/login] }\n    tags: { fields: [appid, channel, referer] }\n")
        .extra(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: creds-qq }}\nstringData: {{ appsecret: {QQ_APPSECRET} }}\n"
        ))
}

async fn login(env: &Env, code: &str, referer: Option<&str>) -> reqwest::Response {
    let mut req = env.http.post(env.url("/login")).header("js_code", code);
    if let Some(r) = referer {
        req = req.header("referer", r);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_qq_login_goes_to_qq_and_its_credential_verifies() {
    let env = Env::start(qq()).await;
    let referer = format!("https://appservice.qq.com/{QQ_APPID}/12/page-frame.html");
    let r = login(&env, "qqalice_1", Some(&referer)).await;
    assert_eq!(r.status(), 200);
    let credential = r.headers()["user_session"].to_str().unwrap().to_owned();
    let seen: serde_json::Value = r.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-wx-appid"], QQ_APPID);
    assert_eq!(
        h["x-wx-openid"],
        wechat::openid(QQ_APPID, "qqalice").as_str()
    );
    assert_eq!(h["x-wxgate-tag-channel"], "release");
    assert_eq!(h["x-wxgate-tag-referer"], "match");
    // What reached the simulator: QQ's endpoint, the QQ app's secret.
    assert_eq!((env.sim.qq_total(), env.sim.total()), (1, 1));
    let query = env.sim.queries().pop().unwrap();
    assert!(query.contains(&("appid".into(), QQ_APPID.into())));
    assert!(query.contains(&("secret".into(), QQ_APPSECRET.into())));

    let (status, seen, _) = env.get_with("/orders", &credential).await;
    assert_eq!(status, 200);
    assert_eq!(seen["headers"]["x-wx-appid"], QQ_APPID);
    // A WeChat Referer means nothing to a QQ plugin: no channel, referer none.
    let r = env
        .http
        .get(env.url("/orders"))
        .header("user_session", &credential)
        .header(
            "referer",
            format!("https://servicewechat.com/{APPID}/1/page-frame.html"),
        )
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-wxgate-tag-referer"], "none");
    assert!(seen["headers"].get("x-wxgate-tag-channel").is_none());
}

#[tokio::test]
async fn qq_errcodes_follow_the_error_contract() {
    let env = Env::start(qq()).await;
    // QQ documents -1 (busy), 40029 (code invalid) and 45011 (rate limit).
    for (code, status, error) in [
        ("err40029-a", 401, "WX_CODE_INVALID"),
        ("err45011-a", 429, "WX_RATE_LIMITED"),
        ("errm1-a", 503, "WX_UNAVAILABLE"),
    ] {
        let r = login(&env, code, None).await;
        assert_eq!(r.status(), status, "{code}");
        assert_eq!(r.headers()["x-wxgate-error"], error, "{code}");
    }
    assert_eq!(
        env.sim.calls("errm1-a"),
        2,
        "-1 is retried once, as with WeChat"
    );
    // A code spent at QQ answers 40029 when used again (QQ has no "code used").
    assert_eq!(login(&env, "qqbob_1", None).await.status(), 200);
    let again = env
        .http
        .post(env.url("/login"))
        .header("js_code", "qqbob_1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        200,
        "the same code shares the first exchange's outcome"
    );
    // A WeChat AppID's Referer is not the QQ plugin's: refused before QQ is called.
    let before = env.sim.total();
    let r = login(
        &env,
        "qqcarol_1",
        Some(&format!(
            "https://appservice.qq.com/{QQ_APPID}0/1/page-frame.html"
        )),
    )
    .await;
    assert_eq!(r.headers()["x-wxgate-error"], "LOGIN_APPID_UNKNOWN");
    assert_eq!(env.sim.total(), before);
}

#[tokio::test]
async fn a_wechat_plugin_never_calls_qq_and_the_reverse() {
    // Both plugins on one Service, each on its own routes: each login reaches its platform's
    // endpoint with its own AppID.
    let env = Env::start(qq().apis("  apis: [ { path: /login, match: Exact }, { path: /orders, match: Prefix } ]\n").extra(&format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: creds-qq }}\nstringData: {{ appsecret: {QQ_APPSECRET} }}\n{}",
        second_plugin("")
    )))
    .await;
    assert_eq!(login(&env, "qqdave_1", None).await.status(), 200);
    let r = env
        .http
        .post(env.url("/b/login"))
        .header("js_code", "wxdave_1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-wx-appid"], APPID_B);
    let apps: Vec<String> = env
        .sim
        .queries()
        .iter()
        .filter_map(|q| q.iter().find(|(k, _)| k == "appid").map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(apps, [QQ_APPID, APPID_B]);
    assert_eq!(env.sim.qq_total(), 1, "only the QQ login went to QQ");
}

#[tokio::test]
async fn the_simulator_answers_as_qq_documents() {
    let env = Env::start(qq()).await;
    let exchange = |code: &'static str| {
        let url = format!(
            "http://{}/qq/sns/jscode2session?appid={QQ_APPID}&secret={QQ_APPSECRET}&js_code={code}&grant_type=authorization_code",
            env.sim_addr
        );
        let http = env.http.clone();
        async move {
            let answer: serde_json::Value =
                http.get(url).send().await.unwrap().json().await.unwrap();
            answer
        }
    };
    let first = exchange("qqeve_1").await;
    assert_eq!(first["errcode"], 0);
    assert_eq!(first["openid"], wechat::openid(QQ_APPID, "qqeve").as_str());
    let again = exchange("qqeve_1").await;
    assert_eq!(again["errcode"], 40029, "a used code is QQ's 40029");
}
