//! Looking a name up with the system's resolver (getaddrinfo, on tokio's blocking pool): the
//! same answers as every other program on the host, the JVM included, from /etc/hosts,
//! resolv.conf (search, ndots, timeout) and whatever nsswitch.conf names.
//!
//! getaddrinfo cannot be cancelled, so a lookup slower than its timeout is counted as failed
//! and left to finish on its thread; until it does, the name gets no second one
//! ([`Lookup::busy`]): one lookup per name is ever in flight.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::entry::NameKey;
use crate::config::ResolveFamily;

/// Addresses taken from one name at most; the rest are left out (with a WARN, by the caller).
pub const MAX_PER_NAME: usize = 64;

/// Why a lookup gave no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The resolver failed or the name does not exist (the system's words).
    #[error("{0}")]
    Failed(String),
    /// The name exists but has no address of the family asked for.
    #[error("no {0} address")]
    Empty(&'static str),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The previous lookup of this name has not returned yet.
    #[error("the previous lookup has not returned yet")]
    StillInFlight,
}

/// A lookup's answer: the addresses kept, and how many more the name had past the cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Sorted, without duplicates, at most [`MAX_PER_NAME`].
    pub addrs: Vec<SocketAddr>,
    /// Addresses left out by the cap.
    pub over_cap: usize,
}

/// One name's lookups: at most one in flight.
#[derive(Debug, Default)]
pub struct Lookup {
    busy: Arc<AtomicBool>,
}

impl Lookup {
    /// True while a lookup of the name (perhaps one given up on) is still running.
    #[cfg(test)]
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Looks `name` up, bounded by `timeout`.
    pub async fn run(
        &self,
        name: &NameKey,
        family: ResolveFamily,
        timeout: Duration,
    ) -> Result<Answer, LookupError> {
        let target = (name.host.clone(), name.port);
        self.run_with(family, timeout, move || {
            std::net::ToSocketAddrs::to_socket_addrs(&target).map(Iterator::collect)
        })
        .await
    }

    /// [`run`](Self::run) with `resolve` in place of the system resolver.
    async fn run_with(
        &self,
        family: ResolveFamily,
        timeout: Duration,
        resolve: impl FnOnce() -> std::io::Result<Vec<SocketAddr>> + Send + 'static,
    ) -> Result<Answer, LookupError> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(LookupError::StillInFlight);
        }
        let busy = self.busy.clone();
        let task = tokio::task::spawn_blocking(move || {
            let r = resolve();
            busy.store(false, Ordering::Release);
            r
        });
        match tokio::time::timeout(timeout, task).await {
            Err(_) => Err(LookupError::Timeout(timeout)),
            Ok(Err(join)) => Err(LookupError::Failed(join.to_string())),
            Ok(Ok(Err(e))) => Err(LookupError::Failed(e.to_string())),
            Ok(Ok(Ok(all))) => pick(all, family),
        }
    }
}

/// The addresses of `family` among `all`, sorted and capped.
pub fn pick(all: Vec<SocketAddr>, family: ResolveFamily) -> Result<Answer, LookupError> {
    let v4 = |a: &SocketAddr| a.is_ipv4();
    let has_v4 = all.iter().any(v4);
    let (keep, what): (fn(&SocketAddr) -> bool, _) = match family {
        ResolveFamily::Ipv4 => (v4, "IPv4"),
        ResolveFamily::Ipv6 => (SocketAddr::is_ipv6, "IPv6"),
        ResolveFamily::Auto if has_v4 => (v4, "IPv4"),
        ResolveFamily::Auto => (SocketAddr::is_ipv6, "IPv4 or IPv6"),
    };
    let mut addrs: Vec<SocketAddr> = all.into_iter().filter(keep).collect();
    addrs.sort_unstable();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(LookupError::Empty(what));
    }
    let over_cap = addrs.len().saturating_sub(MAX_PER_NAME);
    addrs.truncate(MAX_PER_NAME);
    Ok(Answer { addrs, over_cap })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(s: &[&str]) -> Vec<SocketAddr> {
        s.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_records_first_aaaa_only_without_them() {
        let both = addrs(&["[::2]:1", "10.0.0.2:1", "10.0.0.1:1", "10.0.0.1:1"]);
        let a = pick(both.clone(), ResolveFamily::Auto).unwrap();
        assert_eq!(a.addrs, addrs(&["10.0.0.1:1", "10.0.0.2:1"]));
        let six = pick(addrs(&["[::2]:1"]), ResolveFamily::Auto).unwrap();
        assert_eq!(six.addrs, addrs(&["[::2]:1"]));
        assert_eq!(
            pick(both, ResolveFamily::Ipv6).unwrap().addrs,
            addrs(&["[::2]:1"])
        );
        assert_eq!(
            pick(addrs(&["[::2]:1"]), ResolveFamily::Ipv4),
            Err(LookupError::Empty("IPv4"))
        );
        assert_eq!(pick(vec![], ResolveFamily::Auto), Err(LookupError::Empty("IPv4 or IPv6")));
    }

    #[test]
    fn a_name_gives_at_most_the_cap() {
        let many: Vec<SocketAddr> = (0..300u16)
            .map(|i| SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 9876)))
            .collect();
        let a = pick(many, ResolveFamily::Auto).unwrap();
        assert_eq!(a.addrs.len(), MAX_PER_NAME);
        assert_eq!(a.over_cap, 300 - MAX_PER_NAME);
    }

    /// getaddrinfo cannot be cancelled: one slower than the timeout is a failure, and the name
    /// gets no second lookup until the first has returned.
    #[tokio::test]
    async fn a_slow_lookup_fails_at_the_timeout_and_blocks_a_second_until_it_returns() {
        let l = Lookup::default();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (returned, done) = tokio::sync::oneshot::channel();
        let stuck = move || {
            let _ = held.recv();
            let _ = returned.send(());
            Ok(addrs(&["10.0.0.1:1"]))
        };
        let short = Duration::from_millis(50);
        let r = l.run_with(ResolveFamily::Auto, short, stuck).await;
        assert_eq!(r, Err(LookupError::Timeout(short)));
        assert!(l.busy());
        let again = l.run_with(ResolveFamily::Auto, short, || Ok(vec![])).await;
        assert_eq!(again, Err(LookupError::StillInFlight));
        release.send(()).unwrap();
        done.await.unwrap();
        // The flag is cleared right after the send: wait for it without a timer.
        while l.busy() {
            tokio::task::yield_now().await;
        }
        let long = Duration::from_secs(30);
        let ok = l.run_with(ResolveFamily::Auto, long, || Ok(addrs(&["10.0.0.2:1"])));
        assert_eq!(ok.await.unwrap().addrs, addrs(&["10.0.0.2:1"]));
    }

    #[tokio::test]
    async fn a_lookup_answers_from_the_system_resolver() {
        let l = Lookup::default();
        let name = NameKey {
            host: "localhost".into(),
            port: 9876,
        };
        let a = l
            .run(&name, ResolveFamily::Ipv4, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(a.addrs, addrs(&["127.0.0.1:9876"]));
        assert!(!l.busy());
    }
}
