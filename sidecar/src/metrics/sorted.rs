//! A metric family whose series are listed in label order, so `/metrics` reads the same way on
//! every scrape (prometheus-client's `Family` keeps them in a hash map).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Series by label set; each metric handle shares its value (counters and gauges are atomics
/// behind an `Arc`), so a clone is counted in place.
#[derive(Debug)]
pub struct Sorted<L, M> {
    series: Arc<RwLock<BTreeMap<L, M>>>,
    new: fn() -> M,
}

impl<L, M> Clone for Sorted<L, M> {
    fn clone(&self) -> Self {
        Self {
            series: Arc::clone(&self.series),
            new: self.new,
        }
    }
}

impl<L: Ord + Clone, M: Clone + Default> Default for Sorted<L, M> {
    fn default() -> Self {
        Self::new(M::default)
    }
}

impl<L: Ord + Clone, M: Clone> Sorted<L, M> {
    /// A family whose series are made by `new`.
    pub fn new(new: fn() -> M) -> Self {
        Self {
            series: Arc::default(),
            new,
        }
    }

    /// The series of these labels, made the first time.
    pub fn get_or_create(&self, labels: &L) -> M {
        if let Some(m) = self.read().get(labels) {
            return m.clone();
        }
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        series
            .entry(labels.clone())
            .or_insert_with(self.new)
            .clone()
    }

    /// Forgets every series.
    pub fn clear(&self) {
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<L, M>> {
        self.series.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl<L, M> EncodeMetric for Sorted<L, M>
where
    L: Ord + Clone + EncodeLabelSet + std::fmt::Debug + Send + Sync,
    M: Clone + EncodeMetric + TypedMetric + std::fmt::Debug + Send + Sync,
{
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, metric) in self.read().iter() {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}
