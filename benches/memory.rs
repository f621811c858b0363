//! Memory under a flood of distinct valid tokens: a `JwtValidator` (inline Ed25519 JWKS, verified-token
//! cache on) validates N distinct tokens (default 1 000 000, each signed here with aws-lc-rs); the cache must
//! stay within its capacity, and the resident memory is reported from `/proc/self/status` along the way.
//!
//! Not part of `cargo bench` or `cargo test` runs (~1 min on 2 cores); run it on purpose:
//!
//! ```text
//! cargo bench --bench memory -- run        # MEMORY_TOKENS (1000000), MEMORY_CACHE_CAPACITY (10000)
//! ```
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bearer_guard::{BearerToken, JwtValidator, TokenValidator, ValidationContext};
use serde_json::json;

const ISSUER: &str = "https://issuer.example.com";
const RESOURCE: &str = "https://api.example.com/mcp";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmRSS` and `VmHWM` (peak) of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn report(label: &str, validator: &JwtValidator) {
    let (rss, peak) = rss_kib();
    println!(
        "{label:<28} VmRSS {:>8.1} MiB   VmHWM {:>8.1} MiB   cached tokens {:>7}",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        validator.cached_tokens()
    );
}

fn main() {
    if !std::env::args().any(|a| a == "run") {
        eprintln!("memory: skipped (~1 min); run `cargo bench --bench memory -- run`");
        return;
    }
    let tokens = env_or("MEMORY_TOKENS", 1_000_000);
    let capacity = env_or("MEMORY_CACHE_CAPACITY", 10_000) as usize;
    let (rss0, _) = rss_kib();
    println!(
        "memory: {tokens} distinct valid EdDSA tokens, verified-token cache capacity {capacity}, 2 threads"
    );
    println!("{:<28} VmRSS {:>8.1} MiB", "start", rss0 as f64 / 1024.0);

    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwks = json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": "k", "alg": "EdDSA",
        "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
    }]});
    let validator = JwtValidator::builder(ISSUER)
        .audience(RESOURCE)
        .jwks(&jwks)
        .token_cache(capacity, Duration::from_secs(300))
        .build()
        .unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"at+jwt","kid":"k"}"#);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mint = |i: u64| {
        let claims = json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": format!("user-{i}"), "client_id": "load-client",
            "scope": "mcp:read mcp:write", "iat": now, "exp": now + 3600, "jti": format!("jti-{i:016x}"),
        });
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    };
    let sample = mint(0);
    println!("token size: {} bytes", sample.len());
    report("validator built", &validator);

    let context = ValidationContext::new(RESOURCE);
    let started = Instant::now();
    let mut done = 0u64;
    for checkpoint in [1_000u64, 10_000, 100_000, 1_000_000, 10_000_000] {
        let target = checkpoint.min(tokens);
        if target <= done {
            continue;
        }
        let (from, to) = (done, target);
        std::thread::scope(|scope| {
            for part in 0..2u64 {
                let (validator, mint, context) = (&validator, &mint, &context);
                scope.spawn(move || {
                    for i in (from..to).filter(|i| i % 2 == part) {
                        let token = BearerToken::new(&mint(i)).unwrap();
                        let result = validator
                            .validate(&token, context)
                            .into_ready()
                            .expect("synchronous");
                        assert!(black_box(result).is_ok(), "token {i} refused");
                    }
                });
            }
        });
        done = target;
        report(&format!("after {done} tokens"), &validator);
        assert!(
            validator.cached_tokens() <= capacity,
            "the cache holds {} tokens, over its capacity {capacity}",
            validator.cached_tokens()
        );
        if done == tokens {
            break;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{done} tokens minted and validated in {:.1} s ({:.1} µs per token, 2 threads)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / done as f64 * 2.0
    );
}
