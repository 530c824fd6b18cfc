//! The remoting client and broker API as the daemon and the one-shot commands build them.

use std::sync::Arc;

use super::identity::Current;
use super::settings::{self, InForce};
use crate::broker::{ApiError, BrokerApi, BrokerIdentity, CallObserver};
use crate::client::{ChannelEventListener, RemotingClient};
use crate::config::IdentitySource;
use crate::metrics::RequestMetrics;

/// Counts every request by code and outcome.
impl CallObserver for RequestMetrics {
    fn observe(&self, code: i32, outcome: Result<(), &ApiError>) {
        let label = outcome.map_or_else(ApiError::kind, |()| "ok");
        let timed_out = outcome.is_err_and(ApiError::is_timeout);
        self.request(code, label, timed_out);
    }
}

/// The broker's identity as a one-shot command sees it now, and the NameServers the broker
/// names: the configuration's, or (identity from the broker) the broker's own answer under the
/// values the operator set. `Ok(None)`: the broker has no id yet.
pub async fn identity_now(
    cfg: &InForce,
    api: &BrokerApi,
) -> Result<Option<(BrokerIdentity, Vec<String>)>, ApiError> {
    if cfg.broker.identity == IdentitySource::Config {
        return Ok(Some((settings::identity(cfg), Vec::new())));
    }
    let report = api
        .broker_report(cfg.broker_check_addr(), cfg.register.timeout)
        .await?;
    let namesrvs = report.namesrv_addrs.clone();
    Ok(Current::from_report(cfg, &cfg.pinned, &report, None).map(|c| (c.id, namesrvs)))
}

/// Builds the client and API the way the daemon and the one-shot commands use them.
/// With TLS on, an error (never a plain client) when the configuration has no TLS client.
pub fn build_api(
    cfg: &InForce,
    listener: Option<Arc<dyn ChannelEventListener>>,
) -> Result<BrokerApi, crate::tls::TlsError> {
    let client = RemotingClient::new(settings::client(cfg)?, listener);
    if let (Some(ak), Some(sk)) = (&cfg.acl.access_key, &cfg.acl.secret_key) {
        let hook = crate::broker::acl::AclHook::new(
            ak.clone(),
            sk.clone(),
            cfg.acl.security_token.clone(),
        );
        client.register_rpc_hook(Arc::new(hook));
    }
    Ok(BrokerApi::new(client)
        .with_version(cfg.broker.version)
        .with_serialize_type(settings::serialize_type(cfg.remoting.serialize)))
}
