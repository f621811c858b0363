#![no_main]
//! `JwtValidator` over an inline JWKS (an Ed25519 key and an ES256 key). The first input byte picks what
//! the rest is:
//! - `0`: the raw token text;
//! - `1`: the payload (claims JSON), under a valid EdDSA signature and a valid header;
//! - `2`: the JOSE header, over valid claims, signed with EdDSA;
//! - `3`: header and payload separated by `\n`, signed.
//!
//! Oracles: the validator never panics; whatever it accepts, jsonwebtoken 11's strict decode (same key,
//! algorithm, issuer, audience, `exp` required, `nbf` checked, same leeway) accepts too, except for the
//! benign differences below; and a fresh validator, a warm one (verified-token cache, header memo) and
//! the same warm one asked again decide the same.
//!
//! Benign differences (checked, not reported):
//! - numeric dates that are not integers (`exp: 1.5e9`), which RFC 7519 allows and jsonwebtoken refuses;
//! - header members this crate never uses (`jwk`, `jku`, `x5u`, `x5c`, `x5t`, `x5t#S256`, `cty`), which it
//!   ignores as RFC 7515 §4 allows, while jsonwebtoken parses them into types: then the same token
//!   re-signed without those members must be accepted by jsonwebtoken.

use std::sync::OnceLock;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bearer_guard::{BearerToken, JwtValidator, TokenValidator, ValidationContext};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const KID: &str = "fuzz-ed25519";

struct Fixture {
    key: Ed25519KeyPair,
    jwks: Value,
    warm: JwtValidator,
    context: ValidationContext,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).expect("seed");
        let x = URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
        let jwks = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KID, "alg": "EdDSA", "use": "sig"},
        ]});
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let warm = runtime.block_on(async { validator(&jwks) });
        Fixture {
            key,
            jwks,
            warm,
            context: ValidationContext::new(RESOURCE),
            runtime,
        }
    })
}

fn validator(jwks: &Value) -> JwtValidator {
    JwtValidator::builder(ISSUER)
        .jwks(jwks)
        .build()
        .expect("validator")
}

fn good_header() -> String {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": KID}).to_string()
}

fn good_claims() -> String {
    json!({"iss": ISSUER, "aud": RESOURCE, "sub": "u", "exp": 4_000_000_000u64, "iat": 1_700_000_000u64, "scope": "mcp:read"})
        .to_string()
}

fn signed(fx: &Fixture, header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = fx.key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// jsonwebtoken 11's verdict on the same token with the same rules.
fn jsonwebtoken_accepts(token: &str, jwks: &Value) -> bool {
    let x = jwks["keys"][0]["x"].as_str().unwrap_or_default();
    let Ok(key) = jsonwebtoken::DecodingKey::from_ed_components(x) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[RESOURCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = 60;
    jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
}

/// Does the payload hold a numeric date that is not an integer (a benign difference)?
fn has_fractional_date(token: &str) -> bool {
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload) else {
        return false;
    };
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(&bytes) else {
        return false;
    };
    ["exp", "nbf", "iat"]
        .iter()
        .any(|name| claims.get(*name).is_some_and(|v| v.is_f64()))
}

/// Header members this crate never reads (and so never type-checks).
const UNUSED_HEADER_MEMBERS: [&str; 7] = ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "cty"];

/// The token re-signed with its header minus [`UNUSED_HEADER_MEMBERS`], if it had any.
fn without_unused_header_members(fx: &Fixture, token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    let Value::Object(mut header) = serde_json::from_slice::<Value>(&header).ok()? else {
        return None;
    };
    let before = header.len();
    for member in UNUSED_HEADER_MEMBERS {
        header.remove(member);
    }
    (header.len() < before)
        .then(|| signed(fx, Value::Object(header).to_string().as_bytes(), &payload))
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = match mode % 4 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => signed(fx, good_header().as_bytes(), rest),
        2 => signed(fx, rest, good_claims().as_bytes()),
        _ => {
            let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b""[..]),
            };
            signed(fx, header, payload)
        }
    };
    let Some(bearer) = BearerToken::new(&token) else {
        return;
    };
    let decide = |validator: &JwtValidator| {
        let token = BearerToken::new(&token).expect("b64token");
        fx.runtime
            .block_on(validator.validate(&token, &fx.context))
            .map(|access| access.subject().map(str::to_owned))
    };
    let fresh = fx.runtime.block_on(async { validator(&fx.jwks) });
    let first = decide(&fresh);
    let warm = decide(&fx.warm);
    let again = decide(&fx.warm);
    assert_eq!(first, warm, "a fresh and a warm validator disagree");
    assert_eq!(
        warm, again,
        "the warm validator changed its mind (cache, header memo)"
    );
    if first.is_ok()
        && !has_fractional_date(&token)
        && !jsonwebtoken_accepts(bearer.as_str(), &fx.jwks)
    {
        let resigned = without_unused_header_members(fx, &token);
        assert!(
            resigned.is_some_and(|t| jsonwebtoken_accepts(&t, &fx.jwks)),
            "accepted here, refused by jsonwebtoken"
        );
    }
});
