//! TLS to WeChat is verified (threat 63): a WeChat endpoint whose certificate the sidecar does
//! not trust is refused before anything is sent; once its CA is trusted, logins work.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{ServerConfig, crypto::aws_lc_rs};
use wxgate_sim::wechat::{self, Simulator};

/// Accepts TLS connections; failed handshakes are dropped and counted by the client only.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, peer)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The simulator behind a self-signed certificate for 127.0.0.1; returns its base URL and the
/// certificate (PEM).
async fn wechat_over_tls(sim: &Simulator) -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let listener = TlsListener {
        tcp: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let router = sim.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("https://{addr}"), cert.cert.pem())
}

#[tokio::test]
async fn an_untrusted_wechat_certificate_is_refused_and_a_trusted_one_works() {
    let sim = Simulator::new([(APPID.to_owned(), APPSECRET.to_owned())].into());
    let (base, ca_pem) = wechat_over_tls(&sim).await;
    let app = wxgate_sim::app::EchoApp::default();
    let app_addr = wxgate_sim::spawn(([127, 0, 0, 1], 0).into(), app.router())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wxgate.yaml"), manifests(&Setup::default())).unwrap();
    let http = reqwest::Client::new();

    // In process, with the system's roots only: the handshake fails, WeChat gets nothing.
    let sidecar = start_sidecar(dir.path(), &format!("http://{app_addr}"), &base, &[]).await;
    let r = http
        .post(format!("http://{}/login", sidecar.traffic))
        .header("js_code", "nora_1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "WX_UNAVAILABLE");
    assert_eq!(sim.total(), 0, "no request reached the untrusted endpoint");
    sidecar.stop().await;

    // The binary, trusting the test CA through SSL_CERT_FILE: the login goes through.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (traffic, admin) = (free(), free());
    let _child = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_wxgate-sidecar"))
            .args(["--manifests", dir.path().to_str().unwrap()])
            .args([
                "--listen",
                &traffic.to_string(),
                "--admin-listen",
                &admin.to_string(),
            ])
            .args([
                "--upstream",
                &format!("http://{app_addr}"),
                "--wechat-api-base",
                &base,
            ])
            .env("SSL_CERT_FILE", &ca)
            .env("WXGATE_LOG", "error")
            .spawn()
            .unwrap(),
    );
    let ready = format!("http://{admin}/ready");
    for _ in 0..200 {
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
    let r = http
        .post(format!("http://{traffic}/login"))
        .header("js_code", "nora_2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["headers"]["x-wx-openid"],
        wechat::openid(APPID, "nora_2").as_str()
    );
    assert_eq!(sim.total(), 1);
}

/// A child process, stopped when the test ends (passed or not).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
