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

    /// Swaps in a new config, or keeps the last good one and says why not. A config of the
    /// version already in effect (the same content: a re-list, a touched file) is not swapped
    /// in, so the one in effect keeps its remembered credentials.
    pub fn publish(&self, loaded: Result<Active, String>) {
        match loaded {
            Ok(mut active) => {
                let version = active.version.clone();
                let was_failing = self.failing.swap(false, Ordering::Relaxed);
                if self.active.version().as_deref() != Some(version.as_str()) {
                    tracing::info!(version = %version, "config in effect");
                    active.remember_credentials(self.credential_cache);
                    self.active.store(active);
                } else if was_failing {
                    tracing::info!(version = %version, "config loaded again; the version in effect is unchanged");
                }
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

    #[test]
    fn a_config_of_the_version_in_effect_keeps_the_one_in_effect_and_what_it_remembers() {
        // Logged to a subscriber of its own: a callsite first reached without one would be
        // muted for the test beside it that reads the logs.
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let active = Arc::<ActiveConfig>::default();
            let publisher = Publisher::new(Arc::clone(&active), Arc::default(), 16);
            publisher.publish(Ok(quickstart()));
            let first = active.load().expect("a config in effect");
            let plugin = &first.plugins[0];
            let now = 1_800_000_000;
            let credential = plugin.sealer.seal(&crate::credential::Claims {
                openid: "oAlice0123456789".into(),
                unionid: None,
                appid: plugin.apps[0].app_id.clone(),
                iat: now,
                exp: now + 3600,
                jti: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                tags: None,
                sk: None,
                phone: None,
            });
            let remembered = plugin.sealer.verify(&credential, now, None).unwrap();

            publisher.publish(Ok(quickstart()));
            let kept = active.load().expect("a config in effect");
            assert!(
                Arc::ptr_eq(&first, &kept),
                "an equal version is not swapped in"
            );
            let again = kept.plugins[0]
                .sealer
                .verify(&credential, now, None)
                .unwrap();
            assert!(Arc::ptr_eq(&remembered, &again), "still remembered");

            let mut changed = quickstart();
            changed.version.push_str(".changed");
            publisher.publish(Ok(changed));
            let swapped = active.load().expect("a config in effect");
            assert!(
                !Arc::ptr_eq(&first, &swapped),
                "a new version is swapped in"
            );
            let fresh = swapped.plugins[0]
                .sealer
                .verify(&credential, now, None)
                .unwrap();
            assert!(
                !Arc::ptr_eq(&remembered, &fresh),
                "a new config starts empty"
            );
        });
    }
}
