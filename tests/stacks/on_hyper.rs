//! `BearerAuthLayer` around a plain `tower::service_fn`, served by raw hyper 1 + hyper-util
//! (`auto::Builder`, so HTTP/1.1 and HTTP/2 prior knowledge on the same port) over real loopback
//! sockets, called with hyper-util's legacy `Client`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bearer_guard::scope::{Requirement, RoutePolicy};
use bearer_guard::testkit::probe::{self, Reply, Served};
use bearer_guard::{
    AccessToken, BearerAuthLayer, BearerToken, StaticToken, StaticValidator, TokenValidator,
    Validation, ValidationContext,
};
use http::{header, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::time::timeout;
use tower::ServiceBuilder;

/// Every wait in this file is bounded by this.
const WAIT: Duration = Duration::from_secs(5);

/// `notes:read notes:write`.
const WRITER_TOKEN: &str = "alice-writer-token-0123456789";
/// `notes:read`.
const READER_TOKEN: &str = "bob-reader-token-0123456789";
const ISSUER: &str = "https://auth.example.com";

fn static_validator() -> StaticValidator {
    StaticValidator::builder()
        .token(
            WRITER_TOKEN,
            StaticToken::new("alice").scopes(["notes:read", "notes:write"]),
        )
        .token(READER_TOKEN, StaticToken::new("bob").scopes(["notes:read"]))
        .build()
        .expect("static validator")
}

/// The resource is `http://ADDR/notes`; writes need `notes:write`, everything else any valid token.
fn guard(addr: SocketAddr, validator: impl TokenValidator, strip: bool) -> BearerAuthLayer {
    BearerAuthLayer::builder()
        .resource(format!("http://{addr}/notes"))
        .authorization_server(ISSUER)
        .scopes_supported(["notes:read"])
        .validator(validator)
        .policy(RoutePolicy::new().route(
            Some(Method::PUT),
            "/notes/*",
            Requirement::all_of(["notes:write"]),
        ))
        .strip_authorization_header(strip)
        .build()
        .expect("guard")
}

/// The application: echoes the subject, whether it still sees `Authorization`, and the request body.
async fn app(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let subject = request
        .extensions()
        .get::<AccessToken>()
        .and_then(|t| t.subject().map(str::to_owned));
    let saw_authorization = request.headers().contains_key(header::AUTHORIZATION);
    let Some(subject) = subject else {
        // Fail closed if ever reached without the guard.
        let mut response = Response::new(Full::new(Bytes::from_static(b"no token")));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(response);
    };
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = format!(
        "subject={subject} authorization={} body={}",
        if saw_authorization {
            "kept"
        } else {
            "stripped"
        },
        String::from_utf8_lossy(&body)
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// Serves the guarded `app` on a fresh loopback port; `auto::Builder` speaks HTTP/1.1 and HTTP/2.
async fn serve(make_guard: impl FnOnce(SocketAddr) -> BearerAuthLayer) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let service = ServiceBuilder::new()
        .layer(make_guard(addr))
        .service(tower::service_fn(app));
    probe::serve(listener, service).expect("serve")
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Http1,
    Http2,
}

fn client(proto: Proto) -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(proto == Proto::Http2)
        .build_http()
}

async fn send_with(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Reply {
    let response = timeout(WAIT, client.request(request))
        .await
        .expect("response in time")
        .expect("response");
    Reply::collect(response).await.expect("body")
}

async fn send(
    proto: Proto,
    method: Method,
    url: String,
    headers: &[(&str, &str)],
    body: &'static str,
) -> Reply {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request");
    send_with(&client(proto), request).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn metadata_url(addr: SocketAddr) -> String {
    format!("http://{addr}/.well-known/oauth-protected-resource/notes")
}

fn challenge(reply: &Reply) -> &str {
    reply
        .headers
        .get(header::WWW_AUTHENTICATE)
        .expect("WWW-Authenticate")
        .to_str()
        .expect("ASCII")
}

/// The core flows, for one protocol.
async fn core_flows(proto: Proto) {
    let served = serve(|addr| guard(addr, static_validator(), true)).await;
    let addr = served.addr;
    let expected_version = match proto {
        Proto::Http1 => Version::HTTP_11,
        Proto::Http2 => Version::HTTP_2,
    };

    // No token: 401 with exactly the RFC 9728 challenge, a JSON body, no-store.
    let reply = send(proto, Method::GET, format!("http://{addr}/notes"), &[], "").await;
    assert_eq!(reply.version, expected_version);
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&reply),
        format!(r#"Bearer resource_metadata="{}""#, metadata_url(addr))
    );
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    let body: serde_json::Value = serde_json::from_str(reply.text()).expect("JSON");
    assert_eq!(body["error"], "unauthorized");

    // A valid token: the app runs, sees the subject and the body, not the token.
    let auth = bearer(READER_TOKEN);
    let reply = send(
        proto,
        Method::POST,
        format!("http://{addr}/notes/1"),
        &[("authorization", &auth)],
        "hello",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, "subject=bob authorization=stripped body=hello");

    // Writes need notes:write: 403 for bob, 200 for alice.
    let reply = send(
        proto,
        Method::PUT,
        format!("http://{addr}/notes/1"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(challenge(&reply).ends_with(r#"error="insufficient_scope", error_description="The access token lacks a scope this request requires", scope="notes:write""#));
    let writer = bearer(WRITER_TOKEN);
    let reply = send(
        proto,
        Method::PUT,
        format!("http://{addr}/notes/1"),
        &[("authorization", &writer)],
        "v2",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "subject=alice authorization=stripped body=v2");

    // The metadata document, without a token.
    let reply = send(proto, Method::GET, metadata_url(addr), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let doc: serde_json::Value = serde_json::from_str(reply.text()).expect("JSON");
    assert_eq!(
        doc,
        serde_json::json!({
            "resource": format!("http://{addr}/notes"),
            "authorization_servers": [ISSUER],
            "scopes_supported": ["notes:read"],
            "bearer_methods_supported": ["header"],
        })
    );
    let reply = send(proto, Method::POST, metadata_url(addr), &[], "x").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers[header::ALLOW], "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn http1_flows() {
    core_flows(Proto::Http1).await;
}

#[tokio::test]
async fn http2_prior_knowledge_flows() {
    core_flows(Proto::Http2).await;
}

/// Details of the HTTP exchange that only a real server and client show.
#[tokio::test]
async fn wire_details() {
    let served = serve(|addr| guard(addr, static_validator(), true)).await;
    let addr = served.addr;
    let url = format!("http://{addr}/notes");

    // HEAD of the metadata: 200, the document's length announced, no body.
    let get = send(Proto::Http1, Method::GET, metadata_url(addr), &[], "").await;
    let reply = send(Proto::Http1, Method::HEAD, metadata_url(addr), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty());
    assert_eq!(
        reply.headers[header::CONTENT_LENGTH],
        get.body.len().to_string().as_str()
    );

    // A large body the guard refuses without reading: the answer comes at once, and the same
    // (pooled) client keeps working afterwards.
    let client = client(Proto::Http1);
    for _ in 0..2 {
        let request = Request::post(format!("http://{addr}/notes"))
            .body(Full::new(Bytes::from(vec![b'x'; 4 << 20])))
            .expect("request");
        assert_eq!(
            send_with(&client, request).await.status,
            StatusCode::UNAUTHORIZED
        );
        let request = Request::get(format!("http://{addr}/notes"))
            .header(header::AUTHORIZATION, bearer(READER_TOKEN))
            .body(Full::new(Bytes::new()))
            .expect("request");
        assert_eq!(send_with(&client, request).await.status, StatusCode::OK);
    }

    // Two Authorization headers: 400 invalid_request.
    let auth = bearer(READER_TOKEN);
    let reply = send(
        Proto::Http1,
        Method::GET,
        url.clone(),
        &[("authorization", &auth), ("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(challenge(&reply).contains(r#"error="invalid_request""#));

    // A token in the query string is ignored (OAuth 2.1 §5.1): still 401 without error.
    let reply = send(
        Proto::Http1,
        Method::GET,
        format!("{url}?access_token={READER_TOKEN}"),
        &[],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(!challenge(&reply).contains("error="));

    // Browsers: the challenge is exposed to scripts when the request is cross-origin.
    let reply = send(
        Proto::Http1,
        Method::GET,
        url.clone(),
        &[("origin", "https://app.example.com")],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS],
        "WWW-Authenticate"
    );

    // A gRPC content type over plain hyper: trailers-only style status in the headers.
    let reply = send(
        Proto::Http2,
        Method::POST,
        url,
        &[("content-type", "application/grpc+proto")],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["grpc-status"], "16");
    assert!(reply.headers.contains_key(header::WWW_AUTHENTICATE));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn authorization_header_kept_when_configured() {
    let served = serve(|addr| guard(addr, static_validator(), false)).await;
    let addr = served.addr;
    let auth = bearer(READER_TOKEN);
    let reply = send(
        Proto::Http1,
        Method::GET,
        format!("http://{addr}/notes"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(reply.body, "subject=bob authorization=kept body=");
}

/// An asynchronous validator answering slowly: many concurrent requests multiplexed on one HTTP/2
/// connection each get their own verdict.
#[tokio::test]
async fn concurrent_requests_with_a_pending_validator() {
    struct Slow(StaticValidator);
    impl TokenValidator for Slow {
        fn validate(&self, token: &BearerToken, context: &ValidationContext) -> Validation {
            let result = self
                .0
                .validate(token, context)
                .into_ready()
                .expect("static is ready");
            Validation::pending(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                result
            })
        }
    }

    let served = serve(|addr| guard(addr, Slow(static_validator()), true)).await;
    let addr = served.addr;
    let client = client(Proto::Http2);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = client.clone();
        let (token, expected) = match i % 3 {
            0 => (Some(WRITER_TOKEN), StatusCode::OK),
            1 => (
                Some("unknown-token-0123456789abc"),
                StatusCode::UNAUTHORIZED,
            ),
            _ => (None, StatusCode::UNAUTHORIZED),
        };
        let url = format!("http://{addr}/notes/{i}");
        tasks.push(tokio::spawn(async move {
            let mut request = Request::post(url);
            if let Some(token) = token {
                request = request.header(header::AUTHORIZATION, bearer(token));
            }
            let request = request
                .body(Full::new(Bytes::from(format!("n{i}"))))
                .expect("request");
            let reply = send_with(&client, request).await;
            assert_eq!(reply.status, expected, "request {i}");
            if expected == StatusCode::OK {
                assert_eq!(
                    reply.body,
                    format!("subject=alice authorization=stripped body=n{i}")
                );
            }
        }));
    }
    for task in tasks {
        timeout(WAIT, task)
            .await
            .expect("in time")
            .expect("no panic");
    }
}
