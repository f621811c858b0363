//! The `content_digest` proof claim of the MCP DPoP extension draft: the SHA-256 of the raw request body,
//! written as an RFC 9530 `Content-Digest` member, `sha-256=:<base64>:`, so that a captured proof cannot
//! carry another body.
//!
//! ```
//! use bearer_guard::bind::dpop::ContentDigest;
//!
//! let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
//! let digest = ContentDigest::of(body);
//! assert_eq!(ContentDigest::parse(&digest.to_string()), Some(digest));
//! assert!(digest.matches(body));
//! assert!(!digest.matches(b"{}"));
//! assert_eq!(ContentDigest::parse("sha-512=:AAAA:"), None);
//! ```
//!
//! The guard checks the claim's syntax when it verifies the proof and puts the [`ContentDigest`] into the
//! request extensions; it never reads the body. The MCP layer, which reads it (bounded), compares the two
//! and refuses a mismatch with `401 invalid_dpop_proof`; with
//! [`McpScopes::require_content_digest`](crate::mcp::McpScopes::require_content_digest) it also refuses a
//! DPoP `POST` whose proof has no `content_digest`. Another stack reads the extension and calls
//! [`matches`](ContentDigest::matches) once it has the body.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The `content_digest` a verified DPoP proof carried (in the request extensions), or the digest of a body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ContentDigest([u8; 32]);

impl ContentDigest {
    /// The digest of `body`.
    pub fn of(body: &[u8]) -> Self {
        Self(Sha256::digest(body).into())
    }

    /// Parses `sha-256=:<base64 of 32 bytes>:` (RFC 9530 §2, the one member this claim carries); anything
    /// else, other algorithms included, is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let encoded = value.strip_prefix("sha-256=:")?.strip_suffix(':')?;
        // 32 bytes are 44 base64 characters with padding: a longer value is refused before decoding.
        if encoded.len() != 44 {
            return None;
        }
        let mut digest = [0u8; 32];
        let written = STANDARD.decode_slice(encoded, &mut digest).ok()?;
        (written == 32).then_some(Self(digest))
    }

    /// Whether `body` has this digest (compared in constant time).
    pub fn matches(&self, body: &[u8]) -> bool {
        let actual: [u8; 32] = Sha256::digest(body).into();
        bool::from(actual.ct_eq(&self.0))
    }

    /// The SHA-256 itself.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha-256=:{}:", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentDigest({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_sha_256_member_parses() {
        let good = ContentDigest::of(b"x").to_string();
        assert!(good.starts_with("sha-256=:") && good.ends_with(':'));
        assert!(ContentDigest::parse(&good).is_some());
        let encoded = &good[9..good.len() - 1];
        for bad in [
            String::new(),
            format!("sha-256={encoded}"),
            format!("sha-256=:{encoded}"),
            format!("SHA-256=:{encoded}:"),
            format!("sha-256=:{}:", &encoded[..40]),
            format!("sha-256=:{}:", encoded.replace('=', "A")),
            format!("sha-256=:{encoded}:, sha-512=:AAAA:"),
            format!("sha-256=:{}:", STANDARD.encode([0u8; 33])),
            "sha-256=:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=:".into(),
        ] {
            assert_eq!(ContentDigest::parse(&bad), None, "{bad}");
        }
    }
}
