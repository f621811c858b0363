//! The bearer-guard demo: an axum app guarded by `BearerAuthLayer` + `JwtValidator`.
//!
//! ```text
//! cargo run --example demo                                  # embedded development issuer, works offline
//! cargo run --example demo -- --issuer https://idp.example.com/realms/demo --resource https://api.example.com/mcp
//! cargo run --example demo -- --help
//! ```
//!
//! By default it starts the test kit's development issuer on 127.0.0.1 (JWKS + RFC 8414 metadata), finds its
//! keys by discovery like it would with a real identity provider, mints two tokens and prints `curl`
//! commands. With `--issuer` (and optionally `--jwks-uri`) the same binary guards against a real IdP.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use bearer_guard::scope::{Requirement, RoutePolicy, ScopeHierarchy};
use bearer_guard::testkit::DevIssuer;
use bearer_guard::{AccessToken, BearerAuthLayer, JwtValidator};
use http::Method;
use serde_json::json;

const HELP: &str = "\
bearer-guard demo: an axum app guarded by BearerAuthLayer with a JwtValidator.

Without --issuer, an embedded development issuer (JWKS + RFC 8414 metadata on 127.0.0.1) signs the
tokens, and the demo prints two of them with ready-to-paste curl commands. Works offline.

USAGE:
    cargo run --example demo -- [OPTIONS]

OPTIONS:
    --listen ADDR      Address to listen on (default 127.0.0.1:3000; port 0 picks a free port)
    --resource URL     The protected resource identifier: the URL clients call and the audience tokens
                       must carry (default http://<listen address>/mcp). https, or http on loopback.
    --issuer URL       Trust this issuer (exact issuer string, trailing slash and all); its keys are found
                       by RFC 8414 / OpenID discovery. Without it, the embedded development issuer is used.
    --jwks-uri URL     With --issuer: fetch the keys from this JWKS URL instead of discovering it.
    --scope SCOPE      A scope every request needs (repeatable); also advertised in scopes_supported.
                       Default: GET needs mcp:read, POST needs mcp:write (`mcp` implies both).
    --allow-jwt-typ    Accept `typ: JWT` access tokens (Keycloak and other IdPs that do not send at+jwt).
    -h, --help         Print this help.
";

#[derive(Debug)]
struct Options {
    listen: SocketAddr,
    resource: Option<String>,
    issuer: Option<String>,
    jwks_uri: Option<String>,
    scopes: Vec<String>,
    allow_jwt_typ: bool,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        listen: ([127, 0, 0, 1], 3000).into(),
        resource: None,
        issuer: None,
        jwks_uri: None,
        scopes: Vec::new(),
        allow_jwt_typ: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--listen" => {
                let v = value("--listen")?;
                options.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: {v:?} is not an IP:PORT address"))?;
            }
            "--resource" => options.resource = Some(value("--resource")?),
            "--issuer" => options.issuer = Some(value("--issuer")?),
            "--jwks-uri" => options.jwks_uri = Some(value("--jwks-uri")?),
            "--scope" => options.scopes.push(value("--scope")?),
            "--allow-jwt-typ" => options.allow_jwt_typ = true,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if options.jwks_uri.is_some() && options.issuer.is_none() {
        return Err("--jwks-uri needs --issuer (the issuer the tokens' `iss` must equal)".into());
    }
    Ok(options)
}

async fn read_notes(token: AccessToken) -> Json<serde_json::Value> {
    Json(json!({
        "subject": token.subject(),
        "client_id": token.client_id(),
        "scopes": token.scopes().iter().collect::<Vec<_>>(),
        "notes": ["hello from the guarded demo"],
    }))
}

async fn write_note(token: AccessToken, body: String) -> Json<serde_json::Value> {
    Json(json!({ "saved_by": token.subject(), "bytes": body.len() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let resource = options
        .resource
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/mcp"));

    // The embedded development issuer, unless a real one is given.
    let (issuer, dev_issuer) = match &options.issuer {
        Some(issuer) => (issuer.clone(), None),
        None => {
            let dev = DevIssuer::start().await?;
            (dev.issuer().to_owned(), Some(dev))
        }
    };

    let mut validator = JwtValidator::builder(&issuer).allow_jwt_typ(options.allow_jwt_typ);
    if let Some(jwks_uri) = &options.jwks_uri {
        validator = validator.jwks_uri(jwks_uri);
    }
    let validator = validator.build()?;
    match tokio::time::timeout(Duration::from_secs(10), validator.ready()).await {
        Ok(Ok(())) => println!("signing keys loaded from {issuer}"),
        _ => eprintln!(
            "warning: the signing keys of {issuer} could not be loaded yet; requests get 503 until they are"
        ),
    }

    let (policy, scopes_supported) = if options.scopes.is_empty() {
        let policy = RoutePolicy::new()
            .route(
                Some(Method::POST),
                "/mcp",
                Requirement::all_of(["mcp:write"]),
            )
            .fallback(Requirement::all_of(["mcp:read"]));
        (policy, vec!["mcp:read".to_owned()])
    } else {
        let policy = RoutePolicy::new().fallback(Requirement::all_of(&options.scopes));
        (policy, options.scopes.clone())
    };
    let guard = BearerAuthLayer::builder()
        .resource(&resource)
        .authorization_server(&issuer)
        .scopes_supported(scopes_supported)
        .validator(validator)
        .policy(policy)
        .scope_hierarchy(ScopeHierarchy::new().implies("mcp", ["mcp:read", "mcp:write"]))
        .build()?;

    let app = Router::new()
        .route("/mcp", get(read_notes).post(write_note))
        .layer(guard.clone());

    println!("bearer-guard demo listening on http://{addr}");
    println!("  resource: {resource}");
    println!("  metadata: {}", guard.metadata_url());
    println!("  issuer:   {issuer}");
    println!();
    println!("Try:");
    println!("  curl -i {resource}          # 401 + WWW-Authenticate challenge");
    println!("  curl -i {}", guard.metadata_url());
    if let Some(dev) = &dev_issuer {
        let reader = dev
            .token()
            .subject("reader")
            .audience(&resource)
            .scope("mcp:read")
            .expires_in(3600)
            .sign()?;
        let writer = dev
            .token()
            .subject("writer")
            .audience(&resource)
            .scope("mcp:read mcp:write")
            .expires_in(3600)
            .sign()?;
        let elsewhere = dev
            .token()
            .audience("https://another-resource.example.com")
            .expires_in(3600)
            .sign()?;
        println!("  READER={reader}");
        println!("  WRITER={writer}");
        println!("  OTHER_AUDIENCE={elsewhere}");
        println!("  curl -i -H \"Authorization: Bearer $READER\" {resource}                 # 200");
        println!("  curl -i -X POST -d hi -H \"Authorization: Bearer $READER\" {resource}   # 403 insufficient_scope");
        println!("  curl -i -X POST -d hi -H \"Authorization: Bearer $WRITER\" {resource}   # 200");
        println!("  curl -i -H \"Authorization: Bearer $OTHER_AUDIENCE\" {resource}         # 401 invalid_token");
    } else {
        println!("  curl -i -H \"Authorization: Bearer $TOKEN\" {resource}   # with a token from {issuer}");
    }
    println!();
    println!("Ctrl-C to stop.");

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Options, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        let o = args(&[
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            "https://idp.example.com/",
            "--jwks-uri",
            "https://idp.example.com/keys",
            "--resource",
            "https://api.example.com/mcp",
            "--scope",
            "a",
            "--scope",
            "b",
            "--allow-jwt-typ",
        ])
        .unwrap();
        assert_eq!(o.listen.port(), 0);
        assert_eq!(o.issuer.as_deref(), Some("https://idp.example.com/"));
        assert_eq!(o.scopes, ["a", "b"]);
        assert!(o.allow_jwt_typ);
        assert!(args(&["--jwks-uri", "https://x/keys"]).is_err());
        assert!(args(&["--listen", "nope"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--scope"]).is_err());
    }
}
