//! `POST /register`: dynamic client registration (RFC 7591), open to any caller on loopback.

use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use super::super::form::has_media_type;
use super::super::introspect::random_token;
use super::super::token::now;
use super::super::State;
use super::{
    is_registrable_redirect, is_scope, no_store, oauth_error, read_body_or_refuse, AuthMethod,
    Client,
};
use crate::testkit::server::{json_response, to_bytes, Body};

/// A registration error (RFC 7591 §3.2.2).
fn refused(code: &str, description: &str) -> http::Response<Body> {
    oauth_error(StatusCode::BAD_REQUEST, code, description)
}

/// An optional array-of-strings member; `Err` when present but not one.
fn strings(metadata: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, String> {
    match metadata.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| format!("{name} must be an array of strings")),
        Some(_) => Err(format!("{name} must be an array of strings")),
    }
}

/// An optional string member; `Err` when present but not a string.
fn string<'a>(metadata: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match metadata.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(format!("{name} must be a string")),
    }
}

pub(crate) async fn handle_register(
    state: &Arc<State>,
    request: Request<Incoming>,
) -> http::Response<Body> {
    let Some(server) = &state.oauth else {
        return json_response(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#);
    };
    let (parts, body) = request.into_parts();
    let body = match read_body_or_refuse(body, "invalid_client_metadata").await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    if !has_media_type(&parts.headers, "application/json") {
        return refused(
            "invalid_client_metadata",
            "the body must be application/json",
        );
    }
    let Ok(Value::Object(metadata)) = serde_json::from_slice::<Value>(&body) else {
        return refused("invalid_client_metadata", "the body must be a JSON object");
    };
    match register(server, &metadata) {
        Ok(answer) => no_store(json_response(StatusCode::CREATED, to_bytes(&answer))),
        Err((code, description)) => refused(code, &description),
    }
}

/// Checks the metadata, registers the client and returns the registration response (RFC 7591 §3.2.1).
fn register(
    server: &super::AuthorizationServer,
    metadata: &Map<String, Value>,
) -> Result<Value, (&'static str, String)> {
    let invalid = |description: String| ("invalid_client_metadata", description);
    let redirect_uris = strings(metadata, "redirect_uris")
        .map_err(invalid)?
        .filter(|uris| !uris.is_empty())
        .ok_or((
            "invalid_redirect_uri",
            "redirect_uris is required (at least one)".to_owned(),
        ))?;
    if let Some(bad) = redirect_uris
        .iter()
        .find(|uri| !is_registrable_redirect(uri))
    {
        return Err((
            "invalid_redirect_uri",
            format!(
                "{bad:?} is not allowed: an absolute URI without fragment, http only for localhost, 127.0.0.1 or [::1]"
            ),
        ));
    }
    let auth_method = match string(metadata, "token_endpoint_auth_method").map_err(invalid)? {
        // RFC 7591 §2: the default is client_secret_basic.
        None | Some("client_secret_basic") => AuthMethod::Basic,
        Some("client_secret_post") => AuthMethod::Post,
        Some("none") => AuthMethod::None,
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method {other:?} is not supported (none, client_secret_basic, client_secret_post)"
            )))
        }
    };
    let grant_types = strings(metadata, "grant_types")
        .map_err(invalid)?
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    if let Some(bad) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(invalid(format!(
            "grant type {bad:?} is not supported (authorization_code, refresh_token)"
        )));
    }
    let response_types = strings(metadata, "response_types")
        .map_err(invalid)?
        .unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(invalid(
            "only the response type \"code\" is supported".to_owned(),
        ));
    }
    let name = string(metadata, "client_name")
        .map_err(invalid)?
        .unwrap_or("unnamed client");
    if name.chars().count() > 200 {
        return Err(invalid(
            "client_name is longer than 200 characters".to_owned(),
        ));
    }
    let scope = string(metadata, "scope").map_err(invalid)?;
    if scope.is_some_and(|scope| !is_scope(scope)) {
        return Err(invalid(
            "scope must be space-separated scope tokens".to_owned(),
        ));
    }

    let client_id = random_token();
    let secret = (auth_method != AuthMethod::None).then(random_token);
    let mut answer = json!({
        "client_id": client_id,
        "client_id_issued_at": now(),
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": auth_method.as_str(),
    });
    if let (Some(secret), Value::Object(map)) = (&secret, &mut answer) {
        map.insert("client_secret".to_owned(), Value::from(secret.as_str()));
        map.insert("client_secret_expires_at".to_owned(), Value::from(0));
    }
    if let (Some(scope), Value::Object(map)) = (scope, &mut answer) {
        map.insert("scope".to_owned(), Value::from(scope));
    }
    let client = Client {
        name: name.to_owned(),
        secret,
        redirect_uris,
        auth_method,
        refresh: grant_types.iter().any(|g| g == "refresh_token"),
    };
    if !server.register(client_id, client) {
        return Err((
            "temporarily_unavailable",
            "too many registered clients".to_owned(),
        ));
    }
    Ok(answer)
}
