//! The allocation-free parts of reading a compact JWS: base64url into stack buffers, the JOSE header in one
//! pass (borrowing its strings), the unverified `iss` for routing, and an inline `kid`.
//!
//! The header and claims parsers accept exactly what `json::parse_object` (a strict `Map<String, Value>`)
//! accepts: the same JSON, no duplicate member name. Members they do not read are checked by
//! `json::SkipValue` the way `Value` would parse them (strings: UTF-8, escapes, surrogate pairs; numbers; the
//! same nesting limit), without building anything; so a payload they accept is one `parse_object` accepts,
//! and it can be kept as bytes and turned into `Value`s later, only if a handler asks for them.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::json::{skip_map, skip_seq, SkipValue};
use crate::validate::jwks::MAX_KID_LEN;

pub(crate) use claims::{Audience, Claims, Cnf, Date, Scp};

/// Decodes base64url (no padding) into `stack` when it fits, else into `heap`. `None` when not base64url.
pub(crate) fn decode_b64<'b>(
    input: &[u8],
    stack: &'b mut [u8],
    heap: &'b mut Vec<u8>,
) -> Option<&'b [u8]> {
    // Each 4 characters carry 3 bytes; the estimate rounds up, so a fitting input always fits.
    if base64::decoded_len_estimate(input.len()) <= stack.len() {
        let len = URL_SAFE_NO_PAD.decode_slice(input, stack).ok()?;
        Some(&stack[..len])
    } else {
        *heap = URL_SAFE_NO_PAD.decode(input).ok()?;
        Some(heap.as_slice())
    }
}

/// A member of the header this crate reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) enum Member<'a> {
    /// Not in the header.
    #[default]
    Absent,
    /// A JSON string.
    Str(Cow<'a, str>),
    /// Any other JSON value.
    Other,
}

/// The JOSE header members the validator reads.
#[derive(Debug, Default)]
pub(crate) struct Header<'a> {
    pub(crate) alg: Member<'a>,
    pub(crate) typ: Member<'a>,
    pub(crate) kid: Member<'a>,
    /// Whether a `crit` member is present (whatever its value).
    pub(crate) crit: bool,
}

impl<'a> Header<'a> {
    /// Parses a decoded header; `None` when it is not a strict JSON object.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A member name, borrowed when it has no escape.
pub(super) struct Name<'a>(pub(super) Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = Member<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Member<'de>, E> {
                Ok(Member::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Member<'de>, E> {
                Ok(Member::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Member<'de>, E> {
                Ok(Member::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Member<'de>, A::Error> {
                skip_seq(seq).map(|()| Member::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Member<'de>, A::Error> {
                skip_map(map).map(|()| Member::Other)
            }
        }
        deserializer.deserialize_any(MemberVisitor)
    }
}

/// Member names seen so far: the known ones as flags, others in a set built on demand, so a duplicate is
/// found in linear time whatever the number of members.
#[derive(Default)]
pub(super) struct Seen<'a> {
    known: u32,
    others: Option<HashSet<Cow<'a, str>>>,
}

impl<'a> Seen<'a> {
    /// `false` if `name` was seen before.
    pub(super) fn insert_known(&mut self, bit: u32) -> bool {
        let fresh = self.known & bit == 0;
        self.known |= bit;
        fresh
    }

    pub(super) fn insert_other(&mut self, name: Cow<'a, str>) -> bool {
        self.others.get_or_insert_with(HashSet::new).insert(name)
    }
}

impl<'de> Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = Header<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Header<'de>, A::Error> {
                let mut header = Header::default();
                let mut seen = Seen::default();
                while let Some(Name(name)) = access.next_key::<Name<'de>>()? {
                    let fresh = match &*name {
                        "alg" => seen.insert_known(1),
                        "typ" => seen.insert_known(2),
                        "kid" => seen.insert_known(4),
                        "crit" => seen.insert_known(8),
                        _ => seen.insert_other(name.clone()),
                    };
                    if !fresh {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    match &*name {
                        "alg" => header.alg = access.next_value()?,
                        "typ" => header.typ = access.next_value()?,
                        "kid" => header.kid = access.next_value()?,
                        _ => {
                            header.crit |= name == "crit";
                            access.next_value::<SkipValue>()?;
                        }
                    }
                }
                Ok(header)
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

/// The `iss` member of a decoded JWT payload, for routing only: the validator the token is routed to
/// parses it strictly. `Ok(None)` when there is no string `iss`; `Err(())` when the payload is not a JSON
/// object (or names `iss` twice). Other members are skipped without being built.
pub(crate) fn issuer_of(payload: &[u8]) -> Result<Option<Cow<'_, str>>, ()> {
    struct Iss<'a>(Option<Cow<'a, str>>);
    impl<'de> Deserialize<'de> for Iss<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct IssVisitor;
            impl<'de> Visitor<'de> for IssVisitor {
                type Value = Iss<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Iss<'de>, A::Error> {
                    let mut iss = None;
                    let mut seen = false;
                    while let Some(Name(name)) = access.next_key::<Name<'de>>()? {
                        if name == "iss" {
                            if std::mem::replace(&mut seen, true) {
                                return Err(de::Error::custom("duplicate member"));
                            }
                            iss = match access.next_value::<Member<'de>>()? {
                                Member::Str(s) => Some(s),
                                _ => None,
                            };
                        } else {
                            access.next_value::<SkipValue>()?;
                        }
                    }
                    Ok(Iss(iss))
                }
            }
            deserializer.deserialize_map(IssVisitor)
        }
    }
    serde_json::from_slice::<Iss<'_>>(payload)
        .map(|iss| iss.0)
        .map_err(|_| ())
}

/// `kid`s up to this length (every provider's we know: 27 to 44 characters) are held inline.
const INLINE_KID_LEN: usize = 64;

/// A `kid` of at most [`MAX_KID_LEN`] bytes: inline when short (no allocation per token), else boxed.
#[derive(Clone)]
pub(crate) enum Kid {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KID_LEN],
    },
    Boxed(Box<str>),
}

impl Kid {
    /// `None` when `kid` is longer than [`MAX_KID_LEN`].
    pub(crate) fn new(kid: &str) -> Option<Self> {
        let len = kid.len();
        if len > MAX_KID_LEN {
            return None;
        }
        if len > INLINE_KID_LEN {
            return Some(Self::Boxed(kid.into()));
        }
        let mut bytes = [0u8; INLINE_KID_LEN];
        bytes[..len].copy_from_slice(kid.as_bytes());
        Some(Self::Inline {
            len: len as u8,
            bytes,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Built from a `&str` cut at its own length: always valid UTF-8.
            Self::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or("")
            }
            Self::Boxed(kid) => kid,
        }
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

mod claims;
#[cfg(test)]
mod tests;
