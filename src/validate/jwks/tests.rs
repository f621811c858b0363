use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::*;
use crate::fetch::FetchError;
use crate::validate::alg::{Algorithm, AlgorithmSet};
use serde_json::json;

fn rsa_n() -> String {
    // 2048-bit modulus shape (the value need not be a real key for parsing).
    let mut n = vec![0xC1u8; 256];
    n[255] = 0x01;
    URL_SAFE_NO_PAD.encode(n)
}

fn parse(keys: Value) -> KeySet {
    KeySet::parse(
        json!({ "keys": keys }).to_string().as_bytes(),
        AlgorithmSet::all(),
        20,
    )
    .unwrap()
}

fn ec(crv: &str, len: usize) -> Value {
    json!({"kty":"EC","crv":crv,"x":URL_SAFE_NO_PAD.encode(vec![1u8; len]),"y":URL_SAFE_NO_PAD.encode(vec![2u8; len])})
}

#[test]
fn keys_are_bound_to_their_algorithms() {
    let mut p256 = ec("P-256", 32);
    p256["kid"] = json!("ec");
    let set = parse(json!([
        {"kty":"RSA","kid":"rsa","n":rsa_n(),"e":"AQAB"},
        {"kty":"RSA","kid":"rsa-ps","alg":"PS256","n":rsa_n(),"e":"AQAB"},
        p256,
    ]));
    assert_eq!(set.len(), 3);
    assert!(set.select(Some("rsa"), Algorithm::RS256).is_ok());
    assert!(set.select(Some("rsa"), Algorithm::PS512).is_ok());
    assert_eq!(
        set.select(Some("rsa"), Algorithm::ES256).unwrap_err(),
        KeyMiss::WrongAlgorithm
    );
    assert_eq!(
        set.select(Some("rsa-ps"), Algorithm::RS256).unwrap_err(),
        KeyMiss::WrongAlgorithm
    );
    assert!(set.select(Some("ec"), Algorithm::ES256).is_ok());
    assert_eq!(
        set.select(Some("ec"), Algorithm::ES384).unwrap_err(),
        KeyMiss::WrongAlgorithm
    );
    assert_eq!(
        set.select(Some("nope"), Algorithm::RS256).unwrap_err(),
        KeyMiss::NotFound
    );
    // Without kid: ES256 and RS256 have one candidate each, PS256 has two.
    assert!(set.select(None, Algorithm::ES256).is_ok());
    assert_eq!(
        set.select(None, Algorithm::RS256).unwrap().kid.as_deref(),
        Some("rsa")
    );
    assert_eq!(
        set.select(None, Algorithm::PS256).unwrap_err(),
        KeyMiss::Ambiguous
    );
    assert_eq!(
        set.select(None, Algorithm::EdDSA).unwrap_err(),
        KeyMiss::NotFound
    );
}

#[test]
fn unusable_keys_are_skipped() {
    let set = parse(json!([
        {"kty":"oct","k":"c2VjcmV0","alg":"HS256"},
        {"kty":"RSA","use":"enc","n":rsa_n(),"e":"AQAB"},
        {"kty":"RSA","key_ops":["encrypt"],"n":rsa_n(),"e":"AQAB"},
        {"kty":"RSA","n":rsa_n(),"e":"AQAB","d":"private"},
        {"kty":"RSA","n":URL_SAFE_NO_PAD.encode([0xC1u8; 128]),"e":"AQAB"},
        {"kty":"RSA","alg":"ES256","n":rsa_n(),"e":"AQAB"},
        {"kty":"RSA","alg":"HS256","n":rsa_n(),"e":"AQAB"},
        {"kty":"RSA","alg":"none","n":rsa_n(),"e":"AQAB"},
        ec("P-256", 31),
        ec("P-521", 66),
        {"kty":"OKP","crv":"X25519","x":URL_SAFE_NO_PAD.encode([1u8; 32])},
        {"kty":"RSA","kid":"k".repeat(MAX_KID_LEN + 1),"n":rsa_n(),"e":"AQAB"},
        "not an object",
    ]));
    assert_eq!(set.len(), 0);
}

#[test]
fn allow_list_restricts_keys() {
    let doc = json!({"keys":[{"kty":"RSA","kid":"r","n":rsa_n(),"e":"AQAB"}]}).to_string();
    let only_ps = KeySet::parse(doc.as_bytes(), AlgorithmSet::only(Algorithm::PS256), 10).unwrap();
    assert!(only_ps.select(Some("r"), Algorithm::PS256).is_ok());
    assert!(only_ps.select(Some("r"), Algorithm::RS256).is_err());
    let no_rsa = KeySet::parse(doc.as_bytes(), AlgorithmSet::only(Algorithm::ES256), 10).unwrap();
    assert_eq!(no_rsa.len(), 0);
}

#[test]
fn too_many_keys_or_not_a_jwks() {
    let many: Vec<Value> = (0..11).map(|_| ec("P-256", 32)).collect();
    let doc = json!({ "keys": many }).to_string();
    assert_eq!(
        KeySet::parse(doc.as_bytes(), AlgorithmSet::all(), 10).unwrap_err(),
        FetchError::TooLarge
    );
    assert_eq!(
        KeySet::parse(b"{\"nokeys\":1}", AlgorithmSet::all(), 10).unwrap_err(),
        FetchError::InvalidDocument
    );
}

#[test]
fn removal_is_noticed() {
    let a = parse(json!([{"kty":"RSA","kid":"a","n":rsa_n(),"e":"AQAB"}, ec("P-256", 32)]));
    let b = parse(json!([ec("P-256", 32)]));
    assert!(a.loses_keys_in(&b));
    assert!(!b.loses_keys_in(&a));
}
