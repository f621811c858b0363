//! JWT validation against its floor, the signature check alone.
//!
//! - `verify/<ALG>/floor`: aws-lc-rs verifies the token's signing input and signature (key parsed once,
//!   signature decoded once, outside the loop): what no validator can beat.
//! - `verify/<ALG>/jwt_validator`: `JwtValidator::validate` on the same token, keys cached (inline JWKS),
//!   verified-token cache off: structure, header, claims, key choice, signature, `AccessToken`.
//! - `verify/<ALG>/cache_hit`: the same with the verified-token cache on and the token already in it (a
//!   new `BearerToken` each time, so the token is hashed each time, as for a request).
//! - `key_set/<N>`: an EdDSA token whose key sits last in a JWKS of N keys (cache off).
//! - `token_size/{floor,jwt_validator,cache_hit}/<BYTES>`: ES256 tokens of 0.5 to 8 KiB.
//!
//! `cargo bench --bench verify` (the ratios: `python3 benches/report.py`).
use std::hint::black_box;

use bearer_guard::testkit::{DevIssuer, KeyAlg};
use bearer_guard::{BearerToken, TokenValidator};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use serde_json::{json, Value};

mod common;
use common::{assert_accepts, kid, tamper, token, validator, Floor, ALGS};

fn validate(v: &bearer_guard::JwtValidator, token: &BearerToken) -> bool {
    matches!(v.validate(token, common::context()).into_ready(), Ok(Ok(_)))
}

fn per_algorithm(c: &mut Criterion, issuer: &DevIssuer) {
    let jwks = issuer.public_jwks();
    let no_cache = validator(issuer, &jwks, false);
    let cached = validator(issuer, &jwks, true);
    for alg in ALGS {
        let kid = kid(alg);
        let jwt = token(issuer, &kid, None);
        let floor = Floor::new(&jwks, &kid, alg, &jwt);
        assert_accepts(&no_cache, &jwt);
        assert_accepts(&cached, &jwt);
        let bearer = BearerToken::new(&jwt).unwrap();
        let mut group = c.benchmark_group(format!("verify/{}", alg.as_str()));
        group.bench_function("floor", |b| b.iter(|| black_box(floor.verify())));
        group.bench_function("jwt_validator", |b| {
            b.iter(|| black_box(validate(&no_cache, black_box(&bearer))))
        });
        // A new `BearerToken` per request, as the layer makes one (it keeps the token's hash once computed).
        group.bench_function("cache_hit", |b| {
            b.iter_batched(
                || BearerToken::new(&jwt).unwrap(),
                |fresh| black_box(validate(&cached, &fresh)),
                BatchSize::SmallInput,
            )
        });
        if alg == KeyAlg::Rs256 {
            // A bad signature costs what a good one does: the crypto work a forged token buys.
            let forged = BearerToken::new(&tamper(&jwt)).unwrap();
            assert!(!validate(&no_cache, &forged));
            group.bench_function("bad_signature", |b| {
                b.iter(|| black_box(validate(&no_cache, black_box(&forged))))
            });
        }
        group.finish();
        eprintln!("{}: token {} bytes", alg.as_str(), jwt.len());
        let ratio = common::paired_ratio(
            || floor.verify(),
            || validate(&no_cache, black_box(&bearer)),
        );
        common::record_paired(&format!("verify/{}", alg.as_str()), ratio);
    }
}

fn key_sets(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    // The measured key is the last of the set; the others are EdDSA keys of another issuer.
    let issuer = rt
        .block_on(DevIssuer::builder().keys(&[KeyAlg::EdDsa]).start())
        .unwrap();
    let others = rt.block_on(DevIssuer::builder().keys(&[]).start()).unwrap();
    for _ in 0..99 {
        others.add_key(KeyAlg::EdDsa).unwrap();
    }
    let mut other_keys: Vec<Value> = others.public_jwks()["keys"].as_array().unwrap().clone();
    for (i, key) in other_keys.iter_mut().enumerate() {
        key["kid"] = Value::from(format!("other-{i}"));
    }
    let own = issuer.public_jwks()["keys"][0].clone();
    let jwt = token(&issuer, &kid(KeyAlg::EdDsa), None);
    let bearer = BearerToken::new(&jwt).unwrap();
    let mut group = c.benchmark_group("key_set");
    for n in [1usize, 10, 100] {
        let mut keys: Vec<Value> = other_keys[..n - 1].to_vec();
        keys.push(own.clone());
        let v = validator(&issuer, &json!({ "keys": keys }), false);
        assert_accepts(&v, &jwt);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(validate(&v, black_box(&bearer))))
        });
    }
    group.finish();
}

fn token_sizes(c: &mut Criterion, issuer: &DevIssuer) {
    let jwks = issuer.public_jwks();
    let no_cache = validator(issuer, &jwks, false);
    let cached = validator(issuer, &jwks, true);
    let kid = kid(KeyAlg::Es256);
    let mut group = c.benchmark_group("token_size");
    for size in [512usize, 1024, 2048, 4096, 8192] {
        let jwt = token(issuer, &kid, Some(size));
        let floor = Floor::new(&jwks, &kid, KeyAlg::Es256, &jwt);
        assert_accepts(&no_cache, &jwt);
        assert_accepts(&cached, &jwt);
        let bearer = BearerToken::new(&jwt).unwrap();
        group.bench_with_input(BenchmarkId::new("floor", size), &size, |b, _| {
            b.iter(|| black_box(floor.verify()))
        });
        group.bench_with_input(BenchmarkId::new("jwt_validator", size), &size, |b, _| {
            b.iter(|| black_box(validate(&no_cache, black_box(&bearer))))
        });
        group.bench_with_input(BenchmarkId::new("cache_hit", size), &size, |b, _| {
            b.iter_batched(
                || BearerToken::new(&jwt).unwrap(),
                |fresh| black_box(validate(&cached, &fresh)),
                BatchSize::SmallInput,
            )
        });
        let ratio = common::paired_ratio(
            || floor.verify(),
            || validate(&no_cache, black_box(&bearer)),
        );
        common::record_paired(&format!("token_size/{size}"), ratio);
    }
    group.finish();
}

/// The verified-token cache is keyed by the token's SHA-256: which implementation hashes a token faster?
fn sha256(c: &mut Criterion) {
    use sha2::Digest as _;
    let mut group = c.benchmark_group("sha256");
    for size in [700usize, 8192] {
        let data = vec![b'a'; size];
        group.bench_with_input(BenchmarkId::new("sha2", size), &size, |b, _| {
            b.iter(|| black_box(<[u8; 32]>::from(sha2::Sha256::digest(black_box(&data)))))
        });
        group.bench_with_input(BenchmarkId::new("aws_lc_rs", size), &size, |b, _| {
            b.iter(|| {
                let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&data));
                let mut out = [0u8; 32];
                out.copy_from_slice(d.as_ref());
                black_box(out)
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    sha256(c);
    let rt = common::runtime();
    let issuer = common::issuer(&rt);
    per_algorithm(c, &issuer);
    key_sets(c, &rt);
    token_sizes(c, &issuer);
}

criterion_group! {
    name = verify;
    config = common::criterion();
    targets = benches
}
criterion_main!(verify);
