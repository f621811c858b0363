#![no_main]
//! JWKS documents: any JSON given as the inline key set. Oracles: `build()` accepts or refuses, never
//! panics; a validator built from it accepts a token signed with our Ed25519 key only if the document
//! publishes that very public key (as an OKP Ed25519 JWK, not an `oct`, not a private key, not `use: enc`),
//! and never accepts a token whose signature is junk.

use std::sync::OnceLock;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bearer_guard::{BearerToken, JwtValidator, TokenValidator, ValidationContext};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";

struct Fixture {
    x: String,
    tokens: Vec<(String, bool)>,
    context: ValidationContext,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]).expect("seed");
        let claims = json!({"iss": ISSUER, "aud": RESOURCE, "exp": 4_000_000_000u64}).to_string();
        let sign = |header: Value, junk: bool| {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(&claims)
            );
            let signature = if junk {
                vec![0u8; 64]
            } else {
                key.sign(input.as_bytes()).as_ref().to_vec()
            };
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        };
        let tokens = vec![
            (
                sign(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k"}), false),
                true,
            ),
            (sign(json!({"alg": "EdDSA", "typ": "at+jwt"}), false), true),
            (
                sign(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k"}), true),
                false,
            ),
            (
                sign(json!({"alg": "RS256", "typ": "at+jwt", "kid": "k"}), false),
                false,
            ),
            (
                sign(json!({"alg": "HS256", "typ": "at+jwt", "kid": "k"}), false),
                false,
            ),
        ];
        Fixture {
            x: URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
            tokens,
            context: ValidationContext::new(RESOURCE),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    })
}

/// Does `jwks` publish our public key as a verification key?
fn publishes_our_key(jwks: &Value, x: &str) -> bool {
    jwks.get("keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| {
            keys.iter().any(|k| {
                k.get("kty") == Some(&json!("OKP"))
                    && k.get("crv") == Some(&json!("Ed25519"))
                    && k.get("x") == Some(&json!(x))
                    && k.get("d").is_none()
                    && k.get("use").is_none_or(|u| u == "sig")
            })
        })
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let Ok(mut jwks) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // Let the fuzzer write "X" where our key goes.
    if let Some(keys) = jwks.get_mut("keys").and_then(Value::as_array_mut) {
        for key in keys {
            if key.get("x") == Some(&json!("X")) {
                key["x"] = json!(fx.x);
            }
        }
    }
    let Ok(validator) = fx
        .runtime
        .block_on(async { JwtValidator::builder(ISSUER).jwks(&jwks).build() })
    else {
        return;
    };
    for (token, signed_by_us) in &fx.tokens {
        let bearer = BearerToken::new(token).expect("b64token");
        let accepted = fx
            .runtime
            .block_on(validator.validate(&bearer, &fx.context))
            .is_ok();
        if accepted {
            assert!(
                *signed_by_us,
                "a token with a junk or foreign signature was accepted"
            );
            assert!(
                publishes_our_key(&jwks, &fx.x),
                "accepted without our key being published"
            );
        }
    }
});
