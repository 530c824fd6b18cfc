use std::io::Read;

use super::*;
use crate::broker::body::RegisterBrokerBody;
use crate::broker::register::plan::{fitting_batch, HEADER_ROOM};

fn two_topics() -> TopicConfigWrapper {
    crate::broker::body::tests::golden_two_topics()
}

fn table(n: usize) -> TopicConfigWrapper {
    let mut w = TopicConfigWrapper::default();
    for i in 0..n {
        let name = format!("T{i:05}");
        w.topic_config_table
            .insert(name.clone(), TopicConfig::new(name, 8));
    }
    w
}

/// A table with everything a body can carry: attributes, mappings, both versions.
fn rich(n: usize) -> TopicConfigWrapper {
    let mut w = table(n);
    w.data_version.counter = 7;
    w.data_version.timestamp = 1_700_000_000_123;
    w.mapping_data_version.counter = 3;
    for (i, t) in w.topic_config_table.values_mut().enumerate() {
        if i % 3 == 0 {
            t.attributes.insert("+message.type", "NORMAL");
        }
        t.order = i % 5 == 0;
    }
    w.topic_queue_mapping_info_map.insert(
        "T00000".into(),
        serde_json::json!({"bname": "b", "epoch": 1}),
    );
    w.topic_queue_mapping_detail_map
        .insert("T00000".into(), serde_json::json!({"totalQueues": 8}));
    w
}

/// The split bodies as they were built before batches were encoded one at a time: each
/// batch copied into a wrapper of its own and serialized as a RegisterBrokerBody.
fn owned_batches(w: &TopicConfigWrapper, size: usize) -> Vec<Vec<u8>> {
    let names: Vec<&String> = w.topic_config_table.keys().collect();
    names
        .chunks(size)
        .map(|chunk| {
            let part = TopicConfigWrapper {
                data_version: w.data_version,
                mapping_data_version: w.mapping_data_version,
                topic_config_table: chunk
                    .iter()
                    .map(|n| ((*n).clone(), w.topic_config_table[*n].clone()))
                    .collect(),
                ..Default::default()
            };
            serde_json::to_vec(&RegisterBrokerBody {
                filter_server_list: vec![],
                topic_config_serialize_wrapper: part,
            })
            .unwrap()
        })
        .collect()
}

fn batches(w: &TopicConfigWrapper, size: usize) -> Vec<Encoded> {
    batch_starts(w, size)
        .iter()
        .map(|s| batch(w, s, size, 0))
        .collect()
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
    let (sent, crc) = compressed(&w, CompressionForm::RawDeflate);
    assert_eq!((&sent[..], crc), (&raw[..], body_crc32(&raw)));
}

#[test]
fn borrowed_body_serializes_like_the_owned_one() {
    let w = two_topics();
    let owned = RegisterBrokerBody {
        filter_server_list: vec![],
        topic_config_serialize_wrapper: w.clone(),
    };
    let (plain, crc) = plain(&w);
    assert_eq!(plain, serde_json::to_vec(&owned).unwrap());
    assert_eq!(crc, 1_862_014_353);
}

#[test]
fn the_plain_length_is_counted_exactly_without_the_body() {
    for w in [
        TopicConfigWrapper::default(),
        two_topics(),
        table(1_000),
        rich(1_000),
    ] {
        assert_eq!(plain_len(&w), plain(&w).0.len());
    }
}

#[test]
fn batches_are_byte_for_byte_the_copied_ones() {
    for (w, size) in [
        (rich(1_000), 800),
        (rich(1_000), 1),
        (rich(1_000), 999),
        (rich(1_000), 1_000),
        (rich(1_000), 5_000),
        (table(10), 3),
    ] {
        let want = owned_batches(&w, size);
        let got = batches(&w, size);
        assert_eq!(got.len(), want.len(), "size {size}");
        for (i, ((b, crc), want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(&b[..], &want[..], "size {size}, batch {i}");
            assert_eq!(*crc, body_crc32(want));
        }
    }
}

#[test]
fn split_bodies_cover_every_topic_once_each_within_a_frame() {
    let w = table(10_000);
    let whole = plain_len(&w);
    let max_frame = whole / 3;
    let size = fitting_batch(whole, 10_000, max_frame);
    let bodies = batches(&w, size);
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
    assert_eq!(batch_starts(&w, 800).len(), 13);
}
