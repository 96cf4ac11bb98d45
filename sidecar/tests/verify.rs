//! Credential verification on bound requests, and routes the binding does not cover.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use wxgate_crds::keys::{CredentialKey, KeyRing, Kid};
use wxgate_sidecar::credential::Sealer;
use wxgate_sim::wechat;

async fn refused(env: &Env, credential: Option<&str>) -> (u16, String) {
    let before = env.app.requests();
    let mut b = env.http.get(env.url("/orders"));
    if let Some(c) = credential {
        b = b.header("user_session", c);
    }
    let r = b.send().await.unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        env.app.requests(),
        before,
        "a refused request never reaches the app"
    );
    assert_eq!(body["relogin"], true);
    (status, body["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn missing_invalid_tampered_and_expired_credentials_are_refused() {
    let env = Env::start(Setup::default()).await;
    assert_eq!(refused(&env, None).await, (401, "LOGIN_REQUIRED".into()));
    assert_eq!(
        refused(&env, Some("garbage")).await,
        (401, "LOGIN_INVALID".into())
    );
    let good = env.login("alice_1").await;
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        refused(&env, Some(std::str::from_utf8(&tampered).unwrap())).await,
        (401, "LOGIN_INVALID".into())
    );

    let now = now();
    let expired = sealer().seal(&claims("oAlice", now - 7200, now - 61));
    assert_eq!(
        refused(&env, Some(&expired)).await,
        (401, "LOGIN_EXPIRED".into())
    );
    let within_skew = sealer().seal(&claims("oAlice", now - 7200, now - 30));
    assert_eq!(env.get_with("/orders", &within_skew).await.0, 200);
    let future = sealer().seal(&claims("oAlice", now + 300, now + 900));
    assert_eq!(
        refused(&env, Some(&future)).await,
        (401, "LOGIN_INVALID".into())
    );

    // Minted with the real key, but claims the sidecar could not forward whole: refused, never
    // passed on with part of the identity.
    for openid in ["o\r\nX-Evil: 1", "o victim", "o\u{0}", "\u{e9}", ""] {
        let bad = sealer().seal(&claims(openid, now, now + 60));
        assert_eq!(
            refused(&env, Some(&bad)).await,
            (401, "LOGIN_INVALID".into()),
            "{openid:?}"
        );
        let mut c = claims("oAlice", now, now + 60);
        c.unionid = Some(openid.into());
        let bad = sealer().seal(&c);
        assert_eq!(
            refused(&env, Some(&bad)).await,
            (401, "LOGIN_INVALID".into()),
            "{openid:?}"
        );
    }

    let other_key = KeyRing {
        active: Kid(KID),
        keys: [(Kid(KID), CredentialKey::new([8; 32]))].into(),
    };
    let forged = Sealer::new(&other_key, &[APPID], PLUGIN)
        .unwrap()
        .seal(&claims("oAlice", now, now + 60));
    assert_eq!(
        refused(&env, Some(&forged)).await,
        (401, "LOGIN_INVALID".into())
    );
    let other_plugin = Sealer::new(
        &KeyRing {
            active: Kid(KID),
            keys: [(Kid(KID), CredentialKey::new(KEY))].into(),
        },
        &[APPID],
        "default/other",
    )
    .unwrap()
    .seal(&claims("oAlice", now, now + 60));
    assert_eq!(
        refused(&env, Some(&other_plugin)).await,
        (401, "LOGIN_INVALID".into())
    );

    let r = env
        .http
        .get(env.url("/orders"))
        .header("user_session", &good)
        .header("user_session", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "two credentials are ambiguous");
    assert_eq!(env.get_with("/orders", &good).await.0, 200);
}

#[tokio::test]
async fn renewal_near_expiry_returns_a_fresh_credential() {
    let env = Env::start(Setup::default().login(
        "    login: { paths: [/login] }\n    session: { ttlMinutes: 60, renewBeforeMinutes: 10 }\n",
    ))
    .await;
    let now = now();
    let near = sealer().seal(&claims("oNear", now - 3000, now + 300));
    let (status, seen, headers) = env.get_with("/orders", &near).await;
    assert_eq!(status, 200);
    assert_eq!(seen["headers"]["x-wx-openid"], "oNear");
    let fresh = headers["user_session"].to_str().unwrap();
    let claims = sealer().open(fresh, now, None).unwrap();
    assert_eq!(claims.openid, "oNear");
    assert!(claims.exp >= now + 3590);

    let far = sealer().seal(&support::claims("oFar", now, now + 3600));
    let (_, _, headers) = env.get_with("/orders", &far).await;
    assert!(
        headers.get("user_session").is_none(),
        "no renewal outside the window"
    );
}

#[tokio::test]
async fn credential_accepted_in_the_query_is_stripped_before_the_app() {
    let env = Env::start(
        Setup::default()
            .login("    login: { paths: [/login] }\n    session: { acceptIn: query }\n"),
    )
    .await;
    let credential = env.login("bob_1").await;
    let r = env
        .http
        .get(env.url("/orders"))
        .query(&[("a", "1"), ("user_session", &credential)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["query"], "a=1");
    assert_eq!(seen["headers"]["x-wx-openid"], wechat::openid(APPID, "bob"));
}

#[tokio::test]
async fn embedded_session_key_reaches_the_app_on_every_request() {
    let env = Env::start(
        Setup::default()
            .login("    login: { paths: [/login] }\n    session: { embedSessionKey: true }\n"),
    )
    .await;
    let credential = env.login("carol_1").await;
    let (_, seen, headers) = env.get_with("/orders", &credential).await;
    assert_eq!(
        seen["headers"]["x-wx-session-key"],
        wechat::session_key(APPID, "carol_1")
    );
    assert!(headers.get("x-wx-session-key").is_none());
    assert!(
        !credential.contains(&wechat::session_key(APPID, "carol_1")),
        "encrypted inside"
    );
}

#[tokio::test]
async fn routes_outside_the_binding_pass_through_and_inside_need_a_credential() {
    let env = Env::start(Setup::default().apis(
        "  apis:\n  - { path: /login, match: Exact }\n  - { path: /orders, match: Prefix, methods: [GET, POST] }\n  - { path: '/users/{id}', match: Template }\n",
    ))
    .await;
    for (method, path, expected) in [
        ("GET", "/public", 200),
        ("GET", "/ordersx", 200),
        ("DELETE", "/orders/1", 200),
        ("GET", "/users/1/avatar", 200),
        ("GET", "/orders", 401),
        ("POST", "/orders/7", 401),
        ("GET", "/users/42", 401),
        ("GET", "/%6Frders/1", 401),
        ("GET", "/orders;x=1/1", 401),
        // An Exact or Template API covers its path with and without one trailing slash.
        ("GET", "/users/42/", 401),
        // The login path too: a login without its code is refused, as at /login.
        ("POST", "/login", 400),
        ("POST", "/login/", 400),
        ("GET", "/users/42/x/", 200),
    ] {
        let r = env
            .http
            .request(method.parse().unwrap(), env.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), expected, "{method} {path}");
    }
    let credential = env.login("dave_1").await;
    let (status, seen, _) = env.get_with("/users/42", &credential).await;
    assert_eq!(status, 200);
    let (status, _, _) = env.get_with("/users/42/", &credential).await;
    assert_eq!(status, 200);
    let r = env
        .http
        .post(env.url("/login/"))
        .header("js_code", "dave_2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a login at /login/ is a login");
    assert!(r.headers().get("user_session").is_some());
    assert_eq!(
        seen["headers"]["x-wx-openid"],
        wechat::openid(APPID, "dave")
    );
    // Paths the sidecar will not interpret are refused on every route.
    // (Raw bytes: an HTTP client library would normalize these before sending.)
    let before = env.app.requests();
    for path in [
        "/public/../orders",
        "/orders%2f1",
        "//orders",
        "/a/./b",
        "/x%00",
        "/public/..;/orders",
        "/public\\..\\orders",
    ] {
        let answer = raw(
            env.sidecar.traffic,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(
            answer.contains("x-wxgate-error: BAD_REQUEST"),
            "{path}: {answer}"
        );
    }
    assert_eq!(env.app.requests(), before);
}

#[tokio::test]
async fn key_rotation_keeps_old_credentials_valid() {
    let env = Env::start(Setup::default()).await;
    let old = env.login("erin_1").await;
    let new_kid = [0x11, 0x22, 0x33, 0x44];
    let rotated = manifests(&Setup {
        key_ring: false,
        ..Setup::default()
    }) + &key_ring_yaml(&[(KID, KEY), (new_kid, [9; 32])], new_kid);
    env.reload(&rotated).await;
    assert_eq!(
        env.get_with("/orders", &old).await.0,
        200,
        "old key still verifies"
    );
    let fresh = env.login("erin_2").await;
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&fresh[3..])
        .unwrap();
    assert_eq!(
        raw[..4],
        new_kid,
        "new credentials are signed by the new active key"
    );
    assert_eq!(env.get_with("/orders", &fresh).await.0, 200);
}

/// Verified credentials are remembered (`--credential-cache`), but never past the key ring they
/// were opened with: once a key leaves the ring, its credentials are refused on the next request.
#[tokio::test]
async fn a_key_retired_from_the_ring_refuses_its_remembered_credentials_at_once() {
    let env = Env::start(Setup::default()).await;
    let old = env.login("erin_3").await;
    for _ in 0..3 {
        assert_eq!(env.get_with("/orders", &old).await.0, 200);
    }
    let new_kid = [0x55, 0x66, 0x77, 0x88];
    let retired = manifests(&Setup {
        key_ring: false,
        ..Setup::default()
    }) + &key_ring_yaml(&[(new_kid, [9; 32])], new_kid);
    env.reload(&retired).await;
    assert_eq!(
        refused(&env, Some(&old)).await,
        (401, "LOGIN_INVALID".into())
    );
}

#[tokio::test]
async fn without_a_key_ring_the_sidecar_generates_one() {
    let env = Env::start(Setup {
        key_ring: false,
        ..Setup::default()
    })
    .await;
    let credential = env.login("frank_1").await;
    assert_eq!(env.get_with("/orders", &credential).await.0, 200);
    assert_eq!(
        refused(&env, Some(&sealer().seal(&claims("o", now(), now() + 60))))
            .await
            .1,
        "LOGIN_INVALID"
    );
}

#[tokio::test]
async fn credentials_survive_a_sidecar_restart() {
    let env = Env::start(Setup::default()).await;
    let mut credentials = Vec::new();
    for i in 0..100 {
        credentials.push(env.login(&format!("restart_{i}")).await);
    }
    let Env {
        sidecar,
        dir,
        app_addr,
        http,
        ..
    } = env;
    sidecar.stop().await;
    // A new process: nothing in memory, the same key ring Secret.
    let again = start_sidecar(
        dir.path(),
        &format!("http://{app_addr}"),
        "http://127.0.0.1:1",
        &[],
    )
    .await;
    for _ in 0..200 {
        if again.active.is_ready() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for credential in &credentials {
        let r = http
            .get(format!("http://{}/orders", again.traffic))
            .header("user_session", credential)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}
