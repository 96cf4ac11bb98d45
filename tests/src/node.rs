//! Helpers for the tests on a real node (`tests/kube-node/start.sh DIR`): the test command runs
//! them with `WXGATE_E2E_KUBECONFIG=DIR/kubeconfig` and `WXGATE_NODE_DIR=DIR`. wxgate is
//! installed with Helm once per test binary, with the images the node imported and a WeChat
//! simulator Deployment as the sidecars' WeChat.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Client;
use kube::api::{Api, ListParams};
use tokio::sync::OnceCell;

use crate::{TestNamespace, eventually, helm, repo_root};

/// The node's name (`tests/kube-node/node.env`).
pub const NODE: &str = "wxgate-node";
/// Namespace of the WeChat simulator the sidecars call.
pub const SIM_NAMESPACE: &str = "wxgate-node-sim";
/// The Helm release and namespace of wxgate.
pub const RELEASE: &str = "wxgate";
pub const RELEASE_NAMESPACE: &str = "wxgate-system";
/// The images' tag: the chart's appVersion.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The node's state folder, failing clearly when these tests run without a node.
pub fn node_dir() -> PathBuf {
    let dir = std::env::var_os("WXGATE_NODE_DIR")
        .filter(|d| !d.is_empty())
        .expect(
            "these tests need a real node: run `tests/kube-node/start.sh DIR`, then set \
         WXGATE_NODE_DIR=DIR and WXGATE_E2E_KUBECONFIG=DIR/kubeconfig (scripts/test.sh does)",
        );
    PathBuf::from(dir)
}

static INSTALLED: OnceCell<String> = OnceCell::const_new();

/// A client for the node's API server, once the node is Ready and wxgate is installed; also
/// returns the simulator's base URL (a ClusterIP) the sidecars were given.
pub async fn installed() -> (Client, String) {
    let client = crate::client().await;
    let sim = INSTALLED
        .get_or_init(|| async {
            let dir = node_dir();
            assert!(
                dir.join("node-ready").exists(),
                "no node is running in {}",
                dir.display()
            );
            let nodes: Api<Node> = Api::all(client.clone());
            let node = nodes.get(NODE).await.unwrap();
            let ready = node
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            assert!(ready, "node {NODE} is not Ready");
            let sim = simulator(&client).await;
            let set_sim = format!("sidecar.wechatApiBase={sim}");
            let set_qq = format!("sidecar.qqApiBase={sim}/qq");
            let ok = |r: (bool, String, String), what: &str| {
                assert!(r.0, "{what}: {}\n{}", r.1, r.2);
            };
            ok(
                helm(&[
                    "upgrade",
                    "--install",
                    "wxgate-crds",
                    "charts/wxgate-crds",
                    "--wait",
                ])
                .await,
                "helm install wxgate-crds",
            );
            ok(
                helm(&[
                    "upgrade",
                    "--install",
                    RELEASE,
                    "charts/wxgate",
                    "-n",
                    RELEASE_NAMESPACE,
                    "--create-namespace",
                    "--set",
                    &set_sim,
                    "--set",
                    &set_qq,
                    "--wait",
                    "--timeout",
                    "3m",
                ])
                .await,
                "helm install wxgate",
            );
            sim
        })
        .await
        .clone();
    (client, sim)
}

/// The WeChat simulator as a Deployment and Service of its own namespace; its base URL.
async fn simulator(client: &Client) -> String {
    let ns = TestNamespace::named(client, SIM_NAMESPACE).await;
    let image = format!("wxgate/wxgate-wechat-sim:{VERSION}");
    let yaml = format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{ name: wechat-sim }}
spec:
  replicas: 1
  selector: {{ matchLabels: {{ app: wechat-sim }} }}
  template:
    metadata: {{ labels: {{ app: wechat-sim }} }}
    spec:
      containers:
        - name: sim
          image: {image}
          imagePullPolicy: IfNotPresent
          args: ["--listen", "0.0.0.0:18081"]
          ports: [ {{ name: http, containerPort: 18081 }} ]
          readinessProbe: {{ tcpSocket: {{ port: http }}, periodSeconds: 1 }}
---
apiVersion: v1
kind: Service
metadata: {{ name: wechat-sim }}
spec: {{ selector: {{ app: wechat-sim }}, ports: [ {{ port: 18081, targetPort: http }} ] }}
"#
    );
    ns.apply_yaml(&yaml, crate::MANAGER).await.unwrap();
    deployment_ready(&ns, "wechat-sim", 1).await;
    let svc: Service = ns.typed::<Service>().get("wechat-sim").await.unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    format!("http://{ip}:18081")
}

/// Waits until a Deployment has `replicas` updated, available replicas and no others.
pub async fn deployment_ready(ns: &TestNamespace, name: &str, replicas: i32) {
    let api: Api<Deployment> = ns.typed();
    eventually(
        Duration::from_secs(120),
        &format!("Deployment {name} ready"),
        || async {
            let d = api.get(name).await.ok()?;
            let generation = d.metadata.generation;
            let s = d.status?;
            (s.observed_generation == generation
                && s.updated_replicas == Some(replicas)
                && s.available_replicas == Some(replicas)
                && s.replicas == Some(replicas))
            .then_some(())
        },
    )
    .await;
}

/// The running pods of a namespace matching a label selector that are Ready and not
/// terminating.
pub async fn ready_pods(ns: &TestNamespace, selector: &str) -> Vec<Pod> {
    let pods: Api<Pod> = ns.typed();
    pods.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
        .collect()
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The IP of a pod.
pub fn pod_ip(pod: &Pod) -> String {
    pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap()
}

/// The ClusterIP of a Service.
pub async fn cluster_ip(ns: &TestNamespace, service: &str) -> String {
    let svc: Service = ns.typed::<Service>().get(service).await.unwrap();
    svc.spec.unwrap().cluster_ip.unwrap()
}

/// The standard app of these tests: `bind_shop(ns, "http")`, then an echo app Deployment of
/// `replicas` with a readiness probe on the port named `http`. Waits until every pod is Ready
/// and the ClusterIP is served.
pub async fn shop(ns: &TestNamespace, replicas: i32) {
    shop_of(ns, "examples/quickstart", replicas).await;
}

/// [`shop`] with another example folder's plugin, Secrets and binding.
pub async fn shop_of(ns: &TestNamespace, example: &str, replicas: i32) {
    bind_example(ns, example, "http").await;
    ns.apply_yaml(&shop_deployment(replicas), crate::MANAGER)
        .await
        .unwrap();
    deployment_ready(ns, "shop", replicas).await;
    // kube-proxy programs the ClusterIP once the endpoints are ready (within its sync period).
    let ip = cluster_ip(ns, "shop-api").await;
    eventually(Duration::from_secs(30), "the ClusterIP served", || async {
        tokio::net::TcpStream::connect((ip.as_str(), 80)).await.ok()
    })
    .await;
}

/// Opts `ns` in to injection and applies the quickstart's plugin, Secret and binding for Service
/// `shop-api`, then the Service (port 80 targeting `target`, a port name or number). Returns once
/// the operator has rendered the Service's config, so pods created next are injected.
pub async fn bind_shop(ns: &TestNamespace, target: &str) {
    bind_example(ns, "examples/quickstart", target).await;
}

/// [`bind_shop`] with the plugin, Secrets and binding of another example folder.
pub async fn bind_example(ns: &TestNamespace, example: &str, target: &str) {
    ns.label("wxgate.dev/injection", "enabled").await;
    for file in ["plugin.yaml", "secret.yaml", "binding.yaml"] {
        let yaml = std::fs::read_to_string(repo_root().join(example).join(file)).unwrap();
        ns.apply_yaml(&yaml, crate::MANAGER).await.unwrap();
    }
    ns.apply_yaml(&shop_service(target), crate::MANAGER)
        .await
        .unwrap();
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = ns.typed();
    eventually(
        Duration::from_secs(30),
        "ConfigMap wxgate-shop-api",
        || async { cms.get_opt("wxgate-shop-api").await.ok().flatten() },
    )
    .await;
}

/// The shop Service; `target` is its targetPort (a name or a number).
pub fn shop_service(target: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: shop-api }}\nspec: {{ selector: {{ app: shop }}, ports: [ {{ port: 80, targetPort: {target} }} ] }}\n"
    )
}

/// The shop Deployment: an echo app with a port named `http` and a readiness probe on it.
pub fn shop_deployment(replicas: i32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{ name: shop }}
spec:
  replicas: {replicas}
  selector: {{ matchLabels: {{ app: shop }} }}
  template:
    metadata: {{ labels: {{ app: shop }} }}
    spec:
      containers:
        - name: app
          image: wxgate/wxgate-echo-app:{VERSION}
          imagePullPolicy: IfNotPresent
          args: ["--listen", "0.0.0.0:8080", "--redact-session-key"]
          ports: [ {{ name: http, containerPort: 8080 }} ]
          readinessProbe: {{ httpGet: {{ path: /ready, port: http }}, periodSeconds: 1 }}
"#
    )
}

/// A login through `base` (`http://ip[:port]`) with a fresh simulator code for `user`; the
/// credential.
pub async fn login(http: &reqwest::Client, base: &str, user: &str) -> String {
    let code = format!("{user}_{:08x}", rand::random::<u32>());
    let resp = http
        .post(format!("{base}/login"))
        .header("js_code", code)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "login through {base}");
    resp.headers()["user_session"].to_str().unwrap().to_owned()
}

/// What the echo app saw of a request (its JSON answer), with the status.
pub async fn echo(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = http.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// Milliseconds since `start`, for figures.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// `pct` percentile (0-100) of samples, nearest rank.
pub fn percentile(samples: &[f64], pct: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((pct / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}
