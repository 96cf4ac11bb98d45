//! wxgate on a real node: installed with Helm from the images the node imported, serving real
//! pods, end to end, through the Service's ClusterIP (kube-proxy) from this machine. Each test
//! works in its own namespace. They need `tests/kube-node/start.sh DIR` (see
//! `wxgate_e2e::node`), so they are `#[ignore]`d in a plain `cargo test`; the test command runs
//! them with `--ignored` on the node it starts.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use wxgate_e2e::node::*;
use wxgate_e2e::*;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The injected containers of a pod, by name.
fn containers(pod: &Pod) -> Vec<String> {
    let spec = pod.spec.as_ref().unwrap();
    spec.containers.iter().map(|c| c.name.clone()).collect()
}

#[tokio::test]
#[ignore = "needs a real node (tests/kube-node/start.sh); the test command runs it"]
async fn helm_install_runs_the_operator_in_the_cluster() {
    let (client, _) = installed().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    // Helm's --wait reads the ReplicaSet; the Deployment's own status is written after it (by
    // the controller manager, later under load), so it is awaited, not read once.
    let operator = format!("{RELEASE}-operator");
    eventually(
        Duration::from_secs(60),
        "both operator replicas ready",
        || async {
            let status = deployments.get(&operator).await.ok()?.status?;
            (status.ready_replicas == Some(2)).then_some(())
        },
    )
    .await;
    // In-cluster config and leader election: a replica's pod name holds the Lease.
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let names: Vec<String> = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=wxgate"))
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let holder = eventually(Duration::from_secs(60), "the Lease held", || async {
        leases
            .get_opt("wxgate-operator")
            .await
            .ok()
            .flatten()?
            .spec?
            .holder_identity
    })
    .await;
    assert!(names.contains(&holder), "{holder} not in {names:?}");
}

#[tokio::test]
#[ignore = "needs a real node (tests/kube-node/start.sh); the test command runs it"]
async fn injected_pods_log_in_and_verify_through_the_cluster_ip() {
    let (client, _) = installed().await;
    let ns = TestNamespace::new(&client).await;
    shop(&ns, 2).await;
    let pods = ready_pods(&ns, "app=shop").await;
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        assert_eq!(containers(pod), ["app", "wxgate-sidecar"]);
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations["wxgate.dev/injected"], "shop-api");
    }
    let http = http();
    let base = format!("http://{}", cluster_ip(&ns, "shop-api").await);
    let credential = login(&http, &base, "alice").await;

    // Verified: the app sees the WeChat identity, and a spoofed one is replaced.
    let (status, seen) = echo(
        &http,
        &format!("{base}/orders/7"),
        &[
            ("user_session", &credential),
            ("X-WX-OPENID", "o-victim"),
            ("x_wx_openid", "o-victim"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    let headers = &seen["headers"];
    let openid = headers["x-wx-openid"].as_str().unwrap();
    assert!(openid.starts_with('o') && openid != "o-victim", "{seen}");
    assert_eq!(headers["x-wx-appid"], "wx0123456789abcdef");
    assert!(headers.get("x_wx_openid").is_none(), "{seen}");
    assert!(headers.get("user_session").is_none(), "{seen}");

    // No credential: the sidecar answers, the app is never reached.
    let resp = http.get(format!("{base}/orders/7")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-wxgate-error"], "LOGIN_REQUIRED");

    // Each replica verifies the credential the other issued (one key ring per plugin).
    for pod in &pods {
        let url = format!("http://{}:15080/orders/8", pod_ip(pod));
        let (status, seen) = echo(&http, &url, &[("user_session", &credential)]).await;
        assert_eq!(
            status,
            200,
            "{}: {seen}",
            pod.metadata.name.clone().unwrap()
        );
        assert_eq!(seen["headers"]["x-wx-openid"].as_str(), Some(openid));
    }
    for rss in sidecar_rss_kib(&ns.name) {
        println!("sidecar RSS in a pod after a login and verifications: {rss} KiB");
    }
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs a real node (tests/kube-node/start.sh); the test command runs it"]
async fn two_mini_programs_log_in_through_one_service() {
    let (client, _) = installed().await;
    let ns = TestNamespace::new(&client).await;
    shop_of(&ns, "examples/two-apps", 1).await;
    let http = http();
    let base = format!("http://{}", cluster_ip(&ns, "shop-api").await);
    let mut credentials = Vec::new();
    for app in ["wx0123456789abcdef", "wx00000000000000bb"] {
        let referer = format!("https://servicewechat.com/{app}/3/page-frame.html");
        let resp = http
            .post(format!("{base}/login"))
            .header("js_code", format!("carol_{:08x}", rand::random::<u32>()))
            .header("referer", &referer)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login to {app}");
        let credential = resp.headers()["user_session"].to_str().unwrap().to_owned();
        let seen: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(seen["headers"]["x-wx-appid"], app);
        assert_eq!(seen["headers"]["x-wxgate-tag-channel"], "release");
        credentials.push((app, credential));
    }
    // Each credential verifies as its own app, whichever app the Referer names.
    for (app, credential) in &credentials {
        let referer = "https://servicewechat.com/wx0123456789abcdef/0/page-frame.html";
        let (status, seen) = echo(
            &http,
            &format!("{base}/orders/1"),
            &[("user_session", credential), ("referer", referer)],
        )
        .await;
        assert_eq!(status, 200, "{seen}");
        assert_eq!(seen["headers"]["x-wx-appid"], *app);
        assert_eq!(seen["headers"]["x-wxgate-tag-channel"], "trial-or-develop");
    }
    // An AppID the plugin does not list: refused by the sidecar.
    let resp = http
        .post(format!("{base}/login"))
        .header("js_code", "carol_x")
        .header("x-mp-appid", "wxffffffffffffffff")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-wxgate-error"], "LOGIN_APPID_UNKNOWN");
    ns.delete().await;
}

/// The resident memory of the sidecars serving a namespace, read on the node (their
/// environment names the namespace).
fn sidecar_rss_kib(namespace: &str) -> Vec<u64> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        if !cmdline.starts_with(b"/wxgate-sidecar") {
            continue;
        }
        let env = std::fs::read(path.join("environ")).unwrap_or_default();
        let wanted = format!("WXGATE_NAMESPACE={namespace}");
        if !env.split(|b| *b == 0).any(|v| v == wanted.as_bytes()) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
        {
            found.push(kib);
        }
    }
    assert!(!found.is_empty(), "no sidecar process for {namespace}");
    found
}

#[tokio::test]
#[ignore = "needs a real node (tests/kube-node/start.sh); the test command runs it"]
async fn a_plugin_change_reaches_every_running_sidecar_within_seconds() {
    let (client, _) = installed().await;
    let ns = TestNamespace::new(&client).await;
    shop(&ns, 2).await;
    let http = http();
    let pods = ready_pods(&ns, "app=shop").await;
    let bindings: Api<wxgate_crds::binding::PluginBinding> = ns.typed();
    // The change: the binding covers the whole Service (a request without a credential to
    // /public is 401) or only /orders (it passes through: 200).
    let mut samples = Vec::new();
    for round in 0..20 {
        let only_orders = round % 2 == 0;
        let apis = if only_orders {
            serde_json::json!([{"path": "/orders", "match": "Prefix"}])
        } else {
            serde_json::Value::Null
        };
        let patch = serde_json::json!({"spec": {"apis": apis}});
        let start = Instant::now();
        bindings
            .patch(
                "mp-login-shop-api",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
        let expected = if only_orders { 200 } else { 401 };
        let mut slowest: f64 = 0.0;
        for pod in &pods {
            let url = format!("http://{}:15080/public", pod_ip(pod));
            eventually(Duration::from_secs(30), "the change in effect", || async {
                let status = http.get(&url).send().await.ok()?.status().as_u16();
                (status == expected).then_some(())
            })
            .await;
            slowest = slowest.max(ms_since(start));
        }
        samples.push(slowest);
    }
    println!(
        "plugin change -> new behaviour on both replicas, 20 changes: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        percentile(&samples, 100.0)
    );
    ns.delete().await;
}

/// Requests through the ClusterIP, each on a new connection (so each is balanced anew by
/// kube-proxy) or on kept-alive ones, until `stop`; counts successes and failures.
struct Load {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(url: String, credential: String) -> Self {
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for keep_alive in [false, false, true, true] {
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            let (url, credential) = (url.clone(), credential.clone());
            tasks.push(tokio::spawn(async move {
                let mut builder = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(10));
                if !keep_alive {
                    builder = builder.pool_max_idle_per_host(0);
                }
                let http = builder.build().unwrap();
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match http
                        .get(&url)
                        .header("user_session", &credential)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            errors.push(format!("status {}", r.status()));
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            errors.push(format!("{e:?}"));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                errors
            }));
        }
        Self {
            ok,
            failed,
            stop,
            tasks,
        }
    }

    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for t in self.tasks {
            errors.extend(t.await.unwrap());
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

#[tokio::test]
#[ignore = "needs a real node (tests/kube-node/start.sh); the test command runs it"]
async fn a_rolling_restart_under_load_drops_no_request_and_new_pods_accept_old_credentials() {
    let (client, _) = installed().await;
    let ns = TestNamespace::new(&client).await;
    shop(&ns, 2).await;
    let http = http();
    let base = format!("http://{}", cluster_ip(&ns, "shop-api").await);
    let credential = login(&http, &base, "bob").await;
    let before: Vec<String> = ready_pods(&ns, "app=shop")
        .await
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();

    let load = Load::start(format!("{base}/orders/1"), credential.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    kubectl(&["rollout", "restart", "deployment/shop", "-n", &ns.name]).await;
    kubectl(&[
        "rollout",
        "status",
        "deployment/shop",
        "-n",
        &ns.name,
        "--timeout=180s",
    ])
    .await;
    // Until the old pods are gone: their sidecars drain and their apps stop last.
    let pods: Api<Pod> = ns.typed();
    eventually(Duration::from_secs(90), "the old pods gone", || async {
        let left = pods
            .list(&ListParams::default().labels("app=shop"))
            .await
            .ok()?
            .items
            .iter()
            .filter(|p| before.contains(p.metadata.name.as_ref().unwrap()))
            .count();
        (left == 0).then_some(())
    })
    .await;
    let restart = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ok, failed, errors) = load.finish().await;
    println!(
        "rolling restart of 2 replicas under load: {ok} requests answered 200, {failed} failed, restart took {:.1} s",
        restart.as_secs_f64()
    );
    assert!(ok > 200, "too little load to tell: {ok}");
    assert_eq!(failed, 0, "failed requests: {errors:?}");

    // The replaced pods are injected again and accept the credential issued before.
    let after = ready_pods(&ns, "app=shop").await;
    assert_eq!(after.len(), 2);
    for pod in &after {
        assert!(!before.contains(pod.metadata.name.as_ref().unwrap()));
        assert_eq!(containers(pod), ["app", "wxgate-sidecar"]);
        let url = format!("http://{}:15080/orders/2", pod_ip(pod));
        let (status, seen) = echo(&http, &url, &[("user_session", &credential)]).await;
        assert_eq!(status, 200, "{seen}");
    }
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs a real node (tests/kube-node/start.sh); the test command runs it"]
async fn a_service_targeting_a_port_by_number_is_warned_about_and_the_pod_still_starts() {
    let (client, _) = installed().await;
    let ns = TestNamespace::new(&client).await;
    bind_shop(&ns, "8080").await;
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{ name: numeric, labels: {{ app: shop }} }}\nspec:\n  containers:\n    - name: app\n      image: wxgate/wxgate-echo-app:{VERSION}\n      imagePullPolicy: IfNotPresent\n      args: [\"--listen\", \"0.0.0.0:8080\"]\n      ports: [ {{ containerPort: 8080 }} ]\n"
    );
    let (ok, _, err) = kubectl_stdin(&["apply", "-n", &ns.name, "-f", "-"], &pod).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: wxgate: Service shop-api targets port 8080 by number"),
        "{err}"
    );
    let pods: Api<Pod> = ns.typed();
    let pod = eventually(Duration::from_secs(60), "the pod Ready", || async {
        pods.get("numeric").await.ok().filter(is_ready)
    })
    .await;
    assert_eq!(containers(&pod), ["app", "wxgate-sidecar"]);
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs a real node (tests/kube-node/start.sh); the test command runs it"]
async fn the_appsecret_stays_in_its_secret_and_the_sidecar_token_reads_no_secret() {
    let (client, _) = installed().await;
    let ns = TestNamespace::new(&client).await;
    shop(&ns, 1).await;
    let secret = "simulator-appsecret-0123456789abcdef";
    let pods = kubectl(&["get", "pods", "-n", &ns.name, "-o", "json"]).await;
    let cms = kubectl(&["get", "configmaps", "-n", &ns.name, "-o", "json"]).await;
    assert!(pods.contains("wxgate-sidecar"));
    assert!(!pods.contains(secret) && !cms.contains(secret));
    let pod = ready_pods(&ns, "app=shop").await.remove(0);
    let spec = pod.spec.clone().unwrap();
    let app = spec.containers.iter().find(|c| c.name == "app").unwrap();
    let sidecar = spec
        .containers
        .iter()
        .find(|c| c.name == "wxgate-sidecar")
        .unwrap();
    let mounts = |c: &k8s_openapi::api::core::v1::Container| -> Vec<String> {
        c.volume_mounts
            .iter()
            .flatten()
            .map(|m| m.name.clone())
            .collect()
    };
    assert!(mounts(sidecar).contains(&"wxgate-secret".to_owned()));
    assert!(!mounts(app).contains(&"wxgate-secret".to_owned()));
    assert!(
        app.env
            .iter()
            .flatten()
            .all(|e| !format!("{e:?}").contains(secret))
    );

    // The token the kubelet mounted for the sidecar (read from the node's volume folder).
    let uid = pod.metadata.uid.clone().unwrap();
    let token_path = node_dir().join(format!(
        "kubelet/root/pods/{uid}/volumes/kubernetes.io~projected/wxgate-token/token"
    ));
    let token = std::fs::read_to_string(&token_path)
        .unwrap_or_else(|e| panic!("{}: {e}", token_path.display()));
    let as_sidecar = client_for(&kubeconfig_with_token(token.trim()).await).await;
    let own: Api<ConfigMap> = Api::namespaced(as_sidecar.clone(), &ns.name);
    own.get("wxgate-shop-api").await.unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(as_sidecar.clone(), &ns.name);
    for name in ["shop-wechat", "wxgate-shop-api", "mp-login-credential-keys"] {
        let err = secrets.get(name).await.unwrap_err();
        assert!(
            matches!(&err, kube::Error::Api(s) if s.code == 403),
            "{name}: {err:?}"
        );
    }
    let err = secrets.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err:?}"
    );
    let elsewhere: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(as_sidecar, RELEASE_NAMESPACE);
    let err = elsewhere.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err:?}"
    );
    ns.delete().await;
}
