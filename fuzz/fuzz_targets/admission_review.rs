//! The webhook's AdmissionReview: any body, parsed and answered against one bound Service
//! (selector `app: shop-api`). An answer that patches the Pod applies cleanly and yields a Pod
//! with the sidecar; anything that is not a Pod is denied or allowed unchanged, never a panic.
#![no_main]

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{Pod, Service};
use libfuzzer_sys::fuzz_target;
use wxgate_operator::webhook::inject::CONTAINER;
use wxgate_operator::webhook::{Settings, parse_review, pod_of, respond};

static BOUND: LazyLock<Vec<Service>> = LazyLock::new(|| {
    vec![
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "shop-api", "namespace": "shop" },
            "spec": {
                "selector": { "app": "shop-api" },
                "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }]
            }
        }))
        .expect("a Service"),
    ]
});

static SETTINGS: LazyLock<Settings> = LazyLock::new(|| Settings {
    image: "wxgate/wxgate-sidecar:fuzz".into(),
    cpu_request: "10m".into(),
    memory_request: "16Mi".into(),
    memory_limit: "64Mi".into(),
    otlp_endpoint: None,
    wechat_api_base: None,
    qq_api_base: None,
    shutdown_delay_seconds: 5,
    open_api_port: Some(15081),
    credential_cache: 4096,
    own_namespace: "wxgate-system".into(),
});

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_review(data) else {
        return;
    };
    let Ok(Some(pod)) = pod_of(&request) else {
        return;
    };
    let response = respond(&request, &pod, &BOUND, &SETTINGS);
    let Some(patch) = response.patch else { return };
    assert!(response.allowed);
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("the patch is JSON Patch");
    let mut doc = serde_json::to_value(&pod).expect("a Pod serializes");
    json_patch::patch(&mut doc, &patch).expect("the patch applies to the Pod it was made for");
    let injected: Pod = serde_json::from_value(doc).expect("the patched Pod is a Pod");
    let spec = injected.spec.expect("an injected Pod has a spec");
    assert!(spec.containers.iter().any(|c| c.name == CONTAINER));
});
