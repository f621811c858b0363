#![cfg(all(feature = "testkit", feature = "introspection", feature = "jwt"))]
//! `IntrospectionValidator` (RFC 7662) against the development issuer's introspection endpoint, over real
//! loopback HTTP.
//!
//! What this file establishes:
//! - an active answer becomes an `AccessToken` (subject, client id, scopes, audiences, issuer, expiry, raw
//!   claims); only the JSON boolean `true` is active;
//! - the local checks of an active answer: `aud` (and the layer's resource as the default audience),
//!   `exp`/`nbf` with the leeway, `iss`, `token_type`, `scope`;
//! - every failure of the authorization server (status, timeout, oversize, invalid JSON, connection
//!   refused, redirect, our own credentials refused) is `Unavailable` — 503 with `Retry-After` through the
//!   layer, never `invalid_token`, never a byte of the server's answer — and is never cached;
//! - the cache: hits make no call, entries never outlive `exp`, revocation shows after the positive TTL,
//!   the negative TTL (zero included), `no_cache`, and one call for 200 concurrent validations;
//! - client authentication (`client_secret_basic` with RFC 6749 §2.3.1 encoding, `client_secret_post`,
//!   bearer), discovery of the endpoint (RFC 8414, issuer identity checked), and `Debug` redaction.
//!
//! Every wait is bounded; nothing asserts how fast anything is beyond generous bounds.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bearer_guard::testkit::probe::Served;
use bearer_guard::testkit::{Behavior, DevIssuer, Endpoint, KeyAlg};
use bearer_guard::validate::IntrospectionValidatorBuilder;
use bearer_guard::{
    AccessToken, ClientAuth, IntrospectionValidator, InvalidToken, TokenValidator, Unavailable,
    ValidationError,
};
use common::validators::{
    assert_accepts, assert_rejects, bearer, start, validate, validate_within,
};
use common::Reply;
use futures_util::{stream, StreamExt};
use http::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

/// Bound of every network wait and validation.
const WAIT: Duration = Duration::from_secs(5);
/// Bound of a validation while the authorization server misbehaves (call timeout 300 ms there).
const OUTAGE_BOUND: Duration = Duration::from_secs(3);
const AUD: &str = "https://mcp.example.com/mcp";
const OTHER_AUD: &str = "https://other.example.com/api";

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/// An issuer with one cheap key (opaque tokens need none) and the default introspection client.
async fn issuer() -> DevIssuer {
    start(DevIssuer::builder().keys(&[KeyAlg::Es256])).await
}

/// A validator for `dev`'s endpoint, as its default client, expecting `AUD`.
fn base(dev: &DevIssuer) -> IntrospectionValidatorBuilder {
    IntrospectionValidator::builder()
        .endpoint(dev.introspection_endpoint())
        .issuer(dev.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
        .audience(AUD)
}

fn build(builder: IntrospectionValidatorBuilder) -> IntrospectionValidator {
    builder.build().expect("the validator builds")
}

fn assert_unavailable_because(
    result: Result<AccessToken, ValidationError>,
    reason: Unavailable,
    context: &str,
) {
    match result {
        Err(ValidationError::Unavailable { reason: got, .. }) if got == reason => {}
        other => panic!("{context}: expected Unavailable::{reason:?} (503), got {other:?}"),
    }
}

fn assert_unavailable(result: Result<AccessToken, ValidationError>, context: &str) {
    assert_unavailable_because(result, Unavailable::Introspection, context);
}

/// An active opaque token of `dev` for `AUD`.
fn opaque(dev: &DevIssuer) -> String {
    dev.opaque_token().audience(AUD).issue()
}

/// A token `dev` answers exactly `response` for.
fn token_answered(dev: &DevIssuer, response: Value) -> String {
    let token = dev.opaque_token().issue();
    dev.set_introspection_response(&token, response);
    token
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Sleeps until just after the next whole second. The caches keep deadlines in whole Unix seconds, so a
/// 1 s entry stored right before a second boundary would be gone at once; starting a TTL test at the
/// beginning of a second gives it (almost) its full second.
async fn start_of_a_second() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let rest = Duration::from_nanos(1_000_000_000 - u64::from(nanos));
    sleep(rest + Duration::from_millis(20)).await;
}

/// A TCP port on 127.0.0.1 nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    drop(listener);
    addr
}

// ----- a guarded HTTP server (axum) and a client -----

/// The guarded `whoami` server of `tests/common` around `validator`.
async fn serve_guarded(authorization_server: &str, validator: IntrospectionValidator) -> Served {
    common::serve_whoami(authorization_server, validator).await
}

async fn get_with_token(server: &Served, token: &str) -> Reply {
    common::get_with_token(server.addr, token).await
}

/// A 503 of an authorization-server failure: `Retry-After`, no `invalid_token`, none of `leaks`.
fn assert_503(reply: &Reply, leaks: &[&str], context: &str) {
    assert_eq!(reply.status, 503, "{context}: {}", reply.text());
    let retry_after = reply
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("{context}: a 503 carries Retry-After"))
        .to_str()
        .expect("Retry-After is text");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
        "{context}: Retry-After is delay-seconds, got {retry_after:?}"
    );
    assert!(
        !reply.contains("invalid_token"),
        "{context}: a 503 never says invalid_token"
    );
    for leak in leaks {
        assert!(
            !reply.contains(leak),
            "{context}: the authorization server's answer ({leak:?}) is echoed"
        );
    }
}

// ----- a fake authorization server with distinctive answers -----

/// Every answer of the fake authorization server carries this, to spot an echo.
const AS_MARK: &str = "ZqX-as-said-THIS-9f3";

/// A fake introspection server: each path fails in its own way, each answer carries `AS_MARK`.
async fn fake_as() -> (SocketAddr, JoinHandle<()>) {
    let body = |text: &str| text.replace("MARK", AS_MARK);
    let e500 = body(r#"{"error":"server_error","error_description":"MARK"}"#);
    let e401 = body(r#"{"error":"invalid_client","error_description":"MARK"}"#);
    let html = body("<html><body>MARK</body></html>");
    let array = body(r#"["MARK", {"active": true}]"#);
    let duplicate = body(r#"{"active":true,"active":false,"sub":"MARK"}"#);
    let json = || [(http::header::CONTENT_TYPE, "application/json")];
    let app = Router::new()
        .route(
            "/status500",
            post(move || async move { (StatusCode::INTERNAL_SERVER_ERROR, json(), e500) }),
        )
        .route(
            "/status401",
            post(move || async move {
                (
                    StatusCode::UNAUTHORIZED,
                    [(
                        http::header::WWW_AUTHENTICATE,
                        format!("Basic realm=\"{AS_MARK}\""),
                    )],
                    e401,
                )
                    .into_response()
            }),
        )
        .route(
            "/html",
            post(move || async move { (StatusCode::OK, html).into_response() }),
        )
        .route(
            "/array",
            post(move || async move { (StatusCode::OK, json(), array) }),
        )
        .route(
            "/duplicate",
            post(move || async move { (StatusCode::OK, json(), duplicate) }),
        )
        .route(
            "/chunked-huge",
            post(|| async {
                // 1 MiB without Content-Length, in 1 KiB chunks: the cap must hold while streaming.
                let chunks = (0..1024).map(|i| {
                    let text = if i == 0 {
                        format!("{{\"active\":true,\"sub\":\"{AS_MARK}\",\"pad\":\"")
                    } else {
                        "x".repeat(1024)
                    };
                    Ok::<_, std::io::Error>(Bytes::from(text))
                });
                (StatusCode::OK, Body::from_stream(stream::iter(chunks))).into_response()
            }),
        )
        .route(
            "/slow-body",
            post(|| async {
                // The head and a first chunk at once, the rest (much) later: the total timeout holds.
                let first = stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from(format!("{{\"sub\":\"{AS_MARK}\",")))
                });
                let rest = stream::once(async {
                    sleep(Duration::from_secs(10)).await;
                    Ok::<_, std::io::Error>(Bytes::from_static(b"\"active\":true}"))
                });
                (StatusCode::OK, Body::from_stream(first.chain(rest))).into_response()
            }),
        )
        .route(
            "/redirect",
            post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(
                        http::header::LOCATION,
                        format!("https://evil.example/{AS_MARK}"),
                    )],
                )
                    .into_response()
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

// ---------------------------------------------------------------------------------------------------------
// Active answers
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_active_opaque_token_becomes_an_access_token() {
    let dev = issuer().await;
    let validator = build(base(&dev));
    let exp = now() + 600;
    let token = dev
        .opaque_token()
        .subject("alice")
        .audience(AUD)
        .scope("mcp:read mcp:write")
        .claim("client_id", json!("client-7"))
        .claim("exp", json!(exp))
        .claim("tenant", json!({"id": "acme"}))
        .issue();
    assert!(!token.contains('.'), "opaque");

    let access = assert_accepts(&validator, &token).await;
    assert_eq!(access.subject(), Some("alice"));
    assert_eq!(access.client_id(), Some("client-7"));
    assert!(access.scopes().contains("mcp:read"));
    assert!(access.scopes().contains("mcp:write"));
    assert_eq!(access.scopes().len(), 2);
    assert_eq!(access.audiences(), [AUD.to_owned()]);
    assert_eq!(access.issuer(), Some(dev.issuer()));
    assert_eq!(
        access.expires_at(),
        Some(UNIX_EPOCH + Duration::from_secs(exp as u64))
    );
    let raw = access.raw_claims();
    assert_eq!(raw["tenant"], json!({"id": "acme"}));
    assert_eq!(raw["sub"], "alice");
    assert_eq!(raw["token_type"], "Bearer");
    assert_eq!(access.claim("client_id"), Some(&json!("client-7")));
    assert!(
        raw.get("active").is_none(),
        "`active` is not a claim of the token"
    );
    assert_eq!(dev.introspection_requests_for(&token), 1);
    assert_eq!(validator.introspection_calls(), 1);

    // The same issuer's unknown and revoked tokens: inactive.
    assert_rejects(
        &validator,
        "never-issued-token-0123456789",
        InvalidToken::Inactive,
    )
    .await;
    let revoked = opaque(&dev);
    assert!(dev.revoke(&revoked));
    assert_rejects(&validator, &revoked, InvalidToken::Inactive).await;
}

#[tokio::test]
async fn only_the_json_boolean_true_is_active() {
    let dev = issuer().await;
    let validator = build(base(&dev));
    let good = token_answered(&dev, json!({"active": true, "aud": AUD, "sub": "x"}));
    assert_eq!(assert_accepts(&validator, &good).await.subject(), Some("x"));
    for answer in [
        json!({"active": "true", "aud": AUD, "sub": "x"}),
        json!({"active": 1, "aud": AUD, "sub": "x"}),
        json!({"aud": AUD, "sub": "x"}),
        json!({"active": false, "sub": "x"}),
        json!({"active": false, "aud": AUD, "sub": "x", "scope": "mcp:read"}),
        json!({"active": null, "aud": AUD}),
        json!({"active": [true], "aud": AUD}),
        json!({"active": {"value": true}, "aud": AUD}),
        json!({}),
    ] {
        let token = token_answered(&dev, answer.clone());
        match validate(&validator, &token).await {
            Err(ValidationError::InvalidToken {
                reason: InvalidToken::Inactive,
                ..
            }) => {}
            other => panic!("{answer}: expected Inactive, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Audience
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_audience_must_name_this_resource() {
    let dev = issuer().await;
    let validator = build(base(&dev));
    assert_accepts(&validator, &opaque(&dev)).await;

    let other = dev.opaque_token().audience(OTHER_AUD).issue();
    assert_rejects(&validator, &other, InvalidToken::WrongAudience).await;

    let missing = dev.opaque_token().issue(); // no `aud`
    assert_rejects(&validator, &missing, InvalidToken::WrongAudience).await;

    let array_with_us = dev.opaque_token().audiences(&[OTHER_AUD, AUD]).issue();
    let access = assert_accepts(&validator, &array_with_us).await;
    assert_eq!(access.audiences(), [OTHER_AUD.to_owned(), AUD.to_owned()]);

    let array_without_us = dev
        .opaque_token()
        .audiences(&[OTHER_AUD, "https://mcp.example.com/mcp/"])
        .issue();
    assert_rejects(&validator, &array_without_us, InvalidToken::WrongAudience).await;

    let empty_array = dev.opaque_token().audiences(&[]).issue();
    assert_rejects(&validator, &empty_array, InvalidToken::WrongAudience).await;

    let not_strings = dev.opaque_token().claim("aud", json!([AUD, 7])).issue();
    assert_rejects(&validator, &not_strings, InvalidToken::Malformed).await;
    let number = dev.opaque_token().claim("aud", json!(7)).issue();
    assert_rejects(&validator, &number, InvalidToken::Malformed).await;
}

#[tokio::test]
async fn a_missing_audience_is_accepted_only_when_allowed() {
    let dev = issuer().await;
    let missing = dev.opaque_token().subject("no-aud").issue();

    let strict = build(base(&dev));
    assert_rejects(&strict, &missing, InvalidToken::WrongAudience).await;

    let lenient = build(base(&dev).allow_missing_audience(true));
    let access = assert_accepts(&lenient, &missing).await;
    assert_eq!(access.subject(), Some("no-aud"));
    assert!(access.audiences().is_empty());
    // A present audience must still name us.
    let other = dev.opaque_token().audience(OTHER_AUD).issue();
    assert_rejects(&lenient, &other, InvalidToken::WrongAudience).await;
    assert_accepts(&lenient, &opaque(&dev)).await;
}

#[tokio::test]
async fn the_default_audience_is_the_layers_resource() {
    let dev = issuer().await;
    // No `.audience(...)`: the layer binds its resource.
    let validator = build(
        IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic("rs-client", "rs-secret")),
    );
    // Asked directly for a layer guarding AUD, it expects AUD.
    let early = dev.opaque_token().audience(AUD).issue();
    assert_accepts(&validator, &early).await;

    let server = serve_guarded(dev.issuer(), validator.clone()).await;
    let resource = server.url("/mcp");

    let ours = dev
        .opaque_token()
        .subject("bound")
        .audience(&resource)
        .issue();
    let reply = get_with_token(&server, &ours).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, "sub=bound");
    // The same validator, asked directly for AUD's layer, still expects AUD there: the audience belongs
    // to the layer asking, not to the validator.
    assert_rejects(&validator, &ours, InvalidToken::WrongAudience).await;

    let theirs = dev.opaque_token().audience(AUD).issue();
    let reply = get_with_token(&server, &theirs).await;
    assert_eq!(reply.status, 401);
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_accepts(&validator, &theirs).await;
}

// ---------------------------------------------------------------------------------------------------------
// Time, issuer, type and scope
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn exp_and_nbf_are_checked_locally_with_the_leeway() {
    let dev = issuer().await;
    let validator = build(base(&dev)); // leeway 60 s
    let answer = |extra: Value| {
        let mut answer = json!({"active": true, "aud": AUD, "sub": "timed"});
        answer
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        token_answered(&dev, answer)
    };
    // The issuer itself reports expired tokens as inactive; a (lagging) server that still says active
    // is caught by the local check.
    let expired = answer(json!({"exp": now() - 120}));
    assert_rejects(&validator, &expired, InvalidToken::Expired).await;
    let within_leeway = answer(json!({"exp": now() - 30}));
    assert_accepts(&validator, &within_leeway).await;
    let fractional = answer(json!({"exp": (now() - 120) as f64 + 0.5}));
    assert_rejects(&validator, &fractional, InvalidToken::Expired).await;

    let not_yet = answer(json!({"nbf": now() + 120}));
    assert_rejects(&validator, &not_yet, InvalidToken::NotYetValid).await;
    let nbf_within_leeway = answer(json!({"nbf": now() + 30}));
    assert_accepts(&validator, &nbf_within_leeway).await;

    let not_a_date = answer(json!({"exp": "tomorrow"}));
    assert_rejects(&validator, &not_a_date, InvalidToken::MissingClaim).await;
    let no_exp = answer(json!({}));
    let access = assert_accepts(&validator, &no_exp).await;
    assert_eq!(access.expires_at(), None);

    let strict = build(base(&dev).leeway(Duration::ZERO));
    let just_expired = answer(json!({"exp": now() - 2}));
    assert_rejects(&strict, &just_expired, InvalidToken::Expired).await;
    assert_accepts(&validator, &just_expired).await;
    let fresh = answer(json!({"exp": now() + 120, "nbf": now() - 1}));
    assert_accepts(&strict, &fresh).await;
}

#[tokio::test]
async fn the_issuer_must_be_the_configured_one() {
    let dev = issuer().await;
    let validator = build(base(&dev));
    assert_accepts(&validator, &opaque(&dev)).await;

    let evil = dev
        .opaque_token()
        .audience(AUD)
        .claim("iss", json!("https://evil.example"))
        .issue();
    assert_rejects(&validator, &evil, InvalidToken::WrongIssuer).await;
    let trailing_slash = dev
        .opaque_token()
        .audience(AUD)
        .claim("iss", json!(format!("{}/", dev.issuer())))
        .issue();
    assert_rejects(&validator, &trailing_slash, InvalidToken::WrongIssuer).await;
    let not_a_string = dev
        .opaque_token()
        .audience(AUD)
        .claim("iss", json!(42))
        .issue();
    assert_rejects(&validator, &not_a_string, InvalidToken::WrongIssuer).await;

    // Absent: allowed, and the token carries the configured issuer.
    let absent = dev.opaque_token().audience(AUD).remove_claim("iss").issue();
    let access = assert_accepts(&validator, &absent).await;
    assert_eq!(access.issuer(), Some(dev.issuer()));

    // The server itself answering with another issuer (failure injection).
    dev.set_behavior(Endpoint::Introspection, Behavior::WrongIssuer);
    let token = opaque(&dev);
    assert_rejects(&validator, &token, InvalidToken::WrongIssuer).await;
    dev.set_behavior(Endpoint::Introspection, Behavior::Normal);
    let token = opaque(&dev);
    assert_accepts(&validator, &token).await;
}

#[tokio::test]
async fn the_token_type_must_be_bearer() {
    let dev = issuer().await;
    let validator = build(base(&dev));
    for accepted in [Some("Bearer"), Some("bearer"), Some("BEARER"), None] {
        let token = dev
            .opaque_token()
            .audience(AUD)
            .token_type(accepted)
            .issue();
        assert_accepts(&validator, &token).await;
    }
    for refused in ["DPoP", "N_A", "mac", ""] {
        let token = dev
            .opaque_token()
            .audience(AUD)
            .token_type(Some(refused))
            .issue();
        assert_rejects(&validator, &token, InvalidToken::WrongType).await;
    }
    let number = dev
        .opaque_token()
        .audience(AUD)
        .claim("token_type", json!(1))
        .issue();
    assert_rejects(&validator, &number, InvalidToken::WrongType).await;
}

#[tokio::test]
async fn the_scope_must_be_a_string() {
    let dev = issuer().await;
    let validator = build(base(&dev));
    for scope in [
        json!(["mcp:read"]),
        json!(7),
        json!({"mcp:read": true}),
        json!(null),
    ] {
        let token = dev
            .opaque_token()
            .audience(AUD)
            .claim("scope", scope)
            .issue();
        assert_rejects(&validator, &token, InvalidToken::Malformed).await;
    }
    let token = dev.opaque_token().audience(AUD).scope("a b c").issue();
    assert_eq!(assert_accepts(&validator, &token).await.scopes().len(), 3);
    let none = dev
        .opaque_token()
        .audience(AUD)
        .remove_claim("scope")
        .issue();
    assert!(assert_accepts(&validator, &none).await.scopes().is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// Authorization server failures
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_failure_of_the_authorization_server_is_unavailable_and_never_cached() {
    let dev = issuer().await;
    let validator = build(
        base(&dev)
            .timeout(Duration::from_millis(300))
            .max_response_bytes(1024),
    );
    for behavior in [
        Behavior::Status(500),
        Behavior::Status(503),
        Behavior::Status(401),
        Behavior::Status(403),
        Behavior::Status(400),
        Behavior::Status(404),
        Behavior::Status(302),
        Behavior::Status(204),
        Behavior::Slow(Duration::from_secs(2)),
        Behavior::Oversize(4096),
        Behavior::InvalidJson,
    ] {
        let context = format!("{behavior:?}");
        let token = opaque(&dev);
        dev.set_behavior(Endpoint::Introspection, behavior);
        let started = Instant::now();
        assert_unavailable(
            validate_within(&validator, &token, OUTAGE_BOUND).await,
            &context,
        );
        assert!(started.elapsed() < OUTAGE_BOUND, "{context}: bounded");
        // Not cached: a second try asks again, and fails again.
        assert_unavailable(
            validate_within(&validator, &token, OUTAGE_BOUND).await,
            &context,
        );
        assert_eq!(dev.introspection_requests_for(&token), 2, "{context}");

        // The server recovers: the very next validation asks and succeeds.
        dev.set_behavior(Endpoint::Introspection, Behavior::Normal);
        assert_accepts(&validator, &token).await;
        assert_eq!(dev.introspection_requests_for(&token), 3, "{context}");
        // And that answer is cached.
        assert_accepts(&validator, &token).await;
        assert_eq!(dev.introspection_requests_for(&token), 3, "{context}");
    }

    // The pairs: a slow answer within the timeout, a padded answer within the size cap.
    dev.set_behavior(
        Endpoint::Introspection,
        Behavior::Slow(Duration::from_millis(50)),
    );
    assert_accepts(&validator, &opaque(&dev)).await;
    dev.set_behavior(Endpoint::Introspection, Behavior::Oversize(900));
    assert_accepts(&validator, &opaque(&dev)).await;
}

#[tokio::test]
async fn our_own_credentials_refused_is_unavailable_not_invalid_token() {
    let dev = issuer().await;
    let token = opaque(&dev);
    let inactive = "not-a-token-of-this-issuer-42";
    for (auth, context) in [
        (
            Some(ClientAuth::basic("rs-client", "wrong-secret")),
            "basic, wrong secret",
        ),
        (
            Some(ClientAuth::basic("someone-else", "rs-secret")),
            "basic, wrong id",
        ),
        (
            Some(ClientAuth::post("rs-client", "wrong-secret")),
            "post, wrong secret",
        ),
        (
            Some(ClientAuth::bearer("not-configured")),
            "bearer, none configured",
        ),
        (None, "no client authentication"),
    ] {
        let mut builder = IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .issuer(dev.issuer())
            .audience(AUD);
        if let Some(auth) = auth {
            builder = builder.client_auth(auth);
        }
        let validator = build(builder);
        assert_unavailable(validate(&validator, &token).await, context);
        // Even for a token the server would call inactive: we cannot know, so never invalid_token.
        assert_unavailable(validate(&validator, inactive).await, context);
    }
    // The pair: the right credentials.
    let validator = build(base(&dev));
    assert_accepts(&validator, &token).await;
    assert_rejects(&validator, inactive, InvalidToken::Inactive).await;
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let dev = issuer().await;
    let token = opaque(&dev);
    let closed = closed_port().await;
    let validator = build(
        IntrospectionValidator::builder()
            .endpoint(format!("http://{closed}/introspect"))
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
            .audience(AUD)
            .timeout(Duration::from_millis(300)),
    );
    for _ in 0..2 {
        assert_unavailable(
            validate_within(&validator, &token, OUTAGE_BOUND).await,
            "connection refused",
        );
    }
    assert_eq!(
        validator.introspection_calls(),
        2,
        "failures are not cached"
    );
    assert_eq!(dev.introspection_requests_for(&token), 0);
    assert_accepts(&build(base(&dev)), &token).await;
}

#[tokio::test]
async fn a_stopped_authorization_server_is_unavailable() {
    let dev = issuer().await;
    let validator = build(base(&dev).timeout(Duration::from_millis(300)));
    let cached = opaque(&dev);
    let fresh = opaque(&dev);
    assert_accepts(&validator, &cached).await;
    dev.shutdown();
    assert_unavailable(
        validate_within(&validator, &fresh, OUTAGE_BOUND).await,
        "issuer stopped",
    );
    // A token answered before the outage is still served from the cache.
    assert_accepts(&validator, &cached).await;
}

#[tokio::test]
async fn odd_answers_are_unavailable_without_a_word_of_them() {
    let (fake, _task) = fake_as().await;
    for path in [
        "status500",
        "status401",
        "html",
        "array",
        "duplicate",
        "redirect",
        "chunked-huge",
        "slow-body",
    ] {
        let validator = build(
            IntrospectionValidator::builder()
                .endpoint(format!("http://{fake}/{path}"))
                .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
                .timeout(Duration::from_millis(500))
                .max_response_bytes(64 * 1024),
        );
        let server = serve_guarded("https://auth.example.com", validator.clone()).await;
        let token = "some-opaque-token-abcdef0123456789";
        let started = Instant::now();
        let reply = get_with_token(&server, token).await;
        assert!(started.elapsed() < OUTAGE_BOUND, "{path}: bounded");
        assert_503(&reply, &[AS_MARK, "server_error", "invalid_client"], path);
        assert_eq!(validator.introspection_calls(), 1, "{path}");
        assert_unavailable(validate(&validator, token).await, path);
        assert_eq!(validator.introspection_calls(), 2, "{path}: never cached");
    }
}

#[tokio::test]
async fn failures_through_the_layer_are_503_with_retry_after() {
    let dev = issuer().await;
    let validator = build(
        IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
            .timeout(Duration::from_millis(300))
            .max_response_bytes(1024),
    );
    let server = serve_guarded(dev.issuer(), validator.clone()).await;
    let resource = server.url("/mcp");
    let issue = || dev.opaque_token().audience(&resource).issue();

    let good = issue();
    let reply = get_with_token(&server, &good).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    for behavior in [
        Behavior::Status(500),
        Behavior::Status(401),
        Behavior::Slow(Duration::from_secs(2)),
        Behavior::Oversize(4096),
        Behavior::InvalidJson,
    ] {
        let context = format!("{behavior:?}");
        let token = issue();
        dev.set_behavior(Endpoint::Introspection, behavior);
        let started = Instant::now();
        let reply = get_with_token(&server, &token).await;
        assert!(started.elapsed() < OUTAGE_BOUND, "{context}: bounded");
        assert_503(
            &reply,
            &[
                "injected_failure",
                "this is not JSON",
                "xxxxxxxxxx",
                "padding",
            ],
            &context,
        );
        dev.set_behavior(Endpoint::Introspection, Behavior::Normal);
        let reply = get_with_token(&server, &token).await;
        assert_eq!(reply.status, 200, "{context}: recovered at once");
    }

    // Our credentials refused (a validator with a wrong secret): 503 as well.
    let wrong = build(
        IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic("rs-client", "wrong-secret")),
    );
    let wrong_server = serve_guarded(dev.issuer(), wrong).await;
    let token = dev
        .opaque_token()
        .audience(&wrong_server.url("/mcp"))
        .issue();
    let reply = get_with_token(&wrong_server, &token).await;
    assert_503(
        &reply,
        &["invalid_client", "realm=\"introspection\""],
        "wrong secret",
    );

    // Connection refused.
    let closed = closed_port().await;
    let refused = build(
        IntrospectionValidator::builder()
            .endpoint(format!("http://{closed}/introspect"))
            .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
            .timeout(Duration::from_millis(300)),
    );
    let refused_server = serve_guarded(dev.issuer(), refused).await;
    let reply = get_with_token(&refused_server, &token).await;
    assert_503(&reply, &[], "connection refused");
}

// ---------------------------------------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_cached_answer_makes_no_call() {
    let dev = issuer().await;
    let validator = build(base(&dev));
    let token = opaque(&dev);
    assert_accepts(&validator, &token).await;
    assert_eq!(dev.introspection_requests_for(&token), 1);
    for _ in 0..5 {
        // A cache hit is decided without a future.
        let ready = validator
            .validate(&bearer(&token), &common::validators::context())
            .into_ready()
            .expect("a cache hit is ready at once");
        assert!(ready.is_ok());
    }
    assert_eq!(dev.introspection_requests_for(&token), 1);
    assert_eq!(validator.introspection_calls(), 1);
    assert_eq!(dev.requests(Endpoint::Introspection), 1);

    // Another token: its own call.
    let other = opaque(&dev);
    assert_accepts(&validator, &other).await;
    assert_eq!(validator.introspection_calls(), 2);
}

#[tokio::test]
async fn the_cache_never_outlives_exp() {
    let dev = issuer().await;
    let validator = build(base(&dev).cache(100, Duration::from_secs(60)));
    let token = dev.opaque_token().audience(AUD).expires_in(2).issue();
    let access = assert_accepts(&validator, &token).await;
    assert_accepts(&validator, &token).await;
    assert_eq!(dev.introspection_requests_for(&token), 1, "cached");

    let exp = access.expires_at().expect("exp");
    let until_exp = exp
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    assert!(until_exp <= Duration::from_secs(2));
    sleep(until_exp + Duration::from_millis(100)).await;

    // Past exp (though within the 60 s leeway): asked again, and the server now says inactive.
    assert_rejects(&validator, &token, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(&token), 2);
    // A token with a later exp on the same validator is still served from the cache.
    let long = opaque(&dev);
    assert_accepts(&validator, &long).await;
    assert_accepts(&validator, &long).await;
    assert_eq!(dev.introspection_requests_for(&long), 1);
}

#[tokio::test]
async fn revocation_shows_after_the_positive_ttl() {
    let dev = issuer().await;
    let validator = build(base(&dev).cache(100, Duration::from_secs(1)));
    let token = opaque(&dev);
    let survivor = opaque(&dev);
    start_of_a_second().await;
    assert_accepts(&validator, &token).await;
    assert_accepts(&validator, &survivor).await;
    assert!(dev.revoke(&token));
    // Still accepted: from the cache, without a call.
    assert_accepts(&validator, &token).await;
    assert_eq!(dev.introspection_requests_for(&token), 1);

    sleep(Duration::from_millis(1_100)).await;
    assert_rejects(&validator, &token, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(&token), 2);
    assert_accepts(&validator, &survivor).await;
    assert_eq!(dev.introspection_requests_for(&survivor), 2);
}

#[tokio::test]
async fn inactive_answers_are_cached_for_the_negative_ttl() {
    let dev = issuer().await;
    let validator = build(base(&dev).negative_ttl(Duration::from_secs(1)));
    let inactive = dev.opaque_token().audience(AUD).issue();
    dev.revoke(&inactive);
    let active = opaque(&dev);
    start_of_a_second().await;
    assert_rejects(&validator, &inactive, InvalidToken::Inactive).await;
    assert_rejects(&validator, &inactive, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(&inactive), 1, "cached");
    assert_accepts(&validator, &active).await;

    sleep(Duration::from_millis(1_100)).await;
    assert_rejects(&validator, &inactive, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(&inactive), 2, "asked again");
    assert_rejects(&validator, &inactive, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(&inactive), 2, "cached again");
    // The positive TTL (60 s) is untouched by the negative one.
    assert_accepts(&validator, &active).await;
    assert_eq!(dev.introspection_requests_for(&active), 1);

    // Refusals of the local checks are negative answers too.
    let other_aud = dev.opaque_token().audience(OTHER_AUD).issue();
    assert_rejects(&validator, &other_aud, InvalidToken::WrongAudience).await;
    assert_rejects(&validator, &other_aud, InvalidToken::WrongAudience).await;
    assert_eq!(dev.introspection_requests_for(&other_aud), 1);
}

#[tokio::test]
async fn a_zero_negative_ttl_caches_no_inactive_answer() {
    let dev = issuer().await;
    let validator = build(base(&dev).negative_ttl(Duration::ZERO));
    let inactive = "unknown-token-for-zero-ttl-0123";
    for _ in 0..3 {
        assert_rejects(&validator, inactive, InvalidToken::Inactive).await;
    }
    assert_eq!(dev.introspection_requests_for(inactive), 3);
    let active = opaque(&dev);
    for _ in 0..3 {
        assert_accepts(&validator, &active).await;
    }
    assert_eq!(
        dev.introspection_requests_for(&active),
        1,
        "active answers still cached"
    );
}

#[tokio::test]
async fn no_cache_calls_every_time() {
    let dev = issuer().await;
    let validator = build(base(&dev).no_cache());
    let active = opaque(&dev);
    let inactive = "unknown-token-for-no-cache-0123";
    for _ in 0..3 {
        assert_accepts(&validator, &active).await;
        assert_rejects(&validator, inactive, InvalidToken::Inactive).await;
    }
    assert_eq!(dev.introspection_requests_for(&active), 3);
    assert_eq!(dev.introspection_requests_for(inactive), 3);
    assert_eq!(validator.introspection_calls(), 6);
    // A revocation shows at once.
    dev.revoke(&active);
    assert_rejects(&validator, &active, InvalidToken::Inactive).await;
}

/// A sub-second negative TTL is what an operator picks to blunt a flood of one bad token without
/// delaying a correction much. The cache keeps whole-second deadlines (`ttl.as_secs()` = 0), so such a TTL
/// caches nothing at all, and a 1 s TTL lasts anywhere between 0 and 1 s.
#[tokio::test]
async fn a_sub_second_negative_ttl_is_honoured() {
    let dev = issuer().await;
    let validator = build(base(&dev).negative_ttl(Duration::from_millis(800)));
    let inactive = "unknown-token-for-short-ttl-0123";
    assert_rejects(&validator, inactive, InvalidToken::Inactive).await;
    assert_rejects(&validator, inactive, InvalidToken::Inactive).await;
    assert_eq!(
        dev.introspection_requests_for(inactive),
        1,
        "an inactive answer is reused for the negative TTL (800 ms)"
    );
    sleep(Duration::from_millis(900)).await;
    assert_rejects(&validator, inactive, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(inactive), 2);
}

/// Same root cause for the positive cache: `.cache(n, 800 ms)` caches no active answer.
#[tokio::test]
async fn a_sub_second_positive_ttl_is_honoured() {
    let dev = issuer().await;
    let validator = build(base(&dev).cache(100, Duration::from_millis(800)));
    let token = opaque(&dev);
    assert_accepts(&validator, &token).await;
    assert_accepts(&validator, &token).await;
    assert_eq!(
        dev.introspection_requests_for(&token),
        1,
        "an active answer is reused for the TTL (800 ms)"
    );
    dev.revoke(&token);
    sleep(Duration::from_millis(900)).await;
    assert_rejects(&validator, &token, InvalidToken::Inactive).await;
}

// ---------------------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------------------

async fn concurrent_validations(validator: &IntrospectionValidator, token: &str, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let validator = validator.clone();
            let token = token.to_owned();
            tokio::spawn(async move {
                validator
                    .validate(&bearer(&token), &common::validators::context())
                    .await
            })
        })
        .collect();
    for task in tasks {
        let result = timeout(WAIT, task)
            .await
            .expect("validation in time")
            .expect("task");
        match result {
            Ok(access) => assert_eq!(access.subject(), Some("test-user")),
            Err(error) => panic!("expected acceptance, got {error:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_validations_of_one_token_share_one_call_without_cache() {
    let dev = issuer().await;
    dev.set_behavior(
        Endpoint::Introspection,
        Behavior::Slow(Duration::from_millis(200)),
    );
    let validator = build(base(&dev).no_cache());
    let token = opaque(&dev);
    concurrent_validations(&validator, &token, 200).await;
    assert_eq!(dev.introspection_requests_for(&token), 1);
    assert_eq!(validator.introspection_calls(), 1);
    // Only in-flight calls are shared: the next validation asks again.
    assert_accepts(&validator, &token).await;
    assert_eq!(dev.introspection_requests_for(&token), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_validations_of_one_token_share_one_call_with_a_cold_cache() {
    let dev = issuer().await;
    dev.set_behavior(
        Endpoint::Introspection,
        Behavior::Slow(Duration::from_millis(200)),
    );
    let validator = build(base(&dev));
    let token = opaque(&dev);
    let other = opaque(&dev);
    let (_, _) = tokio::join!(
        concurrent_validations(&validator, &token, 200),
        concurrent_validations(&validator, &other, 50),
    );
    assert_eq!(dev.introspection_requests_for(&token), 1);
    assert_eq!(dev.introspection_requests_for(&other), 1);
    assert_eq!(validator.introspection_calls(), 2);
    assert_accepts(&validator, &token).await;
    assert_eq!(dev.introspection_requests_for(&token), 1, "then cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_does_not_strand_the_others() {
    let dev = issuer().await;
    dev.set_behavior(
        Endpoint::Introspection,
        Behavior::Slow(Duration::from_millis(300)),
    );
    let validator = build(base(&dev).no_cache());
    let token = opaque(&dev);
    let spawn = || {
        let validator = validator.clone();
        let token = token.clone();
        tokio::spawn(async move {
            validator
                .validate(&bearer(&token), &common::validators::context())
                .await
        })
    };
    let first = spawn(); // makes the call
    sleep(Duration::from_millis(50)).await;
    let second = spawn(); // waits for it
    sleep(Duration::from_millis(50)).await;
    first.abort(); // e.g. its client went away
    let result = timeout(WAIT, second)
        .await
        .expect("the waiting caller finishes")
        .expect("task");
    assert_eq!(result.expect("accepted").subject(), Some("test-user"));
    assert!(dev.introspection_requests_for(&token) <= 2);
    assert_accepts(&validator, &token).await;
}

#[tokio::test]
async fn tokens_are_form_encoded_in_the_request() {
    let dev = issuer().await;
    let validator = build(base(&dev));
    // `+` would be read as a space, `/` and `=` must survive too.
    let token = "abc+def/ghi~jkl.mno_pqr-stu==";
    dev.set_introspection_response(token, json!({"active": true, "aud": AUD, "sub": "special"}));
    let access = assert_accepts(&validator, token).await;
    assert_eq!(access.subject(), Some("special"));
    assert_eq!(dev.introspection_requests_for(token), 1);
    // Its neighbour with a plain `-` is another token.
    assert_rejects(
        &validator,
        "abc-def/ghi~jkl.mno_pqr-stu==",
        InvalidToken::Inactive,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Client authentication
// ---------------------------------------------------------------------------------------------------------

const ODD_ID: &str = "client:id é";
const ODD_SECRET: &str = "sec:ret ü+";
const RS_BEARER: &str = "rs-bearer-Credential-7Hq2";

async fn odd_issuer() -> DevIssuer {
    start(
        DevIssuer::builder()
            .keys(&[KeyAlg::Es256])
            .introspection_client(ODD_ID, ODD_SECRET)
            .introspection_bearer(RS_BEARER),
    )
    .await
}

fn with_auth(dev: &DevIssuer, auth: ClientAuth) -> IntrospectionValidator {
    build(
        IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .issuer(dev.issuer())
            .client_auth(auth)
            .audience(AUD),
    )
}

#[tokio::test]
async fn client_secret_basic_form_encodes_before_base64() {
    let dev = odd_issuer().await;
    let token = opaque(&dev);
    assert_accepts(
        &with_auth(&dev, ClientAuth::basic(ODD_ID, ODD_SECRET)),
        &token,
    )
    .await;
    for (id, secret) in [
        (ODD_ID, "sec:ret ü"),
        (ODD_ID, "sec%3Aret+%C3%BC%2B"),
        ("client", "id é:sec:ret ü+"),
        ("rs-client", "rs-secret"),
    ] {
        let result = validate(&with_auth(&dev, ClientAuth::basic(id, secret)), &token).await;
        assert_unavailable(result, &format!("basic {id:?} / {secret:?}"));
    }
}

#[tokio::test]
async fn client_secret_post_and_bearer_credentials() {
    let dev = odd_issuer().await;
    let token = opaque(&dev);
    assert_accepts(
        &with_auth(&dev, ClientAuth::post(ODD_ID, ODD_SECRET)),
        &token,
    )
    .await;
    assert_unavailable(
        validate(
            &with_auth(&dev, ClientAuth::post(ODD_ID, "sec:ret ü")),
            &token,
        )
        .await,
        "post, wrong secret",
    );
    assert_accepts(&with_auth(&dev, ClientAuth::bearer(RS_BEARER)), &token).await;
    assert_unavailable(
        validate(
            &with_auth(&dev, ClientAuth::bearer("rs-bearer-other")),
            &token,
        )
        .await,
        "bearer, wrong token",
    );
    // Four validators, four calls: a refusal of our credentials is not an answer about the token.
    assert_eq!(dev.introspection_requests_for(&token), 4);
}

#[tokio::test]
async fn wrong_client_secret_through_the_layer_is_503() {
    let dev = odd_issuer().await;
    let wrong = build(
        IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic(ODD_ID, "not-the-secret")),
    );
    let right = build(
        IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic(ODD_ID, ODD_SECRET)),
    );
    let wrong_server = serve_guarded(dev.issuer(), wrong).await;
    let right_server = serve_guarded(dev.issuer(), right).await;
    let token = dev
        .opaque_token()
        .audiences(&[&wrong_server.url("/mcp"), &right_server.url("/mcp")])
        .issue();
    let reply = get_with_token(&wrong_server, &token).await;
    assert_503(
        &reply,
        &["invalid_client", "realm=\"introspection\""],
        "wrong secret",
    );
    let reply = get_with_token(&right_server, &token).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

// ---------------------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_endpoint_is_discovered_from_the_issuer_metadata() {
    let dev = issuer().await;
    let validator = build(
        IntrospectionValidator::builder()
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
            .audience(AUD),
    );
    assert_eq!(
        dev.requests(Endpoint::OAuthMetadata),
        0,
        "build does no I/O"
    );
    let token = opaque(&dev);
    assert_accepts(&validator, &token).await;
    assert_eq!(dev.requests(Endpoint::OAuthMetadata), 1, "RFC 8414 first");
    assert_eq!(dev.introspection_requests_for(&token), 1);
    assert!(format!("{validator:?}").contains(&dev.introspection_endpoint()));
    // Discovered once.
    assert_accepts(&validator, &opaque(&dev)).await;
    assert_rejects(
        &validator,
        "unknown-token-discovered-0123",
        InvalidToken::Inactive,
    )
    .await;
    assert_eq!(
        dev.requests(Endpoint::OAuthMetadata) + dev.requests(Endpoint::OpenIdMetadata),
        1
    );
}

#[tokio::test]
async fn the_openid_metadata_is_a_fallback_and_an_issuer_path_works() {
    let dev = start(
        DevIssuer::builder()
            .keys(&[KeyAlg::Es256])
            .issuer_path("/realms/demo")
            .serve_oauth_metadata(false),
    )
    .await;
    let validator = build(
        IntrospectionValidator::builder()
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
            .audience(AUD),
    );
    let token = opaque(&dev);
    assert_accepts(&validator, &token).await;
    assert!(dev.requests(Endpoint::OpenIdMetadata) >= 1);
}

#[tokio::test]
async fn metadata_of_another_issuer_is_refused_and_nothing_is_introspected() {
    let dev = issuer().await;
    dev.set_behavior(Endpoint::OAuthMetadata, Behavior::WrongIssuer);
    dev.set_behavior(Endpoint::OpenIdMetadata, Behavior::WrongIssuer);
    let validator = build(
        IntrospectionValidator::builder()
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
            .audience(AUD)
            .timeout(Duration::from_millis(500)),
    );
    let token = opaque(&dev);
    assert_unavailable_because(
        validate_within(&validator, &token, OUTAGE_BOUND).await,
        Unavailable::Discovery,
        "metadata names another issuer",
    );
    assert!(dev.requests(Endpoint::OAuthMetadata) >= 1);
    assert!(dev.requests(Endpoint::OpenIdMetadata) >= 1);
    assert_eq!(dev.requests(Endpoint::Introspection), 0);
    assert_eq!(validator.introspection_calls(), 0);

    // An unreachable metadata document: the same.
    dev.set_behavior(Endpoint::OAuthMetadata, Behavior::Status(500));
    dev.set_behavior(Endpoint::OpenIdMetadata, Behavior::Status(500));
    assert_unavailable_because(
        validate_within(&validator, &token, OUTAGE_BOUND).await,
        Unavailable::Discovery,
        "metadata unavailable",
    );
    assert_eq!(dev.requests(Endpoint::Introspection), 0);

    // The failure is remembered for the backoff only: within it, a burst of requests asks for no metadata
    // at all; after it, once the metadata is right, discovery and introspection work.
    dev.set_behavior(Endpoint::OAuthMetadata, Behavior::Normal);
    dev.set_behavior(Endpoint::OpenIdMetadata, Behavior::Normal);
    let metadata_before =
        dev.requests(Endpoint::OAuthMetadata) + dev.requests(Endpoint::OpenIdMetadata);
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let (validator, token) = (validator.clone(), token.clone());
            tokio::spawn(async move { validate_within(&validator, &token, OUTAGE_BOUND).await })
        })
        .collect();
    for outcome in burst {
        assert_unavailable_because(
            outcome.await.unwrap(),
            Unavailable::Discovery,
            "within the backoff",
        );
    }
    assert_eq!(
        dev.requests(Endpoint::OAuthMetadata) + dev.requests(Endpoint::OpenIdMetadata),
        metadata_before,
        "no discovery request within the backoff"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_accepts(&validator, &token).await;
    assert_eq!(dev.introspection_requests_for(&token), 1);

    // Only the RFC 8414 document names another issuer: the OpenID one is tried next, and used.
    dev.set_behavior(Endpoint::OAuthMetadata, Behavior::WrongIssuer);
    let fresh = build(
        IntrospectionValidator::builder()
            .issuer(dev.issuer())
            .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
            .audience(AUD),
    );
    let openid_before = dev.requests(Endpoint::OpenIdMetadata);
    assert_accepts(&fresh, &opaque(&dev)).await;
    assert!(dev.requests(Endpoint::OpenIdMetadata) > openid_before);
}

// ---------------------------------------------------------------------------------------------------------
// Debug redaction
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn debug_output_never_shows_secrets_or_tokens() {
    let dev = issuer().await;
    let secrets = [
        "Basic-S3cret-value-Zk1",
        "Post-S3cret-value-Zk2",
        "Bearer-S3cret-value-Zk3",
    ];
    let auths = [
        ClientAuth::basic("rs-client", secrets[0]),
        ClientAuth::post("rs-client", secrets[1]),
        ClientAuth::bearer(secrets[2]),
    ];
    let encoded = [
        STANDARD.encode(format!("rs-client:{}", secrets[0])),
        STANDARD.encode(secrets[0]),
    ];
    let token = opaque(&dev);
    let check = |text: &str, what: &str| {
        for secret in secrets.iter().map(|s| s.to_string()).chain(encoded.clone()) {
            assert!(!text.contains(&secret), "{what} shows a secret: {text}");
            // Nor a recognizable part of one.
            assert!(
                !text.contains(&secret[..10]),
                "{what} shows a secret: {text}"
            );
        }
        assert!(!text.contains(&token), "{what} shows the token: {text}");
        assert!(
            !text.contains(&token[..12]),
            "{what} shows the token: {text}"
        );
    };
    for auth in auths {
        check(&format!("{auth:?}"), "ClientAuth");
        check(&format!("{:?}", auth.clone()), "ClientAuth clone");
        let builder = IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .issuer(dev.issuer())
            .client_auth(auth)
            .audience(AUD);
        check(&format!("{builder:?}"), "builder");
        check(&format!("{builder:#?}"), "builder (pretty)");
        let validator = build(builder);
        // With a cached answer for the token, too.
        let _ = validate(&validator, &token).await;
        check(&format!("{validator:?}"), "validator");
        check(&format!("{validator:#?}"), "validator (pretty)");
    }
    // The pair: the validator that can authenticate accepts it (the secrets above are not the real one).
    let validator = build(base(&dev));
    assert_accepts(&validator, &token).await;
    check(&format!("{validator:?}"), "validator");
}
