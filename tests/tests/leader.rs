//! Two operator replicas with leader election: one holds the Lease and reconciles; when it
//! stops, the other takes over within the lease duration.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use wxgate_e2e::*;

const OBJECTS: &str = "apiVersion: v1\nkind: Service\nmetadata: { name: NAME }\nspec: { selector: { app: shop }, ports: [ { port: 80, targetPort: http } ] }\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: shop-wechat }\nstringData: { appsecret: x }\n---\napiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: { name: mp-login }\nspec: { type: WeChatMpLogin, wechatMpLogin: { appId: wx0123456789abcdef, credentialsSecretRef: { name: shop-wechat } } }\n---\napiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: NAME }\nspec: { pluginRef: { name: mp-login }, targetRef: { name: NAME } }\n";

async fn programmed(ns: &TestNamespace, service: &str, limit: Duration) {
    ns.apply_yaml(&OBJECTS.replace("NAME", service), MANAGER)
        .await
        .unwrap();
    let name = format!("wxgate-{service}");
    eventually(limit, &format!("ConfigMap {name}"), || async {
        ns.typed::<ConfigMap>()
            .get_opt(&name)
            .await
            .unwrap()
            .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn one_replica_leads_and_the_other_takes_over() {
    let client = client().await;
    install_crds(&client).await;
    let home = TestNamespace::new(&client).await;
    let leader = ["--leader-elect", "true", "--namespace", home.name.as_str()];
    let (_, stop_a) = spawn_operator(&[&leader[..], &["--identity", "replica-a"]].concat()).await;
    let lease = eventually(Duration::from_secs(30), "a leader", || async {
        let l = home
            .typed::<Lease>()
            .get_opt("wxgate-operator")
            .await
            .unwrap()?;
        l.spec?.holder_identity
    })
    .await;
    assert_eq!(lease, "replica-a");
    let (_, stop_b) = spawn_operator(&[&leader[..], &["--identity", "replica-b"]].concat()).await;

    let work = TestNamespace::new(&client).await;
    programmed(&work, "first", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let holder = home
        .typed::<Lease>()
        .get("wxgate-operator")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity
        .unwrap();
    assert_eq!(holder, "replica-a", "the leader keeps its Lease");

    drop(stop_a);
    let started = Instant::now();
    eventually(Duration::from_secs(40), "replica-b leading", || async {
        let l = home.typed::<Lease>().get("wxgate-operator").await.unwrap();
        (l.spec?.holder_identity.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    println!("leader failover took {:?}", started.elapsed());
    programmed(&work, "second", Duration::from_secs(20)).await;
    drop(stop_b);
}
