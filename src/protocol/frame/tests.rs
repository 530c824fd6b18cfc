use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::*;
use crate::protocol::command::LanguageCode;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn topic(name: &str) -> String {
    format!(
        r#""{name}":{{"attributes":{{}},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"{name}","topicSysFlag":0,"writeQueueNums":4}}"#
    )
}

/// Body of PROTOCOL.md's V1 (599 bytes).
pub(crate) fn v1_body() -> String {
    let dv = r#"{"counter":2,"stateVersion":0,"timestamp":1700000000000}"#;
    format!(
        r#"{{"filterServerList":[],"topicConfigSerializeWrapper":{{"dataVersion":{dv},"mappingDataVersion":{dv},"topicConfigTable":{{{},{}}},"topicQueueMappingDetailMap":{{}},"topicQueueMappingInfoMap":{{}}}}}}"#,
        topic("TopicA"),
        topic("TopicB")
    )
}

const V1_HEADER: &str = r#"{"code":103,"extFields":{"bodyCrc32":"1862014353","brokerAddr":"192.168.0.10:10911","brokerId":"0","brokerName":"broker-a","clusterName":"DefaultCluster","compressed":"false","enableActingMaster":"false","haServerAddr":"192.168.0.10:10912"},"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}"#;

/// PROTOCOL.md's V1 request: REGISTER_BROKER, JSON header, opaque 1.
pub(crate) fn v1_command() -> RemotingCommand {
    let mut cmd = RemotingCommand::request(103)
        .with_field("bodyCrc32", "1862014353")
        .with_field("brokerAddr", "192.168.0.10:10911")
        .with_field("brokerId", 0)
        .with_field("brokerName", "broker-a")
        .with_field("clusterName", "DefaultCluster")
        .with_field("compressed", false)
        .with_field("enableActingMaster", false)
        .with_field("haServerAddr", "192.168.0.10:10912")
        .with_body(v1_body().into_bytes());
    cmd.opaque = 1;
    cmd.language = LanguageCode::JAVA;
    cmd
}

/// PROTOCOL.md's V2 request: UNREGISTER_BROKER, ROCKETMQ header, opaque 2.
pub(crate) fn v2_command() -> RemotingCommand {
    let mut cmd = RemotingCommand::request(104)
        .with_field("brokerAddr", "192.168.0.10:10911")
        .with_field("brokerId", 0)
        .with_field("brokerName", "broker-a")
        .with_field("clusterName", "DefaultCluster")
        .with_serialize_type(SerializeType::RocketMq);
    cmd.opaque = 2;
    cmd.language = LanguageCode::JAVA;
    cmd
}

const V2_HEX: &str = "000000810100007d 0068 00 01df 00000002 00000000 00000000 00000068
000a62726f6b657241646472 000000123139322e3136382e302e31303a3130393131
000862726f6b65724964 0000000130
000a62726f6b65724e616d65 0000000862726f6b65722d61
000b636c75737465724e616d65 0000000e44656661756c74436c7573746572";

#[test]
fn golden_v1_register_json() {
    assert_eq!(v1_body().len(), 599);
    assert_eq!(
        crc32fast::hash(v1_body().as_bytes()) & 0x7FFF_FFFF,
        1862014353
    );
    let bytes = encode_to_vec(&v1_command()).unwrap();
    assert_eq!(bytes.len(), 933);
    assert_eq!(&bytes[..8], &hex("000003a1 00000146")[..]);
    assert_eq!(&bytes[8..8 + 326], V1_HEADER.as_bytes());
    assert_eq!(&bytes[334..], v1_body().as_bytes());
    let decoded = FrameCodec::default()
        .decode(&mut BytesMut::from(&bytes[..]))
        .unwrap()
        .unwrap();
    assert_eq!(decoded, v1_command());
}

#[test]
fn golden_v2_unregister_binary() {
    let bytes = encode_to_vec(&v2_command()).unwrap();
    assert_eq!(bytes, hex(V2_HEX));
    let decoded = FrameCodec::default()
        .decode(&mut BytesMut::from(&bytes[..]))
        .unwrap()
        .unwrap();
    assert_eq!(decoded, v2_command());
    // The same request as JSON: header 215 bytes.
    let json = encode_to_vec(&v2_command().with_serialize_type(SerializeType::Json)).unwrap();
    assert_eq!(&json[..8], &hex("000000db000000d7")[..]);
}

#[test]
fn golden_v3_response_with_kv_table() {
    let header = r#"{"code":0,"extFields":{"haServerAddr":"192.168.0.10:10912","masterAddr":"192.168.0.10:10911"},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":479}"#;
    let body = r#"{"table":{"TopicOrder":"broker-a:4"}}"#;
    let mut wire = hex("000000dc000000b3");
    wire.extend_from_slice(header.as_bytes());
    wire.extend_from_slice(body.as_bytes());
    let cmd = FrameCodec::default()
        .decode(&mut BytesMut::from(&wire[..]))
        .unwrap()
        .unwrap();
    assert!(cmd.is_response());
    assert_eq!(cmd.opaque, 7);
    assert_eq!(cmd.field("masterAddr"), Some("192.168.0.10:10911"));
    assert_eq!(cmd.body.as_deref(), Some(body.as_bytes()));
    assert_eq!(encode_to_vec(&cmd).unwrap(), wire);
}

#[test]
fn lenient_json_header_go_client_shape() {
    // The Go client: empty remark, numeric language, no serializeTypeCurrentRPC, extra keys.
    let header = r#"{"code":0,"language":9,"version":317,"opaque":5,"flag":1,"remark":"","extFields":{"n":12,"b":true,"z":null},"x":1}"#;
    let mut wire = Vec::new();
    wire.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
    wire.extend_from_slice(&(header.len() as u32).to_be_bytes());
    wire.extend_from_slice(header.as_bytes());
    let cmd = FrameCodec::default()
        .decode(&mut BytesMut::from(&wire[..]))
        .unwrap()
        .unwrap();
    assert_eq!(cmd.language, LanguageCode(9));
    assert_eq!(cmd.remark, None);
    assert_eq!(cmd.field("n"), Some("12"));
    assert_eq!(cmd.field("b"), Some("true"));
    assert_eq!(cmd.field("z"), None);
}

fn json_header(header: &str) -> Result<RemotingCommand, FrameError> {
    let mut wire = Vec::new();
    wire.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
    wire.extend_from_slice(&(header.len() as u32).to_be_bytes());
    wire.extend_from_slice(header.as_bytes());
    FrameCodec::default()
        .decode(&mut BytesMut::from(&wire[..]))
        .map(|c| c.unwrap_or_else(|| panic!("a whole frame")))
}

#[test]
fn json_language_and_field_values_in_every_shape() {
    let lang = |v: &str| json_header(&format!(r#"{{"language":{v}}}"#)).map(|c| c.language);
    assert_eq!(lang("null").unwrap(), LanguageCode::OTHER);
    assert_eq!(lang(r#""GO""#).unwrap(), LanguageCode(9));
    assert_eq!(lang(r#""COBOL""#).unwrap(), LanguageCode::OTHER);
    assert_eq!(lang("12").unwrap(), LanguageCode::RUST);
    for unknown in ["300", "-1", "1.5"] {
        assert_eq!(lang(unknown).unwrap(), LanguageCode::OTHER, "{unknown}");
    }
    for invalid in ["true", "[1]", r#"{"a":1}"#] {
        assert!(
            matches!(lang(invalid), Err(FrameError::BadField("language"))),
            "{invalid}"
        );
    }
    let cmd = json_header(
        r#"{"extFields":{"o":{"b":[1,2.5],"a":"x"},"l":[true,null],"f":2.5,"i":-3,"d":"1","d":null,"e":"\u0041"}}"#,
    )
    .unwrap();
    assert_eq!(cmd.field("o"), Some(r#"{"a":"x","b":[1,2.5]}"#));
    assert_eq!(cmd.field("l"), Some("[true,null]"));
    assert_eq!(cmd.field("f"), Some("2.5"));
    assert_eq!(cmd.field("i"), Some("-3"));
    assert_eq!(
        cmd.field("d"),
        None,
        "the last value wins, and a null is no value"
    );
    assert_eq!(cmd.field("e"), Some("A"));
    assert!(matches!(
        json_header(r#"{"extFields":[1]}"#),
        Err(FrameError::Json(_))
    ));
    assert!(json_header(r#"{"extFields":null}"#).is_ok_and(|c| c.ext_fields.is_empty()));
}

#[test]
fn json_languages_are_written_by_name_or_code() {
    let mut cmd = RemotingCommand::request(1);
    let mut buf = BytesMut::new();
    header::encode_json(&cmd, &mut buf).unwrap();
    assert!(std::str::from_utf8(&buf)
        .unwrap()
        .contains(r#""language":"RUST""#));
    cmd.language = LanguageCode(99);
    buf.clear();
    header::encode_json(&cmd, &mut buf).unwrap();
    assert!(std::str::from_utf8(&buf)
        .unwrap()
        .contains(r#""language":99"#));
}

fn decode_all(bytes: &[u8]) -> Result<Option<RemotingCommand>, FrameError> {
    FrameCodec::default().decode(&mut BytesMut::from(bytes))
}

fn frame(mark: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = ((4 + payload.len()) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&mark.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn malformed_inputs_are_typed_errors() {
    assert!(matches!(
        decode_all(&hex("00000002 0000")),
        Err(FrameError::TooShort(2))
    ));
    assert!(matches!(
        decode_all(&hex("ffffffff 00000000")),
        Err(FrameError::TooShort(-1))
    ));
    assert!(matches!(
        decode_all(&hex("7fffffff")),
        Err(FrameError::TooLong { .. })
    ));
    assert!(matches!(
        decode_all(&frame(0x0000_0010, b"{}")),
        Err(FrameError::HeaderTooLong {
            header: 16,
            available: 2
        })
    ));
    assert!(matches!(
        decode_all(&frame(0x0200_0002, b"{}")),
        Err(FrameError::UnknownSerializeType(2))
    ));
    assert!(matches!(
        decode_all(&frame(0x0000_0003, b"{x}")),
        Err(FrameError::Json(_))
    ));
    assert!(matches!(
        decode_all(&frame(0x0100_0004, &[0, 1, 0, 0])),
        Err(FrameError::Truncated(_))
    ));
    // Binary header whose remark is not UTF-8.
    let mut bin = hex("0000 00 0000 00000000 00000000 00000002 fffe 00000000");
    let n = bin.len() as u32;
    bin = frame(0x0100_0000 | n, &bin);
    assert!(matches!(
        decode_all(&bin),
        Err(FrameError::InvalidUtf8("remark"))
    ));
    // Negative remark length.
    let neg = hex("0000 00 0000 00000000 00000000 ffffffff 00000000");
    let n = neg.len() as u32;
    assert!(matches!(
        decode_all(&frame(0x0100_0000 | n, &neg)),
        Err(FrameError::BadField(_))
    ));
}

#[test]
fn oversized_prefix_rejected_before_allocating() {
    let mut codec = FrameCodec::new(1024);
    let mut buf = BytesMut::from(&hex("00000400")[..]); // 1024 + 4 > 1024
    let cap = buf.capacity();
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::TooLong {
            len: 1028,
            max: 1024
        })
    ));
    assert_eq!(buf.capacity(), cap);
}

#[test]
fn encoder_refuses_frames_over_the_limit() {
    let mut codec = FrameCodec::new(64);
    let cmd = RemotingCommand::request(1).with_body(vec![0u8; 100]);
    let mut buf = BytesMut::new();
    assert!(matches!(
        codec.encode(&cmd, &mut buf),
        Err(FrameError::TooLong { .. })
    ));
    assert!(buf.is_empty());
}

fn arb_command() -> impl Strategy<Value = RemotingCommand> {
    let text = "[a-zA-Z0-9 _:.@\u{4e2d}\u{1F600}-]{1,24}";
    (
        any::<i16>(),
        0u8..14,
        any::<i16>(),
        any::<i32>(),
        any::<i32>(),
        proptest::option::of(text),
        proptest::collection::btree_map(text, text, 0..6),
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..64)),
    )
        .prop_map(
            |(code, lang, version, opaque, flag, remark, ext, binary, body)| RemotingCommand {
                code: code.into(),
                language: LanguageCode(lang),
                version: version.into(),
                opaque,
                flag,
                remark,
                ext_fields: ext.into_iter().collect(),
                serialize_type: if binary {
                    SerializeType::RocketMq
                } else {
                    SerializeType::Json
                },
                body: body.map(Into::into),
            },
        )
}

proptest! {
    #[test]
    fn decode_encode_round_trip(cmd in arb_command()) {
        let bytes = encode_to_vec(&cmd).unwrap();
        let back = decode_all(&bytes).unwrap().unwrap();
        prop_assert_eq!(back, cmd);
    }

    #[test]
    fn any_split_decodes_the_same(cmds in proptest::collection::vec(arb_command(), 1..4), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut wire = Vec::new();
        for c in &cmds {
            wire.extend(encode_to_vec(c).unwrap());
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut last = 0;
        for p in points {
            buf.extend_from_slice(&wire[last..p]);
            last = p;
            while let Some(c) = codec.decode(&mut buf).unwrap() {
                out.push(c);
            }
        }
        prop_assert_eq!(out, cmds);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut codec = FrameCodec::new(4096);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
    }

    #[test]
    fn arbitrary_headers_never_panic(t in 0u8..2, header in proptest::collection::vec(any::<u8>(), 0..256)) {
        let wire = frame((u32::from(t) << 24) | header.len() as u32, &header);
        let _ = decode_all(&wire);
    }
}
