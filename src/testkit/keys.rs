//! Signing keys of the development issuer: generation, signing and public JWKs (aws-lc-rs).

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
    UnparsedPublicKey, VerificationAlgorithm,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::TestkitError;

/// A JWS signing algorithm the development issuer can generate keys for.
///
/// RSA keys are 2048 bits; every key gets its own freshly generated key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519 (`EdDSA`).
    EdDsa,
}

impl KeyAlg {
    /// Every supported algorithm, RSA ones first.
    pub const ALL: [KeyAlg; 9] = [
        KeyAlg::Rs256,
        KeyAlg::Rs384,
        KeyAlg::Rs512,
        KeyAlg::Ps256,
        KeyAlg::Ps384,
        KeyAlg::Ps512,
        KeyAlg::Es256,
        KeyAlg::Es384,
        KeyAlg::EdDsa,
    ];

    /// The JWS `alg` name (`"RS256"`, …, `"ES384"`, `"EdDSA"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyAlg::Rs256 => "RS256",
            KeyAlg::Rs384 => "RS384",
            KeyAlg::Rs512 => "RS512",
            KeyAlg::Ps256 => "PS256",
            KeyAlg::Ps384 => "PS384",
            KeyAlg::Ps512 => "PS512",
            KeyAlg::Es256 => "ES256",
            KeyAlg::Es384 => "ES384",
            KeyAlg::EdDsa => "EdDSA",
        }
    }

    /// Is this an RSA algorithm (`RS*` or `PS*`)?
    pub const fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyAlg::Rs256
                | KeyAlg::Rs384
                | KeyAlg::Rs512
                | KeyAlg::Ps256
                | KeyAlg::Ps384
                | KeyAlg::Ps512
        )
    }

    /// The prefix of generated key ids (`"rs256"`, `"eddsa"`, …).
    pub(crate) fn kid_prefix(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private signing key and its public JWK parameters (without `kid`, `use`, `alg`).
pub(crate) struct SigningKey {
    alg: KeyAlg,
    pair: Pair,
    public_params: serde_json::Map<String, Value>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn ec_params(crv: &str, point: &[u8], coord_len: usize) -> Result<Value, TestkitError> {
    // Uncompressed SEC1 point: 0x04 || x || y.
    if point.len() != 1 + 2 * coord_len || point.first() != Some(&0x04) {
        return Err(TestkitError::Crypto("unexpected EC public key encoding"));
    }
    let x = &point[1..1 + coord_len];
    let y = &point[1 + coord_len..];
    Ok(json!({ "kty": "EC", "crv": crv, "x": b64(x), "y": b64(y) }))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    match &bytes[start..] {
        [] => &bytes[bytes.len().saturating_sub(1)..],
        rest => rest,
    }
}

impl SigningKey {
    /// Generates a fresh key pair for `alg`.
    pub(crate) fn generate(alg: KeyAlg) -> Result<Self, TestkitError> {
        let (pair, params) = match alg {
            KeyAlg::Rs256
            | KeyAlg::Rs384
            | KeyAlg::Rs512
            | KeyAlg::Ps256
            | KeyAlg::Ps384
            | KeyAlg::Ps512 => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| TestkitError::Crypto("RSA key generation failed"))?;
                let public = pair.public_key();
                let n = strip_leading_zeros(public.modulus().big_endian_without_leading_zero());
                let e = strip_leading_zeros(public.exponent().big_endian_without_leading_zero());
                let params = json!({ "kty": "RSA", "n": b64(n), "e": b64(e) });
                (Pair::Rsa(pair), params)
            }
            KeyAlg::Es256 | KeyAlg::Es384 => {
                let (sig_alg, crv, len): (&'static EcdsaSigningAlgorithm, _, _) =
                    if alg == KeyAlg::Es256 {
                        (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                    } else {
                        (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                    };
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(sig_alg, &SystemRandom::new())
                    .map_err(|_| TestkitError::Crypto("ECDSA key generation failed"))?;
                let pair = EcdsaKeyPair::from_pkcs8(sig_alg, pkcs8.as_ref())
                    .map_err(|_| TestkitError::Crypto("ECDSA key parsing failed"))?;
                let params = ec_params(crv, pair.public_key().as_ref(), len)?;
                (Pair::Ecdsa(pair), params)
            }
            KeyAlg::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| TestkitError::Crypto("Ed25519 key generation failed"))?;
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                    .map_err(|_| TestkitError::Crypto("Ed25519 key parsing failed"))?;
                let params =
                    json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) });
                (Pair::Ed25519(pair), params)
            }
        };
        let public_params = match params {
            Value::Object(map) => map,
            _ => return Err(TestkitError::Crypto("unexpected JWK shape")),
        };
        Ok(Self {
            alg,
            pair,
            public_params,
        })
    }

    /// The algorithm this key signs with.
    pub(crate) fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// The public members of the JWK (`kty`, `crv`, `x`, `y` or `n`, `e`), nothing else.
    pub(crate) fn public_params(&self) -> &serde_json::Map<String, Value> {
        &self.public_params
    }

    /// The public JWK: key parameters plus `kid`, `use: "sig"` and (optionally) `alg`.
    pub(crate) fn public_jwk(&self, kid: &str, publish_alg: bool) -> Value {
        let mut jwk = self.public_params.clone();
        jwk.insert("kid".to_owned(), Value::String(kid.to_owned()));
        jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
        if publish_alg {
            jwk.insert(
                "alg".to_owned(),
                Value::String(self.alg.as_str().to_owned()),
            );
        }
        Value::Object(jwk)
    }

    /// The DER `SubjectPublicKeyInfo` of an RSA key (`None` for other key types).
    pub(crate) fn rsa_spki_der(&self) -> Option<Vec<u8>> {
        match &self.pair {
            Pair::Rsa(pair) => pair
                .public_key()
                .as_der()
                .ok()
                .map(|der| der.as_ref().to_vec()),
            _ => None,
        }
    }

    /// The DER `SubjectPublicKeyInfo` of any key type.
    pub(crate) fn spki_der(&self) -> Option<Vec<u8>> {
        match &self.pair {
            Pair::Rsa(_) => self.rsa_spki_der(),
            Pair::Ecdsa(pair) => pair
                .public_key()
                .as_der()
                .ok()
                .map(|der| der.as_ref().to_vec()),
            Pair::Ed25519(pair) => pair
                .public_key()
                .as_der()
                .ok()
                .map(|der| der.as_ref().to_vec()),
        }
    }

    /// Signs `message` with this key's algorithm; the JWS signature bytes.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TestkitError> {
        match &self.pair {
            Pair::Rsa(pair) => {
                let encoding: &'static dyn RsaEncoding = match self.alg {
                    KeyAlg::Rs256 => &signature::RSA_PKCS1_SHA256,
                    KeyAlg::Rs384 => &signature::RSA_PKCS1_SHA384,
                    KeyAlg::Rs512 => &signature::RSA_PKCS1_SHA512,
                    KeyAlg::Ps256 => &signature::RSA_PSS_SHA256,
                    KeyAlg::Ps384 => &signature::RSA_PSS_SHA384,
                    KeyAlg::Ps512 => &signature::RSA_PSS_SHA512,
                    _ => return Err(TestkitError::Crypto("RSA key with a non-RSA algorithm")),
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(encoding, &SystemRandom::new(), message, &mut sig)
                    .map_err(|_| TestkitError::Crypto("RSA signing failed"))?;
                Ok(sig)
            }
            Pair::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| TestkitError::Crypto("ECDSA signing failed")),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// Whether `signature` is this key's valid JWS signature of `message` (with this key's algorithm).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let (algorithm, public): (&'static dyn VerificationAlgorithm, &[u8]) =
            match (&self.pair, self.alg) {
                (Pair::Rsa(pair), alg) => {
                    let algorithm: &'static dyn VerificationAlgorithm = match alg {
                        KeyAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                        KeyAlg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                        KeyAlg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                        KeyAlg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                        KeyAlg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                        KeyAlg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                        _ => return false,
                    };
                    (algorithm, pair.public_key().as_ref())
                }
                (Pair::Ecdsa(pair), KeyAlg::Es256) => (
                    &signature::ECDSA_P256_SHA256_FIXED,
                    pair.public_key().as_ref(),
                ),
                (Pair::Ecdsa(pair), KeyAlg::Es384) => (
                    &signature::ECDSA_P384_SHA384_FIXED,
                    pair.public_key().as_ref(),
                ),
                (Pair::Ed25519(pair), KeyAlg::EdDsa) => {
                    (&signature::ED25519, pair.public_key().as_ref())
                }
                _ => return false,
            };
        UnparsedPublicKey::new(algorithm, public)
            .verify(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_are_stripped() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 2]), &[1, 2]);
        assert_eq!(strip_leading_zeros(&[1, 0]), &[1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), &[0]);
    }

    #[test]
    fn ec_and_okp_jwks_have_the_right_shape() {
        let key = SigningKey::generate(KeyAlg::Es384).unwrap();
        let jwk = key.public_jwk("k", false);
        assert_eq!(jwk["crv"], "P-384");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            48
        );
        assert!(jwk.get("alg").is_none());
        let key = SigningKey::generate(KeyAlg::EdDsa).unwrap();
        let jwk = key.public_jwk("k", true);
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert!(key.rsa_spki_der().is_none());
        assert!(key.spki_der().is_some());
    }

    #[test]
    fn signatures_verify_with_the_same_key_only() {
        for alg in [
            KeyAlg::Rs256,
            KeyAlg::Ps384,
            KeyAlg::Es256,
            KeyAlg::Es384,
            KeyAlg::EdDsa,
        ] {
            let key = SigningKey::generate(alg).unwrap();
            let other = SigningKey::generate(alg).unwrap();
            let sig = key.sign(b"message").unwrap();
            assert!(key.verify(b"message", &sig), "{alg}");
            assert!(!key.verify(b"massage", &sig), "{alg}");
            assert!(!other.verify(b"message", &sig), "{alg}");
        }
    }
}
