//! Which cache for verified tokens? quick_cache vs moka, measured on the operations the guard does:
//! a hit (every repeated request) and an insert (every first sight of a token).
//!
//! `cargo bench --bench token_cache`
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

const ENTRIES: usize = 10_000;

#[derive(Clone)]
struct Entry {
    _token: Arc<String>,
    _expires_at: u64,
    _epoch: u64,
}

fn key(i: usize) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k
}

fn entry() -> Entry {
    Entry {
        _token: Arc::new("claims".to_owned()),
        _expires_at: u64::MAX,
        _epoch: 0,
    }
}

fn bench(c: &mut Criterion) {
    let quick: quick_cache::sync::Cache<[u8; 32], Entry> = quick_cache::sync::Cache::new(ENTRIES);
    let moka: moka::sync::Cache<[u8; 32], Entry> = moka::sync::Cache::builder()
        .max_capacity(ENTRIES as u64)
        .time_to_live(Duration::from_secs(300))
        .build();
    for i in 0..ENTRIES / 2 {
        quick.insert(key(i), entry());
        moka.insert(key(i), entry());
    }
    let hot = key(42);

    let mut group = c.benchmark_group("token_cache");
    group.bench_function("quick_cache/hit", |b| {
        b.iter(|| black_box(quick.get(black_box(&hot))))
    });
    group.bench_function("moka/hit", |b| {
        b.iter(|| black_box(moka.get(black_box(&hot))))
    });
    let mut i = ENTRIES;
    group.bench_function("quick_cache/insert", |b| {
        b.iter(|| {
            i += 1;
            quick.insert(key(i), entry())
        })
    });
    let mut j = ENTRIES;
    group.bench_function("moka/insert", |b| {
        b.iter(|| {
            j += 1;
            moka.insert(key(j), entry())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
