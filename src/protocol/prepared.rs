//! A request encoded once and sent many times (the heartbeat): between two sends only its
//! opaque changes, so a send writes one buffer — the frame's head — from the encoded parts,
//! and shares the body.

use std::io::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::command::{RemotingCommand, SerializeType};
use super::error::FrameError;
use super::frame::MAX_HEADER_LEN;
use super::header;

/// Where the opaque sits in a ROCKETMQ binary header: after code (2), language (1), version (2).
const BINARY_OPAQUE_AT: usize = 5;
/// The opaque, as the JSON header spells it when it is zero (its keys are in Java's order).
const JSON_OPAQUE: &[u8] = b",\"opaque\":0,";

/// A request's frame with the opaque left out.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The request as built (the opaque aside), for a send that must show it to an RPC hook.
    command: RemotingCommand,
    /// The header up to the opaque's value.
    before: Bytes,
    /// The header after the opaque's value.
    after: Bytes,
}

impl Prepared {
    /// Encodes `command`'s header once.
    pub fn new(command: RemotingCommand) -> Result<Self, FrameError> {
        let mut zero = command.clone();
        zero.opaque = 0;
        let mut head = BytesMut::new();
        let at = match command.serialize_type {
            SerializeType::Json => {
                header::encode_json(&zero, &mut head)?;
                // Ext-field values are strings and the remark comes later, quoted: the pattern
                // occurs once, as the header's own key.
                let at = head
                    .windows(JSON_OPAQUE.len())
                    .position(|w| w == JSON_OPAQUE)
                    .ok_or(FrameError::BadField("opaque"))?;
                (at + JSON_OPAQUE.len() - 2, at + JSON_OPAQUE.len() - 1)
            }
            SerializeType::RocketMq => {
                header::encode_binary(&zero, &mut head)?;
                (BINARY_OPAQUE_AT, BINARY_OPAQUE_AT + 4)
            }
        };
        // Room for the longest opaque ("0" becomes at most 11 characters; binary: same size),
        // so no send can overflow the header mark.
        let longest = head.len()
            + match command.serialize_type {
                SerializeType::Json => 10,
                SerializeType::RocketMq => 0,
            };
        if longest > MAX_HEADER_LEN {
            return Err(FrameError::HeaderTooLong {
                header: longest,
                available: MAX_HEADER_LEN,
            });
        }
        let head = head.freeze();
        Ok(Prepared {
            before: head.slice(..at.0),
            after: head.slice(at.1..),
            command,
        })
    }

    /// The request with `opaque`, as a command.
    pub fn command(&self, opaque: i32) -> RemotingCommand {
        let mut c = self.command.clone();
        c.opaque = opaque;
        c
    }

    /// The frame's head (length prefix, header mark, header) for `opaque`, in one buffer of
    /// its exact size, and the body shared; refused over `max_frame` as any frame is.
    pub fn frame(
        &self,
        opaque: i32,
        max_frame: usize,
    ) -> Result<(Bytes, Option<Bytes>), FrameError> {
        let body = self.command.body.clone();
        let body_len = body.as_ref().map_or(0, Bytes::len);
        // The opaque first, on the stack: the head is then allocated at its exact size, which
        // also lets it become `Bytes` without a second allocation.
        let mut digits = [0u8; 11];
        let opaque_bytes: &[u8] = match self.command.serialize_type {
            SerializeType::Json => {
                let mut w = std::io::Cursor::new(&mut digits[..]);
                // 11 bytes hold any i32 in decimal.
                let _ = write!(w, "{opaque}");
                let n = w.position() as usize;
                &digits[..n]
            }
            SerializeType::RocketMq => {
                digits[..4].copy_from_slice(&opaque.to_be_bytes());
                &digits[..4]
            }
        };
        let mut head =
            BytesMut::with_capacity(8 + self.before.len() + opaque_bytes.len() + self.after.len());
        head.put_u64(0);
        head.extend_from_slice(&self.before);
        head.extend_from_slice(opaque_bytes);
        head.extend_from_slice(&self.after);
        let header_len = head.len() - 8;
        let total = 4 + header_len + body_len;
        if total + 4 > max_frame {
            return Err(FrameError::TooLong {
                len: total + 4,
                max: max_frame,
            });
        }
        let mark = (u32::from(self.command.serialize_type.code()) << 24) | header_len as u32;
        head[..4].copy_from_slice(&(total as u32).to_be_bytes());
        head[4..8].copy_from_slice(&mark.to_be_bytes());
        Ok((head.freeze(), body))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::{FrameCodec, LanguageCode, DEFAULT_MAX_FRAME};
    use tokio_util::codec::Encoder;

    fn encoded(cmd: &RemotingCommand) -> Vec<u8> {
        let mut dst = BytesMut::new();
        FrameCodec::default().encode(cmd, &mut dst).unwrap();
        dst.to_vec()
    }

    fn sent(p: &Prepared, opaque: i32) -> Vec<u8> {
        let (head, body) = p.frame(opaque, DEFAULT_MAX_FRAME).unwrap();
        let mut v = head.to_vec();
        v.extend_from_slice(body.as_deref().unwrap_or_default());
        v
    }

    proptest! {
        /// The oracle: a prepared frame is byte for byte the frame of the same command with
        /// that opaque, whatever its fields, remark, body and header form.
        #[test]
        fn a_prepared_frame_is_the_encoded_command(
            code in any::<i16>(),
            version in any::<i16>(),
            opaque in any::<i32>(),
            flag in any::<i32>(),
            remark in proptest::option::of("[ -~\"\\\\]{1,12}"),
            fields in proptest::collection::btree_map("[a-zA-Z\"\\\\,:]{1,8}", "[ -~\"\\\\]{1,12}", 0..6),
            binary in any::<bool>(),
            body in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..40)),
        ) {
            let mut c = RemotingCommand::request(code.into());
            c.language = LanguageCode::RUST;
            c.version = version.into();
            c.flag = flag;
            c.remark = remark;
            c.ext_fields = fields.into_iter().collect();
            c.body = body.map(Into::into);
            if binary {
                c.serialize_type = SerializeType::RocketMq;
            }
            let p = Prepared::new(c.clone()).unwrap();
            c.opaque = opaque;
            prop_assert_eq!(sent(&p, opaque), encoded(&c));
            prop_assert_eq!(p.command(opaque), c);
        }
    }

    #[test]
    fn a_prepared_frame_over_the_limit_is_refused() {
        let mut c = RemotingCommand::request(322).with_body(vec![0u8; 100]);
        let p = Prepared::new(c.clone()).unwrap();
        c.opaque = 7;
        let exact = encoded(&c).len();
        assert!(p.frame(7, exact).is_ok());
        assert!(matches!(p.frame(7, exact - 1), Err(FrameError::TooLong { .. })));
    }
}
