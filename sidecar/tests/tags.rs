//! WeChat default tags through the real sidecar, simulator and echo app.

#![allow(clippy::unwrap_used)]

mod support;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use support::*;
use wxgate_sim::wechat;

const TAGS: &str = "    login: { paths: [/login] }\n    tags: { fields: [appid, openid, unionid, bucket, nickName, gender, city] }\n";
const RAW: &str = r#"{"nickName":"小明 Band","gender":1,"language":"zh_CN","city":"Guangzhou"}"#;

fn signature(raw: &str, session_key: &str) -> String {
    let mut h = Sha1::new();
    h.update(raw.as_bytes());
    h.update(session_key.as_bytes());
    hex::encode(h.finalize())
}

fn encrypt(plain: &str, session_key: &str, iv: [u8; 16]) -> String {
    let key: [u8; 16] = STANDARD.decode(session_key).unwrap().try_into().unwrap();
    let ct = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
        .encrypt_padded_vec::<Pkcs7>(plain.as_bytes());
    STANDARD.encode(ct)
}

#[tokio::test]
async fn identity_and_vouched_profile_tags_reach_the_app_on_login_and_after() {
    let env = Env::start(Setup::default().login(TAGS)).await;
    let code = "alice_1";
    let sk = wechat::session_key(APPID, code);
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", code)
        .header(
            "X-WX-Raw-Data",
            reqwest::header::HeaderValue::from_bytes(RAW.as_bytes()).unwrap(),
        )
        .header("X-WX-Signature", signature(RAW, &sk))
        .header("x-wxgate-tag-city", "Spoofed")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let credential = r.headers()["user_session"].to_str().unwrap().to_owned();
    let seen: serde_json::Value = r.json().await.unwrap();
    let openid = wechat::openid(APPID, "alice");
    let bucket = wxgate_sidecar::tags::bucket(&openid).to_string();
    let h = &seen["headers"];
    assert_eq!(h["x-wxgate-tag-appid"], APPID);
    assert_eq!(h["x-wxgate-tag-openid"], openid.as_str());
    assert_eq!(h["x-wxgate-tag-bucket"], bucket.as_str());
    assert_eq!(h["x-wxgate-tag-nickname"], "%E5%B0%8F%E6%98%8E%20Band");
    assert_eq!(h["x-wxgate-tag-gender"], "1");
    assert_eq!(
        h["x-wxgate-tag-city"], "Guangzhou",
        "the client's own tag header was stripped"
    );
    assert!(
        h["baggage"]
            .as_str()
            .unwrap()
            .contains(&format!("bucket={bucket}"))
    );

    // Later requests carry the same tags: the profile rides in the credential.
    let r = env
        .http
        .get(env.url("/orders"))
        .header("user_session", &credential)
        .header("baggage", "userId=alice,bucket=99")
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = r.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-wxgate-tag-nickname"], "%E5%B0%8F%E6%98%8E%20Band");
    assert_eq!(
        h["x-wxgate-tag-unionid"],
        wechat::unionid(APPID, "alice").as_str()
    );
    let baggage = h["baggage"].as_str().unwrap();
    assert!(
        baggage.contains("userId=alice")
            && baggage.contains(&format!("bucket={bucket}"))
            && !baggage.contains("bucket=99"),
        "{baggage}"
    );
}

#[tokio::test]
async fn encrypted_profile_data_is_decrypted_and_its_watermark_checked() {
    let env = Env::start(Setup::default().login(TAGS)).await;
    let iv = [7u8; 16];
    for (code, appid, expected) in [("bob_1", APPID, 200), ("bob_2", "wxffffffffffffffff", 400)] {
        let sk = wechat::session_key(APPID, code);
        let plain = format!(
            r#"{{"nickName":"Bob","city":"Shenzhen","watermark":{{"appid":"{appid}","timestamp":1}}}}"#
        );
        let r = env
            .http
            .post(env.url("/login"))
            .header("js_code", code)
            .header("X-WX-Encrypted-Data", encrypt(&plain, &sk, iv))
            .header("X-WX-IV", STANDARD.encode(iv))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{code}");
        if expected == 200 {
            let seen: serde_json::Value = r.json().await.unwrap();
            assert_eq!(seen["headers"]["x-wxgate-tag-city"], "Shenzhen");
        } else {
            assert_eq!(r.headers()["x-wxgate-error"], "WX_PROFILE_INVALID");
            assert!(r.headers().get("user_session").is_none());
        }
    }
}

#[tokio::test]
async fn profile_data_wechat_does_not_vouch_for_is_refused() {
    let env = Env::start(Setup::default().login(TAGS)).await;
    let before = env.app.requests();
    for (raw, sig) in [(RAW, "0000000000000000000000000000000000000000"), (RAW, "")] {
        let r = env
            .http
            .post(env.url("/login"))
            .header("js_code", format!("carol_{}", sig.len()))
            .header(
                "X-WX-Raw-Data",
                reqwest::header::HeaderValue::from_bytes(raw.as_bytes()).unwrap(),
            )
            .header("X-WX-Signature", sig)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-wxgate-error"], "WX_PROFILE_INVALID");
    }
    assert_eq!(env.app.requests(), before, "refused before the app");
    // No profile data at all: identity tags only.
    let r = env
        .http
        .post(env.url("/login"))
        .header("js_code", "dave_1")
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = r.json().await.unwrap();
    assert!(seen["headers"].get("x-wxgate-tag-nickname").is_none());
    assert!(seen["headers"].get("x-wxgate-tag-openid").is_some());
}

const TAG_PLUGIN: &str = "---
apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: { name: tags }
spec:
  type: Tag
  tag:
    rules:
    - { from: { in: path, name: id }, tag: uid }
    - { from: { in: query, name: channel }, tag: channel }
    - { from: { in: header, name: x-region }, tag: region }
    - { from: { in: cookie, name: ab }, tag: ab }
    - { from: { in: query, name: order }, tag: order, traceId: true }
---
apiVersion: wxgate.dev/v1alpha1
kind: PluginBinding
metadata: { name: tags }
spec:
  pluginRef: { name: tags }
  targetRef: { name: shop-api }
  apis: [ { path: '/users/{id}/orders', match: Template } ]
";

#[tokio::test]
async fn a_tag_plugin_reads_each_location_alongside_the_login_plugin() {
    let env = Env::start(Setup::default().login(TAGS).extra(TAG_PLUGIN)).await;
    let credential = env.login("erin_1").await;
    let r = env
        .http
        .get(env.url("/users/42/orders?channel=wx&order=A-1001"))
        .header("user_session", &credential)
        .header("x-region", "south")
        .header("cookie", "ab=b; other=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let trace_id = r.headers()["x-wxgate-trace-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen: serde_json::Value = r.json().await.unwrap();
    let h = &seen["headers"];
    for (tag, value) in [
        ("uid", "42"),
        ("channel", "wx"),
        ("region", "south"),
        ("ab", "b"),
        ("order", "A-1001"),
    ] {
        assert_eq!(h[format!("x-wxgate-tag-{tag}")], value, "{tag}");
    }
    assert_eq!(
        h["x-wxgate-tag-openid"],
        wechat::openid(APPID, "erin").as_str(),
        "both plugins apply"
    );
    let traceparent = h["traceparent"].as_str().unwrap();
    assert_eq!(
        wxgate_sidecar::tags::parse_traceparent(traceparent)
            .unwrap()
            .0,
        trace_id,
        "a traceparent was created"
    );
    let baggage = h["baggage"].as_str().unwrap();
    assert!(
        baggage.contains("uid=42")
            && baggage.contains("order=A-1001")
            && baggage.contains("openid="),
        "{baggage}"
    );

    // Outside the Tag binding's API: no custom tags, no trace id.
    let r = env
        .http
        .get(env.url("/orders?channel=wx"))
        .header("user_session", &credential)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-wxgate-trace-id").is_none());
    let seen: serde_json::Value = r.json().await.unwrap();
    assert!(seen["headers"].get("x-wxgate-tag-channel").is_none());
}

#[tokio::test]
async fn a_valid_traceparent_is_kept_and_an_invalid_one_replaced() {
    let env = Env::start(Setup::default().login(TAGS).extra(TAG_PLUGIN)).await;
    let credential = env.login("fay_1").await;
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (incoming, kept) in [
        (valid, true),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            false,
        ),
        ("garbage", false),
    ] {
        let r = env
            .http
            .get(env.url("/users/7/orders?order=B-2"))
            .header("user_session", &credential)
            .header("traceparent", incoming)
            .send()
            .await
            .unwrap();
        let trace_id = r.headers()["x-wxgate-trace-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let seen: serde_json::Value = r.json().await.unwrap();
        let forwarded = seen["headers"]["traceparent"].as_str().unwrap().to_owned();
        assert_eq!(forwarded == incoming, kept, "{incoming}");
        assert_eq!(
            wxgate_sidecar::tags::parse_traceparent(&forwarded)
                .unwrap()
                .0,
            trace_id
        );
        if kept {
            assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        }
    }
}
