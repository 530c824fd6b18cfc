//! The requests of registration: REGISTER_BROKER, UNREGISTER_BROKER, QUERY_DATA_VERSION.

use bytes::Bytes;

use crate::broker::api::{parse_body, Request};
use crate::broker::body::{DataVersion, KvTable};
use crate::broker::error::ApiError;
use crate::broker::identity::BrokerIdentity;
use crate::broker::register::options::RegisterOptions;
use crate::broker::register::outcome::{RegisterBrokerResult, SentAs};
use crate::protocol::code::request;
use crate::protocol::RemotingCommand;

/// REGISTER_BROKER with one body: the whole table, compressed or not, or one batch of it.
pub(crate) struct RegisterBroker<'a> {
    pub(crate) id: &'a BrokerIdentity,
    pub(crate) body: Bytes,
    pub(crate) crc: u32,
    pub(crate) compressed: bool,
    pub(crate) opts: &'a RegisterOptions,
}

impl Request for RegisterBroker<'_> {
    const CODE: i32 = request::REGISTER_BROKER;
    type Response = RegisterBrokerResult;

    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = self.id.fields();
        f.push(("haServerAddr", self.id.ha_addr.clone()));
        f.push(("compressed", self.compressed.to_string()));
        f.push(("bodyCrc32", self.crc.to_string()));
        f.push((
            "enableActingMaster",
            self.opts.enable_acting_master.to_string(),
        ));
        if let Some(hb) = self.opts.heartbeat_timeout {
            f.push(("heartbeatTimeoutMillis", hb.as_millis().to_string()));
        }
        if let Some(zone) = &self.id.zone {
            f.push(("__ZONE_NAME", zone.clone()));
        }
        f
    }

    fn body(&self) -> Option<Bytes> {
        Some(self.body.clone())
    }

    fn parse(reply: RemotingCommand) -> Result<RegisterBrokerResult, ApiError> {
        let field = |k: &str| reply.field(k).filter(|v| !v.is_empty()).map(str::to_string);
        let kv_table = match reply.body.as_deref() {
            Some(b) if !b.is_empty() => parse_body("KVTable", &reply)?,
            _ => KvTable::default(),
        };
        Ok(RegisterBrokerResult {
            master_addr: field("masterAddr"),
            ha_server_addr: field("haServerAddr"),
            kv_table,
            sent_as: SentAs::Whole,
        })
    }
}

/// UNREGISTER_BROKER for an identity.
pub(crate) struct UnregisterBroker<'a>(pub(crate) &'a BrokerIdentity);

impl Request for UnregisterBroker<'_> {
    const CODE: i32 = request::UNREGISTER_BROKER;
    type Response = ();

    fn fields(&self) -> Vec<(&'static str, String)> {
        self.0.fields()
    }

    fn parse(_reply: RemotingCommand) -> Result<(), ApiError> {
        Ok(())
    }
}

/// QUERY_DATA_VERSION: does the NameServer hold `version` for this identity?
pub(crate) struct QueryDataVersion<'a> {
    pub(crate) id: &'a BrokerIdentity,
    pub(crate) version: DataVersion,
}

/// A NameServer's answer to QUERY_DATA_VERSION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataVersionAnswer {
    /// The NameServer thinks our data changed.
    pub changed: bool,
    /// The version it holds, if it knows the broker.
    pub held: Option<DataVersion>,
}

impl DataVersionAnswer {
    /// True when the NameServer holds `version` and reports no change: nothing to send.
    pub(crate) fn is_current(&self, version: DataVersion) -> bool {
        !self.changed && self.held == Some(version)
    }
}

impl Request for QueryDataVersion<'_> {
    const CODE: i32 = request::QUERY_DATA_VERSION;
    type Response = DataVersionAnswer;

    fn fields(&self) -> Vec<(&'static str, String)> {
        self.id.fields()
    }

    fn body(&self) -> Option<Bytes> {
        serde_json::to_vec(&self.version).ok().map(Bytes::from)
    }

    fn parse(reply: RemotingCommand) -> Result<DataVersionAnswer, ApiError> {
        let changed = reply
            .field("changed")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let held = match reply.body.as_deref() {
            Some(b) if !b.is_empty() => Some(parse_body("DataVersion", &reply)?),
            _ => None,
        };
        Ok(DataVersionAnswer { changed, held })
    }
}

/// WIPE_WRITE_PERM_OF_BROKER: the NameServer clears the write bit of every queue it routes to
/// this broker name (until the broker registers a new data version).
pub(crate) struct WipeWritePerm<'a>(pub(crate) &'a str);

impl Request for WipeWritePerm<'_> {
    const CODE: i32 = request::WIPE_WRITE_PERM_OF_BROKER;
    /// How many topics it wiped, when it says.
    type Response = Option<u64>;

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("brokerName", self.0.to_string())]
    }

    fn parse(reply: RemotingCommand) -> Result<Option<u64>, ApiError> {
        Ok(reply.field("wipeTopicCount").and_then(|n| n.parse().ok()))
    }
}
