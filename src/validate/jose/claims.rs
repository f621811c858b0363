//! The registered claims of an access token (RFC 9068 §2.2) read in one pass, borrowing their strings,
//! with duplicate members refused and the others skipped without being built.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{Member, Name, Seen};
use crate::json::{skip_map, skip_seq, SkipValue};

/// A NumericDate claim (`exp`, `nbf`, `iat`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) enum Date {
    #[default]
    Absent,
    /// A finite JSON number.
    At(f64),
    /// Present, but not a number.
    Invalid,
}

/// The `aud` claim.
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Audience<'a> {
    #[default]
    Absent,
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
    /// Neither a string nor an array of strings.
    Invalid,
}

/// The `scp` claim (Okta, Entra ID).
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Scp<'a> {
    #[default]
    Absent,
    Str(Cow<'a, str>),
    /// The strings of an array (other items are ignored).
    Many(Vec<Cow<'a, str>>),
    Other,
}

/// The `cnf` claim.
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Cnf<'a> {
    #[default]
    Absent,
    /// An object: its `jkt` and `x5t#S256` strings, and whether it has any other member (or one of those
    /// two is not a string).
    Methods {
        jkt: Option<Cow<'a, str>>,
        x5t_s256: Option<Cow<'a, str>>,
        other: bool,
    },
    /// Not an object.
    Invalid,
}

impl<'de> Deserialize<'de> for Cnf<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CnfVisitor;
        impl<'de> Visitor<'de> for CnfVisitor {
            type Value = Cnf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Cnf<'de>, A::Error> {
                let (mut jkt, mut x5t_s256, mut other) = (None, None, false);
                let mut seen = Seen::default();
                while let Some(Name(name)) = access.next_key::<Name<'de>>()? {
                    if !seen.insert_other(name.clone()) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    let slot = match &*name {
                        "jkt" => &mut jkt,
                        "x5t#S256" => &mut x5t_s256,
                        _ => {
                            other = true;
                            access.next_value::<SkipValue>()?;
                            continue;
                        }
                    };
                    match access.next_value::<Member<'de>>()? {
                        Member::Str(value) => *slot = Some(value),
                        _ => other = true,
                    }
                }
                Ok(Cnf::Methods {
                    jkt,
                    x5t_s256,
                    other,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Cnf<'de>, A::Error> {
                skip_seq(seq).map(|()| Cnf::Invalid)
            }
            fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Cnf<'de>, E> {
                Ok(Cnf::Invalid)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Cnf<'de>, E> {
                Ok(Cnf::Invalid)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Cnf<'de>, E> {
                Ok(Cnf::Invalid)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Cnf<'de>, E> {
                Ok(Cnf::Invalid)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Cnf<'de>, E> {
                Ok(Cnf::Invalid)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Cnf<'de>, E> {
                Ok(Cnf::Invalid)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Cnf<'de>, E> {
                Ok(Cnf::Invalid)
            }
        }
        deserializer.deserialize_any(CnfVisitor)
    }
}

/// The claims the JWT validator reads, from one strict pass over the payload.
#[derive(Debug, Default)]
pub(crate) struct Claims<'a> {
    pub(crate) iss: Member<'a>,
    pub(crate) aud: Audience<'a>,
    pub(crate) exp: Date,
    pub(crate) nbf: Date,
    pub(crate) iat: Date,
    pub(crate) sub: Member<'a>,
    pub(crate) client_id: Member<'a>,
    pub(crate) azp: Member<'a>,
    pub(crate) cid: Member<'a>,
    pub(crate) appid: Member<'a>,
    pub(crate) scope: Member<'a>,
    pub(crate) scp: Scp<'a>,
    /// The `cnf` (confirmation, RFC 7800) member: the token is sender-constrained.
    pub(crate) cnf: Cnf<'a>,
}

impl<'a> Claims<'a> {
    /// Parses a decoded payload; `None` when `json::parse_object` would refuse it.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As `Number::as_f64` reads a `Value` (never non-finite from serde_json, but kept as the rule).
        let finite = |v: f64| {
            if v.is_finite() {
                Date::At(v)
            } else {
                Date::Invalid
            }
        };
        Ok(match deserializer.deserialize_any(NumberVisitor)? {
            Some(v) => finite(v),
            None => Date::Invalid,
        })
    }
}

/// `Some(number)` for a JSON number, `None` for any other (checked) value.
pub(super) struct NumberVisitor;

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<f64>, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<f64>, A::Error> {
        skip_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<f64>, A::Error> {
        skip_map(map).map(|()| None)
    }
}

/// The string items of a JSON array, and whether every item was a string.
pub(super) struct Strings<'a>(Vec<Cow<'a, str>>, bool);

/// A string, an array (its strings), or another value.
pub(super) enum StrOrArray<'a> {
    Str(Cow<'a, str>),
    Array(Strings<'a>),
    Other,
}

impl<'de> Deserialize<'de> for StrOrArray<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EitherVisitor;
        impl<'de> Visitor<'de> for EitherVisitor {
            type Value = StrOrArray<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrArray::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrArray::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrOrArray::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                let mut all_strings = true;
                while let Some(item) = seq.next_element::<Member<'de>>()? {
                    match item {
                        Member::Str(s) => items.push(s),
                        _ => all_strings = false,
                    }
                }
                Ok(StrOrArray::Array(Strings(items, all_strings)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrOrArray::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrOrArray::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrOrArray::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrOrArray::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrOrArray::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| StrOrArray::Other)
            }
        }
        deserializer.deserialize_any(EitherVisitor)
    }
}

/// The claims [`Claims`] reads, each with its bit in [`Seen`]. `jti` is only tracked for duplicates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    Iss,
    Aud,
    Exp,
    Nbf,
    Iat,
    Sub,
    ClientId,
    Azp,
    Cid,
    Appid,
    Scope,
    Scp,
    Jti,
    Cnf,
}

impl Known {
    /// One `match` on the name (the compiler dispatches on length and bytes, no list to scan).
    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "iss" => Self::Iss,
            "aud" => Self::Aud,
            "exp" => Self::Exp,
            "nbf" => Self::Nbf,
            "iat" => Self::Iat,
            "sub" => Self::Sub,
            "client_id" => Self::ClientId,
            "azp" => Self::Azp,
            "cid" => Self::Cid,
            "appid" => Self::Appid,
            "scope" => Self::Scope,
            "scp" => Self::Scp,
            "jti" => Self::Jti,
            "cnf" => Self::Cnf,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Claims<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ClaimsVisitor;
        impl<'de> Visitor<'de> for ClaimsVisitor {
            type Value = Claims<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Claims<'de>, A::Error> {
                let mut claims = Claims::default();
                let mut seen = Seen::default();
                while let Some(Name(name)) = access.next_key::<Name<'de>>()? {
                    let known = Known::of(&name);
                    let fresh = match known {
                        Some(claim) => seen.insert_known(1 << claim as u32),
                        None => seen.insert_other(name),
                    };
                    if !fresh {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    match known {
                        Some(Known::Iss) => claims.iss = access.next_value()?,
                        Some(Known::Aud) => {
                            claims.aud = match access.next_value::<StrOrArray<'de>>()? {
                                StrOrArray::Str(s) => Audience::One(s),
                                StrOrArray::Array(Strings(items, true)) => Audience::Many(items),
                                _ => Audience::Invalid,
                            }
                        }
                        Some(Known::Exp) => claims.exp = access.next_value()?,
                        Some(Known::Nbf) => claims.nbf = access.next_value()?,
                        Some(Known::Iat) => claims.iat = access.next_value()?,
                        Some(Known::Sub) => claims.sub = access.next_value()?,
                        Some(Known::ClientId) => claims.client_id = access.next_value()?,
                        Some(Known::Azp) => claims.azp = access.next_value()?,
                        Some(Known::Cid) => claims.cid = access.next_value()?,
                        Some(Known::Appid) => claims.appid = access.next_value()?,
                        Some(Known::Scope) => claims.scope = access.next_value()?,
                        Some(Known::Scp) => {
                            claims.scp = match access.next_value::<StrOrArray<'de>>()? {
                                StrOrArray::Str(s) => Scp::Str(s),
                                StrOrArray::Array(Strings(items, _)) => Scp::Many(items),
                                StrOrArray::Other => Scp::Other,
                            }
                        }
                        Some(Known::Cnf) => claims.cnf = access.next_value()?,
                        Some(Known::Jti) | None => {
                            access.next_value::<SkipValue>()?;
                        }
                    }
                }
                Ok(claims)
            }
        }
        deserializer.deserialize_map(ClaimsVisitor)
    }
}
