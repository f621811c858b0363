//! The whole guard: `tower::ServiceExt::oneshot` through `BearerAuth` to a trivial inner service, against
//! the same inner service unguarded.
//!
//! - `layer/unguarded`: the baseline (the inner service alone, same request, same polling).
//! - `layer/jwt_cache_hit`: a JWT (RS256) already in the verified-token cache.
//! - `layer/first_match_cache_hit`: the same behind `FirstMatch` (which asks `is_responsible_for` first).
//! - `layer/multi_issuer_cache_hit`: the same behind a `MultiIssuer` of two issuers.
//! - `layer/jwt_cache_miss`: the same token, cache TTL 0 (every request hashes, looks up, verifies).
//! - `layer/static_token`: a `StaticValidator` token.
//! - `layer/reject_no_token`, `layer/reject_malformed` (`Bearer a,b`), `layer/reject_bad_signature`
//!   (an RS256 token with a changed signature), `layer/reject_wrong_issuer` (a well-signed token of
//!   another issuer: refused before any signature check).
//! - `threads/<scenario>/<T>`: T threads (1, 2) sharing one guard, wall time per request.
//!
//! Allocations per request are counted with a counting global allocator and printed (not asserted) before
//! the timings: `allocs/request` and `bytes/request`, guarded and unguarded.
//!
//! `cargo bench --bench layer`
use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bearer_guard::testkit::{DevIssuer, KeyAlg};
use bearer_guard::{BearerAuthLayer, Requirement, StaticToken, StaticValidator};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use futures_util::FutureExt as _;
use http::{header::AUTHORIZATION, HeaderValue, Request, Response};
use tower::{Layer as _, Service, ServiceExt as _};

mod common;
use common::{kid, tamper, token, RESOURCE};

/// Counts allocations while `COUNTING` is on (one relaxed load otherwise).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The inner service: answers 200 with an empty body, reads nothing.
fn inner() -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<()>, Infallible>>,
> + Clone {
    tower::service_fn(|_req: Request<()>| std::future::ready(Ok(Response::new(()))))
}

const STATIC_TOKEN: &str = "static-token-0123456789abcdef";

/// One request scenario: the service, the `Authorization` value (if any), the expected status.
struct Scenario {
    name: &'static str,
    call: Box<dyn Fn(Request<()>) -> u16 + Send + Sync>,
    header: Option<HeaderValue>,
    status: u16,
}

impl Scenario {
    fn request(&self) -> Request<()> {
        let mut request = Request::post("/mcp");
        if let Some(value) = &self.header {
            // A clone of shared bytes, as hyper hands out header values (no copy).
            request = request.header(AUTHORIZATION, value.clone());
        }
        request.body(()).unwrap()
    }
}

/// Shares bytes like a parsed request does (cloning is a reference count, not a copy).
fn header(value: &str) -> HeaderValue {
    let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(value.to_owned())).unwrap();
    let _promote = value.clone();
    value
}

fn guarded<V: bearer_guard::TokenValidator>(
    validator: V,
) -> impl Fn(Request<()>) -> u16 + Send + Sync + Clone + 'static {
    // The first issuer the validator trusts is the one advertised (static tokens name none).
    let issuer = validator
        .trusted_issuers()
        .and_then(|issuers| issuers.into_iter().next())
        .unwrap_or_else(|| "https://auth.example.com".to_owned());
    let layer = BearerAuthLayer::builder()
        .resource(RESOURCE)
        .authorization_server(issuer)
        .validator(validator)
        .require(Requirement::all_of(["mcp:read"]))
        .build()
        .unwrap();
    let service = layer.layer(inner());
    move |request| {
        let response = service
            .clone()
            .oneshot(request)
            .now_or_never()
            .expect("decided synchronously")
            .unwrap();
        response.status().as_u16()
    }
}

fn scenarios(issuer: &DevIssuer) -> Vec<Scenario> {
    let jwks = issuer.public_jwks();
    let rs256 = token(issuer, &kid(KeyAlg::Rs256), None);
    let bearer = |t: &str| Some(header(&format!("Bearer {t}")));
    let cached = common::validator(issuer, &jwks, true);
    let missing = bearer_guard::JwtValidator::builder(issuer.issuer())
        .audience(RESOURCE)
        .jwks(&jwks)
        .token_cache(10_000, Duration::ZERO)
        .build()
        .unwrap();
    let static_validator = StaticValidator::builder()
        .token(
            STATIC_TOKEN,
            StaticToken::new("svc").scopes(["mcp:read", "mcp:write"]),
        )
        .build()
        .unwrap();
    let hit = guarded(cached.clone());
    // A JWT validator behind `FirstMatch` (ahead of, say, introspection) is asked first whether the token
    // is one of its issuer's: the unverified `iss` is read on every request.
    let chain = guarded(bearer_guard::FirstMatch::new().then(cached.clone()));
    let rt = common::runtime();
    let other = rt
        .block_on(DevIssuer::builder().keys(&[KeyAlg::Rs256]).start())
        .unwrap();
    // Same keys, another issuer name in the token: refused on `iss`, before the signature.
    let other_issuer = token(&other, &kid(KeyAlg::Rs256), None);
    // Two trusted issuers, the token's among them.
    let multi = guarded(
        bearer_guard::MultiIssuer::new()
            .issuer(common::validator(&other, &other.public_jwks(), true))
            .issuer(cached),
    );
    let unguarded = {
        let service = inner();
        move |request| {
            let response = service
                .clone()
                .oneshot(request)
                .now_or_never()
                .unwrap()
                .unwrap();
            response.status().as_u16()
        }
    };
    vec![
        Scenario {
            name: "unguarded",
            call: Box::new(unguarded),
            header: bearer(&rs256),
            status: 200,
        },
        Scenario {
            name: "jwt_cache_hit",
            call: Box::new(hit.clone()),
            header: bearer(&rs256),
            status: 200,
        },
        Scenario {
            name: "first_match_cache_hit",
            call: Box::new(chain),
            header: bearer(&rs256),
            status: 200,
        },
        Scenario {
            name: "multi_issuer_cache_hit",
            call: Box::new(multi),
            header: bearer(&rs256),
            status: 200,
        },
        Scenario {
            name: "jwt_cache_miss",
            call: Box::new(guarded(missing)),
            header: bearer(&rs256),
            status: 200,
        },
        Scenario {
            name: "static_token",
            call: Box::new(guarded(static_validator)),
            header: bearer(STATIC_TOKEN),
            status: 200,
        },
        Scenario {
            name: "reject_no_token",
            call: Box::new(hit.clone()),
            header: None,
            status: 401,
        },
        Scenario {
            name: "reject_malformed",
            call: Box::new(hit.clone()),
            header: Some(header("Bearer a,b")),
            status: 400,
        },
        Scenario {
            name: "reject_wrong_issuer",
            call: Box::new(hit.clone()),
            header: bearer(&other_issuer),
            status: 401,
        },
        Scenario {
            name: "reject_bad_signature",
            call: Box::new(hit),
            header: bearer(&tamper(&rs256)),
            status: 401,
        },
    ]
}

/// Allocations and bytes per request of one scenario (request built before counting starts).
fn count_allocations(scenario: &Scenario) -> (f64, f64) {
    const N: u64 = 2_000;
    let requests: Vec<Request<()>> = (0..N).map(|_| scenario.request()).collect();
    ALLOCS.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for request in requests {
        black_box((scenario.call)(request));
    }
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::SeqCst) as f64 / N as f64;
    let bytes = BYTES.load(Ordering::SeqCst) as f64 / N as f64;
    (allocs, bytes)
}

fn layer(c: &mut Criterion) {
    let rt = common::runtime();
    let issuer = common::issuer(&rt);
    let scenarios = scenarios(&issuer);
    for s in &scenarios {
        assert_eq!((s.call)(s.request()), s.status, "{}", s.name);
        // Warm up (caches filled, shared bytes promoted), then count.
        for _ in 0..10 {
            (s.call)(s.request());
        }
        let (allocs, bytes) = count_allocations(s);
        eprintln!(
            "allocations {:<22} {allocs:>6.2} allocs/request {bytes:>8.1} bytes/request",
            s.name
        );
    }

    let mut group = c.benchmark_group("layer");
    for s in &scenarios {
        group.bench_function(s.name, |b| {
            b.iter_batched(
                || s.request(),
                |request| (s.call)(request),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // 1 and 2 threads sharing one guard: wall time per request (lower is better; 2 cores).
    let mut group = c.benchmark_group("threads");
    for s in scenarios.iter().filter(|s| {
        matches!(
            s.name,
            "unguarded" | "jwt_cache_hit" | "jwt_cache_miss" | "reject_no_token"
        )
    }) {
        for threads in [1u64, 2] {
            group.bench_with_input(
                BenchmarkId::new(s.name, threads),
                &threads,
                |b, &threads| {
                    b.iter_custom(|iters| {
                        let per_thread = iters.div_ceil(threads);
                        let start = Instant::now();
                        std::thread::scope(|scope| {
                            for _ in 0..threads {
                                scope.spawn(|| {
                                    for _ in 0..per_thread {
                                        black_box((s.call)(s.request()));
                                    }
                                });
                            }
                        });
                        start
                            .elapsed()
                            .mul_f64(iters as f64 / (per_thread * threads) as f64)
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = layer
}
criterion_main!(benches);
