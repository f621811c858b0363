//! A development OAuth issuer on `127.0.0.1` for tests and demos (feature `testkit`).
//!
//! ```
//! use bearer_guard::testkit::DevIssuer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), bearer_guard::testkit::TestkitError> {
//! let issuer = DevIssuer::start().await?;          // binds 127.0.0.1:<random port>
//! let token = issuer
//!     .token()
//!     .audience("https://mcp.example.com/mcp")
//!     .scope("mcp:read mcp:write")
//!     .sign()?;                                     // RS256, kid = issuer.default_kid()
//! println!("issuer:   {}", issuer.issuer());
//! println!("JWKS URL: {}", issuer.jwks_uri());
//! assert_eq!(token.split('.').count(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! [`DevIssuer`] generates signing keys (RSA, ECDSA, Ed25519 with aws-lc-rs), serves them as a JWKS at
//! `/jwks`, publishes authorization-server metadata (RFC 8414 and OpenID Connect Discovery), and mints
//! access tokens ([`TokenBuilder`]) — good ones, and the expired, mis-addressed, unsigned, tampered or
//! algorithm-confused ones a resource server must refuse. It also issues opaque tokens
//! ([`OpaqueTokenBuilder`]) and answers for them at an RFC 7662 introspection endpoint, with RFC 7009
//! revocation. It counts requests per [`Endpoint`] and can inject failures ([`Behavior`]) to test caching
//! and outage handling.
//!
//! ## Endpoints
//!
//! With issuer `http://127.0.0.1:PORT{path}`:
//!
//! | path | content |
//! |---|---|
//! | `/jwks` | the JWKS ([`DevIssuer::public_jwks`]), `Cache-Control: max-age=300` by default |
//! | `/.well-known/oauth-authorization-server{path}` | RFC 8414 metadata (path insertion) |
//! | `/.well-known/openid-configuration{path}` | OpenID metadata (path insertion) |
//! | `{path}/.well-known/openid-configuration` | OpenID metadata (path appended) |
//! | `/introspect` | RFC 7662 token introspection (`POST`, client authentication required) |
//! | `/revoke` | RFC 7009 token revocation (`POST`, client authentication required) |
//! | `/authorize`, `/token`, `/register` | the [development authorization server](DevIssuerBuilder::authorization_server) when enabled; otherwise `501` (`/authorize`, `/token`) and `404` (`/register`) |
//!
//! A trailing `/` of the issuer is removed before forming these paths (RFC 8414 §3.1); other paths get
//! `404`. The server runs on the current tokio runtime and stops on [`DevIssuer::shutdown`] or when the
//! last clone of the [`DevIssuer`] is dropped.
//!
//! ## Introspection and revocation
//!
//! `POST /introspect` takes an `application/x-www-form-urlencoded` body (`token`, optionally
//! `token_type_hint`, read up to 64 KiB) from an authenticated caller: `client_secret_basic` (RFC 6749
//! §2.3.1: id and secret form-urlencoded, joined with `:`, base64), `client_secret_post` (`client_id` and
//! `client_secret` form fields), or `Authorization: Bearer` with the token set by
//! [`DevIssuerBuilder::introspection_bearer`]. The default client is `rs-client` / `rs-secret`
//! ([`DevIssuerBuilder::introspection_client`]).
//!
//! | request | answer |
//! |---|---|
//! | not `POST` | `405`, `Allow: POST` |
//! | body over 64 KiB | `413` |
//! | other content type | `400 {"error":"invalid_request"}` |
//! | no, wrong or malformed credentials | `401 {"error":"invalid_client"}`, `WWW-Authenticate: Basic realm="introspection"` |
//! | two authentication methods, a repeated parameter, no `token` | `400 {"error":"invalid_request"}` |
//! | a token with a response set by [`DevIssuer::set_introspection_response`] | `200`, exactly that JSON |
//! | an active token of [`DevIssuer::opaque_token`] | `200 {"active":true, …its claims, "token_type":"Bearer"}` |
//! | an active JWT signed by one of this issuer's keys | `200 {"active":true, …its claims, "token_type":"Bearer"}` |
//! | anything else: unknown, revoked, expired (`exp` ≤ now), not yet valid (`nbf` > now) | `200 {"active":false}` |
//!
//! Answers carry `Cache-Control: no-store`. `POST /revoke` authenticates the same way (realm
//! `"revocation"`), takes the form field `token`, and answers `200` with an empty body whether or not the
//! token was known ([`DevIssuer::revoke`] does the same in-process).
//!
//! ## The development authorization server
//!
//! Opt in with [`DevIssuerBuilder::authorization_server`] and real OAuth clients (the MCP Inspector, the
//! official MCP SDKs, desktop clients) log in to this issuer, offline:
//!
//! | step | endpoint | what it checks |
//! |---|---|---|
//! | register (RFC 7591) | `POST /register` (JSON) | `redirect_uris` required: absolute, no fragment, `http` only for `localhost` / `127.0.0.1` / `[::1]`; `token_endpoint_auth_method` `none`, `client_secret_basic` (the default, a secret is issued) or `client_secret_post`; grant types `authorization_code`, `refresh_token` |
//! | authorize | `GET /authorize` | a registered client and redirect URI (else an error page, no redirect; a loopback IP may change port, RFC 8252 §7.3); `response_type=code`; PKCE `S256` only; exactly one absolute `resource` (RFC 8707, else `invalid_target`); errors are redirected with `state` and `iss` (RFC 9207) |
//! | consent | the page, then `POST /authorize` | [`Consent::Page`]: names the client, the resource and the scopes, with Allow / Deny (answerable once, for 10 minutes); [`Consent::Auto`]: granted at once |
//! | token | `POST /token` (form) | the client's registered authentication; a code is single-use, valid 60 s, bound to its client, redirect URI, `code_verifier` (constant-time) and resource; refresh tokens rotate and may narrow the scope only |
//!
//! Access tokens are RFC 9068 JWTs signed with the default key: `sub` `"dev-user"`, `aud` = the resource,
//! `scope` = what was asked, `client_id`, valid one hour. A refresh token comes with `offline_access`. Every
//! answer carries `Access-Control-Allow-Origin: *` and `OPTIONS` preflights are answered (browser-based
//! clients call these endpoints from a web page). The stores are bounded (1 024 clients, pending consents,
//! codes and refresh tokens each). There are no users and no passwords: loopback only, never for
//! production.
//!
//! ```
//! use bearer_guard::testkit::{Consent, DevIssuer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), bearer_guard::testkit::TestkitError> {
//! let issuer = DevIssuer::builder().authorization_server(Consent::Page).start().await?;
//! // Clients find these in the metadata at issuer.oauth_metadata_uri().
//! assert!(issuer.registration_endpoint().ends_with("/register"));
//! println!("log in at {}", issuer.authorization_endpoint());
//! # Ok(())
//! # }
//! ```
//!
//! Nothing here logs or prints tokens, client secrets or the introspection bearer token.

/// The claim setters `TokenBuilder` (JWT claims) and `OpaqueTokenBuilder` (introspection answer members)
/// share: one definition, expanded into both (each builder has a `claims: Map<String, Value>` field).
macro_rules! claim_setters {
    () => {
        /// Sets `sub`.
        pub fn subject(self, subject: &str) -> Self {
            self.claim("sub", Value::from(subject))
        }

        /// Sets `aud` to a single string.
        pub fn audience(self, audience: &str) -> Self {
            self.claim("aud", Value::from(audience))
        }

        /// Sets `aud` to an array of strings (even with a single element).
        pub fn audiences(self, audiences: &[&str]) -> Self {
            let list = audiences.iter().map(|a| Value::from(*a)).collect();
            self.claim("aud", Value::Array(list))
        }

        /// Sets `scope` (space-separated scope tokens, e.g. `"mcp:read mcp:write"`).
        pub fn scope(self, scope: &str) -> Self {
            self.claim("scope", Value::from(scope))
        }

        /// Sets any claim (replacing a default one of the same name, e.g. `iss` or `exp`).
        pub fn claim(mut self, name: &str, value: Value) -> Self {
            self.claims.insert(name.to_owned(), value);
            self
        }

        /// Removes a claim, default ones included (e.g. `"exp"`: no expiry).
        pub fn remove_claim(mut self, name: &str) -> Self {
            self.claims.remove(name);
            self
        }

        /// Sets `exp` to now + `secs` (zero or negative: already expired).
        pub fn expires_in(self, secs: i64) -> Self {
            self.claim("exp", Value::from(now().saturating_add(secs)))
        }

        /// Sets `nbf` to now + `offset_secs` (positive: not yet valid).
        pub fn not_before(self, offset_secs: i64) -> Self {
            self.claim("nbf", Value::from(now().saturating_add(offset_secs)))
        }

        /// Sets `iat` to now + `offset_secs` (positive: issued in the future).
        pub fn issued_at(self, offset_secs: i64) -> Self {
            self.claim("iat", Value::from(now().saturating_add(offset_secs)))
        }
    };
}

mod form;
mod introspect;
mod keys;
mod oauth;
mod server;
mod token;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::AbortHandle;

pub use introspect::OpaqueTokenBuilder;
use introspect::{ClientCredentials, Registry};
pub use keys::KeyAlg;
use keys::SigningKey;
pub use oauth::Consent;
pub use token::TokenBuilder;

/// Why the development issuer could not do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum TestkitError {
    /// [`DevIssuerBuilder::start`] was not called within a tokio runtime.
    NoRuntime,
    /// Binding or inspecting the listening socket failed.
    Io(std::io::Error),
    /// Key generation or signing failed in aws-lc-rs.
    Crypto(&'static str),
    /// No key has this key id.
    UnknownKey(String),
    /// The issuer has no signing key at all.
    NoKey,
    /// An RSA key was needed (HS256 confusion tokens) but the chosen key is not RSA, or there is none.
    NoRsaKey,
    /// An invalid builder setting.
    InvalidConfig(&'static str),
    /// A header or claims set could not be serialized.
    Json(serde_json::Error),
}

impl fmt::Display for TestkitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRuntime => {
                f.write_str("the development issuer must be started within a tokio runtime")
            }
            Self::Io(err) => write!(f, "development issuer socket error: {err}"),
            Self::Crypto(what) => write!(f, "development issuer crypto error: {what}"),
            Self::UnknownKey(kid) => write!(f, "no development issuer key with kid {kid:?}"),
            Self::NoKey => f.write_str("the development issuer has no signing key"),
            Self::NoRsaKey => f.write_str("no RSA key available for this operation"),
            Self::InvalidConfig(what) => write!(f, "invalid development issuer setting: {what}"),
            Self::Json(err) => write!(f, "JSON serialization failed: {err}"),
        }
    }
}

impl std::error::Error for TestkitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            Self::Json(err) => Some(err),
            _ => None,
        }
    }
}

/// An HTTP endpoint of the development issuer (for [`DevIssuer::requests`] and [`DevIssuer::set_behavior`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /jwks`.
    Jwks,
    /// RFC 8414 metadata, `/.well-known/oauth-authorization-server{issuer_path}`.
    OAuthMetadata,
    /// OpenID metadata, at both `/.well-known/openid-configuration{issuer_path}` and
    /// `{issuer_path}/.well-known/openid-configuration`.
    OpenIdMetadata,
    /// `POST /introspect` (RFC 7662 token introspection).
    Introspection,
    /// `POST /revoke` (RFC 7009 token revocation).
    Revocation,
    /// `GET` and `POST /authorize` (the [authorization server](DevIssuerBuilder::authorization_server)).
    Authorization,
    /// `POST /token` (the [authorization server](DevIssuerBuilder::authorization_server)).
    Token,
    /// `POST /register`, dynamic client registration (the
    /// [authorization server](DevIssuerBuilder::authorization_server)).
    Registration,
}

/// How many [`Endpoint`] variants there are (the size of the counter and behavior arrays).
const ENDPOINTS: usize = 8;

impl Endpoint {
    const fn index(self) -> usize {
        match self {
            Endpoint::Jwks => 0,
            Endpoint::OAuthMetadata => 1,
            Endpoint::OpenIdMetadata => 2,
            Endpoint::Introspection => 3,
            Endpoint::Revocation => 4,
            Endpoint::Authorization => 5,
            Endpoint::Token => 6,
            Endpoint::Registration => 7,
        }
    }
}

/// How an endpoint answers (failure injection). Requests are counted before the behavior applies.
///
/// On [`Endpoint::Introspection`], `Status` and `InvalidJson` answer before the caller is authenticated;
/// `Slow` delays the normal handling; `Oversize` and `WrongIssuer` change successful (`200`) answers only.
/// On [`Endpoint::Revocation`] only `Status` and `Slow` have an effect; on the authorization server's
/// endpoints, `Status`, `OAuthError` and `Slow`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Serve the document normally.
    #[default]
    Normal,
    /// Answer with this status code and a small JSON body that is not an OAuth error (a code outside
    /// 200–999 becomes 500).
    Status(u16),
    /// Answer with this status code and an OAuth error body `{"error": code}` (RFC 6749 §5.2), as
    /// authorization servers answer requests they refuse (e.g. `400 unsupported_token_type`).
    OAuthError(u16, &'static str),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer 200 with the normal document plus a `"padding"` member, about this many bytes in total (for
    /// introspection: the answer for the token, padded).
    Oversize(usize),
    /// Answer 200 `application/json` with a body that is not JSON.
    InvalidJson,
    /// Metadata whose `issuer` is `http://127.0.0.1:PORT/wrong-issuer`; introspection answers for active
    /// tokens whose `iss` is that URL; the JWKS endpoint answers normally.
    WrongIssuer,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct KeyEntry {
    kid: String,
    key: Arc<SigningKey>,
    publish_alg: bool,
    published: bool,
}

#[derive(Default)]
struct KeyStore {
    keys: Vec<KeyEntry>,
    default_kid: String,
}

impl KeyStore {
    fn get(&self, kid: &str) -> Option<&KeyEntry> {
        self.keys.iter().find(|entry| entry.kid == kid)
    }

    fn next_kid(&self, alg: KeyAlg) -> String {
        let prefix = alg.kid_prefix();
        let mut n = 1usize;
        loop {
            let kid = format!("{prefix}-{n}");
            if self.get(&kid).is_none() {
                return kid;
            }
            n += 1;
        }
    }

    /// Adds (or replaces, same kid) a published key; the first key becomes the default.
    fn insert(&mut self, kid: String, key: SigningKey, publish_alg: bool) {
        let entry = KeyEntry {
            kid: kid.clone(),
            key: Arc::new(key),
            publish_alg,
            published: true,
        };
        match self.keys.iter_mut().find(|e| e.kid == kid) {
            Some(existing) => *existing = entry,
            None => self.keys.push(entry),
        }
        if self.default_kid.is_empty() {
            self.default_kid = kid;
        }
    }
}

/// State shared by the handles, the token builders and the server task.
pub(crate) struct State {
    issuer: String,
    origin: String,
    /// The issuer's path without trailing `/` (`""` when none): the suffix of the well-known URIs.
    issuer_path: String,
    addr: SocketAddr,
    serve_oauth: bool,
    serve_openid: bool,
    keys: Mutex<KeyStore>,
    extra_jwks: Mutex<Vec<Value>>,
    counters: [AtomicU64; ENDPOINTS],
    behaviors: Mutex<[Behavior; ENDPOINTS]>,
    jwks_cache_control: Mutex<Option<String>>,
    /// Who may call the introspection and revocation endpoints.
    credentials: ClientCredentials,
    /// Opaque tokens, revocations, custom introspection answers and per-token request counts.
    registry: Mutex<Registry>,
    /// The opt-in authorization server (registration, authorization, token endpoints).
    oauth: Option<oauth::AuthorizationServer>,
}

impl State {
    fn count(&self, endpoint: Endpoint) {
        self.counters[endpoint.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn behavior(&self, endpoint: Endpoint) -> Behavior {
        lock(&self.behaviors)[endpoint.index()].clone()
    }

    fn jwks_cache_control(&self) -> Option<String> {
        lock(&self.jwks_cache_control).clone()
    }

    fn default_kid(&self) -> String {
        lock(&self.keys).default_kid.clone()
    }

    fn public_jwks(&self) -> Value {
        let mut keys: Vec<Value> = lock(&self.keys)
            .keys
            .iter()
            .filter(|entry| entry.published)
            .map(|entry| entry.key.public_jwk(&entry.kid, entry.publish_alg))
            .collect();
        keys.extend(lock(&self.extra_jwks).iter().cloned());
        json!({ "keys": keys })
    }

    fn published_algs(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = Vec::new();
        for entry in lock(&self.keys).keys.iter().filter(|e| e.published) {
            let alg = entry.key.alg().as_str();
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        if !algs.contains(&"RS256") {
            // OpenID Connect Discovery requires RS256 in this list.
            algs.insert(0, "RS256");
        }
        algs
    }

    /// The key to sign with: `kid`, or the default key.
    fn signing_key(&self, kid: Option<&str>) -> Result<(String, Arc<SigningKey>), TestkitError> {
        let store = lock(&self.keys);
        let kid = match kid {
            Some(kid) => kid,
            None if store.default_kid.is_empty() => return Err(TestkitError::NoKey),
            None => store.default_kid.as_str(),
        };
        store
            .get(kid)
            .map(|entry| (entry.kid.clone(), Arc::clone(&entry.key)))
            .ok_or_else(|| TestkitError::UnknownKey(kid.to_owned()))
    }

    /// The kid and SPKI DER of an RSA key: `kid` (must be RSA), else the default key if RSA, else the
    /// first RSA key.
    fn rsa_public_key_der(&self, kid: Option<&str>) -> Result<(String, Vec<u8>), TestkitError> {
        let store = lock(&self.keys);
        let entry = match kid {
            Some(kid) => store
                .get(kid)
                .ok_or_else(|| TestkitError::UnknownKey(kid.to_owned()))?,
            None => store
                .get(&store.default_kid)
                .filter(|entry| entry.key.alg().is_rsa())
                .or_else(|| store.keys.iter().find(|entry| entry.key.alg().is_rsa()))
                .ok_or(TestkitError::NoRsaKey)?,
        };
        let der = entry.key.rsa_spki_der().ok_or(TestkitError::NoRsaKey)?;
        Ok((entry.kid.clone(), der))
    }
}

/// Owns the server task: dropping the last [`DevIssuer`] clone drops this and stops the server.
struct Handle {
    state: Arc<State>,
    task: AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A development OAuth issuer serving JWKS and metadata on `127.0.0.1` and minting tokens.
///
/// Cloning is cheap (reference counted); all clones control the same server, which stops when
/// [`shutdown`](Self::shutdown) is called or the last clone is dropped. See the [module docs](self).
#[derive(Clone)]
pub struct DevIssuer {
    handle: Arc<Handle>,
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

/// Settings for a [`DevIssuer`]; from [`DevIssuer::builder`].
#[derive(Clone)]
pub struct DevIssuerBuilder {
    issuer_path: String,
    trailing_slash: bool,
    keys: Vec<KeyAlg>,
    serve_oauth: bool,
    serve_openid: bool,
    bind: SocketAddr,
    credentials: ClientCredentials,
    consent: Option<Consent>,
}

impl fmt::Debug for DevIssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client secret and the bearer token are left out (`credentials` redacts them).
        f.debug_struct("DevIssuerBuilder")
            .field("issuer_path", &self.issuer_path)
            .field("trailing_slash", &self.trailing_slash)
            .field("keys", &self.keys)
            .field("serve_oauth", &self.serve_oauth)
            .field("serve_openid", &self.serve_openid)
            .field("bind", &self.bind)
            .field("introspection", &self.credentials)
            .field("authorization_server", &self.consent)
            .finish()
    }
}

impl Default for DevIssuerBuilder {
    fn default() -> Self {
        Self {
            issuer_path: String::new(),
            trailing_slash: false,
            keys: vec![KeyAlg::Rs256, KeyAlg::Es256, KeyAlg::Es384, KeyAlg::EdDsa],
            serve_oauth: true,
            serve_openid: true,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            credentials: ClientCredentials::default(),
            consent: None,
        }
    }
}

impl DevIssuerBuilder {
    /// A path for the issuer identifier: `.issuer_path("/realms/demo")` makes the issuer
    /// `http://127.0.0.1:PORT/realms/demo`. A missing leading `/` is added; a trailing `/` is dropped
    /// (use [`trailing_slash`](Self::trailing_slash)). Default: no path.
    pub fn issuer_path(mut self, path: &str) -> Self {
        self.issuer_path = path.to_owned();
        self
    }

    /// Whether the issuer identifier ends with `/` (default `false`).
    pub fn trailing_slash(mut self, yes: bool) -> Self {
        self.trailing_slash = yes;
        self
    }

    /// The initial keys, one per entry (key ids `"rs256-1"`, `"es256-1"`, …); the first one is the default
    /// signing key. Default: `[Rs256, Es256, Es384, EdDsa]`. May be empty (then the first added key becomes
    /// the default).
    pub fn keys(mut self, algs: &[KeyAlg]) -> Self {
        self.keys = algs.to_vec();
        self
    }

    /// Whether to serve RFC 8414 metadata (default `true`; otherwise its path answers 404).
    pub fn serve_oauth_metadata(mut self, yes: bool) -> Self {
        self.serve_oauth = yes;
        self
    }

    /// Whether to serve OpenID metadata (default `true`; otherwise its paths answer 404).
    pub fn serve_openid_metadata(mut self, yes: bool) -> Self {
        self.serve_openid = yes;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port). An unspecified address
    /// (`0.0.0.0`, `::`) is advertised as the loopback address in URLs.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The client credentials the introspection and revocation endpoints require (default client id
    /// `"rs-client"`, secret `"rs-secret"`), sent as `client_secret_basic` (RFC 6749 §2.3.1: each
    /// form-urlencoded, joined with `:`, base64) or `client_secret_post` (`client_id` and `client_secret`
    /// form fields). Any characters are allowed, `:`, spaces and non-ASCII included.
    pub fn introspection_client(mut self, client_id: &str, client_secret: &str) -> Self {
        self.credentials.client_id = client_id.to_owned();
        self.credentials.client_secret = client_secret.to_owned();
        self
    }

    /// Also accepts `Authorization: Bearer <token>` as the caller's credential at the introspection and
    /// revocation endpoints (default: no bearer credential). Must not be empty (checked by
    /// [`start`](Self::start)).
    pub fn introspection_bearer(mut self, token: &str) -> Self {
        self.credentials.bearer = Some(token.to_owned());
        self
    }

    /// Turns on the development authorization server (default: off): RFC 7591 dynamic client
    /// registration at `/register`, the authorization endpoint `/authorize` (authorization code with PKCE
    /// `S256` only, RFC 8707 `resource` required, consent by `consent`), and the token endpoint `/token`
    /// (authorization code and rotating refresh tokens; a refresh token is issued when the client
    /// registered the `refresh_token` grant and asked for `offline_access`, as OpenID Connect IdPs do),
    /// all advertised in the metadata. Access tokens are
    /// JWTs signed with the default key: `sub` = `"dev-user"`, `aud` = the requested resource, `scope` =
    /// the requested scopes, `client_id`, one hour of validity.
    ///
    /// **Never for production**: there is no login; anyone who reaches the port gets any scope. The
    /// issuer must listen on a loopback address ([`start`](Self::start) refuses anything else). See
    /// [the module docs](crate::testkit#the-development-authorization-server) for what each endpoint checks.
    pub fn authorization_server(mut self, consent: Consent) -> Self {
        self.consent = Some(consent);
        self
    }

    /// Generates the keys, binds the listener and spawns the server on the current tokio runtime.
    ///
    /// # Errors
    /// [`TestkitError::NoRuntime`] outside a tokio runtime, [`TestkitError::InvalidConfig`] for a path with
    /// `?`, `#` or whitespace, an empty [introspection bearer token](Self::introspection_bearer) or an
    /// [authorization server](Self::authorization_server) on a non-loopback address,
    /// [`TestkitError::Io`] if binding fails, [`TestkitError::Crypto`] if key
    /// generation fails.
    pub async fn start(self) -> Result<DevIssuer, TestkitError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| TestkitError::NoRuntime)?;

        let path = self.issuer_path.trim_end_matches('/');
        if path
            .chars()
            .any(|c| c == '?' || c == '#' || c.is_whitespace() || c.is_control())
        {
            return Err(TestkitError::InvalidConfig(
                "issuer path must not contain '?', '#', whitespace or control characters",
            ));
        }
        if self.consent.is_some() && !self.bind.ip().is_loopback() {
            return Err(TestkitError::InvalidConfig(
                "the development authorization server listens on a loopback address only",
            ));
        }
        if self.credentials.bearer.as_deref() == Some("") {
            return Err(TestkitError::InvalidConfig(
                "the introspection bearer token must not be empty",
            ));
        }
        let issuer_path = if path.is_empty() || path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };

        let mut store = KeyStore::default();
        for alg in &self.keys {
            let kid = store.next_kid(*alg);
            store.insert(kid, SigningKey::generate(*alg)?, true);
        }

        let listener = tokio::net::TcpListener::bind(self.bind)
            .await
            .map_err(TestkitError::Io)?;
        let addr = listener.local_addr().map_err(TestkitError::Io)?;
        let advertised = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
            }
            _ => addr,
        };
        let origin = format!("http://{advertised}");
        let mut issuer = format!("{origin}{issuer_path}");
        if self.trailing_slash {
            issuer.push('/');
        }

        let state = Arc::new(State {
            issuer,
            origin,
            issuer_path,
            addr,
            serve_oauth: self.serve_oauth,
            serve_openid: self.serve_openid,
            keys: Mutex::new(store),
            extra_jwks: Mutex::new(Vec::new()),
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            behaviors: Mutex::new(std::array::from_fn(|_| Behavior::Normal)),
            jwks_cache_control: Mutex::new(Some("max-age=300".to_owned())),
            credentials: self.credentials,
            registry: Mutex::new(Registry::default()),
            oauth: self.consent.map(oauth::AuthorizationServer::new),
        });
        let task = runtime
            .spawn(server::serve(listener, Arc::clone(&state)))
            .abort_handle();
        Ok(DevIssuer {
            handle: Arc::new(Handle { state, task }),
        })
    }
}
