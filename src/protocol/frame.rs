//! Length-prefixed frame codec (PROTOCOL.md §1).

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::command::{RemotingCommand, SerializeType};
use super::error::FrameError;
use super::header;

/// Java's default `frameMaxLength`: 16 MiB, counting the 4-byte length prefix.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Largest header length the 24-bit field of the header mark can carry.
pub(crate) const MAX_HEADER_LEN: usize = 0x00FF_FFFF;

/// Decoder and encoder of remoting frames.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameCodec {
    /// A codec that refuses frames larger than `max_frame` bytes (prefix included).
    pub fn new(max_frame: usize) -> Self {
        FrameCodec {
            max_frame: max_frame.max(8),
        }
    }

    #[cfg(any(test, feature = "test-util"))]
    /// The configured maximum frame size.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl Decoder for FrameCodec {
    type Item = RemotingCommand;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let length = i64::from(i32::from_be_bytes([src[0], src[1], src[2], src[3]]));
        if length < 4 {
            return Err(FrameError::TooShort(length));
        }
        // Checked before any buffer grows: a hostile prefix costs nothing.
        let total = length as usize + 4;
        if total > self.max_frame {
            return Err(FrameError::TooLong {
                len: total,
                max: self.max_frame,
            });
        }
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(total);
        frame.advance(4);
        let mark = frame.get_u32();
        let type_byte = (mark >> 24) as u8;
        let header_len = (mark & 0x00FF_FFFF) as usize;
        if header_len > frame.len() {
            return Err(FrameError::HeaderTooLong {
                header: header_len,
                available: frame.len(),
            });
        }
        let serialize_type = SerializeType::from_code(type_byte)
            .ok_or(FrameError::UnknownSerializeType(type_byte))?;
        let header_bytes = frame.split_to(header_len);
        let mut cmd = match serialize_type {
            SerializeType::Json => header::decode_json(&header_bytes)?,
            SerializeType::RocketMq => header::decode_binary(&header_bytes)?,
        };
        cmd.serialize_type = serialize_type;
        cmd.body = (!frame.is_empty()).then(|| frame.freeze());
        Ok(Some(cmd))
    }
}

impl Encoder<RemotingCommand> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, cmd: RemotingCommand, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&cmd, dst)
    }
}

impl Encoder<&RemotingCommand> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), FrameError> {
        let body_len = cmd.body.as_ref().map_or(0, |b| b.len());
        self.encode_head(cmd, body_len, dst)?;
        if let Some(body) = &cmd.body {
            dst.extend_from_slice(body);
        }
        Ok(())
    }
}

impl FrameCodec {
    /// Writes the length prefix, header mark and header of `cmd` for a body of `body_len`
    /// bytes, without the body: the body goes out as its own (shared) buffer. Checks the
    /// whole frame against the maximum before anything is left in `dst`.
    pub fn encode_head(
        &self,
        cmd: &RemotingCommand,
        body_len: usize,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let start = dst.len();
        dst.put_u64(0); // length + mark, filled in below
        let header_start = dst.len();
        let written = match cmd.serialize_type {
            SerializeType::Json => header::encode_json(cmd, dst),
            SerializeType::RocketMq => header::encode_binary(cmd, dst),
        };
        let header_len = dst.len() - header_start;
        let total = 8 + header_len + body_len;
        let check = written.and(if header_len > MAX_HEADER_LEN {
            Err(FrameError::HeaderTooLong {
                header: header_len,
                available: MAX_HEADER_LEN,
            })
        } else if total > self.max_frame {
            Err(FrameError::TooLong {
                len: total,
                max: self.max_frame,
            })
        } else {
            Ok(())
        });
        if let Err(e) = check {
            dst.truncate(start);
            return Err(e);
        }
        let length = (total - 4) as u32;
        let mark = (u32::from(cmd.serialize_type.code()) << 24) | header_len as u32;
        dst[start..start + 4].copy_from_slice(&length.to_be_bytes());
        dst[start + 4..start + 8].copy_from_slice(&mark.to_be_bytes());
        Ok(())
    }
}

#[cfg(any(test, feature = "test-util"))]
/// Encodes one command into a fresh buffer.
pub fn encode_to_vec(cmd: &RemotingCommand) -> Result<Vec<u8>, FrameError> {
    let mut buf = BytesMut::new();
    FrameCodec::default().encode(cmd, &mut buf)?;
    Ok(buf.to_vec())
}

#[cfg(test)]
pub(crate) mod tests;
