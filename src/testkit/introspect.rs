//! Opaque tokens, RFC 7662 introspection answers, RFC 7009 revocation and the client authentication of
//! those two endpoints (the HTTP side is in `server.rs`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::HeaderMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::form::{same, ClientAuth, Credentials, Form};
use super::token::now;
use super::{lock, State};

/// The default introspection client id.
const DEFAULT_CLIENT_ID: &str = "rs-client";
/// The default introspection client secret.
const DEFAULT_CLIENT_SECRET: &str = "rs-secret";

/// Who may call `/introspect` and `/revoke`. Debug output leaves the secret and the bearer token out.
#[derive(Clone)]
pub(crate) struct ClientCredentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) bearer: Option<String>,
}

impl Default for ClientCredentials {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            bearer: None,
        }
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Token state behind the introspection endpoint.
#[derive(Default)]
pub(crate) struct Registry {
    /// Opaque tokens issued by [`OpaqueTokenBuilder::issue`] and their claims.
    opaque: HashMap<String, Map<String, Value>>,
    /// Revoked tokens (opaque ones and JWTs).
    revoked: HashSet<String>,
    /// Answers set with `DevIssuer::set_introspection_response`, returned verbatim.
    custom: HashMap<String, Value>,
    /// Introspection requests per token named in the form body.
    requests: HashMap<String, u64>,
}

/// A random opaque token: URL-safe base64 (no padding) of 32 random bytes, i.e. 43 characters of
/// `[A-Za-z0-9_-]` — RFC 6750 `b64token` syntax, and never mistaken for a JWT (no dots).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The system RNG failed (practically impossible): still unique within this process.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut hasher = Sha256::new();
        hasher.update(nanos.to_le_bytes());
        hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        hasher.update(std::process::id().to_le_bytes());
        bytes.copy_from_slice(&hasher.finalize());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Builds an opaque access token the [`DevIssuer`](super::DevIssuer) answers for at its RFC 7662
/// introspection endpoint.
///
/// Obtained from [`DevIssuer::opaque_token`](super::DevIssuer::opaque_token), pre-filled like
/// [`TokenBuilder`](super::TokenBuilder): `iss` = the issuer, `sub` = `"test-user"`,
/// `client_id` = `"test-client"`, `scope` = `"mcp:read"`, `iat` = now, `exp` = now + 300 s,
/// `token_type` = `"Bearer"`; `aud` only once set with [`audience`](Self::audience) or
/// [`audiences`](Self::audiences). These claims (the "claims" of the token) are the members of the
/// introspection answer while the token is active, after `"active": true`.
///
/// The token is active while it is not revoked, `exp` (if any) is in the future and `nbf` (if any) is not.
/// Times are computed when the setter is called (`now` = the system clock, in seconds).
///
/// ```
/// use bearer_guard::testkit::{DevIssuer, KeyAlg};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), bearer_guard::testkit::TestkitError> {
/// let issuer = DevIssuer::builder()
///     .keys(&[KeyAlg::Es256])
///     .introspection_client("my-resource-server", "its secret")
///     .start()
///     .await?;
/// let token = issuer
///     .opaque_token()
///     .audience("https://mcp.example.com/mcp")
///     .scope("mcp:read mcp:write")
///     .issue();
/// assert!(!token.contains('.'));
/// // A resource server now POSTs `token=…` to this URL, authenticated as my-resource-server.
/// println!("introspection endpoint: {}", issuer.introspection_endpoint());
/// assert!(issuer.revoke(&token)); // from now on: {"active":false}
/// # Ok(())
/// # }
/// ```
#[must_use = "an opaque token builder does nothing until issued"]
pub struct OpaqueTokenBuilder {
    state: Arc<State>,
    claims: Map<String, Value>,
}

impl fmt::Debug for OpaqueTokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueTokenBuilder")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl OpaqueTokenBuilder {
    pub(crate) fn new(state: Arc<State>) -> Self {
        let now = now();
        let mut claims = Map::new();
        claims.insert("iss".to_owned(), Value::from(state.issuer.clone()));
        claims.insert("sub".to_owned(), Value::from("test-user"));
        claims.insert("client_id".to_owned(), Value::from("test-client"));
        claims.insert("scope".to_owned(), Value::from("mcp:read"));
        claims.insert("iat".to_owned(), Value::from(now));
        claims.insert("exp".to_owned(), Value::from(now.saturating_add(300)));
        claims.insert("token_type".to_owned(), Value::from("Bearer"));
        Self { state, claims }
    }

    claim_setters!();

    /// Sets `token_type` (default `Some("Bearer")`; `None` leaves it out of the answer).
    pub fn token_type(self, token_type: Option<&str>) -> Self {
        match token_type {
            Some(token_type) => self.claim("token_type", Value::from(token_type)),
            None => self.remove_claim("token_type"),
        }
    }

    /// Issues the token: a fresh random opaque string (43 characters of URL-safe base64, no dots) that the
    /// introspection endpoint now answers for with these claims.
    pub fn issue(self) -> String {
        let token = random_token();
        lock(&self.state.registry)
            .opaque
            .insert(token.clone(), self.claims);
        token
    }
}

/// Whether the claims' time window (`nbf` ≤ now < `exp`) holds; absent or non-numeric members are ignored.
fn in_window(claims: &Map<String, Value>) -> bool {
    let now = now() as f64;
    let exp_ok = claims
        .get("exp")
        .and_then(Value::as_f64)
        .is_none_or(|exp| now < exp);
    let nbf_ok = claims
        .get("nbf")
        .and_then(Value::as_f64)
        .is_none_or(|nbf| nbf <= now);
    exp_ok && nbf_ok
}

impl ClientCredentials {
    /// Authenticates the caller by `client_secret_basic`, `client_secret_post` or the bearer token.
    pub(crate) fn authenticate(&self, headers: &HeaderMap, form: &Form) -> ClientAuth {
        let (id, secret) = (self.client_id.as_bytes(), self.client_secret.as_bytes());
        let ok = match Credentials::of(headers, form) {
            Credentials::Ambiguous => return ClientAuth::Ambiguous,
            Credentials::Basic {
                id: basic_id,
                secret: basic_secret,
            } => {
                // A `client_id` form field, if any, must name the same client.
                same(basic_id.as_bytes(), id)
                    & form
                        .get("client_id")
                        .is_none_or(|post| same(post.as_bytes(), id))
                    & same(basic_secret.as_bytes(), secret)
            }
            Credentials::Post {
                id: post_id,
                secret: post_secret,
            } => same(post_id.as_bytes(), id) & same(post_secret.as_bytes(), secret),
            Credentials::Bearer(credentials) => self.bearer.as_ref().is_some_and(|bearer| {
                !credentials.is_empty() && same(credentials, bearer.as_bytes())
            }),
            Credentials::Nothing | Credentials::Malformed => false,
        };
        if ok {
            ClientAuth::Authenticated
        } else {
            ClientAuth::Unauthenticated
        }
    }
}

impl State {
    /// Authenticates a caller of `/introspect` or `/revoke`.
    pub(crate) fn authenticate(&self, headers: &HeaderMap, form: &Form) -> ClientAuth {
        self.credentials.authenticate(headers, form)
    }

    /// Counts an introspection request naming `token`.
    pub(crate) fn count_introspection_of(&self, token: &str) {
        let mut registry = lock(&self.registry);
        match registry.requests.get_mut(token) {
            Some(count) => *count = count.saturating_add(1),
            None => {
                registry.requests.insert(token.to_owned(), 1);
            }
        }
    }

    pub(crate) fn introspection_requests_for(&self, token: &str) -> u64 {
        lock(&self.registry)
            .requests
            .get(token)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn reset_introspection_counts(&self) {
        lock(&self.registry).requests.clear();
    }

    pub(crate) fn set_introspection_response(&self, token: &str, response: Value) {
        lock(&self.registry)
            .custom
            .insert(token.to_owned(), response);
    }

    /// Revokes `token` if it is known (see `DevIssuer::revoke`); returns whether it was.
    pub(crate) fn revoke(&self, token: &str) -> bool {
        // Verify outside the registry lock (it takes the key store lock).
        let ours = self.verify_jwt(token).is_some();
        let mut registry = lock(&self.registry);
        let custom = registry.custom.remove(token).is_some();
        let known = ours || custom || registry.opaque.contains_key(token);
        if known {
            registry.revoked.insert(token.to_owned());
        }
        known
    }

    /// The claims of a JWT signed by one of this issuer's keys (published or not), with the header `alg`
    /// equal to the key's algorithm; `None` for anything else.
    fn verify_jwt(&self, token: &str) -> Option<Map<String, Value>> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header_json: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let kid = header_json.get("kid")?.as_str()?;
        let alg = header_json.get("alg")?.as_str()?;
        let key = {
            let store = lock(&self.keys);
            Arc::clone(&store.get(kid)?.key)
        };
        if key.alg().as_str() != alg {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        if !key.verify(signing_input.as_bytes(), &signature) {
            return None;
        }
        match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()? {
            Value::Object(claims) => Some(claims),
            _ => None,
        }
    }

    /// The introspection answer for `token` (RFC 7662 §2.2). With `wrong_issuer`, an active answer's `iss`
    /// is `{origin}/wrong-issuer`; a custom answer is returned as set.
    pub(crate) fn introspection_answer(&self, token: Option<&str>, wrong_issuer: bool) -> Value {
        let inactive = || serde_json::json!({ "active": false });
        let Some(token) = token else {
            return inactive();
        };
        let claims = {
            let registry = lock(&self.registry);
            if let Some(custom) = registry.custom.get(token) {
                return custom.clone();
            }
            if registry.revoked.contains(token) {
                return inactive();
            }
            registry.opaque.get(token).cloned()
        };
        let claims = match claims {
            Some(claims) => claims,
            None => {
                let Some(mut claims) = self.verify_jwt(token) else {
                    return inactive();
                };
                if !claims.contains_key("token_type") {
                    claims.insert("token_type".to_owned(), Value::from("Bearer"));
                }
                // Revoked meanwhile?
                if lock(&self.registry).revoked.contains(token) {
                    return inactive();
                }
                claims
            }
        };
        if !in_window(&claims) {
            return inactive();
        }
        let mut answer = Map::new();
        answer.insert("active".to_owned(), Value::Bool(true));
        for (name, value) in claims {
            if name != "active" {
                answer.insert(name, value);
            }
        }
        if wrong_issuer {
            answer.insert(
                "iss".to_owned(),
                Value::from(format!("{}/wrong-issuer", self.origin)),
            );
        }
        Value::Object(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::AUTHORIZATION;
    use http::HeaderValue;

    #[test]
    fn opaque_tokens_look_opaque() {
        let token = random_token();
        assert_eq!(token.len(), 43);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(token, random_token());
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn client_authentication() {
        let creds = ClientCredentials {
            client_id: "client:id é".to_owned(),
            client_secret: "sec:ret ü+".to_owned(),
            bearer: Some("rs-token".to_owned()),
        };
        let empty = Form::parse(b"token=t");
        // id and secret form-urlencoded, then base64.
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode("client%3Aid+%C3%A9:sec%3Aret+%C3%BC%2B")
        );
        assert_eq!(
            creds.authenticate(&headers(&good), &empty),
            ClientAuth::Authenticated
        );
        let raw = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("client:id é:sec:ret ü+")
        );
        assert_eq!(
            creds.authenticate(&headers(&raw), &empty),
            ClientAuth::Unauthenticated
        );
        assert_eq!(
            creds.authenticate(&headers("bearer rs-token"), &empty),
            ClientAuth::Authenticated
        );
        assert_eq!(
            creds.authenticate(&headers("Bearer other"), &empty),
            ClientAuth::Unauthenticated
        );
        assert_eq!(
            creds.authenticate(&HeaderMap::new(), &empty),
            ClientAuth::Unauthenticated
        );
        let post =
            Form::parse(b"token=t&client_id=client%3Aid+%C3%A9&client_secret=sec%3Aret+%C3%BC%2B");
        assert_eq!(
            creds.authenticate(&HeaderMap::new(), &post),
            ClientAuth::Authenticated
        );
        assert_eq!(
            creds.authenticate(&headers(&good), &post),
            ClientAuth::Ambiguous
        );
        let debug = format!("{creds:?}");
        assert!(!debug.contains("sec:ret") && !debug.contains("rs-token"));
    }
}
