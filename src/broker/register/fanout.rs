//! Registering with, asking and leaving every NameServer at once: the I/O the send plan names.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::broker::api::BrokerApi;
use crate::broker::body::DataVersion;
#[cfg(any(test, feature = "test-util"))]
use crate::broker::body::TopicConfigWrapper;
#[cfg(any(test, feature = "test-util"))]
use crate::broker::register::outcome::RegisterOutcome;
#[cfg(any(test, feature = "test-util"))]
use std::sync::Arc;
use crate::broker::error::ApiError;
use crate::broker::identity::BrokerIdentity;
use crate::broker::register::bodies::RoundBodies;
use crate::broker::register::options::RegisterOptions;
use crate::broker::register::outcome::{
    NamesrvOutcome, RegisterStatus, SentAs, UnregisterOutcome,
};
use crate::broker::register::plan::{plan, Asked, CompressionForm, Deletes, Facts, Step};
use crate::broker::register::requests::{
    DataVersionAnswer, QueryDataVersion, RegisterBroker, UnregisterBroker, WipeWritePerm,
};

impl BrokerApi {
    #[cfg(any(test, feature = "test-util"))]
    /// Registers with every NameServer in the client's list at once.
    pub async fn register_broker_all(
        &self,
        id: &BrokerIdentity,
        topics: &TopicConfigWrapper,
        opts: &RegisterOptions,
    ) -> RegisterOutcome {
        let topics = Arc::new(topics.clone());
        self.register_to(&self.client().name_server_list(), id, &topics, opts)
            .await
    }

    #[cfg(any(test, feature = "test-util"))]
    /// Registers with each of `addrs` concurrently, each bounded by `opts.timeout`.
    pub async fn register_to(
        &self,
        addrs: &[String],
        id: &BrokerIdentity,
        topics: &Arc<TopicConfigWrapper>,
        opts: &RegisterOptions,
    ) -> RegisterOutcome {
        let bodies = RoundBodies::new(topics.clone());
        let per_namesrv = join_all(
            addrs
                .iter()
                .map(|addr| self.register_shared(addr, id, &bodies, opts)),
        )
        .await;
        RegisterOutcome::merge(per_namesrv)
    }

    /// Registers with one NameServer, from bodies that other NameServers' registrations of
    /// the same table share (encoded once), bounded as [`BrokerApi::register_to`] bounds each.
    pub async fn register_shared(
        &self,
        addr: &str,
        id: &BrokerIdentity,
        bodies: &RoundBodies,
        opts: &RegisterOptions,
    ) -> NamesrvOutcome<RegisterStatus> {
        // A split registration is bounded per batch, so its whole exchange gets one timeout
        // per batch (and one each for learning the NameServer's form and its configuration).
        let batches = bodies
            .topics()
            .topic_config_table
            .len()
            .div_ceil(opts.split_size.max(1));
        let bound = opts.timeout * u32::try_from(batches.max(1) + 2).unwrap_or(u32::MAX);
        bounded(addr, bound, self.register_one(addr, id, bodies, opts)).await
    }

    /// One NameServer's registration: the send plan asked until it names what to send, with
    /// what each step learnt.
    async fn register_one(
        &self,
        addr: &str,
        id: &BrokerIdentity,
        bodies: &RoundBodies,
        opts: &RegisterOptions,
    ) -> Result<RegisterStatus, ApiError> {
        let version = bodies.topics().data_version;
        let mut facts = Facts {
            peer: None,
            asked: Asked::Not,
            topics: bodies.topics().topic_config_table.len(),
            plain_len: None,
            deletes: Deletes::Unknown,
        };
        // Each step is taken at most once (the plan never asks for a step whose fact is
        // known), so this ends within four turns.
        loop {
            facts.peer = self.client().peer_info(addr);
            match plan(opts, &facts) {
                Step::Query => {
                    let answer = self
                        .query_data_version(addr, id, version, opts.timeout)
                        .await;
                    facts.asked = match answer {
                        Ok(a) => Asked::Answered {
                            current: a.is_current(version),
                        },
                        Err(_) => Asked::NoAnswer,
                    };
                }
                Step::MeasurePlain => facts.plain_len = Some(bodies.plain_len().await?),
                Step::Current => return Ok(RegisterStatus::Current),
                Step::Whole { form, sent_as } => {
                    return self
                        .register_whole(addr, id, bodies, form, sent_as, opts)
                        .await
                }
                Step::Split { size } => {
                    return self.register_batches(addr, id, bodies, size, opts).await
                }
                Step::AskConfig => {
                    let assumed = opts.assume_topic_deletion;
                    facts.deletes =
                        match self.deletes_by_registration(addr, assumed, opts.timeout).await? {
                            true => Deletes::Yes,
                            false => Deletes::No,
                        };
                }
                Step::Unsplittable => {
                    return Err(ApiError::Unsplittable {
                        len: facts.plain_len.unwrap_or(0),
                        max_frame: opts.max_frame,
                    })
                }
            }
        }
    }

    /// The table in one request.
    async fn register_whole(
        &self,
        addr: &str,
        id: &BrokerIdentity,
        bodies: &RoundBodies,
        form: Option<CompressionForm>,
        sent_as: SentAs,
        opts: &RegisterOptions,
    ) -> Result<RegisterStatus, ApiError> {
        let (body, crc) = bodies.whole(form).await;
        let req = RegisterBroker {
            id,
            body,
            crc,
            compressed: form.is_some(),
            opts,
        };
        if opts.oneway {
            self.call_oneway(addr, &req, opts.timeout).await?;
            return Ok(RegisterStatus::Sent);
        }
        let mut r = self.call(addr, &req, opts.timeout).await?;
        r.sent_as = sent_as;
        Ok(RegisterStatus::Registered(r))
    }

    /// The table in batches of `size` topics, one after another on the NameServer's
    /// connection (one in flight), each bounded by `timeout` and carrying the table's data
    /// version, so that the data-version check and UNREGISTER work as for one request. Each
    /// batch is encoded when first needed and dropped once sent (see [`RoundBodies`]).
    async fn register_batches(
        &self,
        addr: &str,
        id: &BrokerIdentity,
        bodies: &RoundBodies,
        size: usize,
        opts: &RegisterOptions,
    ) -> Result<RegisterStatus, ApiError> {
        let mut cursor = bodies.batches(size);
        let n = cursor.count().await?;
        let mut last = None;
        while let Some((body, crc)) = cursor.next().await? {
            let req = RegisterBroker {
                id,
                body,
                crc,
                compressed: false,
                opts,
            };
            if opts.oneway {
                self.call_oneway(addr, &req, opts.timeout).await?;
            } else {
                last = Some(self.call(addr, &req, opts.timeout).await?);
            }
        }
        Ok(match last {
            Some(mut r) => {
                r.sent_as = SentAs::Batches(n);
                RegisterStatus::Registered(r)
            }
            None => RegisterStatus::Sent,
        })
    }

    /// Asks one NameServer to route `broker_name` read-only (WIPE_WRITE_PERM_OF_BROKER);
    /// how many topics it wiped, when it says.
    pub async fn wipe_write_perm(
        &self,
        addr: &str,
        broker_name: &str,
        timeout: Duration,
    ) -> Result<Option<u64>, ApiError> {
        self.call(addr, &WipeWritePerm(broker_name), timeout).await
    }

    /// Asks one NameServer which data version it holds for this broker.
    pub async fn query_data_version(
        &self,
        addr: &str,
        id: &BrokerIdentity,
        version: DataVersion,
        timeout: Duration,
    ) -> Result<DataVersionAnswer, ApiError> {
        self.call(addr, &QueryDataVersion { id, version }, timeout)
            .await
    }

    #[cfg(any(test, feature = "test-util"))]
    /// Unregisters from every NameServer in the client's list, all within one `timeout`.
    pub async fn unregister_broker_all(
        &self,
        id: &BrokerIdentity,
        timeout: Duration,
    ) -> UnregisterOutcome {
        self.unregister_from(&self.client().name_server_list(), id, timeout)
            .await
    }

    /// Unregisters from each of `addrs` concurrently, all within one `timeout`.
    pub async fn unregister_from(
        &self,
        addrs: &[String],
        id: &BrokerIdentity,
        timeout: Duration,
    ) -> UnregisterOutcome {
        let req = UnregisterBroker(id);
        join_all(
            addrs
                .iter()
                .map(|addr| bounded(addr, timeout, self.call(addr, &req, timeout))),
        )
        .await
    }
}

/// `fut`'s outcome at `addr`, bounded by `timeout`, with how long it took.
async fn bounded<T>(
    addr: &str,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, ApiError>>,
) -> NamesrvOutcome<T> {
    let start = Instant::now();
    let result = tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(ApiError::Timeout(timeout)));
    NamesrvOutcome {
        addr: addr.to_string(),
        result,
        elapsed: start.elapsed(),
    }
}
