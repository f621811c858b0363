//! `POST /token` (RFC 6749 §3.2): the authorization code grant with PKCE (RFC 7636 §4.6) and the refresh
//! token grant (rotating), issuing JWT access tokens (RFC 9068) with `aud` = the RFC 8707 resource.

use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::super::form::{has_media_type, same, Credentials, Form};
use super::super::introspect::random_token;
use super::super::token::TokenBuilder;
use super::super::State;
use super::authorize::is_pkce_value;
use super::{
    no_store, oauth_error, read_body_or_refuse, AuthMethod, AuthorizationServer, RefreshGrant,
    ACCESS_TOKEN_SECS, DEV_SUBJECT, REFRESH_LIFETIME,
};
use crate::testkit::server::{json_response, to_bytes, Body};

type Response = http::Response<Body>;

/// A token request refused (RFC 6749 §5.2).
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

const fn bad(error: &'static str, description: &'static str) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        error,
        description,
    }
}

const INVALID_CLIENT: Refusal = Refusal {
    status: StatusCode::UNAUTHORIZED,
    error: "invalid_client",
    description: "client authentication failed",
};

/// `POST /token`.
pub(crate) async fn handle_token(state: &Arc<State>, request: Request<Incoming>) -> Response {
    let Some(server) = &state.oauth else {
        return json_response(
            StatusCode::NOT_IMPLEMENTED,
            r#"{"error":"unsupported","error_description":"the development issuer only mints tokens in-process (enable DevIssuerBuilder::authorization_server)"}"#,
        );
    };
    let (parts, body) = request.into_parts();
    let body = match read_body_or_refuse(body, "invalid_request").await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    if !has_media_type(&parts.headers, "application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let form = Form::parse(&body);
    match token(state, server, &parts.headers, &form) {
        Ok(answer) => {
            let mut response = no_store(json_response(StatusCode::OK, to_bytes(&answer)));
            response
                .headers_mut()
                .insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(refusal) => {
            let mut response = oauth_error(refusal.status, refusal.error, refusal.description);
            if refusal.status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="token""#),
                );
            }
            response
        }
    }
}

/// Authenticates the client by the method it registered; returns its id and whether it may refresh.
fn authenticate(
    server: &AuthorizationServer,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(String, bool), Refusal> {
    let (id, secret, method) = match Credentials::of(headers, form) {
        Credentials::Ambiguous => {
            return Err(bad(
                "invalid_request",
                "more than one client authentication method",
            ))
        }
        Credentials::Nothing => (
            form.get("client_id").ok_or(INVALID_CLIENT)?.to_owned(),
            None,
            AuthMethod::None,
        ),
        Credentials::Basic { id, secret } => {
            if form.get("client_id").is_some_and(|post| post != id) {
                return Err(INVALID_CLIENT);
            }
            (id, Some(secret), AuthMethod::Basic)
        }
        Credentials::Post { id, secret } => {
            (id.to_owned(), Some(secret.to_owned()), AuthMethod::Post)
        }
        Credentials::Bearer(_) | Credentials::Malformed => return Err(INVALID_CLIENT),
    };
    let verdict = server.with_client(&id, |client| {
        let secret_ok = match (&client.secret, &secret) {
            (Some(expected), Some(given)) => same(expected.as_bytes(), given.as_bytes()),
            (None, None) => true,
            _ => false,
        };
        (secret_ok && client.auth_method == method).then_some(client.refresh)
    });
    match verdict {
        Some(Some(refresh)) => Ok((id, refresh)),
        _ => Err(INVALID_CLIENT),
    }
}

fn token(
    state: &Arc<State>,
    server: &AuthorizationServer,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Value, Refusal> {
    if form.has_repeats() {
        return Err(bad("invalid_request", "a parameter is repeated"));
    }
    let (client_id, may_refresh) = authenticate(server, headers, form)?;
    let resource = form.get("resource");
    let (scope, resource) = match form.get("grant_type") {
        Some("authorization_code") => {
            let code = form
                .get("code")
                .ok_or(bad("invalid_request", "code is required"))?;
            let verifier = form
                .get("code_verifier")
                .ok_or(bad("invalid_request", "code_verifier is required (PKCE)"))?;
            let granted = server.take_code(code).ok_or(bad(
                "invalid_grant",
                "the code is unknown, expired or already used",
            ))?;
            if granted.client_id != client_id {
                return Err(bad(
                    "invalid_grant",
                    "the code was issued to another client",
                ));
            }
            let redirect_ok = match form.get("redirect_uri") {
                Some(uri) => uri == granted.redirect_uri,
                None => !granted.redirect_uri_given,
            };
            if !redirect_ok {
                return Err(bad(
                    "invalid_grant",
                    "redirect_uri differs from the authorization request",
                ));
            }
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !is_pkce_value(verifier)
                || !same(computed.as_bytes(), granted.code_challenge.as_bytes())
            {
                return Err(bad(
                    "invalid_grant",
                    "code_verifier does not match the code_challenge",
                ));
            }
            if resource.is_some_and(|resource| resource != granted.resource) {
                return Err(bad(
                    "invalid_target",
                    "resource differs from the authorization request",
                ));
            }
            (granted.scope, granted.resource)
        }
        Some("refresh_token") => {
            let refresh_token = form
                .get("refresh_token")
                .ok_or(bad("invalid_request", "refresh_token is required"))?;
            let asked = form.get("scope");
            // Checked before the token is spent: a refused request (another resource, a wider scope)
            // leaves it usable; an accepted one rotates it.
            let granted = server
                .redeem_refresh(refresh_token, |granted| {
                    if granted.client_id != client_id {
                        return Err(bad(
                            "invalid_grant",
                            "the refresh token was issued to another client",
                        ));
                    }
                    if resource.is_some_and(|resource| resource != granted.resource) {
                        return Err(bad(
                            "invalid_target",
                            "resource differs from the original grant",
                        ));
                    }
                    let held: Vec<&str> = granted.scope.split(' ').collect();
                    if asked.is_some_and(|asked| !asked.split(' ').all(|s| held.contains(&s))) {
                        return Err(bad(
                            "invalid_scope",
                            "a refresh may only narrow the granted scope",
                        ));
                    }
                    Ok(())
                })
                .ok_or(bad(
                    "invalid_grant",
                    "the refresh token is unknown, expired or already used",
                ))??;
            let scope = asked.map_or(granted.scope, str::to_owned);
            (scope, granted.resource)
        }
        Some(_) => {
            return Err(bad(
                "unsupported_grant_type",
                "authorization_code and refresh_token only",
            ))
        }
        None => return Err(bad("invalid_request", "grant_type is required")),
    };

    let mut builder = TokenBuilder::new(Arc::clone(state))
        .subject(DEV_SUBJECT)
        .audience(&resource)
        .claim("client_id", Value::from(client_id.as_str()))
        .expires_in(ACCESS_TOKEN_SECS);
    builder = if scope.is_empty() {
        builder.remove_claim("scope")
    } else {
        builder.scope(&scope)
    };
    let access_token = builder.sign().map_err(|_| Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        error: "server_error",
        description: "signing the access token failed",
    })?;
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECS,
    });
    if let (false, Value::Object(map)) = (scope.is_empty(), &mut answer) {
        map.insert("scope".to_owned(), Value::from(scope.as_str()));
    }
    // Refresh tokens only for `offline_access`, as OpenID Connect (§11) and the big IdPs do. Handing them
    // out unasked breaks real clients: the MCP TypeScript SDK answers a 403 step-up by refreshing first,
    // and a refresh cannot widen the scope, so it would retry with the same token.
    if may_refresh && scope.split(' ').any(|s| s == "offline_access") {
        let refresh_token = random_token();
        let grant = RefreshGrant {
            client_id,
            scope,
            resource,
            expires: Instant::now() + REFRESH_LIFETIME,
        };
        if server.add_refresh(refresh_token.clone(), grant) {
            if let Value::Object(map) = &mut answer {
                map.insert("refresh_token".to_owned(), Value::from(refresh_token));
            }
        }
    }
    Ok(answer)
}
