//! Strict JSON objects: duplicate member names are refused instead of silently keeping one of them
//! (RFC 7515 §4 and RFC 8725 for JOSE headers; the same rule for claims and introspection responses).

use std::fmt;

use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

#[cfg(any(feature = "jwt", feature = "mcp"))]
mod skip;
#[cfg(feature = "jwt")]
pub(crate) use skip::SkipValue;
#[cfg(any(feature = "jwt", feature = "mcp"))]
pub(crate) use skip::{skip_map, skip_seq};

/// A JSON object without duplicate member names.
pub(crate) struct StrictObject(pub(crate) Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if map.insert(name, value).is_some() {
                        return Err(A::Error::custom("duplicate member"));
                    }
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Parses `bytes` as a strict JSON object.
pub(crate) fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice::<StrictObject>(bytes)
        .ok()
        .map(|o| o.0)
}

/// A numeric date (RFC 7519 NumericDate): a finite JSON number, possibly fractional.
/// `Ok(None)` when absent, `Err(())` when present but not a number.
#[cfg_attr(not(feature = "introspection"), allow(dead_code))]
pub(crate) fn numeric_date(object: &Map<String, Value>, name: &str) -> Result<Option<f64>, ()> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()).map(Some).ok_or(()),
        Some(_) => Err(()),
    }
}

/// The largest NumericDate kept (9999-12-31T23:59:59Z); later ones are clamped so time arithmetic cannot
/// overflow on a (validly signed) absurd value.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// A NumericDate as whole seconds, clamped to `0..=MAX_NUMERIC_DATE`.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) fn clamp_date(seconds: f64) -> u64 {
    seconds.clamp(0.0, MAX_NUMERIC_DATE as f64) as u64
}

/// A clamped NumericDate as a `SystemTime`.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) fn system_time(seconds: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.min(MAX_NUMERIC_DATE))
}

/// Does the `aud` member name one of `accepted`? `Ok(None)` when there is no `aud`; `Err(())` when it is
/// neither a string nor an array of strings.
#[cfg_attr(not(feature = "introspection"), allow(dead_code))]
pub(crate) fn audience_matches(
    object: &Map<String, Value>,
    accepted: &[String],
) -> Result<Option<bool>, ()> {
    let names_us = |aud: &str| accepted.iter().any(|a| a == aud);
    match object.get("aud") {
        None => Ok(None),
        Some(Value::String(aud)) => Ok(Some(names_us(aud))),
        Some(Value::Array(auds)) => {
            let mut found = false;
            for aud in auds {
                match aud {
                    Value::String(aud) => found |= names_us(aud),
                    _ => return Err(()),
                }
            }
            Ok(Some(found))
        }
        Some(_) => Err(()),
    }
}

/// The `aud` member as a list of strings.
pub(crate) fn audiences(object: &Map<String, Value>) -> Vec<String> {
    match object.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// A string member.
#[cfg_attr(not(feature = "introspection"), allow(dead_code))]
pub(crate) fn string(object: &Map<String, Value>, name: &str) -> Option<String> {
    match object.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_are_refused() {
        assert!(parse_object(br#"{"a":1,"a":2}"#).is_none());
        assert!(parse_object(br#"{"a":1,"b":{"c":1}}"#).is_some());
        assert!(parse_object(b"[1]").is_none());
        assert!(parse_object(b"{\"a\":\"\xff\"}").is_none());
    }

    #[test]
    fn absurd_dates_are_clamped() {
        assert_eq!(clamp_date(f64::MAX), MAX_NUMERIC_DATE);
        assert_eq!(clamp_date(-5.0), 0);
        assert_eq!(clamp_date(1.9), 1);
        let _ = system_time(u64::MAX);
    }

    #[test]
    fn audiences_and_dates() {
        let accepted = ["https://r".to_owned()];
        let obj = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            audience_matches(&obj(json!({"aud":"https://r"})), &accepted),
            Ok(Some(true))
        );
        assert_eq!(
            audience_matches(&obj(json!({"aud":["x","https://r"]})), &accepted),
            Ok(Some(true))
        );
        assert_eq!(
            audience_matches(&obj(json!({"aud":["x"]})), &accepted),
            Ok(Some(false))
        );
        assert_eq!(audience_matches(&obj(json!({})), &accepted), Ok(None));
        assert_eq!(
            audience_matches(&obj(json!({"aud":[1]})), &accepted),
            Err(())
        );
        assert_eq!(audience_matches(&obj(json!({"aud":1})), &accepted), Err(()));
        assert_eq!(numeric_date(&obj(json!({"exp":1.5})), "exp"), Ok(Some(1.5)));
        assert_eq!(numeric_date(&obj(json!({"exp":"1"})), "exp"), Err(()));
        assert_eq!(numeric_date(&obj(json!({})), "exp"), Ok(None));
    }
}
