//! Several mini programs in one login plugin: the AppID a login is for (AppID parameter, else
//! the Referer WeChat sets), credentials verified for any listed AppID whatever the Referer
//! says, and the Referer's version, channel and match as tags. Real sidecar, simulator and echo
//! app on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use wxgate_crds::keys::{CredentialKey, KeyRing, Kid};
use wxgate_sidecar::credential::Sealer;
use wxgate_sim::wechat;

const OTHER: &str = "wxffffffffffffffff";

fn two_apps() -> Setup {
    Setup::default()
        .apps(&format!(
            "    apps:\n      - {{ appId: {APPID}, credentialsSecretRef: {{ name: creds }} }}\n      - {{ appId: {APPID_B}, credentialsSecretRef: {{ name: creds-b }} }}\n    appIdParam: {{ in: header, name: x-mp-appid }}\n"
        ))
        .login("    login: { paths: [/login] }\n    tags: { fields: [appid, version, channel, referer] }\n")
        .extra(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: creds-b }}\nstringData: {{ appsecret: {APPSECRET_B} }}\n"
        ))
}

fn referer(app_id: &str, version: &str) -> String {
    format!("https://servicewechat.com/{app_id}/{version}/page-frame.html")
}

/// Logs in with `code` and extra headers; returns (status, what the app saw or the error, credential).
async fn login(
    env: &Env,
    code: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value, Option<String>) {
    let mut req = env.http.post(env.url("/login")).header("js_code", code);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let credential = r
        .headers()
        .get("user_session")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap(), credential)
}

async fn get(env: &Env, credential: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut req = env
        .http
        .get(env.url("/orders"))
        .header("user_session", credential);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_login_is_for_the_app_its_referer_or_appid_parameter_names() {
    let env = Env::start(two_apps()).await;
    for (app, version, channel) in [(APPID, "7", "release"), (APPID_B, "0", "trial-or-develop")] {
        let code = format!("u{version}_1");
        let (status, seen, credential) =
            login(&env, &code, &[("referer", &referer(app, version))]).await;
        assert_eq!(status, 200, "{seen}");
        assert!(credential.is_some());
        let h = &seen["headers"];
        assert_eq!(h["x-wx-appid"], app);
        assert_eq!(h["x-wx-openid"], wechat::openid(app, &code).as_str());
        assert_eq!(h["x-wxgate-tag-appid"], app);
        assert_eq!(h["x-wxgate-tag-version"], version);
        assert_eq!(h["x-wxgate-tag-channel"], channel);
        assert_eq!(h["x-wxgate-tag-referer"], "match");
    }
    // The AppID parameter names the app without a WeChat Referer, and wins over one.
    let (status, seen, _) = login(&env, "p_1", &[("x-mp-appid", APPID_B)]).await;
    assert_eq!(
        (status, &seen["headers"]["x-wx-appid"]),
        (200, &APPID_B.into())
    );
    assert_eq!(seen["headers"]["x-wxgate-tag-referer"], "none");
    assert!(seen["headers"].get("x-wxgate-tag-channel").is_none());
    let (status, seen, _) = login(
        &env,
        "p_2",
        &[
            ("x-mp-appid", APPID),
            ("referer", &referer(APPID_B, "devtools")),
        ],
    )
    .await;
    assert_eq!(
        (status, &seen["headers"]["x-wx-appid"]),
        (200, &APPID.into())
    );
    assert_eq!(seen["headers"]["x-wxgate-tag-channel"], "devtools");
    assert_eq!(seen["headers"]["x-wxgate-tag-referer"], "mismatch");
}

#[tokio::test]
async fn a_login_for_no_listed_app_is_refused_before_wechat_is_called() {
    let env = Env::start(two_apps()).await;
    let cases: [&[(&str, &str)]; 4] = [
        &[],
        &[(
            "referer",
            "https://servicewechat.com/wxffffffffffffffff/1/page-frame.html",
        )],
        &[
            ("x-mp-appid", OTHER),
            (
                "referer",
                "https://servicewechat.com/wx0123456789abcdef/1/page-frame.html",
            ),
        ],
        &[("x-mp-appid", APPID), ("X-MP-APPID", APPID_B)],
    ];
    for (i, headers) in cases.into_iter().enumerate() {
        let (status, body, credential) = login(&env, &format!("x_{i}"), headers).await;
        assert_eq!(status, 400, "{headers:?}");
        assert_eq!(body["code"], "LOGIN_APPID_UNKNOWN");
        assert!(credential.is_none());
    }
    assert_eq!(
        env.sim.total(),
        0,
        "WeChat is never asked for an app the plugin lacks"
    );
}

#[tokio::test]
async fn a_credential_verifies_for_its_own_app_whatever_the_referer_says() {
    let env = Env::start(two_apps()).await;
    let (_, _, credential) = login(&env, "bob_1", &[("referer", &referer(APPID_B, "5"))]).await;
    let credential = credential.unwrap();
    let openid_b = wechat::openid(APPID_B, "bob");
    // The Referer names app A, a trial build: the credential's app wins, the mismatch is
    // tagged and counted, the channel is still what the Referer says (a routing hint).
    let (status, seen) = get(&env, &credential, &[("referer", &referer(APPID, "0"))]).await;
    assert_eq!(status, 200);
    let h = &seen["headers"];
    assert_eq!(h["x-wx-appid"], APPID_B);
    assert_eq!(h["x-wx-openid"], openid_b.as_str());
    assert_eq!(h["x-wxgate-tag-referer"], "mismatch");
    assert_eq!(h["x-wxgate-tag-channel"], "trial-or-develop");
    assert!(
        env.metrics()
            .await
            .contains("wxgate_referer_appid_mismatches_total 1"),
        "{}",
        env.metrics().await
    );
    let (status, seen) = get(&env, &credential, &[("referer", &referer(APPID_B, "5"))]).await;
    assert_eq!(
        (status, &seen["headers"]["x-wxgate-tag-referer"]),
        (200, &"match".into())
    );
    assert_eq!(seen["headers"]["x-wxgate-tag-version"], "5");

    // A forged Referer gains nothing: no credential is still no credential, and one sealed
    // with the plugin's own key for an AppID it does not list is refused.
    let r = env
        .http
        .get(env.url("/orders"))
        .header("referer", referer(APPID_B, "5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-wxgate-error"], "LOGIN_REQUIRED");
    let ring = KeyRing {
        active: Kid(KID),
        keys: [(Kid(KID), CredentialKey::new(KEY))].into(),
    };
    let foreign = Sealer::new(&ring, &[OTHER], PLUGIN).unwrap();
    let forged = foreign.seal(&wxgate_sidecar::credential::Claims::issue(
        openid_b.clone(),
        None,
        OTHER.into(),
        now(),
        60,
    ));
    let (status, body) = get(&env, &forged, &[("referer", &referer(OTHER, "5"))]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("LOGIN_INVALID"))
    );
}

#[tokio::test]
async fn a_one_app_plugin_keeps_working_without_a_referer() {
    let env = Env::start(Setup::default()).await;
    let credential = env.login("solo_1").await;
    let (status, seen) = get(&env, &credential, &[]).await;
    assert_eq!(
        (status, &seen["headers"]["x-wx-appid"]),
        (200, &APPID.into())
    );
    // ... and refuses a login whose Referer names another mini program.
    let (status, body, _) = login(&env, "solo_2", &[("referer", &referer(APPID_B, "1"))]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("LOGIN_APPID_UNKNOWN"))
    );
}
