//! The operator against the real API server (with the garbage collector running), one
//! namespace per test, one operator for the whole test binary.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use tokio::sync::OnceCell;
use wxgate_crds::render::{RenderedConfig, RenderedSecret};
use wxgate_crds::{GatewayPlugin, PluginBinding};
use wxgate_e2e::*;

static OPERATOR: OnceCell<()> = OnceCell::const_new();

/// One operator for the test binary. A day of keyRotationDays lasts 3 s here, and a new key
/// propagates for 3 s.
async fn operator() {
    OPERATOR
        .get_or_init(|| async {
            install_crds(&client().await).await;
            let (_, stop) = spawn_operator(&[
                "--rotation-day-seconds",
                "3",
                "--key-propagation-seconds",
                "3",
            ])
            .await;
            std::mem::forget(stop);
        })
        .await;
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: { name: shop-api }\nspec: { selector: { app: shop }, ports: [ { port: 80, targetPort: 8080 } ] }\n";
const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: { name: shop-wechat }\nstringData: { appsecret: e2e-appsecret }\n";

fn plugin(ttl: u32, rotation_days: u32) -> String {
    format!(
        "apiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: {{ name: mp-login }}\nspec:\n  type: WeChatMpLogin\n  wechatMpLogin:\n    appId: wx0123456789abcdef\n    credentialsSecretRef: {{ name: shop-wechat }}\n    login: {{ paths: [/login] }}\n    session: {{ ttlMinutes: {ttl}, keyRotationDays: {rotation_days} }}\n"
    )
}

fn binding(name: &str, service: &str) -> String {
    format!(
        "apiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: {{ name: {name} }}\nspec: {{ pluginRef: {{ name: mp-login }}, targetRef: {{ name: {service} }} }}\n"
    )
}

async fn setup() -> TestNamespace {
    operator().await;
    TestNamespace::new(&client().await).await
}

fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<(String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn binding_condition(
    ns: &TestNamespace,
    name: &str,
    type_: &str,
) -> Option<(String, String)> {
    let b = ns.typed::<PluginBinding>().get_opt(name).await.unwrap()?;
    condition(&b.status?.conditions, type_)
}

async fn wait_binding(ns: &TestNamespace, name: &str, type_: &str, status: &str, reason: &str) {
    let want = Some((status.to_owned(), reason.to_owned()));
    eventually(
        Duration::from_secs(20),
        &format!("{name} {type_}={status}/{reason}"),
        || async {
            let got = binding_condition(ns, name, type_).await;
            (got == want).then_some(())
        },
    )
    .await;
}

/// The plugin's Ready condition as it stands.
async fn plugin_ready(
    ns: &TestNamespace,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let p = ns.typed::<GatewayPlugin>().get("mp-login").await.unwrap();
    p.status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
}

async fn wait_plugin_ready(ns: &TestNamespace, status: &str, reason: &str) {
    let want = Some((status.to_owned(), reason.to_owned()));
    eventually(
        Duration::from_secs(20),
        &format!("plugin Ready={status}/{reason}"),
        || async {
            let p = ns
                .typed::<GatewayPlugin>()
                .get_opt("mp-login")
                .await
                .unwrap()?;
            (condition(&p.status?.conditions, "Ready") == want).then_some(())
        },
    )
    .await;
}

async fn rendered(
    ns: &TestNamespace,
) -> Option<(ConfigMap, RenderedConfig, Secret, RenderedSecret)> {
    let cm = ns
        .typed::<ConfigMap>()
        .get_opt("wxgate-shop-api")
        .await
        .unwrap()?;
    let secret = ns
        .typed::<Secret>()
        .get_opt("wxgate-shop-api")
        .await
        .unwrap()?;
    let config: RenderedConfig =
        serde_json::from_str(cm.data.as_ref()?.get("config.json")?).ok()?;
    let s: RenderedSecret =
        serde_json::from_slice(&secret.data.as_ref()?.get("secret.json")?.0).ok()?;
    Some((cm, config, secret, s))
}

/// The Service, its credentials Secret, a login plugin and a whole-Service binding.
async fn apply_shop(ns: &TestNamespace) {
    for doc in [
        SERVICE,
        SECRET,
        &plugin(120, 30),
        &binding("shop", "shop-api"),
    ] {
        apply(ns, doc).await;
    }
}

async fn apply(ns: &TestNamespace, yaml: &str) {
    ns.apply_yaml(yaml, "e2e-user").await.unwrap();
}

#[tokio::test]
async fn renders_configmap_and_secret_owned_by_the_bindings_and_reports_status() {
    let ns = setup().await;
    for doc in [
        SERVICE,
        SECRET,
        &plugin(120, 30),
        &binding("shop", "shop-api"),
        &binding("shop-2", "shop-api"),
    ] {
        apply(&ns, doc).await;
    }
    let (cm, config, secret, s) = eventually(
        Duration::from_secs(20),
        "both bindings rendered",
        || async {
            rendered(&ns).await.filter(|(_, c, secret, _)| {
                c.routes.len() == 2 && secret.owner_references().len() == 2
            })
        },
    )
    .await;
    assert_eq!(config.service.name, "shop-api");
    let plugin_key = format!("{}/mp-login", ns.name);
    assert_eq!(s.plugins[&plugin_key].app_id, "wx0123456789abcdef");
    assert_eq!(s.plugins[&plugin_key].app_secret.expose(), "e2e-appsecret");
    assert!(
        !cm.data.as_ref().unwrap()["config.json"].contains("e2e-appsecret"),
        "no secret in the ConfigMap"
    );
    for obj in [cm.metadata.clone(), secret.metadata.clone()] {
        let owners: Vec<_> = obj
            .owner_references
            .unwrap()
            .iter()
            .map(|o| (o.kind.clone(), o.name.clone()))
            .collect();
        assert_eq!(
            owners,
            [
                ("PluginBinding".to_owned(), "shop".to_owned()),
                ("PluginBinding".to_owned(), "shop-2".to_owned())
            ]
        );
        assert_eq!(
            obj.labels.unwrap()["app.kubernetes.io/managed-by"],
            "wxgate-operator"
        );
    }
    wait_binding(&ns, "shop", "Programmed", "True", "Programmed").await;
    wait_binding(&ns, "shop", "Accepted", "True", "Accepted").await;
    wait_binding(&ns, "shop-2", "ResolvedRefs", "True", "Resolved").await;
    wait_plugin_ready(&ns, "True", "Resolved").await;
    let ring = ns
        .typed::<Secret>()
        .get("mp-login-credential-keys")
        .await
        .unwrap();
    assert_eq!(ring.owner_references()[0].kind, "GatewayPlugin");
    assert_eq!(ring.data.unwrap().len(), 2, "one key and `active`");
    let table = kubectl(&["get", "gwp,pb", "-n", &ns.name]).await;
    assert!(table.contains("True"), "{table}");

    // Status writes that change nothing do not loop: the resourceVersion settles.
    let rv = ns
        .typed::<PluginBinding>()
        .get("shop")
        .await
        .unwrap()
        .resource_version();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ns.typed::<PluginBinding>()
            .get("shop")
            .await
            .unwrap()
            .resource_version(),
        rv
    );
}

#[tokio::test]
async fn each_missing_reference_is_reported_and_recovery_follows() {
    let ns = setup().await;
    apply(&ns, &binding("shop", "shop-api")).await;
    wait_binding(&ns, "shop", "ResolvedRefs", "False", "PluginNotFound").await;
    wait_binding(&ns, "shop", "Programmed", "False", "PluginNotFound").await;

    apply(&ns, &plugin(120, 30)).await;
    wait_binding(&ns, "shop", "ResolvedRefs", "False", "SecretNotFound").await;
    wait_plugin_ready(&ns, "False", "SecretNotFound").await;

    apply(
        &ns,
        "apiVersion: v1\nkind: Secret\nmetadata: { name: shop-wechat }\nstringData: { other: x }\n",
    )
    .await;
    wait_binding(&ns, "shop", "ResolvedRefs", "False", "SecretKeyInvalid").await;

    apply(&ns, SECRET).await;
    wait_binding(&ns, "shop", "ResolvedRefs", "False", "ServiceNotFound").await;
    wait_binding(&ns, "shop", "Programmed", "False", "ServiceNotFound").await;

    apply(&ns, SERVICE).await;
    wait_binding(&ns, "shop", "Programmed", "True", "Programmed").await;
    wait_plugin_ready(&ns, "True", "Resolved").await;

    // An invalid spec is reported with its field.
    apply(&ns, "apiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: bad }\nspec: { pluginRef: { name: mp-login }, targetRef: { name: shop-api }, apis: [ { path: '/a/../b' } ] }\n").await;
    wait_binding(&ns, "bad", "Accepted", "False", "InvalidSpec").await;
    let b = ns.typed::<PluginBinding>().get("bad").await.unwrap();
    let accepted = b
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert!(
        accepted.message.contains("spec.apis[0].path"),
        "{}",
        accepted.message
    );
    // It blocks the Service's config (fail closed); the good binding says why.
    wait_binding(&ns, "shop", "Programmed", "False", "OtherBindingInvalid").await;
}

#[tokio::test]
async fn drift_is_corrected_and_deleting_the_bindings_removes_the_config() {
    let ns = setup().await;
    apply_shop(&ns).await;
    let (_, original, _, _) = eventually(Duration::from_secs(20), "rendered objects", || {
        rendered(&ns)
    })
    .await;
    let cms: Api<ConfigMap> = ns.typed();
    let tampered = serde_json::json!({"data": {"config.json": "{}"}});
    cms.patch(
        "wxgate-shop-api",
        &PatchParams::default(),
        &Patch::Merge(&tampered),
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(20),
        "edited ConfigMap restored",
        || async {
            rendered(&ns)
                .await
                .filter(|(_, c, _, _)| *c == original)
                .map(|_| ())
        },
    )
    .await;
    cms.delete("wxgate-shop-api", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "deleted ConfigMap restored",
        || async { rendered(&ns).await.map(|_| ()) },
    )
    .await;

    ns.typed::<PluginBinding>()
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "ConfigMap and Secret removed",
        || async {
            let cm = cms.get_opt("wxgate-shop-api").await.unwrap();
            let secret = ns
                .typed::<Secret>()
                .get_opt("wxgate-shop-api")
                .await
                .unwrap();
            (cm.is_none() && secret.is_none()).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn key_rings_are_created_rotated_in_stages_and_user_rings_left_alone() {
    let ns = setup().await;
    // keyRotationDays 1 = 3 s here; ttl 1 minute keeps retired keys for 60 + 60 + 3 s.
    apply(&ns, SECRET).await;
    apply(&ns, &plugin(1, 1)).await;
    let secrets: Api<Secret> = ns.typed();
    let ring = |s: Secret| {
        let data = s.data.unwrap();
        let active = String::from_utf8(data["active"].0.clone()).unwrap();
        let kids: Vec<String> = data.keys().filter(|k| *k != "active").cloned().collect();
        (active, kids)
    };
    let (first, kids) = eventually(Duration::from_secs(20), "key ring", || async {
        secrets
            .get_opt("mp-login-credential-keys")
            .await
            .unwrap()
            .map(ring)
    })
    .await;
    assert_eq!(kids, std::slice::from_ref(&first));
    // Stage 1: a second key appears while the first still signs.
    let (active, kids) = eventually(Duration::from_secs(20), "a verify-only key", || async {
        let r = ring(secrets.get("mp-login-credential-keys").await.unwrap());
        (r.1.len() == 2).then_some(r)
    })
    .await;
    assert_eq!(
        active, first,
        "the new key does not sign before it propagated"
    );
    let second = kids.into_iter().find(|k| *k != first).unwrap();
    // Stage 2: the new key signs; the old one still verifies.
    let (active, kids) = eventually(Duration::from_secs(20), "the new key signing", || async {
        let r = ring(secrets.get("mp-login-credential-keys").await.unwrap());
        (r.0 != first).then_some(r)
    })
    .await;
    assert_eq!(active, second);
    assert!(kids.contains(&first), "the old key stays verify-only");

    // A managed ring that can no longer be read is reported and left alone (its keys may still
    // verify credentials); deleting it makes a new one.
    let broken = serde_json::json!({ "stringData": { "active": "not-a-kid" } });
    secrets
        .patch(
            "mp-login-credential-keys",
            &PatchParams::default(),
            &Patch::Merge(&broken),
        )
        .await
        .unwrap();
    wait_plugin_ready(&ns, "False", "CredentialKeysInvalid").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (active, kept) = ring(secrets.get("mp-login-credential-keys").await.unwrap());
    assert_eq!(
        active, "not-a-kid",
        "the operator did not overwrite the ring"
    );
    assert!(kept.contains(&second), "{kept:?}");
    secrets
        .delete("mp-login-credential-keys", &DeleteParams::default())
        .await
        .unwrap();
    let (fresh, kids) = eventually(Duration::from_secs(20), "a new key ring", || async {
        let r = secrets.get_opt("mp-login-credential-keys").await.unwrap()?;
        let r = ring(r);
        (r.0 != "not-a-kid").then_some(r)
    })
    .await;
    assert_eq!(kids, vec![fresh.clone()]);
    assert!(fresh != first && fresh != second);
    wait_plugin_ready(&ns, "True", "Resolved").await;

    // A ring the user made (before the plugin, as the README says) is never touched.
    let own = "apiVersion: v1\nkind: Secret\nmetadata: { name: mine-credential-keys }\ndata: { active: MDEwMjAzMDQ=, \"01020304\": AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= }\n---\napiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: { name: mine }\nspec: { type: WeChatMpLogin, wechatMpLogin: { appId: wx0123456789abcdef, credentialsSecretRef: { name: shop-wechat }, session: { keyRotationDays: 1 } } }\n";
    apply(&ns, own).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mine = ring(secrets.get("mine-credential-keys").await.unwrap());
    assert_eq!(mine, ("01020304".to_owned(), vec!["01020304".to_owned()]));
}

#[tokio::test]
async fn a_sidecar_serves_what_the_operator_writes_and_follows_changes() {
    let ns = setup().await;
    apply_shop(&ns).await;
    eventually(Duration::from_secs(20), "rendered objects", || {
        rendered(&ns)
    })
    .await;
    // The kubelet's part: mount Secret wxgate-shop-api as files.
    let dir = tempfile::tempdir().unwrap();
    let (_, _, secret, _) = rendered(&ns).await.unwrap();
    std::fs::write(
        dir.path().join("secret.json"),
        &secret.data.unwrap()["secret.json"].0,
    )
    .unwrap();

    // The sidecar runs as a ServiceAccount of the namespace, with only what the operator granted.
    let token = service_account_token(&ns, "shop").await;
    let can = |verb: &'static str, what: &'static str| {
        let (ns, token) = (ns.name.clone(), token.clone());
        async move {
            kubectl_status(&["auth", "can-i", verb, what, "-n", &ns, "--token", &token])
                .await
                .1
                .trim()
                .to_owned()
        }
    };
    assert_eq!(can("watch", "configmaps/wxgate-shop-api").await, "yes");
    assert_eq!(can("get", "configmaps/other").await, "no");
    assert_eq!(can("get", "secrets/wxgate-shop-api").await, "no");
    assert_eq!(can("list", "secrets").await, "no");
    let sidecar = cluster_sidecar(&ns.name, &kubeconfig_with_token(&token).await, dir.path()).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{}/login", sidecar.traffic))
        .header("js_code", "alice_1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("user_session"));

    // 20 plugin changes: time from the apply to the sidecar serving the new config.
    let mut took = Vec::new();
    for i in 0..20 {
        let before = sidecar.active.version();
        let started = Instant::now();
        apply(&ns, &plugin(100 + i, 30)).await;
        eventually(
            Duration::from_secs(20),
            "sidecar on the new config",
            || async { (sidecar.active.version() != before).then_some(()) },
        )
        .await;
        took.push(started.elapsed());
    }
    took.sort();
    println!(
        "GatewayPlugin apply -> sidecar serving it, over 20 changes: p50 {:?}, p99 {:?}, max {:?}",
        took[9], took[19], took[19]
    );
    assert!(took[9] < Duration::from_secs(2), "p50 {:?}", took[9]);
    sidecar.stop().await;
}

/// The Events of a namespace about the object named `name`.
async fn events_about(ns: &TestNamespace, name: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
    ns.typed::<k8s_openapi::api::events::v1::Event>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

#[tokio::test]
async fn condition_transitions_are_recorded_as_events() {
    let ns = setup().await;
    apply(&ns, &binding("shop", "shop-api")).await;
    wait_binding(&ns, "shop", "ResolvedRefs", "False", "PluginNotFound").await;
    let reasons = eventually(Duration::from_secs(20), "a Warning event", || async {
        let found: Vec<(String, String)> = events_about(&ns, "shop")
            .await
            .iter()
            .map(|e| {
                (
                    e.type_.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                )
            })
            .collect();
        found
            .iter()
            .any(|(t, r)| t == "Warning" && r == "PluginNotFound")
            .then_some(found)
    })
    .await;
    assert!(
        reasons.iter().any(|(t, _)| t == "Normal"),
        "Accepted=True is recorded too: {reasons:?}"
    );
    // The reconciles that follow the status write (often reading the object from before it)
    // record nothing more: each transition is one Event, seen once (no repeats in its series).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut recorded = std::collections::BTreeMap::<String, i32>::new();
    for e in events_about(&ns, "shop").await {
        let times = e.series.as_ref().map_or(1, |s| s.count);
        let note = e.note.clone().unwrap_or_default();
        let condition = note.split('=').next().unwrap_or_default().to_owned();
        let reason = e.reason.clone().unwrap_or_default();
        *recorded.entry(format!("{condition} {reason}")).or_default() += times;
    }
    assert!(
        recorded.values().all(|n| *n == 1),
        "each transition is recorded once: {recorded:?}"
    );
}

#[tokio::test]
async fn a_tag_plugin_is_rendered_and_its_rules_reach_a_sidecar() {
    let ns = setup().await;
    let tag = "apiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: { name: tags }\nspec: { type: Tag, tag: { rules: [ { from: { in: query, name: channel }, tag: channel } ] } }\n---\napiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: { name: tags }\nspec: { pluginRef: { name: tags }, targetRef: { name: shop-api } }\n";
    for doc in [
        SERVICE,
        SECRET,
        &plugin(120, 30),
        &binding("shop", "shop-api"),
        tag,
    ] {
        apply(&ns, doc).await;
    }
    let (_, config, secret, _) =
        eventually(Duration::from_secs(20), "both plugins rendered", || async {
            rendered(&ns)
                .await
                .filter(|(_, c, _, _)| c.plugins.len() == 2)
        })
        .await;
    assert!(
        config
            .routes
            .iter()
            .any(|r| r.plugin_type == wxgate_crds::plugin::PluginType::Tag)
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secret.json"),
        &secret.data.unwrap()["secret.json"].0,
    )
    .unwrap();
    let sidecar = cluster_sidecar(&ns.name, &kubeconfig().await, dir.path()).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{}/login", sidecar.traffic))
        .header("js_code", "tina_1")
        .send()
        .await
        .unwrap();
    let credential = r.headers()["user_session"].to_str().unwrap().to_owned();
    let r = http
        .get(format!("http://{}/orders?channel=wx", sidecar.traffic))
        .header("user_session", &credential)
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-wxgate-tag-channel"], "wx");
    sidecar.stop().await;
}

#[tokio::test]
async fn phone_and_open_api_settings_are_rendered_and_a_useless_phone_block_is_reported() {
    let ns = setup().await;
    apply_shop(&ns).await;
    wait_binding(&ns, "shop", "Programmed", "True", "Programmed").await;
    let with_phone = |phone: &str| {
        plugin(120, 30).replace(
            "    login: { paths: [/login] }\n",
            &format!("    login: {{ paths: [/login] }}\n    phone: {phone}\n"),
        )
    };
    apply(
        &ns,
        &with_phone("{ paths: [/bind-phone], keepInCredential: true }"),
    )
    .await;
    let phone = eventually(Duration::from_secs(20), "phone in config.json", || async {
        let (_, config, _, _) = rendered(&ns).await?;
        match config.plugins.values().next()? {
            wxgate_crds::render::RenderedPlugin::WeChatMpLogin(l) => l.phone.clone(),
            _ => None,
        }
    })
    .await;
    assert_eq!(phone.paths, ["/bind-phone"]);
    assert!(phone.on_login && phone.keep_in_credential);
    assert_eq!(phone.code.name, "phone_code", "defaulted by the server");

    apply(&ns, &with_phone("{ onLogin: false }")).await;
    wait_plugin_ready(&ns, "False", "InvalidSpec").await;
    let ready = plugin_ready(&ns).await;
    assert!(
        ready.message.contains("spec.wechatMpLogin.phone") && ready.message.contains("onLogin"),
        "{}",
        ready.message
    );
}

#[tokio::test]
async fn a_plugin_of_two_mini_programs_renders_both_and_follows_the_second_secret() {
    let ns = setup().await;
    apply_shop(&ns).await;
    wait_binding(&ns, "shop", "Programmed", "True", "Programmed").await;
    let two = plugin(120, 30).replace(
        "    appId: wx0123456789abcdef\n    credentialsSecretRef: { name: shop-wechat }\n",
        "    apps:\n      - { appId: wx0123456789abcdef, credentialsSecretRef: { name: shop-wechat } }\n      - { credentialsSecretRef: { name: shop-lite } }\n    appIdParam: { in: header, name: x-mp-appid }\n",
    );
    apply(&ns, &two).await;
    // The second app's Secret is missing: the plugin says which.
    wait_plugin_ready(&ns, "False", "SecretNotFound").await;
    let ready = plugin_ready(&ns).await;
    assert!(ready.message.contains("shop-lite"), "{}", ready.message);

    let lite = |secret: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{ name: shop-lite }}\nstringData: {{ appid: wx00000000000000bb, appsecret: {secret} }}\n"
        )
    };
    apply(&ns, &lite("lite-secret-1")).await;
    wait_plugin_ready(&ns, "True", "Resolved").await;
    let plugin_key = format!("{}/mp-login", ns.name);
    let apps = |s: &RenderedSecret| -> Vec<(String, String)> {
        s.plugins[&plugin_key]
            .apps()
            .map(|(id, secret)| (id.to_owned(), secret.expose().to_owned()))
            .collect()
    };
    let expected = |secret: &str| {
        vec![
            ("wx0123456789abcdef".to_owned(), "e2e-appsecret".to_owned()),
            ("wx00000000000000bb".to_owned(), secret.to_owned()),
        ]
    };
    eventually(Duration::from_secs(20), "both apps rendered", || async {
        let (_, config, _, s) = rendered(&ns).await?;
        let param = match config.plugins.values().next()? {
            wxgate_crds::render::RenderedPlugin::WeChatMpLogin(l) => l.app_id_param.clone(),
            _ => None,
        };
        (apps(&s) == expected("lite-secret-1") && param.is_some()).then_some(())
    })
    .await;
    // A new APPSECRET of the second app reaches the rendered Secret.
    apply(&ns, &lite("lite-secret-2")).await;
    eventually(
        Duration::from_secs(20),
        "the new APPSECRET rendered",
        || async {
            let (_, _, _, s) = rendered(&ns).await?;
            (apps(&s) == expected("lite-secret-2")).then_some(())
        },
    )
    .await;
}
