//! Skipping JSON values without building them (the JOSE header and claims readers, the MCP body scanner):
//! each value is checked as `serde_json::Value` would parse it, and nothing is allocated.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Any JSON value, checked as `serde_json::Value` would parse it, and dropped: nothing is allocated.
pub(crate) struct SkipValue;

pub(crate) fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<SkipValue>()?.is_some() {}
    Ok(())
}

pub(crate) fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    // Keys as strings (as `Value` reads them), values recursively.
    while map.next_key::<SkipStr>()?.is_some() {
        map.next_value::<SkipValue>()?;
    }
    Ok(())
}

/// A JSON string, checked and dropped.
struct SkipStr;

impl<'de> Deserialize<'de> for SkipStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = SkipStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SkipStr, E> {
                Ok(SkipStr)
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

impl<'de> Deserialize<'de> for SkipValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SkipVisitor;
        impl<'de> Visitor<'de> for SkipVisitor {
            type Value = SkipValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<SkipValue, E> {
                Ok(SkipValue)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SkipValue, E> {
                Ok(SkipValue)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SkipValue, E> {
                Ok(SkipValue)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SkipValue, E> {
                Ok(SkipValue)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SkipValue, E> {
                Ok(SkipValue)
            }
            fn visit_unit<E: de::Error>(self) -> Result<SkipValue, E> {
                Ok(SkipValue)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<SkipValue, A::Error> {
                skip_seq(seq).map(|()| SkipValue)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SkipValue, A::Error> {
                skip_map(map).map(|()| SkipValue)
            }
        }
        deserializer.deserialize_any(SkipVisitor)
    }
}
