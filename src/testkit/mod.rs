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

        /// Binds the token to a DPoP key: `cnf: {"jkt": <its RFC 7638 thumbprint>}` (RFC 9449 §6).
        pub fn dpop_bound(self, key: &crate::testkit::DpopKey) -> Self {
            self.claim("cnf", serde_json::json!({ "jkt": key.thumbprint() }))
        }

        /// Binds the token to a client certificate: `cnf: {"x5t#S256": base64url(SHA-256(der))}` (RFC 8705).
        pub fn certificate_bound(self, certificate_der: &[u8]) -> Self {
            use base64::Engine as _;
            use sha2::Digest as _;
            let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(certificate_der));
            self.claim("cnf", serde_json::json!({ "x5t#S256": x5t }))
        }
    };
}

mod dpop;
mod form;
mod introspect;
mod keys;
mod oauth;
pub mod probe;
mod server;
mod token;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

pub use dpop::{DpopKey, ProofBuilder};
pub use introspect::OpaqueTokenBuilder;
use introspect::{ClientCredentials, Registry};
pub use keys::KeyAlg;
use keys::SigningKey;
pub use oauth::Consent;
pub use token::TokenBuilder;

mod builder;
mod issuer;
mod types;

pub use builder::DevIssuerBuilder;
pub use issuer::DevIssuer;
use issuer::Handle;
use types::ENDPOINTS;
pub use types::{Behavior, Endpoint, TestkitError};

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
