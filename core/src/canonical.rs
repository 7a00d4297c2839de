//! Strict JSON parsing and OLPC canonical JSON, as TUF uses it for signing.
//!
//! Signed metadata is parsed strictly: floating-point numbers, integers outside the 64-bit range
//! and duplicate object keys are rejected, because implementations disagree on how to
//! canonicalize them. Strings must be in Unicode normalization form C, because olpc-cjson (tough)
//! normalizes strings before hashing while securesystemslib (python-tuf) does not: for NFC input
//! both produce the same bytes.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// Error for a document that could not be parsed or canonicalized.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error("string {0:?} is not in Unicode normalization form C; canonical JSON would differ between TUF implementations")]
    NotNfc(String),
}

/// Parses `bytes` as JSON, rejecting floats, out-of-range integers and duplicate object keys.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, CanonicalError> {
    let strict: Strict = serde_json::from_slice(bytes)?;
    Ok(strict.0)
}

/// Returns the OLPC canonical JSON encoding of `value`: keys sorted by code point, no
/// whitespace, only `"` and `\` escaped, integers only.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // parse_strict admits integers only; a float can still arrive through a Value built
            // in code, and canonical JSON has no encoding for it.
            if n.is_f64() {
                return Err(CanonicalError::Json(de::Error::custom(
                    "floating-point numbers have no canonical JSON encoding",
                )));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => write_string(s, out)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Sorted explicitly: serde_json's map order depends on its `preserve_order` feature.
            // A map that iterates in order already (the default) is written without sorting.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if !entries.windows(2).all(|pair| pair[0].0.as_bytes() < pair[1].0.as_bytes()) {
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out)?;
                out.push(b':');
                write_canonical(value, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    if !is_nfc(s) {
        return Err(CanonicalError::NotNfc(s.to_owned()));
    }
    out.push(b'"');
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b == b'"' || b == b'\\') {
        out.extend_from_slice(bytes);
    } else {
        for &byte in bytes {
            if byte == b'"' || byte == b'\\' {
                out.push(b'\\');
            }
            out.push(byte);
        }
    }
    out.push(b'"');
    Ok(())
}

fn is_nfc(s: &str) -> bool {
    if s.is_ascii() {
        return true;
    }
    match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => s.nfc().eq(s.chars()),
    }
}

/// A JSON value deserialized with the strict rules of [`parse_strict`].
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without floats or duplicate keys")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Err(E::custom(format_args!(
            "number {v} is not an integer in the 64-bit range; TUF metadata allows integers only"
        )))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Strict, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Strict(value) = access.next_value()?;
            match map.entry(key) {
                serde_json::map::Entry::Vacant(entry) => {
                    entry.insert(value);
                }
                serde_json::map::Entry::Occupied(entry) => {
                    return Err(de::Error::custom(format_args!("duplicate object key {:?}", entry.key())));
                }
            }
        }
        Ok(Strict(Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical_str(json: &str) -> String {
        let value = parse_strict(json.as_bytes()).unwrap();
        String::from_utf8(to_canonical(&value).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        assert_eq!(canonical_str(r#"{ "b": 1, "a": [true, null, "x"] }"#), r#"{"a":[true,null,"x"],"b":1}"#);
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        assert_eq!(canonical_str(r#"{"k":"a\"b\\c\nd/é"}"#), "{\"k\":\"a\\\"b\\\\c\nd/é\"}");
    }

    #[test]
    fn sorts_keys_by_code_point() {
        assert_eq!(canonical_str(r#"{"b":1,"B":2,"é":3,"z":4}"#), r#"{"B":2,"b":1,"z":4,"é":3}"#);
    }

    #[test]
    fn rejects_floats() {
        assert!(parse_strict(br#"{"version": 1.0}"#).is_err());
        assert!(parse_strict(br#"{"version": 1e3}"#).is_err());
    }

    #[test]
    fn rejects_integers_beyond_64_bits() {
        assert!(parse_strict(br#"{"version": 18446744073709551616}"#).is_err());
        assert!(parse_strict(br#"{"version": 18446744073709551615}"#).is_ok());
    }

    #[test]
    fn rejects_duplicate_keys() {
        let err = parse_strict(br#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate object key"), "{err}");
    }

    #[test]
    fn rejects_duplicate_keys_when_nested() {
        assert!(parse_strict(br#"{"x": [{"a": 1, "a": 1}]}"#).is_err());
    }

    #[test]
    fn rejects_non_nfc_strings() {
        // "e" followed by a combining acute accent is the NFD spelling of "é".
        let value = serde_json::json!({"name": "e\u{301}"});
        assert!(matches!(to_canonical(&value), Err(CanonicalError::NotNfc(_))));
    }

    #[test]
    fn rejects_deep_nesting_without_overflow() {
        let deep = "[".repeat(100_000);
        assert!(parse_strict(deep.as_bytes()).is_err());
    }
}
