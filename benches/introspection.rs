//! Opaque tokens through RFC 7662 introspection against the development issuer on 127.0.0.1.
//!
//! - `introspection/cache_hit`: a token answered before (no I/O, decided synchronously).
//! - `introspection/call`: one uncached introspection call over loopback (for scale).
//! - `introspection/coalesce_64`: 64 tasks validate the same new token at once; one call serves them all
//!   (the call count is checked and printed).
//!
//! `cargo bench --bench introspection`
use std::hint::black_box;
use std::time::{Duration, Instant};

use bearer_guard::testkit::DevIssuer;
use bearer_guard::{BearerToken, ClientAuth, IntrospectionValidator, TokenValidator};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

mod common;
use common::RESOURCE;

const TASKS: usize = 64;

fn validator(issuer: &DevIssuer, cache: bool) -> IntrospectionValidator {
    let builder = IntrospectionValidator::builder()
        .endpoint(issuer.introspection_endpoint())
        .issuer(issuer.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
        .audience(RESOURCE);
    let builder = if cache { builder } else { builder.no_cache() };
    builder.build().unwrap()
}

fn opaque(issuer: &DevIssuer) -> BearerToken {
    let token = issuer
        .opaque_token()
        .audience(RESOURCE)
        .scope("mcp:read")
        .issue();
    BearerToken::new(&token).unwrap()
}

fn introspection(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let issuer = rt.block_on(DevIssuer::start()).unwrap();
    let cached = validator(&issuer, true);
    let uncached = validator(&issuer, false);
    let token = opaque(&issuer);
    rt.block_on(cached.validate(&token, common::context()))
        .expect("active");
    rt.block_on(uncached.validate(&token, common::context()))
        .expect("active");

    let mut group = c.benchmark_group("introspection");
    // A new `BearerToken` per request, as the layer makes one (it keeps the token's hash once computed).
    let text = token.as_str().to_owned();
    group.bench_function("cache_hit", |b| {
        b.iter_batched(
            || BearerToken::new(&text).unwrap(),
            |fresh| {
                let outcome = cached.validate(&fresh, common::context()).into_ready();
                black_box(matches!(outcome, Ok(Ok(_))))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("call", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(uncached.validate(&token, common::context()))
                    .is_ok(),
            )
        })
    });

    let mut rounds = 0u64;
    let calls_before = cached.introspection_calls();
    group.bench_function(format!("coalesce_{TASKS}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fresh = opaque(&issuer);
                let calls = cached.introspection_calls();
                let start = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|_| tokio::spawn(cached.validate(&fresh, common::context())))
                        .collect();
                    for task in tasks {
                        assert!(task.await.unwrap().is_ok());
                    }
                });
                total += start.elapsed();
                assert_eq!(
                    cached.introspection_calls() - calls,
                    1,
                    "{TASKS} concurrent validations of one new token must make one call"
                );
                rounds += 1;
            }
            total
        })
    });
    group.finish();
    eprintln!(
        "coalescing: {rounds} rounds of {TASKS} concurrent validations made {} introspection calls",
        cached.introspection_calls() - calls_before
    );
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = introspection
}
criterion_main!(benches);
