//! Reading JSON as fastjson writes it: bare integer map keys (PROTOCOL.md §4.7).

use std::borrow::Cow;

/// Quotes every bare numeric object key (`{0:1}` → `{"0":1}`); strings are left untouched.
pub fn quote_numeric_keys(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut after_open = false; // last significant char was `{` or `,`
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if after_open && (c == b'-' || c.is_ascii_digit()) {
            let start = i;
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let mut k = j;
            while k < b.len() && b[k].is_ascii_whitespace() {
                k += 1;
            }
            if k < b.len() && b[k] == b':' {
                let s = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
                s.push_str(&text[copied..start]);
                s.push('"');
                s.push_str(&text[start..j]);
                s.push('"');
                copied = j;
            }
            after_open = false;
            i = j;
            continue;
        }
        after_open = c == b'{' || c == b',';
        if c == b'"' {
            in_string = true;
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut s) => {
            s.push_str(&text[copied..]);
            Cow::Owned(s)
        }
    }
}

/// Parses fastjson output into `T`.
pub fn from_fastjson<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(&quote_numeric_keys(text)),
        // Not UTF-8: let serde_json report where.
        Err(_) => serde_json::from_slice(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }
}
