//! [`DevIssuer`], the handle tests hold: URLs, keys, token minting, counters and failure injection.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;
use tokio::task::AbortHandle;

use super::keys::{KeyAlg, SigningKey};
use super::{
    lock, Behavior, DevIssuerBuilder, Endpoint, OpaqueTokenBuilder, State, TestkitError,
    TokenBuilder,
};

/// Owns the server task: dropping the last [`DevIssuer`] clone drops this and stops the server.
pub(super) struct Handle {
    pub(super) state: Arc<State>,
    pub(super) task: AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A development OAuth issuer serving JWKS and metadata on `127.0.0.1` and minting tokens.
///
/// Cloning is cheap (reference counted); all clones control the same server, which stops when
/// [`shutdown`](Self::shutdown) is called or the last clone is dropped. See the [module docs](crate::testkit).
#[derive(Clone)]
pub struct DevIssuer {
    pub(super) handle: Arc<Handle>,
}

impl fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = &self.handle.state;
        let store = lock(&state.keys);
        let kids: Vec<(&str, KeyAlg, bool)> = store
            .keys
            .iter()
            .map(|e| (e.kid.as_str(), e.key.alg(), e.published))
            .collect();
        f.debug_struct("DevIssuer")
            .field("issuer", &state.issuer)
            .field("addr", &state.addr)
            .field("default_kid", &store.default_kid)
            .field("keys", &kids)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// Starts an issuer with the default settings (see [`DevIssuerBuilder`]).
    ///
    /// # Errors
    /// As for [`DevIssuerBuilder::start`].
    pub async fn start() -> Result<DevIssuer, TestkitError> {
        Self::builder().start().await
    }

    /// A builder for an issuer with a path, other keys, or without some metadata endpoints.
    pub fn builder() -> DevIssuerBuilder {
        DevIssuerBuilder::default()
    }

    fn state(&self) -> &State {
        &self.handle.state
    }

    /// The issuer identifier, exactly as in the metadata `issuer` and the tokens' `iss`
    /// (`http://127.0.0.1:PORT`, plus the configured path and trailing slash).
    pub fn issuer(&self) -> &str {
        &self.state().issuer
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.state().addr
    }

    /// The JWKS URL: `http://127.0.0.1:PORT/jwks`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.state().origin)
    }

    /// The URL of the RFC 8414 metadata document (served unless disabled in the builder).
    pub fn oauth_metadata_uri(&self) -> String {
        let state = self.state();
        format!(
            "{}/.well-known/oauth-authorization-server{}",
            state.origin, state.issuer_path
        )
    }

    /// The URL of the OpenID metadata document (`{issuer}/.well-known/openid-configuration`).
    pub fn openid_metadata_uri(&self) -> String {
        let state = self.state();
        format!(
            "{}{}/.well-known/openid-configuration",
            state.origin, state.issuer_path
        )
    }

    /// The key id tokens are signed with by default (empty if the issuer has no key).
    pub fn default_kid(&self) -> String {
        self.state().default_kid()
    }

    /// Generates a key for `alg`, publishes it (with `alg` in its JWK) and returns its new, unique key id
    /// (`"rs256-2"`, `"es256-1"`, …). Does not change the default key, unless there was none.
    ///
    /// # Errors
    /// [`TestkitError::Crypto`] if key generation fails.
    pub fn add_key(&self, alg: KeyAlg) -> Result<String, TestkitError> {
        let key = SigningKey::generate(alg)?;
        let mut store = lock(&self.state().keys);
        let kid = store.next_kid(alg);
        store.insert(kid.clone(), key, true);
        Ok(kid)
    }

    /// Generates a key for `alg` and publishes it under `kid`; with `publish_alg == false` its JWK has no
    /// `alg` member. A key with the same `kid` is replaced (to test a key changed under the same id).
    ///
    /// # Errors
    /// [`TestkitError::Crypto`] if key generation fails.
    pub fn add_key_with(
        &self,
        kid: &str,
        alg: KeyAlg,
        publish_alg: bool,
    ) -> Result<(), TestkitError> {
        let key = SigningKey::generate(alg)?;
        lock(&self.state().keys).insert(kid.to_owned(), key, publish_alg);
        Ok(())
    }

    /// Stops publishing the key `kid`. Tokens can still be signed with it (to test key removal).
    /// Returns whether a published key with that id existed.
    pub fn remove_key(&self, kid: &str) -> bool {
        let mut store = lock(&self.state().keys);
        match store.keys.iter_mut().find(|entry| entry.kid == kid) {
            Some(entry) if entry.published => {
                entry.published = false;
                true
            }
            _ => false,
        }
    }

    /// Makes `kid` the default signing key. Returns `false` (and changes nothing) if there is no such key.
    pub fn set_default_key(&self, kid: &str) -> bool {
        let mut store = lock(&self.state().keys);
        if store.get(kid).is_some() {
            store.default_kid = kid.to_owned();
            true
        } else {
            false
        }
    }

    /// Appends any JSON value to the served `keys` array (an `oct` key, a `"use": "enc"` key, garbage…).
    pub fn publish_extra_jwk(&self, jwk: Value) {
        lock(&self.state().extra_jwks).push(jwk);
    }

    /// Removes every value added with [`publish_extra_jwk`](Self::publish_extra_jwk).
    pub fn clear_extra_jwks(&self) {
        lock(&self.state().extra_jwks).clear();
    }

    /// A token builder pre-filled with good claims, signed by the default key (see [`TokenBuilder`]).
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(Arc::clone(&self.handle.state))
    }

    /// The DER `SubjectPublicKeyInfo` of the key `kid` (`None` if there is no such key); for an RSA key,
    /// the HMAC secret [`TokenBuilder::sign_hs256_with_public_key`] uses.
    pub fn public_key_der(&self, kid: &str) -> Option<Vec<u8>> {
        lock(&self.state().keys)
            .get(kid)
            .and_then(|entry| entry.key.spki_der())
    }

    /// An opaque-token builder pre-filled with good claims (see [`OpaqueTokenBuilder`]); the token is
    /// answered for at the [introspection endpoint](Self::introspection_endpoint).
    pub fn opaque_token(&self) -> OpaqueTokenBuilder {
        OpaqueTokenBuilder::new(Arc::clone(&self.handle.state))
    }

    /// The RFC 7662 introspection endpoint: `http://127.0.0.1:PORT/introspect`.
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/introspect", self.state().origin)
    }

    /// The authorization endpoint, `http://127.0.0.1:PORT/authorize` (working only with
    /// [`DevIssuerBuilder::authorization_server`]).
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/authorize", self.state().origin)
    }

    /// The token endpoint, `http://127.0.0.1:PORT/token` (working only with
    /// [`DevIssuerBuilder::authorization_server`]).
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.state().origin)
    }

    /// The RFC 7591 registration endpoint, `http://127.0.0.1:PORT/register` (served only with
    /// [`DevIssuerBuilder::authorization_server`]).
    pub fn registration_endpoint(&self) -> String {
        format!("{}/register", self.state().origin)
    }

    /// The RFC 7009 revocation endpoint: `http://127.0.0.1:PORT/revoke`.
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/revoke", self.state().origin)
    }

    /// Revokes `token`: from now on introspection answers `{"active":false}` for it, and a response set
    /// with [`set_introspection_response`](Self::set_introspection_response) is dropped. Returns whether the
    /// token was known: an [opaque token](Self::opaque_token) of this issuer, a token with a custom response,
    /// or a JWT signed by one of this issuer's keys (already revoked ones included).
    pub fn revoke(&self, token: &str) -> bool {
        self.state().revoke(token)
    }

    /// Makes the introspection endpoint answer exactly `response` (status 200) for `token`, whether or not
    /// the token is otherwise known — e.g. `{"active":"true"}` or an answer without `active`, to test how a
    /// resource server reads malformed responses. Replaces an earlier response for the same token;
    /// [`revoke`](Self::revoke) removes it.
    pub fn set_introspection_response(&self, token: &str, response: Value) {
        self.state().set_introspection_response(token, response);
    }

    /// How many introspection requests named `token` in their form body (since start or
    /// [`reset_counts`](Self::reset_counts)), whatever the answer — rejected and failure-injected ones
    /// included.
    pub fn introspection_requests_for(&self, token: &str) -> u64 {
        self.state().introspection_requests_for(token)
    }

    /// How many requests `endpoint` received (since start or [`reset_counts`](Self::reset_counts)),
    /// whatever the answer.
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        self.state().counters[endpoint.index()].load(Ordering::Relaxed)
    }

    /// Sets every request counter to zero, the per-token
    /// [introspection counts](Self::introspection_requests_for) included.
    pub fn reset_counts(&self) {
        for counter in &self.state().counters {
            counter.store(0, Ordering::Relaxed);
        }
        self.state().reset_introspection_counts();
    }

    /// Sets how `endpoint` answers from now on ([`Behavior::Normal`] restores it).
    pub fn set_behavior(&self, endpoint: Endpoint, behavior: Behavior) {
        lock(&self.state().behaviors)[endpoint.index()] = behavior;
    }

    /// Sets the `Cache-Control` header of successful `/jwks` answers (`None`: no header). Default
    /// `"max-age=300"`. A value that is not a valid header value is left out.
    pub fn set_jwks_cache_control(&self, value: Option<String>) {
        *lock(&self.state().jwks_cache_control) = value;
    }

    /// The JWKS document currently served at `/jwks` (published keys, then the extra JWKs).
    pub fn public_jwks(&self) -> Value {
        self.state().public_jwks()
    }

    /// Stops the server and closes its open connections (also done when the last clone is dropped).
    /// Token minting keeps working.
    pub fn shutdown(&self) {
        self.handle.task.abort();
    }
}
