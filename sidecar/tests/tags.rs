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

/// A 200 answer's `x-wxgate-trace-id`, and the echo of what the app received.
async fn traced(r: reqwest::Response) -> (String, serde_json::Value) {
    assert_eq!(r.status(), 200);
    let trace_id = r.headers()["x-wxgate-trace-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (trace_id, r.json().await.unwrap())
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
    let (trace_id, seen) = traced(r).await;
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
        wxgate_sidecar::trace::parse_traceparent(traceparent)
            .unwrap()
            .trace_id,
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
async fn the_tag_cap_counts_the_login_tags_a_request_carries() {
    // 7 WeChat fields configured; a credential without profile data carries at most 4 of them.
    let rules: String = (0..13)
        .map(|i| format!("    - {{ from: {{ in: header, name: x-t{i} }}, tag: t{i} }}\n"))
        .collect();
    let plugin = format!(
        "---\napiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: {{ name: many }}\nspec:\n  type: Tag\n  tag:\n    rules:\n{rules}---\napiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: {{ name: many }}\nspec:\n  pluginRef: {{ name: many }}\n  targetRef: {{ name: shop-api }}\n"
    );
    let env = Env::start(Setup::default().login(TAGS).extra(&plugin)).await;
    let credential = env.login("fay_1").await;
    let mut req = env
        .http
        .get(env.url("/orders"))
        .header("user_session", &credential)
        .header("baggage", "first=1")
        .header("baggage", "second=2");
    for i in 0..13 {
        req = req.header(format!("x-t{i}"), "v");
    }
    let seen: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    let h = seen["headers"].as_object().unwrap();
    let tags: Vec<&String> = h
        .keys()
        .filter(|k| k.starts_with("x-wxgate-tag-"))
        .collect();
    let wechat = ["appid", "openid", "unionid", "bucket"]
        .iter()
        .filter(|t| h.contains_key(&format!("x-wxgate-tag-{t}")))
        .count();
    assert!((3..=4).contains(&wechat), "{tags:?}");
    assert_eq!(tags.len(), 16, "{tags:?}");
    let custom = (0..13)
        .filter(|i| h.contains_key(&format!("x-wxgate-tag-t{i}")))
        .count();
    assert_eq!(
        custom,
        16 - wechat,
        "the custom tags fill what the login tags leave"
    );
    let baggage = h["baggage"].as_str().unwrap();
    assert!(
        baggage.contains("first=1") && baggage.contains("second=2"),
        "{baggage}"
    );
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
        let (trace_id, seen) = traced(r).await;
        let forwarded = seen["headers"]["traceparent"].as_str().unwrap().to_owned();
        assert_eq!(forwarded == incoming, kept, "{incoming}");
        assert_eq!(
            wxgate_sidecar::trace::parse_traceparent(&forwarded)
                .unwrap()
                .trace_id,
            trace_id
        );
        if kept {
            assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        }
    }
}

/// An OTLP/HTTP receiver on loopback keeping every span it is sent.
async fn otlp_receiver() -> (
    String,
    std::sync::Arc<
        std::sync::Mutex<
            Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
        >,
    >,
) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&got);
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: http::HeaderMap, body: bytes::Bytes| {
            let keep = std::sync::Arc::clone(&keep);
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                keep.lock()
                    .unwrap()
                    .push(ExportTraceServiceRequest::decode(body).unwrap());
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), router)
        .await
        .unwrap();
    (format!("http://{addr}"), got)
}

#[tokio::test]
async fn traced_requests_export_a_span_with_their_tags_and_the_app_sees_it_as_parent() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let (endpoint, received) = otlp_receiver().await;
    let env = Env::start(
        Setup::default()
            .login(TAGS)
            .extra(TAG_PLUGIN)
            .arg("--otlp-endpoint", &endpoint),
    )
    .await;
    let credential = env.login("gus_1").await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut forwarded = Vec::new();
    for traceparent in [
        Some(incoming),
        None,
        Some("00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
    ] {
        let mut req = env
            .http
            .get(env.url("/users/42/orders?order=C-3&code=CANARY-not-a-tag"))
            .header("user_session", &credential);
        if let Some(t) = traceparent {
            req = req
                .header("traceparent", t)
                .header("tracestate", "vendor=1");
        }
        let r = req.send().await.unwrap();
        let (trace_id, seen) = traced(r).await;
        let sent = seen["headers"]["traceparent"].as_str().unwrap().to_owned();
        let parsed = wxgate_sidecar::trace::parse_traceparent(&sent).unwrap();
        assert_eq!(parsed.trace_id, trace_id);
        forwarded.push((sent.clone(), seen["headers"].get("tracestate").cloned()));
    }
    // The incoming trace is continued, with the sidecar's span as the app's parent.
    let (kept, state) = &forwarded[0];
    assert!(kept.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && kept.ends_with("-01"));
    assert_ne!(kept, incoming);
    assert_eq!(
        state.as_ref().unwrap(),
        "vendor=1",
        "tracestate travels with its trace"
    );
    // An unsampled incoming trace stays unsampled and exports nothing.
    assert!(
        forwarded[2]
            .0
            .starts_with("00-5bf92f3577b34da6a3ce929d0e0e4736-")
            && forwarded[2].0.ends_with("-00")
    );

    let Env { sidecar, .. } = env;
    sidecar.stop().await; // flushes what is batched
    let requests = received.lock().unwrap().clone();
    let resource_spans: Vec<_> = requests.iter().flat_map(|r| &r.resource_spans).collect();
    let spans: Vec<_> = resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    assert_eq!(spans.len(), 2, "one span per sampled traced request");
    let service = resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|a| a.key == "service.name")
        .unwrap();
    assert_eq!(
        service.value.as_ref().unwrap().value,
        Some(Value::StringValue("wxgate-sidecar".into()))
    );
    for ((sent, _), span) in forwarded.iter().zip(&spans) {
        let parsed = wxgate_sidecar::trace::parse_traceparent(sent).unwrap();
        assert_eq!(hex::encode(&span.trace_id), parsed.trace_id);
        assert_eq!(
            hex::encode(&span.span_id),
            parsed.span_id,
            "the app's parent is the sidecar's span"
        );
        assert_eq!(span.name, "GET /users/{id}/orders");
        assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
        let attr = |key: &str| {
            span.attributes
                .iter()
                .find(|a| a.key == key)
                .and_then(|a| a.value.clone()?.value)
        };
        let text = |v: &str| Some(Value::StringValue(v.into()));
        assert_eq!(attr("wxgate.tag.uid"), text("42"));
        assert_eq!(attr("wxgate.tag.order"), text("C-3"));
        assert_eq!(
            attr("wxgate.tag.openid"),
            text(&wechat::openid(APPID, "gus"))
        );
        assert_eq!(attr("http.route"), text("/users/{id}/orders"));
        assert_eq!(attr("url.path"), text("/users/42/orders"));
        assert_eq!(attr("wxgate.route"), text("verify"));
        assert_eq!(
            attr("http.response.status_code"),
            Some(Value::IntValue(200))
        );
        let dump = format!("{span:?}");
        for secret in [
            credential.as_str(),
            "CANARY",
            "gus_1",
            &wechat::session_key(APPID, "gus_1"),
        ] {
            assert!(!dump.contains(secret), "a span carries {secret:?}");
        }
    }
    assert_eq!(hex::encode(&spans[0].parent_span_id), "00f067aa0ba902b7");
    assert!(
        spans[1].parent_span_id.is_empty(),
        "a new trace starts at the sidecar"
    );
}
