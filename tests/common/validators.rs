//! Shared helpers for the validator tests: start a development issuer, validate a token with a bound,
//! and assert the outcome.

use std::time::Duration;

use bearer_guard::testkit::{DevIssuer, DevIssuerBuilder, TokenBuilder};
use bearer_guard::{
    AccessToken, BearerToken, InvalidToken, TokenValidator, ValidationContext, ValidationError,
};
use tokio::time::timeout;

use super::WAIT;

/// The resource of the layer the validator tests pretend to be (the usual `AUD` of their tokens).
pub const LAYER_RESOURCE: &str = "https://mcp.example.com/mcp";

/// The validation context of a layer guarding [`LAYER_RESOURCE`].
pub fn context() -> ValidationContext {
    ValidationContext::new(LAYER_RESOURCE)
}

/// Starts a development issuer within [`WAIT`].
pub async fn start(builder: DevIssuerBuilder) -> DevIssuer {
    timeout(WAIT, builder.start())
        .await
        .expect("the development issuer starts in time")
        .expect("the development issuer starts")
}

/// Starts a development issuer with one ES256 key whose introspection endpoint accepts the client
/// `rs-client` / `rs-secret`.
pub async fn start_es256_with_introspection() -> DevIssuer {
    start(
        DevIssuer::builder()
            .keys(&[bearer_guard::testkit::KeyAlg::Es256])
            .introspection_client("rs-client", "rs-secret"),
    )
    .await
}

/// Signs a test token (the development issuer cannot fail to, with its own keys).
pub fn sign(builder: TokenBuilder) -> String {
    builder.sign().expect("the development issuer signs")
}

/// Wraps a test token (`b64token` syntax is the test's responsibility).
pub fn bearer(token: &str) -> BearerToken {
    BearerToken::new(token).expect("the test token has b64token syntax")
}

/// Validates `token`, failing the test if that takes longer than `bound`.
pub async fn validate_within(
    validator: &impl TokenValidator,
    token: &str,
    bound: Duration,
) -> Result<AccessToken, ValidationError> {
    timeout(bound, validator.validate(&bearer(token), &context()))
        .await
        .unwrap_or_else(|_| panic!("validation did not finish within {bound:?}"))
}

/// Validates `token` within [`WAIT`].
pub async fn validate(
    validator: &impl TokenValidator,
    token: &str,
) -> Result<AccessToken, ValidationError> {
    validate_within(validator, token, WAIT).await
}

/// The token is accepted; its access token.
pub async fn assert_accepts(validator: &impl TokenValidator, token: &str) -> AccessToken {
    match validate(validator, token).await {
        Ok(access) => access,
        Err(error) => panic!("expected the token to be accepted, got {error:?}"),
    }
}

/// The token is refused as `invalid_token` for exactly this reason.
pub async fn assert_rejects(validator: &impl TokenValidator, token: &str, expected: InvalidToken) {
    match validate(validator, token).await {
        Err(ValidationError::InvalidToken { reason: got, .. }) => {
            assert_eq!(got, expected, "wrong rejection reason")
        }
        other => panic!("expected InvalidToken::{expected:?}, got {other:?}"),
    }
}
