//! Where the config comes from: manifest files (standalone) or the operator's ConfigMap and
//! mounted Secret (in a cluster). Either way a new config is compiled and swapped in whole; a
//! bad one leaves the last good config in effect.

pub mod cluster;
pub mod manifests;
mod watch;

pub use watch::{folder as watch_folder, next as next_change};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::active::{Active, ActiveConfig};
use crate::metrics::Metrics;

/// Publishes configs to the request path.
#[derive(Clone)]
pub struct Publisher {
    active: Arc<ActiveConfig>,
    metrics: Arc<Metrics>,
    /// Whether the last load failed, so that the next good one is logged even when it is the
    /// version already in effect (a broken manifest fixed back).
    failing: Arc<AtomicBool>,
    /// Opened credentials each login plugin remembers (`--credential-cache`).
    credential_cache: usize,
}

impl Publisher {
    pub fn new(active: Arc<ActiveConfig>, metrics: Arc<Metrics>, credential_cache: usize) -> Self {
        Self {
            active,
            metrics,
            failing: Arc::default(),
            credential_cache,
        }
    }

    /// Swaps in a new config, or keeps the last good one and says why not.
    pub fn publish(&self, loaded: Result<Active, String>) {
        match loaded {
            Ok(mut active) => {
                active.remember_credentials(self.credential_cache);
                let version = active.version.clone();
                let was_failing = self.failing.swap(false, Ordering::Relaxed);
                if self.active.version().as_deref() != Some(version.as_str()) {
                    tracing::info!(version = %version, "config in effect");
                } else if was_failing {
                    tracing::info!(version = %version, "config loaded again; the version in effect is unchanged");
                }
                self.active.store(active);
                self.metrics.reload(true, Some(&version));
            }
            Err(why) => {
                self.failing.store(true, Ordering::Relaxed);
                match self.active.version() {
                    Some(v) => {
                        tracing::warn!(reason = %why, kept = %v, "config not loaded; keeping the last good one")
                    }
                    None => tracing::warn!(reason = %why, "config not loaded; not ready"),
                }
                self.metrics.reload(false, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn quickstart() -> Active {
        let text = [
            include_str!("../../../examples/quickstart/plugin.yaml"),
            include_str!("../../../examples/quickstart/binding.yaml"),
            include_str!("../../../examples/quickstart/secret.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata: { name: mp-login-credential-keys }\ndata:\n  active: MGEwYjBjMGQ=\n  0a0b0c0d: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        ]
        .join("\n---\n");
        let objects = wxgate_crds::manifests::parse(&text).expect("the quickstart parses");
        manifests::compile(objects, None, &mut manifests::EphemeralKeys::default())
            .expect("the quickstart compiles")
    }

    #[test]
    fn a_config_fixed_back_to_the_version_in_effect_is_logged_as_loaded_again() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let publisher = Publisher::new(Arc::default(), Arc::default(), 0);
        tracing::subscriber::with_default(subscriber, || {
            publisher.publish(Ok(quickstart()));
            publisher.publish(Ok(quickstart()));
            publisher.publish(Err("plugin.yaml: broken".into()));
            publisher.publish(Ok(quickstart()));
        });
        let logs = String::from_utf8(captured.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.len(), 3, "{logs}");
        assert!(lines[0].contains("config in effect"), "{logs}");
        assert!(lines[1].contains("config not loaded"), "{logs}");
        assert!(lines[2].contains("config loaded again"), "{logs}");
    }
}
