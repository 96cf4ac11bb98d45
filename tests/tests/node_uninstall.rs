//! `helm uninstall wxgate` on a real node, after the other node tests (the test command runs
//! this binary last): running app pods keep serving with their last config, and new pods are
//! not injected (the webhook is gone). Needs `tests/kube-node/start.sh`; see `tests/node.rs`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use wxgate_e2e::node::*;
use wxgate_e2e::*;

#[tokio::test]
#[ignore = "needs a real node (tests/kube-node/start.sh); the test command runs it"]
async fn after_helm_uninstall_running_pods_keep_serving_and_new_pods_are_not_injected() {
    let (client, _) = installed().await;
    let ns = TestNamespace::new(&client).await;
    shop(&ns, 2).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", cluster_ip(&ns, "shop-api").await);
    let credential = login(&http, &base, "carol").await;

    let (ok, out, err) = helm(&["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait"]).await;
    assert!(ok, "helm uninstall: {out}\n{err}");
    let hooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    eventually(Duration::from_secs(30), "the webhook removed", || async {
        hooks
            .get_opt(&format!("{RELEASE}-inject"))
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // The running sidecars keep their last config: verification still works, and still
    // refuses a request without a credential.
    for _ in 0..20 {
        let (status, seen) = echo(
            &http,
            &format!("{base}/orders/3"),
            &[("user_session", &credential)],
        )
        .await;
        assert_eq!(status, 200, "{seen}");
        assert!(seen["headers"]["x-wx-openid"].is_string(), "{seen}");
    }
    let resp = http.get(format!("{base}/orders/3")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // A new pod is created without the sidecar.
    let deployments: Api<Deployment> = ns.typed();
    deployments
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    deployment_ready(&ns, "shop", 3).await;
    let pods = ready_pods(&ns, "app=shop").await;
    let plain: Vec<_> = pods
        .iter()
        .filter(|p| p.spec.as_ref().unwrap().containers.len() == 1)
        .collect();
    assert_eq!(plain.len(), 1, "exactly the new pod is not injected");
    assert!(
        plain[0]
            .metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("wxgate.dev/injected"))
    );
    ns.delete().await;
}
