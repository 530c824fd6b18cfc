//! Header serialization: Java's JSON form and the compact ROCKETMQ binary form (PROTOCOL.md §2).

use std::collections::{BTreeMap, HashMap};

use bytes::{Buf, BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use super::command::{LanguageCode, RemotingCommand, SerializeType};
use super::frame::FrameError;

/// Fixed part of a binary header: code, language, version, opaque, flag, two length words.
const BINARY_FIXED_LEN: usize = 2 + 1 + 2 + 4 + 4 + 4 + 4;

/// JSON header as written: field order is Java's alphabetical order.
#[derive(Serialize)]
struct JsonHeaderOut<'a> {
    code: i32,
    #[serde(rename = "extFields", skip_serializing_if = "BTreeMap::is_empty")]
    ext_fields: &'a BTreeMap<String, String>,
    flag: i32,
    language: serde_json::Value,
    opaque: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<&'a str>,
    #[serde(rename = "serializeTypeCurrentRPC")]
    serialize_type: &'static str,
    version: i32,
}

/// JSON header as read: every key optional, unknown keys ignored.
#[derive(Deserialize)]
struct JsonHeaderIn {
    #[serde(default)]
    code: i32,
    #[serde(default, rename = "extFields")]
    ext_fields: Option<HashMap<String, serde_json::Value>>,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    language: Option<serde_json::Value>,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default)]
    version: i32,
}

/// Writes `cmd`'s header in JSON.
pub fn encode_json(cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), FrameError> {
    let language = match cmd.language.name() {
        Some(name) => serde_json::Value::from(name),
        None => serde_json::Value::from(cmd.language.0),
    };
    let out = JsonHeaderOut {
        code: cmd.code,
        ext_fields: &cmd.ext_fields,
        flag: cmd.flag,
        language,
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
        Some(serde_json::Value::String(s)) => {
            LanguageCode::from_name(&s).unwrap_or(LanguageCode::OTHER)
        }
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u8::try_from(v).ok())
            .map(LanguageCode)
            .unwrap_or(LanguageCode::OTHER),
        Some(_) => return Err(FrameError::BadField("language")),
    };
    let ext_fields = h
        .ext_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some((k, s)),
            other => Some((k, other.to_string())),
        })
        .collect();
    Ok(RemotingCommand {
        code: h.code,
        language,
        version: h.version,
        opaque: h.opaque,
        flag: h.flag,
        remark: h.remark.filter(|r| !r.is_empty()),
        ext_fields,
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
    for (k, v) in &cmd.ext_fields {
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
    for (k, v) in &cmd.ext_fields {
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

fn take_str(src: &mut &[u8], n: usize, field: &'static str) -> Result<String, FrameError> {
    let raw = take(src, n, field)?;
    String::from_utf8(raw.to_vec()).map_err(|_| FrameError::InvalidUtf8(field))
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
        Some(take_str(&mut src, remark_len, "remark")?)
    };
    let map_len = take_len(&mut src, "extFields length")?;
    let mut map = take(&mut src, map_len, "extFields")?;
    let mut ext_fields = BTreeMap::new();
    while !map.is_empty() {
        let mut klen = take(&mut map, 2, "extFields key length")?;
        let klen = usize::try_from(klen.get_i16()).map_err(|_| FrameError::BadField("key"))?;
        let key = take_str(&mut map, klen, "extFields key")?;
        let vlen = take_len(&mut map, "extFields value length")?;
        let value = take_str(&mut map, vlen, "extFields value")?;
        // Java reads a zero-length string as null, so the field is absent.
        if !value.is_empty() && !key.is_empty() {
            ext_fields.insert(key, value);
        }
    }
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
