//! Who this broker is, as every registration-related request names it.

/// Who this broker is, as every request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerIdentity {
    /// Cluster name.
    pub cluster: String,
    /// Broker name (shared by master and slaves).
    pub name: String,
    /// 0 = master, ≥ 1 = slave.
    pub id: u64,
    /// `ip:port` clients use.
    pub addr: String,
    /// `ip:port` of the HA service.
    pub ha_addr: String,
    /// Zone name, sent as `__ZONE_NAME` when set.
    pub zone: Option<String>,
}

impl BrokerIdentity {
    /// The four fields every registration-related request carries.
    pub(crate) fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("brokerAddr", self.addr.clone()),
            ("brokerId", self.id.to_string()),
            ("brokerName", self.name.clone()),
            ("clusterName", self.cluster.clone()),
        ]
    }
}
