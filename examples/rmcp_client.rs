//! The rmcp MCP client (with its `auth` feature) end to end against an MCP server guarded by
//! bearer-guard, with a real authorization server behind it and no browser. Part of the interop
//! tests (tests/interop, `node run-e2e.mjs --client rmcp ...`).
//!
//! ```text
//! cargo run --example rmcp_client -- --server http://127.0.0.1:PORT/mcp [--timeout 90] [--verbose]
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

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use reqwest::Url;
use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage};
use rmcp::service::ServiceError;
use rmcp::transport::auth::{
    default_oauth_http_client, AuthClient, AuthorizationCallback, AuthorizationRequest,
    OAuthHttpClient, OAuthHttpClientFuture, OAuthHttpRequest, OAuthState, WWWAuthenticateParams,
};
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

// --- reporting ---------------------------------------------------------------------------------

#[derive(Default)]
struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    fn ok(&mut self, name: &str, cond: bool, detail: impl AsRef<str>) -> bool {
        if cond {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        let detail = detail.as_ref();
        let sep = if detail.is_empty() { "" } else { " - " };
        println!("{} {name}{sep}{detail}", if cond { "PASS" } else { "FAIL" });
        cond
    }

    fn info(&self, name: &str, detail: impl AsRef<str>) {
        println!("INFO {name} - {}", detail.as_ref());
    }
}

// --- recorded HTTP exchanges ---------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Form {
    names: Vec<String>,
    grant_type: Option<String>,
    resource: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct TokenSummary {
    scope: Option<String>,
    has_refresh_token: bool,
    is_jwt: bool,
    typ: Option<String>,
    alg: Option<String>,
    aud: Option<Value>,
    jwt_scope: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Exchange {
    method: String,
    url: String,
    has_authorization: bool,
    form: Option<Form>,
    /// JSON-RPC method of an MCP POST, and the tool of a `tools/call`.
    jsonrpc: Option<String>,
    tool: Option<String>,
    /// The DCR request body (public metadata, no secret).
    registration: Option<Value>,
    status: Option<u16>,
    www_authenticate: Option<String>,
    /// A JSON response (metadata, registration without its secrets).
    json: Option<Value>,
    token: Option<TokenSummary>,
    error: Option<String>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Exchange>>>);

impl Recorder {
    fn push(&self, e: Exchange) -> usize {
        let mut v = self.0.lock().unwrap();
        v.push(e);
        v.len() - 1
    }
    fn update(&self, i: usize, f: impl FnOnce(&mut Exchange)) {
        f(&mut self.0.lock().unwrap()[i]);
    }
    fn snapshot(&self) -> Vec<Exchange> {
        self.0.lock().unwrap().clone()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

static VERBOSE: AtomicBool = AtomicBool::new(false);

fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

fn parse_form(body: &[u8]) -> Form {
    let mut url = Url::parse("http://form.invalid/").expect("static URL");
    url.set_query(Some(&String::from_utf8_lossy(body)));
    let mut form = Form::default();
    for (k, v) in url.query_pairs() {
        if !form.names.contains(&k.to_string()) {
            form.names.push(k.to_string());
        }
        match k.as_ref() {
            "grant_type" => form.grant_type = Some(v.into_owned()),
            "resource" => form.resource.push(v.into_owned()),
            _ => {}
        }
    }
    form.names.sort();
    form
}

fn b64url_json(part: &str) -> Option<Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn is_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// What may be printed about a token response: never the token values.
fn token_summary(j: &Value) -> TokenSummary {
    let access = j.get("access_token").and_then(Value::as_str).unwrap_or("");
    let mut s = TokenSummary {
        scope: j.get("scope").and_then(Value::as_str).map(str::to_owned),
        has_refresh_token: j.get("refresh_token").is_some_and(Value::is_string),
        is_jwt: is_jwt(access),
        ..TokenSummary::default()
    };
    if s.is_jwt {
        let mut parts = access.split('.');
        let header = parts.next().and_then(b64url_json).unwrap_or(Value::Null);
        let payload = parts.next().and_then(b64url_json).unwrap_or(Value::Null);
        s.typ = header.get("typ").and_then(Value::as_str).map(str::to_owned);
        s.alg = header.get("alg").and_then(Value::as_str).map(str::to_owned);
        s.aud = payload.get("aud").cloned();
        s.jwt_scope = payload
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    s
}

/// Wraps rmcp's default OAuth HTTP client and records every OAuth request it makes (the probe,
/// metadata discovery, registration, token requests).
struct RecordingOAuthHttp {
    inner: Box<dyn OAuthHttpClient>,
    rec: Recorder,
}

impl OAuthHttpClient for RecordingOAuthHttp {
    fn execute(&self, request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
        let req = &request.request;
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut e = Exchange {
            method: req.method().to_string(),
            url: req.uri().to_string(),
            has_authorization: req.headers().contains_key(http::header::AUTHORIZATION),
            ..Exchange::default()
        };
        if content_type.contains("x-www-form-urlencoded") {
            e.form = Some(parse_form(req.body()));
        } else if content_type.contains("json") {
            e.registration = serde_json::from_slice(req.body()).ok();
        }
        let is_grant = e.form.as_ref().is_some_and(|f| f.grant_type.is_some());
        let i = self.rec.push(e);
        Box::pin(async move {
            let result = self.inner.execute(request).await;
            match &result {
                Ok(resp) => self.rec.update(i, |e| {
                    e.status = Some(resp.status().as_u16());
                    e.www_authenticate = resp
                        .headers()
                        .get(http::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    if let Ok(mut j) = serde_json::from_slice::<Value>(resp.body()) {
                        e.error = j.get("error").and_then(Value::as_str).map(str::to_owned);
                        if is_grant {
                            e.token = Some(token_summary(&j));
                        } else {
                            if let Some(o) = j.as_object_mut() {
                                o.remove("registration_access_token");
                                o.remove("client_secret");
                            }
                            e.json = Some(j);
                        }
                    }
                    if verbose() {
                        eprintln!("[rmcp_client] {} {} -> {:?}", e.method, e.url, e.status);
                    }
                }),
                Err(err) => self.rec.update(i, |e| e.error = Some(err.to_string())),
            }
            result
        })
    }
}

/// Wraps reqwest's `StreamableHttpClient` and records every MCP request: JSON-RPC method, whether
/// it carried a token, and the outcome (a 401/403 comes back as an error carrying the challenge).
#[derive(Clone)]
struct RecordingHttp {
    inner: reqwest::Client,
    rec: Recorder,
}

impl RecordingHttp {
    fn start(
        &self,
        method: &str,
        uri: &str,
        msg: Option<&ClientJsonRpcMessage>,
        auth: &Option<String>,
    ) -> usize {
        let v = msg
            .and_then(|m| serde_json::to_value(m).ok())
            .unwrap_or(Value::Null);
        let jsonrpc = v
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| msg.map(|_| "response".to_owned()));
        let tool = (jsonrpc.as_deref() == Some("tools/call"))
            .then(|| v.pointer("/params/name").and_then(Value::as_str))
            .flatten()
            .map(str::to_owned);
        self.rec.push(Exchange {
            method: method.to_owned(),
            url: uri.to_owned(),
            has_authorization: auth.is_some(),
            jsonrpc,
            tool,
            ..Exchange::default()
        })
    }

    fn finish<T>(&self, i: usize, result: &Result<T, StreamableHttpError<reqwest::Error>>) {
        self.rec.update(i, |e| match result {
            Ok(_) => e.status = Some(200),
            Err(StreamableHttpError::AuthRequired(a)) => {
                e.status = Some(401);
                e.www_authenticate = Some(a.www_authenticate_header.clone());
            }
            Err(StreamableHttpError::InsufficientScope(s)) => {
                e.status = Some(403);
                e.www_authenticate = Some(s.www_authenticate_header.clone());
            }
            Err(StreamableHttpError::HttpStatus(s)) => e.status = Some(s.status),
            Err(other) => e.error = Some(other.to_string()),
        });
        if verbose() {
            let e = &self.rec.snapshot()[i];
            eprintln!(
                "[rmcp_client] {} {} ({:?}) -> {:?} {:?}",
                e.method, e.url, e.jsonrpc, e.status, e.error
            );
        }
    }
}

impl StreamableHttpClient for RecordingHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("POST", &uri, Some(&message), &auth_header);
        let r = self
            .inner
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await;
        self.finish(i, &r);
        r
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("POST", &uri, Some(&message), &auth_header);
        let r = self
            .inner
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.finish(i, &r);
        r
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("POST", &uri, Some(&message), &auth_header);
        let r = self
            .inner
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await;
        self.finish(i, &r);
        r
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let i = self.start("DELETE", &uri, None, &auth_header);
        let r = self
            .inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await;
        self.finish(i, &r);
        r
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("GET", &uri, None, &auth_header);
        let r = self
            .inner
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await;
        self.finish(i, &r);
        r
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("GET", &uri, None, &auth_header);
        let r = self
            .inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.finish(i, &r);
        r
    }
}

// --- the "browser" ---------------------------------------------------------------------------------

/// Just enough of a cookie jar for oidc-provider: host, path, name, value; a cookie set with
/// `Max-Age<=0` or an `Expires` in 1970 is deleted.
#[derive(Default)]
struct CookieJar(HashMap<(String, String, String), String>);

impl CookieJar {
    fn capture(&mut self, url: &Url, resp: &reqwest::Response) {
        let host = url.host_str().unwrap_or("").to_owned();
        for line in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(line) = line.to_str() else { continue };
            let mut attrs = line.split(';');
            let Some((name, value)) = attrs.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut path = "/".to_owned();
            let mut delete = false;
            for attr in attrs {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "path" if v.trim().starts_with('/') => path = v.trim().to_owned(),
                    "max-age" => delete |= v.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                    "expires" => delete |= v.contains("1970"),
                    _ => {}
                }
            }
            let key = (host.clone(), path, name.trim().to_owned());
            if delete {
                self.0.remove(&key);
            } else {
                self.0.insert(key, value.trim().to_owned());
            }
        }
    }

    fn header(&self, url: &Url) -> Option<String> {
        let host = url.host_str().unwrap_or("");
        let p = url.path();
        let pairs: Vec<String> = self
            .0
            .iter()
            .filter(|((h, cp, _), _)| {
                h == host
                    && (p == cp
                        || (p.starts_with(cp.as_str())
                            && (cp.ends_with('/') || p[cp.len()..].starts_with('/'))))
            })
            .map(|((_, _, n), v)| format!("{n}={v}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

struct Browser {
    http: reqwest::Client,
    jar: CookieJar,
}

impl Browser {
    /// GETs `url` and follows redirects by hand (with the cookie jar) until a Location starts with
    /// `redirect_uri`; returns that callback URL and the hops (status + path, safe to print).
    async fn follow(
        &mut self,
        url: &str,
        redirect_uri: &str,
    ) -> Result<(String, Vec<String>), String> {
        let mut url = Url::parse(url).map_err(|e| e.to_string())?;
        let mut hops = Vec::new();
        for _ in 0..12 {
            let mut req = self.http.get(url.clone());
            if let Some(cookie) = self.jar.header(&url) {
                req = req.header(reqwest::header::COOKIE, cookie);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            self.jar.capture(&url, &resp);
            let status = resp.status();
            let path = shorten_uid(url.path());
            hops.push(format!("{} {path}", status.as_u16()));
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                let body = resp.text().await.unwrap_or_default();
                let text: String = body.chars().take(300).collect();
                return Err(format!(
                    "authorization stopped at HTTP {status} on {path}: {text}"
                ));
            };
            let next = url.join(&location).map_err(|e| e.to_string())?;
            if next.as_str().starts_with(redirect_uri) {
                return Ok((next.to_string(), hops));
            }
            url = next;
        }
        Err("authorization did not reach the redirect URI within 12 hops".into())
    }
}

fn shorten_uid(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((head, last)) if last.len() >= 20 => format!("{head}/:uid"),
        _ => path.to_owned(),
    }
}

// --- helpers -----------------------------------------------------------------------------------------

fn scopes(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn covers(have: Option<&str>, need: Option<&str>) -> bool {
    let have = scopes(have);
    let need = scopes(need);
    !need.is_empty() && need.iter().all(|s| have.contains(s))
}

fn same_url(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn query(url: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if let Ok(u) = Url::parse(url) {
        for (k, v) in u.query_pairs() {
            out.entry(k.into_owned()).or_default().push(v.into_owned());
        }
    }
    out
}

fn first(q: &HashMap<String, Vec<String>>, k: &str) -> Option<String> {
    q.get(k).and_then(|v| v.first()).cloned()
}

fn text_of(result: &impl serde::Serialize) -> String {
    let v = serde_json::to_value(result).unwrap_or(Value::Null);
    v.get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect::<String>()
        })
        .unwrap_or_default()
}

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9)
}

fn args_object(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn mcp_http(rec: &Recorder) -> Result<RecordingHttp, reqwest::Error> {
    Ok(RecordingHttp {
        inner: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        rec: rec.clone(),
    })
}

fn describe_service_error(e: &ServiceError) -> String {
    match e.auth_challenge() {
        Some(ch) => format!("rmcp error with challenge: WWW-Authenticate: {ch}"),
        None => e.to_string(),
    }
}

// --- the flow ----------------------------------------------------------------------------------------

async fn run(c: &mut Checks, server: &str) -> Result<(), Box<dyn std::error::Error>> {
    let server_url = Url::parse(server)?;
    let rec = Recorder::default();
    let opaque = server_url.path().ends_with("/opaque-mcp");

    // 0) initialize without a token, as any MCP client starts: the guard answers 401 with a challenge.
    let plain = StreamableHttpClientTransport::with_client(
        mcp_http(&rec)?,
        StreamableHttpClientTransportConfig::with_uri(server),
    );
    match ().serve(plain).await {
        Ok(client) => {
            c.ok(
                "initialize without a token is refused (401)",
                false,
                "connected without a token?!",
            );
            let _ = client.cancel().await;
        }
        Err(e) => {
            let ch = e.auth_challenge().map(str::to_owned);
            let params = ch
                .as_deref()
                .map(|h| WWWAuthenticateParams::parse(h, &server_url));
            c.ok(
                "initialize without a token: 401, rmcp reports AuthRequired with WWW-Authenticate: Bearer resource_metadata=..., scope=...",
                e.is_authorization_required()
                    && ch.as_deref().is_some_and(|h| h.starts_with("Bearer "))
                    && params.as_ref().is_some_and(|p| p.resource_metadata_url.is_some()),
                format!("WWW-Authenticate: {}", ch.as_deref().unwrap_or("none")),
            );
            c.ok(
                "401 without a token carries no error code (RFC 6750 §3.1)",
                params.as_ref().is_some_and(|p| p.error.is_none()),
                format!("error={:?}", params.as_ref().and_then(|p| p.error.clone())),
            );
        }
    }

    // 1) rmcp's OAuth: probe, discovery, registration, authorization URL.
    let oauth_http: Arc<dyn OAuthHttpClient> = Arc::new(RecordingOAuthHttp {
        inner: Box::new(default_oauth_http_client()?),
        rec: rec.clone(),
    });
    let redirect_uri = format!("http://localhost:{}/callback", unused_port());
    let mut state = OAuthState::new_with_oauth_http_client(server, oauth_http).await?;
    let oauth_from = rec.len();
    // Initial scope selection: the probe's challenge scope (else PRM scopes_supported). rmcp's
    // default selection would request the union of the challenge and PRM scopes_supported, i.e.
    // mcp:write up front, and no step-up would ever be needed.
    let started = state
        .start_authorization(
            AuthorizationRequest::new(&redirect_uri)
                .with_client_name("bearer-guard interop (rmcp)")
                .with_initial_scope_selection(),
        )
        .await;
    let log = rec.snapshot();
    let log = &log[oauth_from..];

    let probe = log
        .iter()
        .find(|e| e.method == "GET" && same_url(&e.url, server));
    let probe_ch = probe
        .and_then(|e| e.www_authenticate.as_deref())
        .map(|h| WWWAuthenticateParams::parse(h, &server_url));
    c.ok(
        "rmcp probe: unauthenticated GET of the MCP URL -> 401 with resource_metadata",
        probe.is_some_and(|e| e.status == Some(401))
            && probe_ch
                .as_ref()
                .is_some_and(|p| p.resource_metadata_url.is_some()),
        probe.map_or("no probe seen".into(), |e| {
            format!(
                "HTTP {:?} WWW-Authenticate: {}",
                e.status,
                e.www_authenticate.as_deref().unwrap_or("none")
            )
        }),
    );
    let challenge_scope = probe_ch.as_ref().and_then(|p| p.scope.clone());
    let prm_url = probe_ch
        .as_ref()
        .and_then(|p| p.resource_metadata_url.clone());
    let prm_get = log.iter().find(|e| {
        e.method == "GET"
            && prm_url
                .as_ref()
                .is_some_and(|u| same_url(&e.url, u.as_str()))
    });
    c.ok(
        "resource_metadata followed (rmcp fetched exactly the advertised PRM URL)",
        prm_get.is_some(),
        prm_get.map_or_else(
            || {
                let seen: Vec<&str> = log
                    .iter()
                    .filter(|e| e.url.contains("oauth-protected-resource"))
                    .map(|e| e.url.as_str())
                    .collect();
                format!("PRM fetches: {seen:?}")
            },
            |e| e.url.clone(),
        ),
    );
    let prm = prm_get.and_then(|e| e.json.clone()).unwrap_or(Value::Null);
    let prm_resource = prm
        .get("resource")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let issuer = prm
        .pointer("/authorization_servers/0")
        .and_then(Value::as_str)
        .map(str::to_owned);
    c.ok(
        "PRM fetched: 200, resource = server URL, authorization_servers non-empty",
        prm_get.is_some_and(|e| e.status == Some(200))
            && prm_resource.as_deref() == Some(server)
            && issuer.is_some(),
        format!(
            "resource={} authorization_servers={} scopes_supported={}",
            prm.get("resource").unwrap_or(&Value::Null),
            prm.get("authorization_servers").unwrap_or(&Value::Null),
            prm.get("scopes_supported").unwrap_or(&Value::Null)
        ),
    );
    let as_get = log.iter().find(|e| {
        e.method == "GET"
            && e.status == Some(200)
            && e.json.as_ref().is_some_and(|j| j.get("issuer").is_some())
            && (e.url.contains("/.well-known/oauth-authorization-server")
                || e.url.contains("/.well-known/openid-configuration"))
    });
    let as_meta = as_get.and_then(|e| e.json.clone()).unwrap_or(Value::Null);
    let as_str = |k: &str| as_meta.get(k).and_then(Value::as_str).map(str::to_owned);
    c.ok(
        "AS metadata fetched (RFC 8414 path), issuer matches PRM",
        as_get.is_some_and(|e| e.url.contains("oauth-authorization-server"))
            && as_str("issuer").is_some()
            && as_str("issuer") == issuer,
        as_get.map_or("none".into(), |e| {
            format!("{} issuer={:?}", e.url, as_str("issuer"))
        }),
    );
    let token_endpoint = as_str("token_endpoint").unwrap_or_default();
    let reg = as_str("registration_endpoint").and_then(|r| {
        log.iter()
            .find(|e| e.method == "POST" && same_url(&e.url, &r))
    });
    c.ok(
        "dynamic client registration 201 (public client, loopback redirect)",
        reg.is_some_and(|e| {
            e.status == Some(201)
                && e.json
                    .as_ref()
                    .is_some_and(|j| j.get("client_id").is_some())
        }),
        reg.map_or("no registration request".into(), |e| {
            let mut sent = e.registration.clone().unwrap_or(Value::Null);
            if let Some(o) = sent.as_object_mut() {
                o.remove("client_name");
            }
            format!(
                "HTTP {:?} sent={sent} {}",
                e.status,
                e.error.as_deref().unwrap_or("")
            )
        }),
    );
    if let Err(e) = started {
        c.ok("rmcp start_authorization", false, format!("error: {e}"));
        return Ok(());
    }

    // 2) Authorization: follow the URL rmcp built, hand the callback URL back to rmcp.
    let auth_url = state.get_authorization_url().await?;
    let q = query(&auth_url);
    let mut browser = Browser {
        http: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        jar: CookieJar::default(),
    };
    let followed = browser.follow(&auth_url, &redirect_uri).await;
    let (callback, hops) = match &followed {
        Ok((cb, hops)) => (Some(cb.clone()), hops.join(" -> ")),
        Err(e) => (None, e.clone()),
    };
    let cbq = callback.as_deref().map(query).unwrap_or_default();
    c.ok(
        "authorization: S256 PKCE, scope from the challenge, resource = PRM resource, code returned",
        first(&q, "code_challenge_method").as_deref() == Some("S256")
            && first(&q, "code_challenge").is_some()
            && covers(first(&q, "scope").as_deref(), challenge_scope.as_deref())
            && q.get("resource").map(Vec::as_slice) == prm_resource.as_ref().map(std::slice::from_ref)
            && first(&cbq, "code").is_some()
            && first(&cbq, "iss") == issuer,
        format!(
            "scope={:?} resource={:?} iss={:?} hops={hops}",
            first(&q, "scope"),
            q.get("resource"),
            first(&cbq, "iss")
        ),
    );
    if first(&q, "scope") != challenge_scope {
        c.info(
            "requested scope",
            format!(
                "challenge scope={challenge_scope:?}, rmcp asked for {:?} (SEP-2207: it adds offline_access when the AS supports it)",
                first(&q, "scope")
            ),
        );
    }
    let Some(callback) = callback else {
        return Ok(());
    };
    let before_token = rec.len();
    let exchanged = state.handle_callback_url(&callback).await;
    let log = rec.snapshot();
    let tok1 = log[before_token..].iter().find(|e| {
        same_url(&e.url, &token_endpoint)
            && e.form.as_ref().and_then(|f| f.grant_type.as_deref()) == Some("authorization_code")
    });
    c.ok(
        "token: authorization_code grant 200 (state and iss checked by rmcp), request carried resource + code_verifier",
        exchanged.is_ok()
            && tok1.is_some_and(|e| {
                let f = e.form.clone().unwrap_or_default();
                e.status == Some(200)
                    && f.resource.as_slice() == prm_resource.as_slice()
                    && f.names.iter().any(|n| n == "code_verifier")
            }),
        match (tok1, &exchanged) {
            (_, Err(e)) => format!("rmcp: {e}"),
            (Some(e), _) => {
                let f = e.form.clone().unwrap_or_default();
                format!(
                    "HTTP {:?} params={} resource={:?}",
                    e.status,
                    f.names.join(","),
                    f.resource
                )
            }
            (None, _) => "no token request".into(),
        },
    );
    let t1 = tok1.and_then(|e| e.token.clone()).unwrap_or_default();
    if opaque {
        c.ok(
            "access token: opaque (as.mjs rule for */opaque-mcp), scope covers the challenge scope",
            !t1.is_jwt && covers(t1.scope.as_deref(), challenge_scope.as_deref()),
            format!(
                "scope={:?} refresh_token={}",
                t1.scope, t1.has_refresh_token
            ),
        );
    } else {
        c.ok(
            "access token: JWT typ at+jwt, aud = resource, scope covers the challenge scope",
            t1.is_jwt
                && t1.typ.as_deref() == Some("at+jwt")
                && t1.aud.as_ref().and_then(Value::as_str) == prm_resource.as_deref()
                && covers(t1.jwt_scope.as_deref(), challenge_scope.as_deref()),
            format!(
                "typ={:?} alg={:?} aud={:?} scope={:?} refresh_token={}",
                t1.typ, t1.alg, t1.aud, t1.jwt_scope, t1.has_refresh_token
            ),
        );
    }
    if exchanged.is_err() {
        return Ok(());
    }
    let Some(manager) = state.into_authorization_manager() else {
        c.ok(
            "rmcp OAuthState authorized",
            false,
            "not in the Authorized state",
        );
        return Ok(());
    };

    // 3) MCP over StreamableHttpClientTransport with the AuthClient: initialize, tools/list, echo.
    let auth_client = AuthClient::new(mcp_http(&rec)?, manager);
    let mcp_from = rec.len();
    let transport = StreamableHttpClientTransport::with_client(
        auth_client.clone(),
        StreamableHttpClientTransportConfig::with_uri(server),
    );
    let client = match ().serve(transport).await {
        Ok(client) => client,
        Err(e) => {
            c.ok("initialize", false, format!("error: {e}"));
            return Ok(());
        }
    };
    let log = rec.snapshot();
    let init = log[mcp_from..]
        .iter()
        .find(|e| e.jsonrpc.as_deref() == Some("initialize"));
    let peer = client.peer_info();
    c.ok(
        "initialize: 200 with the token",
        init.is_some_and(|e| e.status == Some(200) && e.has_authorization) && peer.is_some(),
        format!(
            "server={:?} protocol={:?}",
            peer.as_ref()
                .and_then(|p| p.server_info.as_ref())
                .map(|i| i.name.clone()),
            peer.as_ref().map(|p| p.protocol_version.to_string())
        ),
    );

    match client.list_tools(None).await {
        Ok(list) => {
            let names: Vec<String> = list.tools.iter().map(|t| t.name.to_string()).collect();
            c.ok(
                "tools/list contains echo and write_note",
                names.iter().any(|n| n == "echo") && names.iter().any(|n| n == "write_note"),
                names.join(", "),
            );
        }
        Err(e) => {
            c.ok("tools/list", false, describe_service_error(&e));
        }
    }
    let echo = |text: &str| {
        CallToolRequestParams::new("echo").with_arguments(args_object(json!({ "text": text })))
    };
    match client.call_tool(echo("hello interop")).await {
        Ok(r) => {
            c.ok(
                "tools/call echo succeeds",
                r.is_error != Some(true) && text_of(&r).contains("hello interop"),
                format!("{:?}", text_of(&r)),
            );
        }
        Err(e) => {
            c.ok("tools/call echo", false, describe_service_error(&e));
        }
    }

    // 4) write_note with a token lacking mcp:write -> 403 insufficient_scope -> explicit step-up.
    let write = || {
        CallToolRequestParams::new("write_note")
            .with_arguments(args_object(json!({ "note": "written after step-up" })))
    };
    let before_write = rec.len();
    let first_try = client.call_tool(write()).await;
    let forbidden = rec.snapshot()[before_write..]
        .iter()
        .any(|e| e.status == Some(403) && e.tool.as_deref() == Some("write_note"));
    let challenge = match &first_try {
        Err(e) => e.auth_challenge().map(str::to_owned),
        Ok(_) => None,
    };
    let params = challenge
        .as_deref()
        .map(|h| WWWAuthenticateParams::parse(h, &server_url));
    let required = params.as_ref().and_then(|p| p.scope.clone());
    c.ok(
        "write_note with mcp:read only -> 403 error=\"insufficient_scope\" naming mcp:write (rmcp: is_insufficient_scope)",
        forbidden
            && params.as_ref().is_some_and(|p| p.is_insufficient_scope())
            && scopes(required.as_deref()).iter().any(|s| s == "mcp:write"),
        match &first_try {
            Ok(r) => format!("call succeeded without step-up?! {:?}", text_of(r)),
            Err(e) => describe_service_error(e),
        },
    );
    let Some(required) = required else {
        let _ = client.cancel().await;
        return Ok(());
    };
    // rmcp does not re-authorize by itself: request_scope_upgrade builds the authorization URL for
    // the union of the granted and the challenged scopes (SEP-2350).
    let upgrade_url = auth_client
        .auth_manager
        .lock()
        .await
        .request_scope_upgrade(&required)
        .await;
    let step_up = async {
        let url = upgrade_url.map_err(|e| format!("request_scope_upgrade: {e}"))?;
        let uq = query(&url);
        let (cb, hops) = browser.follow(&url, &redirect_uri).await?;
        let cbk = AuthorizationCallback::from_redirect_url(&cb).map_err(|e| e.to_string())?;
        let before = rec.len();
        auth_client
            .auth_manager
            .lock()
            .await
            .exchange_code_for_token_with_issuer(&cbk.code, &cbk.csrf_token, cbk.issuer.as_deref())
            .await
            .map_err(|e| format!("exchange_code_for_token_with_issuer: {e}"))?;
        Ok::<_, String>((uq, hops, before))
    }
    .await;
    let before = match step_up {
        Ok((uq, hops, before)) => {
            c.ok(
                "step-up with rmcp's API: request_scope_upgrade -> new authorization requesting the challenge scope (with resource)",
                covers(first(&uq, "scope").as_deref(), Some(&required))
                    && uq.get("resource").map(Vec::as_slice) == prm_resource.as_ref().map(std::slice::from_ref),
                format!(
                    "scope={:?} resource={:?} hops={}",
                    first(&uq, "scope"),
                    uq.get("resource"),
                    hops.join(" -> ")
                ),
            );
            before
        }
        Err(e) => {
            c.ok("step-up with rmcp's API", false, e);
            let _ = client.cancel().await;
            return Ok(());
        }
    };
    let log = rec.snapshot();
    let tok2 = log[before..].iter().find(|e| {
        e.form.as_ref().and_then(|f| f.grant_type.as_deref()) == Some("authorization_code")
    });
    let t2 = tok2.and_then(|e| e.token.clone()).unwrap_or_default();
    let t2_scope = if opaque {
        t2.scope.clone()
    } else {
        t2.jwt_scope.clone()
    };
    c.ok(
        &format!(
            "step-up token has mcp:write{}",
            if opaque { "" } else { " and aud = resource" }
        ),
        tok2.is_some_and(|e| e.status == Some(200))
            && scopes(t2_scope.as_deref()).iter().any(|s| s == "mcp:write")
            && (opaque || t2.aud.as_ref().and_then(Value::as_str) == prm_resource.as_deref()),
        format!("HTTP {:?} scope={t2_scope:?}", tok2.and_then(|e| e.status)),
    );
    match client.call_tool(write()).await {
        Ok(r) => {
            c.ok(
                "tools/call write_note succeeds after step-up (same connection, AuthClient picks up the new token)",
                r.is_error != Some(true) && text_of(&r).contains("stored"),
                format!("{:?}", text_of(&r)),
            );
        }
        Err(e) => {
            c.ok(
                "tools/call write_note after step-up",
                false,
                describe_service_error(&e),
            );
        }
    }
    let before_echo = rec.len();
    match client.call_tool(echo("still readable")).await {
        Ok(r) => {
            let extra = rec.snapshot()[before_echo..]
                .iter()
                .any(|e| matches!(e.status, Some(401 | 403)));
            c.ok(
                "tools/call echo after step-up succeeds without another authorization",
                r.is_error != Some(true) && text_of(&r).contains("still readable") && !extra,
                format!(
                    "{:?} (scope union kept mcp:read: token scope={t2_scope:?})",
                    text_of(&r)
                ),
            );
        }
        Err(e) => {
            c.ok(
                "tools/call echo after step-up",
                false,
                describe_service_error(&e),
            );
        }
    }
    let _ = client.cancel().await;

    let log = rec.snapshot();
    let posts: Vec<&Exchange> = log[mcp_from..]
        .iter()
        .filter(|e| e.method == "POST" && same_url(&e.url, server))
        .collect();
    c.ok(
        "every MCP POST after authorization carried Authorization",
        !posts.is_empty() && posts.iter().all(|e| e.has_authorization),
        format!("{} POSTs", posts.len()),
    );
    c.info(
        "HTTP exchanges",
        log.iter()
            .map(|e| {
                let path = Url::parse(&e.url)
                    .map(|u| u.path().to_owned())
                    .unwrap_or_default();
                let rpc = e
                    .jsonrpc
                    .as_ref()
                    .map(|m| format!("({m})"))
                    .unwrap_or_default();
                let status = e
                    .status
                    .map_or_else(|| e.error.clone().unwrap_or("?".into()), |s| s.to_string());
                format!("{} {path}{rpc} {status}", e.method)
            })
            .collect::<Vec<_>>()
            .join(" | "),
    );
    Ok(())
}

const USAGE: &str = "usage: cargo run --example rmcp_client -- --server http://127.0.0.1:PORT/mcp [--timeout SECS] [--verbose]";

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
