//! Request and reply bodies, in the 5.x shape a Java broker writes (PROTOCOL.md §4).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version stamp of a broker's topic (or offset, group) table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    /// Bumped on every change.
    pub counter: i64,
    /// 5.x: the broker's state epoch.
    pub state_version: i64,
    /// Milliseconds since the epoch of the last change.
    pub timestamp: i64,
}

impl DataVersion {
    /// A version stamped now with counter 1.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        DataVersion {
            counter: 1,
            state_version: 0,
            timestamp: ms,
        }
    }

    /// The next version, as Java's `nextVersion()`.
    pub fn next(self) -> Self {
        let now = DataVersion::now();
        DataVersion {
            counter: self.counter + 1,
            state_version: self.state_version,
            timestamp: now.timestamp.max(self.timestamp),
        }
    }
}

/// How a topic's messages are filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TopicFilterType {
    /// One tag per message.
    #[default]
    #[serde(rename = "SINGLE_TAG")]
    SingleTag,
    /// Several tags per message.
    #[serde(rename = "MULTI_TAG")]
    MultiTag,
}

impl TopicFilterType {
    /// The Java enum name.
    pub fn name(self) -> &'static str {
        match self {
            TopicFilterType::SingleTag => "SINGLE_TAG",
            TopicFilterType::MultiTag => "MULTI_TAG",
        }
    }
}

/// Permission bits of a topic.
pub mod perm {
    /// Readable.
    pub const READ: u32 = 4;
    /// Writable.
    pub const WRITE: u32 = 2;
    #[cfg(any(test, feature = "test-util"))]
    /// Inherited by new topics.
    pub const INHERIT: u32 = 1;
}

/// A topic's 5.x string attributes. Nearly every topic has none and a table holds up to
/// 100k topics: an absent map costs 8 bytes where an empty `BTreeMap` costs 24 (1.5 MiB at
/// 100k topics). Written as a JSON object, `{}` when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(clippy::box_collection)] // the box is the point: 8 bytes in the table, not 24
pub struct Attributes(Option<Box<BTreeMap<String, String>>>);

impl Attributes {
    #[cfg(any(test, feature = "test-util"))]
    /// The value of attribute `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0.as_ref().and_then(|m| m.get(key))
    }

    #[cfg(any(test, feature = "test-util"))]
    /// Sets attribute `key`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0
            .get_or_insert_with(Box::default)
            .insert(key.into(), value.into());
    }

    #[cfg(any(test, feature = "test-util"))]
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }

    /// The attributes in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().flat_map(|m| m.iter())
    }
}

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        Ok(Attributes((!m.is_empty()).then(|| Box::new(m))))
    }
}

/// One topic's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    /// 5.x string attributes.
    pub attributes: Attributes,
    /// Ordered topic.
    pub order: bool,
    /// Permission bits (6 = read + write).
    pub perm: u32,
    /// Read queues.
    pub read_queue_nums: u32,
    /// Tag filter type.
    pub topic_filter_type: TopicFilterType,
    /// Topic name.
    pub topic_name: String,
    /// System flag bits.
    pub topic_sys_flag: i32,
    /// Write queues.
    pub write_queue_nums: u32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            attributes: Attributes::default(),
            order: false,
            perm: perm::READ | perm::WRITE,
            read_queue_nums: 16,
            topic_filter_type: TopicFilterType::SingleTag,
            topic_name: String::new(),
            topic_sys_flag: 0,
            write_queue_nums: 16,
        }
    }
}

impl TopicConfig {
    /// A read-write topic with `queues` read and write queues.
    pub fn new(name: impl Into<String>, queues: u32) -> Self {
        TopicConfig {
            topic_name: name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            ..Self::default()
        }
    }
}

/// The topic table with its versions (Java's TopicConfigAndMappingSerializeWrapper).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigWrapper {
    /// Version of the topic table.
    pub data_version: DataVersion,
    /// 5.x: version of the static-topic mappings.
    pub mapping_data_version: DataVersion,
    /// Topics by name.
    #[serde(deserialize_with = "bulk_map")]
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    /// 5.x static-topic mapping details, kept as they came.
    pub topic_queue_mapping_detail_map: BTreeMap<String, Value>,
    /// 5.x static-topic mapping info, kept as they came.
    pub topic_queue_mapping_info_map: BTreeMap<String, Value>,
}

/// Reads a JSON object into a map built from sorted runs of its entries. Inserting entries one
/// by one, as serde's own map does, leaves the tree's nodes about half full and scattered among
/// the keys: at 100k topics that is ~8 MiB more, and holes the allocator cannot return.
/// On a repeated key the last one wins, as with serde's map.
fn bulk_map<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Entries<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Entries<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut runs = SortedRuns::new(RUN);
            while let Some((k, v)) = m.next_entry::<String, V>()? {
                runs.push(k, v);
            }
            Ok(runs.finish())
        }
    }
    d.deserialize_map(Entries(std::marker::PhantomData))
}

/// Entries per sorted run: ~640 KB of topics, little beside the table, and few enough runs
/// (18 at 150k topics) that merging them costs little time.
const RUN: usize = 8192;

/// A map built from entries in the order read, one sorted run at a time. Collecting every
/// entry into one vector and the tree from it held both at once (12 MB each at 150k topics:
/// the daemon's peak, 40.8 MiB RSS in `rmq-bench scale-150k`, 34.3 MiB this way); here only
/// one run is ever a vector. Runs are merged as a binary counter
/// carries, so an entry moves O(log(n / run)) times, and a merge frees the merged trees' nodes
/// as it fills the new, full ones.
struct SortedRuns<K, V> {
    run: usize,
    entries: Vec<(K, V)>,
    /// Older first, each larger than the next.
    maps: Vec<BTreeMap<K, V>>,
}

impl<K: Ord, V> SortedRuns<K, V> {
    fn new(run: usize) -> Self {
        SortedRuns {
            run: run.max(1),
            entries: Vec::new(),
            maps: Vec::new(),
        }
    }

    fn push(&mut self, k: K, v: V) {
        self.entries.push((k, v));
        if self.entries.len() >= self.run {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        // Collected from the vector's own iterator: sorted in place, and (a stable sort) a
        // repeated key keeps its last entry.
        let mut newer: BTreeMap<K, V> = std::mem::take(&mut self.entries).into_iter().collect();
        while let Some(mut older) = self.maps.pop() {
            if older.len() > newer.len() {
                self.maps.push(older);
                break;
            }
            // On a repeated key, `newer`'s entry wins.
            older.append(&mut newer);
            newer = older;
        }
        self.maps.push(newer);
    }

    fn finish(mut self) -> BTreeMap<K, V> {
        self.flush();
        let mut newer = BTreeMap::new();
        while let Some(mut older) = self.maps.pop() {
            older.append(&mut newer);
            newer = older;
        }
        newer
    }
}

#[cfg(any(test, feature = "test-util"))]
/// Body of REGISTER_BROKER.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    /// Filter servers (always empty for modern brokers).
    pub filter_server_list: Vec<String>,
    /// The topics.
    pub topic_config_serialize_wrapper: TopicConfigWrapper,
}

/// A string table, as NameServers return the order-topic config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvTable {
    /// Key → value.
    pub table: BTreeMap<String, String>,
}

/// The master's consumer offsets: `topic@group` → queue id → offset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerOffsetWrapper {
    /// Version of the table, when sent.
    pub data_version: Option<DataVersion>,
    /// Offsets.
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
    /// Keys a newer broker adds (groupTopicMap, lmqOffsetTable …), kept.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The master's delay offsets: delay level → offset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DelayOffsetTable {
    /// Version of the table, when sent.
    pub data_version: Option<DataVersion>,
    /// Offsets by delay level.
    pub offset_table: BTreeMap<i32, i64>,
    /// Anything else, kept.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One consumer group's configuration; fields this crate does not use are kept in `other`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupConfig {
    /// Group name.
    pub group_name: String,
    /// Consumption allowed.
    pub consume_enable: bool,
    /// Retry queues.
    pub retry_queue_nums: i32,
    /// Retries before the dead-letter queue.
    pub retry_max_times: i32,
    /// Broker to consume from.
    pub broker_id: i64,
    /// Every other field (consume* flags, groupRetryPolicy, attributes …).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The master's subscription groups.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupWrapper {
    /// Version of the table.
    pub data_version: Option<DataVersion>,
    /// Groups by name.
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
    /// group → topic → forbidden bits.
    pub forbidden_table: BTreeMap<String, BTreeMap<String, i64>>,
    /// Anything else, kept.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `brokerAddrTable` of a GET_BROKER_CLUSTER_INFO reply body (fastjson keys and all): broker
/// name → `{cluster, brokerName, brokerAddrs}`; `Null` when the body has no such table.
pub fn broker_addr_table(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut v: Value = super::fastjson::from_fastjson(body)?;
    Ok(v.get_mut("brokerAddrTable")
        .map(Value::take)
        .unwrap_or(Value::Null))
}

/// The topics.json a Java broker persists: the wrapper with every 5.x key optional.
pub fn parse_topics_json(bytes: &[u8]) -> Result<TopicConfigWrapper, serde_json::Error> {
    super::fastjson::from_fastjson(bytes)
}

/// The same, read as a stream from what `open` opens (the file): the text is never held whole.
pub fn read_topics_json<R: std::io::Read>(
    open: impl FnMut() -> std::io::Result<R>,
) -> Result<TopicConfigWrapper, serde_json::Error> {
    super::fastjson::from_fastjson_reader(open)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// PROTOCOL.md's V1 table: TopicA and TopicB, 4 queues, counter 2 at 1700000000000.
    pub(crate) fn golden_two_topics() -> TopicConfigWrapper {
        let dv = DataVersion {
            counter: 2,
            state_version: 0,
            timestamp: 1_700_000_000_000,
        };
        let mut w = TopicConfigWrapper {
            data_version: dv,
            mapping_data_version: dv,
            ..Default::default()
        };
        for n in ["TopicA", "TopicB"] {
            w.topic_config_table
                .insert(n.into(), TopicConfig::new(n, 4));
        }
        w
    }

    #[test]
    fn attributes_are_an_object_on_the_wire_and_nothing_when_empty() {
        let t: TopicConfig = serde_json::from_str(r#"{"topicName":"T","attributes":{}}"#).unwrap();
        assert!(t.attributes.is_empty());
        assert_eq!(t.attributes, Attributes::default());
        assert!(serde_json::to_string(&t)
            .unwrap()
            .contains(r#""attributes":{}"#));
        let t: TopicConfig =
            serde_json::from_str(r#"{"topicName":"T","attributes":{"+message.type":"FIFO"}}"#)
                .unwrap();
        assert_eq!(t.attributes.get("+message.type").unwrap(), "FIFO");
        assert!(serde_json::to_string(&t)
            .unwrap()
            .contains(r#""attributes":{"+message.type":"FIFO"}"#));
        assert!(std::mem::size_of::<Attributes>() <= 8);
    }

    #[test]
    fn the_topic_table_is_read_whole_and_a_repeated_name_keeps_its_last_entry() {
        let text = r#"{"topicConfigTable":{"B":{"topicName":"B","readQueueNums":1},"A":{"topicName":"A"},"B":{"topicName":"B","readQueueNums":2}}}"#;
        let w = parse_topics_json(text.as_bytes()).unwrap();
        assert_eq!(w.topic_config_table.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(w.topic_config_table["B"].read_queue_nums, 2);
        assert!(parse_topics_json(br#"{"topicConfigTable":[1]}"#).is_err());
    }

    #[test]
    fn a_table_of_several_runs_keeps_every_name_once_with_its_last_entry() {
        let n = 2 * RUN + 100;
        // Reversed, and every tenth name repeated a run later with its own queue count.
        let mut text = String::from(r#"{"topicConfigTable":{"#);
        for i in (0..n).rev() {
            text.push_str(&format!(r#""T{i:06}":{{"topicName":"T{i:06}","readQueueNums":1}},"#));
        }
        for i in (0..n).step_by(10) {
            text.push_str(&format!(r#""T{i:06}":{{"topicName":"T{i:06}","readQueueNums":2}},"#));
        }
        text.pop();
        text.push_str("}}");
        let w = parse_topics_json(text.as_bytes()).unwrap();
        assert_eq!(w.topic_config_table.len(), n);
        for (i, (name, t)) in w.topic_config_table.iter().enumerate() {
            assert_eq!(name, &format!("T{i:06}"));
            assert_eq!(t.read_queue_nums, if i % 10 == 0 { 2 } else { 1 }, "{name}");
        }
    }

    proptest::proptest! {
        #[test]
        fn sorted_runs_give_the_map_inserts_give(
            keys in proptest::collection::vec(0u8..40, 0..200),
            run in 1usize..20,
        ) {
            let mut runs = SortedRuns::new(run);
            let mut inserted = BTreeMap::new();
            for (i, k) in keys.iter().enumerate() {
                runs.push(*k, i);
                inserted.insert(*k, i);
            }
            proptest::prop_assert_eq!(runs.finish(), inserted);
        }
    }

    #[test]
    fn register_body_matches_golden_v1() {
        let w = golden_two_topics();
        let body = RegisterBrokerBody {
            filter_server_list: vec![],
            topic_config_serialize_wrapper: w,
        };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(text.len(), 599);
        assert_eq!(
            crc32fast::hash(text.as_bytes()) & 0x7FFF_FFFF,
            1_862_014_353
        );
        let back: RegisterBrokerBody = serde_json::from_str(&text).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn reads_java_4x_topics_with_missing_keys_and_unknowns() {
        let text = br#"{"dataVersion":{"counter":3,"timestamp":1},"topicConfigTable":{"T":{"topicName":"T","readQueueNums":8,"writeQueueNums":8,"perm":6,"order":false,"topicFilterType":"MULTI_TAG","topicSysFlag":0,"newKey":[1]}},"extra":1}"#;
        let w = parse_topics_json(text).unwrap();
        assert_eq!(w.data_version.counter, 3);
        let t = &w.topic_config_table["T"];
        assert_eq!(
            (t.read_queue_nums, t.topic_filter_type),
            (8, TopicFilterType::MultiTag)
        );
    }

    #[test]
    fn reads_java_cluster_info_with_bare_integer_keys() {
        let body = br#"{"brokerAddrTable":{"b":{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"b","cluster":"C"}},"clusterAddrTable":{"C":["b"]}}"#;
        let t = broker_addr_table(body).unwrap();
        assert_eq!(t["b"]["brokerAddrs"]["0"], "127.0.0.1:10911");
        assert_eq!(broker_addr_table(b"{}").unwrap(), Value::Null);
        assert!(broker_addr_table(b"<html>").is_err());
    }

    #[test]
    fn reads_consumer_offsets_with_bare_integer_keys() {
        let text = br#"{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":5},"offsetTable":{"t@g":{0:12,1:99}},"groupTopicMap":{"g":["t"]}}"#;
        let w: ConsumerOffsetWrapper = super::super::fastjson::from_fastjson(text).unwrap();
        assert_eq!(w.offset_table["t@g"][&1], 99);
        assert!(w.other.contains_key("groupTopicMap"));
    }
}
