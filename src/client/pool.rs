//! The connection table: finding, opening (TCP, TLS) and starting connections, and trying the
//! NameServers in the order the NameServer choice names them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::FutureExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::activity::Activity;
use super::connection::{ConnHandle, ConnectResult, Slot};
use super::error::{ClientError, TlsFailure};
use super::hooks::ChannelEventKind;
use super::inner::Inner;
use super::reader::{BoxRead, Reader, Routes};
use super::writer::{write_loop, BoxWrite};
use crate::poison::{lock, read, write};

impl Inner {
    /// The connection for `addr` (or a NameServer), given up at the request's deadline.
    pub(super) async fn connection_by(
        self: &Arc<Self>,
        addr: Option<&str>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Arc<ConnHandle>, ClientError> {
        match tokio::time::timeout_at(deadline, self.connection(addr)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::ConnectTimeout {
                addr: addr.unwrap_or("(a NameServer)").to_string(),
                timeout,
            }),
        }
    }

    /// The connection for `addr`, or for the chosen NameServer when `addr` is None.
    async fn connection(self: &Arc<Self>, addr: Option<&str>) -> ConnectResult {
        if self.shutdown.is_cancelled() {
            return Err(ClientError::Shutdown);
        }
        match addr {
            Some(a) => self.connect(a).await,
            None => self.name_server_connection().await,
        }
    }

    /// Sticks to the chosen NameServer while healthy, else tries the others in the order the
    /// choice names them. No lock is held while connecting: concurrent callers share each
    /// address's attempt, and the caller's deadline bounds the whole search.
    async fn name_server_connection(self: &Arc<Self>) -> ConnectResult {
        let chosen = read(&self.namesrv).chosen().and_then(|a| self.live(a));
        if let Some(c) = chosen {
            return Ok(c);
        }
        let members = read(&self.namesrv).list().len();
        let mut last = ClientError::NoNameServer;
        for _ in 0..members {
            let Some(addr) = write(&self.namesrv).next_candidate() else {
                break;
            };
            match self.connect(&addr).await {
                Ok(c) => {
                    write(&self.namesrv).choose(&addr);
                    return Ok(c);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "NameServer unreachable, trying the next");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Gets or opens the connection to `addr`. The attempt runs as a task of its own, bounded
    /// by `connect_timeout`, so it progresses whether or not a caller still waits, and it
    /// settles its slot itself: a later caller never sees a finished or stale attempt.
    async fn connect(self: &Arc<Self>, addr: &str) -> ConnectResult {
        let attempt = {
            let mut conns = lock(&self.conns);
            match conns.get(addr) {
                Some(Slot::Connected(c)) if c.is_ok() => return Ok(c.clone()),
                Some(Slot::Connecting { attempt, .. }) => attempt.clone(),
                _ => {
                    let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
                    let task =
                        tokio::spawn(open_and_settle(Arc::downgrade(self), id, addr.to_string()));
                    let attempt = async move { task.await.unwrap_or(Err(ClientError::Shutdown)) }
                        .boxed()
                        .shared();
                    conns.insert(
                        addr.to_string(),
                        Slot::Connecting {
                            id,
                            attempt: attempt.clone(),
                        },
                    );
                    attempt
                }
            }
        };
        attempt.await
    }

    /// Starts the writer and reader tasks of a freshly connected socket.
    fn start(
        self: &Arc<Self>,
        id: u64,
        addr: &str,
        (read_half, write_half): (BoxRead, BoxWrite),
        secure: bool,
    ) -> Arc<ConnHandle> {
        let activity = Arc::new(Activity::new());
        let (handle, side, queue) = ConnHandle::new(
            id,
            Arc::from(addr),
            write_half,
            self.shutdown.child_token(),
            activity.clone(),
        );
        tokio::spawn(write_loop(side, queue));
        // A NameServer never needs more than max_frame; a broker's topic table may.
        let max = if read(&self.namesrv).contains(addr) {
            self.config.max_frame
        } else {
            self.config.max_reply_frame.max(self.config.max_frame)
        };
        let routes: Weak<dyn Routes> = Arc::downgrade(self) as Weak<Inner>;
        let reader = Reader::new(
            handle.clone(),
            read_half,
            secure,
            max,
            self.config.idle_timeout,
            activity,
            routes,
        );
        tokio::spawn(reader.run());
        handle
    }
}

/// Opens the connection and puts the outcome in its slot (if the slot is still this attempt's).
async fn open_and_settle(inner: Weak<Inner>, id: u64, addr: String) -> ConnectResult {
    let result = open(inner.clone(), id, addr.clone()).await;
    let Some(inner) = inner.upgrade() else {
        return Err(ClientError::Shutdown);
    };
    let mut conns = lock(&inner.conns);
    let ours = matches!(conns.get(&addr), Some(Slot::Connecting { id: cur, .. }) if *cur == id);
    match (&result, ours) {
        (Ok(c), true) => {
            conns.insert(addr, Slot::Connected(c.clone()));
        }
        (Err(_), true) => {
            conns.remove(&addr);
        }
        // The slot was closed or replaced meanwhile: this connection has no owner, close it.
        (Ok(c), false) => c.close(),
        (Err(_), false) => {}
    }
    result
}

async fn open(inner: Weak<Inner>, id: u64, addr: String) -> ConnectResult {
    let Some(strong) = inner.upgrade() else {
        return Err(ClientError::Shutdown);
    };
    let timeout = strong.config.connect_timeout;
    let tls = read(&strong.tls).clone().filter(|t| t.applies(&addr));
    let looked_up = read(&strong.tls_names).get(&addr).cloned();
    drop(strong);
    // One bound for the TCP connect and the TLS handshake together.
    let deadline = Instant::now() + timeout;
    let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr.as_str())).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(ClientError::Connect {
                addr,
                source: Arc::new(e),
            })
        }
        Err(_) => return Err(ClientError::ConnectTimeout { addr, timeout }),
    };
    // Small request/response frames: latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let (halves, secure): ((BoxRead, BoxWrite), bool) = match tls {
        None => {
            let (r, w) = stream.into_split();
            ((Box::new(r), Box::new(w)), false)
        }
        Some(t) => {
            let wanted = t.server_name.as_deref().or(looked_up.as_deref());
            let name = crate::tls::server_name(&addr, wanted).map_err(|f| {
                ClientError::Tls {
                    addr: addr.clone(),
                    source: Arc::new(TlsFailure::from(f)),
                }
            })?;
            let connector = tokio_rustls::TlsConnector::from(t.config.clone());
            match tokio::time::timeout_at(deadline, connector.connect(name, stream)).await {
                Ok(Ok(s)) => {
                    let (r, w) = tokio::io::split(s);
                    ((Box::new(r), Box::new(w)), true)
                }
                Ok(Err(source)) => {
                    let failure = TlsFailure::Handshake { source };
                    // The error carries the reason to the caller, who logs it by its own
                    // rule (the daemon: once, then a reminder per interval); a WARN here
                    // repeated it at every attempt.
                    tracing::debug!(%addr, reason = %failure, "TLS handshake failed");
                    return Err(ClientError::Tls {
                        addr,
                        source: Arc::new(failure),
                    });
                }
                Err(_) => return Err(ClientError::ConnectTimeout { addr, timeout }),
            }
        }
    };
    let Some(inner) = inner.upgrade() else {
        return Err(ClientError::Shutdown);
    };
    if inner.shutdown.is_cancelled() {
        return Err(ClientError::Shutdown);
    }
    inner.stats.connects.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%addr, id, secure, "connected");
    let handle = inner.start(id, &addr, halves, secure);
    inner.emit(ChannelEventKind::Connect, &addr);
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::ServerName;

    use super::*;

    #[test]
    fn the_tls_name_is_the_configured_one_or_the_host() {
        assert_eq!(
            crate::tls::server_name("10.0.0.1:9876", None).ok(),
            ServerName::try_from("10.0.0.1").ok()
        );
        assert_eq!(
            crate::tls::server_name("[::1]:9876", None).ok(),
            ServerName::try_from("::1").ok()
        );
        assert_eq!(
            crate::tls::server_name("10.0.0.1:9876", Some("namesrv.test")).ok(),
            ServerName::try_from("namesrv.test").ok()
        );
        let e = TlsFailure::from(crate::tls::server_name("a:1", Some("not a name")).unwrap_err());
        assert!(matches!(e, TlsFailure::ServerName(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "\"not a name\" is not a valid TLS server name: invalid dns name"
        );
    }
}
