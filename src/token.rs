//! The presented credential ([`BearerToken`]) and the validated result ([`AccessToken`]).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use http::HeaderValue;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::bind::Confirmation;
use crate::scope::ScopeSet;

/// The raw bearer token taken from the `Authorization` header.
///
/// It is a secret: it never appears in `Debug` output, and this crate never logs it. Cloning is cheap
/// (the header bytes are reference counted), so asynchronous validators can move a clone into their
/// future. Its syntax was already checked against RFC 6750 `b64token` and the layer's size limit.
#[derive(Clone)]
pub struct BearerToken {
    header: HeaderValue,
    start: usize,
    /// SHA-256 of the token, computed on first use: validators tried one after the other (`FirstMatch`)
    /// and their caches share one hash of the request's token.
    digest: OnceLock<[u8; 32]>,
}

impl BearerToken {
    /// Wraps a header value whose bytes from `start` on are a checked `b64token`.
    pub(crate) fn from_header(header: HeaderValue, start: usize) -> Self {
        Self {
            header,
            start,
            digest: OnceLock::new(),
        }
    }

    /// Builds a token from a string, checking `b64token` syntax (for tests and non-HTTP callers).
    ///
    /// ```
    /// # use bearer_guard::BearerToken;
    /// assert!(BearerToken::new("abc.def-_~+/==").is_some());
    /// assert!(BearerToken::new("has space").is_none());
    /// ```
    pub fn new(token: &str) -> Option<Self> {
        if !crate::extract::is_b64token(token.as_bytes()) {
            return None;
        }
        let mut header = HeaderValue::from_str(token).ok()?;
        header.set_sensitive(true);
        Some(Self::from_header(header, 0))
    }

    /// The token text. Handle with care: never log it.
    pub fn as_str(&self) -> &str {
        // The extractor checked that these bytes are `b64token` characters, all ASCII, so they are UTF-8;
        // an empty string is returned rather than a panic if that invariant were ever broken.
        // (`std::str::from_utf8` checks ASCII many bytes at a time; `HeaderValue::to_str` checks them one
        // by one, which cost ~0.2 µs per call on a 700-byte JWT.)
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The token bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.header.as_bytes()[self.start..]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.header.len() - self.start
    }

    /// Is the token empty? (Never true for a token the extractor produced.)
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// SHA-256 of the token: the key caches use instead of the token itself. Computed once per token.
    pub fn sha256(&self) -> [u8; 32] {
        *self
            .digest
            .get_or_init(|| Sha256::digest(self.as_bytes()).into())
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A validated access token: who it was issued to, by whom, for what, until when.
///
/// The layer inserts it into the request's extensions before calling the inner service. Handlers read it
/// with `request.extensions().get::<AccessToken>()`, or (feature `axum`) take it as an extractor argument.
/// Cloning is cheap (reference counted). It holds the token's claims, never the token itself.
///
/// ```
/// use bearer_guard::AccessToken;
/// use serde::Deserialize;
///
/// let token = AccessToken::builder()
///     .subject("alice")
///     .scopes(["notes:read"])
///     .claim("tenant", "acme")
///     .build();
///
/// #[derive(Deserialize)]
/// struct Tenant { tenant: String }
/// assert_eq!(token.claims::<Tenant>().unwrap().tenant, "acme");
/// assert!(token.scopes().contains("notes:read"));
/// ```
#[derive(Clone)]
pub struct AccessToken(Arc<Inner>);

struct Inner {
    subject: Text,
    client_id: Text,
    issuer: Option<Arc<str>>,
    audiences: Audiences,
    scopes: ScopeSet,
    expires_at: Option<SystemTime>,
    confirmation: Confirmation,
    claims: RawClaims,
}

/// Where a string member of the token lives.
#[derive(Clone, Default)]
pub(crate) enum Text {
    #[default]
    Absent,
    Owned(Box<str>),
    /// A string the JSON payload holds without escapes, at these byte offsets of [`RawClaims::Json`]:
    /// no copy per verified token.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    InClaims(Span),
}

/// Byte offsets of a string inside a JWT payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The offsets of `inner` within `outer`, when `inner` is a slice of it.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn of(outer: &[u8], inner: &str) -> Option<Self> {
        let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
        let end = start.checked_add(inner.len())?;
        // Offsets computed from addresses are confirmed against the bytes themselves.
        (outer.get(start..end)? == inner.as_bytes()).then_some(Self { start, end })
    }
}

/// The token's audiences: listed by the validator, or read from the JWT payload on first use.
enum Audiences {
    Listed(Vec<String>),
    InClaims(OnceLock<Vec<String>>),
}

/// The claims of a token: a JSON object, or (for JWTs) the verified payload, parsed on first use.
///
/// A JWT validator reads the claims it needs straight from the payload; building a `Map<String, Value>`
/// for every verified token would cost more than the rest of the validation besides the signature, and
/// most handlers never look at the raw claims.
enum RawClaims {
    Value(Value),
    /// A payload that was checked to be a strict JSON object when the token was validated.
    Json {
        json: Vec<u8>,
        parsed: OnceLock<Value>,
    },
}

impl RawClaims {
    fn text<'a>(&'a self, text: &'a Text) -> Option<&'a str> {
        match (text, self) {
            (Text::Absent, _) => None,
            (Text::Owned(text), _) => Some(text),
            (Text::InClaims(span), Self::Json { json, .. }) => {
                std::str::from_utf8(json.get(span.start..span.end)?).ok()
            }
            (Text::InClaims(_), Self::Value(_)) => None,
        }
    }

    /// `aud` as the validator accepted it: one string, or an array of strings.
    fn audiences(&self) -> Vec<String> {
        match self.value() {
            Value::Object(claims) => crate::json::audiences(claims),
            _ => Vec::new(),
        }
    }

    fn value(&self) -> &Value {
        match self {
            Self::Value(value) => value,
            Self::Json { json, parsed } => parsed
                .get_or_init(|| Value::Object(crate::json::parse_object(json).unwrap_or_default())),
        }
    }
}

impl AccessToken {
    /// Starts building an access token (for validator implementations and tests).
    pub fn builder() -> AccessTokenBuilder {
        AccessTokenBuilder::default()
    }

    /// `sub`: the resource owner (or the client, for client-credentials tokens).
    pub fn subject(&self) -> Option<&str> {
        self.0.claims.text(&self.0.subject)
    }

    /// `client_id`: the OAuth client the token was issued to.
    pub fn client_id(&self) -> Option<&str> {
        self.0.claims.text(&self.0.client_id)
    }

    /// `iss`: the issuer that minted the token, when known.
    pub fn issuer(&self) -> Option<&str> {
        self.0.issuer.as_deref()
    }

    /// `aud`: the audiences the token was issued for.
    pub fn audiences(&self) -> &[String] {
        match &self.0.audiences {
            Audiences::Listed(audiences) => audiences,
            Audiences::InClaims(audiences) => audiences.get_or_init(|| self.0.claims.audiences()),
        }
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &ScopeSet {
        &self.0.scopes
    }

    /// `exp`, when the token has one.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at
    }

    /// What the token is bound to (`cnf`): a DPoP key, a client certificate, or nothing.
    pub fn confirmation(&self) -> &Confirmation {
        &self.0.confirmation
    }

    /// Every claim, as JSON (an object; empty when the validator has none).
    pub fn raw_claims(&self) -> &Value {
        self.0.claims.value()
    }

    /// Deserializes the claims into your own type (custom claims, typed).
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(self.0.claims.value())
    }

    /// One claim by name.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.0.claims.value().get(name)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let claim_names: Vec<&str> = match self.0.claims.value() {
            Value::Object(map) => map.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        f.debug_struct("AccessToken")
            .field("subject", &self.subject())
            .field("client_id", &self.client_id())
            .field("issuer", &self.0.issuer)
            .field("audiences", &self.audiences())
            .field("scopes", &self.0.scopes)
            .field("expires_at", &self.0.expires_at)
            .field("claim_names", &claim_names)
            .finish()
    }
}

/// Builds an [`AccessToken`].
#[derive(Default)]
pub struct AccessTokenBuilder {
    subject: Text,
    client_id: Text,
    issuer: Option<Arc<str>>,
    audiences: Vec<String>,
    scopes: Option<ScopeSet>,
    expires_at: Option<SystemTime>,
    confirmation: Confirmation,
    claims: Map<String, Value>,
}

impl AccessTokenBuilder {
    /// Sets `sub`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Text::Owned(subject.into().into_boxed_str());
        self
    }

    /// Sets `client_id`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Text::Owned(client_id.into().into_boxed_str());
        self
    }

    /// Sets `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(Arc::from(issuer.into()));
        self
    }

    /// Adds an audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Sets the granted scopes (invalid scope strings are dropped: that only ever removes a grant).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.scopes = Some(ScopeSet::from_iter_lenient(scopes));
        self
    }

    /// Sets the granted scopes from a parsed set.
    pub fn scope_set(mut self, scopes: ScopeSet) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Sets `exp`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Binds the token to a DPoP key or a client certificate (what its `cnf` says). The guard then refuses
    /// it unless the request proves possession (a DPoP proof by that key, or that certificate on the TLS
    /// connection).
    pub fn confirmation(mut self, confirmation: Confirmation) -> Self {
        self.confirmation = confirmation;
        self
    }

    /// Adds a claim to the raw claims.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Replaces the raw claims with a JSON object.
    pub fn raw_claims(mut self, claims: Map<String, Value>) -> Self {
        self.claims = claims;
        self
    }

    /// Finishes the token.
    pub fn build(self) -> AccessToken {
        AccessToken(Arc::new(Inner {
            subject: self.subject,
            client_id: self.client_id,
            issuer: self.issuer,
            audiences: Audiences::Listed(self.audiences),
            scopes: self.scopes.unwrap_or_default(),
            expires_at: self.expires_at,
            confirmation: self.confirmation,
            claims: RawClaims::Value(Value::Object(self.claims)),
        }))
    }
}

/// What a JWT validator read from a verified payload, to make an [`AccessToken`] of it without copying
/// the strings the payload already holds.
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
pub(crate) struct VerifiedPayload {
    /// The payload: a JSON object checked as strictly as [`crate::json::parse_object`] checks.
    pub(crate) json: Vec<u8>,
    pub(crate) issuer: Arc<str>,
    /// `Text::InClaims` spans are byte offsets into `json`.
    pub(crate) subject: Text,
    pub(crate) client_id: Text,
    /// Whether `aud` is a string or an array of strings (read from `json` on first use).
    pub(crate) has_audience: bool,
    pub(crate) scopes: ScopeSet,
    pub(crate) expires_at: SystemTime,
    pub(crate) confirmation: Confirmation,
}

impl AccessToken {
    /// The token a verified JWT payload stands for; the claims stay bytes until a handler asks for them.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn from_verified_payload(payload: VerifiedPayload) -> Self {
        Self(Arc::new(Inner {
            subject: payload.subject,
            client_id: payload.client_id,
            issuer: Some(payload.issuer),
            audiences: if payload.has_audience {
                Audiences::InClaims(OnceLock::new())
            } else {
                Audiences::Listed(Vec::new())
            },
            scopes: payload.scopes,
            expires_at: Some(payload.expires_at),
            confirmation: payload.confirmation,
            claims: RawClaims::Json {
                json: payload.json,
                parsed: OnceLock::new(),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_debug_never_shows_the_token() {
        let token = BearerToken::new("s3cr3t-t0ken-value").unwrap();
        let debug = format!("{token:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("len: 18"), "{debug}");
        assert_eq!(token.as_str(), "s3cr3t-t0ken-value");
    }

    #[test]
    fn access_token_debug_lists_claim_names_not_values() {
        let token = AccessToken::builder()
            .subject("alice")
            .claim("secret_claim", "hunter2")
            .build();
        let debug = format!("{token:?}");
        assert!(debug.contains("secret_claim"));
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn fields_of_a_verified_payload_are_read_from_it() {
        let json = br#"{"sub":"alice","aud":["a","b"],"azp":"c\"d"}"#.to_vec();
        let text = std::str::from_utf8(&json).unwrap();
        let sub = Span::of(&json, &text[8..13]).unwrap();
        assert_eq!(Span::of(&json, "alice"), None, "not a slice of the payload");
        let token = AccessToken::from_verified_payload(VerifiedPayload {
            json: json.clone(),
            issuer: Arc::from("https://issuer.example"),
            subject: Text::InClaims(sub),
            client_id: Text::Owned("c\"d".into()),
            has_audience: true,
            scopes: ScopeSet::parse_lenient("x"),
            expires_at: SystemTime::UNIX_EPOCH,
            confirmation: Confirmation::default(),
        });
        assert_eq!(token.subject(), Some("alice"));
        assert_eq!(token.client_id(), Some("c\"d"));
        assert_eq!(token.audiences(), ["a", "b"]);
        assert_eq!(token.claim("azp"), Some(&Value::from("c\"d")));
        assert_eq!(token.issuer(), Some("https://issuer.example"));
    }

    #[test]
    fn typed_claims() {
        #[derive(serde::Deserialize)]
        struct Custom {
            tenant: String,
            level: u8,
        }
        let token = AccessToken::builder()
            .claim("tenant", "acme")
            .claim("level", 3)
            .build();
        let custom: Custom = token.claims().unwrap();
        assert_eq!((custom.tenant.as_str(), custom.level), ("acme", 3));
        assert!(token.claims::<Vec<u8>>().is_err());
    }
}
