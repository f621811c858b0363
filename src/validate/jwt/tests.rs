//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = JwtValidator::builder("https://auth.example.com/")   // the issuer, byte for byte
//!     .build()?;                                                      // discovery + JWKS, in the background
//! validator.ready().await?;                                           // optional: wait for the keys
//! let guard = BearerAuthLayer::builder()
//!     .resource("https://mcp.example.com/mcp")                         // also the audience tokens must name
//!     .authorization_server("https://auth.example.com/")
//!     .validator(validator)
//!     .build()?;
//! # let _ = guard; Ok(()) }
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::*;
use crate::error::InvalidToken;

#[test]
fn strict_objects_refuse_duplicates() {
    let dup = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","alg":"none"}"#);
    assert_eq!(decode_object(&dup).unwrap_err(), InvalidToken::Malformed);
    let ok = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"a"}"#);
    assert_eq!(decode_object(&ok).unwrap().len(), 2);
    let padded = format!("{ok}=");
    assert!(decode_object(&padded).is_err());
    let not_object = URL_SAFE_NO_PAD.encode(b"[1]");
    assert!(decode_object(&not_object).is_err());
    let bad_utf8 = URL_SAFE_NO_PAD.encode(b"{\"a\":\"\xff\"}");
    assert!(decode_object(&bad_utf8).is_err());
}

#[test]
fn unverified_issuer_reads_only_iss() {
    let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://a.example"}"#);
    assert_eq!(
        unverified_issuer(&format!("h.{payload}.s")).unwrap(),
        "https://a.example"
    );
    assert!(unverified_issuer("opaque-token").is_err());
    assert!(unverified_issuer(&format!("h.{payload}.s.x")).is_err());
}
