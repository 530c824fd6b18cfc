//! The integration tests, in one binary (one link instead of one per file): the client, the
//! broker API and the daemon against scripted peers and the real NameServer, broker, load
//! producer and Prometheus. The harness is in `support/`, one file per concern.

mod support;

mod address_lookup;
mod broker_api;
mod broker_auth;
mod cli;
mod client;
mod daemon;
mod daemon_faults;
mod dns_sources;
mod drain;
mod drain_broker;
mod drain_guard;
mod drain_rolling;
mod fault_drain;
mod faults;
mod fuzz_corpus;
mod heartbeat;
mod heartbeat_cost;
mod identity;
mod idle_memory;
mod layering;
mod liveness;
mod namesrv_interop;
mod ownership;
mod postinst;
mod producer;
mod prometheus;
mod readme;
mod real_broker;
mod route_audit;
mod slave_pull;
mod tls;
mod two_instances;
