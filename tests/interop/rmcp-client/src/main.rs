//! The rmcp MCP client (with its `auth` feature) end to end against an MCP server guarded by
//! bearer-guard, with a real authorization server behind it and no browser. Part of the interop
//! tests (tests/interop, `node run-e2e.mjs --client rmcp ...`).
//!
//! ```text
//! cargo run -p rmcp-interop-client -- --server http://127.0.0.1:PORT/mcp [--timeout 90] [--verbose]
//! ```
//!
//! rmcp does the OAuth work through `OAuthState` / `AuthorizationManager`: it probes the MCP URL
//! with an unauthenticated GET (401 + `WWW-Authenticate`), reads the RFC 9728 protected resource
//! metadata and the RFC 8414 authorization server metadata, registers a public client (RFC 7591),
//! builds the authorization URL (PKCE S256, RFC 8707 `resource`), exchanges the code (checking
//! `state` and the RFC 9207 `iss`), and `AuthClient` puts the token on every MCP request. This
//! example supplies what a browser and a user would: it follows the authorization URL with reqwest
//! (redirects by hand, with a small cookie jar) through the authorization server's auto-approving
//! interaction until the redirect URI, and hands the callback URL back to rmcp.
//!
//! rmcp has no automatic step-up: a 403 `insufficient_scope` comes back as an error carrying the
//! challenge. The example then does the step-up explicitly with rmcp's API
//! (`ServiceError::auth_challenge`, `WWWAuthenticateParams::is_insufficient_scope`,
//! `AuthorizationManager::request_scope_upgrade`, `exchange_code_for_token_with_issuer`) and retries
//! the call on the same connection.
//!
//! Every HTTP exchange (OAuth and MCP) is recorded so each step can be checked. Token values are
//! never printed. Prints one `PASS`/`FAIL` line per check (`INFO` lines are not counted) and
//! `N passed, M failed`; exits 1 on any failure.

mod browser;
mod flow;
mod record;
mod report;
mod util;

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

// The modules share their items through the crate root.
pub(crate) use browser::*;
pub(crate) use flow::*;
pub(crate) use record::*;
pub(crate) use report::*;
pub(crate) use util::*;

const USAGE: &str = "usage: cargo run -p rmcp-interop-client -- --server http://127.0.0.1:PORT/mcp [--timeout SECS] [--verbose]";

#[tokio::main]
async fn main() -> ExitCode {
    let mut server = None;
    let mut timeout = 90u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => server = args.next(),
            "--timeout" => match args.next().and_then(|v| v.parse().ok()) {
                Some(t) => timeout = t,
                None => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            },
            // Logs each exchange (method, URL, status) to stderr; never token values.
            "--verbose" => VERBOSE.store(true, Ordering::Relaxed),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(server) = server else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };

    let mut checks = Checks::default();
    let outcome =
        tokio::time::timeout(Duration::from_secs(timeout), run(&mut checks, &server)).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            checks.ok("client flow ran to completion", false, e.to_string());
        }
        Err(_) => {
            checks.ok(
                "finished within the overall timeout",
                false,
                format!("{timeout}s"),
            );
        }
    }
    println!("{} passed, {} failed", checks.passed, checks.failed);
    if checks.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
