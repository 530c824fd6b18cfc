//! The connection table and the NameServer choice.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::FutureExt;
use tokio::net::TcpStream;

use super::connection::{self, ConnHandle};
use super::{ChannelEventKind, ClientError, ConnectResult, Inner, Slot};
use crate::poison::{lock, read, write};

impl Inner {
    pub(super) fn live(&self, addr: &str) -> Option<Arc<ConnHandle>> {
        match lock(&self.conns).get(addr) {
            Some(Slot::Connected(c)) if c.is_ok() => Some(c.clone()),
            _ => None,
        }
    }

    /// The connection for `addr`, or for the chosen NameServer when `addr` is None.
    pub(super) async fn connection(
        self: &Arc<Self>,
        addr: Option<&str>,
    ) -> Result<Arc<ConnHandle>, ClientError> {
        if self.shutdown.is_cancelled() {
            return Err(ClientError::Shutdown);
        }
        match addr {
            Some(a) => self.connect(a).await,
            None => self.name_server_connection().await,
        }
    }

    /// Sticks to the chosen NameServer while healthy, else tries the others round-robin.
    /// No lock is held while connecting: concurrent callers share each address's attempt,
    /// and the caller's deadline bounds the whole search.
    async fn name_server_connection(self: &Arc<Self>) -> Result<Arc<ConnHandle>, ClientError> {
        if let Some(c) = self.chosen_live() {
            return Ok(c);
        }
        let list = read(&self.namesrv).list.clone();
        let mut last = ClientError::NoNameServer;
        for _ in 0..list.len() {
            let i = self
                .namesrv_index
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1)
                % list.len();
            let addr = &list[i];
            match self.connect(addr).await {
                Ok(c) => {
                    write(&self.namesrv).chosen = Some(addr.clone());
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

    fn chosen_live(&self) -> Option<Arc<ConnHandle>> {
        let chosen = read(&self.namesrv).chosen.clone()?;
        self.live(&chosen)
    }

    /// Gets or opens the connection to `addr`. The attempt runs as a task of its own, bounded
    /// by `connect_timeout`, so it progresses whether or not a caller still waits, and it
    /// settles its slot itself: a later caller never sees a finished or stale attempt.
    async fn connect(self: &Arc<Self>, addr: &str) -> Result<Arc<ConnHandle>, ClientError> {
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

    /// Forgets a dead connection and fails everyone waiting on it. `silent_plain`: a plain
    /// connection closed before the peer sent anything, which a TLS-only server does.
    pub(crate) fn connection_closed(&self, conn: &ConnHandle, silent_plain: bool) {
        {
            let mut conns = lock(&self.conns);
            if matches!(conns.get(&conn.addr), Some(Slot::Connected(c)) if c.id == conn.id) {
                conns.remove(&conn.addr);
            }
        }
        let failed = lock(&self.pending).take_conn(conn.id);
        for p in failed {
            let addr = conn.addr.clone();
            p.finish(Err(if silent_plain {
                ClientError::ClosedBeforeReply { addr }
            } else {
                ClientError::ConnectionClosed { addr }
            }));
        }
    }
}

/// Opens the connection and puts the outcome in its slot (if the slot is still this attempt's).
async fn open_and_settle(inner: std::sync::Weak<Inner>, id: u64, addr: String) -> ConnectResult {
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

async fn open(inner: std::sync::Weak<Inner>, id: u64, addr: String) -> ConnectResult {
    let Some(strong) = inner.upgrade() else {
        return Err(ClientError::Shutdown);
    };
    let timeout = strong.config.connect_timeout;
    let tls = read(&strong.tls).clone().filter(|t| t.applies(&addr));
    drop(strong);
    // One bound for the TCP connect and the TLS handshake together.
    let deadline = tokio::time::Instant::now() + timeout;
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
    let (read_half, write_half, secure): (connection::BoxRead, connection::BoxWrite, bool) =
        match tls {
            None => {
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w), false)
            }
            Some(t) => {
                let name =
                    crate::tls::server_name(&addr, t.server_name.as_deref()).map_err(|reason| {
                        ClientError::Tls {
                            addr: addr.clone(),
                            reason,
                        }
                    })?;
                let connector = tokio_rustls::TlsConnector::from(t.config.clone());
                match tokio::time::timeout_at(deadline, connector.connect(name, stream)).await {
                    Ok(Ok(s)) => {
                        let (r, w) = tokio::io::split(s);
                        (Box::new(r), Box::new(w), true)
                    }
                    Ok(Err(e)) => {
                        let reason = crate::tls::explain(&e);
                        // The error carries the reason to the caller, who logs it by its own
                        // rule (the daemon: once, then a reminder per interval); a WARN here
                        // repeated it at every attempt.
                        tracing::debug!(%addr, %reason, "TLS handshake failed");
                        return Err(ClientError::Tls { addr, reason });
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
    let handle = connection::spawn(&inner, id, addr.clone(), read_half, write_half, secure);
    inner.emit(ChannelEventKind::Connect, &addr);
    Ok(handle)
}
