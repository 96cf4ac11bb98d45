//! The example manifests the README points to parse with the real types and render.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use wxgate_crds::manifests;
use wxgate_crds::render::{RenderedPlugin, ServiceRef, render};

fn read_dir(dir: &str) -> manifests::Objects {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir);
    let mut objects = manifests::Objects::default();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(&path).unwrap();
        objects
            .extend(manifests::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    }
    objects
}

/// A key ring Secret (what the operator or the standalone sidecar supplies).
fn key_ring(name: &str) -> Secret {
    let mut ring = Secret::default();
    ring.metadata.name = Some(name.into());
    ring.data = Some(
        [
            ("active".to_owned(), ByteString(b"a1b2c3d4".to_vec())),
            ("a1b2c3d4".to_owned(), ByteString(vec![9; 32])),
        ]
        .into(),
    );
    ring
}

#[test]
fn quickstart_examples_render_once_a_key_ring_exists() {
    let mut objects = read_dir("examples/quickstart");
    assert_eq!(
        (
            objects.plugins.len(),
            objects.bindings.len(),
            objects.secrets.len()
        ),
        (2, 2, 1)
    );
    let service = ServiceRef::new("default", "shop-api");

    // Without a key ring (the operator or the standalone sidecar supplies one) render says so.
    let problems = render(&service, objects.inputs()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].reason.as_str(), "CredentialKeysNotFound");

    objects.secrets.push(key_ring("mp-login-credential-keys"));
    let rendered = render(&service, objects.inputs()).unwrap();
    let RenderedPlugin::WeChatMpLogin(login) = &rendered.config.plugins["default/mp-login"] else {
        panic!("login plugin expected")
    };
    assert_eq!(
        login.login_paths.as_deref(),
        Some(&["/login".to_owned()][..])
    );
    assert_eq!(login.session.renew_before_minutes, Some(30));
    assert_eq!(
        rendered.secret.plugins["default/mp-login"].app_id,
        "wx0123456789abcdef"
    );
}

#[test]
fn the_two_app_example_renders_both_mini_programs() {
    let mut objects = read_dir("examples/two-apps");
    objects.secrets.push(key_ring("mp-apps-credential-keys"));
    let rendered = render(&ServiceRef::new("default", "shop-api"), objects.inputs()).unwrap();
    let secret = &rendered.secret.plugins["default/mp-apps"];
    let apps: Vec<&str> = secret.apps().map(|(id, _)| id).collect();
    assert_eq!(apps, ["wx0123456789abcdef", "wx00000000000000bb"]);
    let RenderedPlugin::WeChatMpLogin(login) = &rendered.config.plugins["default/mp-apps"] else {
        panic!("login plugin expected")
    };
    assert_eq!(login.app_id_param.as_ref().unwrap().name, "x-mp-appid");

    // One Secret missing: the problem names it, and nothing renders.
    objects
        .secrets
        .retain(|s| s.metadata.name.as_deref() != Some("shop-lite-wechat"));
    let problems = render(&ServiceRef::new("default", "shop-api"), objects.inputs()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("shop-lite-wechat"),
        "{problems:?}"
    );
    assert_eq!(problems[0].field, "spec.wechatMpLogin.apps");
}

#[test]
fn manifest_errors_never_echo_secret_values() {
    let bad = "apiVersion: v1\nkind: Secret\nmetadata: { name: s }\ndata: { appsecret: [CANARY-VALUE] }\n";
    let err = manifests::parse(bad).unwrap_err().to_string();
    assert!(!err.contains("CANARY"), "{err}");
    let broken = "apiVersion: v1\nkind: Secret\nstringData: { appsecret: CANARY-VALUE\n";
    let err = manifests::parse(broken).unwrap_err().to_string();
    assert!(!err.contains("CANARY"), "{err}");
}

#[test]
fn other_kinds_are_skipped_and_unknown_wxgate_kinds_refused() {
    let docs = "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\n";
    let objects = manifests::parse(docs).unwrap();
    assert!(objects.plugins.is_empty() && objects.secrets.is_empty());
    let err = manifests::parse("apiVersion: wxgate.dev/v1alpha1\nkind: Gateway\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "document 0: unknown wxgate kind \"Gateway\""
    );
}
