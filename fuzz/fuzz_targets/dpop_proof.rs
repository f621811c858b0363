#![no_main]
//! DPoP proofs (RFC 9449 §4.3) through the guard. The input is a proof's header JSON and claims JSON,
//! separated by a 0x00 byte, which the target signs with its own Ed25519 proof key, so the fuzzer explores
//! every check past the signature; a token bound to that key (`cnf.jkt`) goes with it. Placeholders let it
//! reach the valid values: the string `"X"` as a `jwk` `x` becomes the proof key, `"ATH"` the token hash,
//! `"HTU"` the resource URL and `"NOW"` the current time. A raw `DPoP` header value (no 0x00) is sent as is.
//!
//! Oracles: no panic; a request let through had a proof with `typ: dpop+jwt`, `alg: EdDSA`, exactly our
//! public `jwk` (no private member), no `crit`, `htm: POST`, the right `ath`, an `iat` within five minutes
//! and a `jti` that was never let through before (replays refused).

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bearer_guard::bind::dpop::{DpopConfig, DpopMode};
use bearer_guard::{BearerAuthLayer, JwtValidator};
use http::{HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tower::{Layer, ServiceExt};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";

struct Fixture {
    proof_key: Ed25519KeyPair,
    x: String,
    token: String,
    ath: String,
    layer: BearerAuthLayer,
    accepted_jtis: Mutex<HashSet<String>>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(key: &Ed25519KeyPair, header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.as_ref()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let issuer_key = Ed25519KeyPair::from_seed_unchecked(&[3u8; 32]).expect("seed");
        let proof_key = Ed25519KeyPair::from_seed_unchecked(&[5u8; 32]).expect("seed");
        let x = b64(proof_key.public_key().as_ref());
        let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let jkt = b64(digest(&SHA256, thumbprint_input.as_bytes()).as_ref());
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k"}).to_string();
        let claims = json!({"iss": ISSUER, "aud": RESOURCE, "sub": "u", "exp": 4_000_000_000u64,
            "iat": 1_700_000_000u64, "cnf": {"jkt": jkt}})
        .to_string();
        let token = sign(&issuer_key, header.as_bytes(), claims.as_bytes());
        let ath = b64(digest(&SHA256, token.as_bytes()).as_ref());
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k",
            "x": b64(issuer_key.public_key().as_ref())}]});
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let validator = runtime
            .block_on(async { JwtValidator::builder(ISSUER).jwks(&jwks).build() })
            .expect("validator");
        let layer = BearerAuthLayer::builder()
            .resource(RESOURCE)
            .authorization_server(ISSUER)
            .validator(validator)
            .dpop(DpopConfig::new(DpopMode::Required))
            .build()
            .expect("layer");
        Fixture {
            proof_key,
            x,
            token,
            ath,
            layer,
            accepted_jtis: Mutex::new(HashSet::new()),
        }
    })
}

/// Replaces the placeholders in a JSON document; other input is left as the fuzzer wrote it.
fn substitute(fx: &Fixture, part: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(part) else {
        return part.to_vec();
    };
    if let Some(object) = value.as_object_mut() {
        for (_, member) in object.iter_mut() {
            match member.as_str() {
                Some("ATH") => *member = json!(fx.ath),
                Some("HTU") => *member = json!(RESOURCE),
                Some("NOW") => *member = json!(now()),
                _ => {}
            }
        }
        if let Some(jwk) = object.get_mut("jwk").and_then(Value::as_object_mut) {
            if jwk.get("x") == Some(&json!("X")) {
                jwk.insert("x".into(), json!(fx.x));
            }
        }
    }
    value.to_string().into_bytes()
}

/// What a proof let through must have been (checked on what was signed, after substitution).
fn check_accepted(fx: &Fixture, header: &Value, claims: &Value) {
    assert_eq!(header["typ"], "dpop+jwt", "{header}");
    assert_eq!(header["alg"], "EdDSA", "{header}");
    assert!(header.get("crit").is_none(), "{header}");
    let jwk = header["jwk"].as_object().expect("a jwk object");
    assert_eq!(jwk.get("x"), Some(&json!(fx.x)), "{header}");
    assert!(jwk.get("d").is_none(), "a private jwk was accepted: {header}");
    assert_eq!(claims["htm"], "POST", "{claims}");
    assert_eq!(claims["ath"], json!(fx.ath), "{claims}");
    let iat = claims["iat"].as_f64().expect("a numeric iat");
    assert!((iat - now() as f64).abs() <= 301.0, "{claims}");
    let jti = claims["jti"].as_str().expect("a string jti");
    let fresh = fx
        .accepted_jtis
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(jti.to_owned());
    assert!(fresh, "a replayed proof was accepted: {claims}");
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let (proof, signed) = match data.iter().position(|&b| b == 0) {
        Some(split) => {
            let header = substitute(fx, &data[..split]);
            let claims = substitute(fx, &data[split + 1..]);
            (sign(&fx.proof_key, &header, &claims), Some((header, claims)))
        }
        None => (String::from_utf8_lossy(data).into_owned(), None),
    };
    let Ok(proof) = HeaderValue::from_str(&proof) else {
        return;
    };
    let request = Request::post(RESOURCE)
        .header("authorization", format!("DPoP {}", fx.token))
        .header("dpop", proof)
        .body(())
        .expect("request");
    let inner = tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let response = futures_now(fx.layer.layer(inner).oneshot(request))
        .expect("decided synchronously")
        .expect("infallible");
    if response.status() == 200 {
        let (header, claims) = signed.expect("an unsigned proof was accepted");
        let header: Value = serde_json::from_slice(&header).expect("JSON header");
        let claims: Value = serde_json::from_slice(&claims).expect("JSON claims");
        check_accepted(fx, &header, &claims);
    }
});

/// Polls a future once with a no-op waker (the guard decides synchronously here: keys inline, memory store).
fn futures_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}
