//! The request metadata headers of MCP 2026-07-28 (`Mcp-Method`, `Mcp-Name`), checked against the body.

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::parse::Target;

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// Standard Base64 (RFC 4648 §4) with optional padding and canonical trailing bits, as `Mcp-Name`'s
/// `=?base64?…?=` form is written.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The single value of header `name`: `Ok(None)` when absent, `Err` when repeated.
fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    why: &'static str,
) -> Result<Option<&'h HeaderValue>, &'static str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value)),
        (Some(_), Some(_)) => Err(why),
    }
}

/// Printable ASCII and space only (what a plain `Mcp-Method` / `Mcp-Name` may hold).
fn is_plain(value: &[u8]) -> bool {
    value.iter().all(|b| (0x20..=0x7E).contains(b))
}

/// Does the `Mcp-Name` header value (plain or `=?base64?…?=`) name exactly `expected`?
fn name_matches(value: &[u8], expected: &str) -> bool {
    if !is_plain(value) {
        return false;
    }
    match value
        .strip_prefix(b"=?base64?")
        .and_then(|rest| rest.strip_suffix(b"?="))
    {
        Some(encoded) => BASE64
            .decode(encoded)
            .is_ok_and(|decoded| decoded == expected.as_bytes()),
        None => value == expected.as_bytes(),
    }
}

/// Checks `Mcp-Method` and `Mcp-Name`, when present, against one message.
pub(super) fn check_headers(headers: &HeaderMap, target: &Target<'_>) -> Result<(), &'static str> {
    const METHOD_MISMATCH: &str = "Header mismatch: Mcp-Method does not match the body's method";
    const NAME_MISMATCH: &str = "Header mismatch: Mcp-Name does not match the body's name or uri";
    if let Some(value) = single_header(headers, &MCP_METHOD, METHOD_MISMATCH)? {
        let matches = target.method().is_some_and(|method| {
            is_plain(value.as_bytes()) && value.as_bytes() == method.as_bytes()
        });
        if !matches {
            return Err(METHOD_MISMATCH);
        }
    }
    if let Some(value) = single_header(headers, &MCP_NAME, NAME_MISMATCH)? {
        let matches = target
            .name()
            .is_some_and(|name| name_matches(value.as_bytes(), name));
        if !matches {
            return Err(NAME_MISMATCH);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
        BASE64.decode(input).ok()
    }

    #[test]
    fn base64() {
        assert_eq!(
            decode_base64(b"SGVsbG8sIOS4lueVjA==").as_deref(),
            Some("Hello, 世界".as_bytes())
        );
        assert_eq!(
            decode_base64(b"IHBhZGRlZCA=").as_deref(),
            Some(&b" padded "[..])
        );
        assert_eq!(
            decode_base64(b"IHBhZGRlZCA").as_deref(),
            Some(&b" padded "[..])
        );
        assert_eq!(decode_base64(b"").as_deref(), Some(&b""[..]));
        assert!(decode_base64(b"IHBhZGRlZCA==").is_none());
        assert!(decode_base64(b"A").is_none());
        assert!(decode_base64(b"AB*=").is_none());
        assert!(
            decode_base64(b"AB==").is_none(),
            "non-canonical trailing bits"
        );
        assert!(name_matches(b"=?base64?IHBhZGRlZCA=?=", " padded "));
        assert!(name_matches(b"echo", "echo"));
        assert!(!name_matches(b"Echo", "echo"));
        assert!(!name_matches(b"ech\to", "ech\to"));
    }
}
