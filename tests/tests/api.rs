//! The API the CRDs define, as the real kube-apiserver enforces it.

#![allow(clippy::unwrap_used)]

use kube::api::{Api, Patch, PatchParams};
use wxgate_crds::{GatewayPlugin, PluginBinding};
use wxgate_e2e::*;

async fn setup() -> TestNamespace {
    let client = client().await;
    install_crds(&client).await;
    TestNamespace::new(&client).await
}

#[tokio::test]
async fn crds_are_established_and_served_with_printer_columns() {
    let ns = setup().await;
    let plugins: Api<GatewayPlugin> = ns.typed();
    assert!(
        plugins
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let examples = repo_root().join("examples/quickstart");
    for file in ["plugin.yaml", "binding.yaml"] {
        ns.apply_yaml(
            &std::fs::read_to_string(examples.join(file)).unwrap(),
            MANAGER,
        )
        .await
        .unwrap();
    }
    // Discovery may publish a new CRD's category a moment after it is Established.
    let table = eventually(
        std::time::Duration::from_secs(20),
        "kubectl get wxgate",
        || async {
            let (ok, out, _) = kubectl_status(&["get", "wxgate", "-n", &ns.name]).await;
            (ok && out.matches("NAME").count() == 2).then_some(out)
        },
    )
    .await;
    let headers: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("NAME"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(headers.len(), 2, "{table}");
    assert!(
        headers.contains(&vec!["NAME", "TYPE", "READY", "AGE"]),
        "{table}"
    );
    assert!(
        headers.contains(&vec!["NAME", "PLUGIN", "TARGET", "PROGRAMMED", "AGE"]),
        "{table}"
    );
    assert!(
        table.contains("gatewayplugin.wxgate.dev/mp-login") && table.contains("WeChatMpLogin"),
        "{table}"
    );
    let wide = kubectl(&["get", "pb", "-n", &ns.name, "-o", "wide"]).await;
    assert!(wide.lines().next().unwrap().contains("REASON"), "{wide}");
    let explain = kubectl(&[
        "explain",
        "gatewayplugin.spec.wechatMpLogin.session.ttlMinutes",
    ])
    .await;
    assert!(
        explain.contains("Lifetime of a credential in minutes"),
        "{explain}"
    );
    let explain = kubectl(&[
        "explain",
        "gatewayplugin.spec.wechatMpLogin.phone.keepInCredential",
    ])
    .await;
    let words = explain.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("issue a credential that also holds the phone number"),
        "{explain}"
    );
    for (field, says) in [
        ("apps", "Several mini programs sharing this login"),
        ("appIdParam", "Where a login request may name its AppID"),
        ("platform", "The platform of the mini programs"),
    ] {
        let explain = kubectl(&[
            "explain",
            &format!("gatewayplugin.spec.wechatMpLogin.{field}"),
        ])
        .await;
        let words = explain.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(says), "{explain}");
    }
}

#[tokio::test]
async fn every_example_manifest_is_accepted_and_defaulted() {
    let ns = setup().await;
    let mut files: Vec<_> = ["examples/quickstart", "examples/two-apps"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(repo_root().join(dir)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let yaml = std::fs::read_to_string(&file).unwrap();
        ns.apply_yaml(&yaml, MANAGER)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    let mp_login = ns.typed::<GatewayPlugin>().get("mp-login").await.unwrap();
    let login = mp_login.spec.wechat_mp_login.unwrap();
    assert_eq!(
        login.session.key_rotation_days, 30,
        "defaulted by the server"
    );
    assert_eq!(
        login.credentials_secret_ref.as_ref().unwrap().app_id_key,
        "appid",
        "defaulted by the server"
    );
    assert_eq!(login.forward.name, "x-wx-login");
    let binding = ns
        .typed::<PluginBinding>()
        .get("mp-login-shop-api")
        .await
        .unwrap();
    assert_eq!(binding.spec.target_ref.name, "shop-api");
    let apps = ns.typed::<GatewayPlugin>().get("mp-apps").await.unwrap();
    let login = apps.spec.wechat_mp_login.unwrap();
    assert_eq!(login.apps.len(), 2);
    assert_eq!(
        login.apps[1].credentials_secret_ref.app_secret_key, "appsecret",
        "defaulted by the server"
    );
    // A QQ mini program: its AppID is digits.
    ns.apply_yaml(
        &plugin("  type: WeChatMpLogin\n  wechatMpLogin: { platform: qq, appId: \"1109876543\", credentialsSecretRef: { name: qq } }\n"),
        MANAGER,
    )
    .await
    .unwrap();
    let qq = ns.typed::<GatewayPlugin>().get("p").await.unwrap();
    let login = qq.spec.wechat_mp_login.unwrap();
    assert_eq!(login.platform, wxgate_crds::plugin::Platform::QQ);
    assert_eq!(login.app_id.as_deref(), Some("1109876543"));
}

/// Applies one document and returns the server's refusal message.
async fn refusal(ns: &TestNamespace, yaml: &str) -> String {
    match ns.apply_yaml(yaml, MANAGER).await {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 422, "{e:?}");
            e.message
        }
        Err(e) => panic!("{e}"),
    }
}

fn plugin(spec: &str) -> String {
    format!(
        "apiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: {{ name: p }}\nspec:\n{spec}"
    )
}

#[tokio::test]
async fn invalid_objects_are_refused_with_a_useful_message() {
    let ns = setup().await;
    let login = "  type: WeChatMpLogin\n  wechatMpLogin:\n    credentialsSecretRef: { name: s }\n";
    let cases = [
        (plugin("  type: Magic\n"), "spec.type: Unsupported value: \"Magic\""),
        (plugin(&format!("{login}    session: {{ ttlMinutes: 0 }}\n")), "spec.wechatMpLogin.session.ttlMinutes"),
        (plugin(&format!("{login}    session: {{ ttlMinutes: 50000 }}\n")), "should be less than or equal to 43200"),
        (plugin(&format!("{login}    code: {{ in: header-ish }}\n")), "spec.wechatMpLogin.code.in: Unsupported value"),
        (plugin(&format!("{login}    appId: WX123\n")), "spec.wechatMpLogin.appId"),
        (plugin(&format!("{login}    phone: {{ code: {{ in: nowhere }} }}\n")), "spec.wechatMpLogin.phone.code.in: Unsupported value"),
        (plugin(&format!("{login}    phone: {{ paths: [bind] }}\n")), "spec.wechatMpLogin.phone.paths[0]"),
        (plugin("  type: WeChatMpLogin\n  wechatMpLogin: { }\n"), "wechatMpLogin needs credentialsSecretRef (one mini program) or apps (several), not both"),
        (plugin(&format!("{login}    apps: [ {{ credentialsSecretRef: {{ name: t }} }} ]\n")), "wechatMpLogin needs credentialsSecretRef (one mini program) or apps (several), not both"),
        (plugin("  type: WeChatMpLogin\n  wechatMpLogin: { appId: wx0123456789abcdef, apps: [ { credentialsSecretRef: { name: t } } ] }\n"), "wechatMpLogin.appId goes with credentialsSecretRef"),
        (plugin("  type: WeChatMpLogin\n  wechatMpLogin: { apps: [ { appId: wx0123456789abcdef } ] }\n"), "spec.wechatMpLogin.apps[0].credentialsSecretRef: Required value"),
        (plugin(&format!("{login}    appIdParam: {{ in: cookie, name: a }}\n")), "spec.wechatMpLogin.appIdParam.in: Unsupported value"),
        (plugin(&format!("{login}    platform: douyin\n")), "spec.wechatMpLogin.platform: Unsupported value"),
        (plugin(&format!("{login}    tags: {{ fields: [channel, build] }}\n")), "spec.wechatMpLogin.tags.fields[1]: Unsupported value"),
        (plugin("  type: WeChatMpLogin\n"), "set exactly the settings block of the plugin's type"),
        (plugin("  type: Tag\n  tag: { rules: [ { from: { in: header, name: X-Upper }, tag: t } ] }\n"), "spec.tag.rules[0].from.name"),
        (
            "apiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: b }\nspec: { pluginRef: { name: p } }\n".to_owned(),
            "spec.targetRef: Required value",
        ),
        (
            "apiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: b }\nspec: { pluginRef: { name: p }, targetRef: { kind: Deployment, name: x } }\n".to_owned(),
            "spec.targetRef.kind: Unsupported value: \"Deployment\"",
        ),
        (
            "apiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: b }\nspec: { pluginRef: { name: p }, targetRef: { name: x }, apis: [ { path: /a, match: Regex } ] }\n".to_owned(),
            "spec.apis[0].match: Unsupported value",
        ),
    ];
    for (yaml, expected) in cases {
        let message = refusal(&ns, &yaml).await;
        assert!(
            message.contains(expected),
            "expected {expected:?} in: {message}"
        );
    }
}

#[tokio::test]
async fn server_side_apply_by_two_managers_shows_who_owns_what() {
    let ns = setup().await;
    let base = plugin(
        "  type: WeChatMpLogin\n  wechatMpLogin:\n    credentialsSecretRef: { name: s }\n    session: { ttlMinutes: 60 }\n",
    );
    ns.apply_yaml(&base, "team-a").await.unwrap();
    let patch = plugin(
        "  type: WeChatMpLogin\n  wechatMpLogin:\n    credentialsSecretRef: { name: s }\n    session: { renewBeforeMinutes: 10 }\n",
    );
    // Without force, a second manager changing nothing of the first's may co-own the rest.
    let api: Api<GatewayPlugin> = ns.typed();
    let obj: serde_json::Value = serde_saphyr::from_str(&patch).unwrap();
    api.patch("p", &PatchParams::apply("team-b"), &Patch::Apply(&obj))
        .await
        .unwrap();
    let got = api.get("p").await.unwrap();
    let session = &got.spec.wechat_mp_login.as_ref().unwrap().session;
    assert_eq!(
        (session.ttl_minutes, session.renew_before_minutes),
        (60, Some(10))
    );
    let managers: Vec<String> = got
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"team-a".to_owned()) && managers.contains(&"team-b".to_owned()),
        "{managers:?}"
    );

    // team-b changing team-a's ttl without force is a conflict naming team-a.
    let conflicting = plugin(
        "  type: WeChatMpLogin\n  wechatMpLogin:\n    credentialsSecretRef: { name: s }\n    session: { ttlMinutes: 90 }\n",
    );
    let obj: serde_json::Value = serde_saphyr::from_str(&conflicting).unwrap();
    match api
        .patch("p", &PatchParams::apply("team-b"), &Patch::Apply(&obj))
        .await
    {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 409);
            assert!(
                e.message.contains("team-a") && e.message.contains("ttlMinutes"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn the_harness_is_a_real_versioned_api_server_with_garbage_collection() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let client = client().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36"),
        "{version:?}"
    );
    assert!(version.git_version.starts_with("v1.36."), "{version:?}");
    // Owner references are honoured (the garbage collector runs beside the API server).
    let ns = TestNamespace::new(&client).await;
    let owner = ns
        .apply_yaml(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: owner }\n",
            MANAGER,
        )
        .await
        .unwrap();
    let uid = owner[0].metadata.uid.clone().unwrap();
    let child = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: child\n  ownerReferences: [ {{ apiVersion: v1, kind: ConfigMap, name: owner, uid: {uid} }} ]\n"
    );
    ns.apply_yaml(&child, MANAGER).await.unwrap();
    let cms: Api<ConfigMap> = ns.typed();
    cms.delete("owner", &Default::default()).await.unwrap();
    within(std::time::Duration::from_secs(30), async {
        while cms.get_opt("child").await.unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn rbac_is_enforced_for_a_service_account_token() {
    let client = client().await;
    let ns = TestNamespace::new(&client).await;
    let token = service_account_token(&ns, "app").await;
    ns.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: { name: read-cm }\nrules: [ { apiGroups: [\"\"], resources: [configmaps], verbs: [get, list, watch] } ]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: { name: app-read-cm }\nroleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-cm }\nsubjects: [ { kind: ServiceAccount, name: app } ]\n",
        MANAGER,
    )
    .await
    .unwrap();
    let can = |verb: &'static str, resource: &'static str| {
        let (ns, token) = (ns.name.clone(), token.clone());
        async move {
            let (ok, out, _) = kubectl_status(&[
                "auth", "can-i", verb, resource, "-n", &ns, "--token", &token,
            ])
            .await;
            (ok, out.trim().to_owned())
        }
    };
    assert_eq!(can("list", "configmaps").await, (true, "yes".to_owned()));
    assert_eq!(can("list", "secrets").await, (false, "no".to_owned()));
    assert_eq!(can("create", "configmaps").await, (false, "no".to_owned()));
    // And the server refuses the request itself, not only the review.
    let (ok, _, err) = kubectl_status(&["get", "secrets", "-n", &ns.name, "--token", &token]).await;
    assert!(!ok && err.contains("Forbidden"), "{err}");
}
