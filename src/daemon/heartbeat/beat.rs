//! One NameServer's heartbeat: QUERY_DATA_VERSION for what is advertised, kept encoded with its
//! reply slot from beat to beat, so a beat allocates nothing but its frame's head.

use std::time::Duration;

use crate::broker::{ApiError, BrokerApi, DataVersionAnswer, Heartbeat};
use crate::client::Waiter;
use crate::daemon::published::Advert;

/// How much later than its own deadline a heartbeat is given up from outside.
pub(crate) const OUTER_SLACK: Duration = Duration::from_millis(250);

/// What a NameServer's task keeps from beat to beat.
pub(crate) struct Beat {
    /// Where its answers land.
    waiter: Waiter,
    /// The request, encoded for the identity and data version it was last sent with.
    request: Option<Heartbeat>,
    /// The last encoding failed (told once, not every beat).
    unencodable: bool,
}

impl Beat {
    /// A beat with nothing encoded yet.
    pub(crate) fn new() -> Self {
        Beat {
            waiter: Waiter::new(),
            request: None,
            unencodable: false,
        }
    }

    /// Encodes the request for `advert` unless the one kept is for it already; false when it
    /// cannot be encoded.
    pub(crate) fn prepare(&mut self, api: &BrokerApi, advert: &Advert) -> bool {
        let version = advert.table.data_version;
        if self
            .request
            .as_ref()
            .is_some_and(|r| r.is_for(&advert.id, version))
        {
            return true;
        }
        match api.prepare_heartbeat(&advert.id, version) {
            Ok(r) => {
                self.unencodable = false;
                self.request = Some(r);
                true
            }
            Err(e) => {
                if !std::mem::replace(&mut self.unencodable, true) {
                    tracing::warn!(error = %e, "cannot encode the heartbeat");
                }
                false
            }
        }
    }

    /// Sends the prepared request to `addr` and waits for its answer, within `period` (the
    /// next one is due then) at every step inside and a little more from outside (a guard
    /// against a step that forgot its deadline). The beat is handed back for the next one (boxed:
    /// it travels in the task's event, and is large).
    pub(crate) async fn send(
        mut self: Box<Self>,
        api: &BrokerApi,
        addr: &str,
        period: Duration,
    ) -> (Box<Beat>, Result<DataVersionAnswer, ApiError>) {
        let Some(req) = self.request.as_ref() else {
            return (self, Err(ApiError::Timeout(period)));
        };
        let result = tokio::time::timeout(
            period + OUTER_SLACK,
            api.heartbeat(addr, req, period, &mut self.waiter),
        )
        .await
        .unwrap_or(Err(ApiError::Timeout(period)));
        (self, result)
    }
}
