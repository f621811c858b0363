//! Seam: a `RoutePolicy` and axum's real router must agree on which requests reach a protected handler.
//!
//! Every spelling of a request that a client can send (method, trailing slash, `//`, percent-encoding,
//! dot segments, case, query) goes over a real socket to an axum 0.8 app guarded by `Router::layer`. The
//! protected handlers count their calls: a token without the protected scope must never make one run,
//! whatever the spelling, while the token with it does (the pair). Also: a requirement built from an
//! empty list is a build error, not an open door.
#![cfg(feature = "axum")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::{raw_request, static_validator, ALICE, ISSUER, NOTES_READER};
use axum::routing::get;
use axum::Router;
use bearer_guard::scope::{Requirement, RoutePolicy};
use bearer_guard::{BearerAuthLayer, BuildError};
use http::Method;
use tokio::net::TcpListener;

/// Calls of the protected handlers.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

async fn serve(policy: RoutePolicy, nested: bool) -> (SocketAddr, Calls) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let guard = BearerAuthLayer::builder()
        .resource(format!("http://{addr}/mcp"))
        .authorization_server(ISSUER)
        .validator(static_validator())
        .policy(policy)
        .build()
        .expect("guard");
    let calls = Calls::default();
    let (a, b) = (calls.clone(), calls.clone());
    let notes = Router::new()
        .route(
            "/notes",
            get(move || async move {
                a.0.fetch_add(1, Ordering::SeqCst);
                "protected notes"
            }),
        )
        .route(
            "/notes/{id}",
            get(move || async move {
                b.0.fetch_add(1, Ordering::SeqCst);
                "protected note"
            }),
        )
        .route("/public", get(|| async { "public" }));
    let app = if nested {
        Router::new().nest("/api", notes)
    } else {
        notes
    };
    let app = app.layer(guard);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, calls)
}

async fn send(addr: SocketAddr, method: &str, target: &str, token: &str) -> u16 {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    raw_request(addr, &request).await.status
}

/// Spellings of a request for `base` (e.g. `/notes`) that some client, proxy or router may produce.
fn spellings(base: &str) -> Vec<String> {
    let (dir, last) = base.rsplit_once('/').expect("a path");
    let first_char = &last[..1];
    let escaped = format!("{dir}/%{:02X}{}", first_char.as_bytes()[0], &last[1..]);
    vec![
        base.to_owned(),
        format!("{base}/"),
        format!("/{base}"),
        format!("{dir}//{last}"),
        escaped.clone(),
        escaped.to_lowercase(),
        format!("{dir}/./{last}"),
        format!("{dir}/x/../{last}"),
        base.to_uppercase(),
        format!("{dir}/{}{}", first_char.to_uppercase(), &last[1..]),
        format!("{base}?x=1"),
        format!("{base}%2F"),
        format!("{base}/1"),
        format!("{base}%2F1"),
        format!("{base}/1/"),
    ]
}

async fn no_spelling_bypasses(policy: RoutePolicy, nested: bool, base: &str) {
    let (addr, calls) = serve(policy, nested).await;
    // The pair: with the scope, the protected handlers run.
    assert_eq!(send(addr, "GET", base, NOTES_READER).await, 200);
    assert_eq!(send(addr, "HEAD", base, NOTES_READER).await, 200);
    assert_eq!(
        send(addr, "GET", &format!("{base}/1"), NOTES_READER).await,
        200
    );
    assert_eq!(
        calls.get(),
        3,
        "the protected handlers ran for the scoped token"
    );

    // Without it, no spelling and no method reaches them.
    for target in spellings(base) {
        for method in [Method::GET, Method::HEAD, Method::POST, Method::OPTIONS] {
            let before = calls.get();
            let status = send(addr, method.as_str(), &target, ALICE).await;
            assert_eq!(
                calls.get(),
                before,
                "{method} {target} reached a protected handler without notes:read (status {status})"
            );
        }
    }
    // The public route stays public to any valid token.
    let public = if nested { "/api/public" } else { "/public" };
    assert_eq!(send(addr, "GET", public, ALICE).await, 200);
}

#[tokio::test]
async fn get_routes_cover_head_and_every_spelling() {
    let policy = RoutePolicy::new()
        .route(
            Some(Method::GET),
            "/notes",
            Requirement::all_of(["notes:read"]),
        )
        .route(
            Some(Method::GET),
            "/notes/*",
            Requirement::all_of(["notes:read"]),
        )
        .fallback(Requirement::none());
    no_spelling_bypasses(policy, false, "/notes").await;
}

#[tokio::test]
async fn a_prefix_route_covers_every_spelling() {
    let policy = RoutePolicy::new()
        .route(None, "/notes/*", Requirement::all_of(["notes:read"]))
        .fallback(Requirement::none());
    no_spelling_bypasses(policy, false, "/notes").await;
}

/// `Router::layer` on the outer router sees the full path of nested routes.
#[tokio::test]
async fn nested_routers_are_matched_by_their_full_path() {
    let policy = RoutePolicy::new()
        .route(
            Some(Method::GET),
            "/api/notes/*",
            Requirement::all_of(["notes:read"]),
        )
        .fallback(Requirement::none());
    no_spelling_bypasses(policy, true, "/api/notes").await;
}

#[tokio::test]
async fn a_requirement_from_an_empty_list_is_a_build_error() {
    let nothing: Vec<String> = Vec::new();
    let build = |policy: RoutePolicy| {
        BearerAuthLayer::builder()
            .resource("https://api.example.com/mcp")
            .authorization_server(ISSUER)
            .validator(static_validator())
            .policy(policy)
            .build()
    };
    for empty in [
        Requirement::any_of(&nothing),
        Requirement::all_of(&nothing),
        Requirement::all_of(["a"]).or_all_of(&nothing),
    ] {
        let error = build(RoutePolicy::new().route(None, "/admin", empty.clone())).unwrap_err();
        assert!(matches!(error, BuildError::Invalid(_)), "{error:?}");
        let error = build(RoutePolicy::new().fallback(empty.clone())).unwrap_err();
        assert!(matches!(error, BuildError::Invalid(_)), "{error:?}");
        let direct = BearerAuthLayer::builder()
            .resource("https://api.example.com/mcp")
            .authorization_server(ISSUER)
            .validator(static_validator())
            .require(empty)
            .build();
        assert!(direct.is_err());
    }
    // A closure policy cannot be inspected at build: there, the empty list is never satisfied (403).
    let open_door = BearerAuthLayer::builder()
        .resource("https://api.example.com/mcp")
        .authorization_server(ISSUER)
        .validator(static_validator())
        .policy(|_: &http::request::Parts| Requirement::any_of(Vec::<String>::new()))
        .build()
        .expect("closures are not inspected");
    let (listener, addr) = crate::common::bind().await;
    let server = crate::common::serve(listener, open_door);
    let reply = server.call_with_token(Method::GET, "/mcp", ALICE).await;
    assert_eq!(reply.status, 403);
    assert_eq!(server.calls(), 0);
    let _ = addr;
}
