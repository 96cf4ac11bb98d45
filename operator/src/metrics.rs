//! Operator metrics: reconciles, failures by reason, duration.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    duration: Family<Labels, Histogram>,
    writes: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wxgate_operator");
        let reconciles = Family::<Labels, Counter>::default();
        registry.register("reconciles", "Reconciles by controller", reconciles.clone());
        let failures = Family::<Labels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconciles by controller and reason",
            failures.clone(),
        );
        let duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by controller",
            duration.clone(),
        );
        let writes = Family::<Labels, Counter>::default();
        registry.register(
            "api_writes",
            "Objects written (applied, status applied, deleted) by kind",
            writes.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
            writes,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, controller: &'static str, took: Duration) {
        let labels = vec![("controller", controller.to_owned())];
        self.reconciles.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn failure(&self, controller: &'static str, reason: &'static str) {
        self.failures
            .get_or_create(&vec![
                ("controller", controller.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// One write of an object of `kind` (`Kind` or `Kind/status`).
    pub fn wrote(&self, kind: &str) {
        self.writes
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
