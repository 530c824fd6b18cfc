//! Header serialization: Java's JSON form and the compact ROCKETMQ binary form (PROTOCOL.md §2).

use bytes::{Buf, BufMut, BytesMut};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::command::{LanguageCode, RemotingCommand, SerializeType};
use super::fields::{AsRead, Fields, Text};
use super::error::FrameError;

/// Fixed part of a binary header: code, language, version, opaque, flag, two length words.
const BINARY_FIXED_LEN: usize = 2 + 1 + 2 + 4 + 4 + 4 + 4;

/// JSON header as written: field order is Java's alphabetical order.
#[derive(Serialize)]
struct JsonHeaderOut<'a> {
    code: i32,
    #[serde(rename = "extFields", skip_serializing_if = "Fields::is_empty")]
    ext_fields: &'a Fields,
    flag: i32,
    language: LanguageOut,
    opaque: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<&'a str>,
    #[serde(rename = "serializeTypeCurrentRPC")]
    serialize_type: &'static str,
    version: i32,
}

/// A language as Java writes it: its enum name, or the bare code when it has none.
struct LanguageOut(LanguageCode);

impl Serialize for LanguageOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_u8(self.0 .0),
        }
    }
}

/// JSON header as read: every key optional, unknown keys ignored.
#[derive(Deserialize)]
struct JsonHeaderIn {
    #[serde(default)]
    code: i32,
    #[serde(default, rename = "extFields")]
    ext_fields: Option<ExtFieldsIn>,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    language: Option<LanguageIn>,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default)]
    version: i32,
}

/// A language as read: a known name or a code, anything else unknown (OTHER); a value that
/// cannot be a language at all (true, [], {}) is refused. Read without a copy of the text.
enum LanguageIn {
    Code(LanguageCode),
    Invalid,
}

impl<'de> Deserialize<'de> for LanguageIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LanguageIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a language name or code")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LanguageIn, E> {
                Ok(LanguageIn::Code(
                    LanguageCode::from_name(v).unwrap_or(LanguageCode::OTHER),
                ))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LanguageIn, E> {
                Ok(LanguageIn::Code(
                    u8::try_from(v).map_or(LanguageCode::OTHER, LanguageCode),
                ))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LanguageIn, E> {
                Ok(LanguageIn::Code(
                    u8::try_from(v).map_or(LanguageCode::OTHER, LanguageCode),
                ))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<LanguageIn, E> {
                Ok(LanguageIn::Code(LanguageCode::OTHER))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LanguageIn, E> {
                Ok(LanguageIn::Invalid)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LanguageIn, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LanguageIn::Invalid)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LanguageIn, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LanguageIn::Invalid)
            }
        }
        d.deserialize_any(V)
    }
}

/// `extFields` as read, straight into the command's fields: strings as they are, other values
/// as their JSON text, nulls absent (a later null removes an earlier value, as the last one
/// wins). Short keys and values are read without an allocation.
struct ExtFieldsIn(Fields);

impl<'de> Deserialize<'de> for ExtFieldsIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExtFieldsIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtFieldsIn, A::Error> {
                let mut read = AsRead::new();
                while let Some(key) = map.next_key::<Text>()? {
                    read.push((key, map.next_value::<FieldIn>()?.0));
                }
                Ok(ExtFieldsIn(Fields::from_read(read)))
            }
        }
        d.deserialize_map(V)
    }
}

/// One `extFields` value: a string, the JSON text of anything else, None for null.
struct FieldIn(Option<Text>);

impl<'de> Deserialize<'de> for FieldIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldIn, E> {
                Ok(FieldIn(Some(Text::from(v))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<FieldIn, E> {
                Ok(FieldIn(Some(Text::from(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<FieldIn, E> {
                Ok(FieldIn(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<FieldIn, E> {
                Ok(FieldIn(None))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<FieldIn, E> {
                Ok(FieldIn(Some(compact_str::format_compact!("{v}"))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FieldIn, E> {
                Ok(FieldIn(Some(compact_str::format_compact!("{v}"))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FieldIn, E> {
                Ok(FieldIn(Some(compact_str::format_compact!("{v}"))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FieldIn, E> {
                Ok(FieldIn(Some(Text::from(serde_json::Value::from(v).to_string()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<FieldIn, A::Error> {
                let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(FieldIn(Some(compact_str::format_compact!("{v}"))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldIn, A::Error> {
                let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(FieldIn(Some(compact_str::format_compact!("{v}"))))
            }
        }
        d.deserialize_any(V)
    }
}

/// Writes `cmd`'s header in JSON.
pub fn encode_json(cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), FrameError> {
    let out = JsonHeaderOut {
        code: cmd.code,
        ext_fields: &cmd.ext_fields,
        flag: cmd.flag,
        language: LanguageOut(cmd.language),
        opaque: cmd.opaque,
        remark: cmd.remark.as_deref().filter(|r| !r.is_empty()),
        serialize_type: SerializeType::Json.name(),
        version: cmd.version,
    };
    serde_json::to_writer((&mut *dst).writer(), &out).map_err(FrameError::Json)
}

/// Reads a JSON header, leniently as PROTOCOL.md §2.1 asks.
pub fn decode_json(src: &[u8]) -> Result<RemotingCommand, FrameError> {
    let h: JsonHeaderIn = serde_json::from_slice(src).map_err(FrameError::Json)?;
    let language = match h.language {
        None => LanguageCode::OTHER,
        Some(LanguageIn::Code(c)) => c,
        Some(LanguageIn::Invalid) => return Err(FrameError::BadField("language")),
    };
    Ok(RemotingCommand {
        code: h.code,
        language,
        version: h.version,
        opaque: h.opaque,
        flag: h.flag,
        remark: h.remark.filter(|r| !r.is_empty()),
        ext_fields: h.ext_fields.map(|f| f.0).unwrap_or_default(),
        serialize_type: SerializeType::Json,
        body: None,
    })
}

/// Writes `cmd`'s header in the ROCKETMQ binary form.
pub fn encode_binary(cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), FrameError> {
    let code = i16::try_from(cmd.code).map_err(|_| FrameError::BadField("code"))?;
    let version = i16::try_from(cmd.version).map_err(|_| FrameError::BadField("version"))?;
    let remark = cmd.remark.as_deref().unwrap_or("");
    let mut map_len = 0usize;
    for (k, v) in cmd.ext_fields.iter() {
        if k.len() > i16::MAX as usize || k.is_empty() {
            return Err(FrameError::BadField("extFields key"));
        }
        map_len += 2 + k.len() + 4 + v.len();
    }
    let remark_len = i32::try_from(remark.len()).map_err(|_| FrameError::BadField("remark"))?;
    let map_len_i = i32::try_from(map_len).map_err(|_| FrameError::BadField("extFields"))?;
    dst.reserve(BINARY_FIXED_LEN + remark.len() + map_len);
    dst.put_i16(code);
    dst.put_u8(cmd.language.0);
    dst.put_i16(version);
    dst.put_i32(cmd.opaque);
    dst.put_i32(cmd.flag);
    dst.put_i32(remark_len);
    dst.put_slice(remark.as_bytes());
    dst.put_i32(map_len_i);
    for (k, v) in cmd.ext_fields.iter() {
        // Lengths were bounded above: keys fit i16, the whole map fits i32.
        dst.put_i16(k.len() as i16);
        dst.put_slice(k.as_bytes());
        dst.put_i32(v.len() as i32);
        dst.put_slice(v.as_bytes());
    }
    Ok(())
}

fn take<'a>(src: &mut &'a [u8], n: usize, field: &'static str) -> Result<&'a [u8], FrameError> {
    if src.len() < n {
        return Err(FrameError::Truncated(field));
    }
    let (head, tail) = src.split_at(n);
    *src = tail;
    Ok(head)
}

fn take_len(src: &mut &[u8], field: &'static str) -> Result<usize, FrameError> {
    let raw = take(src, 4, field)?;
    let n = (&raw[..]).get_i32();
    usize::try_from(n).map_err(|_| FrameError::BadField(field))
}

fn take_str<'a>(src: &mut &'a [u8], n: usize, field: &'static str) -> Result<&'a str, FrameError> {
    let raw = take(src, n, field)?;
    std::str::from_utf8(raw).map_err(|_| FrameError::InvalidUtf8(field))
}

/// Reads a ROCKETMQ binary header; every length is checked against what is left.
pub fn decode_binary(mut src: &[u8]) -> Result<RemotingCommand, FrameError> {
    let mut fixed = take(&mut src, 2 + 1 + 2 + 4 + 4, "fixed header")?;
    let code = i32::from(fixed.get_i16());
    let language = LanguageCode(fixed.get_u8());
    let version = i32::from(fixed.get_i16());
    let opaque = fixed.get_i32();
    let flag = fixed.get_i32();
    let remark_len = take_len(&mut src, "remark length")?;
    let remark = if remark_len == 0 {
        None
    } else {
        Some(take_str(&mut src, remark_len, "remark")?.to_string())
    };
    let map_len = take_len(&mut src, "extFields length")?;
    let mut map = take(&mut src, map_len, "extFields")?;
    let mut read = AsRead::new();
    while !map.is_empty() {
        let mut klen = take(&mut map, 2, "extFields key length")?;
        let klen = usize::try_from(klen.get_i16()).map_err(|_| FrameError::BadField("key"))?;
        let key = take_str(&mut map, klen, "extFields key")?;
        let vlen = take_len(&mut map, "extFields value length")?;
        let value = take_str(&mut map, vlen, "extFields value")?;
        // Java reads a zero-length string as null, so the field is absent.
        if !value.is_empty() && !key.is_empty() {
            read.push((key.into(), Some(value.into())));
        }
    }
    let ext_fields = Fields::from_read(read);
    Ok(RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        serialize_type: SerializeType::RocketMq,
        body: None,
    })
}
