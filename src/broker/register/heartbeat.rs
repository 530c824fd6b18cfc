//! The heartbeat: QUERY_DATA_VERSION for one identity and data version, encoded once and sent
//! to every NameServer each beat, so a beat costs the frame's head and nothing more.

use std::time::Duration;

use crate::broker::api::{BrokerApi, PreparedCall};
use crate::broker::body::DataVersion;
use crate::broker::error::ApiError;
use crate::broker::identity::BrokerIdentity;
use crate::broker::register::requests::{DataVersionAnswer, QueryDataVersion};
use crate::client::Waiter;

/// A heartbeat request, built for one identity and data version.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    call: PreparedCall<DataVersionAnswer>,
    id: BrokerIdentity,
    version: DataVersion,
}

impl Heartbeat {
    /// True when this request says `id` holds `version`: no need to build another.
    pub fn is_for(&self, id: &BrokerIdentity, version: DataVersion) -> bool {
        self.version == version && self.id == *id
    }
}

impl BrokerApi {
    /// Encodes the heartbeat for `id` at `version`.
    pub fn prepare_heartbeat(
        &self,
        id: &BrokerIdentity,
        version: DataVersion,
    ) -> Result<Heartbeat, ApiError> {
        Ok(Heartbeat {
            call: self.prepare(&QueryDataVersion { id, version })?,
            id: id.clone(),
            version,
        })
    }

    /// Sends `beat` to `addr` and reads the answer from `waiter` within `timeout`.
    pub async fn heartbeat(
        &self,
        addr: &str,
        beat: &Heartbeat,
        timeout: Duration,
        waiter: &mut Waiter,
    ) -> Result<DataVersionAnswer, ApiError> {
        self.call_prepared(addr, &beat.call, timeout, waiter).await
    }
}
