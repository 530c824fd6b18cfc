//! The NameServer list: one task publishes it, from the sources the configuration names
//! (`sources/`): `namesrv.addrs` (each name looked up every `resolve_interval`), the address
//! server (every `refresh_interval`; `addrs` until its first answer, or beside it with
//! `combine = "union"`), or, with neither, the list the broker itself names. Each source
//! refreshes on its own schedule; the lookups run beside the task's other events, and one that
//! fails keeps the source's last good answer.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::publisher::{follow, AddressOut};
use super::settings::{self, InForce};
use super::shared::Shared;
use super::supervisor::TaskResult;
use crate::address_server::AddressServer;
use crate::metrics::labels::Outcome;
use crate::sources::{
    Answer, LookupError, NameKey, NamesrvList, Plan, Sources, SourcesView, Taken, ADDRESS_SERVER,
};

/// Publishes the NameServer list until shutdown.
pub(crate) async fn refresh_loop(sh: Arc<Shared>, out: Arc<AddressOut>) -> TaskResult {
    let mut st = Refresh::default();
    let mut configs = follow(&sh.config);
    let mut reports = follow(&sh.report);
    loop {
        let cfg = configs.borrow_and_update().clone();
        let broker_list = reports
            .borrow_and_update()
            .as_ref()
            .map(|r| r.namesrv_addrs.clone())
            .unwrap_or_default();
        let plan = Plan::new(&cfg, &broker_list);
        st.follow(&plan);
        st.start_due(&cfg)?;
        st.publish(&plan, &out);
        let wake = st.next_due();
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            () = sleep_until(wake) => {}
            Some(done) = st.flight.join_next() => {
                if let Ok(done) = done {
                    st.take(done, &out);
                }
            }
            r = configs.changed() => r?,
            r = reports.changed() => r?,
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// A lookup that returned.
enum Done {
    Name(NameKey, Result<Answer, LookupError>),
    Server(Result<Vec<String>, String>),
}

/// The sources' state and the lookups in flight.
#[derive(Default)]
struct Refresh {
    sources: Sources,
    /// When each name is looked up next.
    due: BTreeMap<NameKey, Instant>,
    /// When the address server is asked next (None: in flight, or no server).
    server_due: Option<Instant>,
    server_in_flight: bool,
    /// One HTTP client, made again only when a reload changes the URL or timeout.
    server: Option<AddressServer>,
    flight: JoinSet<Done>,
}

impl Refresh {
    /// Follows the names and server the plan asks for: new ones are due now.
    fn follow(&mut self, plan: &Plan) {
        for gone in self.sources.follow(plan) {
            self.due.remove(&gone);
        }
        let now = Instant::now();
        for (k, _) in self.sources.names() {
            self.due.entry(k.clone()).or_insert(now);
        }
        if !plan.has_server() {
            self.server = None;
            self.server_due = None;
        } else if self.server_due.is_none() && !self.server_in_flight {
            self.server_due = Some(now);
        }
    }

    /// Starts every lookup that is due.
    fn start_due(&mut self, cfg: &InForce) -> Result<(), crate::address_server::LookupError> {
        let now = Instant::now();
        let family = cfg.namesrv.resolve_family;
        let timeout = cfg.register.timeout;
        let due: Vec<NameKey> = (self.due.iter())
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            let Some(lookup) = self.sources.lookup(&k) else {
                continue;
            };
            self.due.insert(k.clone(), now + cfg.namesrv.resolve_interval);
            self.flight.spawn(async move {
                let r = lookup.run(&k, family, timeout).await;
                Done::Name(k, r)
            });
        }
        if let (Some(at), Some(url)) = (self.server_due, cfg.address_server_url()) {
            if at <= now {
                let timeout = cfg.register.timeout.max(std::time::Duration::from_secs(3));
                let server = match self.server.take() {
                    Some(s) if s.url() == url && s.timeout() == timeout => s,
                    _ => settings::address_server(cfg, url, timeout)?,
                };
                self.server = Some(server.clone());
                self.server_due = Some(now + cfg.namesrv.refresh_interval);
                self.server_in_flight = true;
                self.flight.spawn(async move {
                    Done::Server(server.fetch().await.map_err(|e| e.to_string()))
                });
            }
        }
        Ok(())
    }

    /// The next time something is due.
    fn next_due(&self) -> Option<Instant> {
        self.due.values().copied().chain(self.server_due).min()
    }

    /// Takes a returned lookup, saying once what changed.
    fn take(&mut self, done: Done, out: &AddressOut) {
        match done {
            Done::Name(k, r) => {
                if let Err(e) = &r {
                    out.metrics.source_failed(&k.to_string());
                    tracing::debug!(name = %k, error = %e, "lookup failed");
                }
                if let Some((taken, kept)) = self.sources.take_lookup(&k, r, Instant::now()) {
                    say(&k, taken, kept);
                }
            }
            Done::Server(r) => {
                self.server_in_flight = false;
                let outcome = if r.is_ok() { Outcome::Ok } else { Outcome::Error };
                out.metrics.address_refresh(outcome);
                if r.is_err() {
                    out.metrics.source_failed(ADDRESS_SERVER);
                }
                match self.sources.take_server(r) {
                    Taken::StartedFailing(error) => {
                        tracing::warn!(%error, "address server lookup failed, keeping the last good list");
                    }
                    Taken::Recovered(_) => tracing::info!("the address server answers again"),
                    Taken::Answer(_) | Taken::StillFailing => {}
                }
            }
        }
    }

    /// Publishes the list (never an empty one: the last stays) and the sources' view.
    fn publish(&mut self, plan: &Plan, out: &AddressOut) {
        let list: NamesrvList = self.sources.list(plan);
        if !list.addrs.is_empty() {
            out.namesrv_list.send_if_modified(|l| {
                let changed = **l != list;
                if changed {
                    *l = Arc::new(list);
                }
                changed
            });
        }
        let view: SourcesView = self.sources.view(plan);
        out.namesrv_sources.send_if_modified(|v| {
            if **v == view {
                return false;
            }
            // The series follow the view: a source no longer in it loses its series.
            let kept: HashSet<&String> = view.0.iter().map(|s| &s.source).collect();
            let gone: Vec<String> = (v.0.iter())
                .map(|s| s.source.clone())
                .filter(|l| !kept.contains(l))
                .collect();
            out.metrics.set_sources(&view, &gone);
            *v = Arc::new(view);
            true
        });
    }
}

/// The log line for a name's lookup, once per change.
fn say(name: &NameKey, taken: Taken, kept: usize) {
    match taken {
        Taken::StartedFailing(error) => {
            tracing::warn!(%name, %error, addresses = kept, "looking the name up failed: its last good addresses are kept");
        }
        Taken::StillFailing => {}
        Taken::Recovered(c) => {
            let joined: Vec<String> = c.joined.iter().map(ToString::to_string).collect();
            let left: Vec<String> = c.left.iter().map(ToString::to_string).collect();
            tracing::info!(%name, ?joined, ?left, addresses = kept, "the name resolves again");
        }
        Taken::Answer(c) if c.changed() => {
            let joined: Vec<String> = c.joined.iter().map(ToString::to_string).collect();
            let left: Vec<String> = c.left.iter().map(ToString::to_string).collect();
            tracing::info!(%name, ?joined, ?left, addresses = kept, "the name's addresses changed");
        }
        Taken::Answer(c) => {
            if !c.kept.is_empty() {
                let missing: Vec<String> = c.kept.iter().map(ToString::to_string).collect();
                tracing::debug!(%name, ?missing, "missing from the answer, kept until they stay away");
            }
        }
    }
}
