//! Remoting clients for the tests' own requests (probes, registrations made by hand).

use rmq_registrar::client::{ClientConfig, RemotingClient};

/// A client with default settings and its sweeper running.
pub fn client() -> RemotingClient {
    client_with(ClientConfig::default())
}

/// A started client with `config`.
pub fn client_with(config: ClientConfig) -> RemotingClient {
    let c = RemotingClient::new(config, None);
    c.start();
    c
}
