//! ACL 1.0 request signing (PROTOCOL.md §6): what a master with ACL on checks on slave pulls.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::client::RpcHook;
use crate::protocol::RemotingCommand;

/// Signs every outgoing request with an access key and an HMAC-SHA1 signature.
pub struct AclHook {
    access_key: String,
    secret_key: String,
    security_token: Option<String>,
}

impl std::fmt::Debug for AclHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log line.
        f.debug_struct("AclHook")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Field Java leaves out of the signature for requests of version ≤ 399 (V4_9_3).
const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";

impl AclHook {
    /// A hook with these credentials.
    pub fn new(
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
        security_token: Option<String>,
    ) -> Self {
        AclHook {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token,
        }
    }

    /// The signature of `request` as it stands (its `Signature` field ignored).
    pub fn signature(&self, request: &RemotingCommand) -> String {
        let mut data = Vec::with_capacity(256);
        // Fields are in byte order, which is Java's TreeMap order for these keys.
        for (k, v) in request.ext_fields.iter() {
            if k == "Signature" || (request.version <= 399 && k == UNIQUE_KEY_QUERY) {
                continue;
            }
            data.extend_from_slice(v.as_bytes());
        }
        if let Some(body) = request.body.as_deref() {
            data.extend_from_slice(body);
        }
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha1>::new_from_slice(self.secret_key.as_bytes()) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(&data);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}

impl RpcHook for AclHook {
    fn before_request(&self, _remote: &str, request: &mut RemotingCommand) {
        // Replies to server requests are not signed; only what we send as requests.
        if request.is_response() {
            return;
        }
        request
            .ext_fields
            .insert("AccessKey", self.access_key.as_str());
        if let Some(token) = &self.security_token {
            request
                .ext_fields
                .insert("SecurityToken", token.as_str());
        }
        let signature = self.signature(request);
        request.ext_fields.insert("Signature", signature);
    }

    fn after_response(
        &self,
        _remote: &str,
        _request: &RemotingCommand,
        _response: Option<&RemotingCommand>,
    ) {
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2() -> RemotingCommand {
        crate::protocol::frame::tests::v2_command()
    }

    #[test]
    fn golden_v4_signatures() {
        let hook = AclHook::new("rocketmq2", "12345678", None);
        let mut cmd = v2();
        hook.before_request("x", &mut cmd);
        assert_eq!(cmd.field("AccessKey"), Some("rocketmq2"));
        assert_eq!(cmd.field("Signature"), Some("HOhxEM8GU/jTMoLxIVZtShlJSlU="));
        // Signing again (e.g. a retried request) gives the same value: Signature is left out.
        assert_eq!(hook.signature(&cmd), "HOhxEM8GU/jTMoLxIVZtShlJSlU=");

        let mut v1 = crate::protocol::frame::tests::v1_command();
        hook.before_request("x", &mut v1);
        assert_eq!(v1.field("Signature"), Some("Xtz5z3MHbNTDbA9++uEOUtSNnVA="));
    }

    #[test]
    fn token_is_signed_and_old_versions_skip_the_unique_key_field() {
        let hook = AclHook::new("ak", "sk", Some("tok".into()));
        let mut a = v2();
        hook.before_request("x", &mut a);
        assert_eq!(a.field("SecurityToken"), Some("tok"));
        let mut old = v2().with_field(UNIQUE_KEY_QUERY, "u");
        old.version = 399;
        let mut plain = v2();
        plain.version = 399;
        assert_eq!(hook.signature(&old), hook.signature(&plain));
        old.version = 400;
        assert_ne!(hook.signature(&old), hook.signature(&plain));
        assert!(!format!("{hook:?}").contains("sk\""));
    }
}
