//! What an unauthenticated caller can make the guard spend: no call to the authorization server for a
//! JWT nobody trusts, one negative-cached call for a token the server definitely refuses, a bounded number
//! of concurrent introspection calls for a flood of distinct tokens (503 with `Retry-After` beyond), and
//! no lasting refusal of a real key by a junk token that named its `kid` first.
#![cfg(feature = "testkit")]

use std::sync::Arc;
use std::time::Duration;

use crate::common::validators::{
    assert_accepts, assert_rejects, context, sign, start_es256_with_introspection, validate,
    LAYER_RESOURCE,
};
use bearer_guard::testkit::{Behavior, DevIssuer, Endpoint, KeyAlg};
use bearer_guard::{
    BearerToken, ClientAuth, FirstMatch, IntrospectionValidator, InvalidToken, JwtValidator,
    TokenValidator, Unavailable, ValidationError,
};
use tokio::time::sleep;

async fn issuer() -> DevIssuer {
    start_es256_with_introspection().await
}

fn introspection(dev: &DevIssuer) -> bearer_guard::validate::IntrospectionValidatorBuilder {
    IntrospectionValidator::builder()
        .endpoint(dev.introspection_endpoint())
        .issuer(dev.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
}

/// Behind a JWT validator, JWTs of other issuers and JWT-shaped junk cost the authorization server
/// nothing: refused locally, however many.
#[tokio::test]
async fn foreign_and_junk_jwts_make_no_introspection_call() {
    let dev = issuer().await;
    let stranger = issuer().await;
    let introspect = introspection(&dev).build().unwrap();
    let chain = FirstMatch::new()
        .then(JwtValidator::builder(dev.issuer()).build().unwrap())
        .then(introspect.clone());
    let foreign = sign(stranger.token().audience(LAYER_RESOURCE));
    let junk_header = "eyJhbGciOiJSUzI1NiJ9"; // {"alg":"RS256"}
    for i in 0..50 {
        let junk = format!("{junk_header}.eyJpc3MiOiJodHRwczovL2V2aWwifQ.sig{i}");
        assert_rejects(&chain, &foreign, InvalidToken::NotApplicable).await;
        assert_rejects(&chain, &junk, InvalidToken::NotApplicable).await;
    }
    assert_eq!(introspect.introspection_calls(), 0);
    assert_eq!(dev.requests(Endpoint::Introspection), 0);
    // The pair: an opaque token is introspected.
    assert_accepts(&chain, &dev.opaque_token().audience(LAYER_RESOURCE).issue()).await;
    assert_eq!(dev.requests(Endpoint::Introspection), 1);
}

/// A definite OAuth error from the introspection endpoint is a refusal of the token (401), cached like an
/// inactive answer; refusals of our own credentials and server failures are 503 and never cached.
#[tokio::test]
async fn definite_4xx_answers_are_refusals_and_failures_are_not() {
    let dev = issuer().await;
    let validator = introspection(&dev)
        .negative_ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    let token = dev.opaque_token().audience(LAYER_RESOURCE).issue();

    for code in ["unsupported_token_type", "invalid_request", "invalid_token"] {
        let token = dev.opaque_token().audience(LAYER_RESOURCE).issue();
        dev.set_behavior(Endpoint::Introspection, Behavior::OAuthError(400, code));
        for _ in 0..5 {
            assert_rejects(&validator, &token, InvalidToken::Inactive).await;
        }
        assert_eq!(dev.introspection_requests_for(&token), 1, "{code}: cached");
    }
    for behavior in [
        Behavior::OAuthError(400, "invalid_client"),
        Behavior::OAuthError(401, "invalid_client"),
        Behavior::OAuthError(400, "unauthorized_client"),
        Behavior::Status(400),
        Behavior::Status(429),
        Behavior::Status(500),
    ] {
        dev.set_behavior(Endpoint::Introspection, behavior.clone());
        let before = dev.introspection_requests_for(&token);
        for _ in 0..2 {
            match validate(&validator, &token).await {
                Err(ValidationError::Unavailable { .. }) => {}
                other => panic!("{behavior:?}: expected 503, got {other:?}"),
            }
        }
        assert_eq!(
            dev.introspection_requests_for(&token) - before,
            2,
            "{behavior:?}: not cached"
        );
    }
    dev.set_behavior(Endpoint::Introspection, Behavior::Normal);
    assert_accepts(&validator, &token).await;
}

/// 300 concurrent requests with distinct tokens against a slow authorization server: at most the call
/// slots plus the queue reach it; the rest get 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_distinct_tokens_is_bounded_by_the_call_slots() {
    const SLOTS: usize = 4;
    const QUEUE: usize = 16;
    let dev = issuer().await;
    dev.set_behavior(
        Endpoint::Introspection,
        Behavior::Slow(Duration::from_millis(300)),
    );
    let validator = Arc::new(
        introspection(&dev)
            .max_concurrent_calls(SLOTS)
            .max_queued_calls(QUEUE)
            .max_queue_wait(Duration::from_secs(4))
            .build()
            .unwrap(),
    );
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let validator = validator.clone();
            tokio::spawn(async move {
                let token = BearerToken::new(&format!("distinct-junk-token-{i:04}")).unwrap();
                validator.validate(&token, &context()).await
            })
        })
        .collect();
    let mut busy = 0;
    let mut answered = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(ValidationError::Unavailable {
                reason: Unavailable::Introspection,
                retry_after,
            }) => {
                assert!(retry_after > Duration::ZERO);
                busy += 1;
            }
            Err(ValidationError::InvalidToken {
                reason: InvalidToken::Inactive,
                ..
            }) => answered += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let calls = dev.requests(Endpoint::Introspection) as usize;
    assert!(
        calls <= SLOTS + QUEUE,
        "{calls} calls reached the authorization server"
    );
    assert_eq!(answered, calls, "every call made was answered");
    assert!(busy >= 300 - SLOTS - QUEUE, "{busy} refused as busy");
    // Slots are given back: once the flood is over, a request is answered.
    dev.set_behavior(Endpoint::Introspection, Behavior::Normal);
    assert_accepts(
        &*validator,
        &dev.opaque_token().audience(LAYER_RESOURCE).issue(),
    )
    .await;
}

/// A junk token naming a `kid` before its key is published makes that `kid` "known missing" for one
/// cooldown at most: once the issuer publishes the key, its tokens are accepted after the cooldown.
#[tokio::test]
async fn a_poisoned_kid_recovers_after_one_cooldown() {
    let dev = issuer().await;
    let cooldown = Duration::from_millis(800);
    let validator = JwtValidator::builder(dev.issuer())
        .unknown_kid_cooldown(cooldown)
        .build()
        .unwrap();
    validator.ready().await.unwrap();
    // The attacker guesses the next kid (here: its name) and sends junk naming it.
    let junk = sign(
        dev.token()
            .audience(LAYER_RESOURCE)
            .header_kid(Some("next-key")),
    );
    assert_rejects(&validator, &junk, InvalidToken::UnknownKey).await;
    // The issuer rotates to that kid.
    dev.add_key_with("next-key", KeyAlg::Es256, true).unwrap();
    let real = sign(dev.token().audience(LAYER_RESOURCE).key("next-key"));
    // Within the cooldown the rate limit holds (no fetch per request)...
    let fetches = validator.jwks_fetch_count();
    assert_rejects(&validator, &real, InvalidToken::UnknownKey).await;
    assert_eq!(validator.jwks_fetch_count(), fetches);
    // ...and right after it, the real token triggers the fetch and is accepted.
    sleep(cooldown + Duration::from_millis(300)).await;
    assert_accepts(&validator, &real).await;
    assert_eq!(validator.jwks_fetch_count(), fetches + 1);
}
