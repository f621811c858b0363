#![cfg(all(feature = "testkit", feature = "introspection", feature = "jwt"))]
//! `FirstMatch` composition: JWTs of the configured issuer(s) are verified locally, every other token is
//! introspected, static tokens are decided first — each token by the one validator responsible for it.
//!
//! What this file establishes:
//! - a JWT of the configured issuer never reaches introspection, good or bad (expired, bad signature, wrong
//!   audience, …: the JWT error, never `Inactive`); the introspection counters stay at zero;
//! - an opaque token (or anything that is not a JWT of a configured issuer) never reaches the JWT parser,
//!   so it never gets a JWT error (`Malformed`…): accepted when active, `Inactive` otherwise;
//! - `MultiIssuer` + introspection, `StaticValidator` first, and a chain nobody is responsible for
//!   (`invalid_token`);
//! - end to end through `BearerAuthLayer` over HTTP (axum on 127.0.0.1): JWT and opaque 200, a revoked
//!   opaque token 401 after the cache TTL, an introspection outage 503 while JWTs still get 200.
//!
//! Every wait is bounded; nothing asserts how fast anything is.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bearer_guard::testkit::probe::Served;
use bearer_guard::testkit::{Behavior, DevIssuer, Endpoint, KeyAlg};
use bearer_guard::validate::IntrospectionValidatorBuilder;
use bearer_guard::{
    ClientAuth, FirstMatch, IntrospectionValidator, InvalidToken, JwtValidator, MultiIssuer,
    StaticToken, StaticValidator, TokenValidator, Unavailable, ValidationError,
};
use common::validators::{assert_accepts, assert_rejects, bearer, context, sign, validate};
use common::Reply;
use serde_json::json;
use tokio::time::{sleep, timeout};

/// Bound of every network wait and validation.
const WAIT: Duration = Duration::from_secs(5);
const AUD: &str = "https://mcp.example.com/mcp";
const STATIC_TOKEN: &str = "ci-static-token-0123456789abcdef";

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

async fn issuer() -> DevIssuer {
    timeout(WAIT, DevIssuer::builder().keys(&[KeyAlg::Es256]).start())
        .await
        .expect("the development issuer starts in time")
        .expect("the development issuer starts")
}

/// A JWT validator for `dev` (discovery), keys loaded; `audience` `None` = the layer's resource.
async fn jwt_validator(dev: &DevIssuer, audience: Option<&str>) -> JwtValidator {
    let mut builder = JwtValidator::builder(dev.issuer());
    if let Some(audience) = audience {
        builder = builder.audience(audience);
    }
    let validator = builder.build().expect("JWT validator builds");
    timeout(WAIT, validator.ready())
        .await
        .expect("keys load in time")
        .expect("keys load");
    validator
}

fn introspection(dev: &DevIssuer) -> IntrospectionValidatorBuilder {
    IntrospectionValidator::builder()
        .endpoint(dev.introspection_endpoint())
        .issuer(dev.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
}

fn introspection_validator(dev: &DevIssuer) -> IntrospectionValidator {
    introspection(dev)
        .audience(AUD)
        .build()
        .expect("introspection validator builds")
}

fn static_validator() -> StaticValidator {
    StaticValidator::builder()
        .token(STATIC_TOKEN, StaticToken::new("ci-bot").scopes(["deploy"]))
        .build()
        .expect("static validator builds")
}

fn jwt(dev: &DevIssuer) -> String {
    sign(dev.token().audience(AUD))
}

fn opaque(dev: &DevIssuer) -> String {
    dev.opaque_token().audience(AUD).issue()
}

/// Sleeps until just after the next whole second (the caches keep whole-second deadlines; a 1 s TTL
/// test that starts there gets (almost) its full second).
async fn start_of_a_second() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let rest = Duration::from_nanos(1_000_000_000 - u64::from(nanos));
    sleep(rest + Duration::from_millis(20)).await;
}

// ----- a guarded HTTP server (axum) and a client -----

/// The guarded `whoami` server of `tests/common` around `validator`.
async fn serve_guarded(authorization_server: &str, validator: impl TokenValidator) -> Served {
    common::serve_whoami(authorization_server, validator).await
}

async fn get_with_token(server: &Served, token: &str) -> Reply {
    common::get_with_token(server.addr, token).await
}

fn says_invalid_token(reply: &Reply) -> bool {
    reply
        .header("www-authenticate")
        .is_some_and(|c| c.contains("error=\"invalid_token\""))
}

fn assert_200(reply: &Reply, subject: &str, context: &str) {
    assert_eq!(reply.status, 200, "{context}: {}", reply.text());
    assert_eq!(reply.body, format!("sub={subject}"), "{context}");
}

fn assert_401_invalid_token(reply: &Reply, context: &str) {
    assert_eq!(reply.status, 401, "{context}: {}", reply.text());
    assert!(
        says_invalid_token(reply),
        "{context}: {:?}",
        reply.header("www-authenticate")
    );
}

fn assert_503(reply: &Reply, context: &str) {
    assert_eq!(reply.status, 503, "{context}: {}", reply.text());
    assert!(reply.header("retry-after").is_some(), "{context}");
    assert!(!says_invalid_token(reply), "{context}");
    assert!(!reply.text().contains("invalid_token"), "{context}");
}

// ---------------------------------------------------------------------------------------------------------
// JWT first, then introspection
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn jwts_of_the_configured_issuer_are_verified_locally_and_never_introspected() {
    let dev = issuer().await;
    let introspect = introspection_validator(&dev);
    let chain = FirstMatch::new()
        .then(jwt_validator(&dev, Some(AUD)).await)
        .then(introspect.clone());

    let good = jwt(&dev);
    assert!(chain.is_responsible_for(&bearer(&good), &context()));
    let access = assert_accepts(&chain, &good).await;
    assert_eq!(access.subject(), Some("test-user"));
    assert_eq!(access.issuer(), Some(dev.issuer()));

    // Bad JWTs of the issuer get the JWT validator's verdict — the issuer's introspection endpoint would
    // have said `{"active":false}` (Inactive) for each of them.
    let cases = [
        (
            sign(dev.token().audience(AUD).expires_in(-600)),
            InvalidToken::Expired,
        ),
        (
            dev.token()
                .audience(AUD)
                .sign_with_tampered_payload()
                .expect("tampered"),
            InvalidToken::BadSignature,
        ),
        (
            sign(dev.token().audience("https://other.example.com/api")),
            InvalidToken::WrongAudience,
        ),
        (
            sign(dev.token().audience(AUD).not_before(600)),
            InvalidToken::NotYetValid,
        ),
        (
            sign(dev.token().audience(AUD).typ(Some("JWT"))),
            InvalidToken::WrongType,
        ),
        (
            dev.token().audience(AUD).unsigned().expect("unsigned"),
            InvalidToken::DisallowedAlgorithm,
        ),
    ];
    for (token, expected) in &cases {
        assert_rejects(&chain, token, *expected).await;
        assert_eq!(dev.introspection_requests_for(token), 0, "{expected:?}");
    }
    // A revoked JWT is still a JWT: verified locally (revocation of JWTs is not visible without
    // introspection, which is the point of verifying them locally).
    let revoked = jwt(&dev);
    assert!(dev.revoke(&revoked));
    assert_accepts(&chain, &revoked).await;

    assert_eq!(dev.requests(Endpoint::Introspection), 0);
    assert_eq!(introspect.introspection_calls(), 0);

    // The pair: the same chain introspects an opaque token.
    assert_accepts(&chain, &opaque(&dev)).await;
    assert_eq!(introspect.introspection_calls(), 1);
}

#[tokio::test]
async fn opaque_tokens_go_to_introspection_and_never_get_a_jwt_error() {
    let dev = issuer().await;
    let jwt_only = jwt_validator(&dev, Some(AUD)).await;
    let introspect = introspection_validator(&dev);
    let chain = FirstMatch::new()
        .then(jwt_only.clone())
        .then(introspect.clone());

    let active = dev
        .opaque_token()
        .subject("opaque-user")
        .audience(AUD)
        .issue();
    assert!(!jwt_only.is_responsible_for(&bearer(&active), &context()));
    assert_eq!(
        assert_accepts(&chain, &active).await.subject(),
        Some("opaque-user")
    );
    assert_eq!(dev.introspection_requests_for(&active), 1);

    let revoked = opaque(&dev);
    assert!(dev.revoke(&revoked));
    assert_rejects(&chain, &revoked, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(&revoked), 1);

    // Things the JWT validator alone would call Malformed (or WrongIssuer): here they are introspected.
    for token in [
        "not-a-jwt-at-all-0123456789".to_owned(),
        "a.b.c".to_owned(),
        "one.two".to_owned(),
        "x.y.z.w.v".to_owned(),
        // Header and payload that are not JSON.
        "bm90IGpzb24.bm90IGpzb24.c2ln".to_owned(),
    ] {
        assert!(
            validate(&jwt_only, &token).await.is_err(),
            "{token}: the JWT validator alone refuses it"
        );
        assert_rejects(&chain, &token, InvalidToken::Inactive).await;
        assert_eq!(dev.introspection_requests_for(&token), 1, "{token}");
    }

    // A JWT without `iss` is nobody's JWT: the JWT validator alone says WrongIssuer, and the chain refuses
    // it without asking the authorization server (JWTs are not introspected by default).
    let no_iss = sign(
        dev.token()
            .subject("no-iss")
            .audience(AUD)
            .remove_claim("iss"),
    );
    assert_rejects(&jwt_only, &no_iss, InvalidToken::WrongIssuer).await;
    assert_rejects(&chain, &no_iss, InvalidToken::NotApplicable).await;
    assert_eq!(dev.introspection_requests_for(&no_iss), 0);
    // With the opt-in, the server vouches for it (it signed it).
    let opted_in = FirstMatch::new().then(jwt_only.clone()).then(
        introspection(&dev)
            .audience(AUD)
            .introspect_jwts(true)
            .build()
            .unwrap(),
    );
    assert_eq!(
        assert_accepts(&opted_in, &no_iss).await.subject(),
        Some("no-iss")
    );
    assert_eq!(dev.introspection_requests_for(&no_iss), 1);
}

/// By default a JWT of an issuer no JWT validator trusts is refused locally: no introspection call, so a
/// flood of foreign (or forged) JWTs costs the authorization server nothing.
#[tokio::test]
async fn jwts_of_untrusted_issuers_are_refused_without_a_call() {
    let dev = issuer().await;
    let stranger = issuer().await;
    let introspect = introspection_validator(&dev);
    let chain = FirstMatch::new()
        .then(jwt_validator(&dev, Some(AUD)).await)
        .then(introspect.clone());

    let foreign = jwt(&stranger);
    let claims_other = sign(
        dev.token()
            .audience(AUD)
            .claim("iss", json!("https://elsewhere.example.com")),
    );
    for token in [&foreign, &claims_other] {
        for _ in 0..5 {
            assert_rejects(&chain, token, InvalidToken::NotApplicable).await;
        }
    }
    // Opaque tokens still go to introspection, and our own JWTs are verified locally.
    assert_accepts(&chain, &opaque(&dev)).await;
    assert_accepts(&chain, &jwt(&dev)).await;
    assert_eq!(introspect.introspection_calls(), 1);
    assert_eq!(dev.requests(Endpoint::Introspection), 1);
}

/// The opt-in: JWTs the JWT validators do not claim are introspected, and what the server says decides.
#[tokio::test]
async fn jwts_of_other_issuers_go_to_introspection_when_opted_in() {
    let dev = issuer().await;
    let stranger = issuer().await;
    let introspect = introspection(&dev)
        .audience(AUD)
        .introspect_jwts(true)
        .build()
        .unwrap();
    let chain = FirstMatch::new()
        .then(jwt_validator(&dev, Some(AUD)).await)
        .then(introspect.clone());

    // Signed by another issuer: not ours to verify locally; the introspection endpoint does not know it.
    let foreign = jwt(&stranger);
    assert_rejects(&chain, &foreign, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(&foreign), 1);

    // Signed with our key but claiming another issuer: routed by `iss` to introspection, where the
    // server vouches for it with that `iss` — which the introspection validator refuses.
    let claims_other = sign(
        dev.token()
            .audience(AUD)
            .claim("iss", json!("https://elsewhere.example.com")),
    );
    assert_rejects(&chain, &claims_other, InvalidToken::WrongIssuer).await;
    assert_eq!(dev.introspection_requests_for(&claims_other), 1);

    // The pair: our own JWT, locally.
    assert_accepts(&chain, &jwt(&dev)).await;
    assert_eq!(introspect.introspection_calls(), 2);
}

#[tokio::test]
async fn multi_issuer_then_introspection() {
    let a = issuer().await;
    let b = issuer().await;
    let c = issuer().await;
    let introspect = introspection_validator(&a);
    let multi = MultiIssuer::new()
        .issuer(jwt_validator(&a, Some(AUD)).await)
        .issuer(jwt_validator(&b, Some(AUD)).await);
    let chain = FirstMatch::new().then(multi).then(introspect.clone());

    assert_eq!(
        assert_accepts(&chain, &jwt(&a)).await.issuer(),
        Some(a.issuer())
    );
    assert_eq!(
        assert_accepts(&chain, &jwt(&b)).await.issuer(),
        Some(b.issuer())
    );
    assert_rejects(
        &chain,
        &sign(b.token().audience(AUD).expires_in(-600)),
        InvalidToken::Expired,
    )
    .await;
    // Claims issuer B, signed by A: B's validator checks it with B's keys.
    let confused = sign(a.token().audience(AUD).claim("iss", json!(b.issuer())));
    match validate(&chain, &confused).await {
        Err(ValidationError::InvalidToken {
            reason: InvalidToken::BadSignature | InvalidToken::UnknownKey,
            ..
        }) => {}
        other => panic!("expected a signature/key error, got {other:?}"),
    }
    assert_eq!(a.requests(Endpoint::Introspection), 0);
    assert_eq!(introspect.introspection_calls(), 0);

    // Opaque tokens of A: introspection at A; JWTs of C (no validator trusts C): refused locally.
    assert_accepts(&chain, &opaque(&a)).await;
    let from_c = jwt(&c);
    assert_rejects(&chain, &from_c, InvalidToken::NotApplicable).await;
    assert_eq!(a.introspection_requests_for(&from_c), 0);
    assert_eq!(introspect.introspection_calls(), 1);
    assert_eq!(b.requests(Endpoint::Introspection), 0);
    assert_eq!(c.requests(Endpoint::Introspection), 0);
}

#[tokio::test]
async fn static_tokens_first_never_reach_the_others() {
    let dev = issuer().await;
    let introspect = introspection_validator(&dev);
    // The authorization server would vouch for the static token as someone else.
    dev.set_introspection_response(
        STATIC_TOKEN,
        json!({"active": true, "aud": AUD, "sub": "impostor"}),
    );
    let chain = FirstMatch::new()
        .then(static_validator())
        .then(jwt_validator(&dev, Some(AUD)).await)
        .then(introspect.clone());

    let decided = chain
        .validate(&bearer(STATIC_TOKEN), &context())
        .into_ready()
        .expect("a static token is decided at once");
    assert_eq!(decided.expect("accepted").subject(), Some("ci-bot"));
    assert_eq!(dev.introspection_requests_for(STATIC_TOKEN), 0);
    assert_eq!(introspect.introspection_calls(), 0);

    // Other tokens go on down the chain.
    assert_accepts(&chain, &jwt(&dev)).await;
    assert_eq!(introspect.introspection_calls(), 0);
    assert_accepts(&chain, &opaque(&dev)).await;
    assert_eq!(introspect.introspection_calls(), 1);
    // The token the static validator does not hold, close to its own: introspected.
    let near = "ci-static-token-0123456789abcdeF";
    assert_rejects(&chain, near, InvalidToken::Inactive).await;
    assert_eq!(dev.introspection_requests_for(near), 1);
}

#[tokio::test]
async fn nobody_responsible_is_invalid_token() {
    let dev = issuer().await;
    let jwt_only = FirstMatch::new().then(jwt_validator(&dev, Some(AUD)).await);
    let token = opaque(&dev);
    assert!(!jwt_only.is_responsible_for(&bearer(&token), &context()));
    assert_rejects(&jwt_only, &token, InvalidToken::NotApplicable).await;
    let foreign = jwt(&issuer().await);
    assert_rejects(&jwt_only, &foreign, InvalidToken::NotApplicable).await;
    assert_accepts(&jwt_only, &jwt(&dev)).await;
    assert_eq!(dev.requests(Endpoint::Introspection), 0);

    let empty = FirstMatch::new();
    assert!(!empty.is_responsible_for(&bearer(&token), &context()));
    assert_rejects(&empty, &token, InvalidToken::NotApplicable).await;

    // Through the layer: 401 invalid_token; the pair: a JWT of the issuer, 200.
    let server = serve_guarded(
        dev.issuer(),
        FirstMatch::new().then(jwt_validator(&dev, None).await),
    )
    .await;
    let reply = get_with_token(&server, &token).await;
    assert_401_invalid_token(&reply, "opaque token, no introspection");
    let good = sign(dev.token().audience(&server.url("/mcp")));
    assert_200(&get_with_token(&server, &good).await, "test-user", "JWT");
    assert_eq!(dev.requests(Endpoint::Introspection), 0);
}

// ---------------------------------------------------------------------------------------------------------
// End to end through the layer
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn end_to_end_through_the_layer() {
    let dev = issuer().await;
    // No audience configured anywhere: both validators expect the layer's resource (FirstMatch binds it).
    let jwts = jwt_validator(&dev, None).await;
    let introspect = introspection(&dev)
        .cache(100, Duration::from_secs(1))
        .timeout(Duration::from_millis(500))
        .build()
        .expect("introspection validator builds");
    let server = serve_guarded(
        dev.issuer(),
        FirstMatch::new().then(jwts).then(introspect.clone()),
    )
    .await;
    let resource = server.url("/mcp");

    let jwt_token = sign(dev.token().subject("jwt-user").audience(&resource));
    let opaque_token = dev
        .opaque_token()
        .subject("opaque-user")
        .audience(&resource)
        .issue();
    let later = dev
        .opaque_token()
        .subject("later-user")
        .audience(&resource)
        .issue();

    start_of_a_second().await;
    assert_200(
        &get_with_token(&server, &jwt_token).await,
        "jwt-user",
        "JWT",
    );
    assert_200(
        &get_with_token(&server, &opaque_token).await,
        "opaque-user",
        "opaque",
    );
    assert_eq!(introspect.introspection_calls(), 1, "only the opaque token");

    // Wrong audience, each kind: 401.
    let jwt_elsewhere = sign(dev.token().audience(AUD));
    assert_401_invalid_token(
        &get_with_token(&server, &jwt_elsewhere).await,
        "JWT for another resource",
    );
    let opaque_elsewhere = opaque(&dev);
    assert_401_invalid_token(
        &get_with_token(&server, &opaque_elsewhere).await,
        "opaque token for another resource",
    );

    // Revoked: still served from the cache, then refused once the 1 s TTL has passed.
    assert!(dev.revoke(&opaque_token));
    assert_200(
        &get_with_token(&server, &opaque_token).await,
        "opaque-user",
        "revoked, still cached",
    );
    sleep(Duration::from_millis(1_100)).await;
    assert_401_invalid_token(
        &get_with_token(&server, &opaque_token).await,
        "revoked, after the cache TTL",
    );

    // The introspection endpoint fails: opaque tokens 503, JWTs still 200.
    dev.set_behavior(Endpoint::Introspection, Behavior::Status(500));
    assert_503(&get_with_token(&server, &later).await, "introspection 500");
    assert_200(
        &get_with_token(&server, &jwt_token).await,
        "jwt-user",
        "JWT during the outage",
    );
    dev.set_behavior(Endpoint::Introspection, Behavior::Normal);
    assert_200(
        &get_with_token(&server, &later).await,
        "later-user",
        "recovered",
    );

    // The whole authorization server stops: a fresh JWT is still verified with the loaded keys.
    let fresh_opaque = dev
        .opaque_token()
        .subject("fresh-user")
        .audience(&resource)
        .issue();
    dev.shutdown();
    assert_503(
        &get_with_token(&server, &fresh_opaque).await,
        "authorization server down",
    );
    let fresh_jwt = sign(dev.token().subject("fresh-jwt").audience(&resource));
    assert_200(
        &get_with_token(&server, &fresh_jwt).await,
        "fresh-jwt",
        "JWT with the AS down",
    );
    // No JWT was ever introspected.
    for token in [&jwt_token, &fresh_jwt, &jwt_elsewhere] {
        assert_eq!(dev.introspection_requests_for(token), 0);
    }
}

#[tokio::test]
async fn unavailable_introspection_does_not_fall_through_to_another_validator() {
    let dev = issuer().await;
    let introspect = introspection_validator(&dev);
    // A catch-all after introspection must never get the token when introspection is merely unavailable.
    let chain = FirstMatch::new()
        .then(jwt_validator(&dev, Some(AUD)).await)
        .then(introspect)
        .then(
            StaticValidator::builder()
                .token("unused-catch-all-token-0123", StaticToken::new("x"))
                .build()
                .expect("static"),
        );
    let token = opaque(&dev);
    dev.set_behavior(Endpoint::Introspection, Behavior::Status(503));
    match validate(&chain, &token).await {
        Err(ValidationError::Unavailable {
            reason: Unavailable::Introspection,
            ..
        }) => {}
        other => panic!("expected Unavailable::Introspection, got {other:?}"),
    }
    dev.set_behavior(Endpoint::Introspection, Behavior::Normal);
    assert_accepts(&chain, &token).await;
}
