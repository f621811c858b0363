//! Minting tokens: good ones, and the malformed or malicious ones a resource server must refuse.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::{State, TestkitError};

/// Builds and signs a JWT access token (RFC 9068) for a [`DevIssuer`](super::DevIssuer).
///
/// Obtained from [`DevIssuer::token`](super::DevIssuer::token), pre-filled with good claims:
/// `iss` = the issuer, `sub` = `"test-user"`, `iat` = now, `exp` = now + 300 s, a random `jti`,
/// `client_id` = `"test-client"`, `scope` = `"mcp:read"`; `aud` only once set with
/// [`audience`](Self::audience) or [`audiences`](Self::audiences). The header carries the key's `alg`, its
/// `kid` and `typ: "at+jwt"`. Every setter can break one of those things on purpose.
///
/// Times are computed when the setter is called (`now` = the system clock, in seconds).
#[must_use = "a token builder does nothing until signed"]
pub struct TokenBuilder {
    state: Arc<State>,
    claims: Map<String, Value>,
    key: Option<String>,
    header_kid: Option<Option<String>>,
    header_alg: Option<String>,
    typ: Option<String>,
    header_params: Map<String, Value>,
}

impl fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("claims", &self.claims)
            .field("key", &self.key)
            .field("header_kid", &self.header_kid)
            .field("header_alg", &self.header_alg)
            .field("typ", &self.typ)
            .field("header_params", &self.header_params)
            .finish()
    }
}

/// The system clock in whole seconds since the Unix epoch (0 before it).
pub(super) fn now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_ok() {
        return b64(&bytes);
    }
    // The system RNG failed (practically impossible): still unique within this process.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("jti-{nanos}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl TokenBuilder {
    pub(crate) fn new(state: Arc<State>) -> Self {
        let now = now();
        let mut claims = Map::new();
        claims.insert("iss".to_owned(), Value::from(state.issuer.clone()));
        claims.insert("sub".to_owned(), Value::from("test-user"));
        claims.insert("iat".to_owned(), Value::from(now));
        claims.insert("exp".to_owned(), Value::from(now.saturating_add(300)));
        claims.insert("jti".to_owned(), Value::from(random_jti()));
        claims.insert("client_id".to_owned(), Value::from("test-client"));
        claims.insert("scope".to_owned(), Value::from("mcp:read"));
        Self {
            state,
            claims,
            key: None,
            header_kid: None,
            header_alg: None,
            typ: Some("at+jwt".to_owned()),
            header_params: Map::new(),
        }
    }

    claim_setters!();

    /// Signs with the key `kid` (with that key's algorithm); the header `kid` becomes `kid`.
    ///
    /// Keys removed with [`DevIssuer::remove_key`](super::DevIssuer::remove_key) can still sign.
    pub fn key(mut self, kid: &str) -> Self {
        self.key = Some(kid.to_owned());
        self
    }

    /// Overrides the `kid` written in the header (`None`: no `kid` at all); the signing key is unchanged.
    pub fn header_kid(mut self, kid: Option<&str>) -> Self {
        self.header_kid = Some(kid.map(str::to_owned));
        self
    }

    /// Overrides the `alg` written in the header; the signature is still made with the key's real
    /// algorithm (for algorithm-confusion tests).
    pub fn header_alg(mut self, alg: &str) -> Self {
        self.header_alg = Some(alg.to_owned());
        self
    }

    /// Sets the header `typ` (default `Some("at+jwt")`; `None` leaves it out).
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(str::to_owned);
        self
    }

    /// Adds any header parameter (e.g. `"crit"`, `"jku"`, `"x5u"`, `"jwk"`). Applied last, so it can also
    /// replace `alg`, `kid` or `typ`.
    pub fn header_param(mut self, name: &str, value: Value) -> Self {
        self.header_params.insert(name.to_owned(), value);
        self
    }

    /// The header for a token whose key is `kid` and whose default `alg` is `alg`.
    fn header(&self, kid: &str, alg: &str) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("alg".to_owned(), Value::from(alg));
        if let Some(typ) = &self.typ {
            header.insert("typ".to_owned(), Value::from(typ.clone()));
        }
        let kid = match &self.header_kid {
            Some(over) => over.clone(),
            None => Some(kid.to_owned()),
        };
        if let Some(kid) = kid {
            header.insert("kid".to_owned(), Value::from(kid));
        }
        for (name, value) in &self.header_params {
            header.insert(name.clone(), value.clone());
        }
        header
    }

    fn signing_input(
        header: &Map<String, Value>,
        claims: &Map<String, Value>,
    ) -> Result<String, TestkitError> {
        let header = serde_json::to_vec(header).map_err(TestkitError::Json)?;
        let claims = serde_json::to_vec(claims).map_err(TestkitError::Json)?;
        Ok(format!("{}.{}", b64(&header), b64(&claims)))
    }

    /// Signs the token: a compact JWS (`header.payload.signature`).
    ///
    /// # Errors
    /// [`TestkitError::UnknownKey`] if [`key`](Self::key) names no key, [`TestkitError::NoKey`] if the
    /// issuer has no key at all, [`TestkitError::Crypto`] if signing fails.
    pub fn sign(self) -> Result<String, TestkitError> {
        let (kid, key) = self.state.signing_key(self.key.as_deref())?;
        let alg = self
            .header_alg
            .clone()
            .unwrap_or_else(|| key.alg().as_str().to_owned());
        let input = Self::signing_input(&self.header(&kid, &alg), &self.claims)?;
        let signature = key.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", b64(&signature)))
    }

    /// The classic RS256 → HS256 confusion attack: header `alg: "HS256"`, signed with HMAC-SHA-256 keyed
    /// with the RSA public key's **DER `SubjectPublicKeyInfo`** bytes (what
    /// [`DevIssuer::public_key_der`](super::DevIssuer::public_key_der) returns).
    ///
    /// The RSA key is the one chosen with [`key`](Self::key), else the issuer's default key if it is RSA,
    /// else the first RSA key. The header `kid` is that key's id (unless overridden).
    ///
    /// # Errors
    /// [`TestkitError::NoRsaKey`] if there is no such RSA key, [`TestkitError::UnknownKey`] for an unknown
    /// [`key`](Self::key).
    pub fn sign_hs256_with_public_key(self) -> Result<String, TestkitError> {
        let (kid, der) = self.state.rsa_public_key_der(self.key.as_deref())?;
        let header = self.header(&kid, "HS256");
        Self::hmac_token(&header, &self.claims, &der)
    }

    /// An `HS256` token (header `alg: "HS256"`) MACed with an arbitrary `secret`, e.g. the PEM text of a
    /// public key, or a JWK `oct` key published with
    /// [`publish_extra_jwk`](super::DevIssuer::publish_extra_jwk). The header `kid` is the chosen (or
    /// default) key's id unless overridden.
    ///
    /// # Errors
    /// [`TestkitError::Json`] if the claims cannot be serialized.
    pub fn sign_hs256_with_secret(self, secret: &[u8]) -> Result<String, TestkitError> {
        let kid = self.key.clone().unwrap_or_else(|| self.state.default_kid());
        let header = self.header(&kid, "HS256");
        Self::hmac_token(&header, &self.claims, secret)
    }

    fn hmac_token(
        header: &Map<String, Value>,
        claims: &Map<String, Value>,
        secret: &[u8],
    ) -> Result<String, TestkitError> {
        let input = Self::signing_input(header, claims)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let tag = hmac::sign(&key, input.as_bytes());
        Ok(format!("{input}.{}", b64(tag.as_ref())))
    }

    /// An unsecured JWS: header `alg: "none"`, empty signature (`header.payload.`).
    ///
    /// The header `kid` is the chosen (or default) key's id unless overridden.
    ///
    /// # Errors
    /// [`TestkitError::Json`] if the claims cannot be serialized.
    pub fn unsigned(self) -> Result<String, TestkitError> {
        let kid = self.key.clone().unwrap_or_else(|| self.state.default_kid());
        let input = Self::signing_input(&self.header(&kid, "none"), &self.claims)?;
        Ok(format!("{input}."))
    }

    /// A token whose signature is valid for the claims as built, but whose payload was changed after
    /// signing: `sub` becomes `"attacker"` and `scope` gains `" mcp:admin"` (so the signature no longer
    /// verifies).
    ///
    /// # Errors
    /// As for [`sign`](Self::sign).
    pub fn sign_with_tampered_payload(self) -> Result<String, TestkitError> {
        let mut tampered = self.claims.clone();
        tampered.insert("sub".to_owned(), Value::from("attacker"));
        let scope = match tampered.get("scope").and_then(Value::as_str) {
            Some(scope) if !scope.is_empty() => format!("{scope} mcp:admin"),
            _ => "mcp:admin".to_owned(),
        };
        tampered.insert("scope".to_owned(), Value::from(scope));
        let tampered = serde_json::to_vec(&tampered).map_err(TestkitError::Json)?;

        let token = self.sign()?;
        let mut parts = token.split('.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(header), Some(_), Some(signature)) => {
                Ok(format!("{header}.{}.{signature}", b64(&tampered)))
            }
            _ => Err(TestkitError::Crypto("unexpected JWS shape")),
        }
    }
}
