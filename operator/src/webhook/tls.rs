//! The webhook's TLS: certificate and key from PEM files (`tls.crt`, `tls.key` in a folder,
//! as a Secret mount gives them), re-read when they change, so a rotated certificate is served
//! without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

/// How often the files are checked for a change.
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Reloading {
    dir: PathBuf,
    state: Mutex<(Arc<CertifiedKey>, Option<SystemTime>, Instant)>,
}

fn modified(dir: &Path) -> Option<SystemTime> {
    ["tls.crt", "tls.key"]
        .iter()
        .filter_map(|f| {
            std::fs::metadata(dir.join(f))
                .and_then(|m| m.modified())
                .ok()
        })
        .max()
}

fn read(dir: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("tls.crt"))?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key"))?;
    let signing = aws_lc_rs::sign::any_supported_type(&key)?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.2.elapsed() >= RECHECK {
            state.2 = Instant::now();
            let now = modified(&self.dir);
            if now != state.1 {
                match read(&self.dir) {
                    Ok(key) => {
                        tracing::info!(dir = %self.dir.display(), "webhook certificate reloaded");
                        *state = (key, now, Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook certificate not reloaded; serving the previous one")
                    }
                }
            }
        }
        Some(Arc::clone(&state.0))
    }
}

/// A TLS acceptor for the certificate in `dir`.
pub fn load(dir: &Path) -> anyhow::Result<TlsAcceptor> {
    let key = read(dir)?;
    let resolver = Reloading {
        dir: dir.to_owned(),
        state: Mutex::new((key, modified(dir), Instant::now())),
    };
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e: rustls::Error| anyhow::anyhow!(e))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    Ok(TlsAcceptor::from(Arc::new(config)))
}
