//! REGISTER_BROKER, UNREGISTER_BROKER and QUERY_DATA_VERSION, fanned out to every NameServer.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{BufMut, Bytes};
use futures_util::future::join_all;
use tokio::time::Instant;

use super::body::{DataVersion, KvTable, TopicConfigWrapper};
use super::{parse_body, ApiError, BrokerApi, BrokerIdentity, Request};
use crate::client::PeerInfo;
use crate::protocol::code::{request, VERSION_5_0_0};
use crate::protocol::{LanguageCode, RemotingCommand};

/// How a registration is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOptions {
    /// Bound on each NameServer's whole exchange.
    pub timeout: Duration,
    /// Send without waiting for replies.
    pub oneway: bool,
    /// Compress the body where the NameServer's form is known.
    pub compressed: bool,
    /// NameServer-side expiry for this broker (`heartbeatTimeoutMillis`).
    pub heartbeat_timeout: Option<Duration>,
    /// Register fully even where the NameServer already holds our data version.
    pub force: bool,
    /// Value of `enableActingMaster` (5.x brokers always send it).
    pub enable_acting_master: bool,
    /// Largest frame a NameServer takes: a larger registration is split (or compressed).
    pub max_frame: usize,
    /// Topics per request when a registration is split (Java's `splitRegistrationSize`).
    pub split_size: usize,
    /// Split whenever there are more than `split_size` topics (Java's
    /// `enableSplitRegistration`), not only when the body would not fit in a frame.
    pub always_split: bool,
}

impl Default for RegisterOptions {
    fn default() -> Self {
        RegisterOptions {
            timeout: Duration::from_secs(3),
            oneway: false,
            compressed: false,
            heartbeat_timeout: None,
            force: true,
            enable_acting_master: false,
            max_frame: crate::protocol::DEFAULT_MAX_FRAME,
            split_size: DEFAULT_SPLIT_SIZE,
            always_split: false,
        }
    }
}

/// Java's default `splitRegistrationSize`.
pub const DEFAULT_SPLIT_SIZE: usize = 800;

/// Room left for the header when judging whether a body fits in a frame.
const HEADER_ROOM: usize = 16 * 1024;

/// What a NameServer told a registering broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisterBrokerResult {
    /// The master's address, for a slave whose master is registered.
    pub master_addr: Option<String>,
    /// The master's HA address.
    pub ha_server_addr: Option<String>,
    /// Order-topic configuration.
    pub kv_table: KvTable,
    /// How the table went out: `Whole`, compressed because it would not fit, or in batches.
    pub sent_as: SentAs,
}

/// How a registration's topic table went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SentAs {
    /// One request, as configured.
    #[default]
    Whole,
    /// Compressed, although not configured, because the plain body would not fit in a frame
    /// and this NameServer is not known to keep split batches.
    AutoCompressed,
    /// Split into this many consecutive requests on the NameServer's connection.
    Batches(usize),
}

/// How one NameServer's registration ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterStatus {
    /// Fully registered; the NameServer's answer.
    Registered(RegisterBrokerResult),
    /// Skipped: the NameServer already holds this data version (it counts as a heartbeat).
    Current,
    /// Sent oneway; no answer awaited.
    Sent,
}

/// One NameServer's outcome.
#[derive(Debug, Clone)]
pub struct NamesrvOutcome<T> {
    /// The NameServer.
    pub addr: String,
    /// What happened there.
    pub result: Result<T, ApiError>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Outcome of a registration round.
#[derive(Debug, Clone)]
pub struct RegisterOutcome {
    /// Every NameServer's outcome, in list order; nothing is swallowed.
    pub per_namesrv: Vec<NamesrvOutcome<RegisterStatus>>,
    /// The result Java's registerBrokerAll returns: the first answer naming a master, else the first answer.
    pub merged: Option<RegisterBrokerResult>,
}

/// Outcome of an unregistration round, per NameServer.
pub type UnregisterOutcome = Vec<NamesrvOutcome<()>>;

/// The compressed body forms NameServers accept (PROTOCOL.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionForm {
    /// Rust NameServer: raw deflate, 6-token topic lines, mapping section.
    RawDeflate,
    /// Java 5.x: zlib, 6-token lines, mapping section.
    Zlib5x,
    /// Java 4.x: zlib, 5-token lines, no mapping section.
    Zlib4x,
}

impl CompressionForm {
    /// The form a peer takes, judged from its last reply; None: send uncompressed.
    pub fn for_peer(peer: Option<PeerInfo>) -> Option<Self> {
        let p = peer?;
        match p.language {
            LanguageCode::RUST => Some(CompressionForm::RawDeflate),
            LanguageCode::JAVA if p.version >= VERSION_5_0_0 => Some(CompressionForm::Zlib5x),
            LanguageCode::JAVA => Some(CompressionForm::Zlib4x),
            _ => None,
        }
    }
}

fn put_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.put_i32(bytes.len() as i32);
    out.put_slice(bytes);
}

/// The inflated bytes of a compressed body (PROTOCOL.md §4.1).
pub fn compressed_preimage(
    w: &TopicConfigWrapper,
    filter_servers: &[String],
    form: CompressionForm,
) -> Vec<u8> {
    let six_tokens = form != CompressionForm::Zlib4x;
    let mut out = Vec::with_capacity(64 + w.topic_config_table.len() * 48);
    put_chunk(
        &mut out,
        &serde_json::to_vec(&w.data_version).unwrap_or_default(),
    );
    out.put_i32(w.topic_config_table.len() as i32);
    for t in w.topic_config_table.values() {
        let mut line = format!(
            "{} {} {} {} {}",
            t.topic_name,
            t.read_queue_nums,
            t.write_queue_nums,
            t.perm,
            t.topic_filter_type.name()
        );
        if six_tokens {
            line.push(' ');
            line.push_str(&serde_json::to_string(&t.attributes).unwrap_or_else(|_| "{}".into()));
        }
        put_chunk(&mut out, line.as_bytes());
    }
    put_chunk(
        &mut out,
        &serde_json::to_vec(filter_servers).unwrap_or_else(|_| b"[]".to_vec()),
    );
    if six_tokens {
        out.put_i32(w.topic_queue_mapping_info_map.len() as i32);
        for v in w.topic_queue_mapping_info_map.values() {
            put_chunk(&mut out, v.to_string().as_bytes());
        }
    }
    out
}

/// The compressed body in `form`. Java deflates at level 9; any valid stream inflates to the
/// same table, and level 1 is 2.6x faster for 9 % more bytes (100k topics: 20 ms, 272 KB
/// against 53 ms, 250 KB).
pub fn compressed_body(
    w: &TopicConfigWrapper,
    filter_servers: &[String],
    form: CompressionForm,
) -> Vec<u8> {
    let pre = compressed_preimage(w, filter_servers, form);
    let level = flate2::Compression::fast();
    // Writing into a Vec cannot fail.
    match form {
        CompressionForm::RawDeflate => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
            let _ = e.write_all(&pre);
            e.finish().unwrap_or_default()
        }
        CompressionForm::Zlib5x | CompressionForm::Zlib4x => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            let _ = e.write_all(&pre);
            e.finish().unwrap_or_default()
        }
    }
}

/// Topics per batch so that each batch's body stays within three quarters of a frame, judged
/// from the whole body's size.
fn fitting_batch(body_len: usize, topics: usize, max_frame: usize) -> usize {
    let per_topic = body_len.div_ceil(topics.max(1)).max(1);
    (max_frame.saturating_sub(HEADER_ROOM) / 4 * 3 / per_topic).max(1)
}

/// Plain register bodies of at most `size` topics each, every one with the table's versions.
fn split_bodies(w: &TopicConfigWrapper, size: usize) -> Vec<(Bytes, u32)> {
    let names: Vec<&String> = w.topic_config_table.keys().collect();
    names
        .chunks(size)
        .map(|chunk| {
            let part = TopicConfigWrapper {
                data_version: w.data_version,
                mapping_data_version: w.mapping_data_version,
                topic_config_table: chunk
                    .iter()
                    .filter_map(|n| {
                        w.topic_config_table
                            .get(*n)
                            .map(|t| ((*n).clone(), t.clone()))
                    })
                    .collect(),
                ..Default::default()
            };
            let body = BodyRef {
                filter_server_list: [],
                topic_config_serialize_wrapper: &part,
            };
            let b = serde_json::to_vec(&body).unwrap_or_default();
            let crc = body_crc32(&b);
            (Bytes::from(b), crc)
        })
        .collect()
}

/// CRC the NameServer checks: IEEE CRC32 of the body as sent, top bit cleared.
pub fn body_crc32(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

/// A body encoded at most once per round and form, on first use, off the async workers, and
/// shared (`Bytes`) by every NameServer of that form.
#[derive(Clone)]
struct Prepared {
    topics: Arc<TopicConfigWrapper>,
    /// Index 0: plain JSON; then one per [`CompressionForm`].
    forms: Arc<[OnceLock<(Bytes, u32)>; 4]>,
}

/// RegisterBrokerBody, borrowing the table instead of copying it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct BodyRef<'a> {
    filter_server_list: [&'a str; 0],
    topic_config_serialize_wrapper: &'a TopicConfigWrapper,
}

impl Prepared {
    fn new(topics: Arc<TopicConfigWrapper>) -> Self {
        Prepared {
            topics,
            forms: Arc::default(),
        }
    }

    /// The body in `form`: encoding (and compressing) a large table takes long enough to
    /// stall an async worker, so it runs on a blocking thread; a second NameServer of the same
    /// form waits there for the first one's result instead of encoding again.
    async fn body_off_worker(&self, form: Option<CompressionForm>) -> (Bytes, u32) {
        if let Some(done) = self.forms[slot(form)].get() {
            return done.clone();
        }
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.body(form)).await {
            Ok(b) => b,
            // The encoder panicked (a bug): encode here rather than not register at all.
            Err(_) => self.body(form),
        }
    }

    fn body(&self, form: Option<CompressionForm>) -> (Bytes, u32) {
        self.forms[slot(form)]
            .get_or_init(|| {
                let b = match form {
                    None => {
                        let body = BodyRef {
                            filter_server_list: [],
                            topic_config_serialize_wrapper: &self.topics,
                        };
                        serde_json::to_vec(&body).unwrap_or_default()
                    }
                    Some(f) => compressed_body(&self.topics, &[], f),
                };
                let crc = body_crc32(&b);
                (Bytes::from(b), crc)
            })
            .clone()
    }
}

fn slot(form: Option<CompressionForm>) -> usize {
    form.map_or(0, |f| f as usize + 1)
}

struct RegisterBroker<'a> {
    id: &'a BrokerIdentity,
    body: Bytes,
    crc: u32,
    compressed: bool,
    opts: &'a RegisterOptions,
}

impl Request for RegisterBroker<'_> {
    const CODE: i32 = request::REGISTER_BROKER;
    type Response = RegisterBrokerResult;

    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = self.id.fields();
        f.push(("haServerAddr", self.id.ha_addr.clone()));
        f.push(("compressed", self.compressed.to_string()));
        f.push(("bodyCrc32", self.crc.to_string()));
        f.push((
            "enableActingMaster",
            self.opts.enable_acting_master.to_string(),
        ));
        if let Some(hb) = self.opts.heartbeat_timeout {
            f.push(("heartbeatTimeoutMillis", hb.as_millis().to_string()));
        }
        if let Some(zone) = &self.id.zone {
            f.push(("__ZONE_NAME", zone.clone()));
        }
        f
    }

    fn body(&self) -> Option<Bytes> {
        Some(self.body.clone())
    }

    fn parse(reply: RemotingCommand) -> Result<RegisterBrokerResult, ApiError> {
        let field = |k: &str| reply.field(k).filter(|v| !v.is_empty()).map(str::to_string);
        let kv_table = match reply.body.as_deref() {
            Some(b) if !b.is_empty() => parse_body("KVTable", &reply)?,
            _ => KvTable::default(),
        };
        Ok(RegisterBrokerResult {
            master_addr: field("masterAddr"),
            ha_server_addr: field("haServerAddr"),
            kv_table,
            sent_as: SentAs::Whole,
        })
    }
}

struct UnregisterBroker<'a>(&'a BrokerIdentity);

impl Request for UnregisterBroker<'_> {
    const CODE: i32 = request::UNREGISTER_BROKER;
    type Response = ();

    fn fields(&self) -> Vec<(&'static str, String)> {
        self.0.fields()
    }

    fn parse(_reply: RemotingCommand) -> Result<(), ApiError> {
        Ok(())
    }
}

struct QueryDataVersion<'a> {
    id: &'a BrokerIdentity,
    version: DataVersion,
}

/// A NameServer's answer to QUERY_DATA_VERSION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataVersionAnswer {
    /// The NameServer thinks our data changed.
    pub changed: bool,
    /// The version it holds, if it knows the broker.
    pub held: Option<DataVersion>,
}

impl Request for QueryDataVersion<'_> {
    const CODE: i32 = request::QUERY_DATA_VERSION;
    type Response = DataVersionAnswer;

    fn fields(&self) -> Vec<(&'static str, String)> {
        self.id.fields()
    }

    fn body(&self) -> Option<Bytes> {
        serde_json::to_vec(&self.version).ok().map(Bytes::from)
    }

    fn parse(reply: RemotingCommand) -> Result<DataVersionAnswer, ApiError> {
        let changed = reply
            .field("changed")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let held = match reply.body.as_deref() {
            Some(b) if !b.is_empty() => Some(parse_body("DataVersion", &reply)?),
            _ => None,
        };
        Ok(DataVersionAnswer { changed, held })
    }
}

impl BrokerApi {
    /// Registers with every NameServer in the client's list at once.
    pub async fn register_broker_all(
        &self,
        id: &BrokerIdentity,
        topics: &TopicConfigWrapper,
        opts: &RegisterOptions,
    ) -> RegisterOutcome {
        let topics = Arc::new(topics.clone());
        self.register_to(&self.client.name_server_list(), id, &topics, opts)
            .await
    }

    /// Registers with each of `addrs` concurrently, each bounded by `opts.timeout`.
    pub async fn register_to(
        &self,
        addrs: &[String],
        id: &BrokerIdentity,
        topics: &Arc<TopicConfigWrapper>,
        opts: &RegisterOptions,
    ) -> RegisterOutcome {
        let prepared = Prepared::new(topics.clone());
        // A split registration is bounded per batch, so its whole exchange gets one timeout
        // per batch (and one for learning the NameServer's form).
        let batches = topics
            .topic_config_table
            .len()
            .div_ceil(opts.split_size.max(1));
        let bound = opts.timeout * u32::try_from(batches.max(1) + 1).unwrap_or(u32::MAX);
        let per_namesrv = join_all(addrs.iter().map(|addr| {
            let prepared = &prepared;
            bounded(addr, bound, self.register_one(addr, id, prepared, opts))
        }))
        .await;
        let answers = per_namesrv.iter().filter_map(|o| match &o.result {
            Ok(RegisterStatus::Registered(r)) => Some(r),
            _ => None,
        });
        let merged = answers
            .clone()
            .find(|r| r.master_addr.is_some())
            .or_else(|| answers.clone().next())
            .cloned();
        RegisterOutcome {
            per_namesrv,
            merged,
        }
    }

    async fn register_one(
        &self,
        addr: &str,
        id: &BrokerIdentity,
        prepared: &Prepared,
        opts: &RegisterOptions,
    ) -> Result<RegisterStatus, ApiError> {
        let version = prepared.topics.data_version;
        let check = !opts.force && !opts.oneway;
        // Any reply also tells the NameServer's language and version, hence its compressed
        // form: one QUERY_DATA_VERSION serves both purposes.
        let learn_form = opts.compressed && self.client.peer_info(addr).is_none();
        if check || learn_form {
            let answer = self
                .query_data_version(addr, id, version, opts.timeout)
                .await;
            // An error here (unreachable, refused) just means: register fully.
            if let (true, Ok(a)) = (check, &answer) {
                if !a.changed && a.held == Some(version) {
                    return Ok(RegisterStatus::Current);
                }
            }
        }
        let mut form = if opts.compressed {
            CompressionForm::for_peer(self.client.peer_info(addr))
        } else {
            None
        };
        let mut sent_as = SentAs::Whole;
        let topics = prepared.topics.topic_config_table.len();
        if form.is_none() && topics > opts.split_size {
            let (plain, _) = prepared.body_off_worker(None).await;
            if opts.always_split || plain.len() + HEADER_ROOM > opts.max_frame {
                // Never send a frame the NameServer refuses: split where batches are kept,
                // compress where they may not be.
                if self.client.peer_info(addr).is_none() {
                    let _ = self
                        .query_data_version(addr, id, version, opts.timeout)
                        .await;
                }
                match CompressionForm::for_peer(self.client.peer_info(addr)) {
                    Some(CompressionForm::Zlib4x) => {
                        form = Some(CompressionForm::Zlib4x);
                        sent_as = SentAs::AutoCompressed;
                    }
                    // Rust (measured) and Java 5.x (which splits itself) keep earlier batches;
                    // an unknown peer is tried the same way.
                    _ => {
                        // As few batches as fit: the NameServer's cost per request grows with
                        // its whole table (measured: ~0.3 s per request at 150k topics), so 800
                        // topics a request (Java's default) only when asked for.
                        let size = if opts.always_split {
                            opts.split_size
                        } else {
                            fitting_batch(plain.len(), topics, opts.max_frame)
                        };
                        return self.register_batches(addr, id, prepared, size, opts).await;
                    }
                }
            }
        }
        let (body, crc) = prepared.body_off_worker(form).await;
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

    /// The table in batches of `split_size` topics, one after another on the NameServer's
    /// connection (one in flight), each bounded by `timeout` and carrying the table's data
    /// version, so that the data-version check and UNREGISTER work as for one request.
    async fn register_batches(
        &self,
        addr: &str,
        id: &BrokerIdentity,
        prepared: &Prepared,
        size: usize,
        opts: &RegisterOptions,
    ) -> Result<RegisterStatus, ApiError> {
        let topics = prepared.topics.clone();
        let size = size.max(1);
        let bodies = tokio::task::spawn_blocking(move || split_bodies(&topics, size))
            .await
            .map_err(|e| ApiError::Decode {
                what: "register body",
                reason: format!("encoder task failed: {e}"),
            })?;
        let n = bodies.len();
        let mut last = None;
        for (body, crc) in bodies {
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

    /// Unregisters from every NameServer in the client's list, all within one `timeout`.
    pub async fn unregister_broker_all(
        &self,
        id: &BrokerIdentity,
        timeout: Duration,
    ) -> UnregisterOutcome {
        self.unregister_from(&self.client.name_server_list(), id, timeout)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn two_topics() -> TopicConfigWrapper {
        super::super::body::tests::golden_two_topics()
    }

    #[test]
    fn compressed_preimage_matches_golden_v5() {
        let pre = compressed_preimage(&two_topics(), &[], CompressionForm::Zlib5x);
        let mut want = vec![0, 0, 0, 0x38];
        want.extend_from_slice(br#"{"counter":2,"stateVersion":0,"timestamp":1700000000000}"#);
        want.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0x1a]);
        want.extend_from_slice(b"TopicA 4 4 6 SINGLE_TAG {}");
        want.extend_from_slice(&[0, 0, 0, 0x1a]);
        want.extend_from_slice(b"TopicB 4 4 6 SINGLE_TAG {}");
        want.extend_from_slice(&[0, 0, 0, 2, b'[', b']', 0, 0, 0, 0]);
        assert_eq!(pre.len(), 134);
        assert_eq!(pre, want);
    }

    #[test]
    fn forms_inflate_back_to_their_preimage() {
        let w = two_topics();
        let z = compressed_body(&w, &[], CompressionForm::Zlib4x);
        assert_eq!(z[0], 0x78, "zlib header");
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&z[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, compressed_preimage(&w, &[], CompressionForm::Zlib4x));
        assert!(String::from_utf8_lossy(&out).contains("TopicA 4 4 6 SINGLE_TAG\0"));
        let raw = compressed_body(&w, &[], CompressionForm::RawDeflate);
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(
            out,
            compressed_preimage(&w, &[], CompressionForm::RawDeflate)
        );
    }

    #[test]
    fn borrowed_body_serializes_like_the_owned_one() {
        let w = two_topics();
        let owned = super::super::body::RegisterBrokerBody {
            filter_server_list: vec![],
            topic_config_serialize_wrapper: w.clone(),
        };
        let (plain, crc) = Prepared::new(Arc::new(w.clone())).body(None);
        assert_eq!(plain, serde_json::to_vec(&owned).unwrap());
        assert_eq!(crc, 1_862_014_353);
    }

    #[test]
    fn form_follows_the_peer() {
        let p = |language, version| Some(PeerInfo { language, version });
        assert_eq!(CompressionForm::for_peer(None), None);
        assert_eq!(
            CompressionForm::for_peer(p(LanguageCode::RUST, 479)),
            Some(CompressionForm::RawDeflate)
        );
        assert_eq!(
            CompressionForm::for_peer(p(LanguageCode::JAVA, 413)),
            Some(CompressionForm::Zlib5x)
        );
        assert_eq!(
            CompressionForm::for_peer(p(LanguageCode::JAVA, 409)),
            Some(CompressionForm::Zlib4x)
        );
        assert_eq!(CompressionForm::for_peer(p(LanguageCode(9), 479)), None);
    }

    #[test]
    fn split_bodies_cover_every_topic_once_each_within_a_frame() {
        let mut w = TopicConfigWrapper::default();
        for i in 0..10_000 {
            let n = format!("T{i:05}");
            w.topic_config_table
                .insert(n.clone(), super::super::body::TopicConfig::new(n, 8));
        }
        let whole = Prepared::new(Arc::new(w.clone())).body(None).0.len();
        let max_frame = whole / 3;
        let size = fitting_batch(whole, 10_000, max_frame);
        let bodies = split_bodies(&w, size);
        assert!(bodies.len() >= 4, "{} batches of {size}", bodies.len());
        let mut seen = 0;
        for (b, crc) in &bodies {
            assert!(
                b.len() + HEADER_ROOM <= max_frame,
                "{} > {max_frame}",
                b.len()
            );
            assert_eq!(*crc, body_crc32(b));
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            let part = &v["topicConfigSerializeWrapper"];
            assert_eq!(part["dataVersion"]["counter"], w.data_version.counter);
            seen += part["topicConfigTable"].as_object().unwrap().len();
        }
        assert_eq!(seen, 10_000);
        assert_eq!(split_bodies(&w, 800).len(), 13);
    }
}
