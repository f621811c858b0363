//! The HTTP side of the development issuer: hyper 1 on a tokio listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{Behavior, Endpoint, State};

type Body = Full<Bytes>;

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

fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn to_bytes(value: &Value) -> Bytes {
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
        if path == "/jwks" {
            return Some(Endpoint::Jwks);
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
        json!({
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
            "id_token_signing_alg_values_supported": self.published_algs(),
        })
    }

    fn document(&self, endpoint: Endpoint, wrong_issuer: bool) -> Value {
        match endpoint {
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

async fn handle(state: &State, request: Request<Incoming>) -> Response<Body> {
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
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"method_not_allowed"}"#,
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let response = match state.behavior(endpoint) {
        Behavior::Normal => {
            json_response(StatusCode::OK, to_bytes(&state.document(endpoint, false)))
        }
        Behavior::WrongIssuer => {
            json_response(StatusCode::OK, to_bytes(&state.document(endpoint, true)))
        }
        Behavior::Status(code) => {
            // A 1xx code is not a final response; it (and anything out of range) becomes 500.
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|status| !status.is_informational())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            json_response(
                status,
                format!(
                    r#"{{"error":"injected_failure","status":{}}}"#,
                    status.as_u16()
                ),
            )
        }
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
