//! The remoting client's settings as a configuration names them: built here, next to the
//! client, so that the configuration knows no client type.

use crate::client::{ClientConfig, ClientTls};
use crate::config::Config;
use crate::tls::TlsError;

impl Config {
    /// The remoting client's TLS: `None` when off. With TLS on it is the configuration built at
    /// validation, or an error: never a silent fall-back to plain text.
    pub fn client_tls(&self) -> Result<Option<ClientTls>, TlsError> {
        if !self.tls.enable && !self.broker_tls() {
            return Ok(None);
        }
        let config = self.tls_client.require()?;
        // The broker may differ from the rest (plain on localhost while NameServers use TLS).
        let exceptions = if self.broker_tls() == self.tls.enable {
            Vec::new()
        } else {
            vec![self.broker_check_addr().to_string()]
        };
        Ok(Some(ClientTls {
            config,
            server_name: self.tls.server_name.clone(),
            default_on: self.tls.enable,
            exceptions,
        }))
    }

    /// The remoting client settings.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        Ok(ClientConfig {
            tls: self.client_tls()?,
            connect_timeout: self.remoting.connect_timeout,
            idle_timeout: self.remoting.idle_timeout,
            async_permits: self.remoting.async_permits,
            oneway_permits: self.remoting.oneway_permits,
            max_frame: self.remoting.max_frame,
            max_reply_frame: self.remoting.max_reply_frame,
            ..ClientConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{from_toml_str, Config};

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
        let cfg = from_toml_str(&text).unwrap();
        let built = cfg.tls_client.get().cloned().expect("built at validation");
        // A rotation caught half-way: the file is garbage when the client is made. This is where
        // the files used to be read a second time (and a failure gave a plain client).
        std::fs::write(&ca, "not a certificate").unwrap();
        let tls = cfg.client_tls().unwrap().expect("TLS stays on");
        assert!(
            std::sync::Arc::ptr_eq(&tls.config, &built),
            "the files were read again"
        );
        assert!(cfg.client_config().unwrap().tls.is_some());
        // The same for a client that connects only to the broker over TLS.
        let mut broker_only = cfg.clone();
        broker_only.tls.enable = false;
        broker_only.broker.health.tls = Some(true);
        assert!(broker_only.client_tls().unwrap().is_some());
    }

    #[test]
    fn tls_on_without_a_validated_build_is_an_error_not_plain_text() {
        let mut cfg = Config::default();
        cfg.tls.enable = true;
        let e = cfg.client_tls().unwrap_err();
        assert_eq!(e.key(), "tls.enable");
        assert!(cfg.client_config().is_err());
        assert!(crate::daemon::build_api(&cfg, None).is_err());
        // With TLS off there is nothing to build and nothing to refuse.
        assert!(Config::default().client_tls().unwrap().is_none());
    }
}
