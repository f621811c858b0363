//! Shared helpers for the HTTP integration tests of `bearer-guard`.
//!
//! - the test kit's HTTP helpers (`bearer_guard::testkit::probe`: `Reply`, the strict `WWW-Authenticate`
//!   parser and RFC 6750 checker, the clients), re-exported, with panicking wrappers for tests;
//! - the static tokens every test uses (long, distinctive strings, so a leak is easy to spot);
//! - a real HTTP server ([`TestServer`]) on `127.0.0.1:0`: `hyper_util::server::conn::auto` serving
//!   `BearerAuthLayer` around an echo service that reports what it saw;
//! - [`TestServer::send`] and [`raw_request`] over the test kit's clients.
//!
//! - [`validators`]: validating a token with a bound and asserting the outcome.
//!
//! Every network wait is bounded by [`WAIT`].
#![allow(dead_code)]

pub mod validators;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bearer_guard::testkit::probe;
#[allow(unused_imports)] // each test binary uses some of them
pub use bearer_guard::testkit::probe::{parse_challenges, Challenge, RawReply, Reply};
use bearer_guard::{
    AccessToken, BearerAuthLayer, BearerAuthLayerBuilder, StaticToken, StaticValidator,
};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tower::Layer;

/// Every network wait is bounded by this.
pub const WAIT: Duration = Duration::from_secs(5);

/// The issuer every test server trusts.
pub const ISSUER: &str = "https://auth.example.com";

/// `alice`: `mcp:read`.
pub const ALICE: &str = "AliceTok-q7Zx9PLm2Wv4Bn8Rk3Ty6-secret";
/// `writer`: `mcp:read mcp:write notes:read notes:write`.
pub const WRITER: &str = "WriterTok-M4nB7vC1xZ8kL2pQ9w-secret";
/// `broad`: `mcp` (which a hierarchy may expand).
pub const BROAD: &str = "BroadTok-Hh5Jj6Kk7Ll8Zz9Xx0-secret";
/// `offline`: `mcp:read offline_access`.
pub const OFFLINE: &str = "OfflineTok-Rr3Ee4Ww5Qq6Tt7Yy-secret";
/// `notes-reader`: `notes:read mcp:read`.
pub const NOTES_READER: &str = "NotesTok-Uu1Ii2Oo3Pp4Aa5Ss-secret";
/// A well-formed token no validator knows.
pub const UNKNOWN: &str = "UnknownTok-Dd6Ff7Gg8Hh9Jj0Kk-secret";

/// Every token above, for leak checks.
pub const ALL_TOKENS: &[&str] = &[ALICE, WRITER, BROAD, OFFLINE, NOTES_READER, UNKNOWN];

/// A static validator holding the tokens above.
pub fn static_validator() -> StaticValidator {
    StaticValidator::builder()
        .token(ALICE, StaticToken::new("alice").scopes(["mcp:read"]))
        .token(
            WRITER,
            StaticToken::new("writer").scopes([
                "mcp:read",
                "mcp:write",
                "notes:read",
                "notes:write",
            ]),
        )
        .token(BROAD, StaticToken::new("broad").scopes(["mcp"]))
        .token(
            OFFLINE,
            StaticToken::new("offline").scopes(["mcp:read", "offline_access"]),
        )
        .token(
            NOTES_READER,
            StaticToken::new("notes-reader").scopes(["notes:read", "mcp:read"]),
        )
        .build()
        .expect("static validator")
}

/// A builder with the resource, the issuer and the static validator set; tests add the rest.
pub fn base_builder(resource: &str) -> BearerAuthLayerBuilder {
    BearerAuthLayer::builder()
        .resource(resource)
        .authorization_server(ISSUER)
        .validator(static_validator())
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A running guarded server. The accept loop ends on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    /// How many requests reached the inner (echo) service.
    pub calls: Arc<AtomicUsize>,
    pub layer: BearerAuthLayer,
    _served: probe::Served,
}

/// Binds `127.0.0.1:0`.
pub async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    (listener, addr)
}

/// Starts a server whose resource is `http://127.0.0.1:<port>/mcp`; `configure` gets the base builder.
pub async fn start(
    configure: impl FnOnce(BearerAuthLayerBuilder) -> BearerAuthLayerBuilder,
) -> TestServer {
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let layer = configure(base_builder(&resource))
        .build()
        .expect("valid guard configuration");
    serve(listener, layer)
}

/// Serves `layer` around the echo service on `listener`.
pub fn serve(listener: TcpListener, layer: BearerAuthLayer) -> TestServer {
    let calls = Arc::new(AtomicUsize::new(0));
    let served = probe::serve(listener, layer.layer(echo_service(calls.clone()))).expect("serve");
    TestServer {
        addr: served.addr,
        calls,
        layer,
        _served: served,
    }
}

/// Serves `/mcp` answering `sub=<subject>` (or `sub=none`), guarded by a layer for the resource
/// `http://ADDR/mcp` around `validator`, advertising `authorization_server`.
pub async fn serve_whoami(
    authorization_server: &str,
    validator: impl bearer_guard::TokenValidator,
) -> probe::Served {
    let (listener, addr) = bind().await;
    let layer = BearerAuthLayer::builder()
        .resource(format!("http://{addr}/mcp"))
        .authorization_server(authorization_server)
        .validator(validator)
        .build()
        .expect("guard");
    let whoami = tower::service_fn(|request: Request<Incoming>| async move {
        let subject = request
            .extensions()
            .get::<AccessToken>()
            .and_then(|t| t.subject().map(str::to_owned));
        let body = format!("sub={}", subject.as_deref().unwrap_or("none"));
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    probe::serve(listener, layer.layer(whoami)).expect("serve")
}

/// Hex SHA-256, to let the echo service report the `Authorization` header without echoing it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The inner service: counts calls and answers
/// `sub=<subject or none>;scopes=<granted>;auth=<absent | sha256 of each Authorization value>;path=<path>`.
pub fn echo_service(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |request: Request<Incoming>| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let token = request.extensions().get::<AccessToken>();
            let subject = token
                .map(|t| t.subject().unwrap_or("?").to_owned())
                .unwrap_or_else(|| "none".to_owned());
            let scopes = token
                .map(|t| t.scopes().to_scope_string())
                .unwrap_or_default();
            let auth: Vec<String> = request
                .headers()
                .get_all(AUTHORIZATION)
                .iter()
                .map(|v| sha256_hex(v.as_bytes()))
                .collect();
            let auth = if auth.is_empty() {
                "absent".to_owned()
            } else {
                auth.join(",")
            };
            let body = format!(
                "sub={subject};scopes={scopes};auth={auth};path={}",
                request.uri().path()
            );
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The clients
// ---------------------------------------------------------------------------------------------

impl TestServer {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The `resource_metadata="…"` parameter this server's challenges must start with.
    pub fn prm_param(&self) -> String {
        format!(
            "resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\"",
            self.addr
        )
    }

    /// A request builder for `path` on this server.
    pub fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder().method(method).uri(self.url(path))
    }

    /// Sends a request with an empty body.
    pub async fn send(&self, builder: http::request::Builder) -> Reply {
        send(builder.body(Full::new(Bytes::new())).expect("request")).await
    }

    /// `GET path` with `Authorization: <authorization>` when given.
    pub async fn get(&self, path: &str, authorization: Option<&str>) -> Reply {
        let mut builder = self.request(Method::GET, path);
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        self.send(builder).await
    }

    /// `method path` with `Authorization: Bearer <token>`.
    pub async fn call_with_token(&self, method: Method, path: &str, token: &str) -> Reply {
        self.send(
            self.request(method, path)
                .header(AUTHORIZATION, format!("Bearer {token}")),
        )
        .await
    }

    /// How many requests reached the inner service.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Sends `request` over HTTP/1.1 (the test kit's client); panics if the exchange fails or times out.
pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    probe::send(request).await.expect("HTTP exchange")
}

/// Sends `request` over HTTP/2 with prior knowledge (h2c); panics if the exchange fails.
pub async fn send_h2(request: Request<Full<Bytes>>) -> Reply {
    probe::send_h2(request).await.expect("HTTP/2 exchange")
}

/// `GET http://<addr>/mcp` with `Authorization: Bearer <token>`.
pub async fn get_with_token(addr: SocketAddr, token: &str) -> Reply {
    let request = Request::get(format!("http://{addr}/mcp"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    send(request).await
}

/// Writes `request` on a raw socket and reads the response to EOF; panics if that fails.
pub async fn raw_request(addr: SocketAddr, request: &str) -> RawReply {
    probe::raw_request(addr, request)
        .await
        .expect("raw exchange")
}

/// The test kit's strict check of one `Bearer` challenge; panics with what is wrong.
pub fn check_bearer_challenge(value: &str) -> Challenge {
    probe::check_bearer_challenge(value).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts `reply` carries exactly one `WWW-Authenticate` equal to `expected`, and checks it strictly.
pub fn assert_challenge(reply: &Reply, expected: &str) -> Challenge {
    assert_eq!(reply.challenge(), expected, "{reply:?}");
    reply.bearer_challenge().unwrap_or_else(|e| panic!("{e}"))
}
