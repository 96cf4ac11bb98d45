//! The sidecar's in-cluster sources against the real API server: ConfigMap `wxgate-<service>`
//! by watch, Secret from a folder. An update takes effect in seconds; a deleted ConfigMap keeps
//! the last good config.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use wxgate_crds::manifests;
use wxgate_crds::render::{CONFIG_ENTRY, SECRET_ENTRY, ServiceRef, render, rendered_object_name};
use wxgate_e2e::*;

fn rendered(namespace: &str, ttl: u32) -> (String, String) {
    let dir = repo_root().join("examples/quickstart");
    let mut objects = manifests::Objects::default();
    for f in ["plugin.yaml", "binding.yaml", "secret.yaml"] {
        let text = std::fs::read_to_string(dir.join(f))
            .unwrap()
            .replace("ttlMinutes: 120", &format!("ttlMinutes: {ttl}"));
        objects.extend(manifests::parse(&text).unwrap());
    }
    for o in objects
        .plugins
        .iter_mut()
        .map(|p| &mut p.metadata)
        .chain(objects.bindings.iter_mut().map(|b| &mut b.metadata))
    {
        o.namespace = Some(namespace.to_owned());
    }
    for s in &mut objects.secrets {
        s.metadata.namespace = Some(namespace.to_owned());
    }
    let mut ring = Secret::default();
    ring.metadata.name = Some("mp-login-credential-keys".into());
    ring.metadata.namespace = Some(namespace.to_owned());
    ring.data = Some(
        [
            ("active".into(), ByteString(b"0a0b0c0d".to_vec())),
            ("0a0b0c0d".into(), ByteString(vec![3; 32])),
        ]
        .into(),
    );
    objects.secrets.push(ring);
    let r = render(&ServiceRef::new(namespace, "shop-api"), objects.inputs()).unwrap();
    (
        serde_json::to_string(&r.config).unwrap(),
        serde_json::to_string(&r.secret).unwrap(),
    )
}

async fn apply_configmap(ns: &TestNamespace, config: &str) {
    let name = rendered_object_name("shop-api");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {CONFIG_ENTRY: config}
    }))
    .unwrap();
    ns.typed::<ConfigMap>()
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn configmap_updates_take_effect_in_seconds_and_a_deleted_one_keeps_the_last_good_config() {
    let client = client().await;
    let ns = TestNamespace::new(&client).await;
    let (config, secret) = rendered(&ns.name, 120);
    apply_configmap(&ns, &config).await;
    let secret_dir = tempfile::tempdir().unwrap();
    std::fs::write(secret_dir.path().join(SECRET_ENTRY), &secret).unwrap();

    let sidecar = cluster_sidecar(&ns.name, &kubeconfig().await, secret_dir.path()).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", sidecar.traffic);
    let r = http
        .post(format!("{base}/login"))
        .header("js_code", "alice_1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let credential = r.headers()["user_session"].to_str().unwrap().to_owned();
    let r = http
        .get(format!("{base}/orders"))
        .header("user_session", &credential)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An update: in effect within seconds.
    let before = sidecar.active.version();
    let (updated, _) = rendered(&ns.name, 60);
    let started = Instant::now();
    apply_configmap(&ns, &updated).await;
    within(Duration::from_secs(10), async {
        while sidecar.active.version() == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let took = started.elapsed();
    println!("ConfigMap apply -> in effect: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Deleted: the last good config stays.
    let after = sidecar.active.version();
    ns.typed::<ConfigMap>()
        .delete(&rendered_object_name("shop-api"), &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sidecar.active.version(), after);
    let r = http
        .get(format!("{base}/orders"))
        .header("user_session", &credential)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sidecar.stop().await;
}
