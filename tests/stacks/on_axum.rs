//! `BearerAuthLayer` under axum 0.8, over real loopback sockets (`axum::serve` on a `TcpListener`).
//!
//! What this file establishes:
//! - `Router::layer(guard)` guards the routes *and* the router's catch-all fallback, so the RFC 9728
//!   well-known path (which is not a route) is answered by the guard through `Router::layer`;
//! - the pitfalls: a route or a `.fallback(...)` added *after* `.layer(...)` is not guarded (a fallback
//!   set afterwards hides the metadata document);
//! - wrapping the whole `Router` as a service (`ServiceBuilder::new().layer(guard).service(router)`)
//!   works as well and covers every path regardless of the order of the builder calls;
//! - the `AccessToken` extractor (feature `axum`) answers 500 when the guard was not applied, and
//!   `Option<AccessToken>` answers `None` there.
#![cfg(feature = "axum")]

use std::net::SocketAddr;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bearer_guard::body::ResponseBody;
use bearer_guard::scope::{Requirement, RoutePolicy};
use bearer_guard::testkit::probe::{self, Reply};
use bearer_guard::{AccessToken, BearerAuthLayer, StaticToken, StaticValidator};
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// `mcp:read mcp:admin`.
const ADMIN_TOKEN: &str = "alice-admin-token-0123456789";
/// `mcp:read` only.
const READER_TOKEN: &str = "bob-reader-token-0123456789";
const ISSUER: &str = "https://auth.example.com";

fn guard(addr: SocketAddr) -> BearerAuthLayer {
    let validator = StaticValidator::builder()
        .token(
            ADMIN_TOKEN,
            StaticToken::new("alice").scopes(["mcp:read", "mcp:admin"]),
        )
        .token(READER_TOKEN, StaticToken::new("bob").scopes(["mcp:read"]))
        .build()
        .expect("static validator");
    BearerAuthLayer::builder()
        .resource(format!("http://{addr}/mcp"))
        .authorization_server(ISSUER)
        .scopes_supported(["mcp:read"])
        .validator(validator)
        // Any valid token for /mcp; /admin also needs `mcp:admin`.
        .policy(RoutePolicy::new().route(None, "/admin", Requirement::all_of(["mcp:admin"])))
        .build()
        .expect("guard")
}

async fn whoami(token: AccessToken) -> String {
    format!("hello {}", token.subject().unwrap_or("?"))
}

async fn maybe(token: Option<AccessToken>) -> String {
    match token {
        Some(token) => format!("authenticated as {}", token.subject().unwrap_or("?")),
        None => "anonymous".to_owned(),
    }
}

async fn admin(token: AccessToken) -> String {
    format!("admin {}", token.subject().unwrap_or("?"))
}

/// Routes that are guarded when `.layer(...)` comes after them.
fn routes() -> Router {
    Router::new()
        .route("/mcp", post(whoami))
        .route("/maybe", get(maybe))
        .route("/admin", post(admin))
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    (listener, addr)
}

/// Serves `router` (with whatever layers it carries) on a fresh loopback port.
async fn serve_router(make: impl FnOnce(SocketAddr) -> Router) -> SocketAddr {
    let (listener, addr) = bind().await;
    let router = make(addr);
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn send(method: Method, url: String, authorization: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(url);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request.body(Full::new(Bytes::new())).expect("request");
    probe::send(request).await.expect("HTTP exchange")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn metadata_url(addr: SocketAddr) -> String {
    format!("http://{addr}/.well-known/oauth-protected-resource/mcp")
}

fn challenge(reply: &Reply) -> &str {
    reply.challenge()
}

/// The assertions every guarded router must pass, whatever way the guard was applied.
async fn assert_guarded(addr: SocketAddr) {
    // No token: 401 and exactly the RFC 9728 challenge (the /mcp requirement has no scope).
    let reply = send(Method::POST, format!("http://{addr}/mcp"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    assert_eq!(
        challenge(&reply),
        format!(r#"Bearer resource_metadata="{}""#, metadata_url(addr))
    );
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");

    // A valid token: the handler runs and sees the subject through the extractor.
    let reply = send(
        Method::POST,
        format!("http://{addr}/mcp"),
        Some(&bearer(READER_TOKEN)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, "hello bob");

    // Option<AccessToken> under the guard is Some.
    let reply = send(
        Method::GET,
        format!("http://{addr}/maybe"),
        Some(&bearer(ADMIN_TOKEN)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "authenticated as alice");

    // An unknown token: 401 invalid_token.
    let reply = send(
        Method::POST,
        format!("http://{addr}/mcp"),
        Some("Bearer not-a-known-token-0123456789"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&reply).contains(r#"error="invalid_token""#),
        "{}",
        challenge(&reply)
    );

    // A token without the scope /admin needs: 403 insufficient_scope naming the scope.
    let reply = send(
        Method::POST,
        format!("http://{addr}/admin"),
        Some(&bearer(READER_TOKEN)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert_eq!(
        challenge(&reply),
        format!(
            r#"Bearer resource_metadata="{}", error="insufficient_scope", error_description="The access token lacks a scope this request requires", scope="mcp:admin""#,
            metadata_url(addr)
        )
    );
    let body: serde_json::Value = serde_json::from_str(reply.text()).expect("JSON error body");
    assert_eq!(body["error"], "insufficient_scope");

    // ... and with the scope: 200.
    let reply = send(
        Method::POST,
        format!("http://{addr}/admin"),
        Some(&bearer(ADMIN_TOKEN)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "admin alice");

    // The well-known path is not a route, yet the guard answers it without a token.
    let reply = send(Method::GET, metadata_url(addr), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    let doc: serde_json::Value = serde_json::from_str(reply.text()).expect("metadata JSON");
    assert_eq!(doc["resource"], format!("http://{addr}/mcp"));
    assert_eq!(doc["authorization_servers"], serde_json::json!([ISSUER]));
    assert_eq!(doc["scopes_supported"], serde_json::json!(["mcp:read"]));
    assert_eq!(
        doc["bearer_methods_supported"],
        serde_json::json!(["header"])
    );

    // Any other unmatched path is guarded too (401 before the router's 404) ...
    let reply = send(Method::GET, format!("http://{addr}/nowhere"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // ... and reaches the router's 404 with a token.
    let reply = send(
        Method::GET,
        format!("http://{addr}/nowhere"),
        Some(&bearer(READER_TOKEN)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // A method the route does not serve is guarded as well (401, not 405, without a token).
    let reply = send(Method::GET, format!("http://{addr}/mcp"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// The documented wiring: `Router::new().route(...).layer(guard)`.
#[tokio::test]
async fn router_layer_guards_routes_and_serves_metadata() {
    let addr = serve_router(|addr| routes().layer(guard(addr))).await;
    assert_guarded(addr).await;
}

/// The answer to "does `Router::layer` apply to requests that match no route?": yes. axum 0.8 layers
/// the catch-all fallback as well as the routes, so the well-known path reaches the guard.
#[tokio::test]
async fn router_layer_covers_unmatched_paths() {
    let addr = serve_router(|addr| routes().layer(guard(addr))).await;
    let reply = send(Method::GET, metadata_url(addr), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(reply.text()).expect("metadata JSON");
    assert_eq!(doc["resource"], format!("http://{addr}/mcp"));
    // HEAD and the CORS preflight are answered by the guard too.
    let head = send(Method::HEAD, metadata_url(addr), None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    let preflight = send(Method::OPTIONS, metadata_url(addr), None).await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
}

/// Wrapping the whole router as one service: guards every path whatever the builder order.
#[tokio::test]
async fn whole_router_as_a_service() {
    let (listener, addr) = bind().await;
    let router = routes()
        // Even a fallback added last is behind the guard here.
        .fallback(|| async { (StatusCode::NOT_FOUND, "custom 404") });
    let service = ServiceBuilder::new()
        // axum::serve wants `Response<axum::body::Body>`.
        .map_response(|response: Response<ResponseBody<Body>>| response.map(Body::new))
        .layer(guard(addr))
        .service(router);
    tokio::spawn(async move { axum::serve(listener, tower::make::Shared::new(service)).await });
    assert_guarded(addr).await;
    let reply = send(
        Method::GET,
        format!("http://{addr}/nowhere"),
        Some(&bearer(READER_TOKEN)),
    )
    .await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::NOT_FOUND, "custom 404")
    );
}

/// Pitfall: what comes after `.layer(...)` is not guarded. A route added later is open (its
/// `AccessToken` extractor then answers 500, failing closed), and a `.fallback(...)` added later
/// replaces the guarded catch-all, so the metadata document is no longer served.
#[tokio::test]
async fn what_is_added_after_layer_is_not_guarded() {
    let addr = serve_router(|addr| {
        routes()
            .layer(guard(addr))
            .route("/late", post(whoami))
            .route("/late-maybe", get(maybe))
            .fallback(|| async { (StatusCode::NOT_FOUND, "late fallback") })
    })
    .await;

    let reply = send(Method::POST, format!("http://{addr}/late"), None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_none());
    let reply = send(Method::GET, format!("http://{addr}/late-maybe"), None).await;
    assert_eq!((reply.status, reply.text()), (StatusCode::OK, "anonymous"));

    let reply = send(Method::GET, metadata_url(addr), None).await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::NOT_FOUND, "late fallback"),
        "a fallback set after .layer() hides the metadata document"
    );
    // The routes added before the layer are still guarded.
    let reply = send(Method::POST, format!("http://{addr}/mcp"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// `Router::route_layer(guard)` (what axum's docs suggest for auth middleware, so that unknown paths
/// stay 404) guards the routes only: the well-known path is then NOT served. Mount the document
/// yourself (`layer.metadata_service()` at `layer.metadata_path()`) if you use `route_layer`.
#[tokio::test]
async fn route_layer_does_not_serve_metadata() {
    let addr = serve_router(|addr| routes().route_layer(guard(addr))).await;
    let reply = send(Method::POST, format!("http://{addr}/mcp"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = send(Method::GET, metadata_url(addr), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = send(Method::GET, format!("http://{addr}/nowhere"), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

/// `route_layer` plus the metadata mounted as its own (unguarded) route.
#[tokio::test]
async fn route_layer_with_mounted_metadata() {
    let addr = serve_router(|addr| {
        let layer = guard(addr);
        let metadata_path = layer.metadata_path().to_owned();
        let metadata = layer.metadata_service();
        routes()
            .route_layer(layer)
            .route_service(&metadata_path, metadata)
    })
    .await;
    let reply = send(Method::POST, format!("http://{addr}/mcp"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = send(Method::GET, metadata_url(addr), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let doc: serde_json::Value = serde_json::from_str(reply.text()).expect("metadata JSON");
    assert_eq!(doc["resource"], format!("http://{addr}/mcp"));
}

/// Without the guard the extractor fails closed: 500 with a generic JSON body, never 200.
#[tokio::test]
async fn extractor_without_layer_is_500() {
    let addr = serve_router(|_| routes()).await;
    let reply = send(
        Method::POST,
        format!("http://{addr}/mcp"),
        // Even a token the guard would accept: nobody validated it.
        Some(&bearer(ADMIN_TOKEN)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        reply.body,
        r#"{"error":"server_error","error_description":"Internal error"}"#
    );
    let reply = send(Method::GET, format!("http://{addr}/maybe"), None).await;
    assert_eq!((reply.status, reply.text()), (StatusCode::OK, "anonymous"));
}

/// The guard's responses work with axum's `IntoResponse` (a handler can return them) — compile check
/// that `Response<ResponseBody<Body>>` converts, as `Router::layer` requires.
#[allow(dead_code)]
fn guard_response_is_into_response(response: Response<ResponseBody<Body>>) -> Response {
    response.into_response()
}
