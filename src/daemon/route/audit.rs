//! One NameServer's read-back, held by its task: when the next audit is due, the reads in
//! flight (a route, the cluster table, a probe of the other address, a wipe), and what their
//! answers mean. The task polls [`Auditor::checking`] beside its other events and carries out
//! the registrations [`Auditor::on_checked`] asks for.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::compare::{self, audit_topic, Expect, Findings};
use super::policy::{Act, Policy, Situation, Standoff};
use crate::broker::route::RouteAnswer;
use crate::broker::{ApiError, BrokerApi};
use crate::config::Config;
use crate::daemon::published::{Advert, RouteSeen as Seen};
use crate::metrics::labels::{Audit, Label, RouteKind};
use crate::metrics::NamesrvMetrics;

/// A read in flight.
pub(crate) type Checking = Pin<Box<dyn Future<Output = Checked> + Send>>;

/// What a read in flight found.
pub(crate) enum Checked {
    /// The audit's reads.
    Read(Box<Read>),
    /// The other address asked who it is: `same` when this very broker.
    Probe {
        /// The address asked.
        other: String,
        /// It said it is this cluster, name and id.
        same: bool,
    },
    /// A drained broker's write bit wiped again.
    Wiped(Result<(), ApiError>),
}

#[cfg(test)]
impl Checked {
    /// An audit's answer as a test makes it up.
    pub(crate) fn read_for_tests(
        expect: Expect,
        route: Option<Result<RouteAnswer, ApiError>>,
    ) -> Checked {
        Checked::Read(Box::new(Read {
            expect,
            route,
            cluster: None,
        }))
    }
}

/// One audit's reads and what they were compared with.
pub(crate) struct Read {
    expect: Expect,
    /// The audit topic's route (None: no topic to read).
    route: Option<Result<RouteAnswer, ApiError>>,
    /// The broker's entry in the cluster table (None: not due).
    cluster: Option<Result<Map<String, Value>, ApiError>>,
}

/// What the task's situation is when an answer comes.
pub(crate) struct Ctx<'a> {
    /// The NameServer.
    pub(crate) addr: &'a str,
    /// Its series.
    pub(crate) metrics: &'a NamesrvMetrics,
    /// The configuration in force.
    pub(crate) cfg: &'a Config,
    /// A drain holds.
    pub(crate) draining: bool,
    /// Nothing may register (the stop began, or the broker is down).
    pub(crate) stopping: bool,
}

/// One NameServer's read-back.
#[derive(Default)]
pub(crate) struct Auditor {
    policy: Policy,
    next_at: Option<Instant>,
    full_at: Option<Instant>,
    in_flight: Option<Checking>,
    /// Who the last audit compared with (a probe and a wipe name it), and the findings last
    /// said in a WARN.
    last_id: Option<crate::broker::BrokerIdentity>,
    said: Option<(Findings, Option<Standoff>)>,
    seen: Seen,
    /// When the read-backs began to see the route differ.
    since: Option<std::time::SystemTime>,
}

/// An error's outcome label.
fn failed(e: &ApiError) -> Audit {
    if e.is_timeout() {
        Audit::Timeout
    } else {
        Audit::Error
    }
}

impl Auditor {
    /// When the next audit is due (None: off, or a read is in flight).
    pub(crate) fn due(&self) -> Option<Instant> {
        self.next_at.filter(|_| self.in_flight.is_none())
    }

    /// What the last audit saw.
    pub(crate) fn seen(&self) -> Seen {
        self.seen
    }

    /// An audit as soon as the task is free (right after a registration); none while off.
    pub(crate) fn soon(&mut self, cfg: &Config) {
        self.next_at = cfg.route.audit_interval.map(|_| Instant::now());
    }

    /// Nothing to audit now: looked at again one interval on (and the read then is not
    /// "right after" anything).
    pub(crate) fn later(&mut self, cfg: &Config) {
        self.policy.read_failed();
        self.next_at = cfg.route.audit_interval.map(|e| Instant::now() + e);
    }

    /// Follows `route.audit_interval`: on (due within one interval) or off.
    pub(crate) fn keep(&mut self, cfg: &Config) {
        match cfg.route.audit_interval {
            None => {
                self.next_at = None;
                if self.in_flight.take().is_some() {
                    self.policy.cancelled();
                }
            }
            Some(every) if self.next_at.is_none() && self.in_flight.is_none() => {
                // Turned on (or the first look): what happened while off is not "right after".
                self.policy.read_failed();
                self.next_at = Some(Instant::now() + every);
            }
            Some(_) => {}
        }
    }

    /// The read in flight, for the task's select.
    pub(crate) fn checking(&mut self) -> Option<Pin<&mut (dyn Future<Output = Checked> + Send + 'static)>> {
        self.in_flight.as_mut().map(|f| f.as_mut())
    }

    /// Starts an audit of what `advert` says, on NameServer `addr`.
    pub(crate) fn start(&mut self, api: &BrokerApi, addr: &Arc<str>, advert: &Advert, cfg: &Config) {
        self.next_at = None;
        let expect = Expect {
            id: advert.id.clone(),
            topic: audit_topic(cfg.route.audit_topic.as_deref(), &advert.id, &advert.table),
        };
        let now = Instant::now();
        // With no topic to read, the broker's entry in the cluster table is the audit.
        // Marked done when it answers (on_read): a failed one is due again at the next audit.
        // During a planned drain every read includes it: a route gone must not be registered back from
        // under a new owner of the id (a moved pod) that only the table names.
        let full = expect.topic.is_none()
            || advert.drain.as_ref().is_some_and(crate::daemon::drain::Draining::planned)
            || self.full_at.is_none_or(|t| now >= t);
        let (api, addr, timeout) = (api.clone(), addr.clone(), cfg.register.timeout);
        self.in_flight = Some(Box::pin(async move {
            let route = match &expect.topic {
                Some((t, _)) => Some(api.topic_route(&addr, t, timeout).await),
                None => None,
            };
            // A topic this broker could not route (a slave's, whose master is away; a chosen
            // one it does not advertise) has no route: the cluster table says whether it is
            // listed.
            let unrouted = !expect.could_route()
                && matches!(route, Some(Ok(RouteAnswer::NotExist)));
            let cluster = match (full || unrouted) && !route.as_ref().is_some_and(|r| r.is_err()) {
                true => Some(cluster_read(&api, &addr, timeout).await),
                false => None,
            };
            Checked::Read(Box::new(Read {
                expect,
                route,
                cluster,
            }))
        }));
    }

    /// Acts on an answer: counted, compared, logged; returns the registration to send, if
    /// any (a probe or a wipe is started here, in the audit's own slot).
    pub(crate) fn on_checked(&mut self, c: Checked, api: &BrokerApi, ctx: &Ctx<'_>) -> Act {
        self.in_flight = None;
        let every = ctx.cfg.route.audit_interval;
        let now = Instant::now();
        self.next_at = every.map(|e| now + e);
        let s = Situation {
            now,
            draining: ctx.draining,
            stopping: ctx.stopping,
            audit_every: every.unwrap_or(Duration::MAX),
            register_every: ctx.cfg.register.interval,
            restore_write: ctx.cfg.route.restore_write,
        };
        let act = match c {
            Checked::Read(read) => self.on_read(*read, ctx, &s),
            Checked::Probe { other, same } => {
                if same {
                    tracing::error!(namesrv = %ctx.addr, other = %other, "split-brain: another address says it is this very broker (same cluster, name and id) and holds its id on this NameServer; not contending (route_conflict)");
                } else {
                    tracing::warn!(namesrv = %ctx.addr, other = %other, "the address holding this broker's id is not this broker (a copied config, an old pod, a tool): contending at most once per register.interval");
                }
                self.policy.probed(&other, same, &s)
            }
            Checked::Wiped(r) => {
                match r {
                    Ok(()) => self.policy.restore_done(true),
                    Err(e) => {
                        self.policy.restore_failed();
                        tracing::warn!(namesrv = %ctx.addr, error = %e, "route read-back: the wipe of the write bit failed");
                    }
                }
                self.next_at = Some(now);
                Act::Nothing
            }
        };
        ctx.metrics
            .set_route_conflict(ctx.addr, self.policy.conflict(now));
        self.seen.conflict = self.policy.conflict(now);
        self.run_own(act, api, ctx)
    }

    /// Probes and wipes go in the audit's slot; registrations back to the task.
    fn run_own(&mut self, act: Act, api: &BrokerApi, ctx: &Ctx<'_>) -> Act {
        let timeout = ctx.cfg.register.timeout;
        match act {
            Act::Probe(other) => {
                let Some(id) = self.last_id.clone() else {
                    return Act::Nothing;
                };
                let api = api.clone();
                self.in_flight = Some(Box::pin(async move {
                    let same = api
                        .broker_config_report(&other, timeout)
                        .await
                        .is_ok_and(|r| {
                            r.cluster == id.cluster && r.name == id.name && r.id == Some(id.id)
                        });
                    Checked::Probe { other, same }
                }));
                Act::Nothing
            }
            Act::Wipe => {
                let Some(id) = self.last_id.clone() else {
                    return Act::Nothing;
                };
                ctx.metrics.route_restore(ctx.addr, RouteKind::Permission);
                tracing::warn!(namesrv = %ctx.addr, "route read-back: the drained broker is routed writable there; wiping its write bit again");
                let (api, addr) = (api.clone(), ctx.addr.to_string());
                self.in_flight = Some(Box::pin(async move {
                    Checked::Wiped(api.wipe_write_perm(&addr, &id.name, timeout).await.map(|_| ()))
                }));
                Act::Nothing
            }
            other => other,
        }
    }

    fn on_read(&mut self, read: Read, ctx: &Ctx<'_>, s: &Situation) -> Act {
        let Read {
            expect,
            route,
            cluster,
        } = read;
        self.last_id = Some(expect.id.clone());
        let full = cluster.is_some();
        let findings = match findings(&expect, route, cluster) {
            Ok(f) => f,
            Err((outcome, why)) => {
                ctx.metrics.route_audit(ctx.addr, outcome);
                self.seen.outcome = Some(outcome);
                self.policy.read_failed();
                tracing::debug!(namesrv = %ctx.addr, outcome = outcome.as_str(), %why, "route read-back: no answer to compare");
                return Act::Nothing;
            }
        };
        let outcome = if findings.matches() {
            Audit::Match
        } else {
            Audit::Mismatch
        };
        ctx.metrics.route_audit(ctx.addr, outcome);
        ctx.metrics
            .set_route_mismatch(ctx.addr, |k| findings.has(k));
        if findings.matches() {
            self.since = None;
        } else {
            self.since.get_or_insert_with(std::time::SystemTime::now);
        }
        ctx.metrics.set_route_mismatch_since(ctx.addr, self.since);
        if full {
            self.full_at = Some(Instant::now() + ctx.cfg.route.full_audit_interval);
        }
        self.seen.outcome = Some(outcome);
        self.seen.differs = !findings.matches();
        self.seen.routed = Some(!findings.has(RouteKind::Missing) && !findings.has(RouteKind::Address));
        let act = self.policy.decide(&findings, s);
        self.tell(ctx, &expect, &findings, &act);
        act
    }

    /// A WARN when what is seen changes (a standing mismatch is said once), an INFO when the
    /// route is back.
    fn tell(&mut self, ctx: &Ctx<'_>, expect: &Expect, f: &Findings, act: &Act) {
        let standoff = self.policy.standoff();
        if self.said.as_ref() == Some(&(f.clone(), standoff)) {
            return;
        }
        let topic = expect.topic.as_ref().map_or("", |(t, _)| t.as_str());
        if f.matches() {
            if self.said.is_some() {
                tracing::info!(namesrv = %ctx.addr, topic, "route read-back: the route is what is advertised again");
            }
            self.said = None;
            return;
        }
        let kinds: Vec<&str> = f.kinds().map(Label::as_str).collect();
        let told = match standoff {
            Some(Standoff::SplitBrain) => "split-brain: not contending",
            Some(Standoff::Ignored) => "the NameServer ignored our registration (a newer stateVersion holds the id?): reported, not contended",
            None => "",
        };
        tracing::warn!(
            namesrv = %ctx.addr,
            topic,
            kinds = %kinds.join(","),
            other = f.other.as_deref().unwrap_or(""),
            routed = ?f.routed,
            action = ?act,
            standoff = told,
            "route read-back: producers are not routed as advertised"
        );
        self.said = Some((f.clone(), standoff));
    }

    /// The restore the policy asked for went out and failed.
    pub(crate) fn restore_failed(&mut self) {
        self.policy.restore_failed();
    }

    /// The restore the policy asked for never went out.
    pub(crate) fn restore_dropped(&mut self) {
        self.policy.restore_dropped();
    }

    /// The restore the policy asked for ended: `answered` when the NameServer answered SUCCESS
    /// (not oneway), so that the read right after it shows whether it took.
    pub(crate) fn restore_done(&mut self, answered: bool) {
        self.policy.restore_done(answered);
    }
}

/// The broker's entry in the cluster table, read again once when it does not parse (a Java
/// NameServer can fail its own encoding mid-registration).
async fn cluster_read(
    api: &BrokerApi,
    addr: &str,
    timeout: Duration,
) -> Result<Map<String, Value>, ApiError> {
    match api.cluster_brokers(addr, timeout).await {
        Err(ApiError::Decode { .. }) => api.cluster_brokers(addr, timeout).await,
        done => done,
    }
}

/// The reads compared with `expect`, or why they cannot be.
fn findings(
    expect: &Expect,
    route: Option<Result<RouteAnswer, ApiError>>,
    cluster: Option<Result<Map<String, Value>, ApiError>>,
) -> Result<Findings, (Audit, String)> {
    let cluster = match cluster {
        None => None,
        Some(Err(e)) => return Err((failed(&e), e.to_string())),
        Some(Ok(table)) => Some(table),
    };
    let route = match &route {
        None => None,
        Some(Err(e)) => return Err((failed(e), e.to_string())),
        Some(Ok(RouteAnswer::NotReady(remark))) => return Err((Audit::NotReady, remark.clone())),
        Some(Ok(RouteAnswer::NotExist)) => Some(None),
        Some(Ok(RouteAnswer::Found(r))) => Some(Some(r)),
    };
    Ok(compare::judge(expect, route, cluster.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::BrokerIdentity;

    fn expect(id: u64) -> Expect {
        Expect {
            id: BrokerIdentity {
                cluster: "C".into(),
                name: "b".into(),
                id,
                addr: "10.0.0.2:10911".into(),
                ha_addr: "10.0.0.2:10912".into(),
                zone: None,
            },
            topic: Some(("b".into(), None)),
        }
    }

    fn table(addrs: Value) -> Map<String, Value> {
        serde_json::from_value(serde_json::json!({"b": {"cluster": "C", "brokerName": "b", "brokerAddrs": addrs}}))
            .unwrap()
    }

    #[test]
    fn a_slave_whose_master_is_away_is_judged_by_the_cluster_table() {
        let listed = table(serde_json::json!({"1": "10.0.0.2:10911"}));
        let f = findings(&expect(1), Some(Ok(RouteAnswer::NotExist)), Some(Ok(listed.clone())));
        assert!(f.unwrap().matches());
        let f = findings(&expect(1), Some(Ok(RouteAnswer::NotExist)), Some(Ok(Map::new())));
        assert!(f.unwrap().has(RouteKind::Missing));
        // A master's own topic with no route is missing, whatever the table says.
        let master = table(serde_json::json!({"0": "10.0.0.2:10911"}));
        let mut own = expect(0);
        own.topic = Some((
            "b".into(),
            Some(super::super::compare::Want {
                read: 1,
                write: 1,
                perm: 6,
            }),
        ));
        let f = findings(&own, Some(Ok(RouteAnswer::NotExist)), Some(Ok(master)));
        assert!(f.unwrap().has(RouteKind::Missing));
    }

    #[test]
    fn no_answer_to_compare_is_an_outcome_not_findings() {
        let e = ApiError::Decode {
            what: "topic route",
            reason: "x".into(),
        };
        assert_eq!(findings(&expect(0), Some(Err(e)), None).unwrap_err().0, Audit::Error);
        let t = ApiError::Timeout(Duration::from_secs(1));
        assert_eq!(findings(&expect(0), Some(Err(t)), None).unwrap_err().0, Audit::Timeout);
        let nr = Some(Ok(RouteAnswer::NotReady("name server not ready".into())));
        assert_eq!(findings(&expect(0), nr, None).unwrap_err().0, Audit::NotReady);
    }
}
