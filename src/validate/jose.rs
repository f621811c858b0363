//! The allocation-free parts of reading a compact JWS: base64url into stack buffers, the JOSE header in one
//! pass (borrowing its strings), the unverified `iss` for routing, and an inline `kid`.
//!
//! The header and claims parsers accept exactly what `json::parse_object` (a strict `Map<String, Value>`)
//! accepts: the same JSON, no duplicate member name. Members they do not read are checked by
//! [`SkipValue`] the way `Value` would parse them (strings: UTF-8, escapes, surrogate pairs; numbers; the
//! same nesting limit), without building anything; so a payload they accept is one `parse_object` accepts,
//! and it can be kept as bytes and turned into `Value`s later, only if a handler asks for them.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::validate::jwks::MAX_KID_LEN;

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
struct Name<'a>(Cow<'a, str>);

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

/// Any JSON value, checked as `serde_json::Value` would parse it, and dropped: nothing is allocated.
pub(crate) struct SkipValue;

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<SkipValue>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
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

/// Member names seen so far: the known ones as flags, others in a set built on demand, so a duplicate is
/// found in linear time whatever the number of members.
#[derive(Default)]
struct Seen<'a> {
    known: u32,
    others: Option<HashSet<Cow<'a, str>>>,
}

impl<'a> Seen<'a> {
    /// `false` if `name` was seen before.
    fn insert_known(&mut self, bit: u32) -> bool {
        let fresh = self.known & bit == 0;
        self.known |= bit;
        fresh
    }

    fn insert_other(&mut self, name: Cow<'a, str>) -> bool {
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
    /// A `cnf` (confirmation, RFC 7800) member is present: the token is sender-constrained.
    pub(crate) cnf: bool,
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
struct NumberVisitor;

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
struct Strings<'a>(Vec<Cow<'a, str>>, bool);

/// A string, an array (its strings), or another value.
enum StrOrArray<'a> {
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
enum Known {
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
                        Some(Known::Cnf) => {
                            claims.cnf = true;
                            access.next_value::<SkipValue>()?;
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Option<Header<'_>> {
        Header::parse(json.as_bytes())
    }

    #[test]
    fn header_is_as_strict_as_a_value_map() {
        let h = header(r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#).unwrap();
        assert_eq!(h.alg, Member::Str("RS256".into()));
        assert_eq!(h.typ, Member::Str("at+jwt".into()));
        assert_eq!(h.kid, Member::Str("k1".into()));
        assert!(!h.crit);
        // Escaped names and values are unescaped (and still compared for duplicates).
        let h = header(r#"{"\u0061lg":"R\u0053256","x":[1,{"a":null}],"crit":false}"#).unwrap();
        assert_eq!(h.alg, Member::Str("RS256".into()));
        assert!(h.crit);
        assert_eq!(h.kid, Member::Absent);
        assert_eq!(header(r#"{"alg":1}"#).unwrap().alg, Member::Other);
        for bad in [
            r#"{"alg":"RS256","alg":"none"}"#,
            r#"{"alg":"RS256","\u0061lg":"none"}"#,
            r#"{"x":1,"x":2}"#,
            r#"{"crit":1,"crit":2}"#,
            r#"{"alg":"RS256"} x"#,
            r#"["alg"]"#,
            r#"{"alg":"\ud800"}"#,
            r#"{"x":"\ud800"}"#,
            "{\"x\":\"\u{1}\"}",
            "",
        ] {
            assert!(header(bad).is_none(), "{bad}");
            assert_eq!(
                header(bad).is_none(),
                crate::json::parse_object(bad.as_bytes()).is_none(),
                "{bad}"
            );
        }
        assert!(Header::parse(b"{\"x\":\"\xff\"}").is_none());
    }

    #[test]
    fn claims_are_as_strict_as_a_value_map() {
        let json = br#"{"iss":"https://i","aud":["a","b"],"exp":1.5e9,"nbf":1,"iat":-1,"sub":"s",
            "azp":"c","scope":"x y","scp":["z",1],"jti":"j","custom":{"a":[1,"\u00e9"]}}"#;
        let c = Claims::parse(json).unwrap();
        assert_eq!(c.iss, Member::Str("https://i".into()));
        assert_eq!(c.aud, Audience::Many(vec!["a".into(), "b".into()]));
        assert_eq!(
            (c.exp, c.nbf, c.iat),
            (Date::At(1.5e9), Date::At(1.0), Date::At(-1.0))
        );
        assert_eq!(
            (c.sub, c.azp),
            (Member::Str("s".into()), Member::Str("c".into()))
        );
        assert_eq!(c.client_id, Member::Absent);
        assert_eq!(c.scp, Scp::Many(vec!["z".into()]));
        let c = Claims::parse(br#"{"aud":["a",1],"exp":"1"}"#).unwrap();
        assert_eq!((c.aud, c.exp), (Audience::Invalid, Date::Invalid));
        assert_eq!(
            Claims::parse(br#"{"aud":{}}"#).unwrap().aud,
            Audience::Invalid
        );
        for bad in [
            &br#"{"iss":"a","iss":"a"}"#[..],
            br#"{"x":1,"x":1}"#,
            br#"{"jti":1,"jti":1}"#,
            br#"{"x":"\ud800"}"#,
            br#"{"x":["\udc00"]}"#,
            br#"{"x":{"\ud800":1}}"#,
            b"{\"x\":\"\xff\"}",
            br#"{"x":01}"#,
            br#"[]"#,
            br#"{"a":1}{}"#,
        ] {
            assert!(
                Claims::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(
                crate::json::parse_object(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            Claims::parse(deep.as_bytes()).is_none(),
            crate::json::parse_object(deep.as_bytes()).is_none()
        );
    }

    #[test]
    fn issuer_for_routing() {
        assert_eq!(
            issuer_of(br#"{"sub":"a","iss":"https://i","n":[1,2]}"#),
            Ok(Some("https://i".into()))
        );
        assert_eq!(issuer_of(br#"{"iss":1}"#), Ok(None));
        assert_eq!(issuer_of(br#"{}"#), Ok(None));
        assert_eq!(issuer_of(br#"{"iss":"a","iss":"b"}"#), Err(()));
        assert_eq!(issuer_of(b"{\"x\":\"\xff\",\"iss\":\"a\"}"), Err(()));
        assert_eq!(issuer_of(b"[1]"), Err(()));
    }

    #[test]
    fn stack_or_heap_decoding() {
        let mut stack = [0u8; 4];
        let mut heap = Vec::new();
        assert_eq!(
            decode_b64(b"YWJj", &mut stack, &mut heap),
            Some(&b"abc"[..])
        );
        let mut heap = Vec::new();
        assert_eq!(
            decode_b64(b"YWJjZGVmZ2g", &mut stack, &mut heap),
            Some(&b"abcdefgh"[..])
        );
        let mut heap = Vec::new();
        assert_eq!(decode_b64(b"YWJj=", &mut stack, &mut heap), None);
        assert_eq!(decode_b64(b"Y", &mut [0u8; 8], &mut Vec::new()), None);
    }

    #[test]
    fn kid_inline() {
        assert_eq!(Kid::new("abc").unwrap().as_str(), "abc");
        for len in [0, 1, INLINE_KID_LEN, INLINE_KID_LEN + 1, MAX_KID_LEN] {
            let kid = "k".repeat(len);
            assert_eq!(Kid::new(&kid).unwrap().as_str(), kid);
        }
        assert!(Kid::new(&"k".repeat(MAX_KID_LEN + 1)).is_none());
    }
}
