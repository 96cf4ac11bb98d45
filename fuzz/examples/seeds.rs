//! Writes the seed corpora under `fuzz/seeds/<target>/` (committed; rerun after changing a
//! fixture: `cargo +nightly run --manifest-path fuzz/Cargo.toml --example seeds`).

use std::path::Path;

use wxgate_fuzz::{APP_ID, NOW, RENDERED, SEALER, manifests_text, mint};
use wxgate_sidecar::credential::Claims;

fn with_mode(mode: u8, rest: &[u8]) -> Vec<u8> {
    let mut seed = vec![mode];
    seed.extend_from_slice(rest);
    seed
}

fn main() {
    let claims = |openid: &str, sk: Option<&str>| Claims {
        openid: openid.into(),
        unionid: Some("oU_abc-123".into()),
        appid: APP_ID.into(),
        iat: NOW - 60,
        exp: NOW + 3600,
        jti: "AAECAwQFBgcICQoLDA0ODw".into(),
        tags: Some([("bucket".to_owned(), "7".to_owned())].into()),
        sk: sk.map(wxgate_crds::secret::SecretString::new),
        phone: None,
    };
    let claims_json = serde_json::to_vec(&claims("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", None)).unwrap();
    let sealed = SEALER.seal(&claims(
        "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
        Some("tiihtNczf5v6AKRyjwEUhQ=="),
    ));
    assert!(SEALER.open(&sealed, NOW, None).is_ok());
    let _ = mint(&claims_json);
    let review = |namespace: &str, object: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0f3c2a1e-1111-2222-3333-444455556666",
                "kind": { "group": "", "version": "v1", "kind": "Pod" },
                "resource": { "group": "", "version": "v1", "resource": "pods" },
                "requestKind": { "group": "", "version": "v1", "kind": "Pod" },
                "requestResource": { "group": "", "version": "v1", "resource": "pods" },
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": { "username": "system:serviceaccount:kube-system:replicaset-controller" },
                "object": object,
                "dryRun": false
            }
        }))
        .unwrap()
    };
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "generateName": "shop-api-7d9f-", "namespace": "shop", "labels": { "app": "shop-api" } },
        "spec": { "containers": [{
            "name": "app",
            "image": "shop/api:1",
            "ports": [{ "name": "http", "containerPort": 8080 }],
            "readinessProbe": { "httpGet": { "path": "/healthz", "port": "http" } }
        }] }
    });
    let seeds: Vec<(&str, &str, Vec<u8>)> = vec![
        ("credential_open", "sealed", with_mode(0, sealed.as_bytes())),
        ("credential_open", "garbage", with_mode(0, b"v1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd")),
        ("credential_open", "claims", with_mode(1, &claims_json)),
        ("credential_open", "claims-crlf", with_mode(1, br#"{"openid":"o\r\nX-WX-OPENID: victim","appid":"wx0123456789abcdef","iat":1799999940,"exp":1800003600,"jti":"j"}"#)),
        ("wechat_answer", "ok", with_mode(0, br#"{"openid":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}"#)),
        ("wechat_answer", "errcode", with_mode(0, br#"{"errcode":40029,"errmsg":"invalid code, rid: 6591a2b3-1c2d3e4f-5a6b7c8d"}"#)),
        ("wechat_answer", "busy", with_mode(0, br#"{"errcode":-1,"errmsg":"system error"}"#)),
        ("wechat_answer", "zero", with_mode(0, br#"{"errcode":0,"errmsg":"ok","openid":"oX","session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}"#)),
        ("wechat_answer", "token", with_mode(1, br#"{"access_token":"ACCESS_TOKEN_abc-123","expires_in":7200}"#)),
        ("wechat_answer", "token-errcode", with_mode(1, br#"{"errcode":40164,"errmsg":"invalid ip 1.2.3.4, not in whitelist"}"#)),
        ("wechat_answer", "phone", with_mode(2, br#"{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1637744274,"appid":"wx0123456789abcdef"}}}"#)),
        ("wechat_answer", "phone-crlf", with_mode(2, br#"{"errcode":0,"phone_info":{"purePhoneNumber":"138\r\nX: 1","countryCode":"86","watermark":{"appid":"wx0123456789abcdef"}}}"#)),
        ("login_body", "json", with_mode(0, br#"{"code":"0a3Bc9ll2J8Wdf4Kq11Ull2Zm31Bc9lS","nickName":"n"}"#)),
        ("login_body", "form", with_mode(1, b"code=0a3Bc9ll2J8Wdf4Kq11Ull2Zm31Bc9lS&from=share&x=%20y")),
        ("profile", "raw", with_mode(0, br#"{"nickName":"Band","gender":1,"city":"Guangzhou","province":"Guangdong","country":"CN"}"#)),
        ("profile", "encrypted", with_mode(1, br#"{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","watermark":{"timestamp":1477314187,"appid":"wx0123456789abcdef"}}"#)),
        ("profile", "strings", with_mode(2, b"{\"a\":1}\x00da39a3ee5e6b4b0d3255bfef95601890afd80709\x00MDEyMzQ1Njc4OWFiY2RlZg==")),
        ("profile", "strings-encrypted", with_mode(3, b"CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZM\x00r7BXXKkLb8qrSNn05n0qiA==\x00MDEyMzQ1Njc4OWFiY2RlZg==")),
        ("manifests", "quickstart", manifests_text().into_bytes()),
        ("rendered_config", "quickstart", serde_json::to_vec(&RENDERED.config).unwrap()),
        ("admission_review", "pod", review("shop", pod.clone())),
        ("admission_review", "other-namespace", review("kube-system", pod)),
        ("admission_review", "not-a-pod", review("shop", serde_json::json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "x" } }))),
        ("request_head", "login", b"POST /login?js_code=a&x_wxgate_tag_openid=o-victim&X-WX-OPENID=o HTTP/1.1\r\nHost: shop.example:8080\r\nJs-Code: 0a3Bc9ll2J8Wdf4Kq11Ull2Zm31Bc9lS\r\nCookie: user_session=v1.AAAA; theme=dark\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nx_wxgate_tag_openid: o-victim\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("request_head", "verify", b"GET /users/42/orders/7/;x=y/%41%2f HTTP/1.1\r\nHost: x\r\nUser-Session: v1.AAAA\r\nX-WX-OPENID: forged\r\nX_WX_UNIONID: forged\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec()),
        ("request_head", "http10", b"GET * HTTP/1.0\nConnection: host, content-length\nhost: user@evil.example\n\n".to_vec()),
        ("framing", "pipelined", b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer-Field: 1\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("framing", "bare-lf", b"GET /a HTTP/1.1\nHost: x\n\nPOST /b HTTP/1.1\nHost: x\nContent-Length: 4\nTransfer-Encoding: chunked\n\n0\r\n\r\n".to_vec()),
        ("framing", "empty-lines", b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhiGET /b?q HTTP/1.0\r\n\r\n".to_vec()),
        ("app_response", "length", with_mode(0, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-WX-OPENID: o\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\n")),
        ("app_response", "chunked", with_mode(0, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=\"a\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")),
        ("app_response", "close", with_mode(0, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")),
        ("app_response", "head", with_mode(1, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")),
        // Found by the fuzzer: hyper reads `chunked,` as not chunked, so it must not be read as chunked.
        ("app_response", "chunked-comma", with_mode(0, b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked,\r\n\r\n0;ext\r\n\r\nhello")),
        ("app_response", "both-lengths", with_mode(0, b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, name, bytes) in seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
