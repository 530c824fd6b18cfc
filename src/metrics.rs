//! Prometheus metrics, in a registry of our own (never the global one).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the daemon exports.
pub struct Metrics {
    /// The registry /metrics renders.
    pub registry: Registry,
    /// Registrations by NameServer and outcome.
    pub registrations: IntCounterVec,
    /// Duration of one NameServer's registration.
    pub registration_duration: HistogramVec,
    /// Unix time of the last successful registration, per NameServer.
    pub last_success: IntGaugeVec,
    /// 1 while registered with a NameServer.
    pub registered: IntGaugeVec,
    /// Unregistrations by outcome.
    pub unregistrations: IntCounterVec,
    /// NameServers in the current list.
    pub namesrv_list_size: IntGauge,
    /// Address-server refreshes by outcome.
    pub address_refreshes: IntCounterVec,
    /// Remoting requests by code and outcome.
    pub requests: IntCounterVec,
    /// Requests waiting for a reply.
    pub in_flight: IntGauge,
    /// Requests that timed out.
    pub timeouts: IntCounter,
    /// Open connections.
    pub open_connections: IntGauge,
    /// Slave pulls by kind and outcome.
    pub slave_pulls: IntCounterVec,
    /// Task restarts by task.
    pub task_restarts: IntCounterVec,
    /// Topics registered.
    pub topics: IntGauge,
    /// Topic-source reloads by outcome.
    pub topic_reloads: IntCounterVec,
    /// Seconds of one whole registration round.
    pub round_duration: Histogram,
    /// Channel events dropped.
    pub events_dropped: IntCounter,
    /// 1 while the broker passes its health checks (always 1 with checks off).
    pub broker_up: IntGauge,
    /// Broker health checks by outcome.
    pub health_checks: IntCounterVec,
    /// The configured registration interval, so that alert rules need no constant.
    pub register_interval: prometheus::Gauge,
    /// Replies that matched no request on their connection (late, unsolicited, forged).
    pub unexpected_replies: IntCounter,
    /// Requests refused because a connection's send queue stayed full.
    pub busy: IntCounter,
    /// Replies to server requests dropped on a full send queue.
    pub replies_dropped: IntCounter,
    /// Requests the last registration with a NameServer took (1, or the batches of a split).
    pub registration_requests: IntGaugeVec,
    /// Live async tasks, read at each scrape: a number that only grows is a task leak.
    pub runtime_tasks: IntGauge,
    /// Changes of the broker's id or role followed (identity from the broker).
    pub identity_changes: IntCounter,
    /// The id registered now (-1 while the broker has none).
    pub broker_id: IntGauge,
    /// Heartbeats (QUERY_DATA_VERSION) by NameServer and outcome.
    pub heartbeats: IntCounterVec,
    /// Full registrations because a heartbeat found the NameServer without the broker.
    pub reregistrations: IntCounterVec,
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Brings a counter up to a total the client keeps itself.
pub fn catch_up(c: &IntCounter, total: u64) {
    let seen = c.get();
    if total > seen {
        c.inc_by(total - seen);
    }
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let p = "rmq_registrar_";
        let registration_duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{p}registration_duration_seconds"),
                "Time one NameServer took to register the broker",
            )
            .buckets(BUCKETS.to_vec()),
            &["namesrv"],
        )?;
        r.register(Box::new(registration_duration.clone()))?;
        let round_duration = Histogram::with_opts(
            HistogramOpts::new(
                format!("{p}registration_round_duration_seconds"),
                "Time of a whole registration round",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        r.register(Box::new(round_duration.clone()))?;
        let timeouts = IntCounter::new(
            format!("{p}request_timeouts_total"),
            "Remoting requests that got no reply in time",
        )?;
        r.register(Box::new(timeouts.clone()))?;
        let build = gauge_vec(
            &r,
            &format!("{p}build_info"),
            "Build information",
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Ok(Metrics {
            registrations: counter_vec(
                &r,
                &format!("{p}registrations_total"),
                "Registrations by NameServer and outcome",
                &["namesrv", "outcome"],
            )?,
            registration_duration,
            last_success: gauge_vec(
                &r,
                &format!("{p}last_registration_success_timestamp_seconds"),
                "Unix time of the last successful registration",
                &["namesrv"],
            )?,
            registered: gauge_vec(
                &r,
                &format!("{p}registered"),
                "1 while the broker is registered with the NameServer",
                &["namesrv"],
            )?,
            unregistrations: counter_vec(
                &r,
                &format!("{p}unregistrations_total"),
                "Unregistrations by outcome",
                &["namesrv", "outcome"],
            )?,
            namesrv_list_size: gauge(
                &r,
                &format!("{p}namesrv_list_size"),
                "NameServers in the current list",
            )?,
            address_refreshes: counter_vec(
                &r,
                &format!("{p}address_refreshes_total"),
                "Address-server lookups by outcome",
                &["outcome"],
            )?,
            requests: counter_vec(
                &r,
                &format!("{p}remoting_requests_total"),
                "Remoting requests by code and outcome",
                &["code", "outcome"],
            )?,
            in_flight: gauge(
                &r,
                &format!("{p}remoting_in_flight_requests"),
                "Requests waiting for a reply",
            )?,
            timeouts,
            open_connections: gauge(
                &r,
                &format!("{p}remoting_open_connections"),
                "Open remoting connections",
            )?,
            slave_pulls: counter_vec(
                &r,
                &format!("{p}slave_pulls_total"),
                "Slave pulls from the master by kind and outcome",
                &["kind", "outcome"],
            )?,
            task_restarts: counter_vec(
                &r,
                &format!("{p}task_restarts_total"),
                "Supervised task restarts",
                &["task"],
            )?,
            topics: gauge(&r, &format!("{p}topics"), "Topics in the registered table")?,
            topic_reloads: counter_vec(
                &r,
                &format!("{p}topic_reloads_total"),
                "Topic-source reloads by outcome",
                &["outcome"],
            )?,
            round_duration,
            events_dropped: counter(
                &r,
                &format!("{p}channel_events_dropped_total"),
                "Channel events dropped on a full queue",
            )?,
            broker_up: gauge(
                &r,
                &format!("{p}broker_up"),
                "1 while the broker answers its health checks and may be advertised",
            )?,
            health_checks: counter_vec(
                &r,
                &format!("{p}broker_health_checks_total"),
                "Broker health checks by outcome",
                &["outcome"],
            )?,
            register_interval: {
                let g = prometheus::Gauge::new(
                    format!("{p}register_interval_seconds"),
                    "Configured registration interval",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            unexpected_replies: counter(
                &r,
                &format!("{p}remoting_unexpected_replies_total"),
                "Replies that matched no request on their connection, dropped",
            )?,
            busy: counter(
                &r,
                &format!("{p}remoting_send_queue_full_total"),
                "Requests refused because the connection's send queue stayed full",
            )?,
            replies_dropped: counter(
                &r,
                &format!("{p}remoting_replies_dropped_total"),
                "Replies to server requests dropped on a full send queue",
            )?,
            registration_requests: gauge_vec(
                &r,
                &format!("{p}registration_requests"),
                "Requests the last registration took: 1, or the batches of a split one",
                &["namesrv"],
            )?,
            runtime_tasks: gauge(
                &r,
                &format!("{p}runtime_tasks"),
                "Live async tasks in the daemon",
            )?,
            identity_changes: counter(
                &r,
                &format!("{p}identity_changes_total"),
                "Changes of the broker's id or role followed (identity from the broker)",
            )?,
            broker_id: gauge(
                &r,
                &format!("{p}broker_id"),
                "The broker id registered now; -1 while the broker has none",
            )?,
            heartbeats: counter_vec(
                &r,
                &format!("{p}heartbeats_total"),
                "Heartbeats (QUERY_DATA_VERSION) by NameServer and outcome",
                &["namesrv", "outcome"],
            )?,
            reregistrations: counter_vec(
                &r,
                &format!("{p}reregistrations_total"),
                "Full registrations because a heartbeat found the NameServer without the broker",
                &["namesrv"],
            )?,
            registry: r,
        })
    }

    /// Drops every series labelled with NameServer `addr` (it left the list): in Kubernetes
    /// NameServer addresses come and go, and their series must not pile up.
    pub fn forget_namesrv(&self, addr: &str) {
        remove_where(&self.registrations, "namesrv", addr);
        remove_where(&self.unregistrations, "namesrv", addr);
        remove_where(&self.registration_duration, "namesrv", addr);
        remove_where(&self.last_success, "namesrv", addr);
        remove_where(&self.registered, "namesrv", addr);
        remove_where(&self.registration_requests, "namesrv", addr);
        remove_where(&self.heartbeats, "namesrv", addr);
        remove_where(&self.reregistrations, "namesrv", addr);
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding our own families into a Vec does not fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Removes every series of `vec` whose `label` is `value`, whatever its other labels.
fn remove_where<B: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<B>,
    label: &str,
    value: &str,
) {
    use prometheus::core::Collector;
    for family in vec.collect() {
        for m in family.get_metric() {
            let pairs = m.get_label();
            if !pairs
                .iter()
                .any(|p| p.get_name() == label && p.get_value() == value)
            {
                continue;
            }
            let labels: std::collections::HashMap<&str, &str> = pairs
                .iter()
                .map(|p| (p.get_name(), p.get_value()))
                .collect();
            let _ = vec.remove(&labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_namesrv_leaves_no_series_and_others_stay() {
        let m = Metrics::new().unwrap();
        for ns in ["a:1", "b:2"] {
            m.registrations.with_label_values(&[ns, "ok"]).inc();
            m.registrations.with_label_values(&[ns, "timeout"]).inc();
            m.unregistrations.with_label_values(&[ns, "ok"]).inc();
            m.registration_duration
                .with_label_values(&[ns])
                .observe(0.1);
            m.last_success.with_label_values(&[ns]).set(1);
            m.registered.with_label_values(&[ns]).set(1);
            m.heartbeats.with_label_values(&[ns, "ok"]).inc();
            m.reregistrations.with_label_values(&[ns]).inc();
        }
        m.forget_namesrv("a:1");
        let text = m.render();
        assert!(!text.contains("a:1"), "{text}");
        for family in [
            "registrations_total{namesrv=\"b:2\",outcome=\"timeout\"}",
            "unregistrations_total{namesrv=\"b:2\"",
            "registration_duration_seconds_count{namesrv=\"b:2\"}",
            "last_registration_success_timestamp_seconds{namesrv=\"b:2\"}",
            "registered{namesrv=\"b:2\"}",
            "heartbeats_total{namesrv=\"b:2\",outcome=\"ok\"}",
            "reregistrations_total{namesrv=\"b:2\"}",
        ] {
            assert!(text.contains(family), "{family} kept:\n{text}");
        }
    }
}
