//! Typed requests over the shared remoting client: the one place a request is built, sent,
//! checked and parsed.

use std::time::Duration;

use bytes::Bytes;

use crate::broker::error::ApiError;
use crate::broker::fastjson;
use crate::client::{ClientError, RemotingClient, Waiter};
use crate::protocol::code::{response, VERSION_5_3_3};
use crate::protocol::{Prepared, RemotingCommand, SerializeType};

/// One request type: its code, custom header, body and how to read the reply.
pub trait Request {
    /// Request code.
    const CODE: i32;
    /// What a successful reply turns into.
    type Response;
    /// Custom-header fields (extFields).
    fn fields(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Body bytes, if any.
    fn body(&self) -> Option<Bytes> {
        None
    }
    /// Reads a SUCCESS reply.
    fn parse(reply: RemotingCommand) -> Result<Self::Response, ApiError>;
}

/// A request encoded once, to be sent again and again (the heartbeat): see
/// [`BrokerApi::call_prepared`].
#[derive(Debug, Clone)]
pub struct PreparedCall<T> {
    code: i32,
    prepared: Prepared,
    parse: fn(RemotingCommand) -> Result<T, ApiError>,
}

/// Sees the outcome of every call (for metrics): request code and an outcome label.
pub trait CallObserver: Send + Sync + 'static {
    /// One finished call of request `code`: done, or the error it ended with.
    fn observe(&self, code: i32, outcome: Result<(), &ApiError>);
}

/// What each NameServer said of deleting by registration (GET_NAMESRV_CONFIG, in
/// `namesrv_config.rs`), by address: when asked, and the answer.
type NamesrvAnswers = std::sync::Arc<
    std::sync::Mutex<std::collections::HashMap<String, (tokio::time::Instant, bool)>>,
>;

/// Typed access to NameServers and a master broker over one shared [`RemotingClient`].
#[derive(Clone)]
pub struct BrokerApi {
    client: RemotingClient,
    version: i32,
    serialize: SerializeType,
    observer: Option<std::sync::Arc<dyn CallObserver>>,
    /// What each NameServer said of deleting by registration (GET_NAMESRV_CONFIG).
    namesrv_answers: NamesrvAnswers,
}

impl BrokerApi {
    /// Wraps `client`; requests carry the 5.x default version and JSON headers.
    pub fn new(client: RemotingClient) -> Self {
        BrokerApi {
            client,
            version: VERSION_5_3_3,
            serialize: SerializeType::Json,
            observer: None,
            namesrv_answers: Default::default(),
        }
    }

    /// Runs `f` on the NameServers' GET_NAMESRV_CONFIG answers (a poisoned lock is taken as
    /// it is: the map holds plain values).
    pub(crate) fn namesrv_answers<T>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<String, (tokio::time::Instant, bool)>) -> T,
    ) -> T {
        let mut m = self
            .namesrv_answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut m)
    }

    /// Sets the request version written in every header.
    pub fn with_version(mut self, version: i32) -> Self {
        self.version = version;
        self
    }

    /// Sets the header serialization.
    pub fn with_serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize = t;
        self
    }

    /// Reports every call's outcome to `observer`.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe<T>(&self, code: i32, r: &Result<T, ApiError>) {
        if let Some(o) = &self.observer {
            o.observe(code, r.as_ref().map(|_| ()));
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &RemotingClient {
        &self.client
    }

    /// Builds the command for `req`.
    fn command<R: Request>(&self, req: &R) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(R::CODE).with_serialize_type(self.serialize);
        cmd.version = self.version;
        for (k, v) in req.fields() {
            cmd.ext_fields.insert(k, v);
        }
        cmd.body = req.body();
        cmd
    }

    /// Sends `req` to `addr`, checks the reply code and parses the reply.
    pub async fn call<R: Request>(
        &self,
        addr: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<R::Response, ApiError> {
        let r = self.call_unobserved(addr, req, timeout).await;
        self.observe(R::CODE, &r);
        r
    }

    async fn call_unobserved<R: Request>(
        &self,
        addr: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<R::Response, ApiError> {
        let reply = self
            .client
            .invoke_sync(Some(addr), self.command(req), timeout)
            .await?;
        answer(reply, R::parse)
    }

    /// Encodes `req` once for [`call_prepared`](Self::call_prepared).
    pub fn prepare<R: Request>(&self, req: &R) -> Result<PreparedCall<R::Response>, ApiError> {
        let prepared = Prepared::new(self.command(req))
            .map_err(|e| ClientError::Encode(std::sync::Arc::new(e)))?;
        Ok(PreparedCall {
            code: R::CODE,
            prepared,
            parse: R::parse,
        })
    }

    /// Sends a prepared request to `addr` with its reply in `waiter`: as [`call`](Self::call),
    /// with no allocation beyond the frame's head when the reply's fields are few and short.
    pub async fn call_prepared<T>(
        &self,
        addr: &str,
        call: &PreparedCall<T>,
        timeout: Duration,
        waiter: &mut Waiter,
    ) -> Result<T, ApiError> {
        let r = match self
            .client
            .invoke_prepared(addr, &call.prepared, timeout, waiter)
            .await
        {
            Ok(reply) => answer(reply, call.parse),
            Err(e) => Err(e.into()),
        };
        self.observe(call.code, &r);
        r
    }

    /// Sends `req` to `addr` oneway.
    pub async fn call_oneway<R: Request>(
        &self,
        addr: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let r = self
            .client
            .invoke_oneway(Some(addr), self.command(req), timeout)
            .await
            .map_err(ApiError::from);
        self.observe(R::CODE, &r);
        r
    }
}

/// A reply read by `parse` when it says SUCCESS, refused with its code and remark otherwise.
fn answer<T>(
    reply: RemotingCommand,
    parse: fn(RemotingCommand) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if reply.code != response::SUCCESS {
        return Err(ApiError::Refused {
            code: reply.code,
            remark: reply.remark,
        });
    }
    parse(reply)
}

/// Parses a JSON (or fastjson) reply body.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    what: &'static str,
    reply: &RemotingCommand,
) -> Result<T, ApiError> {
    let body = reply.body.as_deref().ok_or_else(|| ApiError::Decode {
        what,
        reason: "no body".into(),
    })?;
    fastjson::from_fastjson(body).map_err(|e| ApiError::Decode {
        what,
        reason: e.to_string(),
    })
}
