//! GET_NAMESRV_CONFIG: what a NameServer does with the broker's topics missing from a
//! registration. A 5.1.4+ NameServer with `deleteTopicWithBrokerRegistration=true` deletes
//! them at each registration, so each batch of a split registration would delete the others':
//! the register plan asks this before it splits toward a NameServer.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::broker::api::{BrokerApi, Request};
use crate::broker::error::ApiError;
use crate::broker::own_config::parse_properties;
use crate::protocol::RemotingCommand;

/// GET_NAMESRV_CONFIG.
const GET_NAMESRV_CONFIG: i32 = 319;

/// How long an answer is kept: it can change at run time (UPDATE_NAMESRV_CONFIG), so at most
/// the shortest `register.interval`.
pub(crate) const CONFIG_TTL: Duration = Duration::from_secs(10);

struct NamesrvConfig;

impl Request for NamesrvConfig {
    const CODE: i32 = GET_NAMESRV_CONFIG;
    type Response = bool;

    fn parse(reply: RemotingCommand) -> Result<bool, ApiError> {
        let props = parse_properties(reply.body.as_deref().unwrap_or_default());
        Ok(deletes(&props))
    }
}

/// `deleteTopicWithBrokerRegistration` set true (absent: an older NameServer, which keeps them).
fn deletes(props: &HashMap<String, String>) -> bool {
    props
        .get("deleteTopicWithBrokerRegistration")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl BrokerApi {
    /// Whether NameServer `addr` deletes, at each registration, the broker's topics not in
    /// it; asked at most once per [`CONFIG_TTL`]. One that answers with an error code (it does
    /// not serve GET_NAMESRV_CONFIG) is taken as `assumed` (`register.assume_topic_deletion`);
    /// one that cannot be asked is the registration's error, and nothing is kept.
    pub async fn deletes_by_registration(
        &self,
        addr: &str,
        assumed: bool,
        timeout: Duration,
    ) -> Result<bool, ApiError> {
        let now = Instant::now();
        if let Some(d) = self.namesrv_answers(|m| {
            m.get(addr)
                .filter(|(at, _)| now.duration_since(*at) < CONFIG_TTL)
                .map(|(_, d)| *d)
        }) {
            return Ok(d);
        }
        let d = match self.call(addr, &NamesrvConfig, timeout).await {
            Ok(d) => d,
            Err(e @ ApiError::Refused { .. }) => {
                tracing::debug!(namesrv = %addr, error = %e, assumed, "GET_NAMESRV_CONFIG not served: register.assume_topic_deletion decides");
                assumed
            }
            Err(e) => return Err(e),
        };
        if d {
            tracing::info!(namesrv = %addr, "this NameServer deletes the broker's topics missing from a registration (deleteTopicWithBrokerRegistration): registrations toward it are never split");
        }
        self.namesrv_answers(|m| m.insert(addr.to_string(), (now, d)));
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_true_key_deletes() {
        let p = |s: &str| parse_properties(s.as_bytes());
        assert!(deletes(&p("a=1\ndeleteTopicWithBrokerRegistration=true\n")));
        assert!(deletes(&p("deleteTopicWithBrokerRegistration = TRUE")));
        assert!(!deletes(&p("deleteTopicWithBrokerRegistration=false\n")));
        assert!(!deletes(&p("orderMessageEnable=false\n")));
        assert!(!deletes(&p("")));
    }
}
