//! Where the config comes from: manifest files (standalone) or the operator's ConfigMap and
//! mounted Secret (in a cluster). Either way a new config is compiled and swapped in whole; a
//! bad one leaves the last good config in effect.

pub mod cluster;
pub mod manifests;
mod watch;

pub use watch::{folder as watch_folder, next as next_change};

use std::sync::Arc;

use crate::active::{Active, ActiveConfig};
use crate::metrics::Metrics;

/// Publishes configs to the request path.
#[derive(Clone)]
pub struct Publisher {
    pub active: Arc<ActiveConfig>,
    pub metrics: Arc<Metrics>,
}

impl Publisher {
    /// Swaps in a new config, or keeps the last good one and says why not.
    pub fn publish(&self, loaded: Result<Active, String>) {
        match loaded {
            Ok(active) => {
                let version = active.version.clone();
                if self.active.version().as_deref() != Some(version.as_str()) {
                    tracing::info!(version = %version, "config in effect");
                }
                self.active.store(active);
                self.metrics.reload(true, Some(&version));
            }
            Err(why) => {
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
