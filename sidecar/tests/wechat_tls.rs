//! TLS to WeChat is verified (threat 63): a WeChat endpoint whose certificate the sidecar does
//! not trust is refused before anything is sent; once its CA is trusted, logins work.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

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
    let bin = Binary::start(
        dir.path(),
        &format!("http://{app_addr}"),
        &base,
        &[
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ("WXGATE_LOG", "error"),
        ],
        &[],
    )
    .await;
    let traffic = bin.traffic;
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
