//! The state every clone of the client shares: connection and response tables, permits, the
//! NameServer choice, hooks, processors, counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{ClientConfig, ClientTls};
use super::connection::{ConnHandle, Slot, WriteError};
use super::error::ClientError;
use super::hooks::{ChannelEvent, ProcessorTable, RpcHook};
use super::namesrvs::NameServers;
use super::pending::PendingTable;
use super::stats::{ClientStats, PeerInfo};
use crate::poison::{lock, read};
use crate::protocol::{FrameCodec, RemotingCommand};

/// Room for a header beyond its custom fields and remark (JSON keys and numbers).
const HEADER_BASE: usize = 192;

pub(crate) struct Inner {
    pub(super) config: ClientConfig,
    pub(super) conns: Mutex<HashMap<String, Slot>>,
    pub(super) pending: Mutex<PendingTable>,
    /// Read only by `invoke_async`, which the daemon does not use.
    #[cfg_attr(not(any(test, feature = "test-util")), allow(dead_code))]
    pub(super) async_permits: Arc<Semaphore>,
    pub(super) oneway_permits: Arc<Semaphore>,
    pub(super) namesrv: RwLock<NameServers>,
    pub(super) hook: RwLock<Option<Arc<dyn RpcHook>>>,
    pub(super) processors: Mutex<ProcessorTable>,
    pub(super) events: Option<mpsc::Sender<ChannelEvent>>,
    pub(super) stats: ClientStats,
    pub(super) peers: Mutex<HashMap<String, PeerInfo>>,
    pub(super) shutdown: CancellationToken,
    pub(super) next_conn_id: AtomicU64,
    /// Replaced on SIGHUP (certificate rotation); read at each new connection.
    pub(super) tls: RwLock<Option<ClientTls>>,
    /// Address → the name its certificate is checked against when `tls.server_name` is unset
    /// (a NameServer found by looking a name up is dialled by address, checked by name).
    pub(super) tls_names: RwLock<std::collections::BTreeMap<String, String>>,
}

impl Inner {
    /// Shared state for a client with `config`; events go to `events` when given.
    pub(super) fn new(config: ClientConfig, events: Option<mpsc::Sender<ChannelEvent>>) -> Self {
        Inner {
            tls: RwLock::new(config.tls.clone()),
            tls_names: RwLock::default(),
            async_permits: Arc::new(Semaphore::new(config.async_permits)),
            oneway_permits: Arc::new(Semaphore::new(config.oneway_permits)),
            config,
            conns: Mutex::default(),
            pending: Mutex::default(),
            namesrv: RwLock::default(),
            hook: RwLock::new(None),
            processors: Mutex::default(),
            events,
            stats: ClientStats::default(),
            peers: Mutex::default(),
            shutdown: CancellationToken::new(),
            next_conn_id: AtomicU64::new(1),
        }
    }

    pub(super) fn hook(&self) -> Option<Arc<dyn RpcHook>> {
        read(&self.hook).clone()
    }

    /// The live connection to `addr`, if there is one.
    pub(super) fn live(&self, addr: &str) -> Option<Arc<ConnHandle>> {
        match lock(&self.conns).get(addr) {
            Some(Slot::Connected(c)) if c.is_ok() => Some(c.clone()),
            _ => None,
        }
    }

    /// The frame's head, checked against `max_frame` with the body, and the body as it is.
    /// The head's buffer is sized for the header up front: one allocation per frame.
    pub(super) fn frame(
        &self,
        cmd: &RemotingCommand,
    ) -> Result<(Bytes, Option<Bytes>), ClientError> {
        let body_len = cmd.body.as_ref().map_or(0, Bytes::len);
        let fields: usize = cmd
            .ext_fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum();
        let remark = cmd.remark.as_ref().map_or(0, String::len);
        let mut head = BytesMut::with_capacity(HEADER_BASE + fields + remark);
        FrameCodec::new(self.config.max_frame)
            .encode_head(cmd, body_len, &mut head)
            .map_err(|e| ClientError::Encode(Arc::new(e)))?;
        Ok((head.freeze(), cmd.body.clone()))
    }

    /// Writes a frame on `conn` by `deadline`; a queue still full then is a typed, counted
    /// `Busy`, a failed socket closes the connection.
    pub(super) async fn write(
        &self,
        conn: &ConnHandle,
        (head, body): (Bytes, Option<Bytes>),
        timeout: Duration,
        deadline: Instant,
    ) -> Result<(), ClientError> {
        match conn.write(head, body, timeout, deadline).await {
            Ok(()) => Ok(()),
            Err(WriteError::Busy) => {
                self.stats.busy.fetch_add(1, Ordering::Relaxed);
                Err(ClientError::Busy {
                    addr: conn.addr.to_string(),
                })
            }
            Err(WriteError::Failed(source)) => Err(self.send_failed(conn, source)),
            Err(WriteError::Timeout) => Err(ClientError::Timeout {
                addr: conn.addr.to_string(),
                timeout,
            }),
        }
    }

    fn send_failed(&self, conn: &ConnHandle, source: Option<Arc<std::io::Error>>) -> ClientError {
        conn.close();
        let source = source.unwrap_or_else(|| {
            Arc::new(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "connection closed",
            ))
        });
        ClientError::Send {
            addr: conn.addr.to_string(),
            source,
        }
    }
}
