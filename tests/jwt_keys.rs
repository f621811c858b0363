#![cfg(all(feature = "testkit", feature = "jwt"))]
//! `JwtValidator` key handling against the development issuer over loopback HTTP: discovery (RFC 8414,
//! OpenID), explicit and inline JWKS, `ready()`, rotation, refetch coalescing and rate limits, outages
//! (slow, 5xx, oversize, invalid JSON), stale-if-error, key removal, limits, `https` rules, and
//! `MultiIssuer` routing.
//!
//! Request counts come from the issuer's own counters (`DevIssuer::requests`). Every wait is bounded;
//! nothing asserts on how fast anything is, only that failures end within a bound.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bearer_guard::testkit::{Behavior, DevIssuer, Endpoint, KeyAlg};
use bearer_guard::validate::JwtValidatorBuilder;
use bearer_guard::{
    AccessToken, BuildError, InvalidToken, JwtValidator, MultiIssuer, ValidationError,
};
use common::validators::{assert_accepts, assert_rejects, sign, start, validate, validate_within};
use serde_json::json;
use tokio::time::{sleep, timeout};

/// Bound of every network wait and validation.
const WAIT: Duration = Duration::from_secs(5);
/// Bound of a validation while the JWKS endpoint misbehaves (fetch timeout is 300 ms there).
const OUTAGE_BOUND: Duration = Duration::from_secs(3);
/// The validator's fetch-failure backoff is 1 s; waiting a little longer lets the next request refetch.
const AFTER_BACKOFF: Duration = Duration::from_millis(1_200);
const AUD: &str = "https://mcp.example.com/mcp";

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

fn assert_unavailable(result: Result<AccessToken, ValidationError>, context: &str) {
    match result {
        Err(ValidationError::Unavailable { .. }) => {}
        other => panic!("{context}: expected Unavailable (503), got {other:?}"),
    }
}

fn good(issuer: &DevIssuer) -> String {
    sign(issuer.token().audience(AUD))
}

fn base(issuer: &DevIssuer) -> JwtValidatorBuilder {
    JwtValidator::builder(issuer.issuer()).audience(AUD)
}

async fn ready(builder: JwtValidatorBuilder) -> JwtValidator {
    let validator = builder.build().expect("validator builds");
    timeout(WAIT, validator.ready())
        .await
        .expect("keys load in time")
        .expect("keys load");
    validator
}

fn counts(issuer: &DevIssuer) -> [u64; 3] {
    [
        Endpoint::Jwks,
        Endpoint::OAuthMetadata,
        Endpoint::OpenIdMetadata,
    ]
    .map(|e| issuer.requests(e))
}

/// A kid no issuer publishes.
fn random_kid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("rnd-{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Validates `token` until `done` holds for the result (bounded by [`WAIT`]); returns that result.
async fn validate_until(
    validator: &JwtValidator,
    token: &str,
    done: impl Fn(&Result<AccessToken, ValidationError>) -> bool,
) -> Result<AccessToken, ValidationError> {
    timeout(WAIT, async {
        loop {
            let result = validate(validator, token).await;
            if done(&result) {
                return result;
            }
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the expected outcome arrives in time")
}

// ---------------------------------------------------------------------------------------------------------
// D. Discovery and key sources
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_via_rfc_8414_without_path() {
    let issuer = start(DevIssuer::builder()).await;
    let validator = ready(base(&issuer)).await;
    assert_accepts(&validator, &good(&issuer)).await;
    let [jwks, oauth, openid] = counts(&issuer);
    assert_eq!(oauth, 1, "RFC 8414 metadata read once");
    assert_eq!(openid, 0, "no fallback needed");
    assert!(jwks >= 1);
    assert_rejects(
        &validator,
        &sign(issuer.token().audience(AUD).expires_in(-3600)),
        InvalidToken::Expired,
    )
    .await;
}

#[tokio::test]
async fn discovery_via_path_insertion() {
    let issuer = start(DevIssuer::builder().issuer_path("/realms/demo")).await;
    assert!(issuer.issuer().ends_with("/realms/demo"));
    let validator = ready(base(&issuer)).await;
    assert_accepts(&validator, &good(&issuer)).await;
    let [_, oauth, openid] = counts(&issuer);
    assert_eq!((oauth, openid), (1, 0));
    // The path is part of the issuer: a token naming the bare origin is refused.
    let origin = issuer.issuer().trim_end_matches("/realms/demo").to_owned();
    assert_rejects(
        &validator,
        &sign(issuer.token().audience(AUD).claim("iss", json!(origin))),
        InvalidToken::WrongIssuer,
    )
    .await;
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration() {
    for path in ["", "/realms/demo"] {
        let issuer = start(
            DevIssuer::builder()
                .issuer_path(path)
                .serve_oauth_metadata(false),
        )
        .await;
        let validator = ready(base(&issuer)).await;
        assert_accepts(&validator, &good(&issuer)).await;
        let [jwks, _, openid] = counts(&issuer);
        assert_eq!(openid, 1, "path {path:?}: OpenID metadata used");
        assert!(jwks >= 1);
        assert_rejects(
            &validator,
            &sign(issuer.token().audience("https://other.example.com")),
            InvalidToken::WrongAudience,
        )
        .await;
    }
}

#[tokio::test]
async fn discovery_with_a_trailing_slash_issuer() {
    let issuer = start(DevIssuer::builder().trailing_slash(true)).await;
    assert!(issuer.issuer().ends_with('/'));
    let validator = ready(base(&issuer)).await;
    assert_accepts(&validator, &good(&issuer)).await;
    assert_eq!(issuer.requests(Endpoint::OAuthMetadata), 1);
    let without = issuer.issuer().trim_end_matches('/').to_owned();
    assert_rejects(
        &validator,
        &sign(issuer.token().audience(AUD).claim("iss", json!(without))),
        InvalidToken::WrongIssuer,
    )
    .await;
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_never_trusted() {
    let issuer = start(DevIssuer::builder()).await;
    issuer.set_behavior(Endpoint::OAuthMetadata, Behavior::WrongIssuer);
    issuer.set_behavior(Endpoint::OpenIdMetadata, Behavior::WrongIssuer);
    let validator = base(&issuer).build().unwrap();
    let token = good(&issuer);
    assert_unavailable(validate(&validator, &token).await, "wrong-issuer metadata");
    match timeout(WAIT, validator.ready())
        .await
        .expect("ready() ends")
    {
        Err(ValidationError::Unavailable { .. }) => {}
        other => panic!("ready() with wrong-issuer metadata: {other:?}"),
    }
    assert_unavailable(
        validate(&validator, &token).await,
        "still wrong-issuer metadata",
    );
    assert_eq!(
        issuer.requests(Endpoint::Jwks),
        0,
        "the jwks_uri of a mismatching document is never used"
    );
    assert!(issuer.requests(Endpoint::OAuthMetadata) >= 1);
    assert!(issuer.requests(Endpoint::OpenIdMetadata) >= 1);

    // Same fixture, metadata fixed: accepted (after the failure backoff).
    issuer.set_behavior(Endpoint::OAuthMetadata, Behavior::Normal);
    issuer.set_behavior(Endpoint::OpenIdMetadata, Behavior::Normal);
    sleep(AFTER_BACKOFF).await;
    assert_accepts(&validator, &token).await;
}

#[tokio::test]
async fn a_mismatching_candidate_is_skipped_for_the_next_one() {
    let issuer = start(DevIssuer::builder()).await;
    issuer.set_behavior(Endpoint::OAuthMetadata, Behavior::WrongIssuer);
    let validator = ready(base(&issuer)).await;
    assert_accepts(&validator, &good(&issuer)).await;
    let [_, oauth, openid] = counts(&issuer);
    assert_eq!((oauth, openid), (1, 1));
}

#[tokio::test]
async fn explicit_jwks_uri_skips_discovery() {
    let issuer = start(
        DevIssuer::builder()
            .serve_oauth_metadata(false)
            .serve_openid_metadata(false),
    )
    .await;
    let validator = ready(base(&issuer).jwks_uri(issuer.jwks_uri())).await;
    assert_accepts(&validator, &good(&issuer)).await;
    let [jwks, oauth, openid] = counts(&issuer);
    assert!(jwks >= 1);
    assert_eq!((oauth, openid), (0, 0));
    assert_rejects(
        &validator,
        &sign(issuer.token().audience(AUD).not_before(3600)),
        InvalidToken::NotYetValid,
    )
    .await;
}

#[tokio::test]
async fn inline_jwks_needs_no_network_and_is_never_refreshed() {
    let issuer = start(DevIssuer::builder()).await;
    let validator = base(&issuer).jwks(&issuer.public_jwks()).build().unwrap();
    timeout(WAIT, validator.ready())
        .await
        .unwrap()
        .expect("inline keys are ready at once");
    for kid in ["rs256-1", "es256-1", "es384-1", "eddsa-1"] {
        assert_accepts(&validator, &sign(issuer.token().audience(AUD).key(kid))).await;
    }
    // A key added later is unknown to the inline set, and no fetch happens.
    let kid = issuer.add_key(KeyAlg::Es256).unwrap();
    assert_rejects(
        &validator,
        &sign(issuer.token().audience(AUD).key(&kid)),
        InvalidToken::UnknownKey,
    )
    .await;
    assert_eq!(counts(&issuer), [0, 0, 0], "inline keys: no request at all");
    assert_eq!(validator.jwks_fetch_count(), 0);
}

#[test]
fn inline_jwks_without_usable_keys_is_a_build_error() {
    let oct = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]});
    assert!(matches!(
        JwtValidator::builder("https://auth.example.com")
            .jwks(&oct)
            .build(),
        Err(BuildError::Invalid(_))
    ));
    assert!(matches!(
        JwtValidator::builder("https://auth.example.com")
            .jwks(&json!({"nokeys": []}))
            .build(),
        Err(BuildError::Invalid(_))
    ));
    let ed = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
    assert!(JwtValidator::builder("https://auth.example.com")
        .jwks(&ed)
        .build()
        .is_ok());
}

#[tokio::test]
async fn ready_succeeds_after_keys_load_and_fails_while_the_jwks_fails() {
    let issuer = start(DevIssuer::builder()).await;
    issuer.set_behavior(Endpoint::Jwks, Behavior::Status(500));
    let validator = base(&issuer)
        .jwks_uri(issuer.jwks_uri())
        .fetch_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    match timeout(WAIT, validator.ready())
        .await
        .expect("ready() ends in time")
    {
        Err(ValidationError::Unavailable { .. }) => {}
        other => panic!("ready() while the JWKS answers 500: {other:?}"),
    }
    issuer.set_behavior(Endpoint::Jwks, Behavior::Normal);
    sleep(AFTER_BACKOFF).await;
    timeout(WAIT, validator.ready())
        .await
        .expect("ready() ends in time")
        .expect("ready() succeeds once the JWKS answers");
    assert_accepts(&validator, &good(&issuer)).await;
    // Loaded: ready() answers without another fetch.
    let before = issuer.requests(Endpoint::Jwks);
    timeout(WAIT, validator.ready()).await.unwrap().unwrap();
    assert_eq!(issuer.requests(Endpoint::Jwks), before);
}

// ---------------------------------------------------------------------------------------------------------
// D. Rotation, coalescing, rate limits
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn rotation_a_new_kid_costs_exactly_one_fetch() {
    let issuer = start(DevIssuer::builder()).await;
    let validator = ready(base(&issuer)).await;
    assert_accepts(&validator, &good(&issuer)).await;
    let before = issuer.requests(Endpoint::Jwks);

    let kid = issuer.add_key(KeyAlg::Es256).unwrap();
    let rotated = sign(issuer.token().audience(AUD).key(&kid));
    assert_accepts(&validator, &rotated).await;
    assert_eq!(
        issuer.requests(Endpoint::Jwks) - before,
        1,
        "one refetch for the new kid"
    );
    // Known from now on: more tokens with that kid, and old keys, cost nothing.
    assert_accepts(
        &validator,
        &sign(issuer.token().audience(AUD).key(&kid).subject("other")),
    )
    .await;
    assert_accepts(&validator, &good(&issuer)).await;
    assert_eq!(issuer.requests(Endpoint::Jwks) - before, 1);
    assert_eq!(
        issuer.requests(Endpoint::OAuthMetadata),
        1,
        "the jwks_uri is remembered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_unknown_kids_share_one_fetch() {
    let issuer = start(DevIssuer::builder()).await;
    let validator = ready(base(&issuer).unknown_kid_cooldown(Duration::from_secs(10))).await;
    assert_accepts(&validator, &good(&issuer)).await;
    // Multi-threaded: let the background refresher's first pass end before taking the baseline.
    sleep(Duration::from_millis(100)).await;
    let before = issuer.requests(Endpoint::Jwks);

    let token = sign(
        issuer
            .token()
            .audience(AUD)
            .header_kid(Some("never-published")),
    );
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let validator = validator.clone();
            let token = token.clone();
            tokio::spawn(async move { validate(&validator, &token).await })
        })
        .collect();
    let results = timeout(WAIT, futures_util::future::join_all(tasks))
        .await
        .expect("all validations end in time");
    for result in results {
        match result.expect("no task panicked") {
            Err(ValidationError::InvalidToken {
                reason: InvalidToken::UnknownKey,
                ..
            }) => {}
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }
    assert_eq!(
        issuer.requests(Endpoint::Jwks) - before,
        1,
        "200 concurrent validations, one JWKS fetch"
    );
    assert_accepts(&validator, &good(&issuer)).await;
}

#[tokio::test]
async fn random_kids_are_rate_limited_by_the_cooldown() {
    const COOLDOWN: Duration = Duration::from_millis(1_500);
    let issuer = start(DevIssuer::builder()).await;
    let validator = ready(base(&issuer).unknown_kid_cooldown(COOLDOWN)).await;
    assert_accepts(&validator, &good(&issuer)).await;
    // Mint first, so the window below holds validations only.
    let tokens: Vec<String> = (0..1_000)
        .map(|_| {
            sign(
                issuer
                    .token()
                    .audience(AUD)
                    .key("es256-1")
                    .header_kid(Some(&random_kid())),
            )
        })
        .collect();
    let before = issuer.requests(Endpoint::Jwks);
    let window = Instant::now();
    for token in &tokens {
        assert_rejects(&validator, token, InvalidToken::UnknownKey).await;
    }
    let elapsed = window.elapsed();
    let fetched = issuer.requests(Endpoint::Jwks) - before;
    assert!(
        fetched <= 1,
        "1 000 random kids within one cooldown: at most one fetch, got {fetched} (loop took {elapsed:?})"
    );
    assert_accepts(&validator, &good(&issuer)).await;

    // After the cooldown, one more random kid may refetch exactly once; the next one may not.
    sleep(COOLDOWN.saturating_sub(window.elapsed()) + Duration::from_millis(200)).await;
    let before = issuer.requests(Endpoint::Jwks);
    for _ in 0..2 {
        let token = sign(issuer.token().audience(AUD).header_kid(Some(&random_kid())));
        assert_rejects(&validator, &token, InvalidToken::UnknownKey).await;
    }
    assert_eq!(issuer.requests(Endpoint::Jwks) - before, 1);
    assert_accepts(&validator, &good(&issuer)).await;
}

#[tokio::test]
async fn a_remembered_unknown_kid_is_refused_without_a_fetch() {
    let issuer = start(DevIssuer::builder()).await;
    let validator = ready(base(&issuer).unknown_kid_cooldown(Duration::from_millis(100))).await;
    assert_accepts(&validator, &good(&issuer)).await;
    let token = sign(issuer.token().audience(AUD).header_kid(Some("ghost")));
    let before = issuer.requests(Endpoint::Jwks);
    assert_rejects(&validator, &token, InvalidToken::UnknownKey).await;
    assert_eq!(issuer.requests(Endpoint::Jwks) - before, 1);
    // Past the cooldown, but the kid was found missing: the negative cache answers.
    sleep(Duration::from_millis(300)).await;
    assert_rejects(&validator, &token, InvalidToken::UnknownKey).await;
    assert_eq!(issuer.requests(Endpoint::Jwks) - before, 1);
    assert_accepts(&validator, &good(&issuer)).await;
}

// ---------------------------------------------------------------------------------------------------------
// D. Outages
// ---------------------------------------------------------------------------------------------------------

/// With `behavior` on the JWKS endpoint from the start, a validation ends as Unavailable within
/// [`OUTAGE_BOUND`]; once the endpoint recovers (and the failure backoff passed), the same validator
/// accepts the token: the failure was not cached as "no keys".
async fn outage(behavior: Behavior) {
    let issuer = start(DevIssuer::builder()).await;
    issuer.set_behavior(Endpoint::Jwks, behavior.clone());
    let validator = base(&issuer)
        .jwks_uri(issuer.jwks_uri())
        .fetch_timeout(Duration::from_millis(300))
        .max_response_bytes(16 * 1024)
        .build()
        .unwrap();
    let token = good(&issuer);
    for attempt in 0..3 {
        let result = validate_within(&validator, &token, OUTAGE_BOUND).await;
        assert_unavailable(result, &format!("{behavior:?}, attempt {attempt}"));
    }
    match timeout(OUTAGE_BOUND, validator.ready()).await {
        Ok(Err(ValidationError::Unavailable { .. })) => {}
        other => panic!("{behavior:?}: ready() gave {other:?}"),
    }
    assert!(issuer.requests(Endpoint::Jwks) >= 1);

    issuer.set_behavior(Endpoint::Jwks, Behavior::Normal);
    sleep(AFTER_BACKOFF).await;
    assert_accepts(&validator, &token).await;
}

#[tokio::test]
async fn outage_slow_jwks() {
    outage(Behavior::Slow(Duration::from_secs(2))).await;
}

#[tokio::test]
async fn outage_jwks_status_500() {
    outage(Behavior::Status(500)).await;
}

#[tokio::test]
async fn outage_oversize_jwks() {
    outage(Behavior::Oversize(64 * 1024)).await;
}

#[tokio::test]
async fn outage_invalid_json_jwks() {
    outage(Behavior::InvalidJson).await;
}

#[tokio::test]
async fn outage_jwks_without_usable_keys() {
    let issuer = start(DevIssuer::builder().keys(&[])).await;
    issuer.publish_extra_jwk(json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}));
    let validator = base(&issuer).jwks_uri(issuer.jwks_uri()).build().unwrap();
    let kid = issuer.add_key(KeyAlg::EdDsa).unwrap();
    issuer.remove_key(&kid);
    let token = sign(issuer.token().audience(AUD).key(&kid));
    assert_unavailable(
        validate(&validator, &token).await,
        "a JWKS with only an oct key",
    );
    // Published again: accepted.
    issuer.add_key(KeyAlg::Es256).unwrap();
    sleep(AFTER_BACKOFF).await;
    assert_accepts(
        &validator,
        &sign(issuer.token().audience(AUD).key("es256-1")),
    )
    .await;
}

#[tokio::test]
async fn a_failed_first_fetch_is_not_cached_as_no_keys() {
    let issuer = start(DevIssuer::builder()).await;
    issuer.set_behavior(Endpoint::Jwks, Behavior::Status(503));
    let validator = base(&issuer).jwks_uri(issuer.jwks_uri()).build().unwrap();
    let token = good(&issuer);
    assert_unavailable(validate(&validator, &token).await, "first fetch fails");
    assert_unavailable(validate(&validator, &token).await, "still failing");

    issuer.set_behavior(Endpoint::Jwks, Behavior::Normal);
    sleep(AFTER_BACKOFF).await;
    assert_accepts(&validator, &token).await;
    assert_accepts(
        &validator,
        &sign(issuer.token().audience(AUD).key("es384-1")),
    )
    .await;
}

/// `FAILURE_BACKOFF` is documented as "least time between two fetch attempts after a failure, whatever
/// triggers them": an outage must not be amplified by the guard.
#[tokio::test]
async fn fetch_failures_back_off_whatever_triggers_the_fetch() {
    let issuer = start(DevIssuer::builder()).await;
    issuer.set_behavior(Endpoint::Jwks, Behavior::Status(503));
    let validator = base(&issuer).jwks_uri(issuer.jwks_uri()).build().unwrap();
    let token = good(&issuer);
    assert_unavailable(validate(&validator, &token).await, "first fetch fails");
    let after_failure = issuer.requests(Endpoint::Jwks);
    // Within the failure backoff (1 s), more requests do not cause more fetches.
    for _ in 0..20 {
        assert_unavailable(validate(&validator, &token).await, "during the backoff");
    }
    // Let any other task (the background refresher) run, still well within the backoff.
    sleep(Duration::from_millis(200)).await;
    assert_unavailable(validate(&validator, &token).await, "during the backoff");
    assert_eq!(
        issuer.requests(Endpoint::Jwks),
        after_failure,
        "no fetch during the failure backoff"
    );

    issuer.set_behavior(Endpoint::Jwks, Behavior::Normal);
    sleep(AFTER_BACKOFF).await;
    assert_accepts(&validator, &token).await;
}

/// Keys load, then the JWKS endpoint fails: tokens stay accepted while the key set is within
/// `max_staleness`, and are refused with 503 (never accepted) past it, cache or no cache.
async fn stale_if_error(cached: bool) {
    const STALENESS: Duration = Duration::from_millis(1_500);
    let issuer = start(DevIssuer::builder()).await;
    let mut builder = base(&issuer)
        .jwks_uri(issuer.jwks_uri())
        .max_staleness(STALENESS)
        .unknown_kid_cooldown(Duration::from_millis(100));
    if !cached {
        builder = builder.no_token_cache();
    }
    let validator = ready(builder).await;
    let loaded = Instant::now();
    let token = good(&issuer);
    assert_accepts(&validator, &token).await;
    assert_eq!(validator.cached_tokens(), usize::from(cached));

    issuer.set_behavior(Endpoint::Jwks, Behavior::Status(500));
    // Force a refetch (a new kid): it fails, with 503.
    let before = issuer.requests(Endpoint::Jwks);
    let new_kid = sign(issuer.token().audience(AUD).header_kid(Some("rotated-in")));
    assert_unavailable(
        validate(&validator, &new_kid).await,
        "refetch during the outage",
    );
    assert_eq!(issuer.requests(Endpoint::Jwks) - before, 1);
    // The last good key set keeps serving.
    assert_accepts(&validator, &token).await;
    assert_accepts(
        &validator,
        &sign(issuer.token().audience(AUD).key("eddsa-1")),
    )
    .await;

    // Past the staleness bound: 503, for the cached token too.
    sleep(
        (loaded + STALENESS + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    )
    .await;
    for attempt in 0..3 {
        assert_unavailable(
            validate(&validator, &token).await,
            &format!("stale key set (cached: {cached}), attempt {attempt}"),
        );
    }
    assert_unavailable(
        validate(
            &validator,
            &sign(issuer.token().audience(AUD).key("eddsa-1")),
        )
        .await,
        "stale key set, fresh token",
    );

    // Recovery.
    issuer.set_behavior(Endpoint::Jwks, Behavior::Normal);
    sleep(AFTER_BACKOFF).await;
    assert_accepts(&validator, &token).await;
}

#[tokio::test]
async fn stale_if_error_without_token_cache() {
    stale_if_error(false).await;
}

#[tokio::test]
async fn stale_if_error_with_token_cache() {
    stale_if_error(true).await;
}

#[tokio::test]
async fn a_removed_key_stops_verifying_even_cached_tokens() {
    let issuer = start(DevIssuer::builder()).await;
    issuer.set_jwks_cache_control(Some("max-age=0".to_owned()));
    let kid = issuer.add_key(KeyAlg::Es256).unwrap();
    let validator = ready(
        base(&issuer)
            .jwks_uri(issuer.jwks_uri())
            .refresh_interval_bounds(Duration::from_millis(100), Duration::from_millis(200))
            .unknown_kid_cooldown(Duration::from_millis(100)),
    )
    .await;
    let token = sign(issuer.token().audience(AUD).key(&kid));
    assert_accepts(&validator, &token).await;
    assert_accepts(&validator, &token).await;
    assert!(
        validator.cached_tokens() >= 1,
        "the token is in the verified-token cache"
    );

    assert!(issuer.remove_key(&kid));
    let result = validate_until(&validator, &token, |r| r.is_err()).await;
    match result {
        Err(ValidationError::InvalidToken {
            reason: InvalidToken::UnknownKey,
            ..
        }) => {}
        other => panic!("after removal: {other:?}"),
    }
    assert_rejects(&validator, &token, InvalidToken::UnknownKey).await;
    // The keys still published keep working.
    assert_accepts(&validator, &good(&issuer)).await;
}

#[tokio::test]
async fn a_key_replaced_under_the_same_kid_stops_verifying_cached_tokens() {
    let issuer = start(DevIssuer::builder()).await;
    issuer.set_jwks_cache_control(Some("max-age=0".to_owned()));
    issuer
        .add_key_with("rotating", KeyAlg::Es256, true)
        .unwrap();
    let validator = ready(
        base(&issuer)
            .jwks_uri(issuer.jwks_uri())
            .refresh_interval_bounds(Duration::from_millis(100), Duration::from_millis(200)),
    )
    .await;
    let old = sign(issuer.token().audience(AUD).key("rotating"));
    assert_accepts(&validator, &old).await;

    issuer
        .add_key_with("rotating", KeyAlg::Es256, true)
        .unwrap();
    let result = validate_until(&validator, &old, |r| r.is_err()).await;
    match result {
        Err(ValidationError::InvalidToken {
            reason: InvalidToken::BadSignature,
            ..
        }) => {}
        other => panic!("after the key changed: {other:?}"),
    }
    assert_accepts(
        &validator,
        &sign(issuer.token().audience(AUD).key("rotating")),
    )
    .await;
}

#[tokio::test]
async fn a_jwks_with_more_keys_than_max_keys_is_refused() {
    let issuer = start(DevIssuer::builder()).await;
    assert_eq!(issuer.public_jwks()["keys"].as_array().unwrap().len(), 4);
    let token = good(&issuer);
    let fits = ready(base(&issuer).jwks_uri(issuer.jwks_uri()).max_keys(4)).await;
    assert_accepts(&fits, &token).await;

    let capped = base(&issuer)
        .jwks_uri(issuer.jwks_uri())
        .max_keys(3)
        .build()
        .unwrap();
    assert_unavailable(validate(&capped, &token).await, "JWKS over max_keys");
    match timeout(WAIT, capped.ready()).await.unwrap() {
        Err(ValidationError::Unavailable { .. }) => {}
        other => panic!("ready() over max_keys: {other:?}"),
    }
}

#[test]
fn jwks_and_issuer_urls_must_be_https_except_on_loopback() {
    // Built outside a runtime: no background fetch is attempted.
    let builder = || JwtValidator::builder("https://auth.example.com").audience(AUD);
    assert!(matches!(
        builder().jwks_uri("http://example.com/jwks").build(),
        Err(BuildError::Invalid(_))
    ));
    assert!(builder()
        .jwks_uri("https://example.com/jwks")
        .build()
        .is_ok());
    assert!(builder()
        .jwks_uri("http://127.0.0.1:9/jwks")
        .build()
        .is_ok());
    assert!(builder()
        .jwks_uri("http://localhost:9/jwks")
        .build()
        .is_ok());
    assert!(builder()
        .jwks_uri("ftp://example.com/jwks")
        .build()
        .is_err());

    // Discovery of a non-loopback http issuer.
    assert!(matches!(
        JwtValidator::builder("http://auth.example.com")
            .audience(AUD)
            .build(),
        Err(BuildError::InvalidAuthorizationServer(_))
    ));
    assert!(JwtValidator::builder("http://127.0.0.1:9")
        .audience(AUD)
        .build()
        .is_ok());
    assert!(builder().build().is_ok());
}

// ---------------------------------------------------------------------------------------------------------
// E. MultiIssuer
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn multi_issuer_routes_by_iss_and_verifies_with_that_issuers_keys() {
    let a = start(DevIssuer::builder()).await;
    let b = start(DevIssuer::builder().issuer_path("/tenant-b")).await;
    let b_only = b.add_key(KeyAlg::Ps256).unwrap();
    let multi = MultiIssuer::new()
        .issuer(ready(base(&a)).await)
        .issuer(ready(base(&b)).await);
    assert_eq!(multi.issuers().count(), 2);

    let from_a = assert_accepts(&multi, &good(&a)).await;
    assert_eq!(from_a.issuer(), Some(a.issuer()));
    let from_b = assert_accepts(&multi, &good(&b)).await;
    assert_eq!(from_b.issuer(), Some(b.issuer()));
    assert_accepts(&multi, &sign(b.token().audience(AUD).key(&b_only))).await;

    // Claims issuer A, signed by B (with kids A also has, and with a kid only B has).
    for kid in ["rs256-1", "es256-1", "eddsa-1", b_only.as_str()] {
        let forged = sign(
            b.token()
                .audience(AUD)
                .key(kid)
                .claim("iss", json!(a.issuer())),
        );
        match validate(&multi, &forged).await {
            Err(ValidationError::InvalidToken {
                reason: InvalidToken::BadSignature | InvalidToken::UnknownKey,
                ..
            }) => {}
            other => panic!("token claiming A, signed by B ({kid}): {other:?}"),
        }
    }

    // Unknown issuer: refused without a single request to either issuer.
    let (before_a, before_b) = (counts(&a), counts(&b));
    let unknown = sign(
        a.token()
            .audience(AUD)
            .claim("iss", json!("https://unknown.example.com")),
    );
    assert_rejects(&multi, &unknown, InvalidToken::WrongIssuer).await;
    let with_slash = sign(
        a.token()
            .audience(AUD)
            .claim("iss", json!(format!("{}/", a.issuer()))),
    );
    assert_rejects(&multi, &with_slash, InvalidToken::WrongIssuer).await;
    assert_rejects(
        &multi,
        &sign(a.token().audience(AUD).remove_claim("iss")),
        InvalidToken::WrongIssuer,
    )
    .await;
    assert_rejects(&multi, "not-a-jwt", InvalidToken::Malformed).await;
    assert_eq!(
        (counts(&a), counts(&b)),
        (before_a, before_b),
        "no request for unknown issuers"
    );

    // Both still work.
    assert_accepts(&multi, &good(&a)).await;
    assert_accepts(&multi, &good(&b)).await;
}
