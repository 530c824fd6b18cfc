//! The listed NameServers' tasks, owned by the register task: started when a NameServer joins
//! the list, told to leave (and awaited) when it goes, asked for rounds and goodbyes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::task::{self, Cmd, Link};
use crate::daemon::published::{Members, Status};
use crate::broker::{NamesrvOutcome, RegisterStatus, RoundBodies};
use crate::client::{ChannelEvent, ChannelEventKind, ChannelEventListener};
use crate::daemon::goodbye::{succeeded, LEAVE_WAIT};
use crate::daemon::published::Advert;
use crate::daemon::publisher::RegisterOut;
use crate::daemon::shared::Shared;
use crate::poison::lock;

/// Where the client's "connection closed" events go: the NameServer's task, by address.
/// Written only by the [`Fleet`]; the client's listener only looks up and notifies.
#[derive(Default)]
pub(crate) struct CloseRoutes(Mutex<HashMap<String, Arc<Notify>>>);

impl ChannelEventListener for CloseRoutes {
    fn on_event(&self, event: ChannelEvent) {
        if event.kind == ChannelEventKind::Close {
            if let Some(n) = lock(&self.0).get(&event.remote) {
                n.notify_one();
            }
        }
    }
}

/// One listed NameServer's task, from the outside.
struct Member {
    cmds: mpsc::Sender<Cmd>,
    status: watch::Receiver<Status>,
    task: AbortHandle,
}

/// The listed NameServers' tasks. Dropping it (the register task ending) aborts them.
pub(crate) struct Fleet {
    sh: Arc<Shared>,
    routes: Arc<CloseRoutes>,
    /// The register task's publishers: the fleet publishes the members.
    out: Arc<RegisterOut>,
    members: BTreeMap<String, Member>,
    /// Members told to leave whose goodbyes are not all said yet.
    leaving: Vec<Member>,
    tasks: JoinSet<()>,
}

impl Fleet {
    /// No NameServer yet.
    pub(crate) fn new(sh: Arc<Shared>, routes: Arc<CloseRoutes>, out: Arc<RegisterOut>) -> Self {
        Fleet {
            sh,
            routes,
            out,
            members: BTreeMap::new(),
            leaving: Vec::new(),
            tasks: JoinSet::new(),
        }
    }

    /// True with no NameServer listed.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Makes `list` the NameServer list, the names its addresses were looked up from given to
    /// the client first (what their certificates are checked against); see [`Fleet::set`].
    pub(crate) async fn set_list(&mut self, list: &crate::sources::NamesrvList) {
        self.sh.client.set_tls_names(list.names.clone());
        self.set(&list.addrs).await;
    }

    /// Makes `list` the NameServer list: new ones get a task (which registers what is
    /// advertised now); ones that left are told to leave with a goodbye, and awaited, so
    /// nothing of theirs can come back.
    pub(crate) async fn set(&mut self, list: &[String]) {
        // As the client takes lists: duplicates collapse, an empty list changes nothing.
        let mut seen = std::collections::HashSet::new();
        let list: Vec<String> = list.iter().filter(|a| seen.insert(*a)).cloned().collect();
        if list.is_empty() {
            return;
        }
        let sh = self.sh.clone();
        // Tasks that left earlier: reaped here, so the set does not grow with list changes.
        while self.tasks.try_join_next().is_some() {}
        let old: Vec<String> = self.members.keys().cloned().collect();
        if old.len() == list.len() && list.iter().all(|a| self.members.contains_key(a)) {
            return;
        }
        // The client's list: NameServer choice for calls that name none.
        sh.client.update_name_server_list(list.clone());
        self.out.metrics.set_namesrv_list_size(list.len());
        let removed: Vec<String> = old.into_iter().filter(|a| !list.contains(a)).collect();
        tracing::info!(namesrvs = ?list, removed = ?removed, "NameServer list changed");
        // Held by the fleet until their goodbyes are said: a stop that abandons this list
        // change finds them in `leaving` and waits for them too.
        self.leaving
            .extend(removed.iter().filter_map(|a| self.members.remove(a)));
        for a in &removed {
            lock(&self.routes.0).remove(a);
        }
        leave(&self.leaving, LEAVE_WAIT).await;
        self.leaving.clear();
        for a in &list {
            if !self.members.contains_key(a) {
                let m = self.spawn(a);
                self.members.insert(a.clone(), m);
            }
        }
        self.publish();
    }

    fn spawn(&mut self, addr: &str) -> Member {
        let (tx, rx) = mpsc::channel(4);
        let closed = Arc::new(Notify::new());
        lock(&self.routes.0).insert(addr.to_string(), closed.clone());
        let (status, status_rx) = watch::channel(Status::default());
        let link = Link {
            addr: Arc::from(addr),
            cmds: rx,
            closed,
            status,
            metrics: self.out.namesrv.clone(),
        };
        let task = self.tasks.spawn(task::run(self.sh.clone(), link));
        Member {
            cmds: tx,
            status: status_rx,
            task,
        }
    }

    fn publish(&self) {
        let members = Members(Arc::new(
            self.members
                .iter()
                .map(|(a, m)| (Arc::from(a.as_str()), m.status.clone()))
                .collect(),
        ));
        self.out.members.send_replace(members);
    }

    /// Asks every NameServer to register `advert` (bodies encoded once, shared), and waits
    /// for each outcome. A task that ended meanwhile (it panicked) counts as not asked.
    pub(crate) async fn round(
        &self,
        advert: &Arc<Advert>,
        force: bool,
    ) -> Vec<NamesrvOutcome<RegisterStatus>> {
        let bodies = RoundBodies::new(advert.table.clone());
        let asks = self.members.values().map(|m| {
            let (reply, answer) = oneshot::channel();
            let cmd = Cmd::Round {
                advert: advert.clone(),
                bodies: bodies.clone(),
                force,
                reply,
            };
            async move {
                m.cmds.send(cmd).await.ok()?;
                answer.await.ok()
            }
        });
        let per = join_all(asks).await;
        per.into_iter().flatten().collect()
    }

    /// The broker went down: every NameServer says goodbye after its registration in flight.
    pub(crate) async fn withdraw_all(&self) {
        let started = Instant::now();
        let asks = self.members.values().map(|m| {
            let (reply, answer) = oneshot::channel();
            async move {
                m.cmds.send(Cmd::Withdraw { reply }).await.ok()?;
                answer.await.ok().flatten()
            }
        });
        let outcomes: Vec<_> = join_all(asks).await.into_iter().flatten().collect();
        let ok = succeeded(&outcomes);
        tracing::info!(ok, total = outcomes.len(), took = ?started.elapsed(), "broker unregistered while it is down");
    }

    /// The daemon stops: every NameServer says goodbye (a registration in flight gets
    /// [`LEAVE_WAIT`]) and its task ends. Returns (succeeded, asked).
    pub(crate) async fn leave_all(&mut self) -> (usize, usize) {
        let mut members: Vec<Member> = std::mem::take(&mut self.members).into_values().collect();
        // Ones a list change was saying goodbye to when the stop came: their goodbye goes on
        // in their task, and is waited for here too.
        members.append(&mut self.leaving);
        lock(&self.routes.0).clear();
        let outcomes = leave(&members, LEAVE_WAIT).await;
        self.publish();
        (succeeded(&outcomes), outcomes.len())
    }
}

/// Tells `members` to leave and waits until each has (its goodbye said, its series gone).
async fn leave(members: &[Member], wait: Duration) -> Vec<NamesrvOutcome<()>> {
    let asks = members.iter().map(|m| async move {
        let (reply, answer) = oneshot::channel();
        if m.cmds.send(Cmd::Leave { wait, reply }).await.is_err() {
            m.task.abort();
            return None;
        }
        let out = answer.await.ok().flatten();
        m.task.abort();
        out
    });
    join_all(asks).await.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Loopback addresses where nothing listens (bound, then closed): a goodbye or a
    /// registration there is refused at once.
    fn nowhere(n: usize) -> Vec<String> {
        let held: Vec<std::net::TcpListener> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        held.iter()
            .map(|l| l.local_addr().expect("addr").to_string())
            .collect()
    }

    fn fleet() -> (Fleet, Arc<Shared>, crate::daemon::publisher::Channels) {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "127.0.0.1:10911".into();
        cfg.register.timeout = Duration::from_secs(2);
        let (sh, mut ch) = Shared::for_tests(cfg);
        let out = Arc::new(std::mem::replace(
            &mut ch.register,
            crate::daemon::publisher::Channels::new(&sh.config(), None, sh.api.clone(), &sh.metrics)
                .0
                .register,
        ));
        let f = Fleet::new(sh.clone(), Arc::default(), out);
        (f, sh, ch)
    }

    #[tokio::test]
    async fn duplicates_make_one_member_and_an_empty_list_changes_nothing() {
        let (mut f, sh, _ch) = fleet();
        let a = nowhere(1);
        f.set(&[a[0].clone(), a[0].clone()]).await;
        assert_eq!(f.members.len(), 1);
        assert_eq!(sh.members.borrow().0.len(), 1, "the members are published");
        f.set(&[]).await;
        assert_eq!(f.members.len(), 1, "an empty list is not taken");
        f.leave_all().await;
    }

    #[tokio::test]
    async fn one_that_leaves_the_list_is_awaited_its_series_gone_and_a_round_asks_the_rest() {
        let (mut f, sh, _ch) = fleet();
        let a = nowhere(2);
        f.set(&a).await;
        // Each task seeds its series when it first runs.
        for _ in 0..100 {
            if sh.metrics.render().contains(&a[0]) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(sh.metrics.render().contains(&a[0]), "seeded");
        f.set(&a[1..]).await;
        assert!(f.leaving.is_empty(), "its goodbye was awaited");
        assert!(!sh.metrics.render().contains(&a[0]), "its series are gone");
        assert!(!lock(&f.routes.0).contains_key(&a[0]), "and its close route");
        let advert = Arc::new(Advert {
            id: sh.current().expect("identity").id,
            table: Arc::default(),
            opts: crate::daemon::register::options(
                &sh.config(),
                false,
                &sh.current().expect("identity"),
            ),
            drain: None,
        });
        let out = f.round(&advert, true).await;
        assert_eq!(out.len(), 1, "one member asked");
        assert_eq!(out[0].addr, a[1]);
        assert!(out[0].result.is_err(), "nothing listens there");
        let (ok, total) = f.leave_all().await;
        assert_eq!((ok, total), (0, 1));
        assert!(sh.members.borrow().0.is_empty());
    }
}
