//! The test harness, one file per concern: ports the tests hold, scripted peers, the real
//! NameServer, broker and load producer, the daemon process, an address server, and waiting.

pub mod alloc;
pub mod broker;
pub mod daemon;
pub mod dns;
pub mod http;
pub mod namesrv;
pub mod ports;
pub mod producer;
pub mod programs;
pub mod relay;
pub mod remoting;
pub mod scripted_peer;
pub mod wait;
