//! Helpers for wxgate's end-to-end tests against a real kube-apiserver.
//!
//! [`cluster`] gives a client for the harness: from `WXGATE_E2E_KUBECONFIG` (or `KUBECONFIG`)
//! when the test command started it, else by starting `tests/kube-apiserver/start.sh` once per
//! test binary. Each test works in its own namespace ([`TestNamespace`]).

#![allow(clippy::unwrap_used)] // test support: a panic is the failure report

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Discovery};
use tokio::sync::OnceCell;

pub mod node;

/// Field manager of objects the tests apply.
pub const MANAGER: &str = "wxgate-e2e";

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

static KUBECONFIG: OnceCell<PathBuf> = OnceCell::const_new();

/// Path of the harness's admin kubeconfig, starting the harness if no one did.
pub async fn kubeconfig() -> PathBuf {
    KUBECONFIG
        .get_or_init(|| async {
            for var in ["WXGATE_E2E_KUBECONFIG", "KUBECONFIG"] {
                if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
                    return PathBuf::from(p);
                }
            }
            // Nobody started it: start one for this test binary. It lives until the machine
            // cleans its temp folder; `tests/kube-apiserver/stop.sh DIR` stops it.
            let dir = std::env::temp_dir().join(format!("wxgate-e2e-{}", std::process::id()));
            let status = std::process::Command::new("bash")
                .arg(repo_root().join("tests/kube-apiserver/start.sh"))
                .arg(&dir)
                .status()
                .expect("bash runs");
            assert!(
                status.success(),
                "could not start the kube-apiserver harness (see above)"
            );
            dir.join("kubeconfig")
        })
        .await
        .clone()
}

/// A client with the harness's admin credentials.
pub async fn client() -> Client {
    client_for(&kubeconfig().await).await
}

pub async fn client_for(kubeconfig: &Path) -> Client {
    wxgate_crds::client::client(Some(kubeconfig)).await.unwrap()
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Applies the CRDs from the chart (as committed) once, and waits until they are Established.
pub async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| async {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for file in ["gatewayplugins.yaml", "pluginbindings.yaml"] {
            let path = repo_root()
                .join(wxgate_crds::crd::CHART_TEMPLATES_DIR)
                .join(file);
            let crd: CustomResourceDefinition =
                serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let name = crd.metadata.name.clone().unwrap();
            api.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap();
            within(
                Duration::from_secs(30),
                await_condition(api.clone(), &name, conditions::is_crd_established()),
            )
            .await
            .unwrap();
        }
    })
    .await;
}

/// Awaits a future, failing the test after `limit`.
pub async fn within<F: std::future::Future>(limit: Duration, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?}"))
}

/// A namespace of one test, named `wxgate-e2e-<random>`.
pub struct TestNamespace {
    pub name: String,
    pub client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client) -> Self {
        let name = format!("wxgate-e2e-{:08x}", rand::random::<u32>());
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        Self {
            name,
            client: client.clone(),
        }
    }

    /// A namespace of a fixed name, created unless it exists (shared by a test binary's tests).
    pub async fn named(client: &Client, name: &str) -> Self {
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        Api::<Namespace>::all(client.clone())
            .patch(name, &PatchParams::apply(MANAGER), &Patch::Apply(&ns))
            .await
            .unwrap();
        Self {
            name: name.to_owned(),
            client: client.clone(),
        }
    }

    /// Server-side applies every document of a YAML text into this namespace (documents may
    /// name none), as `manager`; returns the first error the server gives.
    pub async fn apply_yaml(
        &self,
        yaml: &str,
        manager: &str,
    ) -> Result<Vec<DynamicObject>, kube::Error> {
        let discovery = Discovery::new(self.client.clone()).run().await?;
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
        let mut applied = Vec::new();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let mut obj: DynamicObject = serde_json::from_value(doc).unwrap();
            let tm = obj.types.clone().unwrap();
            let gvk = GroupVersionKind::try_from(&tm).unwrap();
            let (ar, caps) = discovery
                .resolve_gvk(&gvk)
                .unwrap_or_else(|| panic!("{gvk:?} is not served"));
            obj.metadata.namespace = Some(self.name.clone());
            let api = self.api(&ar, &caps);
            let name = obj.metadata.name.clone().unwrap();
            applied.push(
                api.patch(
                    &name,
                    &PatchParams::apply(manager).force(),
                    &Patch::Apply(&obj),
                )
                .await?,
            );
        }
        Ok(applied)
    }

    fn api(&self, ar: &ApiResource, caps: &ApiCapabilities) -> Api<DynamicObject> {
        match caps.scope {
            Scope::Namespaced => Api::namespaced_with(self.client.clone(), &self.name, ar),
            Scope::Cluster => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Deletes the namespace (and so its pods: on a real node they hold resources).
    pub async fn delete(self) {
        Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &Default::default())
            .await
            .unwrap();
    }

    /// Adds a label to the namespace.
    pub async fn label(&self, key: &str, value: &str) {
        let patch = serde_json::json!({"metadata": {"labels": {key: value}}});
        Api::<Namespace>::all(self.client.clone())
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// A typed API in this namespace.
    pub fn typed<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

/// Runs kubectl (from PATH, else the one `tests/install-helm.sh` installs) against the harness
/// with a fresh discovery cache; returns stdout, failing the test on a non-zero exit.
pub async fn kubectl(args: &[&str]) -> String {
    let (ok, out, err) = kubectl_status(args).await;
    assert!(ok, "kubectl {args:?}: {err}");
    out
}

/// Runs kubectl like [`kubectl`] and returns (success, stdout, stderr).
pub async fn kubectl_status(args: &[&str]) -> (bool, String, String) {
    let kubeconfig = kubeconfig().await;
    let bin = pinned_tool("kubectl/kubectl");
    let cache = std::env::temp_dir().join(format!(
        "wxgate-e2e-kubectl-cache-{:08x}",
        rand::random::<u32>()
    ));
    let out = std::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A token for a ServiceAccount of a namespace (TokenRequest), creating the account.
pub async fn service_account_token(ns: &TestNamespace, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let sa = format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{ name: {name} }}\n");
    ns.apply_yaml(&sa, MANAGER).await.unwrap();
    let api: Api<ServiceAccount> = ns.typed();
    let request = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": [], "expirationSeconds": 3600}});
    let issued: TokenRequest = api
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap();
    issued.status.unwrap().token
}

/// Polls `check` every 50 ms until it gives `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A kubeconfig like the harness's, but authenticating with `token` (a ServiceAccount's).
pub async fn kubeconfig_with_token(token: &str) -> PathBuf {
    let admin = kubeconfig().await;
    let mut kc: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&admin).unwrap()).unwrap();
    for user in kc["users"].as_array_mut().unwrap() {
        user["user"] = serde_json::json!({ "token": token });
    }
    let path = std::env::temp_dir().join(format!(
        "wxgate-e2e-kubeconfig-{:08x}.json",
        rand::random::<u32>()
    ));
    std::fs::write(&path, serde_json::to_vec(&kc).unwrap()).unwrap();
    path
}

/// An operator on its own thread and runtime (a test's runtime ends with the test), started
/// with these flags after `--kubeconfig` and `--admin-listen 127.0.0.1:0`. Returns its webhook
/// address, if any, and a sender whose drop stops it.
pub async fn spawn_operator(
    flags: &[&str],
) -> (
    Option<std::net::SocketAddr>,
    tokio::sync::oneshot::Sender<()>,
) {
    spawn_operator_as(&kubeconfig().await, flags).await
}

/// [`spawn_operator`] with the credentials of another kubeconfig.
pub async fn spawn_operator_as(
    kubeconfig: &Path,
    flags: &[&str],
) -> (
    Option<std::net::SocketAddr>,
    tokio::sync::oneshot::Sender<()>,
) {
    use clap::Parser;
    let mut argv: Vec<String> = [
        "wxgate-operator",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--admin-listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(flags.iter().map(|s| s.to_string()));
    let args = wxgate_operator::args::Args::parse_from(argv);
    let (started, wait) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let running = wxgate_operator::run::start(args).await.unwrap();
            let _ = started.send(running.webhook);
            let _ = stopped.await;
            running.stop().await;
        });
    });
    (wait.await.unwrap(), stop)
}

/// A sidecar in cluster mode (in this test's runtime) serving Service `shop-api` of a
/// namespace: ConfigMap by watch with `kubeconfig`'s credentials, Secret from `secret_dir`, in
/// front of an echo app, with the WeChat simulator.
pub async fn cluster_sidecar(
    namespace: &str,
    kubeconfig: &Path,
    secret_dir: &Path,
) -> wxgate_sidecar::run::Running {
    use clap::Parser;
    let sim = wxgate_sim::wechat::Simulator::default();
    let sim_addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), sim.router())
        .await
        .unwrap();
    let app = wxgate_sim::app::EchoApp::default();
    let app_addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), app.router())
        .await
        .unwrap();
    let args = wxgate_sidecar::args::Args::parse_from([
        "wxgate-sidecar",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--upstream",
        &format!("http://{app_addr}"),
        "--wechat-api-base",
        &format!("http://{sim_addr}"),
        "--service",
        "shop-api",
        "--namespace",
        namespace,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--secret-dir",
        secret_dir.to_str().unwrap(),
        "--access-log",
        "false",
    ]);
    let sidecar = wxgate_sidecar::run::start(args).await.unwrap();
    eventually(Duration::from_secs(20), "sidecar ready", || async {
        sidecar.active.is_ready().then_some(())
    })
    .await;
    sidecar
}

/// A binary of the pinned helm and kubectl (`tests/install-helm.sh`, cached under
/// `~/.cache`), never whatever `kubectl` comes first on PATH (a kubectl of another minor
/// version behaves differently). Installed once per test process; a failure says why.
pub fn pinned_tool(relative: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let script = repo_root().join("tests/install-helm.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "the pinned helm and kubectl could not be installed ({}): {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    });
    let bin = dir.join(relative);
    assert!(
        bin.is_file(),
        "{} is missing; remove {} and run the tests again",
        bin.display(),
        dir.display()
    );
    bin
}

/// Runs the pinned helm (`tests/install-helm.sh`) against the harness; returns (success, stdout,
/// stderr).
pub async fn helm(args: &[&str]) -> (bool, String, String) {
    let bin = pinned_tool("helm/helm");
    let out = std::process::Command::new(bin)
        .current_dir(repo_root())
        .env("KUBECONFIG", kubeconfig().await)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("wxgate-e2e-helm/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("wxgate-e2e-helm/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("wxgate-e2e-helm/data"),
        )
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kubectl with a manifest on stdin; returns (success, stdout, stderr).
pub async fn kubectl_stdin(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(pinned_tool("kubectl/kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig().await)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
