//! Shared helpers for the HTTP integration tests of `bearer-guard`.
//!
//! - a strict RFC 9110 §11 `WWW-Authenticate` parser ([`parse_challenges`]) and an RFC 6750 §3 checker
//!   ([`check_bearer_challenge`]);
//! - the static tokens every test uses (long, distinctive strings, so a leak is easy to spot);
//! - a real HTTP server ([`TestServer`]) on `127.0.0.1:0`: `hyper_util::server::conn::auto` serving
//!   `BearerAuthLayer` around an echo service that reports what it saw;
//! - a real HTTP client ([`TestServer::send`], hyper-util's legacy `Client`) and a raw TCP client
//!   ([`raw_request`]) for requests a well-behaved client would not send.
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

use bearer_guard::{
    AccessToken, BearerAuthLayer, BearerAuthLayerBuilder, StaticToken, StaticValidator,
};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
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

/// A running guarded server. The accept loop is aborted on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    /// How many requests reached the inner (echo) service.
    pub calls: Arc<AtomicUsize>,
    pub layer: BearerAuthLayer,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
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
    let addr = listener.local_addr().expect("local_addr");
    let calls = Arc::new(AtomicUsize::new(0));
    let service = layer.layer(echo_service(calls.clone()));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    TestServer {
        addr,
        calls,
        layer,
        task,
    }
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

/// A collected response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The single value of `name` (panics if repeated), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        assert!(values.next().is_none(), "header {name} is repeated");
        Some(first.to_str().expect("header value is text"))
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }

    /// Does any header name or value, or the body, contain `needle`?
    pub fn contains(&self, needle: &str) -> bool {
        let needle = needle.as_bytes();
        let has = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        has(&self.body)
            || self
                .headers
                .iter()
                .any(|(name, value)| has(name.as_str().as_bytes()) || has(value.as_bytes()))
    }
}

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

/// Sends `request` with hyper-util's legacy client over HTTP/1.1 (a new client, so no pooled state leaks
/// between calls).
pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    send_with(
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>(),
        request,
    )
    .await
}

/// Sends `request` over HTTP/2 with prior knowledge (h2c).
pub async fn send_h2(request: Request<Full<Bytes>>) -> Reply {
    send_with(
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http::<Full<Bytes>>(),
        request,
    )
    .await
}

async fn send_with(
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Reply {
    let exchange = async {
        let response = client.request(request).await.expect("HTTP request");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    };
    timeout(WAIT, exchange)
        .await
        .expect("HTTP exchange timed out")
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawReply {
    /// All values of `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Writes `request` (an HTTP/1.1 request with `Connection: close`) and reads the response to EOF.
pub async fn raw_request(addr: SocketAddr, request: &str) -> RawReply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = timeout(WAIT, exchange)
        .await
        .expect("raw exchange timed out");
    let text = String::from_utf8(raw).expect("response is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    RawReply {
        status,
        headers,
        body: body.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// A strict RFC 9110 §11 challenge parser
// ---------------------------------------------------------------------------------------------

/// One challenge: the scheme and its auth-params, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (names are case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// OWS / BWS: `*( SP / HTAB )`; returns what was skipped.
    fn ows(&mut self) -> &[u8] {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        &self.bytes[start..self.at]
    }

    fn token(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE` (RFC 9110 §5.6.4), unescaped.
    fn quoted_string(&mut self) -> Result<String, String> {
        if self.peek() != Some(b'"') {
            return Err("expected a quoted-string".into());
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err("unterminated quoted-string".into());
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err("unterminated quoted-pair".into());
                    };
                    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    if !(escaped == b'\t'
                        || escaped == b' '
                        || (0x21..=0x7E).contains(&escaped)
                        || escaped >= 0x80)
                    {
                        return Err(format!("invalid quoted-pair \\x{escaped:02x}"));
                    }
                    self.at += 1;
                    out.push(escaped);
                }
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF => out.push(b),
                other => return Err(format!("invalid character 0x{other:02x} in quoted-string")),
            }
        }
        String::from_utf8(out).map_err(|_| "quoted-string is not UTF-8".to_owned())
    }

    /// Is the cursor at `token BWS "="` (an auth-param) rather than at a new challenge?
    fn at_auth_param(&self) -> bool {
        let mut probe = Cursor {
            bytes: self.bytes,
            at: self.at,
        };
        probe.token().is_some() && {
            probe.ows();
            probe.peek() == Some(b'=')
        }
    }
}

/// Parses a `WWW-Authenticate` field value strictly (RFC 9110 §11.6.1, §11.2, §5.6.1, §5.6.4).
///
/// Stricter than a recipient must be: it refuses empty list elements (which senders MUST NOT generate),
/// leading or trailing whitespace, token68 (not needed here), anything but `1*SP` between scheme and
/// parameters, empty parameter names or values, and duplicate parameter names within a challenge
/// (compared case-insensitively, RFC 9110 §11.2).
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, String> {
    let mut c = Cursor {
        bytes: value.as_bytes(),
        at: 0,
    };
    if c.at_end() {
        return Err("empty field value".into());
    }
    if matches!(c.peek(), Some(b' ' | b'\t')) {
        return Err("leading whitespace".into());
    }
    let mut challenges = Vec::new();
    'challenges: loop {
        let scheme = c
            .token()
            .ok_or_else(|| format!("expected an auth-scheme at byte {}", c.at))?;
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
        };
        let gap = c.ows().to_vec();
        if c.at_end() {
            if !gap.is_empty() {
                return Err("trailing whitespace".into());
            }
            challenges.push(challenge);
            break;
        }
        if c.peek() == Some(b',') {
            c.at += 1;
            c.ows();
            if c.at_end() || c.peek() == Some(b',') {
                return Err("empty list element".into());
            }
            challenges.push(challenge);
            continue;
        }
        if gap.is_empty() || gap.iter().any(|&b| b != b' ') {
            return Err("auth-scheme must be followed by 1*SP".into());
        }
        loop {
            let name = c
                .token()
                .ok_or_else(|| format!("expected an auth-param name at byte {}", c.at))?;
            c.ows();
            if c.peek() != Some(b'=') {
                return Err(format!(
                    "expected '=' after {name:?} (token68 is not supported)"
                ));
            }
            c.at += 1;
            c.ows();
            let value = if c.peek() == Some(b'"') {
                c.quoted_string()?
            } else {
                c.token()
                    .ok_or_else(|| format!("expected a token or quoted-string for {name:?}"))?
            };
            if challenge
                .params
                .iter()
                .any(|(seen, _)| seen.eq_ignore_ascii_case(&name))
            {
                return Err(format!("duplicate auth-param {name:?}"));
            }
            challenge.params.push((name, value));
            let gap = c.ows().len();
            if c.at_end() {
                if gap > 0 {
                    return Err("trailing whitespace".into());
                }
                challenges.push(challenge);
                break 'challenges;
            }
            if c.peek() != Some(b',') {
                return Err(format!("expected ',' at byte {}", c.at));
            }
            c.at += 1;
            c.ows();
            if c.at_end() || c.peek() == Some(b',') {
                return Err("empty list element".into());
            }
            if !c.at_auth_param() {
                challenges.push(challenge);
                continue 'challenges;
            }
        }
    }
    Ok(challenges)
}

/// `scope` characters of RFC 6750 §3: `%x21 / %x23-5B / %x5D-7E`.
pub fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// `error` / `error_description` characters of RFC 6750 §3: `%x20-21 / %x23-5B / %x5D-7E`.
pub fn is_description_char(b: u8) -> bool {
    b == 0x20 || is_scope_char(b)
}

/// Parses `value` strictly and checks it is exactly one `Bearer` challenge whose parameters are the known
/// RFC 6750 / RFC 9728 ones, each at most once, each within its RFC 6750 §3 character set, with
/// `resource_metadata` present. Returns the challenge.
pub fn check_bearer_challenge(value: &str) -> Challenge {
    let challenges =
        parse_challenges(value).unwrap_or_else(|e| panic!("unparsable challenge {value:?}: {e}"));
    assert_eq!(challenges.len(), 1, "exactly one challenge in {value:?}");
    let challenge = challenges.into_iter().next().expect("one challenge");
    assert_eq!(challenge.scheme, "Bearer", "Bearer is the first challenge");
    assert!(
        !value.contains('\\'),
        "no escapes needed (or allowed) in {value:?}"
    );
    assert!(
        challenge.param("resource_metadata").is_some(),
        "resource_metadata present in {value:?}"
    );
    for (name, v) in &challenge.params {
        assert!(!v.is_empty(), "{name} is empty in {value:?}");
        match name.as_str() {
            "scope" => {
                for scope in v.split(' ') {
                    assert!(
                        !scope.is_empty() && scope.bytes().all(is_scope_char),
                        "bad scope token {scope:?} in {value:?}"
                    );
                }
            }
            "error" | "error_description" | "realm" => assert!(
                v.bytes().all(is_description_char),
                "{name} outside %x20-21 / %x23-5B / %x5D-7E in {value:?}"
            ),
            "resource_metadata" | "error_uri" => assert!(
                v.bytes().all(is_scope_char),
                "{name} outside %x21 / %x23-5B / %x5D-7E in {value:?}"
            ),
            other => panic!("unexpected auth-param {other:?} in {value:?}"),
        }
    }
    if let Some(error) = challenge.param("error") {
        assert!(
            matches!(
                error,
                "invalid_request" | "invalid_token" | "insufficient_scope"
            ),
            "unknown error code {error:?}"
        );
    }
    challenge
}

/// Asserts `reply` carries exactly one `WWW-Authenticate` equal to `expected`, and checks it strictly.
pub fn assert_challenge(reply: &Reply, expected: &str) -> Challenge {
    let values: Vec<_> = reply.headers.get_all("www-authenticate").iter().collect();
    assert_eq!(values.len(), 1, "one WWW-Authenticate header: {reply:?}");
    let value = values[0].to_str().expect("challenge is ASCII");
    assert_eq!(value, expected);
    check_bearer_challenge(value)
}
