//! `BearerAuthLayer` under tonic 0.14, over real loopback sockets:
//! `Server::builder().layer(guard).add_service(health)` served with `serve_with_incoming`, called with
//! `tonic_health`'s `HealthClient` over a `Channel`. No `.proto` build: the health service is generated
//! code shipped by `tonic-health`, and the handler that reads the token implements its `Health` trait.
//!
//! Each rejection must reach the client as the right `tonic::Code` (trailers-only responses), carrying
//! the `www-authenticate` challenge in the status metadata.
#![cfg(feature = "tonic")]

use std::net::SocketAddr;
use std::time::Duration;

use bearer_guard::scope::Requirement;
use bearer_guard::tonic::RequestExt;
use bearer_guard::{
    AccessToken, BearerAuthLayer, BearerToken, InvalidToken, StaticToken, StaticValidator,
    TokenValidator, Unavailable, Validation, ValidationContext, ValidationError,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::time::timeout;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Every wait in this file is bounded by this.
const WAIT: Duration = Duration::from_secs(5);

/// Has `health:read`.
const READER_TOKEN: &str = "alice-health-reader-0123456789";
/// Valid, but without `health:read`.
const NO_SCOPE_TOKEN: &str = "bob-no-scope-token-0123456789";
const ISSUER: &str = "https://auth.example.com";
const SCOPE: &str = "health:read";

fn static_validator() -> StaticValidator {
    StaticValidator::builder()
        .token(READER_TOKEN, StaticToken::new("alice").scopes([SCOPE]))
        .token(NO_SCOPE_TOKEN, StaticToken::new("bob").scopes(["other"]))
        .build()
        .expect("static validator")
}

/// The resource is the server's origin; the metadata lives at the root well-known path.
fn guard(addr: SocketAddr, validator: impl TokenValidator) -> BearerAuthLayer {
    BearerAuthLayer::builder()
        .resource(format!("http://{addr}"))
        .authorization_server(ISSUER)
        .scopes_supported([SCOPE])
        .validator(validator)
        .require(Requirement::all_of([SCOPE]))
        .build()
        .expect("guard")
}

fn metadata_url(addr: SocketAddr) -> String {
    format!("http://{addr}/.well-known/oauth-protected-resource")
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    (listener, addr)
}

/// Serves the stock `tonic_health` service behind the guard built by `make_guard`.
async fn serve_health(make_guard: impl FnOnce(SocketAddr) -> BearerAuthLayer) -> SocketAddr {
    let (listener, addr) = bind().await;
    let layer = make_guard(addr);
    let (_reporter, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(async move {
        Server::builder()
            .layer(layer)
            .add_service(health_service)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
    });
    addr
}

async fn channel(addr: SocketAddr) -> Channel {
    let endpoint = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(WAIT)
        .timeout(WAIT);
    timeout(WAIT, endpoint.connect())
        .await
        .expect("connected in time")
        .expect("connected")
}

/// `Check("")` with `authorization` set (or not) through `metadata_mut`.
async fn check(addr: SocketAddr, authorization: Option<&str>) -> Result<ServingStatus, Status> {
    let mut client = HealthClient::new(channel(addr).await);
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(value) = authorization {
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(value).expect("ASCII metadata"),
        );
    }
    let response = timeout(WAIT, client.check(request))
        .await
        .expect("answer in time")?;
    Ok(response.into_inner().status())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn challenge(status: &Status) -> String {
    status
        .metadata()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no www-authenticate in {status:?}"))
        .to_str()
        .expect("ASCII challenge")
        .to_owned()
}

#[tokio::test]
async fn no_token_is_unauthenticated_with_challenge() {
    let addr = serve_health(|addr| guard(addr, static_validator())).await;
    let status = check(addr, None).await.expect_err("must be refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        status.message(),
        "This resource requires a bearer access token"
    );
    assert_eq!(
        challenge(&status),
        format!(
            r#"Bearer resource_metadata="{}", scope="{SCOPE}""#,
            metadata_url(addr)
        )
    );
    // Another scheme counts as no credentials.
    let status = check(addr, Some("Basic dXNlcjpwYXNzd29yZA=="))
        .await
        .expect_err("must be refused");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn invalid_token_is_unauthenticated() {
    let addr = serve_health(|addr| guard(addr, static_validator())).await;
    let status = check(addr, Some("Bearer unknown-token-0123456789abcdef"))
        .await
        .expect_err("must be refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(status.message(), "The access token is not recognized");
    assert_eq!(
        challenge(&status),
        format!(
            r#"Bearer resource_metadata="{}", error="invalid_token", error_description="The access token is not recognized", scope="{SCOPE}""#,
            metadata_url(addr)
        )
    );
}

#[tokio::test]
async fn valid_token_with_scope_is_served() {
    let addr = serve_health(|addr| guard(addr, static_validator())).await;
    let status = check(addr, Some(&bearer(READER_TOKEN))).await;
    assert_eq!(status.expect("check succeeds"), ServingStatus::Serving);
}

/// The token set by an interceptor on a reused channel: several calls, each checked.
#[tokio::test]
async fn interceptor_sets_the_token() {
    #[derive(Clone)]
    struct AddToken(MetadataValue<tonic::metadata::Ascii>);
    impl Interceptor for AddToken {
        fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
            request
                .metadata_mut()
                .insert("authorization", self.0.clone());
            Ok(request)
        }
    }

    let addr = serve_health(|addr| guard(addr, static_validator())).await;
    let value = MetadataValue::try_from(bearer(READER_TOKEN)).expect("ASCII");
    let mut client = HealthClient::with_interceptor(channel(addr).await, AddToken(value));
    for _ in 0..3 {
        let response = timeout(
            WAIT,
            client.check(HealthCheckRequest {
                service: String::new(),
            }),
        )
        .await
        .expect("answer in time")
        .expect("check succeeds");
        assert_eq!(response.into_inner().status(), ServingStatus::Serving);
    }
}

#[tokio::test]
async fn valid_token_without_scope_is_permission_denied() {
    let addr = serve_health(|addr| guard(addr, static_validator())).await;
    let status = check(addr, Some(&bearer(NO_SCOPE_TOKEN)))
        .await
        .expect_err("must be refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        challenge(&status),
        format!(
            r#"Bearer resource_metadata="{}", error="insufficient_scope", error_description="The access token lacks a scope this request requires", scope="{SCOPE}""#,
            metadata_url(addr)
        )
    );
}

#[tokio::test]
async fn malformed_authorization_is_invalid_argument() {
    let addr = serve_health(|addr| guard(addr, static_validator())).await;
    for malformed in ["Bearer a,b", "Bearer", "Bearer a b"] {
        let status = check(addr, Some(malformed))
            .await
            .expect_err("must be refused");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{malformed}: {status:?}"
        );
        assert!(
            challenge(&status).contains(r#"error="invalid_request""#),
            "{malformed}: {}",
            challenge(&status)
        );
    }
}

/// A validator whose backend is down (or slow), answering synchronously or through a future.
struct Backend {
    asynchronous: bool,
}

const DOWN_TOKEN: &str = "token-while-backend-is-down-0123";

impl TokenValidator for Backend {
    fn validate(&self, token: &BearerToken, _context: &ValidationContext) -> Validation {
        let result = if token.as_str() == DOWN_TOKEN {
            Err(ValidationError::unavailable(Unavailable::KeySet))
        } else if token.as_str() == READER_TOKEN {
            Ok(AccessToken::builder()
                .subject("carol")
                .scopes([SCOPE])
                .build())
        } else {
            Err(InvalidToken::Unknown.into())
        };
        if self.asynchronous {
            Validation::pending(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                result
            })
        } else {
            Validation::ready(result)
        }
    }
}

#[tokio::test]
async fn unavailable_validator_is_unavailable() {
    for asynchronous in [false, true] {
        let addr = serve_health(|addr| guard(addr, Backend { asynchronous })).await;
        let status = check(addr, Some(&bearer(DOWN_TOKEN)))
            .await
            .expect_err("must be refused");
        assert_eq!(status.code(), Code::Unavailable, "async={asynchronous}");
        assert_eq!(
            status.message(),
            "The token signing keys are temporarily unavailable"
        );
        // No challenge: the client's token may be fine, it must not be thrown away.
        assert!(status.metadata().get("www-authenticate").is_none());

        // The same validator lets a good token through (the pending path reaches the service too).
        let ok = check(addr, Some(&bearer(READER_TOKEN))).await;
        assert_eq!(
            ok.expect("served"),
            ServingStatus::Serving,
            "async={asynchronous}"
        );
        let status = check(addr, Some("Bearer some-other-token-0123456789"))
            .await
            .expect_err("must be refused");
        assert_eq!(status.code(), Code::Unauthenticated, "async={asynchronous}");
    }
}

/// A real gRPC handler (the `Health` trait of the generated code) that reads the token with
/// `bearer_guard::tonic::RequestExt` and reports what it saw in the response metadata.
struct WhoAmI;

#[tonic::async_trait]
impl Health for WhoAmI {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let token = request.require_access_token()?;
        let subject = token.subject().unwrap_or("?").to_owned();
        let scopes = token.scopes().to_scope_string();
        let saw_authorization = request.metadata().contains_key("authorization");
        let mut response = Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        });
        let metadata = response.metadata_mut();
        metadata.insert(
            "x-subject",
            MetadataValue::try_from(subject).map_err(|_| Status::internal("subject"))?,
        );
        metadata.insert(
            "x-scopes",
            MetadataValue::try_from(scopes).map_err(|_| Status::internal("scopes"))?,
        );
        metadata.insert(
            "x-saw-authorization",
            MetadataValue::from_static(if saw_authorization { "yes" } else { "no" }),
        );
        Ok(response)
    }

    type WatchStream = tonic::codegen::BoxStream<HealthCheckResponse>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

async fn who_am_i(
    addr: SocketAddr,
    authorization: &str,
) -> Result<Response<HealthCheckResponse>, Status> {
    let mut client = HealthClient::new(channel(addr).await);
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(authorization).expect("ASCII"),
    );
    timeout(WAIT, client.check(request))
        .await
        .expect("answer in time")
}

#[tokio::test]
async fn request_ext_in_a_real_handler() {
    let (listener, addr) = bind().await;
    let layer = guard(addr, static_validator());
    tokio::spawn(async move {
        Server::builder()
            .layer(layer)
            .add_service(HealthServer::new(WhoAmI))
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
    });
    let response = who_am_i(addr, &bearer(READER_TOKEN)).await.expect("served");
    let seen = |key: &str| {
        response
            .metadata()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {key}"))
            .to_owned()
    };
    assert_eq!(seen("x-subject"), "alice");
    assert_eq!(seen("x-scopes"), SCOPE);
    // The guard strips the token before the handler (the MCP rule against token passthrough).
    assert_eq!(seen("x-saw-authorization"), "no");
}

/// Without the guard, `require_access_token` fails closed with UNAUTHENTICATED.
#[tokio::test]
async fn request_ext_without_the_guard_fails_closed() {
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        Server::builder()
            .add_service(HealthServer::new(WhoAmI))
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
    });
    let status = who_am_i(addr, &bearer(READER_TOKEN))
        .await
        .expect_err("must be refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "access token required");
}

/// The same tonic server answers the RFC 9728 document over HTTP/2 (tonic speaks only h2 by default):
/// the guard sits in front of tonic's routes, so no route is needed for it.
#[tokio::test]
async fn metadata_is_served_by_the_tonic_server() {
    let addr = serve_health(|addr| guard(addr, static_validator())).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let request = http::Request::get(metadata_url(addr))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = timeout(WAIT, client.request(request))
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "application/json"
    );
    let body = timeout(WAIT, response.into_body().collect())
        .await
        .expect("in time")
        .expect("body")
        .to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(doc["resource"], format!("http://{addr}"));
    assert_eq!(doc["authorization_servers"], serde_json::json!([ISSUER]));
}

/// Browsers and most HTTP clients fetch the metadata over HTTP/1.1. tonic serves only HTTP/2 unless
/// `accept_http1(true)`: with it, the same port answers the document over HTTP/1.1 too.
#[tokio::test]
async fn metadata_over_http1_needs_accept_http1() {
    async fn get_http1(addr: SocketAddr) -> Result<http::StatusCode, String> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let request = http::Request::get(metadata_url(addr))
            .body(Full::new(Bytes::new()))
            .expect("request");
        match timeout(WAIT, client.request(request)).await {
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    }

    // Default tonic server: HTTP/1.1 is refused at the connection level.
    let addr = serve_health(|addr| guard(addr, static_validator())).await;
    assert!(get_http1(addr).await.is_err());

    // With accept_http1(true): 200 over HTTP/1.1, and gRPC still works on the same port.
    let (listener, addr) = bind().await;
    let layer = guard(addr, static_validator());
    let (_reporter, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(async move {
        Server::builder()
            .accept_http1(true)
            .layer(layer)
            .add_service(health_service)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
    });
    assert_eq!(get_http1(addr).await, Ok(http::StatusCode::OK));
    let status = check(addr, Some(&bearer(READER_TOKEN))).await;
    assert_eq!(status.expect("served"), ServingStatus::Serving);
}
