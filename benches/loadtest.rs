//! End to end over loopback with `wrk`: the same app served unguarded and guarded, one valid RS256 token
//! repeated (keys cached, verified-token cache on). Two apps:
//!
//! - `demo`: the demo's MCP server (`examples/demo/app.rs`: rmcp, streamable HTTP, stateless, JSON
//!   responses), guarded as `examples/demo/main.rs` guards it (`BearerAuthLayer` with `FirstMatch` of a
//!   `JwtValidator` and introspection, the per-tool MCP scope layer); wrk POSTs `tools/call echo`.
//! - `handler`: a trivial axum `GET` handler returning `"ok"`: the worst case for the guard's share.
//!
//! Not part of `cargo bench` or `cargo test` runs (it needs `wrk` and takes minutes); run it on purpose:
//!
//! ```text
//! scripts/loadtest.sh                     # installs wrk if missing, then:
//! cargo bench --bench loadtest -- run     # LOADTEST_APPS (demo,handler), LOADTEST_SECS (10),
//!                                         # LOADTEST_ROUNDS (5), LOADTEST_CONNECTIONS (4),
//!                                         # LOADTEST_PIN (1), LOADTEST_WORKERS (1 pinned, else 2)
//! ```
//!
//! With `LOADTEST_PIN=1` (the default on a machine with 2 or more CPUs and `taskset`), the server's threads
//! are pinned to CPU 0 and wrk to CPU 1, so the load generator does not take CPU time from the server it
//! measures (on 2 cores, unpinned, wrk, the server and the kernel's loopback compete and the scheduling
//! noise is larger than the guard). The server is then the bottleneck and the throughput ratio is the ratio
//! of its CPU cost per request. `LOADTEST_PIN=0` runs everything unpinned. Traffic goes to 127.0.0.1 only;
//! each wrk run is bounded by `-d`, and the process exits when done.
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bearer_guard::mcp::McpScopes;
use bearer_guard::scope::{Requirement, ScopeHierarchy};
use bearer_guard::testkit::{DevIssuer, KeyAlg};
use bearer_guard::{
    BearerAuthLayer, ClientAuth, FirstMatch, IntrospectionValidator, JwtValidator, TokenValidator,
};

#[path = "../examples/demo/app.rs"]
mod app;
#[path = "../examples/demo/notes.rs"]
#[allow(dead_code)]
mod notes;

const ECHO: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One app, served twice.
struct Target {
    name: &'static str,
    open: String,
    guarded: String,
    /// wrk script (method, body, headers) or none for a plain GET.
    script: Option<String>,
}

/// How wrk is run.
struct Load {
    header: String,
    connections: u64,
    pin_cpu: Option<usize>,
}

impl Load {
    /// Runs wrk against `url` for `secs` seconds; returns requests per second.
    fn run(&self, url: &str, script: Option<&str>, secs: u64) -> f64 {
        let mut command = match self.pin_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string(), "wrk"]);
                c
            }
            None => Command::new("wrk"),
        };
        command
            .args([
                "-t1",
                &format!("-c{}", self.connections),
                &format!("-d{secs}s"),
            ])
            .args(["-H", &self.header]);
        if let Some(script) = script {
            command.args(["-s", script]);
        }
        let output = command
            .arg(url)
            .output()
            .expect("wrk not found: run scripts/loadtest.sh (it installs wrk)");
        let text = String::from_utf8_lossy(&output.stdout);
        let rps = text
            .lines()
            .find_map(|line| line.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| {
                panic!(
                    "unexpected wrk output:\n{text}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        if let Some(line) = text.lines().find(|line| line.contains("Non-2xx")) {
            panic!(
                "{url}: {} (the guard refused the token?)\n{text}",
                line.trim()
            );
        }
        rps
    }
}

async fn handler() -> &'static str {
    "ok"
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The demo's guard, as `examples/demo/main.rs` builds it for its embedded issuer.
async fn demo_guard(issuer: &DevIssuer, resource: &str) -> BearerAuthLayer {
    let jwt = JwtValidator::builder(issuer.issuer()).build().unwrap();
    jwt.ready().await.unwrap();
    let introspection = IntrospectionValidator::builder()
        .endpoint(issuer.introspection_endpoint())
        .issuer(issuer.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
        .build()
        .unwrap();
    let validator: Arc<dyn TokenValidator> =
        Arc::new(FirstMatch::new().then(jwt).then(introspection));
    BearerAuthLayer::builder()
        .resource(resource)
        .authorization_server(issuer.issuer())
        .scopes_supported(["mcp:read", "mcp:write"])
        .shared_validator(validator)
        .require(Requirement::all_of(["mcp:read"]))
        .scope_hierarchy(ScopeHierarchy::new().implies("mcp", ["mcp:read", "mcp:write"]))
        .build()
        .unwrap()
}

/// Both apps, each unguarded and guarded on its own port, and a token all guarded ones accept.
async fn start(apps: &[String], script_path: &str) -> (Vec<Target>, String, DevIssuer) {
    let issuer = DevIssuer::builder()
        .keys(&[KeyAlg::Rs256])
        .start()
        .await
        .unwrap();
    let mut targets = Vec::new();
    let mut audiences = Vec::new();
    for name in apps {
        match name.as_str() {
            "demo" => {
                // Bind first: the resource (the token's audience) names the guarded port.
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let resource = format!("http://{addr}/mcp");
                let guard = demo_guard(&issuer, &resource).await;
                let guard_with_tools = guard
                    .mcp_guard(
                        McpScopes::new()
                            .tool("echo", Requirement::all_of(["mcp:read"]))
                            .tool("write_note", Requirement::all_of(["mcp:write"]))
                            .fallback(Requirement::all_of(["mcp:read"])),
                    )
                    .unwrap();
                let guarded =
                    app::mcp_router("/mcp", addr.to_string(), addr).layer(guard_with_tools);
                tokio::spawn(async move { axum::serve(listener, guarded).await.unwrap() });
                let open_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let open_addr = open_listener.local_addr().unwrap();
                let open = app::mcp_router("/mcp", open_addr.to_string(), open_addr);
                tokio::spawn(async move { axum::serve(open_listener, open).await.unwrap() });
                std::fs::write(
                    script_path,
                    format!(
                        "wrk.method = \"POST\"\nwrk.body = '{ECHO}'\n\
                         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
                         wrk.headers[\"Accept\"] = \"application/json, text/event-stream\"\n"
                    ),
                )
                .unwrap();
                audiences.push(resource.clone());
                targets.push(Target {
                    name: "demo",
                    open: format!("http://{open_addr}/mcp"),
                    guarded: resource,
                    script: Some(script_path.to_owned()),
                });
            }
            "handler" => {
                let resource = "https://api.example.com/handler".to_owned();
                let validator = JwtValidator::builder(issuer.issuer())
                    .jwks(&issuer.public_jwks())
                    .build()
                    .unwrap();
                let guard = BearerAuthLayer::builder()
                    .resource(&resource)
                    .authorization_server(issuer.issuer())
                    .validator(validator)
                    .require(Requirement::all_of(["mcp:read"]))
                    .build()
                    .unwrap();
                let open = serve(Router::new().route("/", get(handler))).await;
                let guarded = serve(Router::new().route("/", get(handler)).layer(guard)).await;
                audiences.push(resource);
                targets.push(Target {
                    name: "handler",
                    open: format!("http://{open}/"),
                    guarded: format!("http://{guarded}/"),
                    script: None,
                });
            }
            other => panic!("LOADTEST_APPS: unknown app {other:?} (demo, handler)"),
        }
    }
    let auds: Vec<&str> = audiences.iter().map(String::as_str).collect();
    let token = issuer
        .token()
        .audiences(&auds)
        .scope("mcp:read")
        .expires_in(3600)
        .sign()
        .unwrap();
    (targets, token, issuer)
}

/// One request through each guarded target with a real client: 200 and the tool's answer, not a refusal.
async fn check(targets: &[Target], token: &str) {
    let client = reqwest::Client::new();
    for target in targets {
        for url in [&target.open, &target.guarded] {
            let request = match target.script {
                Some(_) => client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(ECHO),
                None => client.get(url),
            };
            let response = request.bearer_auth(token).send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_eq!(status, 200, "{url}: {body}");
            if target.script.is_some() {
                assert!(body.contains("hi (echoed for"), "{url}: {body}");
            }
        }
    }
}

/// Pins every thread of this process to `cpu` (`taskset -a -p`); threads started later inherit it.
fn pin_self(cpu: usize) -> bool {
    Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn main() {
    if !std::env::args().any(|a| a == "run") {
        eprintln!(
            "loadtest: skipped (needs wrk, takes minutes); run `cargo bench --bench loadtest -- run` or scripts/loadtest.sh"
        );
        return;
    }
    let secs = env_or("LOADTEST_SECS", 10);
    let connections = env_or("LOADTEST_CONNECTIONS", 4);
    let rounds = env_or("LOADTEST_ROUNDS", 5) as usize;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = env_or("LOADTEST_PIN", 1) == 1 && cpus >= 2;
    let workers = env_or("LOADTEST_WORKERS", if pin { 1 } else { 2 }) as usize;
    let apps: Vec<String> = std::env::var("LOADTEST_APPS")
        .unwrap_or_else(|_| "demo,handler".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let script =
        std::env::temp_dir().join(format!("bearer-guard-loadtest-{}.lua", std::process::id()));
    let script = script.to_string_lossy().into_owned();
    let (targets, token, issuer) = rt.block_on(start(&apps, &script));
    rt.block_on(check(&targets, &token));
    let pinned = pin && pin_self(0);
    let load = Load {
        header: format!("Authorization: Bearer {token}"),
        connections,
        pin_cpu: pinned.then_some(1),
    };
    eprintln!(
        "loadtest: {connections} connections, wrk 1 thread{}, server {workers} tokio worker(s){}, {rounds} rounds of {secs} s per path, token {} bytes",
        if pinned { " on CPU 1" } else { "" },
        if pinned { " on CPU 0" } else { " (unpinned)" },
        token.len()
    );
    for target in &targets {
        let script = target.script.as_deref();
        // Warm up both paths (connections, caches), then alternate A B B A … so that a slow spell of the
        // shared machine hits both alike; the ratio is taken within each round, and the median reported.
        load.run(&target.open, script, 2);
        load.run(&target.guarded, script, 2);
        let mut open_rps = Vec::new();
        let mut guarded_rps = Vec::new();
        let mut ratios = Vec::new();
        for round in 0..rounds {
            let (o, g) = if round % 2 == 0 {
                let o = load.run(&target.open, script, secs);
                (o, load.run(&target.guarded, script, secs))
            } else {
                let g = load.run(&target.guarded, script, secs);
                (load.run(&target.open, script, secs), g)
            };
            eprintln!(
                "{} round {}: unguarded {o:.0} req/s, guarded {g:.0} req/s, ratio {:.3}",
                target.name,
                round + 1,
                g / o
            );
            open_rps.push(o);
            guarded_rps.push(g);
            ratios.push(g / o);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        ratios.sort_by(f64::total_cmp);
        println!(
            "{}: unguarded {:.0} req/s, guarded {:.0} req/s (means); ratio guarded/unguarded {:.3} (median of {rounds} rounds, range {:.3}-{:.3}; ratio of means {:.3})",
            target.name,
            mean(&open_rps),
            mean(&guarded_rps),
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            mean(&guarded_rps) / mean(&open_rps)
        );
    }
    let _ = std::fs::remove_file(&script);
    drop(issuer);
    rt.shutdown_timeout(Duration::from_secs(1));
}
