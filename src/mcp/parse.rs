//! JSON-RPC parsing: only what the decision needs, borrowing strings from the body. Strict where another
//! decoder could read the body differently (duplicate keys, keys that fold to another under case
//! folding), bounded where an attacker could make it build a lot (batch members, `id` values).

use std::fmt;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

use crate::json::{skip_map, skip_seq};

/// `tools/call`.
pub(super) const TOOLS_CALL: &str = "tools/call";
/// `resources/read`.
pub(super) const RESOURCES_READ: &str = "resources/read";
/// `prompts/get`.
pub(super) const PROMPTS_GET: &str = "prompts/get";

/// What one message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target<'a> {
    Tool(&'a str),
    Resource(&'a str),
    Prompt(&'a str),
    Method(&'a str),
    /// A response from the client (`result` or `error`, no `method`).
    Response,
}

impl<'a> Target<'a> {
    pub(super) fn method(&self) -> Option<&'a str> {
        match *self {
            Self::Tool(_) => Some(TOOLS_CALL),
            Self::Resource(_) => Some(RESOURCES_READ),
            Self::Prompt(_) => Some(PROMPTS_GET),
            Self::Method(method) => Some(method),
            Self::Response => None,
        }
    }

    pub(super) fn name(&self) -> Option<&'a str> {
        match *self {
            Self::Tool(name) | Self::Resource(name) | Self::Prompt(name) => Some(name),
            Self::Method(_) | Self::Response => None,
        }
    }
}

/// A JSON string, or something else that was present.
#[derive(Debug, Default)]
enum Field<'a> {
    #[default]
    Absent,
    Str(std::borrow::Cow<'a, str>),
    NotString,
}

impl Field<'_> {
    fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Absent | Self::NotString => None,
        }
    }
}

/// The fields of `params` the decision reads.
#[derive(Debug, Default)]
struct Params<'a> {
    name: Field<'a>,
    uri: Field<'a>,
    /// A key such as `Name` or `URI` that another decoder could take for `name` or `uri`.
    lookalike: bool,
}

#[derive(Debug, Default)]
pub(super) struct Message<'a> {
    /// The `id`, when it is one JSON-RPC allows (a string, a number, `null`); anything else is read
    /// without being kept (a huge array must not become a huge tree of values).
    pub(super) id: Option<Value>,
    method: Field<'a>,
    params: Params<'a>,
    has_params: bool,
    is_response: bool,
}

impl Message<'_> {
    pub(super) fn target(&self) -> Result<Target<'_>, &'static str> {
        let method = match &self.method {
            Field::Absent if self.is_response => return Ok(Target::Response),
            Field::Absent => return Err("Invalid Request: neither a request nor a response"),
            Field::NotString => return Err("Invalid Request: method must be a string"),
            Field::Str(method) => &**method,
        };
        if self.params.lookalike && matches!(method, TOOLS_CALL | RESOURCES_READ | PROMPTS_GET) {
            return Err(
                "Invalid Request: params has a key that differs from name or uri only in case",
            );
        }
        Ok(match method {
            TOOLS_CALL => Target::Tool(
                self.params
                    .name
                    .as_str()
                    .ok_or("Invalid Request: tools/call needs params.name as a string")?,
            ),
            RESOURCES_READ => Target::Resource(
                self.params
                    .uri
                    .as_str()
                    .ok_or("Invalid Request: resources/read needs params.uri as a string")?,
            ),
            PROMPTS_GET => Target::Prompt(
                self.params
                    .name
                    .as_str()
                    .ok_or("Invalid Request: prompts/get needs params.name as a string")?,
            ),
            other => Target::Method(other),
        })
    }
}

/// A whole body: one message or a batch.
pub(super) enum Incoming<'a> {
    Single(Message<'a>),
    Batch(Vec<Message<'a>>),
}

/// The object keys the decision reads.
enum Key {
    Id,
    Method,
    Params,
    Result,
    Error,
    Name,
    Uri,
    /// Not `id`, `method` or `params`, but equal to one of them under case folding.
    LikeMessageField,
    /// Not `name` or `uri`, but equal to one of them under case folding.
    LikeParamsField,
    Other,
}

/// Does `key` equal the lowercase ASCII `target` when compared case-insensitively, the way lenient
/// decoders match keys (Go's `encoding/json` also folds `ſ` to `s` and the Kelvin sign to `k`)?
fn folds_to(key: &str, target: &str) -> bool {
    let mut folded = key.chars().map(|c| match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    target.chars().all(|t| folded.next() == Some(t)) && folded.next().is_none()
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "id" => Key::Id,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    "name" => Key::Name,
                    "uri" => Key::Uri,
                    _ if ["id", "method", "params"].iter().any(|t| folds_to(key, t)) => {
                        Key::LikeMessageField
                    }
                    _ if ["name", "uri"].iter().any(|t| folds_to(key, t)) => Key::LikeParamsField,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(v.to_owned().into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Field<'de>, E> {
                Ok(Field::Str(v.into()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field<'de>, A::Error> {
                skip_seq(seq).map(|()| Field::NotString)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field<'de>, A::Error> {
                skip_map(map).map(|()| Field::NotString)
            }
        }
        deserializer.deserialize_any(FieldVisitor)
    }
}

impl<'de> Deserialize<'de> for Params<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params<'de>, A::Error> {
                let mut params = Params::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = match key {
                        Key::Name => &mut params.name,
                        Key::Uri => &mut params.uri,
                        Key::LikeParamsField => {
                            params.lookalike = true;
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if !slot.is_absent() {
                        return Err(de::Error::custom("duplicate key in params"));
                    }
                    *slot = map.next_value()?;
                }
                Ok(params)
            }
            // Not an object: nothing to read (a method that needs a name then fails).
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params<'de>, A::Error> {
                skip_seq(seq).map(|()| Params::default())
            }
        }
        deserializer.deserialize_any(ParamsVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message<'de>, A::Error> {
        let mut message = Message::default();
        let mut seen_id = false;
        while let Some(key) = map.next_key::<Key>()? {
            let duplicate = match key {
                Key::Id => std::mem::replace(&mut seen_id, true),
                Key::Method => !message.method.is_absent(),
                Key::Params => std::mem::replace(&mut message.has_params, true),
                _ => false,
            };
            if duplicate {
                return Err(de::Error::custom("duplicate key in a JSON-RPC message"));
            }
            if matches!(key, Key::LikeMessageField) {
                // `Method` next to `method`: decoders that fold case could read another method.
                return Err(de::Error::custom("ambiguous key in a JSON-RPC message"));
            }
            match key {
                Key::Id => message.id = map.next_value::<Id>()?.0,
                Key::Method => message.method = map.next_value()?,
                Key::Params => message.params = map.next_value()?,
                Key::Result | Key::Error => {
                    message.is_response = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Name
                | Key::Uri
                | Key::LikeMessageField
                | Key::LikeParamsField
                | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(message)
    }
}

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

/// A JSON-RPC `id` as kept: a string, a number or `null`; `None` for any other value (consumed, not kept).
struct Id(Option<Value>);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC id")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(Some(Value::String(v.to_owned()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(Some(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(Some(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
                Ok(Id(Some(v.into())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Id, E> {
                Ok(Id(Some(Value::Null)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Id, A::Error> {
                skip_seq(seq).map(|()| Id(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Id, A::Error> {
                skip_map(map).map(|()| Id(None))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// Why a body could not be read as JSON-RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParseError {
    /// Not JSON at all.
    Syntax,
    /// JSON, but not a well-formed JSON-RPC message or batch.
    Shape,
    /// A batch with more members than allowed.
    TooManyMembers,
}

/// Parses a body as one message or a batch of at most `max_batch_members` messages (a longer batch is
/// refused as soon as its first extra member starts, before anything more is built).
pub(super) fn parse(body: &[u8], max_batch_members: usize) -> Result<Incoming<'_>, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut too_many = false;
    let parsed = IncomingSeed {
        max_batch_members,
        too_many: &mut too_many,
    }
    .deserialize(&mut deserializer)
    .and_then(|incoming| deserializer.end().map(|()| incoming));
    match parsed {
        Ok(incoming) => Ok(incoming),
        Err(_) if too_many => Err(ParseError::TooManyMembers),
        Err(error) if error.classify() == serde_json::error::Category::Data => {
            Err(ParseError::Shape)
        }
        Err(_) => Err(ParseError::Syntax),
    }
}

struct IncomingSeed<'f> {
    max_batch_members: usize,
    too_many: &'f mut bool,
}

impl<'de> DeserializeSeed<'de> for IncomingSeed<'_> {
    type Value = Incoming<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Incoming<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IncomingSeed<'_> {
    type Value = Incoming<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Incoming<'de>, A::Error> {
        MessageVisitor.visit_map(map).map(Incoming::Single)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming<'de>, A::Error> {
        let cap = self.max_batch_members;
        let mut messages = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(cap).min(64));
        while let Some(message) = seq.next_element::<Message<'de>>()? {
            if messages.len() == cap {
                *self.too_many = true;
                return Err(de::Error::custom("too many batch members"));
            }
            messages.push(message);
        }
        Ok(Incoming::Batch(messages))
    }
}

#[cfg(test)]
mod tests;
