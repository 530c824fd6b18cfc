//! Reading JSON as fastjson writes it: bare integer map keys (PROTOCOL.md §4.7).

use std::borrow::Cow;
use std::io::Read;

/// Quotes every bare numeric object key (`{0:1}` → `{"0":1}`); strings are left untouched.
pub fn quote_numeric_keys(text: &str) -> Cow<'_, str> {
    // Standard JSON has no bare keys: checked without allocating, so that the usual case
    // costs no copy of the text.
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        return Cow::Borrowed(text);
    }
    let mut r = QuotingReader::new(text.as_bytes());
    let mut out = Vec::with_capacity(text.len() + 16);
    // Reading from a slice cannot fail.
    let _ = r.read_to_end(&mut out);
    match (r.quoted, String::from_utf8(out)) {
        (true, Ok(s)) => Cow::Owned(s),
        // Only ASCII quotes are ever inserted, so the text stays UTF-8.
        _ => Cow::Borrowed(text),
    }
}

/// Parses fastjson output into `T`. Standard JSON (nearly every body) is parsed as is; text
/// with bare numeric keys is parsed again with the keys quoted on the fly, with no copy.
pub fn from_fastjson<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(bytes) {
        Err(e) if bare_key(&e) => quoting(bytes),
        done => done,
    }
}

/// Parses fastjson output read from what `open` opens (a file), never holding the whole text;
/// `open` is called again for the quoting pass when the text has bare numeric keys.
pub fn from_fastjson_reader<T, R>(
    mut open: impl FnMut() -> std::io::Result<R>,
) -> Result<T, serde_json::Error>
where
    T: serde::de::DeserializeOwned,
    R: Read,
{
    // serde_json reads one byte at a time: the buffer makes each of those a slice index.
    let plain =
        std::io::BufReader::with_capacity(64 * 1024, open().map_err(serde_json::Error::io)?);
    match serde_json::from_reader(plain) {
        Err(e) if bare_key(&e) => quoting(open().map_err(serde_json::Error::io)?),
        done => done,
    }
}

/// serde_json's complaint about a key that is not a string: what fastjson's bare keys cause.
fn bare_key(e: &serde_json::Error) -> bool {
    e.is_syntax() && e.to_string().starts_with("key must be a string")
}

fn quoting<T: serde::de::DeserializeOwned>(r: impl Read) -> Result<T, serde_json::Error> {
    let buffered = std::io::BufReader::with_capacity(64 * 1024, QuotingReader::new(r));
    let mut de = serde_json::Deserializer::from_reader(buffered);
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A reader that quotes bare numeric object keys in the JSON read through it.
pub struct QuotingReader<R> {
    inner: R,
    input: Box<[u8]>,
    /// Unread input is `input[pos..end]`.
    pos: usize,
    end: usize,
    /// Output not yet handed to the caller: a closed key, as long as its digits and spaces.
    out: Vec<u8>,
    out_pos: usize,
    in_string: bool,
    escaped: bool,
    /// The last significant byte was `{` or `,`: a key may start here.
    after_open: bool,
    /// A possible bare key: its digits, then the whitespace after them.
    key: Vec<u8>,
    key_digits: usize,
    in_key: bool,
    eof: bool,
    quoted: bool,
}

impl<R: Read> QuotingReader<R> {
    /// Wraps `inner`; reads it 64 KiB at a time.
    pub fn new(inner: R) -> Self {
        QuotingReader {
            inner,
            input: vec![0; 64 * 1024].into_boxed_slice(),
            pos: 0,
            end: 0,
            out: Vec::with_capacity(64),
            out_pos: 0,
            in_string: false,
            escaped: false,
            after_open: false,
            key: Vec::new(),
            key_digits: 0,
            in_key: false,
            eof: false,
            quoted: false,
        }
    }

    /// Ends a possible key at byte `next` (None at the end of input): quoted if `next` is `:`.
    fn close_key(&mut self, next: Option<u8>) {
        if next == Some(b':') {
            self.quoted = true;
            self.out.push(b'"');
            self.out.extend_from_slice(&self.key[..self.key_digits]);
            self.out.push(b'"');
            self.out.extend_from_slice(&self.key[self.key_digits..]);
        } else {
            self.out.extend_from_slice(&self.key);
        }
        self.key.clear();
        self.in_key = false;
        self.after_open = false;
    }

    fn step(&mut self, c: u8) {
        if self.in_key {
            if c.is_ascii_digit() && self.key_digits == self.key.len() {
                self.key.push(c);
                self.key_digits += 1;
                return;
            }
            if c.is_ascii_whitespace() {
                self.key.push(c);
                return;
            }
            self.close_key(Some(c));
        }
        if self.in_string {
            match (self.escaped, c) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            if self.after_open && (c == b'-' || c.is_ascii_digit()) {
                self.in_key = true;
                self.key.push(c);
                self.key_digits = 1;
                return;
            }
            self.after_open = c == b'{' || c == b',';
            self.in_string = c == b'"';
        }
        self.out.push(c);
    }
}

impl<R: Read> Read for QuotingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.out_pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.out_pos);
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            self.out.clear();
            self.out_pos = 0;
            if self.pos == self.end {
                if self.eof {
                    return Ok(0);
                }
                self.end = self.inner.read(&mut self.input)?;
                self.pos = 0;
                if self.end == 0 {
                    self.eof = true;
                    if self.in_key {
                        self.close_key(None);
                    }
                    continue;
                }
            }
            let mut written = 0;
            while self.pos < self.end && written < buf.len() {
                let c = self.input[self.pos];
                self.pos += 1;
                // Bytes that cannot change the state are copied straight through.
                let plain = if self.in_string {
                    !self.escaped && c != b'"' && c != b'\\'
                } else {
                    !self.in_key && !self.after_open && !matches!(c, b'"' | b'{' | b',')
                };
                if plain {
                    buf[written] = c;
                    written += 1;
                    continue;
                }
                self.step(c);
                let n = (buf.len() - written).min(self.out.len());
                buf[written..written + n].copy_from_slice(&self.out[..n]);
                written += n;
                if n < self.out.len() {
                    self.out_pos = n;
                    break;
                }
                self.out.clear();
            }
            if written > 0 {
                return Ok(written);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::Trickle;
    use proptest::prelude::*;

    #[test]
    fn quotes_bare_keys_only_outside_strings() {
        assert_eq!(
            quote_numeric_keys(r#"{0:"a",1:"b"}"#),
            r#"{"0":"a","1":"b"}"#
        );
        assert_eq!(
            quote_numeric_keys(r#"{"t@g":{0:12, -1 :3},"s":"{5:6}","n":[1,2]}"#),
            r#"{"t@g":{"0":12, "-1" :3},"s":"{5:6}","n":[1,2]}"#
        );
        assert_eq!(
            quote_numeric_keys(r#"{"a":"x\"{1:2"}"#),
            r#"{"a":"x\"{1:2"}"#
        );
        assert!(matches!(
            quote_numeric_keys(r#"{"a":[1, 2]}"#),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_key_split_across_reads_is_quoted() {
        let text = r#"{"m":{12 :"a", -3:4},"s":"{5:6}"}"#;
        for chunk in 1..text.len() {
            let v: serde_json::Value =
                from_fastjson_reader(|| Ok(Trickle(text.as_bytes(), chunk))).unwrap();
            assert_eq!(v["m"]["12"], "a");
            assert_eq!(v["m"]["-3"], 4);
            assert_eq!(v["s"], "{5:6}");
        }
    }

    proptest! {
        #[test]
        fn valid_json_is_unchanged(m in proptest::collection::btree_map("[a-z{}:,\"0-9 ]{0,8}", any::<i64>(), 0..5)) {
            let text = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(quote_numeric_keys(&text), text.as_str());
        }

        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = quote_numeric_keys(&s);
        }

        #[test]
        fn any_read_sizes_give_the_same_text(s in "[-0-9{}:,\"\\\\ a]{0,48}", chunk in 1usize..5) {
            let mut r = QuotingReader::new(Trickle(s.as_bytes(), chunk));
            let mut out = Vec::new();
            let mut buf = [0u8; 3];
            loop {
                let n = r.read(&mut buf[..chunk.min(3)]).unwrap();
                if n == 0 { break; }
                out.extend_from_slice(&buf[..n]);
            }
            prop_assert_eq!(String::from_utf8(out).unwrap(), quote_numeric_keys(&s).into_owned());
        }
    }
}
