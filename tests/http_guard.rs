//! `BearerAuthLayer` over real HTTP: a hyper-util server on `127.0.0.1:0` serving the guard around an echo
//! service, talked to with hyper-util's client (and a raw socket for malformed requests).
//!
//! Covered: exact `WWW-Authenticate` challenges (checked with a strict RFC 9110 §11 parser), rejection
//! bodies and headers, CORS exposure, accepted requests, query-string tokens, the RFC 9728 metadata
//! document, builder errors, scope policies, asynchronous validators, `poll_ready`, and secrecy of tokens.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bearer_guard::challenge::RejectionInfo;
use bearer_guard::extract::MalformedRequest;
use bearer_guard::{
    AccessToken, BearerAuthLayer, BearerToken, BuildError, InvalidToken, MetadataService,
    ProblemJsonBody, ProtectedResourceMetadata, Rejection, Requirement, RoutePolicy,
    ScopeHierarchy, StaticToken, StaticValidator, TokenValidator, Unavailable, Validation,
    ValidationContext, ValidationError,
};
use bytes::Bytes;
use common::*;
use http::header::{AUTHORIZATION, HOST, ORIGIN};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::time::timeout;
use tower::{Layer, Service, ServiceExt};

const JSON_UNAUTHORIZED: &str = r#"{"error":"unauthorized","error_description":"This resource requires a bearer access token"}"#;
const JSON_INVALID_TOKEN: &str =
    r#"{"error":"invalid_token","error_description":"The access token is not recognized"}"#;
const JSON_MALFORMED: &str = r#"{"error":"invalid_request","error_description":"The Authorization header is not a valid Bearer credential"}"#;
const JSON_INSUFFICIENT: &str = r#"{"error":"insufficient_scope","error_description":"The access token lacks a scope this request requires"}"#;

const DESC_INVALID_TOKEN: &str =
    "error=\"invalid_token\", error_description=\"The access token is not recognized\"";
const DESC_MALFORMED: &str = "error=\"invalid_request\", error_description=\"The Authorization header is not a valid Bearer credential\"";
const DESC_TWO_HEADERS: &str = "error=\"invalid_request\", error_description=\"The request has more than one Authorization header\"";
const DESC_TOO_LARGE: &str =
    "error=\"invalid_request\", error_description=\"The bearer token exceeds the size limit\"";
const DESC_INSUFFICIENT: &str = "error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request requires\"";

fn echo(subject: &str, scopes: &str) -> String {
    format!("sub={subject};scopes={scopes};auth=absent;path=/mcp")
}

// ---------------------------------------------------------------------------------------------
// 1. The strict parser itself
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn strict_challenge_parser_accepts_valid_and_rejects_malformed() {
    let parsed = parse_challenges(
        r#"Bearer realm="a b", error=invalid_token, x = "q\"uo\\te", Basic realm="r", Negotiate"#,
    )
    .expect("valid field");
    assert_eq!(
        parsed,
        vec![
            Challenge {
                scheme: "Bearer".into(),
                params: vec![
                    ("realm".into(), "a b".into()),
                    ("error".into(), "invalid_token".into()),
                    ("x".into(), "q\"uo\\te".into()),
                ],
            },
            Challenge {
                scheme: "Basic".into(),
                params: vec![("realm".into(), "r".into())],
            },
            Challenge {
                scheme: "Negotiate".into(),
                params: vec![],
            },
        ]
    );
    assert_eq!(parsed[0].param("ERROR"), Some("invalid_token"));

    for bad in [
        r#"Bearer a="1", a="2""#,
        r#"Bearer a="1", A="2""#,
        r#"Bearer a="unterminated"#,
        r#"Bearer a="bad\"#,
        r#"Bearer ="x""#,
        r#"Bearer a="1" b="2""#,
        r#"Bearer a="1",, b="2""#,
        r#"Bearer a="1","#,
        r#"Bearer a="#,
        r#"Bearer a"#,
        "Bearer a=\"ctl\u{1}\"",
        "Bearer\ta=\"1\"",
        r#" Bearer a="1""#,
        r#"Bearer a="1" "#,
        r#"Bearer a="1"x"#,
        r#"Bea"rer a="1""#,
        "",
        ", Bearer",
    ] {
        assert!(parse_challenges(bad).is_err(), "accepted {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Exact challenges
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn challenges_for_missing_other_scheme_and_invalid_credentials() {
    let open = start(|b| b).await;
    let prm = open.prm_param();
    // No Authorization header, no scope requirement: resource_metadata only, no error.
    let reply = open.get("/mcp", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let c = assert_challenge(&reply, &format!("Bearer {prm}"));
    assert_eq!(c.param("error"), None);

    // Another scheme is treated like no credentials: 401 without error.
    let reply = open.get("/mcp", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(&reply, &format!("Bearer {prm}"));

    // With a requirement, the 401 names its scopes.
    let guarded = start(|b| b.require(Requirement::all_of(["mcp:read"]))).await;
    let prm = guarded.prm_param();
    let reply = guarded.get("/mcp", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let c = assert_challenge(&reply, &format!("Bearer {prm}, scope=\"mcp:read\""));
    assert_eq!(c.param("scope"), Some("mcp:read"));
    let reply = guarded.get("/mcp", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(&reply, &format!("Bearer {prm}, scope=\"mcp:read\""));

    // An unknown token: 401 invalid_token, still naming the scope.
    let reply = guarded
        .get("/mcp", Some(&format!("Bearer {UNKNOWN}")))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let c = assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INVALID_TOKEN}, scope=\"mcp:read\""),
    );
    assert_eq!(c.param("error"), Some("invalid_token"));

    // A realm goes right after resource_metadata.
    let realm = start(|b| b.realm("mcp-notes")).await;
    let reply = realm.get("/mcp", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(
        &reply,
        &format!("Bearer {}, realm=\"mcp-notes\"", realm.prm_param()),
    );
    assert_eq!(open.calls() + guarded.calls() + realm.calls(), 0);
}

#[tokio::test]
async fn challenges_for_malformed_requests() {
    let server = start(|b| b.require(Requirement::all_of(["mcp:read"]))).await;
    let prm = server.prm_param();
    let malformed = format!("Bearer {prm}, {DESC_MALFORMED}");

    for value in [
        "Bearer",
        "Bearer a,b",
        "bearer a b",
        "Bearer ===",
        "Bearer a\"b",
    ] {
        let reply = server.get("/mcp", Some(value)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{value}");
        let c = assert_challenge(&reply, &malformed);
        assert_eq!(c.param("error"), Some("invalid_request"));
        assert_eq!(c.param("scope"), None, "no scope on a 400");
    }

    // The same over a raw socket (a trailing space is trimmed by the server; still nothing after Bearer).
    for value in ["Bearer ", "Bearer a,b"] {
        let raw = raw_request(
            server.addr,
            &format!(
                "GET /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: {value}\r\nConnection: close\r\n\r\n",
                server.addr
            ),
        )
        .await;
        assert_eq!(raw.status, 400, "{value:?}");
        assert_eq!(raw.header_all("www-authenticate"), [malformed.as_str()]);
        assert_eq!(raw.body, JSON_MALFORMED);
    }

    // Two Authorization headers (even two identical valid ones): 400.
    let reply = server
        .send(
            server
                .request(Method::GET, "/mcp")
                .header(AUTHORIZATION, format!("Bearer {ALICE}"))
                .header(AUTHORIZATION, format!("Bearer {ALICE}")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_challenge(&reply, &format!("Bearer {prm}, {DESC_TWO_HEADERS}"));
    let raw = raw_request(
        server.addr,
        &format!(
            "GET /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic dXNlcjpwYXNz\r\nauthorization: Bearer {ALICE}\r\nConnection: close\r\n\r\n",
            server.addr
        ),
    )
    .await;
    assert_eq!(raw.status, 400);
    assert_eq!(
        raw.header_all("www-authenticate"),
        [format!("Bearer {prm}, {DESC_TWO_HEADERS}").as_str()]
    );

    // Default limit: 8 KiB. 8192 bytes is validated (unknown: 401), 8193 is refused (400).
    let at_limit = "A".repeat(8192);
    let reply = server
        .get("/mcp", Some(&format!("Bearer {at_limit}")))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INVALID_TOKEN}, scope=\"mcp:read\""),
    );
    let over = "A".repeat(8193);
    let reply = server.get("/mcp", Some(&format!("Bearer {over}"))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_challenge(&reply, &format!("Bearer {prm}, {DESC_TOO_LARGE}"));
    assert_eq!(server.calls(), 0);

    // A custom limit, here just the length of ALICE.
    let small = start(|b| b.max_token_bytes(ALICE.len())).await;
    let reply = small.get("/mcp", Some(&format!("Bearer {ALICE}"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), echo("alice", "mcp:read"));
    let reply = small.get("/mcp", Some(&format!("Bearer {ALICE}x"))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_challenge(
        &reply,
        &format!("Bearer {}, {DESC_TOO_LARGE}", small.prm_param()),
    );
    assert_eq!(small.calls(), 1);
}

#[tokio::test]
async fn challenges_for_insufficient_scope() {
    let needed = Requirement::all_of(["mcp:write", "mcp:read"]);
    let server = start(|b| b.require(needed.clone())).await;
    let prm = server.prm_param();
    // NOTES_READER holds `notes:read mcp:read`: the 403 names exactly the operation's scopes.
    let reply = server
        .get("/mcp", Some(&format!("Bearer {NOTES_READER}")))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let c = assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INSUFFICIENT}, scope=\"mcp:read mcp:write\""),
    );
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    // The 401 (no token) names the same scopes.
    let reply = server.get("/mcp", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, scope=\"mcp:read mcp:write\""),
    );
    // A token with every scope passes.
    let reply = server.get("/mcp", Some(&format!("Bearer {WRITER}"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(server.calls(), 1);

    // MCP 2025-11-25 style: the granted scopes too.
    let granted = start(|b| {
        b.require(needed.clone())
            .challenge_includes_granted_scopes(true)
    })
    .await;
    let reply = granted
        .get("/mcp", Some(&format!("Bearer {NOTES_READER}")))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_challenge(
        &reply,
        &format!(
            "Bearer {}, {DESC_INSUFFICIENT}, scope=\"mcp:read mcp:write notes:read\"",
            granted.prm_param()
        ),
    );
    assert_eq!(granted.calls(), 0);
}

#[tokio::test]
async fn offline_access_is_never_advertised() {
    let server = start(|b| {
        b.require(Requirement::all_of(["mcp:write", "offline_access"]))
            .scopes_supported(["mcp:read", "offline_access", "mcp:write"])
            .challenge_includes_granted_scopes(true)
    })
    .await;
    let prm = server.prm_param();
    let reply = server.get("/mcp", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(&reply, &format!("Bearer {prm}, scope=\"mcp:write\""));
    let reply = server.get("/mcp", Some(&format!("Bearer {UNKNOWN}"))).await;
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INVALID_TOKEN}, scope=\"mcp:write\""),
    );
    // OFFLINE holds `mcp:read offline_access`; granted scopes are listed, offline_access is not.
    let reply = server.get("/mcp", Some(&format!("Bearer {OFFLINE}"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INSUFFICIENT}, scope=\"mcp:read mcp:write\""),
    );
    let metadata = server
        .get("/.well-known/oauth-protected-resource/mcp", None)
        .await;
    assert_eq!(metadata.status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&metadata.body).expect("JSON");
    assert_eq!(
        doc["scopes_supported"],
        serde_json::json!(["mcp:read", "mcp:write"])
    );
    assert!(!metadata.contains("offline_access"));
}

// ---------------------------------------------------------------------------------------------
// 3. Rejection bodies
// ---------------------------------------------------------------------------------------------

fn assert_json_rejection(reply: &Reply, status: StatusCode, body: &str) {
    assert_eq!(reply.status, status);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.text(), body);
    assert_eq!(
        reply.header("content-length"),
        Some(body.len().to_string().as_str())
    );
}

#[tokio::test]
async fn rejection_bodies_are_json_and_not_cached() {
    let server = start(|b| b.require(Requirement::all_of(["mcp:write"]))).await;
    assert_json_rejection(
        &server.get("/mcp", None).await,
        StatusCode::UNAUTHORIZED,
        JSON_UNAUTHORIZED,
    );
    assert_json_rejection(
        &server.get("/mcp", Some("Basic dXNlcjpwYXNz")).await,
        StatusCode::UNAUTHORIZED,
        JSON_UNAUTHORIZED,
    );
    assert_json_rejection(
        &server.get("/mcp", Some(&format!("Bearer {UNKNOWN}"))).await,
        StatusCode::UNAUTHORIZED,
        JSON_INVALID_TOKEN,
    );
    assert_json_rejection(
        &server.get("/mcp", Some("Bearer a,b")).await,
        StatusCode::BAD_REQUEST,
        JSON_MALFORMED,
    );
    assert_json_rejection(
        &server.get("/mcp", Some(&format!("Bearer {ALICE}"))).await,
        StatusCode::FORBIDDEN,
        JSON_INSUFFICIENT,
    );
    let two = server
        .send(
            server
                .request(Method::POST, "/mcp")
                .header(AUTHORIZATION, "Bearer a")
                .header(AUTHORIZATION, "Bearer b"),
        )
        .await;
    assert_json_rejection(
        &two,
        StatusCode::BAD_REQUEST,
        r#"{"error":"invalid_request","error_description":"The request has more than one Authorization header"}"#,
    );
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn custom_error_bodies_leave_status_and_challenge_alone() {
    let problem = start(|b| {
        b.require(Requirement::all_of(["mcp:write"]))
            .error_body(ProblemJsonBody)
    })
    .await;
    let prm = problem.prm_param();
    let reply = problem
        .get("/mcp", Some(&format!("Bearer {UNKNOWN}")))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INVALID_TOKEN}, scope=\"mcp:write\""),
    );
    let doc: serde_json::Value = serde_json::from_slice(&reply.body).expect("problem JSON");
    assert_eq!(
        doc,
        serde_json::json!({
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "The access token is not recognized",
            "error": "invalid_token",
        })
    );
    let reply = problem.get("/mcp", Some(&format!("Bearer {ALICE}"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INSUFFICIENT}, scope=\"mcp:write\""),
    );
    let doc: serde_json::Value = serde_json::from_slice(&reply.body).expect("problem JSON");
    assert_eq!(doc["status"], 403);
    assert_eq!(doc["title"], "Forbidden");
    assert_eq!(doc["error"], "insufficient_scope");

    let closure = start(|b| {
        b.require(Requirement::all_of(["mcp:write"])).error_body(
            |info: &RejectionInfo<'_>| -> (HeaderValue, Bytes) {
                (
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                    Bytes::from(format!(
                        "{} {} {}",
                        info.status.as_u16(),
                        info.error,
                        info.scope.unwrap_or("-")
                    )),
                )
            },
        )
    })
    .await;
    let prm = closure.prm_param();
    let reply = closure.get("/mcp", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.text(), "401 unauthorized mcp:write");
    assert_challenge(&reply, &format!("Bearer {prm}, scope=\"mcp:write\""));
    let reply = closure.get("/mcp", Some(&format!("Bearer {ALICE}"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.text(), "403 insufficient_scope mcp:write");
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INSUFFICIENT}, scope=\"mcp:write\""),
    );
    let reply = closure.get("/mcp", Some("Bearer a,b")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text(), "400 invalid_request -");
    assert_challenge(&reply, &format!("Bearer {prm}, {DESC_MALFORMED}"));
    assert_eq!(problem.calls() + closure.calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// 4. CORS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn www_authenticate_is_exposed_to_cross_origin_callers_only() {
    let server = start(|b| b.require(Requirement::all_of(["mcp:write"]))).await;
    let cases: [(Option<String>, StatusCode); 4] = [
        (None, StatusCode::UNAUTHORIZED),
        (Some(format!("Bearer {UNKNOWN}")), StatusCode::UNAUTHORIZED),
        (Some("Bearer a,b".into()), StatusCode::BAD_REQUEST),
        (Some(format!("Bearer {ALICE}")), StatusCode::FORBIDDEN),
    ];
    for (authorization, status) in cases {
        let mut with_origin = server
            .request(Method::POST, "/mcp")
            .header(ORIGIN, "https://app.example");
        let mut without = server.request(Method::POST, "/mcp");
        if let Some(value) = &authorization {
            with_origin = with_origin.header(AUTHORIZATION, value);
            without = without.header(AUTHORIZATION, value);
        }
        let reply = server.send(with_origin).await;
        assert_eq!(reply.status, status);
        assert_eq!(
            reply.header("access-control-expose-headers"),
            Some("WWW-Authenticate"),
            "{authorization:?}"
        );
        assert!(reply.header("www-authenticate").is_some());
        let reply = server.send(without).await;
        assert_eq!(reply.status, status);
        assert_eq!(
            reply.header("access-control-expose-headers"),
            None,
            "{authorization:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Accepted requests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn accepted_requests_reach_the_inner_service_without_the_header() {
    let server = start(|b| b.require(Requirement::all_of(["mcp:read"]))).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let reply = server.get("/mcp", Some(&format!("{scheme} {ALICE}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}");
        assert_eq!(reply.text(), echo("alice", "mcp:read"), "{scheme}");
        assert_eq!(reply.header("www-authenticate"), None);
    }
    // Several spaces between scheme and token are fine too.
    let reply = server
        .get("/mcp", Some(&format!("Bearer   {WRITER}")))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.text(),
        echo("writer", "mcp:read mcp:write notes:read notes:write")
    );
    assert_eq!(server.calls(), 5);

    // With strip_authorization_header(false) the inner service sees the header, byte for byte.
    let keep = start(|b| b.strip_authorization_header(false)).await;
    for scheme in ["Bearer", "bEaReR"] {
        let header = format!("{scheme} {ALICE}");
        let reply = keep.get("/notes", Some(&header)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.text(),
            format!(
                "sub=alice;scopes=mcp:read;auth={};path=/notes",
                sha256_hex(header.as_bytes())
            )
        );
    }
    assert_eq!(keep.calls(), 2);
}

#[tokio::test]
async fn http2_prior_knowledge_is_guarded_the_same_way() {
    let server = start(|b| b.require(Requirement::all_of(["mcp:read"]))).await;
    let prm = server.prm_param();
    let request = |method: Method, path: &str, authorization: Option<String>| {
        let mut builder = server.request(method, path);
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        builder.body(Full::new(Bytes::new())).expect("request")
    };
    let reply = send_h2(request(Method::POST, "/mcp", None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(&reply, &format!("Bearer {prm}, scope=\"mcp:read\""));
    assert_eq!(reply.text(), JSON_UNAUTHORIZED);
    let reply = send_h2(request(Method::POST, "/mcp", Some("Bearer a,b".into()))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_challenge(&reply, &format!("Bearer {prm}, {DESC_MALFORMED}"));
    let reply = send_h2(request(
        Method::POST,
        "/mcp",
        Some(format!("bearer {ALICE}")),
    ))
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), echo("alice", "mcp:read"));
    let path = "/.well-known/oauth-protected-resource/mcp";
    let get = send_h2(request(Method::GET, path, None)).await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.header("content-type"), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_slice(&get.body).expect("JSON");
    assert_eq!(doc["resource"], server.url("/mcp"));
    let head = send_h2(request(Method::HEAD, path, None)).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    assert_eq!(server.calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Query-string tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn query_string_tokens_are_ignored() {
    let server = start(|b| b).await;
    let prm = server.prm_param();
    for path in [
        format!("/mcp?access_token={ALICE}"),
        format!("/mcp?x=1&access_token={WRITER}"),
    ] {
        let reply = server.get(&path, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        let c = assert_challenge(&reply, &format!("Bearer {prm}"));
        assert_eq!(c.param("error"), None);
        assert_eq!(reply.text(), JSON_UNAUTHORIZED);
    }
    // A form body is not looked at either.
    let reply = server
        .send(
            server
                .request(Method::POST, "/mcp")
                .header("content-type", "application/x-www-form-urlencoded"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.calls(), 0, "the inner service was never called");
}

// ---------------------------------------------------------------------------------------------
// 7. Metadata
// ---------------------------------------------------------------------------------------------

const AS2: &str = "https://login.example.org/tenant-7/";

fn sample_metadata(resource: &str) -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::new(resource)
        .authorization_server(ISSUER)
        .authorization_server(AS2)
        .scopes_supported(["mcp:read", "mcp:write", "offline_access"])
        .resource_name("Example MCP server")
}

fn expected_document(resource: &str) -> String {
    format!(
        r#"{{"resource":"{resource}","authorization_servers":["{ISSUER}","{AS2}"],"scopes_supported":["mcp:read","mcp:write"],"bearer_methods_supported":["header"],"resource_name":"Example MCP server"}}"#
    )
}

async fn metadata_server(root_alias: bool) -> (TestServer, String) {
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let layer = BearerAuthLayer::builder()
        .metadata(sample_metadata(&resource))
        .validator(static_validator())
        .require(Requirement::all_of(["mcp:read"]))
        .metadata_max_age(Duration::from_secs(600))
        .root_metadata_alias(root_alias)
        .build()
        .expect("valid configuration");
    (serve(listener, layer), resource)
}

fn assert_document(reply: &Reply, expected: &str) {
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("public, max-age=600"));
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    assert_eq!(reply.text(), expected);
}

#[tokio::test]
async fn metadata_document_is_served_without_a_token() {
    let (server, resource) = metadata_server(false).await;
    let path = "/.well-known/oauth-protected-resource/mcp";
    let expected = expected_document(&resource);
    assert_eq!(server.layer.metadata_path(), path);
    assert_eq!(server.layer.metadata_url(), server.url(path));
    assert_eq!(server.layer.resource(), resource);

    assert_document(&server.get(path, None).await, &expected);
    // A token (even an invalid one) does not matter, nor does a query string.
    assert_document(
        &server.get(path, Some(&format!("Bearer {UNKNOWN}"))).await,
        &expected,
    );
    assert_document(&server.get(&format!("{path}?x=1"), None).await, &expected);
    // The document never follows the Host header.
    let evil = server
        .send(
            server
                .request(Method::GET, path)
                .header(HOST, "evil.example"),
        )
        .await;
    assert_document(&evil, &expected);
    assert!(!evil.contains("evil"));
    // Nor does the challenge.
    let evil = server
        .send(
            server
                .request(Method::GET, "/mcp")
                .header(HOST, "evil.example"),
        )
        .await;
    assert_eq!(evil.status, StatusCode::UNAUTHORIZED);
    assert_challenge(
        &evil,
        &format!("Bearer {}, scope=\"mcp:read\"", server.prm_param()),
    );

    // HEAD: same headers, empty body.
    let head = server.send(server.request(Method::HEAD, path)).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert_eq!(
        head.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    assert_eq!(head.header("cache-control"), Some("public, max-age=600"));
    assert!(head.body.is_empty());

    // OPTIONS: a CORS preflight answer.
    let options = server
        .send(
            server
                .request(Method::OPTIONS, path)
                .header(ORIGIN, "https://app.example")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "mcp-protocol-version"),
        )
        .await;
    assert_eq!(options.status, StatusCode::NO_CONTENT);
    assert_eq!(options.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        options.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    let allowed: Vec<String> = options
        .header("access-control-allow-headers")
        .expect("allow-headers")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    for needed in ["authorization", "content-type", "mcp-protocol-version"] {
        assert!(allowed.iter().any(|h| h == needed), "{needed}: {allowed:?}");
    }
    assert!(options.body.is_empty());

    // Other methods: 405 with Allow.
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let reply = server
            .send(
                server
                    .request(method.clone(), path)
                    .header(AUTHORIZATION, format!("Bearer {WRITER}")),
            )
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD, OPTIONS"));
        assert!(reply.body.is_empty());
    }

    // The root well-known URL is not this resource's metadata: it is guarded like any other path.
    let root = server
        .get("/.well-known/oauth-protected-resource", None)
        .await;
    assert_eq!(root.status, StatusCode::UNAUTHORIZED);
    assert_challenge(
        &root,
        &format!("Bearer {}, scope=\"mcp:read\"", server.prm_param()),
    );
    // Nor is a near miss.
    let near = server
        .get("/.well-known/oauth-protected-resource/mcp/", None)
        .await;
    assert_eq!(near.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.calls(), 0);

    // With the alias enabled, the root URL serves the same document.
    let (aliased, resource) = metadata_server(true).await;
    let expected = expected_document(&resource);
    assert_document(
        &aliased
            .get("/.well-known/oauth-protected-resource", None)
            .await,
        &expected,
    );
    assert_document(
        &aliased
            .get("/.well-known/oauth-protected-resource/mcp", None)
            .await,
        &expected,
    );
    assert_eq!(aliased.calls(), 0);
}

#[tokio::test]
async fn metadata_service_standalone() {
    let resource = "https://api.example.com/mcp";
    let service = MetadataService::new(sample_metadata(resource)).expect("valid document");
    let expected = expected_document(resource);

    let get = |method: Method| {
        let service = service.clone();
        async move {
            let response = service
                .oneshot(
                    Request::builder()
                        .method(method)
                        .uri("/anything")
                        .body(())
                        .expect("request"),
                )
                .await
                .expect("infallible");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            (parts, body)
        }
    };
    let (parts, body) = get(Method::GET).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers["content-type"], "application/json");
    assert_eq!(parts.headers["cache-control"], "public, max-age=3600");
    assert_eq!(
        parts.headers["content-length"],
        expected.len().to_string().as_str()
    );
    assert_eq!(body, expected.as_bytes());

    let (parts, body) = get(Method::HEAD).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(
        parts.headers["content-length"],
        expected.len().to_string().as_str()
    );
    assert!(body.is_empty());

    let (parts, _) = get(Method::OPTIONS).await;
    assert_eq!(parts.status, StatusCode::NO_CONTENT);
    assert_eq!(
        parts.headers["access-control-allow-headers"],
        "Authorization, Content-Type, MCP-Protocol-Version"
    );

    let (parts, body) = get(Method::POST).await;
    assert_eq!(parts.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(parts.headers["allow"], "GET, HEAD, OPTIONS");
    assert!(body.is_empty());

    // A layer's own metadata service answers with the layer's document.
    let layer = BearerAuthLayer::builder()
        .metadata(sample_metadata(resource))
        .validator(static_validator())
        .build()
        .expect("valid configuration");
    let response = layer
        .metadata_service()
        .oneshot(Request::get("/").body(()).expect("request"))
        .await
        .expect("infallible");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body, expected.as_bytes());

    // And the document is validated.
    assert_eq!(
        MetadataService::new(ProtectedResourceMetadata::new(resource)).err(),
        Some(BuildError::MissingAuthorizationServer)
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Builder errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn builder_refuses_bad_configurations() {
    let validator = Arc::new(static_validator());
    let with = |resource: &str| {
        BearerAuthLayer::builder()
            .resource(resource)
            .authorization_server(ISSUER)
            .shared_validator(validator.clone())
    };
    assert_eq!(
        BearerAuthLayer::builder()
            .authorization_server(ISSUER)
            .shared_validator(validator.clone())
            .build()
            .err(),
        Some(BuildError::MissingResource)
    );
    for bad in [
        "http://example.com/mcp",
        "https://api.example.com/mcp#frag",
        "https://api.example.com/mcp?tenant=1",
        "https://user@api.example.com/mcp",
        "/mcp",
    ] {
        assert!(
            matches!(with(bad).build(), Err(BuildError::InvalidResource(_))),
            "{bad}"
        );
    }
    assert_eq!(
        BearerAuthLayer::builder()
            .resource("https://api.example.com/mcp")
            .shared_validator(validator.clone())
            .build()
            .err(),
        Some(BuildError::MissingAuthorizationServer)
    );
    assert!(matches!(
        BearerAuthLayer::builder()
            .resource("https://api.example.com/mcp")
            .authorization_server("http://auth.example.com")
            .shared_validator(validator.clone())
            .build(),
        Err(BuildError::InvalidAuthorizationServer(_))
    ));
    assert_eq!(
        BearerAuthLayer::builder()
            .resource("https://api.example.com/mcp")
            .authorization_server(ISSUER)
            .build()
            .err(),
        Some(BuildError::MissingValidator)
    );
    assert_eq!(
        with("https://api.example.com/mcp")
            .policy(
                RoutePolicy::new()
                    .route(Some(Method::GET), "/ok", Requirement::all_of(["fine"]))
                    .route(None, "/bad", Requirement::all_of(["bad scope"]))
            )
            .build()
            .err(),
        Some(BuildError::InvalidScope("bad scope".into()))
    );
    assert!(matches!(
        with("https://api.example.com/mcp")
            .require(Requirement::any_of(["ok", "caf\u{e9}"]))
            .build(),
        Err(BuildError::InvalidScope(_))
    ));
    assert!(matches!(
        with("https://api.example.com/mcp")
            .scope_hierarchy(ScopeHierarchy::new().implies("mcp", ["mcp\"read"]))
            .build(),
        Err(BuildError::InvalidScope(_))
    ));
    assert!(matches!(
        with("https://api.example.com/mcp")
            .scopes_supported(["bad scope"])
            .build(),
        Err(BuildError::InvalidScope(_))
    ));
    for realm in ["a\"b", "a\\b", "tab\there", "caf\u{e9}", "line\nbreak"] {
        assert!(
            matches!(
                with("https://api.example.com/mcp").realm(realm).build(),
                Err(BuildError::Invalid(_))
            ),
            "{realm:?}"
        );
    }
    assert!(matches!(
        with("https://api.example.com/mcp")
            .max_token_bytes(0)
            .build(),
        Err(BuildError::Invalid(_))
    ));

    for ok in [
        "http://127.0.0.1:1/mcp",
        "http://localhost/mcp",
        "http://[::1]:8080/mcp",
        "https://api.example.com/mcp",
    ] {
        let layer = with(ok).realm("ok realm").build();
        assert!(layer.is_ok(), "{ok}: {layer:?}");
    }
    let layer = with("http://localhost/mcp").build().expect("valid");
    assert_eq!(
        layer.metadata_url(),
        "http://localhost/.well-known/oauth-protected-resource/mcp"
    );
    assert!(BearerAuthLayer::new("http://127.0.0.1:1/mcp", ISSUER, static_validator()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// 9. Scope policies end to end
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn route_policy_any_of_closure_and_hierarchy() {
    let routes = start(|b| {
        b.policy(
            RoutePolicy::new()
                .route(
                    Some(Method::GET),
                    "/notes",
                    Requirement::all_of(["notes:read"]),
                )
                .route(
                    Some(Method::POST),
                    "/notes",
                    Requirement::all_of(["notes:write"]),
                )
                .route(
                    None,
                    "/admin/*",
                    Requirement::any_of(["admin", "notes:write"]),
                ),
        )
    })
    .await;
    let prm = routes.prm_param();
    // NOTES_READER: `notes:read mcp:read`.
    let reply = routes
        .call_with_token(Method::GET, "/notes", NOTES_READER)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.text(),
        "sub=notes-reader;scopes=mcp:read notes:read;auth=absent;path=/notes"
    );
    let reply = routes
        .call_with_token(Method::POST, "/notes", NOTES_READER)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INSUFFICIENT}, scope=\"notes:write\""),
    );
    // any-of: the first alternative is the one named.
    let reply = routes
        .call_with_token(Method::GET, "/admin/users", NOTES_READER)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INSUFFICIENT}, scope=\"admin\""),
    );
    // WRITER holds notes:write: POST passes, and so does the any-of route.
    for (method, path) in [(Method::POST, "/notes"), (Method::DELETE, "/admin/users")] {
        let reply = routes.call_with_token(method, path, WRITER).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(reply.text().starts_with("sub=writer;"));
    }
    // No route matched: the fallback requires nothing.
    let reply = routes.call_with_token(Method::GET, "/other", ALICE).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Without a token, the 401 names what the route needs.
    let reply = routes.send(routes.request(Method::POST, "/notes")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(&reply, &format!("Bearer {prm}, scope=\"notes:write\""));
    let reply = routes.get("/notes", None).await;
    assert_challenge(&reply, &format!("Bearer {prm}, scope=\"notes:read\""));
    assert_eq!(routes.calls(), 4);

    // A closure policy.
    let delete = Requirement::all_of(["notes:delete"]);
    let closure = start(move |b| {
        b.policy(move |parts: &Parts| {
            if parts.method == Method::DELETE {
                delete.clone()
            } else {
                Requirement::none()
            }
        })
    })
    .await;
    let prm = closure.prm_param();
    let reply = closure
        .call_with_token(Method::GET, "/notes/1", NOTES_READER)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = closure
        .call_with_token(Method::DELETE, "/notes/1", WRITER)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INSUFFICIENT}, scope=\"notes:delete\""),
    );
    let reply = closure
        .send(closure.request(Method::DELETE, "/notes/1"))
        .await;
    assert_challenge(&reply, &format!("Bearer {prm}, scope=\"notes:delete\""));
    let reply = closure.get("/notes/1", None).await;
    assert_challenge(&reply, &format!("Bearer {prm}"));
    assert_eq!(closure.calls(), 1);

    // A hierarchy: `mcp` implies `mcp:read` and `mcp:write`.
    let hierarchy = start(|b| {
        b.require(Requirement::all_of(["mcp:write"]))
            .scope_hierarchy(ScopeHierarchy::new().implies("mcp", ["mcp:read", "mcp:write"]))
    })
    .await;
    let reply = hierarchy.call_with_token(Method::POST, "/mcp", BROAD).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), echo("broad", "mcp"));
    let reply = hierarchy.call_with_token(Method::POST, "/mcp", ALICE).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_challenge(
        &reply,
        &format!(
            "Bearer {}, {DESC_INSUFFICIENT}, scope=\"mcp:write\"",
            hierarchy.prm_param()
        ),
    );
    assert_eq!(hierarchy.calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// 10. Asynchronous validators
// ---------------------------------------------------------------------------------------------

const ASYNC_OK: &str = "AsyncOkTok-Vv1Bb2Nn3Mm4Cc5Xx-secret";
const ASYNC_DOWN: &str = "AsyncDownTok-Zz9Yy8Xx7Ww6Vv-secret";
const ASYNC_BUG: &str = "AsyncBugTok-Ll1Kk2Jj3Hh4Gg5-secret";
const SECRET_DETAIL: &str = "secret detail: introspection db 10.9.8.7 password hunter2";

/// Answers after a short sleep: ASYNC_OK is `async-user` with `mcp:read`; ASYNC_DOWN is an introspection
/// outage; ASYNC_BUG an internal error; anything else unknown.
struct SlowValidator;

impl TokenValidator for SlowValidator {
    fn validate(&self, token: &BearerToken, _context: &ValidationContext) -> Validation {
        let token = token.clone();
        Validation::pending(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            match token.as_str() {
                ASYNC_OK => Ok(AccessToken::builder()
                    .subject("async-user")
                    .scopes(["mcp:read"])
                    .build()),
                ASYNC_DOWN => Err(ValidationError::unavailable(Unavailable::Introspection)),
                ASYNC_BUG => Err(ValidationError::Internal(SECRET_DETAIL)),
                _ => Err(InvalidToken::Unknown.into()),
            }
        })
    }
}

#[tokio::test]
async fn asynchronous_validator_outcomes() {
    let server = start(|b| {
        b.validator(SlowValidator).policy(
            RoutePolicy::new()
                .route(None, "/write", Requirement::all_of(["mcp:write"]))
                .fallback(Requirement::all_of(["mcp:read"])),
        )
    })
    .await;
    let prm = server.prm_param();

    let reply = server.call_with_token(Method::POST, "/mcp", ASYNC_OK).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), echo("async-user", "mcp:read"));

    let reply = server
        .call_with_token(Method::POST, "/write", ASYNC_OK)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INSUFFICIENT}, scope=\"mcp:write\""),
    );

    let reply = server.call_with_token(Method::POST, "/mcp", UNKNOWN).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_challenge(
        &reply,
        &format!("Bearer {prm}, {DESC_INVALID_TOKEN}, scope=\"mcp:read\""),
    );

    // An outage: 503, Retry-After, no challenge, and never `invalid_token`.
    let reply = server
        .send(
            server
                .request(Method::POST, "/mcp")
                .header(AUTHORIZATION, format!("Bearer {ASYNC_DOWN}"))
                .header(ORIGIN, "https://app.example"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert_eq!(reply.header("www-authenticate"), None);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.text(),
        r#"{"error":"temporarily_unavailable","error_description":"Token introspection is temporarily unavailable"}"#
    );
    assert!(!reply.contains("invalid_token"));

    // An internal error: 500, and the detail stays on the server.
    let reply = server
        .call_with_token(Method::POST, "/mcp", ASYNC_BUG)
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.header("www-authenticate"), None);
    assert_eq!(reply.header("retry-after"), None);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(
        reply.text(),
        r#"{"error":"server_error","error_description":"Internal error"}"#
    );
    for fragment in ["secret", "hunter2", "10.9.8.7"] {
        assert!(!reply.contains(fragment), "{fragment} leaked");
    }
    assert_eq!(server.calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// 11. poll_ready is honoured
// ---------------------------------------------------------------------------------------------

/// An inner service whose every clone has its own id and readiness; `call` fails unless this very
/// instance was made ready by `poll_ready`.
#[derive(Debug)]
struct Tracked {
    id: usize,
    ready: bool,
    ids: Arc<AtomicUsize>,
}

impl Tracked {
    fn new() -> Self {
        Self {
            id: 0,
            ready: false,
            ids: Arc::new(AtomicUsize::new(1)),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self {
            id: self.ids.fetch_add(1, Ordering::SeqCst),
            ready: false,
            ids: self.ids.clone(),
        }
    }
}

impl Service<Request<String>> for Tracked {
    type Response = Response<String>;
    type Error = String;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, String>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<String>) -> Self::Future {
        let id = self.id;
        if !std::mem::replace(&mut self.ready, false) {
            return Box::pin(
                async move { Err(format!("instance {id} called without poll_ready")) },
            );
        }
        let subject = request
            .extensions()
            .get::<AccessToken>()
            .and_then(|t| t.subject().map(str::to_owned))
            .unwrap_or_default();
        Box::pin(async move { Ok(Response::new(format!("instance={id};sub={subject}"))) })
    }
}

fn tracked_request(token: &str) -> Request<String> {
    Request::post("https://api.example.com/mcp")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .expect("request")
}

/// The body of an in-process response as text (the test kit's reply).
async fn text_of<B>(response: Response<B>) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    Reply::collect(response)
        .await
        .expect("body")
        .text()
        .to_owned()
}

#[tokio::test]
async fn poll_ready_reservation_is_used_by_call() {
    let run = async {
        // Synchronous path (static validator).
        let layer = base_builder("https://api.example.com/mcp")
            .build()
            .expect("valid");
        let mut service = layer.layer(Tracked::new());
        for round in 0..3 {
            let ready = service.ready().await.expect("ready");
            let made_ready = ready.get_ref().id;
            let response = ready.call(tracked_request(ALICE)).await.expect("call");
            assert_eq!(response.status(), StatusCode::OK, "round {round}");
            assert_eq!(
                text_of(response).await,
                format!("instance={made_ready};sub=alice")
            );
            // Decided synchronously: the instance made ready is called in place (no clone is needed, and
            // its reservation is used up).
            assert_eq!(service.get_ref().id, made_ready, "called in place");
            assert!(!service.get_ref().ready);
        }
        // A rejection does not call the inner service; the next request is served normally.
        let ready = service.ready().await.expect("ready");
        let response = ready.call(tracked_request(UNKNOWN)).await.expect("call");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let ready = service.ready().await.expect("ready");
        let made_ready = ready.get_ref().id;
        let response = ready.call(tracked_request(ALICE)).await.expect("call");
        assert_eq!(
            text_of(response).await,
            format!("instance={made_ready};sub=alice")
        );

        // Asynchronous path: two requests made ready and called before either validation finishes;
        // each future calls the instance that was ready when `call` ran.
        let layer = base_builder("https://api.example.com/mcp")
            .validator(SlowValidator)
            .build()
            .expect("valid");
        let mut service = layer.layer(Tracked::new());
        let ready = service.ready().await.expect("ready");
        let first_id = ready.get_ref().id;
        let first = ready.call(tracked_request(ASYNC_OK));
        let ready = service.ready().await.expect("ready");
        let second_id = ready.get_ref().id;
        assert_ne!(first_id, second_id);
        let second = ready.call(tracked_request(ASYNC_OK));
        let second = second.await.expect("second call");
        let first = first.await.expect("first call");
        assert_eq!(
            text_of(second).await,
            format!("instance={second_id};sub=async-user")
        );
        assert_eq!(
            text_of(first).await,
            format!("instance={first_id};sub=async-user")
        );
        // An asynchronous rejection leaves the inner service untouched.
        let ready = service.ready().await.expect("ready");
        let made_ready = ready.get_ref().id;
        let response = ready.call(tracked_request(ASYNC_DOWN)).await.expect("call");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let ready = service.ready().await.expect("ready");
        assert_ne!(
            ready.get_ref().id,
            made_ready,
            "the moved instance was consumed"
        );
        let again = ready.get_ref().id;
        let response = ready.call(tracked_request(ASYNC_OK)).await.expect("call");
        assert_eq!(
            text_of(response).await,
            format!("instance={again};sub=async-user")
        );
    };
    timeout(WAIT, run).await.expect("timed out");
}

// ---------------------------------------------------------------------------------------------
// 12. Secrets never leak
// ---------------------------------------------------------------------------------------------

fn assert_no_token(reply: &Reply, tokens: &[&str], case: &str) {
    for token in tokens {
        assert!(!reply.contains(token), "{case}: token leaked in {reply:?}");
    }
}

#[tokio::test]
async fn tokens_never_appear_in_responses_or_debug_output() {
    let mut secrets: Vec<&str> = ALL_TOKENS.to_vec();
    secrets.extend([ASYNC_OK, ASYNC_DOWN, ASYNC_BUG]);
    let oversize = format!("OversizeSecret-{}", "Q".repeat(9000));

    let server = start(|b| {
        b.policy(RoutePolicy::new().route(None, "/write", Requirement::all_of(["mcp:write"])))
    })
    .await;
    let keep = start(|b| b.strip_authorization_header(false)).await;
    let slow = start(|b| b.validator(SlowValidator)).await;

    let cases: Vec<(&TestServer, Vec<String>, &str, StatusCode)> = vec![
        (
            &server,
            vec![format!("Bearer {UNKNOWN}")],
            "/mcp",
            StatusCode::UNAUTHORIZED,
        ),
        (
            &server,
            vec![format!("Bearer {ALICE},x")],
            "/mcp",
            StatusCode::BAD_REQUEST,
        ),
        (
            &server,
            vec![format!("Bearer {ALICE} {WRITER}")],
            "/mcp",
            StatusCode::BAD_REQUEST,
        ),
        (
            &server,
            vec![format!("Bearer {ALICE}"), format!("Bearer {WRITER}")],
            "/mcp",
            StatusCode::BAD_REQUEST,
        ),
        (
            &server,
            vec![format!("Bearer {oversize}")],
            "/mcp",
            StatusCode::BAD_REQUEST,
        ),
        (
            &server,
            vec![format!("Basic {ALICE}")],
            "/mcp",
            StatusCode::UNAUTHORIZED,
        ),
        (
            &server,
            vec![format!("Bearer {ALICE}")],
            "/write",
            StatusCode::FORBIDDEN,
        ),
        (
            &server,
            vec![format!("Bearer {ALICE}")],
            "/mcp",
            StatusCode::OK,
        ),
        (&server, vec![], "/mcp", StatusCode::UNAUTHORIZED),
        (
            &keep,
            vec![format!("Bearer {ALICE}")],
            "/mcp",
            StatusCode::OK,
        ),
        (
            &slow,
            vec![format!("Bearer {ASYNC_OK}")],
            "/mcp",
            StatusCode::OK,
        ),
        (
            &slow,
            vec![format!("Bearer {ASYNC_DOWN}")],
            "/mcp",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            &slow,
            vec![format!("Bearer {ASYNC_BUG}")],
            "/mcp",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            &slow,
            vec![format!("Bearer {UNKNOWN}")],
            "/mcp",
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (target, authorizations, path, status) in &cases {
        let mut builder = target
            .request(Method::POST, path)
            .header(ORIGIN, "https://app.example");
        for value in authorizations {
            builder = builder.header(AUTHORIZATION, value);
        }
        let reply = target.send(builder).await;
        let case = format!(
            "{path} {:?}",
            authorizations.iter().map(|a| a.len()).collect::<Vec<_>>()
        );
        assert_eq!(reply.status, *status, "{case}");
        assert_no_token(&reply, &secrets, &case);
        assert!(!reply.contains("OversizeSecret"), "{case}");
    }
    // The query string is not echoed either.
    let reply = server
        .get(&format!("/mcp?access_token={ALICE}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_no_token(&reply, &secrets, "query");

    // Debug output of every type that ever holds or sees the token.
    let validator = static_validator();
    let builder = StaticValidator::builder().token(ALICE, StaticToken::new("alice"));
    let bearer = BearerToken::new(ALICE).expect("b64token");
    let context = ValidationContext::new("https://api.example.com/mcp");
    let validation = validator.validate(&bearer, &context);
    let access = validator
        .validate(&bearer, &context)
        .into_ready()
        .expect("ready")
        .expect("valid");
    let pending = SlowValidator.validate(&BearerToken::new(ASYNC_OK).expect("b64token"), &context);
    let layer_builder = BearerAuthLayer::builder()
        .resource("https://api.example.com/mcp")
        .authorization_server(ISSUER)
        .validator(static_validator());
    let layer = base_builder("https://api.example.com/mcp")
        .build()
        .expect("valid");
    let service = layer.layer(Tracked::new());
    let rejections = [
        Rejection::MissingCredentials,
        Rejection::InvalidRequest(MalformedRequest::MalformedToken),
        Rejection::InvalidToken(InvalidToken::Unknown),
        Rejection::InsufficientScope,
        Rejection::Unavailable {
            reason: Unavailable::KeySet,
            retry_after: Duration::from_secs(5),
        },
        Rejection::Internal,
    ];
    let errors = [
        ValidationError::from(InvalidToken::Expired),
        ValidationError::unavailable(Unavailable::Introspection),
        ValidationError::Internal("boom"),
    ];
    let mut outputs = vec![
        format!("{bearer:?}"),
        format!("{bearer:#?}"),
        format!("{validator:?}"),
        format!("{builder:?}"),
        format!("{access:?}"),
        format!("{access:#?}"),
        format!("{validation:?}"),
        format!("{pending:?}"),
        format!("{layer_builder:?}"),
        format!("{layer:?}"),
        format!("{layer:#?}"),
        format!("{service:?}"),
    ];
    outputs.extend(rejections.iter().map(|r| format!("{r:?} {r}")));
    outputs.extend(errors.iter().map(|e| format!("{e:?} {e}")));
    for output in &outputs {
        for token in &secrets {
            assert!(!output.contains(token), "token in {output}");
        }
        assert!(!output.contains("secret"), "token fragment in {output}");
    }
    // The checks above are meaningful: these outputs do describe their values.
    assert!(outputs[0].contains(&format!("len: {}", ALICE.len())));
    assert!(outputs[2].contains("alice"));
    assert!(outputs[4].contains("alice"));
    assert_eq!(access.subject(), Some("alice"));
    assert_eq!(bearer.as_str(), ALICE);
}
