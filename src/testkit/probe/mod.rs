//! HTTP helpers for tests of a guarded service (accessors named for what a test asserts panic with the
//! reply in the message when it is not there, like `assert!`): a collected [`Reply`], a real client over HTTP/1.1 and
//! HTTP/2 ([`send`], [`send_h2`]), a raw-socket client for requests a well-behaved client would not send
//! ([`raw_request`]), and a strict `WWW-Authenticate` parser and RFC 6750 checker
//! ([`parse_challenges`], [`check_bearer_challenge`]).
//!
//! ```
//! use bearer_guard::testkit::probe::{send, Reply};
//! use bearer_guard::testkit::DevIssuer;
//! use bearer_guard::{BearerAuthLayer, JwtValidator, Requirement};
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use std::convert::Infallible;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = DevIssuer::builder().start().await?;
//! let guard = BearerAuthLayer::builder()
//!     .resource("https://mcp.example.com/mcp")
//!     .authorization_server(issuer.issuer())
//!     .validator(JwtValidator::builder(issuer.issuer()).build()?)
//!     .require(Requirement::all_of(["mcp:write"]))
//!     .build()?;
//! let app = guard.layer(service_fn(|_request: Request<Full<Bytes>>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }));
//!
//! // In process: call the service and collect what it answers.
//! let token = issuer.token().audience("https://mcp.example.com/mcp").sign()?; // scope mcp:read
//! let request = Request::post("https://mcp.example.com/mcp")
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(Full::new(Bytes::new()))?;
//! let reply = Reply::collect(app.oneshot(request).await?).await?;
//! assert_eq!(reply.status, StatusCode::FORBIDDEN);
//! let challenge = reply.bearer_challenge()?; // strictly parsed and checked against RFC 6750
//! assert_eq!(challenge.param("error"), Some("insufficient_scope"));
//! assert_eq!(challenge.param("scope"), Some("mcp:write"));
//! assert!(!reply.contains(&token));
//!
//! // Over the network: the development issuer's own metadata, with the test kit's client.
//! let url = format!("{}/.well-known/oauth-authorization-server", issuer.issuer());
//! let reply = send(Request::get(url).body(Full::new(Bytes::new()))?).await?;
//! assert_eq!(reply.status, StatusCode::OK);
//! assert_eq!(reply.json()["issuer"], issuer.issuer());
//! # Ok(())
//! # }
//! ```
//!
//! Every exchange is bounded by [`WAIT`]; the clients connect to what the request's URL names (use
//! `127.0.0.1` in tests).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod challenge;

pub use challenge::{check_bearer_challenge, parse_challenges, Challenge};

use super::TestkitError;

/// How long one exchange (connect, request, whole response) may take before it is an error.
pub const WAIT: Duration = Duration::from_secs(5);

/// A response, collected: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP version the response came in.
    pub version: Version,
    /// The status code.
    pub status: StatusCode,
    /// Every header, repeated ones included.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// Collects `response` (from an in-process `tower::Service` call, or any client), body included.
    ///
    /// # Errors
    ///
    /// The body's error if reading it fails, [`TestkitError::Timeout`] after [`WAIT`].
    pub async fn collect<B>(response: Response<B>) -> Result<Self, TestkitError>
    where
        B: Body,
        B::Error: std::fmt::Display,
    {
        let (parts, body) = response.into_parts();
        let body = timeout(WAIT, body.collect())
            .await
            .map_err(|_| TestkitError::Timeout)?
            .map_err(|e| TestkitError::Http(format!("reading the response body: {e}")))?
            .to_bytes();
        Ok(Self {
            version: parts.version,
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// The value of header `name` as text, `None` if it is absent.
    ///
    /// # Panics
    ///
    /// If the header is repeated or is not visible ASCII: a test asking for *the* value would otherwise
    /// pass on the wrong one.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        assert!(
            values.next().is_none(),
            "header {name} is repeated: {self:?}"
        );
        match first.to_str() {
            Ok(text) => Some(text),
            Err(_) => panic!("header {name} is not visible ASCII: {first:?}"),
        }
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect()
    }

    /// The body as UTF-8 text.
    ///
    /// # Panics
    ///
    /// If the body is not UTF-8.
    pub fn text(&self) -> &str {
        match std::str::from_utf8(&self.body) {
            Ok(text) => text,
            Err(e) => panic!("the body is not UTF-8 ({e}): {:?}", self.body),
        }
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(json) => json,
            Err(e) => panic!("the body is not JSON ({e}): {:?}", self.body),
        }
    }

    /// The `WWW-Authenticate` value (check there is none with `header("www-authenticate").is_none()`).
    ///
    /// # Panics
    ///
    /// If there is none, several, or it is not visible ASCII.
    pub fn challenge(&self) -> &str {
        match self.header("www-authenticate") {
            Some(challenge) => challenge,
            None => panic!("no WWW-Authenticate header: {self:?}"),
        }
    }

    /// The `WWW-Authenticate` challenge, strictly parsed and checked against RFC 6750 §3 and RFC 9728 §5.1
    /// (see [`check_bearer_challenge`]).
    ///
    /// # Errors
    ///
    /// What is wrong: no header, several, or a challenge that breaks the rules.
    pub fn bearer_challenge(&self) -> Result<Challenge, String> {
        let values = self.header_all("www-authenticate");
        let [value] = values[..] else {
            return Err(format!(
                "{} WWW-Authenticate headers, not exactly one",
                values.len()
            ));
        };
        let value =
            std::str::from_utf8(value).map_err(|_| "WWW-Authenticate is not ASCII".to_owned())?;
        check_bearer_challenge(value)
    }

    /// Does `needle` appear in any header name or value, or in the body? (E.g. "the token is never
    /// echoed".)
    pub fn contains(&self, needle: &str) -> bool {
        let needle = needle.as_bytes();
        let has = |hay: &[u8]| !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle);
        has(&self.body)
            || self
                .headers
                .iter()
                .any(|(name, value)| has(name.as_str().as_bytes()) || has(value.as_bytes()))
    }
}

/// Sends `request` over HTTP/1.1 with hyper-util's client (a new one per call: no pooled state is shared
/// between calls) and collects the reply.
///
/// # Errors
///
/// [`TestkitError::Http`] if the exchange fails, [`TestkitError::Timeout`] after [`WAIT`].
pub async fn send(request: Request<Full<Bytes>>) -> Result<Reply, TestkitError> {
    exchange(Client::builder(TokioExecutor::new()).build_http(), request).await
}

/// Sends `request` over HTTP/2 with prior knowledge (h2c), like [`send`].
///
/// # Errors
///
/// As [`send`].
pub async fn send_h2(request: Request<Full<Bytes>>) -> Result<Reply, TestkitError> {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    exchange(client, request).await
}

async fn exchange(
    client: Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Reply, TestkitError> {
    let response = timeout(WAIT, client.request(request))
        .await
        .map_err(|_| TestkitError::Timeout)?
        .map_err(|e| TestkitError::Http(format!("HTTP request failed: {e}")))?;
    Reply::collect(response).await
}

/// A response read off a raw socket: what the server wrote, split but not interpreted.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// The status code of the status line.
    pub status: u16,
    /// The header lines, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Everything after the header section (not de-chunked).
    pub body: String,
}

impl RawReply {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Writes `request` as is (an HTTP/1.1 request; send `Connection: close`) to `addr` and reads the response
/// until the server closes the connection.
///
/// # Errors
///
/// [`TestkitError::Io`] for socket errors, [`TestkitError::Http`] for a response that is not HTTP/1.x
/// text, [`TestkitError::Timeout`] after [`WAIT`].
pub async fn raw_request(addr: SocketAddr, request: &str) -> Result<RawReply, TestkitError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = timeout(WAIT, exchange)
        .await
        .map_err(|_| TestkitError::Timeout)?
        .map_err(TestkitError::Io)?;
    let bad = |what: &str| TestkitError::Http(format!("raw response: {what}"));
    let text = String::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no end of header section"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers = lines
        .map(|line| {
            line.split_once(':')
                .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
                .ok_or_else(|| bad("a header line without ':'"))
        })
        .collect::<Result<_, _>>()?;
    Ok(RawReply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A service served on `127.0.0.1` by [`serve`]; the accept loop (and every connection) ends when it is
/// dropped.
#[derive(Debug)]
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `service` (e.g. a guarded tower stack) over HTTP/1.1 and HTTP/2 (hyper-util's `auto`) on
/// `listener`, each connection on its own task, until the returned [`Served`] is dropped.
///
/// # Errors
///
/// [`TestkitError::Io`] if the listener has no local address.
pub fn serve<S, B>(listener: tokio::net::TcpListener, service: S) -> Result<Served, TestkitError>
where
    S: tower_service::Service<Request<hyper::body::Incoming>, Response = Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let addr = listener.local_addr().map_err(TestkitError::Io)?;
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _peer)) = listener.accept().await else {
                // Out of descriptors, say: wait a little instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            connections.spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
            // Finished connections are reaped as new ones arrive (the set stays bounded by the live ones).
            while connections.try_join_next().is_some() {}
        }
    });
    Ok(Served { addr, task })
}
