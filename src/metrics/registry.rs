//! Creating and registering metrics under the daemon's prefix.

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Every metric name starts with this.
const PREFIX: &str = "rmq_registrar_";

/// Buckets of the duration histograms (seconds).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Registers what it creates in one registry.
pub(crate) struct Reg<'a>(pub(crate) &'a Registry);

impl Reg<'_> {
    fn add<C: prometheus::core::Collector + Clone + 'static>(&self, c: C) -> prometheus::Result<C> {
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    /// A counter family.
    pub(crate) fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        self.add(IntCounterVec::new(
            Opts::new(format!("{PREFIX}{name}"), help),
            labels,
        )?)
    }

    /// A gauge family.
    pub(crate) fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntGaugeVec> {
        self.add(IntGaugeVec::new(
            Opts::new(format!("{PREFIX}{name}"), help),
            labels,
        )?)
    }

    /// A float gauge family.
    pub(crate) fn float_gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<prometheus::GaugeVec> {
        self.add(prometheus::GaugeVec::new(
            Opts::new(format!("{PREFIX}{name}"), help),
            labels,
        )?)
    }

    /// A counter.
    pub(crate) fn counter(&self, name: &str, help: &str) -> prometheus::Result<IntCounter> {
        self.add(IntCounter::new(format!("{PREFIX}{name}"), help)?)
    }

    /// An integer gauge.
    pub(crate) fn gauge(&self, name: &str, help: &str) -> prometheus::Result<IntGauge> {
        self.add(IntGauge::new(format!("{PREFIX}{name}"), help)?)
    }

    /// A float gauge.
    pub(crate) fn float_gauge(&self, name: &str, help: &str) -> prometheus::Result<Gauge> {
        self.add(Gauge::new(format!("{PREFIX}{name}"), help)?)
    }

    /// A duration histogram.
    pub(crate) fn histogram(&self, name: &str, help: &str) -> prometheus::Result<Histogram> {
        self.add(Histogram::with_opts(
            HistogramOpts::new(format!("{PREFIX}{name}"), help).buckets(BUCKETS.to_vec()),
        )?)
    }

    /// A duration histogram family.
    pub(crate) fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<HistogramVec> {
        self.add(HistogramVec::new(
            HistogramOpts::new(format!("{PREFIX}{name}"), help).buckets(BUCKETS.to_vec()),
            labels,
        )?)
    }
}
