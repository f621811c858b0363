#![cfg(all(feature = "testkit", feature = "jwt"))]
//! `JwtValidator` token checks (RFC 9068 / RFC 8725), against real keys served by the development issuer
//! (`bearer_guard::testkit::DevIssuer`) over loopback HTTP.
//!
//! Every rejection is paired with an acceptance on the same fixture (same issuer, same validator
//! configuration), so a validator that refuses everything cannot pass. Every wait is bounded by
//! [`WAIT`]; nothing here asserts on timings.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bearer_guard::testkit::{DevIssuer, DevIssuerBuilder, Endpoint, KeyAlg, TokenBuilder};
use bearer_guard::validate::JwtValidatorBuilder;
use bearer_guard::{
    AccessToken, Algorithm, InvalidToken, JwtValidator, TokenValidator, ValidationError,
};
use common::validators::{assert_accepts, assert_rejects, sign, start, validate};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::timeout;

/// Bound of every network wait and validation.
const WAIT: Duration = Duration::from_secs(5);
/// The resource the validators accept as audience.
const AUD: &str = "https://mcp.example.com/mcp";
/// Another resource (never accepted unless configured).
const OTHER: &str = "https://other.example.com/mcp";

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn header_of(token: &str) -> Value {
    let part = token.split('.').next().expect("header part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON header")
}

/// One development issuer and one validator (discovery, audience [`AUD`]) with its keys loaded.
struct Fixture {
    issuer: DevIssuer,
    validator: JwtValidator,
}

impl Fixture {
    /// Default issuer (keys RS256, ES256, ES384, EdDSA), default validator settings.
    async fn new() -> Self {
        Self::with(DevIssuer::builder(), |b| b).await
    }

    async fn with(
        dev: DevIssuerBuilder,
        configure: impl FnOnce(JwtValidatorBuilder) -> JwtValidatorBuilder,
    ) -> Self {
        Self::on(start(dev).await, configure).await
    }

    /// A validator for an issuer already running (and possibly already changed).
    async fn on(
        issuer: DevIssuer,
        configure: impl FnOnce(JwtValidatorBuilder) -> JwtValidatorBuilder,
    ) -> Self {
        let validator = validator_for(&issuer, configure).await;
        Self { issuer, validator }
    }

    /// A good token builder: default claims plus `aud` = [`AUD`].
    fn token(&self) -> TokenBuilder {
        self.issuer.token().audience(AUD)
    }

    fn good(&self) -> String {
        sign(self.token())
    }

    async fn accepts(&self, token: &str) -> AccessToken {
        assert_accepts(&self.validator, token).await
    }

    async fn rejects(&self, token: &str, expected: InvalidToken) {
        assert_rejects(&self.validator, token, expected).await
    }
}

/// A validator for `issuer` (discovery, audience [`AUD`], then `configure`), with its keys loaded.
async fn validator_for(
    issuer: &DevIssuer,
    configure: impl FnOnce(JwtValidatorBuilder) -> JwtValidatorBuilder,
) -> JwtValidator {
    let validator = configure(JwtValidator::builder(issuer.issuer()).audience(AUD))
        .build()
        .expect("validator builds");
    timeout(WAIT, validator.ready())
        .await
        .expect("keys load in time")
        .expect("keys load");
    validator
}

// ---------------------------------------------------------------------------------------------------------
// A. Every algorithm
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn accepts_every_algorithm() {
    let issuer = start(DevIssuer::builder().keys(&[])).await;
    let mut kids = Vec::new();
    for alg in KeyAlg::ALL {
        kids.push((alg, issuer.add_key(alg).expect("key generation")));
    }
    let fx = Fixture::on(issuer, |b| b).await;
    for (alg, kid) in &kids {
        let token = sign(fx.token().key(kid));
        let header = header_of(&token);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["kid"], kid.as_str());
        let access = fx.accepts(&token).await;
        assert_eq!(access.subject(), Some("test-user"), "{alg}");
    }
    // The same keys refuse a tampered payload, whatever the algorithm.
    for (alg, kid) in &kids {
        let tampered = fx
            .token()
            .key(kid)
            .sign_with_tampered_payload()
            .expect("sign");
        match validate(&fx.validator, &tampered).await {
            Err(ValidationError::InvalidToken {
                reason: InvalidToken::BadSignature,
                ..
            }) => {}
            other => panic!("{alg}: expected BadSignature, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn accepts_the_rfc_9864_name_ed25519_for_eddsa() {
    let fx = Fixture::new().await;
    let eddsa = sign(fx.token().key("eddsa-1"));
    fx.accepts(&eddsa).await;
    let ed25519 = sign(fx.token().key("eddsa-1").header_alg("Ed25519"));
    fx.accepts(&ed25519).await;
    // ...but the name does not make an Ed25519 signature valid for another key.
    let wrong_key = sign(
        fx.token()
            .key("eddsa-1")
            .header_alg("Ed25519")
            .header_kid(Some("es256-1")),
    );
    fx.rejects(&wrong_key, InvalidToken::DisallowedAlgorithm)
        .await;
}

#[tokio::test]
async fn jwk_without_alg_is_accepted_for_its_family_only() {
    let issuer = start(DevIssuer::builder()).await;
    issuer
        .add_key_with("rsa-noalg", KeyAlg::Ps384, false)
        .unwrap();
    issuer
        .add_key_with("rsa-noalg-pkcs1", KeyAlg::Rs512, false)
        .unwrap();
    issuer
        .add_key_with("ec-noalg", KeyAlg::Es256, false)
        .unwrap();
    issuer
        .add_key_with("ec384-noalg", KeyAlg::Es384, false)
        .unwrap();
    issuer
        .add_key_with("ed-noalg", KeyAlg::EdDsa, false)
        .unwrap();
    let jwks = issuer.public_jwks();
    let published = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "rsa-noalg")
        .expect("published");
    assert!(published.get("alg").is_none(), "the JWK really has no alg");

    let fx = Fixture::on(issuer, |b| b).await;
    for kid in [
        "rsa-noalg",
        "rsa-noalg-pkcs1",
        "ec-noalg",
        "ec384-noalg",
        "ed-noalg",
    ] {
        fx.accepts(&sign(fx.token().key(kid))).await;
    }
    // Outside the family: an EC or EdDSA algorithm named over the RSA key, RSA over the EC key.
    for (kid, alg) in [
        ("rsa-noalg", "ES256"),
        ("rsa-noalg", "EdDSA"),
        ("ec-noalg", "RS256"),
        ("ec-noalg", "ES384"),
        ("ed-noalg", "PS256"),
    ] {
        let token = sign(fx.token().key(kid).header_alg(alg));
        fx.rejects(&token, InvalidToken::DisallowedAlgorithm).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// B. Rejections
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn rejects_a_tampered_payload() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    let tampered = fx.token().sign_with_tampered_payload().unwrap();
    fx.rejects(&tampered, InvalidToken::BadSignature).await;
    // A signature taken from another good token does not fit either.
    let a = fx.good();
    let b = fx.good();
    let spliced = format!(
        "{}.{}",
        a.rsplit_once('.').unwrap().0,
        b.rsplit_once('.').unwrap().1
    );
    fx.rejects(&spliced, InvalidToken::BadSignature).await;
}

#[tokio::test]
async fn rejects_alg_none_unsigned() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    let unsigned = fx.token().unsigned().unwrap();
    assert!(
        unsigned.ends_with('.'),
        "an unsecured JWS has an empty signature"
    );
    assert_eq!(header_of(&unsigned)["alg"], "none");
    fx.rejects(&unsigned, InvalidToken::DisallowedAlgorithm)
        .await;
}

#[tokio::test]
async fn rejects_alg_none_with_a_signature_and_other_spellings() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    let unsigned = fx.token().unsigned().unwrap();
    fx.rejects(
        &format!("{unsigned}c2lnbmF0dXJl"),
        InvalidToken::DisallowedAlgorithm,
    )
    .await;
    for alg in ["None", "NONE", "nOnE", "", "rs256", "ES512"] {
        let token = sign(fx.token().header_alg(alg));
        fx.rejects(&token, InvalidToken::DisallowedAlgorithm).await;
    }
}

#[tokio::test]
async fn rejects_hs256_signed_with_the_rsa_public_key() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    let confused = fx.token().sign_hs256_with_public_key().unwrap();
    assert_eq!(header_of(&confused)["alg"], "HS256");
    assert_eq!(header_of(&confused)["kid"], "rs256-1");
    fx.rejects(&confused, InvalidToken::DisallowedAlgorithm)
        .await;
    // HS384 / HS512 named over a real RSA signature: still not nameable.
    for alg in ["HS256", "HS384", "HS512"] {
        let token = sign(fx.token().header_alg(alg));
        fx.rejects(&token, InvalidToken::DisallowedAlgorithm).await;
    }
}

#[tokio::test]
async fn rejects_header_alg_not_bound_to_the_key() {
    let fx = Fixture::new().await;
    let es = sign(fx.token().key("es256-1"));
    fx.accepts(&es).await;
    // RS256 named, kid of the ES256 key (signature made with the ES256 key).
    let confused = sign(fx.token().key("es256-1").header_alg("RS256"));
    fx.rejects(&confused, InvalidToken::DisallowedAlgorithm)
        .await;
    // The RSA key is published with alg RS256: PS256 over it is refused too (the JWK alg binds).
    let ps_over_rs = sign(fx.token().key("rs256-1").header_alg("PS256"));
    fx.rejects(&ps_over_rs, InvalidToken::DisallowedAlgorithm)
        .await;
    // ES384 over the P-256 key.
    let es384 = sign(fx.token().key("es256-1").header_alg("ES384"));
    fx.rejects(&es384, InvalidToken::DisallowedAlgorithm).await;
}

#[tokio::test]
async fn rejects_a_kid_naming_a_key_of_another_type() {
    let fx = Fixture::new().await;
    fx.accepts(&sign(fx.token().key("rs256-1"))).await;
    fx.accepts(&sign(fx.token().key("eddsa-1"))).await;
    // Signed (and labelled) RS256 with the RSA key, but the kid names the EC key.
    let rsa_as_ec = sign(fx.token().key("rs256-1").header_kid(Some("es256-1")));
    fx.rejects(&rsa_as_ec, InvalidToken::DisallowedAlgorithm)
        .await;
    // EdDSA token naming the RSA key.
    let ed_as_rsa = sign(fx.token().key("eddsa-1").header_kid(Some("rs256-1")));
    fx.rejects(&ed_as_rsa, InvalidToken::DisallowedAlgorithm)
        .await;
    // ES384 token naming the ES256 key (same kty, other curve).
    let p384_as_p256 = sign(fx.token().key("es384-1").header_kid(Some("es256-1")));
    fx.rejects(&p384_as_p256, InvalidToken::DisallowedAlgorithm)
        .await;
}

#[tokio::test]
async fn rejects_algorithms_outside_a_restricted_allow_list() {
    let fx = Fixture::with(DevIssuer::builder(), |b| b.algorithms([Algorithm::ES256])).await;
    fx.accepts(&sign(fx.token().key("es256-1"))).await;
    for kid in ["rs256-1", "es384-1", "eddsa-1"] {
        fx.rejects(
            &sign(fx.token().key(kid)),
            InvalidToken::DisallowedAlgorithm,
        )
        .await;
    }
}

#[tokio::test]
async fn typ_must_be_at_jwt_unless_jwt_is_allowed() {
    let issuer = start(DevIssuer::builder()).await;
    let strict = validator_for(&issuer, |b| b).await;
    let lenient = validator_for(&issuer, |b| b.allow_jwt_typ(true)).await;
    let at_jwt = sign(issuer.token().audience(AUD));
    let no_typ = sign(issuer.token().audience(AUD).typ(None));
    let jwt = sign(issuer.token().audience(AUD).typ(Some("JWT")));
    let app_jwt = sign(issuer.token().audience(AUD).typ(Some("application/jwt")));
    let other = sign(issuer.token().audience(AUD).typ(Some("JOSE")));
    let id_token = sign(issuer.token().audience(AUD).typ(Some("id_token+jwt")));

    assert_accepts(&strict, &at_jwt).await;
    assert_rejects(&strict, &no_typ, InvalidToken::WrongType).await;
    assert_rejects(&strict, &jwt, InvalidToken::WrongType).await;
    assert_rejects(&strict, &app_jwt, InvalidToken::WrongType).await;
    assert_rejects(&strict, &other, InvalidToken::WrongType).await;

    assert_accepts(&lenient, &at_jwt).await;
    assert_accepts(&lenient, &no_typ).await;
    assert_accepts(&lenient, &jwt).await;
    assert_accepts(&lenient, &app_jwt).await;
    assert_rejects(&lenient, &other, InvalidToken::WrongType).await;
    assert_rejects(&lenient, &id_token, InvalidToken::WrongType).await;
    // A non-string typ is no type at all.
    let numeric = sign(issuer.token().audience(AUD).header_param("typ", json!(1)));
    assert_rejects(&strict, &numeric, InvalidToken::WrongType).await;
}

#[tokio::test]
async fn typ_is_case_insensitive() {
    let fx = Fixture::new().await;
    for typ in [
        "at+jwt",
        "AT+JWT",
        "At+Jwt",
        "application/at+jwt",
        "Application/AT+JWT",
    ] {
        fx.accepts(&sign(fx.token().typ(Some(typ)))).await;
    }
    for typ in [
        "at+jwt ",
        "application/at+jwt; charset=utf-8",
        "atjwt",
        "application/",
    ] {
        fx.rejects(&sign(fx.token().typ(Some(typ))), InvalidToken::WrongType)
            .await;
    }
}

#[tokio::test]
async fn rejects_crit() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("x")] {
        let token = sign(fx.token().header_param("crit", crit));
        fx.rejects(&token, InvalidToken::UnsupportedCritical).await;
    }
}

#[tokio::test]
async fn key_location_header_parameters_are_never_used() {
    let fx = Fixture::new().await;
    let attacker = start(DevIssuer::builder().keys(&[KeyAlg::Rs256])).await;
    let mut attacker_jwk = attacker.public_jwks()["keys"][0].clone();
    attacker_jwk["kid"] = json!("attacker-key");
    let attacker_requests = || {
        [
            Endpoint::Jwks,
            Endpoint::OAuthMetadata,
            Endpoint::OpenIdMetadata,
        ]
        .map(|e| attacker.requests(e))
    };
    fx.accepts(&fx.good()).await;

    // Signed by the attacker's key, which is embedded (`jwk`) and pointed at (`jku`, `x5u`), with a kid
    // unknown to the trusted JWKS.
    let forged = |kid: &str| {
        sign(
            attacker
                .token()
                .audience(AUD)
                .claim("iss", json!(fx.issuer.issuer()))
                .header_kid(Some(kid))
                .header_param("jwk", attacker_jwk.clone())
                .header_param("jku", json!(attacker.jwks_uri()))
                .header_param("x5u", json!(attacker.jwks_uri()))
                .header_param(
                    "x5c",
                    json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
                ),
        )
    };
    fx.rejects(&forged("attacker-key"), InvalidToken::UnknownKey)
        .await;
    // Same, with a kid the trusted issuer has (both name their first key rs256-1).
    fx.rejects(&forged("rs256-1"), InvalidToken::BadSignature)
        .await;
    // No kid at all: the one trusted RS256 key is tried, not the embedded one.
    let no_kid = sign(
        attacker
            .token()
            .audience(AUD)
            .claim("iss", json!(fx.issuer.issuer()))
            .header_kid(None)
            .header_param("jwk", attacker_jwk.clone()),
    );
    fx.rejects(&no_kid, InvalidToken::BadSignature).await;

    // A good token carrying the same parameters is verified with the trusted key.
    let good_with_jku = sign(
        fx.token()
            .header_param("jku", json!(attacker.jwks_uri()))
            .header_param("x5u", json!(attacker.jwks_uri()))
            .header_param("jwk", attacker_jwk.clone()),
    );
    fx.accepts(&good_with_jku).await;
    // Members never read are never type-checked either (RFC 7515 §4: they may be ignored): a `jwk` that
    // is not even a key changes nothing. (Found by the `jwt_validator` fuzz target, where jsonwebtoken
    // differs; see fuzz/README.md.)
    for odd in [json!("fuzz-ed25519"), json!(42), json!(null), json!([])] {
        fx.accepts(&sign(
            fx.token()
                .header_param("jwk", odd.clone())
                .header_param("x5c", odd),
        ))
        .await;
    }
    assert_eq!(
        attacker_requests(),
        [0, 0, 0],
        "no request ever went to the URLs named in the header"
    );
}

#[tokio::test]
async fn rejects_a_wrong_issuer() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    for iss in [
        json!("https://evil.example.com"),
        json!(format!("{}/", fx.issuer.issuer())),
        json!(fx.issuer.issuer().to_uppercase()),
        json!([fx.issuer.issuer()]),
        json!(null),
    ] {
        let token = sign(fx.token().claim("iss", iss));
        fx.rejects(&token, InvalidToken::WrongIssuer).await;
    }
    fx.rejects(
        &sign(fx.token().remove_claim("iss")),
        InvalidToken::WrongIssuer,
    )
    .await;
}

#[tokio::test]
async fn issuer_trailing_slash_is_significant() {
    // Issuer with a trailing slash (discovered): tokens must carry it.
    let slash = Fixture::with(DevIssuer::builder().trailing_slash(true), |b| b).await;
    assert!(slash.issuer.issuer().ends_with('/'));
    slash.accepts(&slash.good()).await;
    let without = slash.issuer.issuer().trim_end_matches('/').to_owned();
    slash
        .rejects(
            &sign(slash.token().claim("iss", json!(without))),
            InvalidToken::WrongIssuer,
        )
        .await;

    // Issuer configured with a slash, tokens without: refused; with: accepted.
    let issuer = start(DevIssuer::builder()).await;
    let with_slash = format!("{}/", issuer.issuer());
    let validator = JwtValidator::builder(with_slash.clone())
        .jwks_uri(issuer.jwks_uri())
        .audience(AUD)
        .build()
        .unwrap();
    assert_accepts(
        &validator,
        &sign(issuer.token().audience(AUD).claim("iss", json!(with_slash))),
    )
    .await;
    assert_rejects(
        &validator,
        &sign(issuer.token().audience(AUD)),
        InvalidToken::WrongIssuer,
    )
    .await;
}

#[tokio::test]
async fn audience_must_name_the_resource() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    let in_array = fx
        .accepts(&sign(fx.issuer.token().audiences(&[OTHER, AUD])))
        .await;
    assert_eq!(in_array.audiences(), [OTHER, AUD]);
    fx.accepts(&sign(fx.issuer.token().audiences(&[AUD]))).await;

    fx.rejects(&sign(fx.issuer.token()), InvalidToken::WrongAudience)
        .await;
    fx.rejects(
        &sign(fx.issuer.token().audience(OTHER)),
        InvalidToken::WrongAudience,
    )
    .await;
    fx.rejects(
        &sign(
            fx.issuer
                .token()
                .audiences(&[OTHER, "https://third.example.com"]),
        ),
        InvalidToken::WrongAudience,
    )
    .await;
    fx.rejects(
        &sign(fx.issuer.token().audiences(&[])),
        InvalidToken::WrongAudience,
    )
    .await;
    // Exact comparison: no prefix, suffix, case or trailing-slash games.
    for near in [
        format!("{AUD}/"),
        AUD.trim_end_matches("/mcp").to_owned(),
        AUD.to_uppercase(),
        format!("{AUD}x"),
    ] {
        fx.rejects(
            &sign(fx.issuer.token().audience(&near)),
            InvalidToken::WrongAudience,
        )
        .await;
    }
    // A wrongly typed aud is refused (the exact reason is not specified: WrongAudience or Malformed).
    for aud in [json!(42), json!({"aud": AUD}), json!([AUD, 42])] {
        let token = sign(fx.issuer.token().claim("aud", aud.clone()));
        match validate(&fx.validator, &token).await {
            Err(ValidationError::InvalidToken {
                reason: InvalidToken::WrongAudience | InvalidToken::Malformed,
                ..
            }) => {}
            other => panic!("aud {aud}: expected a rejection, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn audience_aliases_are_each_accepted() {
    const ALIAS: &str = "https://mcp-alias.example.com/mcp";
    // The main audience is configured twice: harmless.
    let fx = Fixture::with(DevIssuer::builder(), |b| b.audience(ALIAS).audience(AUD)).await;
    fx.accepts(&sign(fx.issuer.token().audience(AUD))).await;
    fx.accepts(&sign(fx.issuer.token().audience(ALIAS))).await;
    fx.accepts(&sign(fx.issuer.token().audiences(&[OTHER, ALIAS])))
        .await;
    fx.rejects(
        &sign(fx.issuer.token().audience(OTHER)),
        InvalidToken::WrongAudience,
    )
    .await;
    let audiences = fx.validator.audiences();
    assert!(audiences.contains(&AUD) && audiences.contains(&ALIAS));
}

#[tokio::test]
async fn exp_is_required_and_enforced() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    fx.rejects(
        &sign(fx.token().remove_claim("exp")),
        InvalidToken::MissingClaim,
    )
    .await;
    fx.rejects(
        &sign(fx.token().claim("exp", json!("9999999999"))),
        InvalidToken::MissingClaim,
    )
    .await;
    fx.rejects(
        &sign(fx.token().claim("exp", json!(null))),
        InvalidToken::MissingClaim,
    )
    .await;
    fx.rejects(&sign(fx.token().expires_in(-3600)), InvalidToken::Expired)
        .await;
    fx.rejects(
        &sign(fx.token().claim("exp", json!(0))),
        InvalidToken::Expired,
    )
    .await;
    fx.rejects(
        &sign(fx.token().claim("exp", json!(-1))),
        InvalidToken::Expired,
    )
    .await;
}

#[tokio::test]
async fn nbf_and_iat_must_not_be_in_the_future() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    fx.accepts(&sign(fx.token().not_before(-10).issued_at(-10)))
        .await;
    fx.accepts(&sign(fx.token().remove_claim("iat"))).await;
    fx.rejects(
        &sign(fx.token().not_before(3600)),
        InvalidToken::NotYetValid,
    )
    .await;
    fx.rejects(&sign(fx.token().issued_at(3600)), InvalidToken::NotYetValid)
        .await;
    fx.rejects(
        &sign(fx.token().claim("nbf", json!("soon"))),
        InvalidToken::MissingClaim,
    )
    .await;
}

#[tokio::test]
async fn leeway_boundaries() {
    let issuer = start(DevIssuer::builder()).await;
    let sixty = validator_for(&issuer, |b| b.leeway(Duration::from_secs(60))).await;
    let zero = validator_for(&issuer, |b| b.leeway(Duration::ZERO)).await;
    let token = || issuer.token().audience(AUD);

    // exp: 55 s ago is within 60 s of leeway, 65 s ago is not.
    let recently_expired = sign(token().expires_in(-55));
    assert_accepts(&sixty, &recently_expired).await;
    assert_rejects(&zero, &recently_expired, InvalidToken::Expired).await;
    assert_rejects(
        &sixty,
        &sign(token().expires_in(-65)),
        InvalidToken::Expired,
    )
    .await;

    // nbf and iat: 55 s ahead is tolerated, 65 s ahead is not.
    let soon = sign(token().not_before(55));
    assert_accepts(&sixty, &soon).await;
    assert_rejects(&zero, &soon, InvalidToken::NotYetValid).await;
    assert_rejects(
        &sixty,
        &sign(token().not_before(65)),
        InvalidToken::NotYetValid,
    )
    .await;
    assert_accepts(&sixty, &sign(token().issued_at(55))).await;
    assert_rejects(
        &sixty,
        &sign(token().issued_at(65)),
        InvalidToken::NotYetValid,
    )
    .await;

    // Without leeway a fresh token is fine.
    assert_accepts(&zero, &sign(token())).await;
}

#[tokio::test]
async fn missing_kid_is_accepted_only_when_exactly_one_key_fits() {
    // One RSA key (among keys of other types): a kid-less RS256 token finds it.
    let one = Fixture::new().await;
    one.accepts(&sign(one.token().header_kid(None))).await;
    one.accepts(&sign(one.token().key("es256-1").header_kid(None)))
        .await;

    // Two RSA keys: a kid-less RS256 token is ambiguous.
    let two = Fixture::with(
        DevIssuer::builder().keys(&[KeyAlg::Rs256, KeyAlg::Rs256]),
        |b| b,
    )
    .await;
    two.accepts(&sign(two.token().key("rs256-1"))).await;
    two.accepts(&sign(two.token().key("rs256-2"))).await;
    two.rejects(
        &sign(two.token().header_kid(None)),
        InvalidToken::UnknownKey,
    )
    .await;
    two.rejects(
        &sign(two.token().key("rs256-2").header_kid(None)),
        InvalidToken::UnknownKey,
    )
    .await;
}

#[tokio::test]
async fn duplicate_members_are_malformed_before_any_key_or_signature_work() {
    let fx = Fixture::new().await;
    let good = fx.good();
    fx.accepts(&good).await;
    let mut parts = good.split('.');
    let (_, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let jwks_before = fx.issuer.requests(Endpoint::Jwks);

    // Duplicate `alg` in the header; the kid is unknown, so reaching key selection would fetch the JWKS.
    let dup_header =
        b64(br#"{"alg":"RS256","typ":"at+jwt","kid":"never-published","alg":"RS256"}"#);
    fx.rejects(
        &format!("{dup_header}.{payload}.{signature}"),
        InvalidToken::Malformed,
    )
    .await;
    let dup_alg_none = b64(br#"{"alg":"RS256","alg":"none","typ":"at+jwt","kid":"rs256-1"}"#);
    fx.rejects(
        &format!("{dup_alg_none}.{payload}.{signature}"),
        InvalidToken::Malformed,
    )
    .await;

    // Duplicate claim in the payload.
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let mut text = serde_json::to_string(&claims).unwrap();
    text.insert_str(1, r#""sub":"attacker","#);
    let dup_payload = b64(text.as_bytes());
    let header = good.split('.').next().unwrap();
    fx.rejects(
        &format!("{header}.{dup_payload}.{signature}"),
        InvalidToken::Malformed,
    )
    .await;
    assert_eq!(
        fx.issuer.requests(Endpoint::Jwks),
        jwks_before,
        "a malformed token never causes a key fetch"
    );

    // The same hand-made header without the duplicate passes the structure checks and fails only at
    // the signature (the signature was made over another header).
    let single = b64(br#"{"alg":"RS256","typ":"at+jwt","kid":"rs256-1"}"#);
    fx.rejects(
        &format!("{single}.{payload}.{signature}"),
        InvalidToken::BadSignature,
    )
    .await;
}

#[tokio::test]
async fn structurally_broken_tokens_are_malformed() {
    let fx = Fixture::new().await;
    let good = fx.good();
    fx.accepts(&good).await;
    let (header, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let cases = [
        "not-a-jwt".to_owned(),
        format!("{header}.{payload}"),
        format!("{good}.{signature}"),
        format!("{good}."),
        format!("{header}.{payload}.{signature}.x.y"),
        format!(".{payload}.{signature}"),
        format!("{header}..{signature}"),
        // Standard-alphabet base64 characters are not base64url.
        format!("{header}+/.{payload}.{signature}"),
        format!("{header}.{payload}+.{signature}"),
        // A base64url length that cannot occur (one character in the last quantum).
        format!("{header}A.{payload}.{signature}"),
        // Valid base64url, not a JSON object.
        format!("{}.{payload}.{signature}", b64(b"hello")),
        format!("{}.{payload}.{signature}", b64(b"[1,2]")),
        format!("{header}.{}.{signature}", b64(b"\"a string\"")),
        format!("{}.{payload}.{signature}", b64(b"{\"alg\":\"RS256\"")),
        // Not UTF-8.
        format!("{header}.{}.{signature}", b64(b"{\"sub\":\"\xff\"}")),
        // A header without alg.
        format!(
            "{}.{payload}.{signature}",
            b64(br#"{"typ":"at+jwt","kid":"rs256-1"}"#)
        ),
    ];
    for case in &cases {
        fx.rejects(case, InvalidToken::Malformed).await;
    }
}

#[tokio::test]
async fn enc_oct_and_non_verify_keys_are_never_used() {
    const SECRET: &[u8] = b"a-shared-hmac-secret-of-32-bytes!";
    let issuer = start(DevIssuer::builder()).await;
    issuer.add_key_with("src", KeyAlg::Rs256, true).unwrap();
    let source_jwk = issuer.public_jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "src")
        .cloned()
        .unwrap();
    assert!(
        issuer.remove_key("src"),
        "only the copies below are published"
    );
    let copy = |kid: &str, changes: Value| {
        let mut jwk = source_jwk.clone();
        jwk["kid"] = json!(kid);
        for (name, value) in changes.as_object().unwrap() {
            jwk[name] = value.clone();
        }
        jwk
    };
    issuer.publish_extra_jwk(copy("sig-copy", json!({"use": "sig"})));
    issuer.publish_extra_jwk(copy("enc-copy", json!({"use": "enc"})));
    issuer.publish_extra_jwk(copy("ops-copy", json!({"key_ops": ["encrypt", "wrapKey"]})));
    issuer.publish_extra_jwk(
        json!({"kty": "oct", "kid": "hmac-1", "alg": "HS256", "k": b64(SECRET)}),
    );
    issuer.publish_extra_jwk(json!({"kty": "oct", "kid": "hmac-2", "k": b64(SECRET)}));
    let fx = Fixture::on(issuer, |b| b).await;

    // The same key material, published for signatures, verifies.
    fx.accepts(&sign(fx.token().key("src").header_kid(Some("sig-copy"))))
        .await;
    // Published for encryption, or without `verify` in key_ops: unknown.
    fx.rejects(
        &sign(fx.token().key("src").header_kid(Some("enc-copy"))),
        InvalidToken::UnknownKey,
    )
    .await;
    fx.rejects(
        &sign(fx.token().key("src").header_kid(Some("ops-copy"))),
        InvalidToken::UnknownKey,
    )
    .await;
    // HMAC with the published oct secret: HS256 cannot even be named.
    for kid in ["hmac-1", "hmac-2"] {
        let hmac = fx
            .token()
            .header_kid(Some(kid))
            .sign_hs256_with_secret(SECRET)
            .unwrap();
        fx.rejects(&hmac, InvalidToken::DisallowedAlgorithm).await;
    }
    // The oct key id with an RSA signature: the oct key is not a key at all.
    fx.rejects(
        &sign(fx.token().header_kid(Some("hmac-1"))),
        InvalidToken::UnknownKey,
    )
    .await;
}

#[tokio::test]
async fn a_far_future_exp_is_accepted_without_panicking() {
    let fx = Fixture::new().await;
    fx.accepts(&fx.good()).await;
    // Year 9999: an ordinary long-lived token.
    fx.accepts(&sign(fx.token().claim("exp", json!(253_402_300_799u64))))
        .await;
    // Absurdly large values are still numbers a (broken) issuer may sign; the validator must not panic.
    for exp in [json!(u64::MAX), json!(1e300), json!(i64::MAX)] {
        let token = sign(fx.token().claim("exp", exp.clone()));
        let validator = fx.validator.clone();
        let outcome = tokio::spawn(async move { validate(&validator, &token).await.is_ok() }).await;
        match outcome {
            Ok(accepted) => assert!(accepted, "exp {exp} is in the future: accepted"),
            Err(join) => panic!("the validator panicked on exp = {exp}: {join}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// C. Scopes and claims
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn scope_string_is_parsed() {
    let fx = Fixture::new().await;
    let access = fx
        .accepts(&sign(fx.token().scope("mcp:read mcp:write notes:read")))
        .await;
    let scopes = access.scopes();
    assert_eq!(scopes.len(), 3);
    for scope in ["mcp:read", "mcp:write", "notes:read"] {
        assert!(scopes.contains(scope), "{scope}");
    }
    assert!(!scopes.contains("mcp"));
    let none = fx.accepts(&sign(fx.token().remove_claim("scope"))).await;
    assert!(none.scopes().is_empty());
    // A scope claim that is not a string grants nothing.
    let odd = fx
        .accepts(&sign(fx.token().claim("scope", json!(["mcp:admin"]))))
        .await;
    assert!(!odd.scopes().contains("mcp:admin"));
}

#[tokio::test]
async fn scp_is_read_only_when_enabled() {
    let issuer = start(DevIssuer::builder()).await;
    let plain = validator_for(&issuer, |b| b).await;
    let with_scp = validator_for(&issuer, |b| b.scp_claim(true)).await;
    let scp_array = sign(
        issuer
            .token()
            .audience(AUD)
            .remove_claim("scope")
            .claim("scp", json!(["files.read", "files.write"])),
    );
    let scp_string = sign(
        issuer
            .token()
            .audience(AUD)
            .scope("mcp:read")
            .claim("scp", json!("files.read")),
    );

    let ignored = assert_accepts(&plain, &scp_array).await;
    assert!(ignored.scopes().is_empty(), "scp ignored by default");
    let read = assert_accepts(&with_scp, &scp_array).await;
    assert!(read.scopes().contains("files.read") && read.scopes().contains("files.write"));
    assert_eq!(read.scopes().len(), 2);

    let merged = assert_accepts(&with_scp, &scp_string).await;
    assert!(merged.scopes().contains("mcp:read") && merged.scopes().contains("files.read"));
    let only_scope = assert_accepts(&plain, &scp_string).await;
    assert!(only_scope.scopes().contains("mcp:read"));
    assert!(!only_scope.scopes().contains("files.read"));
}

#[tokio::test]
async fn custom_claims_are_typed() {
    #[derive(Debug, Deserialize)]
    struct Claims {
        sub: String,
        tenant: String,
        roles: Vec<String>,
        #[serde(default)]
        missing: Option<String>,
    }
    let fx = Fixture::new().await;
    let access = fx
        .accepts(&sign(
            fx.token()
                .claim("tenant", json!("acme"))
                .claim("roles", json!(["admin", "reader"])),
        ))
        .await;
    let claims: Claims = access.claims().expect("typed claims");
    assert_eq!(claims.sub, "test-user");
    assert_eq!(claims.tenant, "acme");
    assert_eq!(claims.roles, ["admin", "reader"]);
    assert!(claims.missing.is_none());
    assert_eq!(access.claim("tenant"), Some(&json!("acme")));
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        tenant: u32,
    }
    assert!(
        access.claims::<Strict>().is_err(),
        "a wrong type is an error, not a panic"
    );
}

#[tokio::test]
async fn standard_fields_are_populated() {
    let fx = Fixture::new().await;
    let token = sign(
        fx.token()
            .subject("alice")
            .audiences(&[AUD, OTHER])
            .claim("client_id", json!("client-7")),
    );
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let access = fx.accepts(&token).await;
    assert_eq!(access.subject(), Some("alice"));
    assert_eq!(access.client_id(), Some("client-7"));
    assert_eq!(access.issuer(), Some(fx.issuer.issuer()));
    assert_eq!(access.audiences(), [AUD, OTHER]);
    let exp = payload["exp"].as_u64().unwrap();
    assert_eq!(
        access.expires_at(),
        Some(UNIX_EPOCH + Duration::from_secs(exp))
    );
    assert_eq!(access.raw_claims()["jti"], payload["jti"]);
    // `azp` stands in for a missing client_id; no sub gives no subject.
    let azp = fx
        .accepts(&sign(
            fx.token()
                .remove_claim("client_id")
                .remove_claim("sub")
                .claim("azp", json!("client-azp")),
        ))
        .await;
    assert_eq!(azp.client_id(), Some("client-azp"));
    assert_eq!(azp.subject(), None);
    // A repeated validation (cache hit) gives the same answer.
    let again = fx.accepts(&token).await;
    assert_eq!(again.subject(), Some("alice"));
    assert_eq!(again.audiences(), [AUD, OTHER]);
}

#[tokio::test]
async fn string_claims_read_back_whether_escaped_or_not() {
    let fx = Fixture::new().await;
    // Unescaped (borrowed from the payload, multi-byte UTF-8 included) and escaped (copied) strings.
    let plain = fx
        .accepts(&sign(
            fx.token()
                .subject("ålice ✓")
                .audiences(&[AUD])
                .remove_claim("client_id")
                .claim("cid", json!("okta-client")),
        ))
        .await;
    assert_eq!(plain.subject(), Some("ålice ✓"));
    assert_eq!(plain.client_id(), Some("okta-client"));
    assert_eq!(plain.audiences(), [AUD]);
    let escaped = fx
        .accepts(&sign(
            fx.token()
                .subject("al\"ice\\\n")
                .remove_claim("client_id")
                .claim("appid", json!("app\tid")),
        ))
        .await;
    assert_eq!(escaped.subject(), Some("al\"ice\\\n"));
    assert_eq!(escaped.client_id(), Some("app\tid"));
    // A `sub` that is not a string is no subject; the raw claim is still there.
    let numeric = fx.accepts(&sign(fx.token().claim("sub", json!(42)))).await;
    assert_eq!(numeric.subject(), None);
    assert_eq!(numeric.raw_claims()["sub"], json!(42));
    // Debug shows the fields (never claim values beyond them).
    let debug = format!("{plain:?}");
    assert!(
        debug.contains("ålice ✓") && debug.contains("okta-client"),
        "{debug}"
    );
}

/// `MultiIssuer` and `FirstMatch` route a token already verified straight to the validator that cached it
/// (no payload decoding); a token of the other issuer, or an uncached forgery, is still routed by `iss`.
#[tokio::test]
async fn cached_tokens_are_routed_to_the_validator_that_verified_them() {
    use bearer_guard::{FirstMatch, MultiIssuer};
    let a = start(DevIssuer::builder()).await;
    let b = start(DevIssuer::builder()).await;
    let (va, vb) = (
        validator_for(&a, |v| v).await,
        validator_for(&b, |v| v).await,
    );
    let multi = MultiIssuer::new().issuer(va.clone()).issuer(vb.clone());
    let chain = FirstMatch::new().then(vb.clone()).then(va.clone());
    let token_a = sign(a.token().audience(AUD));
    let token_b = sign(b.token().audience(AUD));
    for round in 0..2 {
        let both: [std::sync::Arc<dyn TokenValidator>; 2] = [
            std::sync::Arc::new(multi.clone()),
            std::sync::Arc::new(chain.clone()),
        ];
        for validator in both {
            let access = assert_accepts(&validator, &token_a).await;
            assert_eq!(access.issuer(), Some(a.issuer()), "round {round}");
            let access = assert_accepts(&validator, &token_b).await;
            assert_eq!(access.issuer(), Some(b.issuer()), "round {round}");
        }
    }
    assert_eq!((va.cached_tokens(), vb.cached_tokens()), (1, 1));
    // A's token with B's signature: routed to A by `iss` (not cached anywhere), refused there.
    let forged = format!(
        "{}.{}",
        token_a.rsplit_once('.').unwrap().0,
        token_b.rsplit_once('.').unwrap().1
    );
    assert_rejects(&multi, &forged, InvalidToken::BadSignature).await;
    assert_rejects(&chain, &forged, InvalidToken::BadSignature).await;
}

/// The validator remembers the header of the last verified token (most tokens of an issuer share one) and
/// skips parsing it again; a header differing in any byte is checked in full, and the payload and the
/// signature are always checked.
#[tokio::test]
async fn a_remembered_header_excuses_nothing_else() {
    let fx = Fixture::new().await;
    let good = fx.good();
    fx.accepts(&good).await;
    // Same header bytes: payload and signature still checked.
    let tampered = fx.token().sign_with_tampered_payload().unwrap();
    assert_eq!(tampered.split('.').next(), good.split('.').next());
    fx.rejects(&tampered, InvalidToken::BadSignature).await;
    let expired = sign(fx.token().expires_in(-3600));
    assert_eq!(expired.split('.').next(), good.split('.').next());
    fx.rejects(&expired, InvalidToken::Expired).await;
    // Another header: checked in full, whatever was remembered.
    fx.rejects(&sign(fx.token().typ(Some("JWT"))), InvalidToken::WrongType)
        .await;
    fx.rejects(
        &sign(fx.token().header_param("crit", json!(["exp"]))),
        InvalidToken::UnsupportedCritical,
    )
    .await;
    fx.rejects(
        &sign(fx.token().header_alg("HS256")),
        InvalidToken::DisallowedAlgorithm,
    )
    .await;
    fx.accepts(&good).await;
}

// ---------------------------------------------------------------------------------------------------------
// Details for the operator's log: which check failed and with which values, never the token
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_refusal_names_its_check_in_a_log_only_detail() {
    let fx = Fixture::new().await;
    let issuer = fx.issuer.issuer().to_owned();
    let cases: Vec<(String, InvalidToken, String)> = vec![
        (
            sign(fx.issuer.token().audience(OTHER)),
            InvalidToken::WrongAudience,
            format!(r#"aud: expected "{AUD}", found "{OTHER}""#),
        ),
        (
            sign(fx.issuer.token().audiences(&[OTHER, "urn:x"])),
            InvalidToken::WrongAudience,
            format!(r#"aud: expected "{AUD}", found "{OTHER} urn:x""#),
        ),
        (
            sign(fx.token().claim("iss", json!("https://evil.example.com"))),
            InvalidToken::WrongIssuer,
            format!(r#"iss: expected "{issuer}", found "https://evil.example.com""#),
        ),
        (
            sign(fx.token().header_kid(Some("2019-retired"))),
            InvalidToken::UnknownKey,
            r#"kid "2019-retired""#.to_owned(),
        ),
        (
            sign(fx.token().typ(Some("id_token+jwt"))),
            InvalidToken::WrongType,
            r#"typ "id_token+jwt""#.to_owned(),
        ),
        (
            sign(fx.token().remove_claim("exp")),
            InvalidToken::MissingClaim,
            "no exp claim, or not a number".to_owned(),
        ),
    ];
    for (token, reason, expected) in cases {
        let error = validate(&fx.validator, &token).await.unwrap_err();
        assert_eq!(error.reason(), Some(reason), "{expected}");
        assert_eq!(error.kind(), reason.kind());
        let detail = error.detail().to_string();
        assert_eq!(detail, expected);
        // The client-facing text is the fixed description; neither the detail nor the token is in it.
        assert_eq!(
            error.to_string(),
            format!("invalid token: {}", reason.description())
        );
        let signature = token.rsplit('.').next().unwrap();
        assert!(!detail.contains(signature) && !format!("{error:?}").contains(signature));
    }

    // Times say how far off the clock they are.
    let expired = sign(fx.token().expires_in(-3600));
    let detail = validate(&fx.validator, &expired)
        .await
        .unwrap_err()
        .detail()
        .to_string();
    assert!(
        detail.starts_with("exp ") && detail.contains(" s before now ("),
        "{detail}"
    );
    let early = sign(fx.token().not_before(3600));
    let detail = validate(&fx.validator, &early)
        .await
        .unwrap_err()
        .detail()
        .to_string();
    assert!(
        detail.starts_with("nbf ") && detail.contains(" s after now ("),
        "{detail}"
    );

    // A value chosen by the caller is cut and cannot forge a log line.
    let forged = sign(
        fx.token()
            .header_kid(Some("a\nlevel=INFO msg=\"admin login\"")),
    );
    let detail = validate(&fx.validator, &forged)
        .await
        .unwrap_err()
        .detail()
        .to_string();
    assert!(!detail.contains('\n'), "{detail}");
    let long = "k".repeat(200);
    let detail = validate(&fx.validator, &sign(fx.token().header_kid(Some(&long))))
        .await
        .unwrap_err()
        .detail()
        .to_string();
    assert!(detail.len() < 120 && detail.ends_with("...\""), "{detail}");
}

#[test]
fn kinds_are_unique_snake_case_labels() {
    use bearer_guard::extract::MalformedRequest;
    use bearer_guard::Unavailable;
    let mut kinds: Vec<&str> = InvalidToken::ALL.iter().map(|r| r.kind()).collect();
    kinds.extend(Unavailable::ALL.iter().map(|r| r.kind()));
    kinds.extend(MalformedRequest::ALL.iter().map(|r| r.kind()));
    kinds.extend(["missing_credentials", "insufficient_scope", "internal"]);
    for kind in &kinds {
        assert!(
            !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{kind}"
        );
    }
    let count = kinds.len();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), count, "kinds must be unique");
}
