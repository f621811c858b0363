//! Token extraction from the `Authorization` header (RFC 6750 §2.1, OAuth 2.1 §5.1).
//!
//! Only the header is read: tokens in the query string or a form body are never looked at (OAuth 2.1 §5.1
//! says a resource server MUST ignore query-string tokens). The scheme is matched case-insensitively; the
//! token must be `b64token` syntax; exactly one `Authorization` header is allowed; the size limit is
//! checked before any other work on the token.

use std::fmt;

use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::token::BearerToken;

/// The default largest token accepted, in bytes (8 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Scheme names longer than this are not looked at for a separating space (no scheme is this long).
const MAX_SCHEME_LEN: usize = 32;

/// What the request carries in the way of credentials.
#[derive(Debug)]
pub(crate) enum Credentials {
    /// No `Authorization` header at all.
    None,
    /// An `Authorization` header for another scheme (e.g. `Basic`): treated like no credentials.
    OtherScheme,
    /// A syntactically valid bearer token.
    Bearer(BearerToken),
    /// `Authorization: DPoP <token>` (RFC 9449 §7.1): a token that comes with a proof in the `DPoP` header.
    /// Only reported to guards that accept DPoP; for the others it is another scheme.
    #[cfg_attr(not(feature = "dpop"), allow(dead_code))]
    Dpop(BearerToken),
}

indexed_enum! {
/// Why the `Authorization` header could not be used (HTTP 400 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MalformedRequest {
    /// More than one `Authorization` header.
    MultipleAuthorizationHeaders,
    /// The bearer token is larger than the configured limit.
    TokenTooLarge,
    /// `Bearer` with no token, or a token that is not `b64token` syntax.
    MalformedToken,
}
}

impl MalformedRequest {
    /// The stable label of this reason, for logs, metrics and alerts (snake case; never renamed).
    pub const fn kind(self) -> &'static str {
        match self {
            Self::MultipleAuthorizationHeaders => "multiple_authorization_headers",
            Self::TokenTooLarge => "token_too_large",
            Self::MalformedToken => "malformed_credentials",
        }
    }

    /// A short, fixed, client-safe explanation.
    pub const fn description(self) -> &'static str {
        match self {
            Self::MultipleAuthorizationHeaders => {
                "The request has more than one Authorization header"
            }
            Self::TokenTooLarge => "The bearer token exceeds the size limit",
            Self::MalformedToken => "The Authorization header is not a valid Bearer credential",
        }
    }
}

impl fmt::Display for MalformedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Is `b` one of `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`? Branch-free, so that checking a
/// whole token vectorizes.
#[inline(always)]
fn is_token_char(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    // `+`, `-`, `.`, `/` are 0x2B, 0x2D, 0x2E, 0x2F (`,` 0x2C is not allowed).
    let punct = (b.wrapping_sub(b'+') < 5) & (b != b',');
    letter | digit | punct | (b == b'_') | (b == b'~')
}

/// Is every byte a token character? Checked 32 bytes at a time without early exit inside a block (the
/// per-byte test is branch-free, so the compiler turns a block into a few vector instructions): a JWT's
/// ~700 bytes take tens of nanoseconds instead of one branchy step per byte.
fn all_token_chars(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        if !block.iter().fold(true, |ok, &b| ok & is_token_char(b)) {
            return false;
        }
    }
    blocks
        .remainder()
        .iter()
        .fold(true, |ok, &b| ok & is_token_char(b))
}

/// Is `bytes` an RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`?
pub(crate) fn is_b64token(bytes: &[u8]) -> bool {
    let body_len = bytes.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    body_len > 0 && all_token_chars(&bytes[..body_len])
}

/// Reads the bearer credential from `headers`.
#[cfg(test)]
pub(crate) fn extract(
    headers: &HeaderMap,
    max_token_bytes: usize,
) -> Result<Credentials, MalformedRequest> {
    extract_schemes(headers, max_token_bytes, false)
}

/// Reads the bearer (and, when `dpop`, the DPoP) credential from `headers`.
pub(crate) fn extract_schemes(
    headers: &HeaderMap,
    max_token_bytes: usize,
    dpop: bool,
) -> Result<Credentials, MalformedRequest> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Credentials::None);
    };
    if values.next().is_some() {
        return Err(MalformedRequest::MultipleAuthorizationHeaders);
    }
    let bytes = value.as_bytes();
    let scan = &bytes[..bytes.len().min(MAX_SCHEME_LEN + 1)];
    let (scheme, rest_start) = match scan.iter().position(|&b| b == b' ') {
        Some(space) => (&bytes[..space], space),
        None if bytes.len() <= MAX_SCHEME_LEN => (bytes, bytes.len()),
        None => return Ok(Credentials::OtherScheme),
    };
    let is_dpop = dpop && scheme.eq_ignore_ascii_case(b"dpop");
    if !is_dpop && !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(Credentials::OtherScheme);
    }
    let start = rest_start
        + bytes[rest_start..]
            .iter()
            .take_while(|&&b| b == b' ')
            .count();
    let token = &bytes[start..];
    if token.len() > max_token_bytes {
        return Err(MalformedRequest::TokenTooLarge);
    }
    if !is_b64token(token) {
        return Err(MalformedRequest::MalformedToken);
    }
    let token = BearerToken::from_header(value.clone(), start);
    Ok(if is_dpop {
        Credentials::Dpop(token)
    } else {
        Credentials::Bearer(token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn token(values: &[&str]) -> Result<String, String> {
        match extract(&headers(values), 64) {
            Ok(Credentials::Bearer(t)) => Ok(t.as_str().to_owned()),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(token(&[&format!("{scheme} abc")]), Ok("abc".into()));
        }
    }

    #[test]
    fn b64token_syntax() {
        assert_eq!(
            token(&["Bearer a-b.c_d~e+f/g=="]),
            Ok("a-b.c_d~e+f/g==".into())
        );
        assert_eq!(token(&["Bearer   spaced"]), Ok("spaced".into()));
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer ===",
            "Bearer a=b",
            "Bearer a b",
            "Bearer a,b",
            "Bearer a\"b",
        ] {
            assert_eq!(token(&[bad]), Err("MalformedToken".into()), "{bad}");
        }
    }

    #[test]
    fn token_characters_are_exactly_the_b64token_set() {
        for b in 0..=255u8 {
            let expected =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_token_char(b), expected, "{b:#04x}");
            // In a long token, at every position of a block and of the remainder.
            for at in [0, 31, 32, 63, 64, 70] {
                let mut token = vec![b'a'; 71];
                token[at] = b;
                assert_eq!(
                    is_b64token(&token),
                    expected || (b == b'=' && at == 70),
                    "{b:#04x} at {at}"
                );
            }
        }
    }

    #[test]
    fn other_schemes_and_absence() {
        assert_eq!(token(&[]), Err("None".into()));
        assert_eq!(token(&["Basic dXNlcjpwYXNz"]), Err("OtherScheme".into()));
        assert_eq!(token(&["Bearerx abc"]), Err("OtherScheme".into()));
        assert_eq!(token(&["DPoP abc"]), Err("OtherScheme".into()));
        let dpop = |v: &str| match extract_schemes(&headers(&[v]), 64, true) {
            Ok(Credentials::Dpop(t)) => Ok(t.as_str().to_owned()),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(dpop("DPoP abc"), Ok("abc".into()));
        assert_eq!(dpop("dpop  abc"), Ok("abc".into()));
        assert_eq!(dpop("DPoP a b"), Err("Err(MalformedToken)".into()));
        assert_eq!(token(&["Negotiate"]), Err("OtherScheme".into()));
        let long_scheme = "x".repeat(100);
        assert_eq!(token(&[&long_scheme]), Err("OtherScheme".into()));
    }

    #[test]
    fn duplicates_and_size() {
        assert_eq!(
            token(&["Bearer a", "Bearer a"]),
            Err("MultipleAuthorizationHeaders".into())
        );
        assert_eq!(
            token(&[&format!("Bearer {}", "a".repeat(64))]),
            Ok("a".repeat(64))
        );
        assert_eq!(
            token(&[&format!("Bearer {}", "a".repeat(65))]),
            Err("TokenTooLarge".into())
        );
        // The size check runs before the syntax check.
        assert_eq!(
            token(&[&format!("Bearer {}", " x".repeat(65))]),
            Err("TokenTooLarge".into())
        );
    }
}
