//! TLS for remoting connections and the address server: rustls with the ring provider, no
//! OpenSSL. Trust comes from `tls.ca_file` or the system's roots; `tls.cert_file` and
//! `tls.key_file` give a client certificate for mutual TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::TlsConfig;

/// A TLS setting that cannot be used: the config key and why.
pub type TlsConfigError = (&'static str, String);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(
    path: &Path,
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let bytes =
        std::fs::read(path).map_err(|e| (key, format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (key, format!("{} is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err((key, format!("{} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let key = "tls.key_file";
    let bytes =
        std::fs::read(path).map_err(|e| (key, format!("cannot read {}: {e}", path.display())))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        (
            key,
            format!(
                "{} holds no PEM private key (PKCS#8, RSA or EC): {e}",
                path.display()
            ),
        )
    })
}

/// The rustls client configuration `cfg` describes (whether or not `tls.enable` is set: the
/// address server uses it for https too).
pub fn client_config(cfg: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| ("tls.enable", e.to_string()))?;
    let builder = if cfg.verify {
        let mut roots = RootCertStore::empty();
        match &cfg.ca_file {
            Some(path) => {
                for c in read_certs(path, "tls.ca_file")? {
                    roots
                        .add(c)
                        .map_err(|e| ("tls.ca_file", format!("{}: {e}", path.display())))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err((
                        "tls.ca_file",
                        "unset, and this system has no trusted roots: set tls.ca_file".into(),
                    ));
                }
            }
        }
        builder.with_root_certificates(roots)
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
                .map_err(|e| ("tls.key_file", format!("{}: {e}", k.display())))?;
            rustls::sign::CertifiedKey::new(certs.clone(), signing)
                .keys_match()
                .map_err(|e| {
                    (
                        "tls.key_file",
                        format!("{} does not match {}: {e}", k.display(), c.display()),
                    )
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ("tls.cert_file", e.to_string()))?
        }
        (Some(_), None) => {
            return Err((
                "tls.key_file",
                "tls.cert_file and tls.key_file go together".into(),
            ))
        }
        (None, Some(_)) => {
            return Err((
                "tls.cert_file",
                "tls.cert_file and tls.key_file go together".into(),
            ))
        }
    };
    Ok(Arc::new(config))
}

/// The name a peer's certificate is checked against: `tls.server_name`, or the address's host
/// (an IP is checked against the certificate's IP SANs).
pub fn server_name(addr: &str, configured: Option<&str>) -> Result<ServerName<'static>, String> {
    let host = match configured {
        Some(n) => n.to_string(),
        None => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        }
    };
    ServerName::try_from(host.clone())
        .map_err(|e| format!("{host:?} is not a valid TLS server name: {e}"))
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
