//! The configuration turned into each component's settings, in one place: the configuration
//! stays plain data, and no component below the daemon knows it. Beside it travels what a
//! (re)load noted and built ([`InForce`]): the keys the operator pinned and the TLS client.

use std::ops::Deref;
use std::time::Duration;

use crate::broker::BrokerIdentity;
use crate::client::{ClientConfig, ClientTls};
use crate::config::{error_chain, Config, ConfigError, HeaderFormat, Loaded, Pinned};
use crate::address_server::{AddressServer, LookupError};
use crate::protocol::SerializeType;
use crate::tls::{Built, TlsError};

/// The configuration in force and what its (re)load noted and built beside it; a reload
/// replaces all of it at once.
#[derive(Debug, Clone, Default)]
pub struct InForce {
    /// The configuration, plain data.
    pub config: Config,
    /// Which of the values the broker also gives the operator set.
    pub pinned: Pinned,
    /// The TLS client built from `[tls]` with this (re)load: the one read of the certificate
    /// files, so that nothing falls back to plain text when a file turns bad later. Two are
    /// equal when they are the same build (the health task notices a SIGHUP's new one so).
    pub tls_client: Built,
}

impl InForce {
    /// What the daemon runs from a loaded configuration, its TLS client built; a file that
    /// cannot be used is an error naming its key and where that came from.
    pub fn new(loaded: Loaded) -> Result<InForce, ConfigError> {
        let tls = tls(&loaded.config).map_err(|e| loaded.error(e.key(), error_chain(&e)))?;
        Ok(InForce {
            config: loaded.config,
            pinned: loaded.pinned,
            tls_client: tls,
        })
    }

    /// `config` with nothing pinned and its TLS client built, as tests and benchmarks make one.
    #[cfg(any(test, feature = "test-util"))]
    pub fn unpinned(config: Config) -> Result<InForce, TlsError> {
        Ok(InForce {
            tls_client: tls(&config)?,
            config,
            pinned: Pinned::default(),
        })
    }
}

// The tasks read the configuration in force as they read a `Config` (`cfg.register.timeout`):
// what travels beside it is named, the configuration itself is not.
impl Deref for InForce {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.config
    }
}

/// Reads the certificate files of `cfg` and builds its TLS client when anything it connects to
/// uses TLS; none otherwise.
pub fn tls(cfg: &Config) -> Result<Built, TlsError> {
    let https = cfg
        .address_server_url()
        .is_some_and(|u| u.starts_with("https://"));
    if cfg.tls.enable || cfg.broker_tls() || https {
        Built::build(&cfg.tls)
    } else {
        Ok(Built::default())
    }
}

/// The remoting client's TLS: `None` when off. With TLS on it is the client built with the
/// configuration, or an error: never a silent fall-back to plain text.
pub fn client_tls(cfg: &InForce) -> Result<Option<ClientTls>, TlsError> {
    if !cfg.tls.enable && !cfg.broker_tls() {
        return Ok(None);
    }
    let config = cfg.tls_client.require()?;
    // The broker may differ from the rest (plain on localhost while NameServers use TLS).
    let exceptions = if cfg.broker_tls() == cfg.tls.enable {
        Vec::new()
    } else {
        vec![cfg.broker_check_addr().to_string()]
    };
    Ok(Some(ClientTls {
        config,
        server_name: cfg.tls.server_name.clone(),
        default_on: cfg.tls.enable,
        exceptions,
    }))
}

/// The remoting client's settings.
pub fn client(cfg: &InForce) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig {
        tls: client_tls(cfg)?,
        connect_timeout: cfg.remoting.connect_timeout,
        idle_timeout: cfg.remoting.idle_timeout,
        async_permits: cfg.remoting.async_permits,
        oneway_permits: cfg.remoting.oneway_permits,
        max_frame: cfg.remoting.max_frame,
        max_reply_frame: cfg.remoting.max_reply_frame,
        ..ClientConfig::default()
    })
}

/// The address-server lookup at `url` (https uses the `[tls]` trust built with the
/// configuration; without it an https server is refused, not asked with other roots).
pub fn address_server(
    cfg: &InForce,
    url: String,
    timeout: Duration,
) -> Result<AddressServer, LookupError> {
    let tls = if url.starts_with("https://") {
        Some(cfg.tls_client.require().map_err(|source| LookupError::Tls {
            url: url.clone(),
            source: Box::new(source),
        })?)
    } else {
        None
    };
    AddressServer::with_tls(url, timeout, tls)
}

/// This broker as the broker API names it (`broker.identity = "config"`).
pub fn identity(cfg: &Config) -> BrokerIdentity {
    BrokerIdentity {
        cluster: cfg.broker.cluster.clone(),
        name: cfg.broker.name.clone(),
        id: cfg.broker.id,
        addr: cfg.broker.addr.clone(),
        ha_addr: cfg.ha_addr(),
        zone: cfg.broker.zone.clone(),
    }
}

/// The header serialization the broker API writes.
pub fn serialize_type(format: HeaderFormat) -> SerializeType {
    match format {
        HeaderFormat::Json => SerializeType::Json,
        HeaderFormat::Rocketmq => SerializeType::RocketMq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml_str;

    const MIN: &str = r#"
[broker]
name = "broker-a"
addr = "10.0.0.1:10911"
[namesrv]
addrs = ["10.0.0.2:9876"]
"#;

    /// A CA certificate in PEM, made here.
    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn a_tls_file_turned_to_garbage_after_validation_cannot_make_a_plain_client() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem()).unwrap();
        let text = format!("{MIN}\n[tls]\nenable = true\nca_file = {ca:?}\n");
        let cfg = InForce::unpinned(from_toml_str(&text).unwrap()).unwrap();
        let built = cfg.tls_client.get().cloned().expect("built at validation");
        // A rotation caught half-way: the file is garbage when the client is made. This is where
        // the files used to be read a second time (and a failure gave a plain client).
        std::fs::write(&ca, "not a certificate").unwrap();
        let tls = client_tls(&cfg).unwrap().expect("TLS stays on");
        assert!(
            std::sync::Arc::ptr_eq(&tls.config, &built),
            "the files were read again"
        );
        assert!(client(&cfg).unwrap().tls.is_some());
        // The same for a client that connects only to the broker over TLS.
        let mut broker_only = cfg.clone();
        broker_only.config.tls.enable = false;
        broker_only.config.broker.health.tls = Some(true);
        assert!(client_tls(&broker_only).unwrap().is_some());
    }

    // Moved from the loader's tests with the TLS build: refused before anything runs, naming
    // the key and where it came from.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error by value
    fn a_garbage_ca_is_refused_at_load_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ca.pem", "garbage")?;
            let text = format!("{MIN}\n[tls]\nenable = true\nca_file = \"ca.pem\"\n");
            let e = tls(&from_toml_str(&text).unwrap()).unwrap_err();
            assert_eq!(e.key(), "tls.ca_file");
            jail.create_file("c.toml", &text)?;
            let loaded = crate::config::load(Some(std::path::Path::new("c.toml"))).unwrap();
            let e = InForce::new(loaded).unwrap_err();
            assert_eq!(e.key, "tls.ca_file");
            assert!(e.reason.contains("holds no PEM certificate"), "{e}");
            assert!(e.source_name.contains("c.toml"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn tls_on_without_a_validated_build_is_an_error_not_plain_text() {
        let mut cfg = InForce::default();
        cfg.config.tls.enable = true;
        let e = client_tls(&cfg).unwrap_err();
        assert_eq!(e.key(), "tls.enable");
        assert!(client(&cfg).is_err());
        assert!(crate::daemon::build_api(&cfg, None).is_err());
        // With TLS off there is nothing to build and nothing to refuse.
        assert!(client_tls(&InForce::default()).unwrap().is_none());
    }
}
