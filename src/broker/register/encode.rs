//! REGISTER_BROKER bodies: plain JSON whole or one batch at a time, the compressed forms, and
//! the CRC the NameServer checks. Synchronous and pure; the round decides when and where.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;

use bytes::{BufMut, Bytes};
use serde::ser::SerializeMap;
use serde::Serialize;

use crate::broker::body::{DataVersion, TopicConfig, TopicConfigWrapper};
use crate::broker::register::plan::CompressionForm;

/// CRC the NameServer checks: IEEE CRC32 of the body as sent, top bit cleared.
pub fn body_crc32(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

/// A body as sent, with its CRC.
pub(crate) type Encoded = (Bytes, u32);

fn with_crc(b: Vec<u8>) -> Encoded {
    let crc = body_crc32(&b);
    (Bytes::from(b), crc)
}

/// RegisterBrokerBody, borrowing the table instead of copying it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BodyRef<'a, W: Serialize> {
    filter_server_list: [&'a str; 0],
    topic_config_serialize_wrapper: &'a W,
}

fn body_ref<W: Serialize>(w: &W) -> BodyRef<'_, W> {
    BodyRef {
        filter_server_list: [],
        topic_config_serialize_wrapper: w,
    }
}

/// The whole table as one plain JSON body.
pub(crate) fn plain(w: &TopicConfigWrapper) -> Encoded {
    with_crc(serde_json::to_vec(&body_ref(w)).unwrap_or_default())
}

/// A writer that keeps nothing but the count of bytes written.
#[derive(Default)]
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Length of [`plain`]'s body, found without holding it: whether it fits a frame, and how
/// many topics a batch takes, is all that is asked of it.
pub(crate) fn plain_len(w: &TopicConfigWrapper) -> usize {
    let mut c = Counter::default();
    // Serializing into a counter fails only where serializing into a Vec would.
    match serde_json::to_writer(&mut c, &body_ref(w)) {
        Ok(()) => c.0,
        Err(_) => 0,
    }
}

/// The first topic name of each batch of `size` topics, in table order.
pub(crate) fn batch_starts(w: &TopicConfigWrapper, size: usize) -> Vec<String> {
    w.topic_config_table
        .keys()
        .step_by(size.max(1))
        .cloned()
        .collect()
}

/// The topics from `start` on, at most `count` of them, serialized as a JSON object.
struct TableSlice<'a> {
    table: &'a BTreeMap<String, TopicConfig>,
    start: &'a str,
    count: usize,
}

impl Serialize for TableSlice<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.table
                .range::<str, _>((Bound::Included(self.start), Bound::Unbounded))
                .take(self.count),
        )
    }
}

/// `{}`: the mapping sections, which a batch leaves empty.
struct Empty;

impl Serialize for Empty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// One batch of a split table: the table's versions and a slice of its topics, in the field
/// order of [`TopicConfigWrapper`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchRef<'a> {
    data_version: &'a DataVersion,
    mapping_data_version: &'a DataVersion,
    topic_config_table: TableSlice<'a>,
    topic_queue_mapping_detail_map: Empty,
    topic_queue_mapping_info_map: Empty,
}

/// The plain body of the batch of at most `size` topics that starts at topic `start`, every
/// batch with the table's versions, so that the data-version check and UNREGISTER work as for
/// one request. `capacity` is a guess at its length (too small only costs a reallocation).
pub(crate) fn batch(w: &TopicConfigWrapper, start: &str, size: usize, capacity: usize) -> Encoded {
    let part = BatchRef {
        data_version: &w.data_version,
        mapping_data_version: &w.mapping_data_version,
        topic_config_table: TableSlice {
            table: &w.topic_config_table,
            start,
            count: size.max(1),
        },
        topic_queue_mapping_detail_map: Empty,
        topic_queue_mapping_info_map: Empty,
    };
    let mut out = Vec::with_capacity(capacity);
    if serde_json::to_writer(&mut out, &body_ref(&part)).is_err() {
        out.clear();
    }
    with_crc(out)
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

/// The whole table compressed in `form`, as sent.
pub(crate) fn compressed(w: &TopicConfigWrapper, form: CompressionForm) -> Encoded {
    with_crc(compressed_body(w, &[], form))
}

#[cfg(test)]
mod tests;
