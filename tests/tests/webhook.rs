//! Sidecar injection through the real admission chain: the operator's webhook registered by URL
//! (loopback, CA bundle), Pods created in an opted-in namespace come back injected, others not.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use wxgate_crds::PluginBinding;
use wxgate_e2e::*;

struct Hook {
    addr: std::net::SocketAddr,
    ca: String,
    run: String,
}

/// An operator with the webhook on its own thread, and its registration, scoped to namespaces
/// labelled for this run.
async fn start() -> Hook {
    let client = client().await;
    install_crds(&client).await;
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    let (addr, stop) = spawn_operator(&[
        "--webhook-listen",
        "127.0.0.1:0",
        "--webhook-cert-dir",
        dir.to_str().unwrap(),
        "--sidecar-image",
        "wxgate/wxgate-sidecar:e2e",
    ])
    .await;
    std::mem::forget(stop);
    let addr = addr.unwrap();
    let run = format!("{:08x}", rand::random::<u32>());
    let ca = base64::engine::general_purpose::STANDARD.encode(cert.cert.pem());
    let config: MutatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("wxgate-e2e-{run}")},
        "webhooks": [{
            "name": "inject.wxgate.dev",
            "clientConfig": {"url": format!("https://{addr}/inject"), "caBundle": ca},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"wxgate.dev/injection": "enabled", "wxgate-e2e-run": run}},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 5
        }]
    }))
    .unwrap();
    Api::<MutatingWebhookConfiguration>::all(client)
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
    Hook {
        addr,
        ca: cert.cert.pem(),
        run,
    }
}

const SETUP: &str = "apiVersion: v1\nkind: Service\nmetadata: { name: shop-api }\nspec: { selector: { app: shop }, ports: [ { port: 80, targetPort: http } ] }\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: shop-wechat }\nstringData: { appsecret: x }\n---\napiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: { name: mp-login }\nspec: { type: WeChatMpLogin, wechatMpLogin: { appId: wx0123456789abcdef, credentialsSecretRef: { name: shop-wechat } } }\n---\napiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: shop }\nspec: { pluginRef: { name: mp-login }, targetRef: { name: shop-api } }\n";

fn pod(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{ name: {name}, labels: {{ app: shop }}{annotations} }}\nspec:\n  containers:\n  - name: app\n    image: shop:1\n    ports: [ {{ name: http, containerPort: 8080 }} ]\n    readinessProbe: {{ httpGet: {{ path: /healthz, port: http }} }}\n"
    )
}

async fn create_pod(ns: &TestNamespace, yaml: &str) -> Pod {
    let pod: Pod = serde_saphyr::from_str(yaml).unwrap();
    ns.typed::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap()
}

fn containers(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

/// An opted-in namespace with the shop Service bound, once the webhook knows the binding.
async fn bound_namespace(hook: &Hook) -> TestNamespace {
    let client = client().await;
    let ns = TestNamespace::new(&client).await;
    ns.label("wxgate.dev/injection", "enabled").await;
    ns.label("wxgate-e2e-run", &hook.run).await;
    ns.apply_yaml(SETUP, MANAGER).await.unwrap();
    eventually(Duration::from_secs(20), "binding programmed", || async {
        let b = ns.typed::<PluginBinding>().get("shop").await.unwrap();
        b.status
            .filter(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Programmed" && c.status == "True")
            })
            .map(|_| ())
    })
    .await;
    ns
}

#[tokio::test]
async fn pods_in_opted_in_namespaces_are_injected_and_others_are_not() {
    let hook = start().await;
    let client = client().await;
    let ns = bound_namespace(&hook).await;

    let injected = create_pod(&ns, &pod("shop-1", "")).await;
    assert_eq!(containers(&injected), ["app", "wxgate-sidecar"]);
    let spec = injected.spec.as_ref().unwrap();
    let app = &spec.containers[0];
    assert_eq!(
        app.ports.as_ref().unwrap()[0].name.as_deref(),
        Some("wxgate-app")
    );
    let sidecar = &spec.containers[1];
    assert_eq!(sidecar.image.as_deref(), Some("wxgate/wxgate-sidecar:e2e"));
    assert_eq!(
        sidecar.ports.as_ref().unwrap()[0].name.as_deref(),
        Some("http"),
        "the Service's named targetPort now reaches the sidecar"
    );
    let args = sidecar.args.clone().unwrap().join(" ");
    assert!(
        args.contains("--service shop-api") && args.contains("--upstream http://127.0.0.1:8080"),
        "{args}"
    );
    let volumes: Vec<_> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .collect();
    assert!(
        volumes.contains(&"wxgate-secret".to_owned())
            && volumes.contains(&"wxgate-token".to_owned()),
        "{volumes:?}"
    );
    assert_eq!(
        injected.metadata.annotations.unwrap()["wxgate.dev/injected"],
        "shop-api"
    );

    let opted_out = create_pod(
        &ns,
        &pod("shop-2", ", annotations: { wxgate.dev/inject: \"false\" }"),
    )
    .await;
    assert_eq!(containers(&opted_out), ["app"]);

    // Same objects in a namespace that did not opt in: untouched.
    let other = TestNamespace::new(&client).await;
    other.apply_yaml(SETUP, MANAGER).await.unwrap();
    let plain = create_pod(&other, &pod("shop-1", "")).await;
    assert_eq!(containers(&plain), ["app"]);

    // The webhook refuses malformed requests without falling over, and keeps serving.
    let ca = reqwest::Certificate::from_pem(hook.ca.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let url = format!("https://{}/inject", hook.addr);
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            http.post(&url)
                .header("content-type", "application/json")
                .body("\u{1}\u{2}garbage")
                .send()
                .await
                .unwrap()
        ),
        400
    );
    assert_eq!(
        status(
            http.post(&url)
                .header("content-type", "application/json")
                .body("")
                .send()
                .await
                .unwrap()
        ),
        400
    );
    assert_eq!(
        status(
            http.post(&url)
                .header("content-type", "text/plain")
                .body("{}")
                .send()
                .await
                .unwrap()
        ),
        415
    );
    assert_eq!(status(http.get(&url).send().await.unwrap()), 405);
    let again = create_pod(&ns, &pod("shop-3", "")).await;
    assert_eq!(containers(&again), ["app", "wxgate-sidecar"]);
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
async fn closed_by_server(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    within: Duration,
) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn idle_connections_neither_block_admissions_nor_stay_open() {
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls;
    let hook = start().await;
    let ns = bound_namespace(&hook).await;
    // 150 connections that never start TLS, 150 that finish the handshake and send nothing,
    // and 150 that stop half way through a request head.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(hook.ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut plain = Vec::new();
    let mut silent = Vec::new();
    let mut partial = Vec::new();
    for _ in 0..150 {
        plain.push(tokio::net::TcpStream::connect(hook.addr).await.unwrap());
        let tcp = tokio::net::TcpStream::connect(hook.addr).await.unwrap();
        silent.push(connector.connect(name.clone(), tcp).await.unwrap());
        let tcp = tokio::net::TcpStream::connect(hook.addr).await.unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        tls.write_all(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: app")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        partial.push(tls);
    }
    // While they are held, the API server's admission calls get through (the webhook is
    // registered with failurePolicy Fail and a 5 s timeout: a stuck webhook fails the create).
    for i in 0..3 {
        let pod = create_pod(&ns, &pod(&format!("held-{i}"), "")).await;
        assert_eq!(containers(&pod), ["app", "wxgate-sidecar"]);
    }
    // And the webhook lets none of them stay: the handshake within 5 s, a head within 10 s.
    for stream in &mut plain {
        assert!(
            closed_by_server(stream, Duration::from_secs(12)).await,
            "no handshake"
        );
    }
    for stream in &mut silent {
        assert!(
            closed_by_server(stream, Duration::from_secs(15)).await,
            "no request"
        );
    }
    for stream in &mut partial {
        assert!(
            closed_by_server(stream, Duration::from_secs(15)).await,
            "half a head"
        );
    }
    let after = create_pod(&ns, &pod("after", "")).await;
    assert_eq!(containers(&after), ["app", "wxgate-sidecar"]);
}
