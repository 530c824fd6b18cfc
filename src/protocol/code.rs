//! Request and response codes used by rmq-registrar (see PROTOCOL.md §3–§5).

/// Request codes sent or handled by this crate.
pub mod request {
    /// GET_ALL_TOPIC_CONFIG: a slave pulls the master's topic table.
    pub const GET_ALL_TOPIC_CONFIG: i32 = 21;
    /// GET_BROKER_CONFIG: the broker's own properties (identity from the broker).
    pub const GET_BROKER_CONFIG: i32 = 26;
    /// GET_BROKER_RUNTIME_INFO: the broker's own stats; the health check.
    pub const GET_BROKER_RUNTIME_INFO: i32 = 28;
    /// GET_ALL_CONSUMER_OFFSET: a slave pulls the master's consumer offsets.
    pub const GET_ALL_CONSUMER_OFFSET: i32 = 43;
    /// GET_ALL_DELAY_OFFSET: a slave pulls the master's delay offsets.
    pub const GET_ALL_DELAY_OFFSET: i32 = 45;
    /// REGISTER_BROKER: tell a NameServer who this broker is.
    pub const REGISTER_BROKER: i32 = 103;
    /// UNREGISTER_BROKER: remove this broker from a NameServer.
    pub const UNREGISTER_BROKER: i32 = 104;
    /// GET_ROUTEINFO_BY_TOPIC: route of one topic.
    pub const GET_ROUTEINFO_BY_TOPIC: i32 = 105;
    /// GET_BROKER_CLUSTER_INFO: every broker a NameServer knows.
    pub const GET_BROKER_CLUSTER_INFO: i32 = 106;
    /// GET_ALL_SUBSCRIPTIONGROUP_CONFIG: a slave pulls the master's groups.
    pub const GET_ALL_SUBSCRIPTIONGROUP_CONFIG: i32 = 201;
    /// WIPE_WRITE_PERM_OF_BROKER: the NameServer routes a broker's topics read-only (a drain).
    pub const WIPE_WRITE_PERM_OF_BROKER: i32 = 205;
    /// QUERY_DATA_VERSION: ask a NameServer which topic data version it holds.
    pub const QUERY_DATA_VERSION: i32 = 322;
    /// CONTROLLER_GET_REPLICA_INFO: a controller leader's ids for one broker name's addresses.
    pub const CONTROLLER_GET_REPLICA_INFO: i32 = 1004;
    /// CONTROLLER_GET_SYNC_STATE_DATA: a 5.1.1+ controller's ids for a broker name's addresses.
    pub const CONTROLLER_GET_SYNC_STATE_DATA: i32 = 1006;
    /// CONTROLLER_GET_METADATA_INFO: whether a controller leads, and who does.
    pub const CONTROLLER_GET_METADATA_INFO: i32 = 1005;
}

/// Response codes (RemotingSysResponseCode plus the few ResponseCode values we meet).
pub mod response {
    /// The request succeeded.
    pub const SUCCESS: i32 = 0;
    #[cfg(any(test, feature = "test-util"))]
    /// The server failed the request.
    pub const SYSTEM_ERROR: i32 = 1;
    /// The server's processor pool is saturated.
    pub const SYSTEM_BUSY: i32 = 2;
    /// No processor for this request code.
    pub const REQUEST_CODE_NOT_SUPPORTED: i32 = 3;
    /// The peer refused the request's credentials (or their absence): ACL 1.0 or 2.0.
    pub const NO_PERMISSION: i32 = 16;
    /// The server is draining and asks clients to go elsewhere.
    pub const GO_AWAY: i32 = 1500;
    /// A controller that is not the leader refuses what only the leader answers.
    pub const CONTROLLER_NOT_LEADER: i32 = 2007;
    /// The controller leader knows nothing of that broker name (none registered yet).
    pub const CONTROLLER_BROKER_METADATA_NOT_EXIST: i32 = 2008;
}

/// `MQVersion` ordinal of RocketMQ 5.3.3, the default request version.
pub const VERSION_5_3_3: i32 = 479;
/// `MQVersion` ordinal of RocketMQ 5.0.0: the compressed body carries queue mappings from here on.
pub const VERSION_5_0_0: i32 = 413;
/// `MQVersion.Version.V5_1_0`: NameServers from here on remove a broker by address on
/// UNREGISTER_BROKER; earlier Java ones by its id.
pub const VERSION_5_1_0: i32 = 433;
