//! Where the NameServer list comes from, and how its sources make one list: `namesrv.addrs`
//! (addresses as written, names looked up to all their addresses), the address server, and
//! the broker's own list when neither is configured. The daemon's list owner
//! (`daemon/addresses.rs`) and the one-shot commands (`resolve`, `status`, `unregister`) use
//! this same code.

mod entry;
mod lookup;
mod members;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio::time::Instant;

pub use entry::{addr_key, Entry, NameKey};
pub use lookup::{Answer, Lookup, LookupError, MAX_PER_NAME};
pub use members::{Change, Members};

use crate::config::{Combine, Config};

/// The label of the static addresses of `namesrv.addrs` in metrics and `resolve`.
pub const STATIC: &str = "namesrv.addrs";
/// The label of the address server's answer.
pub const ADDRESS_SERVER: &str = "address_server";
/// The label of the addresses of the broker's own list.
pub const BROKER: &str = "broker";

/// The NameServer list: one entry per NameServer (`ip:port`, or an address server's entry as
/// it gave it), and for the ones found by a name, that name (what TLS checks them against).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamesrvList {
    /// The NameServers, each once.
    pub addrs: Vec<String>,
    /// Address → the host name it was looked up from.
    pub names: BTreeMap<String, String>,
}

impl NamesrvList {
    fn push(&mut self, seen: &mut HashSet<String>, addr: String, name: Option<&str>) {
        if seen.insert(addr.clone()) {
            if let Some(n) = name {
                self.names.insert(addr.clone(), n.to_string());
            }
            self.addrs.push(addr);
        }
    }
}

/// What one source gives now, for `resolve`, `/readyz` and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceView {
    /// [`STATIC`], [`ADDRESS_SERVER`], [`BROKER`], or the name (`host:port`).
    pub source: String,
    /// Its addresses (the last good answer while it fails).
    pub addrs: Vec<String>,
    /// Why its last lookup failed, while it fails.
    pub error: Option<String>,
    /// Whether its addresses are in the list (an address server's `addrs` fallback is not,
    /// once the server answered).
    pub used: bool,
}

/// A failed lookup of a source whose last failure is `error`: said once, then kept quiet.
fn failed(error: &mut Option<String>, why: String) -> Taken {
    match error.replace(why.clone()) {
        None => Taken::StartedFailing(why),
        Some(_) => Taken::StillFailing,
    }
}

/// Every source's view, in the list's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcesView(pub Vec<SourceView>);

impl SourcesView {
    /// Lines saying which used sources give nothing and why (for `/readyz` with no list).
    pub fn empty_reasons(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|s| s.used && s.addrs.is_empty())
            .map(|s| match &s.error {
                Some(e) => format!("{}: {e}", s.source),
                None => format!("{}: no answer yet", s.source),
            })
            .collect()
    }
}

/// What the configuration and the broker ask for: the entries of each source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    configured: Vec<Entry>,
    server: bool,
    combine: Combine,
    broker: Vec<Entry>,
}

impl Plan {
    /// From `cfg`, and the broker's own `namesrvAddr` (used when the configuration names no
    /// source).
    pub fn new(cfg: &Config, broker_list: &[String]) -> Plan {
        let configured: Vec<Entry> = cfg.namesrv.addrs.iter().map(|a| Entry::parse(a)).collect();
        let server = cfg.address_server_url().is_some();
        let broker = if !server && configured.is_empty() {
            broker_list.iter().map(|a| Entry::parse(a)).collect()
        } else {
            Vec::new()
        };
        Plan {
            configured,
            server,
            combine: cfg.namesrv.combine,
            broker,
        }
    }

    /// Whether an address server is a source.
    pub fn has_server(&self) -> bool {
        self.server
    }

    /// The names to look up.
    pub fn names(&self) -> Vec<NameKey> {
        let mut out: Vec<NameKey> = Vec::new();
        for e in self.configured.iter().chain(&self.broker) {
            if let Entry::Name(k) = e {
                if !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        out
    }

    fn configured_used(&self, server_answered: bool) -> bool {
        !server_answered || self.combine == Combine::Union
    }
}

/// Every source's last good answer (and whether it fails now).
#[derive(Debug, Default)]
pub struct Sources {
    names: BTreeMap<NameKey, NameSource>,
    server: ServerSource,
}

/// One name's state.
#[derive(Debug, Default)]
pub struct NameSource {
    /// Its NameServers.
    pub members: Members,
    /// Its lookups (one in flight).
    pub lookup: Arc<Lookup>,
    /// Why the last lookup failed, while it fails.
    pub error: Option<String>,
    /// Whether a lookup answered yet.
    pub answered: bool,
    /// Whether the cap's WARN was said (once while the name is over it).
    pub capped: bool,
}

#[derive(Debug, Default)]
struct ServerSource {
    answer: Option<Vec<String>>,
    error: Option<String>,
}

/// What taking a lookup's outcome means, for the log: said once per change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// A good answer; what it changed.
    Answer(Change),
    /// The first failure after good answers (or at start), and why: WARN.
    StartedFailing(String),
    /// Another failure: nothing to say.
    StillFailing,
    /// A good answer after failures: INFO, with what it changed.
    Recovered(Change),
}

impl Sources {
    /// Keeps the names `plan` asks for (new ones with no answer yet) and forgets the rest;
    /// the names forgotten.
    pub fn follow(&mut self, plan: &Plan) -> Vec<NameKey> {
        let wanted = plan.names();
        let gone: Vec<NameKey> = self
            .names
            .keys()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        for k in &gone {
            self.names.remove(k);
        }
        for k in wanted {
            self.names.entry(k).or_default();
        }
        if !plan.server {
            self.server = ServerSource::default();
        }
        gone
    }

    /// The names followed.
    pub fn names(&self) -> impl Iterator<Item = (&NameKey, &NameSource)> {
        self.names.iter()
    }

    /// The lookup of `name`, when it is followed.
    pub fn lookup(&self, name: &NameKey) -> Option<Arc<Lookup>> {
        self.names.get(name).map(|n| n.lookup.clone())
    }

    /// Takes a lookup's outcome at `now` (nothing for a name no longer followed).
    pub fn take_lookup(
        &mut self,
        name: &NameKey,
        outcome: Result<Answer, LookupError>,
        now: Instant,
    ) -> Option<(Taken, usize)> {
        let n = self.names.get_mut(name)?;
        let taken = match outcome {
            Ok(answer) => {
                let change = n.members.answer(&answer.addrs, now);
                n.answered = true;
                let over = answer.over_cap > 0;
                let first_over = over && !n.capped;
                n.capped = over;
                let was_failing = n.error.take().is_some();
                if first_over {
                    tracing::warn!(
                        name = %name,
                        addresses = answer.addrs.len() + answer.over_cap,
                        kept = MAX_PER_NAME,
                        "a name gives more addresses than are taken from one name: the first {MAX_PER_NAME} are NameServers"
                    );
                }
                if was_failing {
                    Taken::Recovered(change)
                } else {
                    Taken::Answer(change)
                }
            }
            Err(e) => failed(&mut n.error, e.to_string()),
        };
        Some((taken, n.members.current().len()))
    }

    /// Takes the address server's answer (or why there was none), said as a name's lookup is.
    pub fn take_server(&mut self, outcome: Result<Vec<String>, String>) -> Taken {
        match outcome {
            Ok(list) => {
                self.server.answer = Some(list);
                match self.server.error.take() {
                    Some(_) => Taken::Recovered(Change::default()),
                    None => Taken::Answer(Change::default()),
                }
            }
            Err(e) => failed(&mut self.server.error, e),
        }
    }

    /// The one list the sources make under `plan`.
    pub fn list(&self, plan: &Plan) -> NamesrvList {
        let mut out = NamesrvList::default();
        let mut seen = HashSet::new();
        let answered = self.server.answer.as_ref();
        if plan.configured_used(answered.is_some()) {
            self.push_entries(&plan.configured, &mut out, &mut seen);
        }
        for a in answered.into_iter().flatten() {
            out.push(&mut seen, a.clone(), None);
        }
        self.push_entries(&plan.broker, &mut out, &mut seen);
        out
    }

    fn push_entries(&self, entries: &[Entry], out: &mut NamesrvList, seen: &mut HashSet<String>) {
        for e in entries {
            match e {
                Entry::Addr(a) => out.push(seen, addr_key(*a), None),
                Entry::Other(s) => out.push(seen, s.clone(), None),
                Entry::Name(k) => {
                    let current = self.names.get(k).map(|n| n.members.current());
                    for a in current.unwrap_or_default() {
                        out.push(seen, addr_key(*a), Some(&k.host));
                    }
                }
            }
        }
    }

    /// What each source gives under `plan`.
    pub fn view(&self, plan: &Plan) -> SourcesView {
        let mut v = Vec::new();
        let answered = self.server.answer.is_some();
        let configured_used = plan.configured_used(answered);
        self.view_entries(&plan.configured, STATIC, configured_used, &mut v);
        if plan.server {
            v.push(SourceView {
                source: ADDRESS_SERVER.to_string(),
                addrs: self.server.answer.clone().unwrap_or_default(),
                error: self.server.error.clone(),
                used: true,
            });
        }
        self.view_entries(&plan.broker, BROKER, true, &mut v);
        SourcesView(v)
    }

    fn view_entries(&self, entries: &[Entry], label: &str, used: bool, v: &mut Vec<SourceView>) {
        let plain: Vec<String> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Addr(a) => Some(addr_key(*a)),
                Entry::Other(s) => Some(s.clone()),
                Entry::Name(_) => None,
            })
            .collect();
        if !plain.is_empty() {
            v.push(SourceView {
                source: label.to_string(),
                addrs: plain,
                error: None,
                used,
            });
        }
        for e in entries {
            if let Entry::Name(k) = e {
                let n = self.names.get(k);
                v.push(SourceView {
                    source: k.to_string(),
                    addrs: n
                        .map(|n| n.members.current().iter().map(|a| addr_key(*a)).collect())
                        .unwrap_or_default(),
                    error: n.and_then(|n| n.error.clone()),
                    used,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
