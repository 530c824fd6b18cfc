//! TLS for remoting connections and the address server: rustls with the ring provider, no
//! OpenSSL. Trust comes from `tls.ca_file` or the system's roots; `tls.cert_file` and
//! `tls.key_file` give a client certificate for mutual TLS. The certificate files are read once
//! per (re)load, into a [`Built`] that travels beside the configuration: nothing reads them a
//! second time, so nothing can fall back to plain text when a file turns bad later.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// TLS on every remoting connection (NameServers, master, the broker unless
    /// `broker.health.tls = false`).
    pub enable: bool,
    /// PEM bundle of trusted roots; unset: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, RSA or EC).
    pub key_file: Option<PathBuf>,
    /// Name to verify instead of the address's host.
    pub server_name: Option<String>,
    /// false: any certificate is accepted (test NameServers only); logged as a WARN.
    pub verify: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            enable: false,
            ca_file: None,
            cert_file: None,
            key_file: None,
            server_name: None,
            verify: true,
        }
    }
}

/// A TLS setting that cannot be used; [`TlsError::key`] names the config key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// Config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not PEM, or holds nothing of the kind the key asks for.
    #[error("{} {what}", path.display())]
    Pem {
        /// Config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: &'static str,
        /// The parser's error, when there is one.
        #[source]
        source: Option<rustls::pki_types::pem::Error>,
    },
    /// rustls refused a certificate, key or pairing.
    #[error("{what}")]
    Rustls {
        /// Config key the problem belongs to.
        key: &'static str,
        /// What was being done.
        what: String,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// A setting that cannot work as given (no roots, half a key pair).
    #[error("{what}")]
    Setting {
        /// Config key.
        key: &'static str,
        /// Why.
        what: &'static str,
    },
    /// TLS is on but no TLS client was built with the configuration. Refused rather than
    /// connecting in plain text.
    #[error("TLS is on but no TLS client was built with this configuration (not validated)")]
    NotBuilt,
}

impl TlsError {
    /// The config key the problem belongs to.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. }
            | TlsError::Pem { key, .. }
            | TlsError::Rustls { key, .. }
            | TlsError::Setting { key, .. } => key,
            TlsError::NotBuilt => "tls.enable",
        }
    }
}

/// The rustls client configuration built from the files of one (re)load, or none when no TLS
/// is used. Two are equal when they are the same build, not when their files are.
#[derive(Debug, Clone, Default)]
pub struct Built(Option<Arc<rustls::ClientConfig>>);

impl Built {
    /// Reads the files of `cfg` once and builds the client configuration.
    pub fn build(cfg: &TlsConfig) -> Result<Built, TlsError> {
        client_config(cfg).map(|c| Built(Some(c)))
    }

    /// The built configuration, when one was built.
    #[cfg(any(test, feature = "test-util"))]
    pub fn get(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.0.as_ref()
    }

    /// The built configuration, or [`TlsError::NotBuilt`]: never a silent plain connection.
    pub fn require(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        self.0.clone().ok_or(TlsError::NotBuilt)
    }
}

impl PartialEq for Built {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(path: &Path, key: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path, key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path, key)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            key,
            path: path.to_path_buf(),
            what: "is not PEM",
            source: Some(e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            key,
            path: path.to_path_buf(),
            what: "holds no PEM certificate",
            source: None,
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let key = "tls.key_file";
    let bytes = read_file(path, key)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        key,
        path: path.to_path_buf(),
        what: "holds no PEM private key (PKCS#8, RSA or EC)",
        source: Some(e),
    })
}

fn rustls_error(key: &'static str, what: String) -> impl FnOnce(rustls::Error) -> TlsError {
    move |source| TlsError::Rustls { key, what, source }
}

fn roots(cfg: &TlsConfig) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            for c in read_certs(path, "tls.ca_file")? {
                roots.add(c).map_err(rustls_error(
                    "tls.ca_file",
                    format!("{}: unusable certificate", path.display()),
                ))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsError::Setting {
                    key: "tls.ca_file",
                    what: "unset, and this system has no trusted roots: set tls.ca_file",
                });
            }
        }
    }
    Ok(roots)
}

/// Reads the files of `cfg` and builds the rustls client configuration (whether or not
/// `tls.enable` is set: the address server uses it for https too). Private: the one caller is
/// [`Built::build`], so the files are read once per (re)load.
fn client_config(cfg: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(rustls_error("tls.enable", "no usable TLS version".into()))?;
    let builder = if cfg.verify {
        builder.with_root_certificates(roots(cfg)?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider.clone())))
    };
    let config = match (&cfg.cert_file, &cfg.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(c), Some(k)) => {
            let certs = read_certs(c, "tls.cert_file")?;
            let key = read_key(k)?;
            let signing = provider
                .key_provider
                .load_private_key(key.clone_key())
                .map_err(rustls_error("tls.key_file", format!("{}", k.display())))?;
            rustls::sign::CertifiedKey::new(certs.clone(), signing)
                .keys_match()
                .map_err(rustls_error(
                    "tls.key_file",
                    format!("{} does not match {}", k.display(), c.display()),
                ))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(rustls_error("tls.cert_file", c.display().to_string()))?
        }
        (Some(_), None) => {
            return Err(TlsError::Setting {
                key: "tls.key_file",
                what: "tls.cert_file and tls.key_file go together",
            })
        }
        (None, Some(_)) => {
            return Err(TlsError::Setting {
                key: "tls.cert_file",
                what: "tls.cert_file and tls.key_file go together",
            })
        }
    };
    Ok(Arc::new(config))
}

/// The name a peer's certificate is checked against: `tls.server_name`, or the address's host
/// (an IP is checked against the certificate's IP SANs).
pub fn server_name(
    addr: &str,
    configured: Option<&str>,
) -> Result<ServerName<'static>, BadServerName> {
    let name = match configured {
        Some(n) => n,
        None => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            host.trim_start_matches('[').trim_end_matches(']')
        }
    };
    ServerName::try_from(name.to_string()).map_err(|source| BadServerName {
        name: name.to_string(),
        source,
    })
}

/// A name a certificate cannot be checked against (`tls.server_name`, else the address's host).
#[derive(Debug, thiserror::Error)]
#[error("{name:?} is not a valid TLS server name: {source}")]
pub struct BadServerName {
    /// The name.
    pub name: String,
    /// rustls's reason.
    #[source]
    pub source: rustls::pki_types::InvalidDnsNameError,
}

/// What a failed handshake means, in words an operator can act on.
pub fn explain(e: &std::io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => {
            let why = match c {
                rustls::CertificateError::UnknownIssuer => "unknown issuer (not signed by a trusted CA: tls.ca_file)".to_string(),
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "name mismatch (the certificate does not name this address: tls.server_name)".to_string()
                }
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                    "expired".to_string()
                }
                other => format!("{other:?}"),
            };
            format!("the server's certificate was refused: {why}")
        }
        Some(rustls::Error::AlertReceived(a)) => format!("the server refused the handshake: {a:?} (a client certificate may be required: tls.cert_file, tls.key_file)"),
        Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::InappropriateMessage { .. }) => {
            "TLS handshake failed: the peer does not speak TLS".to_string()
        }
        Some(other) => format!("TLS handshake failed: {other}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof
            || e.kind() == std::io::ErrorKind::ConnectionReset =>
        {
            "TLS handshake failed: the peer does not speak TLS (it closed the connection)".to_string()
        }
        None => format!("TLS handshake failed: {e}"),
    }
}

/// `tls.verify = false`: any certificate is accepted (test NameServers with self-signed
/// certificates), but the handshake's signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
