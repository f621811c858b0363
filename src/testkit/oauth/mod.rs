//! The opt-in development authorization server of [`DevIssuer`](super::DevIssuer): dynamic client
//! registration (RFC 7591), the authorization endpoint with PKCE `S256` (RFC 7636) and a one-click consent
//! page, and the token endpoint (authorization code and refresh token grants) issuing JWT access tokens
//! whose `aud` is the RFC 8707 `resource` the client asked for.
//!
//! **For development only.** There are no users and no passwords: whoever can reach the loopback port and
//! click "Allow" (or anyone, with [`Consent::Auto`]) gets a token with the scopes they asked for. The
//! builder refuses to bind it to anything but a loopback address. The table of what each endpoint checks
//! is in the `testkit` module docs.

mod authorize;
mod grant;
mod register;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{Response, StatusCode};
use http_body_util::Full;

use super::lock;
use super::server::{json_response, to_bytes, Body};

pub(crate) use authorize::{handle_authorize, handle_consent};
pub(crate) use grant::handle_token;
pub(crate) use register::handle_register;

/// How the development authorization server obtains the user's consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Consent {
    /// A page naming the client, the scopes and the resource, with "Allow" and "Deny" buttons (what a
    /// person using the MCP Inspector or a desktop client sees).
    Page,
    /// Every valid authorization request is granted at once with a redirect (for automated tests).
    Auto,
}

/// How long an authorization code is valid.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long a consent page can be answered.
const CONSENT_LIFETIME: Duration = Duration::from_secs(600);
/// How long a refresh token is valid.
const REFRESH_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The lifetime of the access tokens, in seconds.
const ACCESS_TOKEN_SECS: i64 = 3600;
/// The subject of every access token: the one development user.
pub(crate) const DEV_SUBJECT: &str = "dev-user";
/// The most registered clients, pending consents, codes and refresh tokens kept (each): a caller cannot
/// make the server grow without bound.
const CAPACITY: usize = 1024;

/// How a registered client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    /// A public client (`none`): PKCE is its only proof.
    None,
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
}

impl AuthMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
        }
    }
}

/// A registered client.
pub(crate) struct Client {
    name: String,
    secret: Option<String>,
    redirect_uris: Vec<String>,
    auth_method: AuthMethod,
    /// Whether `refresh_token` is among its grant types.
    refresh: bool,
}

/// An authorization request that passed every check: waiting for consent, or granted as a code.
#[derive(Clone)]
pub(crate) struct Authorization {
    client_id: String,
    /// The redirect URI the response goes to.
    redirect_uri: String,
    /// Whether the request named `redirect_uri` (then the token request must repeat it).
    redirect_uri_given: bool,
    scope: String,
    resource: String,
    state: Option<String>,
    code_challenge: String,
    expires: Instant,
}

/// What a refresh token stands for.
pub(crate) struct RefreshGrant {
    client_id: String,
    scope: String,
    resource: String,
    expires: Instant,
}

#[derive(Default)]
struct Store {
    clients: HashMap<String, Client>,
    pending: HashMap<String, Authorization>,
    codes: HashMap<String, Authorization>,
    refresh: HashMap<String, RefreshGrant>,
}

/// Inserts unless the map is full of unexpired entries; `false` when full.
fn insert_bounded<V>(
    map: &mut HashMap<String, V>,
    key: String,
    value: V,
    expired: impl Fn(&V) -> bool,
) -> bool {
    if map.len() >= CAPACITY {
        map.retain(|_, v| !expired(v));
        if map.len() >= CAPACITY {
            return false;
        }
    }
    map.insert(key, value);
    true
}

/// The state of the development authorization server.
pub(crate) struct AuthorizationServer {
    consent: Consent,
    store: Mutex<Store>,
}

impl AuthorizationServer {
    pub(crate) fn new(consent: Consent) -> Self {
        Self {
            consent,
            store: Mutex::new(Store::default()),
        }
    }

    fn register(&self, id: String, client: Client) -> bool {
        let mut store = lock(&self.store);
        if store.clients.len() >= CAPACITY {
            return false;
        }
        store.clients.insert(id, client);
        true
    }

    /// Runs `f` on the client `id`, if registered.
    fn with_client<T>(&self, id: &str, f: impl FnOnce(&Client) -> T) -> Option<T> {
        lock(&self.store).clients.get(id).map(f)
    }

    fn add_pending(&self, id: String, authorization: Authorization) -> bool {
        let now = Instant::now();
        insert_bounded(&mut lock(&self.store).pending, id, authorization, |a| {
            a.expires <= now
        })
    }

    fn take_pending(&self, id: &str) -> Option<Authorization> {
        lock(&self.store)
            .pending
            .remove(id)
            .filter(|a| a.expires > Instant::now())
    }

    fn add_code(&self, code: String, mut authorization: Authorization) -> bool {
        let now = Instant::now();
        authorization.expires = now + CODE_LIFETIME;
        insert_bounded(&mut lock(&self.store).codes, code, authorization, |a| {
            a.expires <= now
        })
    }

    /// Removes the code (a code is used at most once, RFC 6749 §4.1.2), returning it if unexpired.
    fn take_code(&self, code: &str) -> Option<Authorization> {
        lock(&self.store)
            .codes
            .remove(code)
            .filter(|a| a.expires > Instant::now())
    }

    fn add_refresh(&self, token: String, grant: RefreshGrant) -> bool {
        let now = Instant::now();
        insert_bounded(&mut lock(&self.store).refresh, token, grant, |g| {
            g.expires <= now
        })
    }

    /// The grant of an unexpired refresh token that `accept` takes; it is then removed (refresh tokens
    /// rotate on every use). A token `accept` refuses stays usable. `None`: unknown or expired.
    fn redeem_refresh<E>(
        &self,
        token: &str,
        accept: impl FnOnce(&RefreshGrant) -> Result<(), E>,
    ) -> Option<Result<RefreshGrant, E>> {
        let mut store = lock(&self.store);
        let grant = store
            .refresh
            .get(token)
            .filter(|g| g.expires > Instant::now())?;
        if let Err(err) = accept(grant) {
            return Some(Err(err));
        }
        store.refresh.remove(token).map(Ok)
    }
}

/// `{"error": code, "error_description": description}` with this status and `Cache-Control: no-store`.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "error_description": description });
    no_store(json_response(status, to_bytes(&body)))
}

/// The request body (see `form::read_body`), or the OAuth error answer with `code`: `413` when too
/// large, `400` when it could not be read.
async fn read_body_or_refuse(
    body: hyper::body::Incoming,
    code: &str,
) -> Result<bytes::Bytes, Response<Body>> {
    match super::form::read_body(body).await {
        Ok(body) => Ok(body),
        Err(super::form::BodyError::TooLarge) => Err(oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            code,
            "request body too large",
        )),
        Err(super::form::BodyError::Failed) => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            code,
            "the request body could not be read",
        )),
    }
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `302 Found` to `uri` with `params` added to its query (RFC 6749 §4.1.2).
fn redirect(uri: &str, params: &[(&str, &str)]) -> Response<Body> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}", query.finish());
    let mut response = Response::new(Full::new(bytes::Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
            no_store(response)
        }
        // Registered redirect URIs are checked to be header-safe; this cannot happen.
        Err(_) => html_page(
            StatusCode::BAD_REQUEST,
            "Error",
            "<p>Invalid redirect URI.</p>",
        ),
    }
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small HTML page; `body` must already be escaped. The page runs no script, cannot be framed and is
/// not cached.
fn html_page(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · bearer-guard \
         development authorization server</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;\
         margin:3rem auto;padding:0 1rem}}code{{background:#eee;padding:0 .2rem}}button{{font-size:1rem;\
         padding:.4rem 1.2rem;margin-right:.6rem}}.warn{{color:#a00}}</style></head><body>\n<h1>{title}</h1>\n\
         {body}\n<p class=\"warn\">Development authorization server of bearer-guard's test kit: no login, \
         never for production.</p>\n</body></html>\n",
        title = escape_html(title),
    );
    let mut response = Response::new(Full::new(bytes::Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    no_store(response)
}

/// Whether `uri` is an absolute URI (`scheme ":" …`, RFC 3986 §4.3) without a fragment, and safe to put
/// in a header (printable ASCII, no spaces).
fn is_absolute_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.bytes();
    scheme_chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && uri.len() <= 2048
        && uri.bytes().all(|b| b.is_ascii_graphic())
        && !uri.contains('#')
}

/// The host and the rest of an `http:` URI, if it is one.
fn split_http(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(rest.split_at(end))
}

/// The host of an authority without its port (`[::1]:8080` → `[::1]`).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Whether `uri` may be registered as a redirect URI: an absolute URI without fragment; `http` only for
/// `localhost`, `127.0.0.1` and `[::1]` (OAuth 2.1 §2.3.1; `https` and private-use schemes such as
/// `cursor://` are allowed).
fn is_registrable_redirect(uri: &str) -> bool {
    if !is_absolute_uri(uri) {
        return false;
    }
    match split_http(uri) {
        Some((authority, _)) => {
            !authority.contains('@')
                && matches!(host_of(authority), "localhost" | "127.0.0.1" | "[::1]")
        }
        None => !uri.starts_with("http:"),
    }
}

/// Whether the requested redirect URI matches a registered one: exactly, or with another port for a
/// loopback IP literal (RFC 8252 §7.3: native apps pick a free port at run time).
fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (split_http(registered), split_http(requested)) {
        (Some((reg_authority, reg_rest)), Some((req_authority, req_rest))) => {
            let host = host_of(reg_authority);
            matches!(host, "127.0.0.1" | "[::1]")
                && host == host_of(req_authority)
                && reg_rest == req_rest
                && req_authority[host.len()..]
                    .strip_prefix(':')
                    .is_none_or(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => false,
    }
}

/// Whether `scope` is empty or space-separated valid scope tokens.
fn is_scope(scope: &str) -> bool {
    scope.split(' ').all(crate::charset::is_scope_token) || scope.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        assert!(is_registrable_redirect(
            "http://localhost:6274/oauth/callback"
        ));
        assert!(is_registrable_redirect("http://127.0.0.1/cb"));
        assert!(is_registrable_redirect("http://[::1]:9/cb?x=1"));
        assert!(is_registrable_redirect("https://app.example.com/cb"));
        assert!(is_registrable_redirect(
            "cursor://anysphere.cursor-retrieval/oauth/callback"
        ));
        assert!(!is_registrable_redirect("http://evil.example.com/cb"));
        assert!(!is_registrable_redirect(
            "http://localhost.evil.example.com/cb"
        ));
        assert!(!is_registrable_redirect("http://user@localhost/cb"));
        assert!(!is_registrable_redirect("https://app.example.com/cb#frag"));
        assert!(!is_registrable_redirect("/relative"));
        assert!(!is_registrable_redirect("https://a.example/with space"));
        assert!(redirect_matches(
            "http://127.0.0.1:1000/cb",
            "http://127.0.0.1:2000/cb"
        ));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:2000/cb"));
        assert!(!redirect_matches(
            "http://127.0.0.1:1000/cb",
            "http://127.0.0.1:2000/other"
        ));
        assert!(!redirect_matches(
            "http://localhost:1000/cb",
            "http://localhost:2000/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:x/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb2"
        ));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(is_scope("mcp:read mcp:write") && is_scope(""));
        assert!(!is_scope("a  b") && !is_scope("a\"b"));
    }
}
