//! A slave's pulls from its master: topics, consumer offsets, delay offsets, groups.

use std::time::Duration;

use super::body::{
    ConsumerOffsetWrapper, DelayOffsetTable, SubscriptionGroupWrapper, TopicConfigWrapper,
};
use crate::broker::api::{parse_body, BrokerApi, Request};
use crate::broker::error::ApiError;
use crate::protocol::code::request;
use crate::protocol::RemotingCommand;

/// A pulled document: parsed, and the text exactly as the master sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pulled<T> {
    /// The typed document.
    pub doc: T,
    /// The master's own text, which is what a Java slave persists.
    pub raw: String,
}

/// The four pulls, one marker type each; `T` is the document.
pub struct SlavePull<T>(std::marker::PhantomData<T>);

/// What a pull needs to know about its document.
pub trait PullDoc: serde::de::DeserializeOwned {
    /// Request code.
    const CODE: i32;
    /// Name for errors and metrics.
    const WHAT: &'static str;
}

impl PullDoc for TopicConfigWrapper {
    const CODE: i32 = request::GET_ALL_TOPIC_CONFIG;
    const WHAT: &'static str = "topics";
}
impl PullDoc for ConsumerOffsetWrapper {
    const CODE: i32 = request::GET_ALL_CONSUMER_OFFSET;
    const WHAT: &'static str = "consumer_offsets";
}
impl PullDoc for DelayOffsetTable {
    const CODE: i32 = request::GET_ALL_DELAY_OFFSET;
    const WHAT: &'static str = "delay_offsets";
}
impl PullDoc for SubscriptionGroupWrapper {
    const CODE: i32 = request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG;
    const WHAT: &'static str = "subscription_groups";
}

impl<T: PullDoc> Request for SlavePull<T> {
    const CODE: i32 = T::CODE;
    type Response = Pulled<T>;

    fn parse(reply: RemotingCommand) -> Result<Pulled<T>, ApiError> {
        let doc = parse_body(T::WHAT, &reply)?;
        let raw = reply
            .body
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        Ok(Pulled { doc, raw })
    }
}

/// The master's VIP channel: its port minus 2, as the Java slave uses for topic config.
pub fn vip_addr(addr: &str) -> Option<String> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(format!("{host}:{}", port.checked_sub(2)?))
}

/// Where topic config is pulled from: the VIP port when `vip` (and the address has a port).
pub fn topic_config_addr(master: &str, vip: bool) -> String {
    match vip.then(|| vip_addr(master)).flatten() {
        Some(a) => a,
        None => master.to_string(),
    }
}

impl BrokerApi {
    /// Pulls one document from `master`.
    pub async fn pull<T: PullDoc>(
        &self,
        master: &str,
        timeout: Duration,
    ) -> Result<Pulled<T>, ApiError> {
        self.call(master, &SlavePull::<T>(std::marker::PhantomData), timeout)
            .await
    }

    #[cfg(any(test, feature = "test-util"))]
    /// GET_ALL_TOPIC_CONFIG, over the VIP port (main port − 2) when `vip` is set.
    pub async fn get_all_topic_config(
        &self,
        master: &str,
        vip: bool,
        timeout: Duration,
    ) -> Result<Pulled<TopicConfigWrapper>, ApiError> {
        self.pull(&topic_config_addr(master, vip), timeout).await
    }

    #[cfg(any(test, feature = "test-util"))]
    /// GET_ALL_CONSUMER_OFFSET.
    pub async fn get_all_consumer_offset(
        &self,
        master: &str,
        timeout: Duration,
    ) -> Result<Pulled<ConsumerOffsetWrapper>, ApiError> {
        self.pull(master, timeout).await
    }

    #[cfg(any(test, feature = "test-util"))]
    /// GET_ALL_DELAY_OFFSET; the raw text is what Java writes to delayOffset.json.
    pub async fn get_all_delay_offset(
        &self,
        master: &str,
        timeout: Duration,
    ) -> Result<Pulled<DelayOffsetTable>, ApiError> {
        self.pull(master, timeout).await
    }

    #[cfg(any(test, feature = "test-util"))]
    /// GET_ALL_SUBSCRIPTIONGROUP_CONFIG.
    pub async fn get_all_subscription_group_config(
        &self,
        master: &str,
        timeout: Duration,
    ) -> Result<Pulled<SubscriptionGroupWrapper>, ApiError> {
        self.pull(master, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::vip_addr;

    #[test]
    fn vip_port_is_main_port_minus_two() {
        assert_eq!(
            vip_addr("10.0.0.1:10911").as_deref(),
            Some("10.0.0.1:10909")
        );
        assert_eq!(vip_addr("[::1]:10911").as_deref(), Some("[::1]:10909"));
        assert_eq!(vip_addr("h:1"), None);
        assert_eq!(vip_addr("nohost"), None);
    }
}
