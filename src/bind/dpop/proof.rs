//! Reading and checking one DPoP proof JWT (RFC 9449 §4.2, §4.3): header, public key, signature, claims.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::ProofError;
use crate::json::StrictObject;
use crate::validate::alg::{Algorithm, AlgorithmSet};
use crate::validate::jwks::{Material, PublicKey};

/// The largest proof read (an RSA-4096 `jwk` and the claims fit in a quarter of it).
pub(crate) const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The largest `jti` accepted (RFC 9449 §11.1: reject oversized ones rather than store them).
const MAX_JTI_BYTES: usize = 256;
/// JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a signed, well-formed proof says, before it is compared with the request.
pub(crate) struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the `jwk`.
    pub(crate) jkt: [u8; 32],
    pub(crate) claims: Map<String, Value>,
}

/// A JOSE header without duplicate members, whose `jwk` (if any) has none either.
struct StrictHeader(Map<String, Value>, Option<Map<String, Value>>);

impl<'de> Deserialize<'de> for StrictHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = StrictHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictHeader, A::Error> {
                let (mut map, mut jwk) = (Map::new(), None);
                while let Some(name) = access.next_key::<String>()? {
                    if name == "jwk" {
                        if jwk.is_some() {
                            return Err(A::Error::custom("duplicate member"));
                        }
                        jwk = Some(access.next_value::<StrictObject>()?.0);
                    } else if map.insert(name, access.next_value::<Value>()?).is_some() {
                        return Err(A::Error::custom("duplicate member"));
                    }
                }
                Ok(StrictHeader(map, jwk))
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

fn b64_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, ProofError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ProofError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| ProofError::Malformed)
}

/// Parses `proof`, checks `typ`, `alg` (against `allowed`), the public `jwk` and the signature.
pub(crate) fn verify_signed(proof: &str, allowed: AlgorithmSet) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let StrictHeader(header, jwk) = b64_json::<StrictHeader>(header_b64)?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(ProofError::WrongType);
    }
    if header.contains_key("crit") {
        return Err(ProofError::UnsupportedCritical);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .filter(|alg| allowed.contains(*alg))
        .ok_or(ProofError::DisallowedAlgorithm)?;
    let jwk = jwk.ok_or(ProofError::BadKey)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(ProofError::PrivateKey);
    }
    let (material, family, thumbprint_input) = public_material(&jwk)?;
    if !family.contains(alg)
        || jwk
            .get("alg")
            .is_some_and(|a| a.as_str().and_then(Algorithm::from_name) != Some(alg))
    {
        return Err(ProofError::DisallowedAlgorithm);
    }
    let key = PublicKey::new(&material, AlgorithmSet::only(alg)).ok_or(ProofError::BadKey)?;
    let signed = &proof[..header_b64.len() + 1 + claims_b64.len()];
    if !key.verify(alg, signed.as_bytes(), signature_b64.as_bytes()) {
        return Err(ProofError::BadSignature);
    }
    let StrictObject(claims) = b64_json::<StrictObject>(claims_b64)?;
    Ok(Proof {
        jkt: Sha256::digest(thumbprint_input.as_bytes()).into(),
        claims,
    })
}

/// The key material of a public JWK, the algorithms its type allows, and its RFC 7638 thumbprint input
/// (the required members, in lexicographic order, without white space).
fn public_material(
    jwk: &Map<String, Value>,
) -> Result<(Material, AlgorithmSet, String), ProofError> {
    let text = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or(ProofError::BadKey)
    };
    let bytes = |name: &str| -> Result<Vec<u8>, ProofError> {
        URL_SAFE_NO_PAD
            .decode(text(name)?)
            .map_err(|_| ProofError::BadKey)
    };
    match text("kty")? {
        "RSA" => {
            let (n, e) = (bytes("n")?, bytes("e")?);
            let significant = n.iter().skip_while(|&&b| b == 0).count();
            if significant < 256 || e.is_empty() || e.len() > 8 {
                return Err(ProofError::BadKey);
            }
            let input = format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                text("e")?,
                text("n")?
            );
            Ok((Material::Rsa { n, e }, AlgorithmSet::RSA, input))
        }
        "EC" => {
            let (crv, alg, len) = match text("crv")? {
                "P-256" => ("P-256", Algorithm::ES256, 32),
                "P-384" => ("P-384", Algorithm::ES384, 48),
                _ => return Err(ProofError::BadKey),
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != len || y.len() != len {
                return Err(ProofError::BadKey);
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let input = format!(
                r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                text("x")?,
                text("y")?
            );
            Ok((Material::Ec(point), AlgorithmSet::only(alg), input))
        }
        "OKP" if text("crv")? == "Ed25519" => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err(ProofError::BadKey);
            }
            let input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, text("x")?);
            Ok((
                Material::Ed25519(x),
                AlgorithmSet::only(Algorithm::EdDSA),
                input,
            ))
        }
        _ => Err(ProofError::BadKey),
    }
}

impl Proof {
    /// A string claim, or the error for a missing or non-string one.
    pub(crate) fn text(&self, name: &str) -> Result<&str, ProofError> {
        self.claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or(ProofError::MissingClaim)
    }

    /// The `jti`, bounded in size.
    pub(crate) fn jti(&self) -> Result<&str, ProofError> {
        let jti = self.text("jti")?;
        if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
            return Err(ProofError::MissingClaim);
        }
        Ok(jti)
    }

    /// The `iat`, a finite number.
    pub(crate) fn iat(&self) -> Result<f64, ProofError> {
        self.claims
            .get("iat")
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
            .ok_or(ProofError::MissingClaim)
    }
}

/// base64url(SHA-256(token)), the `ath` a proof for `token` carries (RFC 9449 §4.2).
pub(crate) fn token_hash(token: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(token)
}
