//! The bearer-guard demo: an MCP server (rmcp, streamable HTTP, axum) guarded by `BearerAuthLayer`, with
//! per-tool scopes read from the JSON-RPC body.
//!
//! ```text
//! cargo run --example demo                                  # embedded development issuer, works offline
//! cargo run --example demo -- --issuer https://idp.example.com/realms/demo --resource https://mcp.example.com/mcp
//! cargo run --example demo -- --help
//! ```
//!
//! Tools: `echo` needs `mcp:read`, `write_note` needs `mcp:write` (`mcp` implies both). By default the test
//! kit's development issuer runs embedded (JWKS, RFC 8414 metadata, RFC 7662 introspection and its
//! development authorization server, all on 127.0.0.1), so OAuth clients such as the MCP Inspector log in
//! through a consent page, offline; the demo finds the keys by discovery like it would with a real identity
//! provider, also mints tokens (JWT and opaque) and prints `curl` commands. With `--issuer` the same binary
//! guards against a real IdP. Real MCP clients (TypeScript, Python, rmcp) run the whole OAuth flow against
//! both (see tests/interop).

mod app;
mod dpop;
mod notes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bearer_guard::mcp::McpScopes;
use bearer_guard::scope::{Requirement, ScopeHierarchy};
use bearer_guard::testkit::{Consent, DevIssuer};
use bearer_guard::validate::IntrospectionValidatorBuilder;
use bearer_guard::{
    BearerAuthLayer, ClientAuth, FirstMatch, IntrospectionValidator, JwtValidator, TokenValidator,
};

const HELP: &str = "\
bearer-guard demo: an MCP server (rmcp, streamable HTTP) guarded by BearerAuthLayer.

Tools: echo (scope mcp:read) and write_note (scope mcp:write); `mcp` implies both.
Without --issuer, an embedded development issuer on 127.0.0.1 (JWKS, RFC 8414 metadata, RFC 7662
introspection, and a development authorization server: dynamic client registration, PKCE, a consent
page; no login, never for production) signs the tokens; OAuth clients such as the MCP Inspector log in
there, and the demo also prints tokens with ready-to-paste curl commands. Works offline.

USAGE:
    cargo run --example demo -- [OPTIONS]

OPTIONS:
    --listen ADDR              Address to listen on (default 127.0.0.1:3000; port 0 picks a free port)
    --resource URL             The protected resource identifier: the URL clients call and the audience
                               tokens must carry (default http://<listen address>/mcp). https, or http on
                               loopback. Its path is where the MCP endpoint is served.
    --issuer URL               Trust this issuer (exact issuer string, trailing slash and all); its keys are
                               found by RFC 8414 / OpenID discovery. Without it, the embedded development
                               issuer is used.
    --jwks-uri URL             With --issuer: fetch the keys from this JWKS URL instead of discovering it.
    --scope SCOPE              A scope every request needs (repeatable), advertised in scopes_supported and
                               named in 401 challenges. Default: mcp:read.
    --auto-consent             Without --issuer: grant every authorization request at once instead of
                               showing the consent page (for scripted clients).
    --allow-jwt-typ            Accept `typ: JWT` access tokens (Keycloak and other IdPs without at+jwt).
    --introspection-url URL    Also accept opaque tokens, checked with this RFC 7662 endpoint (JWTs of the
                               issuer are still verified locally).
    --introspect-jwts          Also introspect JWTs of issuers the JWT validator does not trust (default:
                               refused locally, without a call).
    --client-id ID             Client id for the introspection endpoint (client_secret_basic).
    --client-secret SECRET     Client secret for the introspection endpoint.
    --leeway SECS              Clock leeway for exp/nbf/iat (default 60).
    --introspection-cache-ttl SECS
                               How long an active introspection answer is reused (default 60; 0 = never).
    --dpop MODE                Accept DPoP-bound tokens with proofs (RFC 9449): `optional` (Bearer for
                               unbound tokens too) or `required` (DPoP only).
    --dpop-nonces              With --dpop: require server nonces (RFC 9449 §9; 401 use_dpop_nonce first).
    --redis URL                With --dpop: record proofs' jti in this Redis (redis://host:port/), shared
                               by every replica, instead of in memory.
    -h, --help                 Print this help.
";

#[derive(Debug)]
struct Options {
    listen: SocketAddr,
    resource: Option<String>,
    issuer: Option<String>,
    jwks_uri: Option<String>,
    scopes: Vec<String>,
    allow_jwt_typ: bool,
    auto_consent: bool,
    introspection_url: Option<String>,
    introspect_jwts: bool,
    client_id: Option<String>,
    client_secret: Option<String>,
    leeway: Option<Duration>,
    introspection_cache_ttl: Option<Duration>,
    dpop: dpop::DpopOptions,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        listen: ([127, 0, 0, 1], 3000).into(),
        resource: None,
        issuer: None,
        jwks_uri: None,
        scopes: Vec::new(),
        allow_jwt_typ: false,
        auto_consent: false,
        introspection_url: None,
        introspect_jwts: false,
        client_id: None,
        client_secret: None,
        leeway: None,
        introspection_cache_ttl: None,
        dpop: dpop::DpopOptions::default(),
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
            "--auto-consent" => options.auto_consent = true,
            "--introspection-url" => {
                options.introspection_url = Some(value("--introspection-url")?)
            }
            "--introspect-jwts" => options.introspect_jwts = true,
            "--dpop" => options.dpop.mode = Some(dpop::DpopOptions::parse_mode(&value("--dpop")?)?),
            "--dpop-nonces" => options.dpop.nonces = true,
            "--redis" => options.dpop.redis = Some(value("--redis")?),
            "--client-id" => options.client_id = Some(value("--client-id")?),
            "--client-secret" => options.client_secret = Some(value("--client-secret")?),
            "--leeway" => options.leeway = Some(seconds("--leeway", value("--leeway")?)?),
            "--introspection-cache-ttl" => {
                let v = value("--introspection-cache-ttl")?;
                options.introspection_cache_ttl = Some(seconds("--introspection-cache-ttl", v)?);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if options.jwks_uri.is_some() && options.issuer.is_none() {
        return Err("--jwks-uri needs --issuer (the issuer the tokens' `iss` must equal)".into());
    }
    if options.auto_consent && options.issuer.is_some() {
        return Err(
            "--auto-consent is for the embedded development issuer (without --issuer)".into(),
        );
    }
    if options.client_id.is_some() != options.client_secret.is_some() {
        return Err("--client-id and --client-secret go together".into());
    }
    if options.client_id.is_some() && options.introspection_url.is_none() {
        return Err("--client-id/--client-secret are for --introspection-url".into());
    }
    options.dpop.check()?;
    Ok(options)
}

fn seconds(flag: &str, value: String) -> Result<Duration, String> {
    value
        .parse()
        .map(Duration::from_secs)
        .map_err(|_| format!("{flag}: {value:?} is not a number of seconds"))
}

/// The path of the MCP endpoint: the path of the resource URL (`/mcp` by default).
fn endpoint_path(resource: &str) -> String {
    let after_scheme = resource.find("://").map_or(0, |i| i + 3);
    match resource[after_scheme..].find('/') {
        Some(i) => resource[after_scheme + i..].to_owned(),
        None => "/".to_owned(),
    }
}

/// The host of the resource URL (what rmcp's DNS-rebinding protection must allow).
fn resource_host(resource: &str) -> String {
    let after_scheme = resource.find("://").map_or(0, |i| i + 3);
    let rest = &resource[after_scheme..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    authority.to_owned()
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
            let consent = if options.auto_consent {
                Consent::Auto
            } else {
                Consent::Page
            };
            let dev = DevIssuer::builder()
                .authorization_server(consent)
                .start()
                .await?;
            (dev.issuer().to_owned(), Some(dev))
        }
    };

    let leeway = options
        .leeway
        .unwrap_or(bearer_guard::validate::DEFAULT_LEEWAY);
    let mut jwt = JwtValidator::builder(&issuer)
        .allow_jwt_typ(options.allow_jwt_typ)
        .leeway(leeway);
    if let Some(jwks_uri) = &options.jwks_uri {
        jwt = jwt.jwks_uri(jwks_uri);
    }
    let jwt = jwt.build()?;
    match tokio::time::timeout(Duration::from_secs(10), jwt.ready()).await {
        Ok(Ok(())) => println!("signing keys loaded from {issuer}"),
        _ => eprintln!(
            "warning: the signing keys of {issuer} could not be loaded yet; requests get 503 until they are"
        ),
    }
    let cache_ttl = options.introspection_cache_ttl;
    let introspect_jwts = options.introspect_jwts;
    let with_cache = move |builder: IntrospectionValidatorBuilder| {
        let builder = builder.introspect_jwts(introspect_jwts);
        match cache_ttl {
            Some(ttl) if ttl.is_zero() => builder.no_cache(),
            Some(ttl) => builder.cache(10_000, ttl),
            None => builder,
        }
    };
    let introspection = match (&options.introspection_url, &dev_issuer) {
        (Some(url), _) => {
            let mut builder = with_cache(
                IntrospectionValidator::builder()
                    .endpoint(url)
                    .issuer(&issuer)
                    .leeway(leeway),
            );
            if let (Some(id), Some(secret)) = (&options.client_id, &options.client_secret) {
                builder = builder.client_auth(ClientAuth::basic(id, secret));
            }
            Some(builder.build()?)
        }
        (None, Some(dev)) => Some(
            with_cache(
                IntrospectionValidator::builder()
                    .endpoint(dev.introspection_endpoint())
                    .issuer(&issuer)
                    .leeway(leeway),
            )
            .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
            .build()?,
        ),
        (None, None) => None,
    };
    let validator: Arc<dyn TokenValidator> = match introspection {
        Some(introspection) => Arc::new(FirstMatch::new().then(jwt).then(introspection)),
        None => Arc::new(jwt),
    };

    let baseline = if options.scopes.is_empty() {
        vec!["mcp:read".to_owned()]
    } else {
        options.scopes.clone()
    };
    let mut scopes_supported = baseline.clone();
    scopes_supported.extend(["mcp:read", "mcp:write"].map(String::from));
    scopes_supported.dedup();
    let mut guard = BearerAuthLayer::builder()
        .resource(&resource)
        .authorization_server(&issuer)
        .scopes_supported(scopes_supported)
        .shared_validator(validator)
        .require(Requirement::all_of(&baseline))
        .scope_hierarchy(ScopeHierarchy::new().implies("mcp", ["mcp:read", "mcp:write"]));
    if let Some(config) = options.dpop.config().await? {
        guard = guard.dpop(config);
    }
    let guard = guard.build()?;
    // The guard and the per-tool scopes as one layer: one 403 names every scope an operation needs.
    let guard_with_tools = guard.mcp_guard(
        McpScopes::new()
            .tool("echo", Requirement::all_of(["mcp:read"]))
            .tool("write_note", Requirement::all_of(["mcp:write"]))
            .fallback(Requirement::all_of(&baseline)),
    )?;

    let app = app::mcp_router(&endpoint_path(&resource), resource_host(&resource), addr)
        .layer(guard_with_tools);

    println!("bearer-guard demo: MCP server listening on http://{addr}");
    println!("  MCP endpoint (resource): {resource}");
    println!("  protected resource metadata: {}", guard.metadata_url());
    println!("  authorization server (issuer): {issuer}");
    println!("  tools: echo (mcp:read), write_note (mcp:write)");
    println!();
    println!("Connect an MCP client (streamable HTTP) to {resource}.");
    if let Some(dev) = &dev_issuer {
        println!("  OAuth clients discover the embedded development authorization server from the 401 challenge,");
        println!(
            "  register themselves and send you to its consent page ({}):",
            dev.authorization_endpoint()
        );
        println!("  click Allow (no login: development only). With the MCP Inspector:");
        println!("    npx @modelcontextprotocol/inspector");
        println!("    Transport Type: Streamable HTTP, URL: {resource}, then Connect (or Open Auth Settings ->");
        println!("    Quick OAuth Flow). Calling write_note asks again, for mcp:write (step-up).");
        println!("  Or paste a token below as a header: `Authorization: Bearer $WRITER`.");
    } else {
        println!(
            "  OAuth-capable clients discover {issuer} from the 401 challenge and log in there."
        );
    }
    println!();
    println!("Try:");
    let mcp_headers =
        "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'";
    println!("  curl -i {resource}          # 401 + WWW-Authenticate challenge");
    println!("  curl -i {}", guard.metadata_url());
    if options.dpop.required() {
        println!("  # --dpop required: the Bearer commands below get 401 (only the DPoP one at the end works).");
    }
    if let Some(dev) = &dev_issuer {
        let token = |subject: &str, scope: &str| {
            dev.token()
                .subject(subject)
                .audience(&resource)
                .scope(scope)
                .expires_in(3600)
                .sign()
        };
        let reader = token("reader", "mcp:read")?;
        let writer = token("writer", "mcp:read mcp:write")?;
        let opaque = dev
            .opaque_token()
            .subject("opaque-user")
            .audience(&resource)
            .scope("mcp:read")
            .expires_in(3600)
            .issue();
        println!("  export READER={reader}");
        println!("  export WRITER={writer}");
        println!("  export OPAQUE={opaque}");
        let call = |token: &str, tool: &str, args: &str| {
            format!(
                "  curl -s {mcp_headers} -H \"Authorization: Bearer ${token}\" -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"{tool}\",\"arguments\":{args}}}}}' {resource}"
            )
        };
        println!(
            "  curl -s {mcp_headers} -H \"Authorization: Bearer $READER\" -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}' {resource}"
        );
        println!("{}   # 200", call("READER", "echo", "{\"text\":\"hi\"}"));
        println!(
            "{}   # 403 insufficient_scope, scope=\"mcp:write\"",
            call("READER", "write_note", "{\"note\":\"hi\"}")
        );
        println!(
            "{}   # 200",
            call("WRITER", "write_note", "{\"note\":\"hi\"}")
        );
        println!(
            "{}   # 200 (introspected)",
            call("OPAQUE", "echo", "{\"text\":\"hi\"}")
        );
        options.dpop.print_example(dev, &resource, mcp_headers)?;
    } else {
        println!("  curl -i -H \"Authorization: Bearer $TOKEN\" {mcp_headers} -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}' {resource}");
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
            "--introspection-url",
            "https://idp.example.com/introspect",
            "--client-id",
            "rs",
            "--client-secret",
            "s",
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
        assert!(args(&["--client-id", "x"]).is_err());
        assert!(args(&["--client-id", "x", "--client-secret", "y"]).is_err());
        let o = args(&["--leeway", "0", "--introspection-cache-ttl", "2"]).unwrap();
        assert_eq!(o.leeway, Some(Duration::ZERO));
        assert_eq!(o.introspection_cache_ttl, Some(Duration::from_secs(2)));
        assert!(args(&["--leeway", "x"]).is_err());
        assert!(args(&["--auto-consent"]).unwrap().auto_consent);
        assert!(args(&["--auto-consent", "--issuer", "https://idp.example.com"]).is_err());
    }

    #[test]
    fn endpoint_from_resource() {
        assert_eq!(endpoint_path("http://127.0.0.1:3000/mcp"), "/mcp");
        assert_eq!(endpoint_path("https://h.example.com/a/mcp"), "/a/mcp");
        assert_eq!(endpoint_path("https://h.example.com"), "/");
        assert_eq!(
            resource_host("https://h.example.com:8443/mcp"),
            "h.example.com:8443"
        );
    }
}
