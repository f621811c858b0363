//! One JWK parsed into a verification key, bound to the algorithms it may verify.

use crate::validate::alg::{Algorithm, AlgorithmSet};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

#[allow(unused_imports)]
use super::*;

/// One verification key, bound to its algorithms.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<Box<str>>,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) key: PublicKey,
    /// SHA-256 over the key material, to notice removals.
    pub(super) fingerprint: [u8; 32],
}

/// The public key material of one JWK, decoded from base64 once (per key-set load).
pub(crate) enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed SEC1 point `0x04 || x || y`.
    Ec(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// A key ready to verify signatures with, built once per key-set load.
///
/// With the `aws-lc-rs` feature: one aws-lc-rs `ParsedPublicKey` per algorithm the key is bound to, so a
/// verification parses nothing (jsonwebtoken would rebuild an RSA key from `n`/`e` on every call, +16–20%).
/// A key aws-lc-rs refuses to parse stays in the set and fails every verification (`BadSignature`),
/// exactly as it did when the key was parsed at each verification.
/// Without it (the `rust-crypto` build): jsonwebtoken's `DecodingKey` and its RustCrypto backend.
pub(crate) struct PublicKey {
    #[cfg(feature = "aws-lc-rs")]
    pub(super) parsed: [Option<aws_lc_rs::signature::ParsedPublicKey>; Algorithm::ALL.len()],
    #[cfg(not(feature = "aws-lc-rs"))]
    pub(super) key: jsonwebtoken::DecodingKey,
}

/// Signatures up to this size are decoded on the stack (RSA up to 4096 bits, every EC and EdDSA signature);
/// larger ones (RSA up to 8192 bits, the largest modulus the verifiers take) on the heap.
#[cfg(feature = "aws-lc-rs")]
pub(super) const SIGNATURE_STACK_BYTES: usize = 512;

#[cfg(feature = "aws-lc-rs")]
impl PublicKey {
    pub(crate) fn new(material: &Material, algorithms: AlgorithmSet) -> Option<Self> {
        use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
        let mut parsed: [Option<ParsedPublicKey>; Algorithm::ALL.len()] = Default::default();
        for alg in algorithms.iter() {
            parsed[alg as usize] = match (material, alg) {
                (Material::Rsa { n, e }, _) => {
                    let params: &'static sig::RsaParameters = match alg {
                        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                        _ => return None,
                    };
                    RsaPublicKeyComponents { n, e }
                        .to_parsed_public_key(params)
                        .ok()
                }
                (Material::Ec(point), Algorithm::ES256) => {
                    ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).ok()
                }
                (Material::Ec(point), Algorithm::ES384) => {
                    ParsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, point).ok()
                }
                (Material::Ed25519(x), Algorithm::EdDSA) => {
                    ParsedPublicKey::new(&sig::ED25519, x).ok()
                }
                _ => return None,
            };
        }
        Some(Self { parsed })
    }

    /// Does `signature_b64` (base64url, no padding) sign `message` under `alg`? No allocation.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &[u8]) -> bool {
        let Some(key) = &self.parsed[alg as usize] else {
            return false;
        };
        let mut stack = [0u8; SIGNATURE_STACK_BYTES];
        let mut heap = Vec::new();
        match crate::validate::jose::decode_b64(signature_b64, &mut stack, &mut heap) {
            Some(signature) => key.verify_sig(message, signature).is_ok(),
            None => false,
        }
    }
}

#[cfg(not(feature = "aws-lc-rs"))]
impl PublicKey {
    pub(crate) fn new(material: &Material, _algorithms: AlgorithmSet) -> Option<Self> {
        use jsonwebtoken::DecodingKey;
        let key = match material {
            Material::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            Material::Ec(point) => {
                let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
                let half = (point.len() - 1) / 2;
                DecodingKey::from_ec_components(&b64(&point[1..1 + half]), &b64(&point[1 + half..]))
                    .ok()?
            }
            Material::Ed25519(x) => {
                DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(x)).ok()?
            }
        };
        Some(Self { key })
    }

    /// Does `signature_b64` (base64url, no padding) sign `message` under `alg`?
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &[u8]) -> bool {
        let Ok(signature_b64) = std::str::from_utf8(signature_b64) else {
            return false;
        };
        matches!(
            jsonwebtoken::crypto::verify(signature_b64, message, &self.key, alg.to_jsonwebtoken()),
            Ok(true)
        )
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawJwk {
    pub(super) kty: String,
    #[serde(rename = "use")]
    pub(super) use_: Option<String>,
    pub(super) key_ops: Option<Vec<String>>,
    pub(super) alg: Option<String>,
    pub(super) kid: Option<String>,
    pub(super) crv: Option<String>,
    pub(super) n: Option<String>,
    pub(super) e: Option<String>,
    pub(super) x: Option<String>,
    pub(super) y: Option<String>,
    pub(super) d: Option<Value>,
}

fn b64(value: &Option<String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.as_deref()?).ok()
}

impl VerifyKey {
    /// Parses one JWK; `None` when the key must be ignored.
    pub(super) fn from_jwk(value: &Value, allowed: AlgorithmSet) -> Option<Self> {
        let jwk = RawJwk::deserialize(value).ok()?;
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        if jwk
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return None;
        }
        if jwk.d.is_some() {
            tracing::warn!("a JWK with private key material was published; ignored");
            return None;
        }
        if jwk.kid.as_ref().is_some_and(|kid| kid.len() > MAX_KID_LEN) {
            return None;
        }
        let (family, material, fingerprint_text) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => {
                let (n_b64, e_b64) = (jwk.n.as_deref()?, jwk.e.as_deref()?);
                // 2048 bits at least (RFC 7518 §3.3); leading zero octets are not counted.
                let n = b64(&jwk.n)?;
                let significant = n.iter().skip_while(|&&b| b == 0).count();
                let e = b64(&jwk.e).filter(|e| !e.is_empty() && e.len() <= 8);
                let (true, Some(e)) = (significant >= 256, e) else {
                    return None;
                };
                (
                    AlgorithmSet::RSA,
                    Material::Rsa { n, e },
                    format!("RSA.{n_b64}.{e_b64}"),
                )
            }
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (alg, len) = if crv == "P-256" {
                    (Algorithm::ES256, 32)
                } else {
                    (Algorithm::ES384, 48)
                };
                let (x, y) = (b64(&jwk.x)?, b64(&jwk.y)?);
                if x.len() != len || y.len() != len {
                    return None;
                }
                let (x_b64, y_b64) = (jwk.x.as_deref()?, jwk.y.as_deref()?);
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (
                    AlgorithmSet::only(alg),
                    Material::Ec(point),
                    format!("EC.{crv}.{x_b64}.{y_b64}"),
                )
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64(&jwk.x).filter(|x| x.len() == 32)?;
                let x_b64 = jwk.x.as_deref()?;
                (
                    AlgorithmSet::only(Algorithm::EdDSA),
                    Material::Ed25519(x),
                    format!("OKP.Ed25519.{x_b64}"),
                )
            }
            _ => return None,
        };
        let bound = match jwk.alg.as_deref() {
            // A JWK `alg` binds the key to exactly that algorithm; it must fit the key type.
            Some(name) => {
                let alg = Algorithm::from_name(name)?;
                if !family.contains(alg) {
                    return None;
                }
                AlgorithmSet::only(alg)
            }
            None => family,
        };
        let algorithms = bound.intersection(allowed);
        if algorithms.is_empty() {
            return None;
        }
        let key = PublicKey::new(&material, algorithms)?;
        let kid = jwk.kid.map(String::into_boxed_str);
        let mut hasher = Sha256::new();
        hasher.update(kid.as_deref().unwrap_or("").as_bytes());
        hasher.update([0]);
        hasher.update(fingerprint_text.as_bytes());
        Some(Self {
            kid,
            algorithms,
            key,
            fingerprint: hasher.finalize().into(),
        })
    }
}
