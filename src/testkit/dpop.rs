//! DPoP for tests (RFC 9449): a client's proof key, its thumbprint, and proofs, valid or broken on purpose.
//!
//! ```
//! use bearer_guard::testkit::{DpopKey, KeyAlg};
//!
//! let key = DpopKey::generate(KeyAlg::Es256)?;
//! let proof = key.proof("POST", "https://mcp.example.com/mcp", Some("the-access-token"))?;
//! assert_eq!(proof.split('.').count(), 3);
//! // Broken on purpose: a proof for another method, and one that reveals the private key.
//! let wrong_method = key.proof_builder("GET", "https://mcp.example.com/mcp").sign()?;
//! let private = key.proof_builder("POST", "https://mcp.example.com/mcp").jwk_member("d", "AAAA").sign()?;
//! # let _ = (wrong_method, private);
//! # Ok::<(), bearer_guard::testkit::TestkitError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::keys::{KeyAlg, SigningKey};
use super::token::now;
use super::TestkitError;

/// A DPoP client key pair.
pub struct DpopKey {
    key: SigningKey,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.key.alg())
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    // A failed RNG leaves zeros: still a proof, and a test of replays would notice.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    b64(&bytes)
}

impl DpopKey {
    /// A fresh key pair for `alg`.
    ///
    /// # Errors
    /// [`TestkitError::Crypto`] if key generation fails.
    pub fn generate(alg: KeyAlg) -> Result<Self, TestkitError> {
        Ok(Self {
            key: SigningKey::generate(alg)?,
        })
    }

    /// The public JWK (what a proof's header carries).
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.key.public_params().clone())
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url: what a bound token's `cnf.jkt` holds.
    pub fn thumbprint(&self) -> String {
        // The required members only, sorted by name (a BTreeMap), serialized without white space.
        let required: &[&str] = match self.key.public_params().get("kty").and_then(Value::as_str) {
            Some("RSA") => &["e", "kty", "n"],
            Some("EC") => &["crv", "kty", "x", "y"],
            _ => &["crv", "kty", "x"],
        };
        let members: BTreeMap<&str, &Value> = required
            .iter()
            .filter_map(|name| Some((*name, self.key.public_params().get(*name)?)))
            .collect();
        let canonical = serde_json::to_string(&members).unwrap_or_default();
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    /// A valid proof for `method` `url`, with `ath` for `access_token` when given.
    ///
    /// # Errors
    /// [`TestkitError::Crypto`] if signing fails.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, TestkitError> {
        let mut builder = self.proof_builder(method, url);
        if let Some(token) = access_token {
            builder = builder.access_token(token);
        }
        builder.sign()
    }

    /// A proof to shape: valid by default (`typ: dpop+jwt`, this key's `alg` and public `jwk`; `jti`, `htm`,
    /// `htu`, `iat` = now), every part of it changeable.
    pub fn proof_builder(&self, method: &str, url: &str) -> ProofBuilder<'_> {
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("alg".into(), json!(self.key.alg().as_str()));
        header.insert("jwk".into(), self.public_jwk());
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(random_jti()));
        claims.insert("htm".into(), json!(method));
        claims.insert("htu".into(), json!(url));
        claims.insert("iat".into(), json!(now()));
        ProofBuilder {
            key: self,
            header,
            claims,
        }
    }
}

/// A DPoP proof being shaped (see [`DpopKey::proof_builder`]).
#[derive(Debug)]
pub struct ProofBuilder<'k> {
    key: &'k DpopKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl ProofBuilder<'_> {
    /// Sets `ath` = base64url(SHA-256(`token`)).
    pub fn access_token(self, token: &str) -> Self {
        let ath = b64(&Sha256::digest(token.as_bytes()));
        self.claim("ath", json!(ath))
    }

    /// Sets `iat` to now + `offset_secs`.
    pub fn issued_at(self, offset_secs: i64) -> Self {
        self.claim("iat", json!(now().saturating_add(offset_secs)))
    }

    /// Sets `content_digest` = `sha-256=:<base64 of SHA-256(body)>:` (the MCP DPoP extension draft).
    pub fn content_digest(self, body: &[u8]) -> Self {
        let digest = crate::bind::dpop::ContentDigest::of(body).to_string();
        self.claim("content_digest", json!(digest))
    }

    /// Sets `jti`.
    pub fn jti(self, jti: &str) -> Self {
        self.claim("jti", json!(jti))
    }

    /// Sets (or replaces) a claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_owned(), value);
        self
    }

    /// Removes a claim.
    pub fn remove_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets (or replaces) a header member (`typ`, `alg`, `jwk`, `crit`, …).
    pub fn header_param(mut self, name: &str, value: Value) -> Self {
        self.header.insert(name.to_owned(), value);
        self
    }

    /// Removes a header member.
    pub fn remove_header_param(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Adds a member to the header's `jwk` (e.g. `"d"`: private key material).
    pub fn jwk_member(mut self, name: &str, value: &str) -> Self {
        if let Some(Value::Object(jwk)) = self.header.get_mut("jwk") {
            jwk.insert(name.to_owned(), json!(value));
        }
        self
    }

    /// The compact JWS.
    ///
    /// # Errors
    /// [`TestkitError::Crypto`] if signing fails.
    pub fn sign(self) -> Result<String, TestkitError> {
        let encode = |map: &Map<String, Value>| -> Result<String, TestkitError> {
            serde_json::to_vec(map)
                .map(|bytes| b64(&bytes))
                .map_err(|_| TestkitError::Crypto("proof serialization failed"))
        };
        let input = format!("{}.{}", encode(&self.header)?, encode(&self.claims)?);
        let signature = self.key.key.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", b64(&signature)))
    }

    /// A compact JWS whose header is exactly `header_json` (e.g. with a duplicate member), signed.
    ///
    /// # Errors
    /// [`TestkitError::Crypto`] if signing fails.
    pub fn sign_with_raw_header(self, header_json: &str) -> Result<String, TestkitError> {
        let claims = serde_json::to_vec(&self.claims)
            .map_err(|_| TestkitError::Crypto("proof serialization failed"))?;
        let input = format!("{}.{}", b64(header_json.as_bytes()), b64(&claims));
        let signature = self.key.key.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", b64(&signature)))
    }
}
