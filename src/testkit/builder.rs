//! [`DevIssuerBuilder`]: the issuer's settings, and `start`, which binds the listener and spawns the server.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::introspect::{ClientCredentials, Registry};
use super::keys::{KeyAlg, SigningKey};
use super::oauth::{self, Consent};
use super::{server, Behavior, DevIssuer, Handle, KeyStore, State, TestkitError};

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
