//! DPoP (RFC 9449) at the resource server: what a proof costs on top of a bearer request.
//!
//! - `dpop/bearer_cache_hit`: `Authorization: Bearer` with an RS256 JWT already in the verified-token cache,
//!   through a guard that accepts DPoP (the baseline).
//! - `dpop/dpop_cache_hit`: `Authorization: DPoP` with a bound RS256 JWT in the cache and a fresh ES256 proof
//!   (signed outside the timed routine): the proof's checks, the binding, the in-memory replay store.
//! - `dpop/dpop_cache_miss`: the same with the token cache off: both signatures verified on every request.
//! - `dpop/es256_floor`: the proof's signature check alone (aws-lc-rs, key parsed once).
//! - `dpop/memory_store`: `MemoryReplayStore::insert_if_absent` of a new key.
//! - `redis/store_insert`, `redis/bare_set_nx`: `RedisReplayStore` against a bare `SET key 1 NX PX ttl` over
//!   the same kind of connection, to a real `redis-server` on loopback (skipped when it is not installed).
//!
//! Paired ratios (alternating ~2 ms blocks, the median of 201 rounds; see `benches/README.md`):
//! - `dpop/overhead_vs_floor_and_store` = (DPoP request − bearer request) / (ES256 check + store insert): the
//!   target is ≤ 1.10;
//! - `dpop/cache_miss_vs_two_floors` = DPoP request without token cache / (RS256 check + ES256 check);
//! - `redis/store_vs_bare_set_nx` = `RedisReplayStore` insert / bare `SET NX`.
//!
//! `cargo bench --bench dpop`
use std::cell::Cell;
use std::convert::Infallible;
use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bearer_guard::bind::dpop::{DpopConfig, DpopMode};
use bearer_guard::store::{MemoryReplayStore, RedisReplayStore, ReplayStore, StoreCall};
use bearer_guard::testkit::{DevIssuer, DpopKey, KeyAlg};
use bearer_guard::BearerAuthLayer;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use futures_util::FutureExt as _;
use http::{HeaderValue, Request, Response};
use serde_json::{json, Value};
use tower::{Layer as _, ServiceExt as _};

mod common;
use common::{kid, RESOURCE};

/// Proofs signed ahead for the paired rounds (each proof works once).
const POOL: usize = 40_000;

fn inner() -> impl tower::Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<()>, Infallible>>,
> + Clone {
    tower::service_fn(|_req: Request<()>| std::future::ready(Ok(Response::new(()))))
}

/// A guard accepting DPoP (optional) with a replay store large enough never to fill during a run.
fn guard(
    validator: bearer_guard::JwtValidator,
    issuer: &str,
) -> impl Fn(Request<()>) -> u16 + Clone {
    let dpop = DpopConfig::new(DpopMode::Optional).replay_store(MemoryReplayStore::new(20_000_000));
    let service = BearerAuthLayer::builder()
        .resource(RESOURCE)
        .authorization_server(issuer)
        .validator(validator)
        .dpop(dpop)
        .build()
        .unwrap()
        .layer(inner());
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

fn shared(value: &str) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(value.to_owned())).unwrap()
}

fn request(authorization: &HeaderValue, proof: Option<HeaderValue>) -> Request<()> {
    let mut request = Request::post(RESOURCE).header("authorization", authorization.clone());
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.body(()).unwrap()
}

/// The median over rounds of `(b − a) / c`, each round timing a, b and c in ~2 ms blocks.
fn paired_overhead(a: impl Fn() -> bool, b: impl Fn() -> bool, c: impl Fn() -> bool) -> f64 {
    let rounds = if common::benching() { 201 } else { 3 };
    let start = Instant::now();
    black_box(b());
    let once = start.elapsed().max(Duration::from_nanos(50));
    let iters = (Duration::from_millis(2).as_nanos() / once.as_nanos()).clamp(1, 100_000) as u32;
    let time = |f: &dyn Fn() -> bool| {
        let start = Instant::now();
        for _ in 0..iters {
            assert!(black_box(f()), "a measured routine failed");
        }
        start.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|_| {
            let (ta, tb, tc) = (time(&a), time(&b), time(&c));
            (tb - ta) / tc
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// The next proof of a pool signed ahead, once each.
struct Pool {
    proofs: Vec<HeaderValue>,
    next: Cell<usize>,
}

impl Pool {
    fn new(key: &DpopKey, token: &str, size: usize) -> Self {
        let proofs = (0..size)
            .map(|_| shared(&key.proof("POST", RESOURCE, Some(token)).unwrap()))
            .collect();
        Self {
            proofs,
            next: Cell::new(0),
        }
    }

    fn take(&self) -> HeaderValue {
        let i = self.next.get();
        self.next.set(i + 1);
        self.proofs.get(i).expect("proof pool exhausted").clone()
    }
}

/// The ES256 check of one proof by aws-lc-rs, as `common::Floor` does for tokens.
fn proof_floor(key: &DpopKey, token: &str) -> common::Floor {
    let proof = key.proof("POST", RESOURCE, Some(token)).unwrap();
    let mut jwk = key.public_jwk();
    jwk["kid"] = json!("proof");
    common::Floor::new(&json!({ "keys": [jwk] }), "proof", KeyAlg::Es256, &proof)
}

fn dpop(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let issuer: DevIssuer = rt
        .block_on(DevIssuer::builder().keys(&[KeyAlg::Rs256]).start())
        .unwrap();
    let jwks: Value = issuer.public_jwks();
    let key = DpopKey::generate(KeyAlg::Es256).unwrap();
    let sign = |bound: bool| {
        let builder = issuer
            .token()
            .key(&kid(KeyAlg::Rs256))
            .audience(RESOURCE)
            .expires_in(3600);
        let builder = if bound {
            builder.dpop_bound(&key)
        } else {
            builder
        };
        builder.sign().unwrap()
    };
    let (plain, bound) = (sign(false), sign(true));
    let cached = guard(common::validator(&issuer, &jwks, true), issuer.issuer());
    let uncached = guard(common::validator(&issuer, &jwks, false), issuer.issuer());
    let bearer = shared(&format!("Bearer {plain}"));
    let dpop_auth = shared(&format!("DPoP {bound}"));
    assert_eq!(cached(request(&bearer, None)), 200);
    let fresh = || shared(&key.proof("POST", RESOURCE, Some(&bound)).unwrap());
    assert_eq!(cached(request(&dpop_auth, Some(fresh()))), 200);
    assert_eq!(uncached(request(&dpop_auth, Some(fresh()))), 200);
    let es256 = proof_floor(&key, &bound);
    let rs256 = common::Floor::new(&jwks, &kid(KeyAlg::Rs256), KeyAlg::Rs256, &bound);
    let store = MemoryReplayStore::new(20_000_000);
    let counter = Cell::new(0u64);
    let insert = || {
        let n = counter.get();
        counter.set(n + 1);
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&n.to_le_bytes());
        k[8] = (n % 251) as u8;
        matches!(
            store.insert_if_absent(&k, Duration::from_secs(300)),
            StoreCall::Ready(Ok(true))
        )
    };

    let mut group = c.benchmark_group("dpop");
    group.bench_function("bearer_cache_hit", |b| {
        b.iter(|| black_box(cached(request(&bearer, None))))
    });
    group.bench_function("dpop_cache_hit", |b| {
        b.iter_batched(
            || request(&dpop_auth, Some(fresh())),
            |r| black_box(cached(r)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("dpop_cache_miss", |b| {
        b.iter_batched(
            || request(&dpop_auth, Some(fresh())),
            |r| black_box(uncached(r)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("es256_floor", |b| b.iter(|| black_box(es256.verify())));
    group.bench_function("memory_store", |b| b.iter(|| black_box(insert())));
    group.finish();

    let pool = Pool::new(&key, &bound, if common::benching() { POOL } else { 200 });
    let overhead = paired_overhead(
        || cached(request(&bearer, None)) == 200,
        || cached(request(&dpop_auth, Some(pool.take()))) == 200,
        || es256.verify() & insert(),
    );
    common::record_paired("dpop/overhead_vs_floor_and_store", overhead);
    let pool = Pool::new(&key, &bound, if common::benching() { POOL / 4 } else { 50 });
    let miss = common::paired_ratio(
        || rs256.verify() & es256.verify(),
        || uncached(request(&dpop_auth, Some(pool.take()))) == 200,
    );
    common::record_paired("dpop/cache_miss_vs_two_floors", miss);
}

/// A `redis-server` on a free loopback port, stopped (by pid) when dropped.
struct RedisServer {
    child: Child,
    url: String,
}

impl RedisServer {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let Some(server) = RedisServer::start() else {
        eprintln!("redis benches skipped: no redis-server on PATH");
        return;
    };
    let store = rt
        .block_on(RedisReplayStore::builder(server.url.as_str()).connect())
        .unwrap();
    let client = ::redis::Client::open(server.url.as_str()).unwrap();
    let bare = rt
        .block_on(::redis::aio::ConnectionManager::new(client))
        .unwrap();
    let counter = Cell::new(0u64);
    let next_key = || {
        let n = counter.get();
        counter.set(n + 1);
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&n.to_le_bytes());
        k
    };
    let insert = || {
        let key = next_key();
        let call = store.insert_if_absent(&key, Duration::from_secs(60));
        match call {
            StoreCall::Ready(answer) => answer == Ok(true),
            StoreCall::Pending(future) => rt.block_on(future) == Ok(true),
        }
    };
    let set_nx = || {
        let key = format!("bare:{:x}", counter.get());
        counter.set(counter.get() + 1);
        let mut connection = bare.clone();
        let reply: Option<String> = rt
            .block_on(
                ::redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(60_000)
                    .query_async(&mut connection),
            )
            .unwrap();
        reply.is_some()
    };
    assert!(insert() && set_nx());
    let mut group = c.benchmark_group("redis");
    group.bench_function("store_insert", |b| b.iter(|| black_box(insert())));
    group.bench_function("bare_set_nx", |b| b.iter(|| black_box(set_nx())));
    group.finish();
    let ratio = common::paired_ratio(set_nx, insert);
    common::record_paired("redis/store_vs_bare_set_nx", ratio);
}

fn benches(c: &mut Criterion) {
    let rt = common::runtime();
    dpop(c, &rt);
    redis(c, &rt);
}

criterion_group! {
    name = group;
    config = common::criterion();
    targets = benches
}
criterion_main!(group);
