//! The Helm charts, checked by the real helm on the real API server: lint, every documented
//! option renders, the schema refuses wrong values, the rendered objects pass the server's own
//! validation, both charts install, and the operator works under the chart's own RBAC.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use wxgate_e2e::*;

fn ok(r: (bool, String, String)) -> String {
    assert!(r.0, "{}\n{}", r.1, r.2);
    r.1
}

#[tokio::test]
async fn charts_lint_and_render_with_every_option_and_the_schema_refuses_wrong_values() {
    ok(helm(&["lint", "charts/wxgate", "charts/wxgate-crds"]).await);
    let options: &[&[&str]] = &[
        &[],
        &["--set", "webhook.certManager.enabled=true"],
        &[
            "--set",
            "webhook.certManager.enabled=true",
            "--set",
            "webhook.certManager.issuerRef.name=ca",
            "--set",
            "webhook.certManager.issuerRef.kind=ClusterIssuer",
        ],
        &[
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.serviceMonitor.labels.release=prom",
        ],
        &[
            "--set",
            "metrics.service=false",
            "--set",
            "webhook.failurePolicy=Ignore",
            "--set",
            "webhook.timeoutSeconds=3",
        ],
        &[
            "--set",
            "replicaCount=1",
            "--set",
            "operator.leaderElection=false",
            "--set",
            "operator.antiAffinity=false",
        ],
        &[
            "--set",
            "operator.image.tag=dev",
            "--set",
            "sidecar.image.repository=example/sidecar",
            "--set",
            "operator.podLabels.team=shop",
            "--set",
            "operator.nodeSelector.pool=system",
        ],
        &[
            "--set",
            "webhook.namespaceLabel=example.com/wxgate",
            "--set",
            "operator.logFormat=text",
            "--set",
            "webhook.validityDays=30",
        ],
    ];
    for extra in options {
        let args = [
            &["template", "r", "charts/wxgate", "-n", "wxgate-system"][..],
            extra,
        ]
        .concat();
        let out = ok(helm(&args).await);
        assert!(
            out.contains("kind: MutatingWebhookConfiguration"),
            "{extra:?}"
        );
        assert!(!out.contains("--sidecar-otlp-endpoint"), "{extra:?}");
        assert!(!out.contains("--sidecar-wechat-api-base"), "{extra:?}");
        assert!(!out.contains("--sidecar-qq-api-base"), "{extra:?}");
        assert!(
            out.contains("- --sidecar-shutdown-delay-seconds=5"),
            "{extra:?}"
        );
        assert!(
            out.contains("- --sidecar-credential-cache=4096"),
            "{extra:?}"
        );
    }
    let out = ok(helm(&[
        "template",
        "r",
        "charts/wxgate",
        "--set",
        "sidecar.otlpEndpoint=http://otel-collector.observability:4318",
        "--set",
        "sidecar.wechatApiBase=http://wechat-sim.sim:18081",
        "--set",
        "sidecar.qqApiBase=http://wechat-sim.sim:18081/qq",
        "--set",
        "sidecar.shutdownDelaySeconds=0",
        "--set",
        "sidecar.credentialCache=1048576",
    ])
    .await);
    assert!(out.contains("- --sidecar-otlp-endpoint=http://otel-collector.observability:4318"));
    assert!(out.contains("- --sidecar-wechat-api-base=http://wechat-sim.sim:18081"));
    assert!(out.contains("- --sidecar-qq-api-base=http://wechat-sim.sim:18081/qq"));
    assert!(out.contains("- --sidecar-shutdown-delay-seconds=0"));
    assert!(out.contains("- --sidecar-credential-cache=1048576"));
    for (bad, expected) in [
        (&["--set", "replicaCount=zero"][..], "replicaCount"),
        (&["--set", "webhook.failurePolicy=Maybe"], "failurePolicy"),
        (&["--set", "webhook.timeoutSeconds=60"], "timeoutSeconds"),
        (&["--set", "operator.logFormat=xml"], "logFormat"),
        (&["--set", "typo=1"], "typo"),
        (&["--set", "sidecar.otlpEndpoint=otel:4318"], "otlpEndpoint"),
        (
            &["--set", "sidecar.wechatApiBase=sim:18081"],
            "wechatApiBase",
        ),
        (
            &["--set", "sidecar.shutdownDelaySeconds=-1"],
            "shutdownDelaySeconds",
        ),
        (&["--set", "sidecar.credentialCache=-1"], "credentialCache"),
    ] {
        let (success, _, err) =
            helm(&[&["template", "r", "charts/wxgate"][..], bad].concat()).await;
        assert!(!success && err.contains(expected), "{bad:?}: {err}");
    }
    let crds = ok(helm(&["template", "c", "charts/wxgate-crds"]).await);
    assert_eq!(crds.matches("kind: CustomResourceDefinition").count(), 2);
}

#[tokio::test]
async fn rendered_charts_are_valid_for_the_server_and_install_with_helm() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client).await;
    let release = format!("wx{:06x}", rand::random::<u32>() & 0xffffff);
    // A label no other test uses, so this release's webhook (whose pods never run here) stays
    // out of their way.
    let label = format!("wxgate-e2e/{release}");
    let set_label = format!("webhook.namespaceLabel={label}");

    let rendered = ok(helm(&[
        "template",
        &release,
        "charts/wxgate",
        "-n",
        &ns.name,
        "--set",
        &set_label,
    ])
    .await);
    ok(kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &rendered).await);
    let crds = ok(helm(&["template", "wxgate-crds", "charts/wxgate-crds"]).await);
    ok(kubectl_stdin(
        &[
            "apply",
            "--dry-run=server",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &crds,
    )
    .await);

    // The CRDs already exist (applied by the tests): helm takes them over.
    ok(helm(&[
        "upgrade",
        "--install",
        "wxgate-crds",
        "charts/wxgate-crds",
        "--take-ownership",
        "-n",
        &ns.name,
    ])
    .await);
    ok(helm(&[
        "install",
        &release,
        "charts/wxgate",
        "-n",
        &ns.name,
        "--set",
        &set_label,
    ])
    .await);
    let hooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let hook = hooks.get(&format!("{release}-inject")).await.unwrap();
    let webhook = &hook.webhooks.unwrap()[0];
    assert!(webhook.client_config.ca_bundle.is_some());
    assert_eq!(webhook.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(webhook.timeout_seconds, Some(5));
    let tls = ns
        .typed::<Secret>()
        .get(&format!("{release}-webhook-tls"))
        .await
        .unwrap();
    let first = tls.data.clone().unwrap()["tls.crt"].clone();
    // An upgrade keeps the certificate (and the caBundle): admission never breaks on upgrade.
    ok(helm(&[
        "upgrade",
        &release,
        "charts/wxgate",
        "-n",
        &ns.name,
        "--set",
        &set_label,
        "--set",
        "replicaCount=1",
    ])
    .await);
    let again = ns
        .typed::<Secret>()
        .get(&format!("{release}-webhook-tls"))
        .await
        .unwrap();
    assert_eq!(again.data.unwrap()["tls.crt"], first);

    // The operator under the chart's own ServiceAccount, ClusterRole and leader-election Role.
    let token = service_account_token(&ns, &format!("{release}-operator")).await;
    let kubeconfig = kubeconfig_with_token(&token).await;
    let (_, stop) = spawn_operator_as(
        &kubeconfig,
        &["--leader-elect", "true", "--namespace", &ns.name],
    )
    .await;
    let work = TestNamespace::new(&client).await;
    work.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: { name: shop-api }\nspec: { selector: { app: shop }, ports: [ { port: 80, targetPort: http } ] }\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: shop-wechat }\nstringData: { appsecret: x }\n---\napiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: { name: mp-login }\nspec: { type: WeChatMpLogin, wechatMpLogin: { appId: wx0123456789abcdef, credentialsSecretRef: { name: shop-wechat } } }\n---\napiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: shop }\nspec: { pluginRef: { name: mp-login }, targetRef: { name: shop-api } }\n",
        MANAGER,
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(30),
        "programmed under the chart's RBAC",
        || async {
            let cm = work
                .typed::<ConfigMap>()
                .get_opt("wxgate-shop-api")
                .await
                .unwrap()?;
            let ring = work
                .typed::<Secret>()
                .get_opt("mp-login-credential-keys")
                .await
                .unwrap()?;
            let role = work
                .typed::<k8s_openapi::api::rbac::v1::Role>()
                .get_opt("wxgate-shop-api")
                .await
                .unwrap()?;
            Some((cm, ring, role))
        },
    )
    .await;
    let lists = kubectl(&[
        "auth",
        "can-i",
        "list",
        "secrets",
        "--as",
        &format!("system:serviceaccount:{}:{release}-operator", ns.name),
    ])
    .await;
    assert_eq!(
        lists.trim(),
        "yes",
        "the chart documents why the operator lists Secrets"
    );
    let (_, no, _) = kubectl_status(&[
        "auth",
        "can-i",
        "delete",
        "pods",
        "--as",
        &format!("system:serviceaccount:{}:{release}-operator", ns.name),
    ])
    .await;
    assert_eq!(no.trim(), "no");
    drop(stop);
    ok(helm(&["uninstall", &release, "-n", &ns.name]).await);
    assert!(
        hooks
            .get_opt(&format!("{release}-inject"))
            .await
            .unwrap()
            .is_none()
    );
}
