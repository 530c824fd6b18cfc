//! Fuzz targets: one function per parser that reads untrusted input. The AFL binaries in
//! `fuzz/` and the corpus replay in `tests/it/fuzz_corpus.rs` call the same functions, so a crash
//! the fuzzer finds is a failing ordinary test once its input is saved.
//!
//! Each target must never panic on any input; where a parser has a round trip, the target
//! also checks it, so the fuzzer finds wrong answers as well as crashes.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::broker::body::{parse_topics_json, TopicConfigWrapper};
use crate::broker::fastjson::{from_fastjson, from_fastjson_reader, quote_numeric_keys};
use crate::protocol::{FrameCodec, RemotingCommand};

/// A fuzz target: panics on a finding, returns on anything else.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, for the replay test and the fuzz binaries.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("fastjson", fastjson),
    ("topics", topics),
    ("address", address),
    ("config", config),
];

/// Frames as read from a socket, JSON and ROCKETMQ headers: every decoded command re-encodes
/// to a frame that decodes to the same command.
pub fn frame(data: &[u8]) {
    // Small enough that the fuzzer also reaches the too-long path.
    let mut codec = FrameCodec::new(64 * 1024);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(cmd)) = codec.decode(&mut buf) {
        roundtrip(&mut codec, &cmd);
    }
}

fn roundtrip(codec: &mut FrameCodec, cmd: &RemotingCommand) {
    let mut out = BytesMut::new();
    // A decoded header can still be unwritable (e.g. ext fields past the 24-bit length):
    // a typed error is fine, a panic or a different command is not.
    if codec.encode(cmd, &mut out).is_err() {
        return;
    }
    match codec.decode(&mut out) {
        Ok(Some(again)) => assert_eq!(&again, cmd, "frame round trip changed the command"),
        other => panic!("a frame we wrote does not decode: {other:?}"),
    }
    assert!(out.is_empty(), "re-encoding left {} bytes", out.len());
}

/// A reader that hands out at most `.1` bytes per read, to cut input at every place.
pub struct Trickle<'a>(pub &'a [u8], pub usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// fastjson text (bare numeric keys): standard JSON passes through untouched, quoting is
/// idempotent, and reading the text in 1-byte pieces gives what reading it whole gives.
pub fn fastjson(data: &[u8]) {
    let whole = from_fastjson::<serde_json::Value>(data).ok();
    let trickled = from_fastjson_reader::<serde_json::Value, _>(|| Ok(Trickle(data, 1))).ok();
    assert_eq!(whole, trickled, "a 1-byte reader parses differently");
    if let Ok(text) = std::str::from_utf8(data) {
        let quoted = quote_numeric_keys(text);
        if serde_json::from_str::<serde_json::Value>(text).is_ok() {
            assert!(
                matches!(quoted, std::borrow::Cow::Borrowed(_)),
                "valid JSON was rewritten"
            );
        }
        assert_eq!(
            quote_numeric_keys(&quoted),
            quoted,
            "quoting is not idempotent"
        );
    }
}

/// topics.json, 4.x and 5.x shapes: a table that parses survives our own encoding.
pub fn topics(data: &[u8]) {
    let Ok(table) = parse_topics_json(data) else {
        return;
    };
    let Ok(encoded) = serde_json::to_vec(&table) else {
        return;
    };
    match parse_topics_json(&encoded) {
        Ok(again) => assert!(same_table(&again, &table), "topic table round trip differs"),
        Err(e) => panic!("a table we encoded does not parse: {e}"),
    }
}

fn same_table(a: &TopicConfigWrapper, b: &TopicConfigWrapper) -> bool {
    // Mapping values are kept as opaque JSON and passed on: only their names are ours to keep.
    // (serde_json's float parsing is not correctly rounded, so a float need not survive
    // printing and parsing to the same bits; real mappings hold integers.)
    a.data_version == b.data_version
        && a.mapping_data_version == b.mapping_data_version
        && a.topic_config_table == b.topic_config_table
        && a.topic_queue_mapping_detail_map
            .keys()
            .eq(b.topic_queue_mapping_detail_map.keys())
        && a.topic_queue_mapping_info_map
            .keys()
            .eq(b.topic_queue_mapping_info_map.keys())
}

/// An address server's answer: whatever is accepted is a list of valid `host:port`.
pub fn address(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(addrs) = crate::address_server::parse_answer(&text) {
        assert!(!addrs.is_empty(), "an accepted answer is never empty");
        for a in &addrs {
            assert!(
                crate::address_server::validate_addr(a).is_ok(),
                "accepted an invalid address {a:?}"
            );
        }
    }
}

/// The TOML config file's text: any text gives a config or a typed error naming a key (or,
/// for text that does not parse at all, the text itself as the source).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::from_toml_str(text) {
        Err(e) => assert!(
            !e.key.is_empty() || e.source_name == "TOML text",
            "a config error names no key and blames another source: {e}"
        ),
        // The TLS files are read after loading now, by the daemon's settings: still checked.
        Ok(cfg) => {
            if let Err(e) = crate::daemon::settings::tls(&cfg) {
                assert!(!e.key().is_empty(), "a TLS error names no key: {e}");
            }
        }
    }
}
