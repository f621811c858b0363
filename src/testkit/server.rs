//! The HTTP side of the development issuer: hyper 1 on a tokio listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ALLOW, CACHE_CONTROL, CONTENT_TYPE,
    WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::form::{has_media_type, read_body, BodyError, ClientAuth, Form};
use super::{oauth, Behavior, Endpoint, State};

pub(crate) type Body = Full<Bytes>;

/// Accepts connections until the task is aborted; connection tasks live in a `JoinSet`, so aborting this
/// task (dropping the set) also aborts every open connection.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // E.g. too many open files: back off a little instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new());
            builder.http2().timer(TokioTimer::new());
            // Connection errors (client went away, bad request line) are of no interest here.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub(crate) fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn to_bytes(value: &Value) -> Bytes {
    // Serializing a `Value` cannot fail (its map keys are strings); fall back to an empty object anyway.
    serde_json::to_vec(value)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{}"))
}

/// `value` with a `"padding"` member making the serialized document `size` bytes long (or the plain
/// document if it is already longer).
fn padded(mut value: Value, size: usize) -> Bytes {
    if let Value::Object(map) = &mut value {
        map.insert("padding".to_owned(), Value::String(String::new()));
        let base = to_bytes(&value).len();
        if size > base {
            if let Value::Object(map) = &mut value {
                map.insert("padding".to_owned(), Value::String("x".repeat(size - base)));
            }
        }
    }
    to_bytes(&value)
}

impl State {
    fn route(&self, path: &str) -> Option<Endpoint> {
        match path {
            "/jwks" => return Some(Endpoint::Jwks),
            "/introspect" => return Some(Endpoint::Introspection),
            "/revoke" => return Some(Endpoint::Revocation),
            "/authorize" if self.oauth.is_some() => return Some(Endpoint::Authorization),
            "/token" if self.oauth.is_some() => return Some(Endpoint::Token),
            "/register" if self.oauth.is_some() => return Some(Endpoint::Registration),
            _ => {}
        }
        let issuer_path = self.issuer_path.as_str();
        if self.serve_oauth {
            if let Some(rest) = path.strip_prefix("/.well-known/oauth-authorization-server") {
                if rest == issuer_path {
                    return Some(Endpoint::OAuthMetadata);
                }
            }
        }
        if self.serve_openid {
            if let Some(rest) = path.strip_prefix("/.well-known/openid-configuration") {
                if rest == issuer_path {
                    return Some(Endpoint::OpenIdMetadata);
                }
            }
            if let Some(rest) = path.strip_prefix(issuer_path) {
                if rest == "/.well-known/openid-configuration" {
                    return Some(Endpoint::OpenIdMetadata);
                }
            }
        }
        None
    }

    /// The authorization-server metadata document (shared by the RFC 8414 and OpenID endpoints).
    pub(crate) fn metadata(&self, issuer: &str) -> Value {
        let origin = &self.origin;
        let mut metadata = json!({
            "issuer": issuer,
            "jwks_uri": format!("{origin}/jwks"),
            "authorization_endpoint": format!("{origin}/authorize"),
            "token_endpoint": format!("{origin}/token"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["mcp:read", "mcp:write"],
            "subject_types_supported": ["public"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "introspection_endpoint": format!("{origin}/introspect"),
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint": format!("{origin}/revoke"),
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": self.published_algs(),
        });
        if let (Some(_), Value::Object(map)) = (&self.oauth, &mut metadata) {
            map.insert(
                "registration_endpoint".to_owned(),
                Value::from(format!("{origin}/register")),
            );
            map.insert(
                "grant_types_supported".to_owned(),
                json!(["authorization_code", "refresh_token"]),
            );
            map.insert(
                "authorization_response_iss_parameter_supported".to_owned(),
                Value::Bool(true),
            );
        }
        metadata
    }

    fn document(&self, endpoint: Endpoint, wrong_issuer: bool) -> Value {
        match endpoint {
            // Not served through this path (see `handle_form`).
            Endpoint::Introspection
            | Endpoint::Revocation
            | Endpoint::Authorization
            | Endpoint::Token
            | Endpoint::Registration => json!({}),
            Endpoint::Jwks => self.public_jwks(),
            Endpoint::OAuthMetadata | Endpoint::OpenIdMetadata if wrong_issuer => {
                self.metadata(&format!("{}/wrong-issuer", self.origin))
            }
            Endpoint::OAuthMetadata | Endpoint::OpenIdMetadata => self.metadata(&self.issuer),
        }
    }

    fn finish(&self, endpoint: Endpoint, mut response: Response<Body>) -> Response<Body> {
        if endpoint == Endpoint::Jwks && response.status() == StatusCode::OK {
            if let Some(value) = self.jwks_cache_control() {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(CACHE_CONTROL, value);
                }
            }
        }
        response
    }
}

/// Answers one request; every answer allows any origin (browser-based clients such as the MCP Inspector
/// read the metadata and call the registration and token endpoints from a web page).
async fn handle(state: &Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let mut response = if request.method() == Method::OPTIONS {
        preflight()
    } else {
        route_request(state, request).await
    };
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// The answer to a CORS preflight.
fn preflight() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, mcp-protocol-version"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

/// `405` naming the allowed methods.
fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        r#"{"error":"method_not_allowed"}"#,
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// The authorization server's endpoints; the request is already counted.
async fn handle_oauth(
    state: &Arc<State>,
    endpoint: Endpoint,
    request: Request<Incoming>,
) -> Response<Body> {
    match state.behavior(endpoint) {
        Behavior::Status(code) => return injected_status(code),
        Behavior::OAuthError(status, code) => return injected_oauth_error(status, code),
        Behavior::Slow(delay) => tokio::time::sleep(delay).await,
        _ => {}
    }
    let method = request.method().clone();
    match (endpoint, method) {
        (Endpoint::Authorization, Method::GET) => oauth::handle_authorize(state, &request),
        (Endpoint::Authorization, Method::POST) => oauth::handle_consent(state, request).await,
        (Endpoint::Authorization, _) => method_not_allowed("GET, POST"),
        (Endpoint::Token, Method::POST) => oauth::handle_token(state, request).await,
        (Endpoint::Registration, Method::POST) => oauth::handle_register(state, request).await,
        _ => method_not_allowed("POST"),
    }
}

async fn route_request(state: &Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    let Some(endpoint) = state.route(path) else {
        if path == "/token" || path == "/authorize" {
            return json_response(
                StatusCode::NOT_IMPLEMENTED,
                r#"{"error":"unsupported","error_description":"the development issuer only mints tokens in-process"}"#,
            );
        }
        return json_response(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#);
    };
    state.count(endpoint);
    match endpoint {
        Endpoint::Introspection | Endpoint::Revocation => {
            return handle_form(state, endpoint, request).await
        }
        Endpoint::Authorization | Endpoint::Token | Endpoint::Registration => {
            return handle_oauth(state, endpoint, request).await
        }
        Endpoint::Jwks | Endpoint::OAuthMetadata | Endpoint::OpenIdMetadata => {}
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    let response = match state.behavior(endpoint) {
        Behavior::Normal => {
            json_response(StatusCode::OK, to_bytes(&state.document(endpoint, false)))
        }
        Behavior::WrongIssuer => {
            json_response(StatusCode::OK, to_bytes(&state.document(endpoint, true)))
        }
        Behavior::Status(code) => injected_status(code),
        Behavior::OAuthError(status, code) => injected_oauth_error(status, code),
        Behavior::Slow(delay) => {
            tokio::time::sleep(delay).await;
            json_response(StatusCode::OK, to_bytes(&state.document(endpoint, false)))
        }
        Behavior::Oversize(size) => json_response(
            StatusCode::OK,
            padded(state.document(endpoint, false), size),
        ),
        Behavior::InvalidJson => json_response(
            StatusCode::OK,
            Bytes::from_static(b"{\"keys\": [ this is not JSON"),
        ),
    };
    state.finish(endpoint, response)
}

/// The answer of [`Behavior::Status`].
fn injected_status(code: u16) -> Response<Body> {
    // A 1xx code is not a final response; it (and anything out of range) becomes 500.
    let status = StatusCode::from_u16(code)
        .ok()
        .filter(|status| !status.is_informational())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // Not an OAuth error body (no `error` member): to a client it says nothing about the request.
    json_response(
        status,
        format!(
            r#"{{"message":"injected failure","status":{}}}"#,
            status.as_u16()
        ),
    )
}

/// The answer of [`Behavior::OAuthError`]: `{"error": code}` with this status.
fn injected_oauth_error(status: u16, code: &str) -> Response<Body> {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|status| !status.is_informational())
        .unwrap_or(StatusCode::BAD_REQUEST);
    json_response(status, serde_json::json!({ "error": code }).to_string())
}

/// `400 {"error":"invalid_request", "error_description": …}`.
fn invalid_request(description: &str) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        to_bytes(&json!({ "error": "invalid_request", "error_description": description })),
    )
}

/// `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009); the request is already counted.
///
/// Order: method, body size, per-token count, injected `Status` / `InvalidJson` / `Slow`, content type,
/// repeated parameters, client authentication, `token`, then the answer (`Oversize` / `WrongIssuer` change
/// a 200 introspection answer).
async fn handle_form(
    state: &State,
    endpoint: Endpoint,
    request: Request<Incoming>,
) -> Response<Body> {
    let introspection = endpoint == Endpoint::Introspection;
    if request.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                r#"{"error":"invalid_request","error_description":"request body too large"}"#,
            )
        }
        Err(BodyError::Failed) => return invalid_request("the request body could not be read"),
    };
    let form = has_media_type(&parts.headers, "application/x-www-form-urlencoded")
        .then(|| Form::parse(&body));
    let token = form.as_ref().and_then(|form| form.get("token"));
    if introspection {
        if let Some(token) = token {
            state.count_introspection_of(token);
        }
    }

    let behavior = state.behavior(endpoint);
    match &behavior {
        Behavior::Status(code) => return injected_status(*code),
        Behavior::OAuthError(status, code) => return injected_oauth_error(*status, code),
        Behavior::InvalidJson if introspection => {
            return json_response(
                StatusCode::OK,
                Bytes::from_static(b"{\"active\": tru this is not JSON"),
            )
        }
        Behavior::Slow(delay) => tokio::time::sleep(*delay).await,
        _ => {}
    }

    let Some(form) = &form else {
        return invalid_request("the body must be application/x-www-form-urlencoded");
    };
    if form.has_repeats() {
        return invalid_request("a parameter is repeated");
    }
    match state.authenticate(&parts.headers, form) {
        ClientAuth::Authenticated => {}
        ClientAuth::Ambiguous => {
            return invalid_request("more than one client authentication method")
        }
        ClientAuth::Unauthenticated => {
            let mut response =
                json_response(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#);
            let challenge = if introspection {
                r#"Basic realm="introspection""#
            } else {
                r#"Basic realm="revocation""#
            };
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            return response;
        }
    }
    let Some(token) = token else {
        return invalid_request("the token parameter is missing");
    };

    if !introspection {
        state.revoke(token);
        let mut response = Response::new(Full::new(Bytes::new()));
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    let answer = state.introspection_answer(Some(token), matches!(behavior, Behavior::WrongIssuer));
    let body = match behavior {
        Behavior::Oversize(size) => padded(answer, size),
        _ => to_bytes(&answer),
    };
    let mut response = json_response(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_reaches_the_requested_size() {
        let body = padded(json!({"keys": []}), 1000);
        assert_eq!(body.len(), 1000);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert!(value["keys"].is_array());
        let small = padded(json!({"keys": []}), 3);
        assert!(serde_json::from_slice::<Value>(&small).is_ok());
    }
}
