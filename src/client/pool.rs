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
    async fn name_server_connection(self: &Arc<Self>) -> Result<Arc<ConnHandle>, ClientError> {
        if let Some(c) = self.chosen_live() {
            return Ok(c);
        }
        let _one_at_a_time = self.namesrv_lock.lock().await;
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
            write(&self.namesrv).chosen = Some(addr.clone());
            match self.connect(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::info!(%addr, error = %e, "NameServer unreachable, trying the next");
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

    /// Gets or opens the connection to `addr`; concurrent callers share one connect attempt.
    async fn connect(self: &Arc<Self>, addr: &str) -> Result<Arc<ConnHandle>, ClientError> {
        let (id, attempt) = {
            let mut conns = lock(&self.conns);
            match conns.get(addr) {
                Some(Slot::Connected(c)) if c.is_ok() => return Ok(c.clone()),
                Some(Slot::Connecting { id, attempt }) => (*id, attempt.clone()),
                _ => {
                    let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
                    let attempt = open(Arc::downgrade(self), id, addr.to_string())
                        .boxed()
                        .shared();
                    conns.insert(
                        addr.to_string(),
                        Slot::Connecting {
                            id,
                            attempt: attempt.clone(),
                        },
                    );
                    (id, attempt)
                }
            }
        };
        let result = attempt.await;
        let mut conns = lock(&self.conns);
        if matches!(conns.get(addr), Some(Slot::Connecting { id: cur, .. }) if *cur == id) {
            match &result {
                Ok(c) => conns.insert(addr.to_string(), Slot::Connected(c.clone())),
                Err(_) => conns.remove(addr),
            };
        }
        result
    }

    /// Forgets a dead connection and fails everyone waiting on it.
    pub(crate) fn connection_closed(&self, conn: &ConnHandle) {
        {
            let mut conns = lock(&self.conns);
            if matches!(conns.get(&conn.addr), Some(Slot::Connected(c)) if c.id == conn.id) {
                conns.remove(&conn.addr);
            }
        }
        let failed = lock(&self.pending).take_conn(conn.id);
        for p in failed {
            p.finish(Err(ClientError::ConnectionClosed {
                addr: conn.addr.clone(),
            }));
        }
    }
}

async fn open(inner: std::sync::Weak<Inner>, id: u64, addr: String) -> ConnectResult {
    let Some(strong) = inner.upgrade() else {
        return Err(ClientError::Shutdown);
    };
    let timeout = strong.config.connect_timeout;
    drop(strong);
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr.as_str())).await {
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
    let Some(inner) = inner.upgrade() else {
        return Err(ClientError::Shutdown);
    };
    if inner.shutdown.is_cancelled() {
        return Err(ClientError::Shutdown);
    }
    inner.stats.connects.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%addr, id, "connected");
    let handle = connection::spawn(&inner, id, addr.clone(), stream);
    inner.emit(ChannelEventKind::Connect, &addr);
    Ok(handle)
}
