//! End to end over loopback: a trivial axum app with the same handler unguarded (`/open`) and guarded
//! (`/guarded`: `BearerAuthLayer` + `JwtValidator`, keys cached, verified-token cache on), driven by `wrk`
//! with one valid RS256 token repeated. Prints both throughputs and their ratio.
//!
//! Not part of `cargo bench` or `cargo test` runs (it needs `wrk` and takes ~2 min); run it on purpose:
//!
//! ```text
//! scripts/loadtest.sh                                  # installs wrk if missing, then:
//! cargo bench --bench loadtest -- run   # LOADTEST_SECS (10), LOADTEST_ROUNDS (5), LOADTEST_CONNECTIONS (2),
//!                                       # LOADTEST_WORKERS (server tokio workers, 2)
//! ```
//!
//! Both the server (LOADTEST_WORKERS tokio workers) and wrk (1 thread) run on this machine; traffic goes to 127.0.0.1
//! only, each wrk run is bounded by `-d`, and the process exits when done.
use std::process::Command;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bearer_guard::testkit::{DevIssuer, KeyAlg};
use bearer_guard::{BearerAuthLayer, JwtValidator, Requirement};

const RESOURCE: &str = "https://api.example.com/mcp";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs wrk against `url` with `header` for `secs` seconds; returns requests per second.
fn wrk(url: &str, header: &str, secs: u64, connections: u64) -> f64 {
    let output = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s")])
        .args(["-H", header, url])
        .output()
        .expect("wrk not found: run scripts/loadtest.sh (it installs wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let rps = text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("unexpected wrk output:\n{text}"));
    let non_2xx = text
        .lines()
        .find(|line| line.contains("Non-2xx"))
        .map(str::trim);
    if let Some(line) = non_2xx {
        panic!("{url}: {line} (the guard refused the token?)\n{text}");
    }
    rps
}

async fn handler() -> &'static str {
    "ok"
}

fn main() {
    if !std::env::args().any(|a| a == "run") {
        eprintln!(
            "loadtest: skipped (needs wrk, ~2 min); run `cargo bench --bench loadtest -- run` or scripts/loadtest.sh"
        );
        return;
    }
    let secs = env_or("LOADTEST_SECS", 10);
    let connections = env_or("LOADTEST_CONNECTIONS", 2);
    let rounds = env_or("LOADTEST_ROUNDS", 5) as usize;
    let workers = env_or("LOADTEST_WORKERS", 2) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let (addr, token) = rt.block_on(async {
        let issuer = DevIssuer::builder()
            .keys(&[KeyAlg::Rs256])
            .start()
            .await
            .unwrap();
        let token = issuer
            .token()
            .audience(RESOURCE)
            .scope("mcp:read")
            .expires_in(3600)
            .sign()
            .unwrap();
        let validator = JwtValidator::builder(issuer.issuer())
            .jwks(&issuer.public_jwks())
            .build()
            .unwrap();
        let guard = BearerAuthLayer::builder()
            .resource(RESOURCE)
            .authorization_server(issuer.issuer())
            .validator(validator)
            .require(Requirement::all_of(["mcp:read"]))
            .build()
            .unwrap();
        let app = Router::new()
            .route("/open", get(handler))
            .merge(Router::new().route("/guarded", get(handler)).layer(guard));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        std::mem::forget(issuer); // keep the issuer's keys alive for the run
        (addr, token)
    });
    let header = format!("Authorization: Bearer {token}");
    let open = format!("http://{addr}/open");
    let guarded = format!("http://{addr}/guarded");
    eprintln!(
        "loadtest: {connections} connections, wrk 1 thread, server {workers} workers, {rounds} rounds of {secs} s per path, token {} bytes",
        token.len()
    );
    // Warm up both paths (connections, caches), then alternate A B B A … so that a slow spell of the shared
    // machine hits both alike; the ratio is taken within each round, and the median reported.
    wrk(&open, &header, 2, connections);
    wrk(&guarded, &header, 2, connections);
    let mut open_rps = Vec::new();
    let mut guarded_rps = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (o, g) = if round % 2 == 0 {
            let o = wrk(&open, &header, secs, connections);
            (o, wrk(&guarded, &header, secs, connections))
        } else {
            let g = wrk(&guarded, &header, secs, connections);
            (wrk(&open, &header, secs, connections), g)
        };
        eprintln!(
            "round {}: open {o:.0} req/s, guarded {g:.0} req/s, ratio {:.3}",
            round + 1,
            g / o
        );
        open_rps.push(o);
        guarded_rps.push(g);
        ratios.push(g / o);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    ratios.sort_by(f64::total_cmp);
    println!("unguarded (/open):    {:.0} req/s (mean)", mean(&open_rps));
    println!(
        "guarded   (/guarded): {:.0} req/s (mean)",
        mean(&guarded_rps)
    );
    println!(
        "ratio guarded/unguarded: {:.3} (median of {rounds} rounds; ratio of means {:.3})",
        ratios[ratios.len() / 2],
        mean(&guarded_rps) / mean(&open_rps)
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}
