//! `GET /authorize` (RFC 6749 §4.1.1 with PKCE and RFC 8707 `resource`) and `POST /authorize`, the
//! answer to the consent page.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, StatusCode};
use hyper::body::Incoming;

use super::super::form::{has_media_type, read_body, Form};
use super::super::introspect::random_token;
use super::super::State;
use super::{
    escape_html, html_page, is_absolute_uri, is_scope, redirect, redirect_matches, Authorization,
    AuthorizationServer, Consent, CONSENT_LIFETIME,
};
use crate::testkit::server::Body;

type Response = http::Response<Body>;

/// An error shown to the user instead of redirecting: the client or its redirect URI cannot be trusted
/// (RFC 6749 §4.1.2.1).
fn error_page(message: &str) -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "Authorization request refused",
        &format!("<p>{}</p>", escape_html(message)),
    )
}

/// Is `challenge` a PKCE code challenge (or verifier): 43 to 128 unreserved characters (RFC 7636 §4.1)?
pub(super) fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The checked request, or where and how to refuse it.
enum Checked {
    Valid(Authorization),
    /// Refuse on a page (no trustworthy redirect URI).
    Page(&'static str),
    /// Refuse by redirecting with this error (RFC 6749 §4.1.2.1).
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
}

fn check(server: &AuthorizationServer, query: &Form) -> Checked {
    let Some(client_id) = query
        .get("client_id")
        .filter(|_| query.count("client_id") == 1)
    else {
        return Checked::Page("The request names no client (client_id), or more than one.");
    };
    if query.count("redirect_uri") > 1 {
        return Checked::Page("The redirect_uri is given more than once.");
    }
    let requested = query.get("redirect_uri");
    let redirect_uri = server.with_client(client_id, |client| match requested {
        Some(requested) => client
            .redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, requested))
            .then(|| requested.to_owned()),
        None if client.redirect_uris.len() == 1 => client.redirect_uris.first().cloned(),
        None => None,
    });
    let redirect_uri = match redirect_uri {
        None => {
            return Checked::Page(
                "Unknown client: register it first (dynamic client registration).",
            )
        }
        Some(None) => {
            return Checked::Page(
                "The redirect_uri is missing or is not one the client registered.",
            )
        }
        Some(Some(uri)) => uri,
    };
    let state = query.get("state").map(str::to_owned);
    let refuse = |error, description| Checked::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description,
    };
    let repeated = [
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "state",
    ]
    .iter()
    .any(|name| query.count(name) > 1);
    if repeated {
        return refuse("invalid_request", "a parameter is repeated");
    }
    match query.get("response_type") {
        Some("code") => {}
        None => return refuse("invalid_request", "response_type is required"),
        Some(_) => {
            return refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            )
        }
    }
    let Some(code_challenge) = query.get("code_challenge") else {
        return refuse(
            "invalid_request",
            "code_challenge is required (PKCE, RFC 7636)",
        );
    };
    if query.get("code_challenge_method") != Some("S256") {
        return refuse("invalid_request", "code_challenge_method must be S256");
    }
    if !is_pkce_value(code_challenge) {
        return refuse("invalid_request", "code_challenge is malformed");
    }
    let scope = query.get("scope").unwrap_or_default();
    if !is_scope(scope) {
        return refuse(
            "invalid_scope",
            "scope must be space-separated scope tokens",
        );
    }
    let resource = match query.count("resource") {
        0 => {
            return refuse(
                "invalid_target",
                "resource is required (RFC 8707): the MCP server's URL",
            )
        }
        1 => query.get("resource").unwrap_or_default(),
        _ => return refuse("invalid_target", "one resource per authorization request"),
    };
    if !is_absolute_uri(resource) {
        return refuse(
            "invalid_target",
            "resource must be an absolute URI without fragment",
        );
    }
    Checked::Valid(Authorization {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.clone(),
        redirect_uri_given: requested.is_some(),
        scope: scope.to_owned(),
        resource: resource.to_owned(),
        state: state.clone(),
        code_challenge: code_challenge.to_owned(),
        expires: Instant::now() + CONSENT_LIFETIME,
    })
}

/// Redirects with a fresh code for `authorization` (and `state`, and `iss` per RFC 9207).
fn grant(state: &State, server: &AuthorizationServer, authorization: Authorization) -> Response {
    let code = random_token();
    let (uri, client_state) = (
        authorization.redirect_uri.clone(),
        authorization.state.clone(),
    );
    if !server.add_code(code.clone(), authorization) {
        return refusal(
            &uri,
            client_state.as_deref(),
            &state.issuer,
            "temporarily_unavailable",
            "too many pending codes",
        );
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(client_state) = &client_state {
        params.push(("state", client_state));
    }
    params.push(("iss", &state.issuer));
    redirect(&uri, &params)
}

fn refusal(
    uri: &str,
    client_state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(client_state) = client_state {
        params.push(("state", client_state));
    }
    params.push(("iss", issuer));
    redirect(uri, &params)
}

/// `GET /authorize`.
pub(crate) fn handle_authorize(state: &Arc<State>, request: &Request<Incoming>) -> Response {
    let Some(server) = &state.oauth else {
        return error_page("This development issuer has no authorization server (enable it with DevIssuerBuilder::authorization_server).");
    };
    let query = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    let authorization = match check(server, &query) {
        Checked::Valid(authorization) => authorization,
        Checked::Page(message) => return error_page(message),
        Checked::Redirect {
            redirect_uri,
            state: client_state,
            error,
            description,
        } => {
            return refusal(
                &redirect_uri,
                client_state.as_deref(),
                &state.issuer,
                error,
                description,
            )
        }
    };
    if server.consent == Consent::Auto {
        return grant(state, server, authorization);
    }
    let client_name = server
        .with_client(&authorization.client_id, |client| client.name.clone())
        .unwrap_or_default();
    let page = consent_page(&client_name, &authorization);
    let id = random_token();
    if !server.add_pending(id.clone(), authorization) {
        return error_page(
            "Too many authorization requests are waiting for consent; try again later.",
        );
    }
    html_page(
        StatusCode::OK,
        "Grant access?",
        &page.replace("{consent}", &id),
    )
}

/// The consent page's body; `{consent}` stands for the pending request's id.
fn consent_page(client_name: &str, authorization: &Authorization) -> String {
    let scopes: String = if authorization.scope.is_empty() {
        "<li><em>no scopes</em></li>".to_owned()
    } else {
        authorization
            .scope
            .split(' ')
            .map(|scope| format!("<li><code>{}</code></li>", escape_html(scope)))
            .collect()
    };
    format!(
        "<p><strong>{name}</strong> (a client that registered itself; the name is its own claim) asks for \
         an access token for</p>\n<p><code>{resource}</code></p>\n<p>with the scopes</p>\n<ul>{scopes}</ul>\n\
         <p>The answer goes to <code>{redirect}</code>.</p>\n\
         <form method=\"post\" action=\"/authorize\"><input type=\"hidden\" name=\"consent\" value=\"{{consent}}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\" autofocus>Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        name = escape_html(client_name),
        resource = escape_html(&authorization.resource),
        redirect = escape_html(&authorization.redirect_uri),
    )
}

/// `POST /authorize`: the consent page's answer (`consent`, `decision` = `allow` or `deny`).
pub(crate) async fn handle_consent(state: &Arc<State>, request: Request<Incoming>) -> Response {
    let Some(server) = &state.oauth else {
        return error_page("This development issuer has no authorization server.");
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = read_body(body).await else {
        return error_page("The form could not be read.");
    };
    if !has_media_type(&parts.headers, "application/x-www-form-urlencoded") {
        return error_page("The consent answer must be a form.");
    }
    let form = Form::parse(&body);
    let Some(authorization) = form.get("consent").and_then(|id| server.take_pending(id)) else {
        return error_page("This authorization request has expired or was already answered; start again from the client.");
    };
    match form.get("decision") {
        Some("allow") => grant(state, server, authorization),
        _ => refusal(
            &authorization.redirect_uri,
            authorization.state.as_deref(),
            &state.issuer,
            "access_denied",
            "the user denied the request",
        ),
    }
}
