//! A real sidecar between the WeChat simulator and the echo app, all on 127.0.0.1, configured
//! from manifest files in a temporary folder.

#![allow(dead_code, clippy::unwrap_used)] // shared by several test binaries; panics are test failures

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Parser;
use wxgate_crds::keys::{CredentialKey, KeyRing, Kid};
use wxgate_sidecar::args::Args;
use wxgate_sidecar::credential::{Claims, Sealer};
use wxgate_sidecar::run::{Running, start};
use wxgate_sim::app::EchoApp;
use wxgate_sim::wechat::Simulator;

pub const APPID: &str = "wx0123456789abcdef";
pub const APPSECRET: &str = "CANARY-appsecret-6f1d";
pub const PLUGIN: &str = "default/mp-login";
/// A second mini program the simulator knows, for tests with two login plugins.
pub const APPID_B: &str = "wx00000000000000bb";
pub const APPSECRET_B: &str = "CANARY-appsecret-b-77c2";
/// A QQ mini program the simulator knows (QQ AppIDs are digits).
pub const QQ_APPID: &str = "1109876543";
pub const QQ_APPSECRET: &str = "CANARY-qq-appsecret-4e1a";
pub const KID: [u8; 4] = [0x0a, 0x0b, 0x0c, 0x0d];
pub const KEY: [u8; 32] = [7; 32];

/// What a test changes from the defaults.
#[derive(Clone)]
pub struct Setup {
    /// The `wechatMpLogin` block below `credentialsSecretRef`, as YAML indented by 4.
    pub login: String,
    /// The binding's `apis`, as YAML indented by 2 (empty: the whole Service).
    pub apis: String,
    /// Extra sidecar flags.
    pub args: Vec<String>,
    /// Whether to write the key ring Secret (else the sidecar generates one).
    pub key_ring: bool,
    /// More manifests, appended as they are.
    pub extra: String,
    /// The plugin's mini programs, as YAML indented by 4 (default: `appId` APPID with
    /// `credentialsSecretRef` `creds`).
    pub apps: String,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            login: "    login: { paths: [/login] }\n".into(),
            apis: String::new(),
            args: Vec::new(),
            key_ring: true,
            extra: String::new(),
            apps: format!("    appId: {APPID}\n    credentialsSecretRef: {{ name: creds }}\n"),
        }
    }
}

impl Setup {
    pub fn login(mut self, yaml: &str) -> Self {
        self.login = yaml.into();
        self
    }
    pub fn apis(mut self, yaml: &str) -> Self {
        self.apis = yaml.into();
        self
    }
    pub fn extra(mut self, yaml: &str) -> Self {
        self.extra = yaml.into();
        self
    }
    pub fn apps(mut self, yaml: &str) -> Self {
        self.apps = yaml.into();
        self
    }
    pub fn arg(mut self, flag: &str, value: &str) -> Self {
        self.args.push(flag.into());
        self.args.push(value.into());
        self
    }
}

pub fn manifests(setup: &Setup) -> String {
    let mut yaml = format!(
        "apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: {{ name: mp-login }}
spec:
  type: WeChatMpLogin
  wechatMpLogin:
{}{}---
apiVersion: wxgate.dev/v1alpha1
kind: PluginBinding
metadata: {{ name: shop }}
spec:
  pluginRef: {{ name: mp-login }}
  targetRef: {{ kind: Service, name: shop-api }}
{}---
apiVersion: v1
kind: Secret
metadata: {{ name: creds }}
stringData: {{ appsecret: {APPSECRET} }}
",
        setup.apps, setup.login, setup.apis
    );
    if setup.key_ring {
        yaml.push_str(&key_ring_yaml(&[(KID, KEY)], KID));
    }
    yaml.push_str(&setup.extra);
    yaml
}

/// A second login plugin, of APPID_B, bound to `/b` (prefix) with login path `/b/login`;
/// `more` is added to its `wechatMpLogin` block (YAML indented by 4).
pub fn second_plugin(more: &str) -> String {
    format!(
        "---
apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: {{ name: mp-login-b }}
spec:
  type: WeChatMpLogin
  wechatMpLogin:
    appId: {APPID_B}
    credentialsSecretRef: {{ name: creds-b }}
    login: {{ paths: [/b/login] }}
{more}---
apiVersion: wxgate.dev/v1alpha1
kind: PluginBinding
metadata: {{ name: shop-b }}
spec:
  pluginRef: {{ name: mp-login-b }}
  targetRef: {{ name: shop-api }}
  apis: [ {{ path: /b, match: Prefix }} ]
---
apiVersion: v1
kind: Secret
metadata: {{ name: creds-b }}
stringData: {{ appsecret: {APPSECRET_B} }}
"
    )
}

pub fn key_ring_yaml(keys: &[([u8; 4], [u8; 32])], active: [u8; 4]) -> String {
    let mut yaml = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: mp-login-credential-keys }}\ndata:\n  active: {}\n",
        STANDARD.encode(hex::encode(active))
    );
    for (kid, key) in keys {
        yaml.push_str(&format!(
            "  \"{}\": {}\n",
            hex::encode(kid),
            STANDARD.encode(key)
        ));
    }
    yaml
}

pub struct Env {
    pub sim: Simulator,
    pub app: EchoApp,
    pub sidecar: Running,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
    pub app_addr: SocketAddr,
    pub sim_addr: SocketAddr,
}

impl Env {
    pub async fn start(setup: Setup) -> Env {
        let sim = Simulator::new(HashMap::from([
            (APPID.to_owned(), APPSECRET.to_owned()),
            (APPID_B.to_owned(), APPSECRET_B.to_owned()),
            (QQ_APPID.to_owned(), QQ_APPSECRET.to_owned()),
        ]));
        let sim_addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), sim.router())
            .await
            .unwrap();
        let app = EchoApp::default();
        let app_addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), app.router())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wxgate.yaml"), manifests(&setup)).unwrap();
        let sidecar = start_sidecar(
            dir.path(),
            &format!("http://{app_addr}"),
            &format!("http://{sim_addr}"),
            &setup.args,
        )
        .await;
        let env = Env {
            sim,
            app,
            base: format!("http://{}", sidecar.traffic),
            admin: format!("http://{}", sidecar.admin),
            sidecar,
            dir,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            app_addr,
            sim_addr,
        };
        env.wait_ready().await;
        env
    }

    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.sidecar.active.is_ready() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("sidecar not ready");
    }

    /// Rewrites the manifest file.
    pub fn write(&self, yaml: &str) {
        let tmp = self.dir.path().join(".wxgate.yaml.tmp");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(tmp, self.dir.path().join("wxgate.yaml")).unwrap();
    }

    /// Rewrites the manifest file with a config that loads, and waits until it is in effect.
    pub async fn reload(&self, yaml: &str) {
        let before = self.sidecar.active.version();
        self.write(yaml);
        for _ in 0..300 {
            if self.sidecar.active.version() != before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("config did not reload");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in with a code at the default location and returns the credential.
    pub async fn login(&self, code: &str) -> String {
        let r = self
            .http
            .post(self.url("/login"))
            .header("js_code", code)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        r.headers()["user_session"].to_str().unwrap().to_owned()
    }

    /// The admin port's /metrics text.
    pub async fn metrics(&self) -> String {
        metrics_at(&self.http, self.sidecar.admin).await
    }

    /// A GET with a credential in the `user_session` header; returns (status, echo or error JSON, headers).
    pub async fn get_with(
        &self,
        path: &str,
        credential: &str,
    ) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
        let r = self
            .http
            .get(self.url(path))
            .header("user_session", credential)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(serde_json::Value::Null);
        (status, body, headers)
    }
}

pub async fn start_sidecar(
    dir: &std::path::Path,
    upstream: &str,
    wechat: &str,
    extra: &[String],
) -> Running {
    let mut argv: Vec<String> = [
        "wxgate-sidecar",
        "--manifests",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--upstream",
        upstream,
        "--wechat-api-base",
        wechat,
        "--qq-api-base",
        &format!("{wechat}/qq"),
        "--wechat-retry-delay-ms",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(extra.iter().cloned());
    start(Args::parse_from(argv)).await.unwrap()
}

/// The /metrics text of an admin port.
pub async fn metrics_at(http: &reqwest::Client, admin: SocketAddr) -> String {
    http.get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A sealer with the test key, to mint credentials the sidecar must accept or refuse.
pub fn sealer() -> Sealer {
    let ring = KeyRing {
        active: Kid(KID),
        keys: [(Kid(KID), CredentialKey::new(KEY))].into(),
    };
    Sealer::new(&ring, &[APPID], PLUGIN).unwrap()
}

pub fn claims(openid: &str, iat: i64, exp: i64) -> Claims {
    Claims {
        openid: openid.into(),
        unionid: None,
        appid: APPID.into(),
        iat,
        exp,
        jti: "test".into(),
        tags: None,
        sk: None,
        phone: None,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends raw bytes and returns everything the server answers until it closes (or 3 s pass).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The `wxgate-sidecar` binary in a process of its own, its output in `<dir>/sidecar.out`;
/// killed when dropped.
pub struct Binary {
    child: std::process::Child,
    pub traffic: SocketAddr,
    pub admin: SocketAddr,
    out: std::path::PathBuf,
}

impl Binary {
    /// Starts the binary on the manifests in `dir` and waits until it is ready.
    pub async fn start(
        dir: &std::path::Path,
        upstream: &str,
        wechat: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Binary {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let (traffic, admin) = (free(), free());
        let out = dir.join("sidecar.out");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate-sidecar"))
            .args(["--manifests", dir.to_str().unwrap()])
            .args(["--listen", &traffic.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .args(["--upstream", upstream, "--wechat-api-base", wechat])
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .unwrap();
        let ready = format!("http://{admin}/ready");
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if http
                .get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Binary {
            child,
            traffic,
            admin,
            out,
        }
    }

    /// Stops it as Kubernetes does (SIGTERM), waits for the exit and returns what it printed.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one request on a kept-alive connection and reads its answer (head and a
/// Content-Length body); returns the head in lowercase.
pub async fn exchange(s: &mut tokio::net::TcpStream, path: &str, credential: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET {path} HTTP/1.1\r\nHost: shop\r\nuser_session: {credential}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "closed mid-answer");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    head
}

/// Whether the server closes the connection within `limit` (reads EOF).
pub async fn closed_within(s: &mut tokio::net::TcpStream, limit: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(limit, s.read_to_end(&mut rest)).await,
        Ok(Ok(0))
    )
}
