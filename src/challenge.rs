//! Rejections and the responses that carry them: `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728
//! §5.1), JSON bodies, and gRPC statuses. Every rejection the guard sends is rendered here.
//!
//! ```
//! use bearer_guard::{BearerAuthLayer, ProblemJsonBody, StaticToken, StaticValidator};
//! use bytes::Bytes;
//! use http::{header, Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use std::convert::Infallible;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = StaticValidator::builder()
//!     .token("reader-token-0123456789", StaticToken::new("alice").scopes(["notes:read"]))
//!     .build()?;
//! let guard = BearerAuthLayer::builder()
//!     .resource("https://api.example.com/notes")
//!     .authorization_server("https://auth.example.com")
//!     .validator(validator)
//!     .error_body(ProblemJsonBody) // RFC 9457 bodies instead of {"error": …}
//!     .build()?;
//! let app = guard.layer(service_fn(|_request: Request<Full<Bytes>>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
//! }));
//!
//! // An HTTP client with an unknown token: 401, a challenge, a problem+json body, nothing cached.
//! let request = Request::get("https://api.example.com/notes")
//!     .header(header::AUTHORIZATION, "Bearer revoked-token-0123456789")
//!     .body(Full::new(Bytes::new()))?;
//! let response = app.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     response.headers()[header::WWW_AUTHENTICATE],
//!     "Bearer resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/notes\", \
//!      error=\"invalid_token\", error_description=\"The access token is not recognized\"",
//! );
//! assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
//! assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
//! let body = response.into_body().collect().await?.to_bytes();
//! assert!(body.starts_with(br#"{"detail":"The access token is not recognized","error":"invalid_token""#));
//!
//! // A gRPC client without a token: HTTP 200 with grpc-status 16 (UNAUTHENTICATED) and the same challenge.
//! let request = Request::post("https://api.example.com/notes")
//!     .header(header::CONTENT_TYPE, "application/grpc")
//!     .body(Full::new(Bytes::new()))?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["grpc-status"], "16");
//! assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
//! # Ok(())
//! # }
//! ```
//!
//! The challenge is correct by construction:
//! - the `Bearer` challenge is the only (so the first) challenge, and always carries `resource_metadata`;
//! - each parameter can be set at most once (they are fields, not a list);
//! - values are quoted, and characters outside the RFC 6750 §3 sets are dropped (`scope`: `%x21 / %x23-5B /
//!   %x5D-7E`; `error_description`: `%x20-21 / %x23-5B / %x5D-7E`), so no quote, backslash, control or
//!   non-ASCII character can reach the header;
//! - descriptions are fixed `&'static str` texts: a token cannot be formatted into them;
//! - a request without credentials (or with another scheme) gets no `error` parameter (RFC 6750 §3.1).
//!
//! | rejection | HTTP | gRPC status |
//! |---|---|---|
//! | no credentials | 401, no `error` | 16 `UNAUTHENTICATED` |
//! | malformed request | 400 `invalid_request` | 3 `INVALID_ARGUMENT` |
//! | invalid token | 401 `invalid_token` | 16 `UNAUTHENTICATED` |
//! | insufficient scope | 403 `insufficient_scope` | 7 `PERMISSION_DENIED` |
//! | validator unavailable | 503 + `Retry-After` | 14 `UNAVAILABLE` |
//! | internal error | 500 | 13 `INTERNAL` |

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_EXPOSE_HEADERS, CACHE_CONTROL, CONTENT_TYPE, ORIGIN, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Response};

use crate::body::FixedBody;
use crate::error::{Detail, InvalidToken, Unavailable};
use crate::extract::MalformedRequest;
use crate::scope::{is_valid_scope, Requirement, ScopeSet, OFFLINE_ACCESS};

pub use body::{ErrorBody, JsonErrorBody, ProblemJsonBody, RejectionInfo};
use grpc::grpc_response;

/// A requirement's preferred scopes, space-separated, for a log line (formatted only if it is written).
struct Preferred<'a>(&'a Requirement);

impl fmt::Display for Preferred<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.preferred().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

/// Facts about the request that shape the rejection response.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestFacts {
    /// The request's content type when it is gRPC (`application/grpc`, `application/grpc+proto`,
    /// `application/grpc-web`, …): the rejection answers with the same one.
    pub(crate) grpc: Option<HeaderValue>,
    pub(crate) cors: bool,
    /// The scheme of the request's credentials, which decides the scheme of the challenge.
    pub(crate) scheme: Presented,
}

/// The scheme of the credentials a request presented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Presented {
    /// No `Authorization` header, or another scheme.
    #[default]
    Nothing,
    /// `Bearer`.
    Bearer,
    /// `DPoP`.
    Dpop,
}

impl Presented {
    fn of(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Self::Nothing;
        };
        let bytes = value.as_bytes();
        let scheme = &bytes[..bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len())];
        if scheme.eq_ignore_ascii_case(b"bearer") {
            Self::Bearer
        } else if scheme.eq_ignore_ascii_case(b"dpop") {
            Self::Dpop
        } else {
            Self::Nothing
        }
    }
}

impl RequestFacts {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        Self {
            grpc: headers
                .get(CONTENT_TYPE)
                .filter(|ct| ct.as_bytes().starts_with(b"application/grpc"))
                .cloned(),
            cors: headers.contains_key(ORIGIN),
            scheme: Presented::of(headers),
        }
    }

    /// As [`RequestFacts::of`], for a request the guard already let through (its `Authorization` header
    /// may be gone; the guard left the scheme in the extensions).
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    pub(crate) fn of_parts(parts: &http::request::Parts) -> Self {
        let mut facts = Self::of(&parts.headers);
        if let Some(scheme) = parts.extensions.get::<Presented>() {
            facts.scheme = *scheme;
        }
        facts
    }
}

/// A rejection rendered once: the challenge, the body and its content type (cloning shares the bytes).
#[derive(Clone)]
struct Rendered {
    challenge: Option<HeaderValue>,
    content_type: HeaderValue,
    body: Bytes,
}

// Slot layouts, sized from the enums themselves (`indexed_enum!`): a new reason gets its own slot.
/// Requirement slots: missing credentials, each invalid-token reason, insufficient scope (without granted
/// scopes).
const MISSING_CREDENTIALS_SLOT: usize = 0;
const FIRST_INVALID_TOKEN_SLOT: usize = 1;
const INSUFFICIENT_SCOPE_SLOT: usize = FIRST_INVALID_TOKEN_SLOT + InvalidToken::COUNT;
const REQUIREMENT_SLOTS: usize = INSUFFICIENT_SCOPE_SLOT + 1;
/// Slots of the rejections that name no scope: each malformed-request reason, internal error, and each
/// unavailable reason (whose `Retry-After` is added per response).
const FIRST_MALFORMED_SLOT: usize = 0;
const INTERNAL_SLOT: usize = FIRST_MALFORMED_SLOT + MalformedRequest::COUNT;
const FIRST_UNAVAILABLE_SLOT: usize = INTERNAL_SLOT + 1;
const SCOPELESS_SLOTS: usize = FIRST_UNAVAILABLE_SLOT + Unavailable::COUNT;

/// Rendered rejections of one requirement, claimed by the first [`Challenger`] that renders one (another
/// guard sharing the requirement renders its own at each rejection, as before).
#[derive(Default)]
pub(crate) struct RenderedSlots {
    owner: std::sync::OnceLock<u64>,
    slots: [std::sync::OnceLock<Rendered>; REQUIREMENT_SLOTS],
}

/// Renders rejections for one configured guard. A clone renders exactly what the original does (and
/// shares its rendered slots' ownership).
#[derive(Clone)]
pub(crate) struct Challenger {
    /// `Bearer resource_metadata="…"` (and `realm` when configured), built once.
    prefix: String,
    include_granted_scopes: bool,
    body: Arc<dyn ErrorBody>,
    /// Identifies this challenger in the [`RenderedSlots`] it owns.
    id: u64,
    /// The rejections that name no scope, rendered once.
    scopeless: [std::sync::OnceLock<Rendered>; SCOPELESS_SLOTS],
    /// When the guard accepts DPoP: how its challenges are written.
    dpop: Option<Arc<DpopChallenge>>,
}

impl fmt::Debug for Challenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenger")
            .field("prefix", &self.prefix)
            .field("include_granted_scopes", &self.include_granted_scopes)
            .finish_non_exhaustive()
    }
}

fn push_param(out: &mut String, name: &str, value: &str, allowed: fn(u8) -> bool) {
    out.push_str(", ");
    out.push_str(name);
    out.push_str("=\"");
    out.extend(value.bytes().filter(|&b| allowed(b)).map(char::from));
    out.push('"');
}

impl Challenger {
    /// `metadata_url` and `realm` were checked at build time to fit the challenge character set.
    pub(crate) fn new(
        metadata_url: &str,
        realm: Option<&str>,
        include_granted_scopes: bool,
        body: Arc<dyn ErrorBody>,
    ) -> Self {
        let mut prefix = String::from("Bearer resource_metadata=\"");
        prefix.extend(
            metadata_url
                .bytes()
                .filter(|&b| b != b' ' && crate::charset::is_nqschar(b))
                .map(char::from),
        );
        prefix.push('"');
        if let Some(realm) = realm {
            push_param(&mut prefix, "realm", realm, crate::charset::is_nqschar);
        }
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            prefix,
            include_granted_scopes,
            body,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            scopeless: Default::default(),
            dpop: None,
        }
    }

    /// This challenger, writing `DPoP` challenges too.
    #[cfg_attr(not(feature = "dpop"), allow(dead_code))]
    pub(crate) fn with_dpop(mut self, dpop: DpopChallenge) -> Self {
        self.dpop = Some(Arc::new(dpop));
        self
    }

    /// Where a rendering of `rejection` can be kept, if it depends on nothing but the rejection and the
    /// requirement's challenge scope (and the body renderer promises the same output every time).
    fn slot<'a>(
        &'a self,
        rejection: &Rejection,
        requirement: &'a Requirement,
        granted: Option<&ScopeSet>,
    ) -> Option<&'a std::sync::OnceLock<Rendered>> {
        if !self.body.is_deterministic() {
            return None;
        }
        let requirement_slot = |i: usize| {
            let rendered = requirement.rendered();
            (*rendered.owner.get_or_init(|| self.id) == self.id).then(|| &rendered.slots[i])
        };
        match rejection {
            Rejection::MissingCredentials => requirement_slot(MISSING_CREDENTIALS_SLOT),
            Rejection::InvalidToken(reason) => {
                requirement_slot(FIRST_INVALID_TOKEN_SLOT + reason.index())
            }
            Rejection::InsufficientScope if !self.include_granted_scopes || granted.is_none() => {
                requirement_slot(INSUFFICIENT_SCOPE_SLOT)
            }
            Rejection::InsufficientScope => None,
            #[cfg(feature = "dpop")]
            Rejection::InvalidDpopProof(_) => None,
            Rejection::InvalidRequest(why) => {
                Some(&self.scopeless[FIRST_MALFORMED_SLOT + why.index()])
            }
            Rejection::Internal => Some(&self.scopeless[INTERNAL_SLOT]),
            Rejection::Unavailable { reason, .. } => {
                Some(&self.scopeless[FIRST_UNAVAILABLE_SLOT + reason.index()])
            }
        }
    }

    /// Renders the challenge and the body of a rejection.
    fn render(
        &self,
        rejection: &Rejection,
        requirement: &Requirement,
        granted: Option<&ScopeSet>,
    ) -> Rendered {
        let scope = self.scope_value(rejection, requirement, granted);
        let challenge = self
            .challenge(rejection, scope.as_deref())
            .and_then(|c| HeaderValue::from_maybe_shared(Bytes::from(c)).ok());
        let info = RejectionInfo {
            rejection: *rejection,
            status: rejection.status(),
            error: rejection.body_error(),
            description: rejection.description(),
            scope: scope.as_deref(),
        };
        let (content_type, body) = self.body.render(&info);
        Rendered {
            challenge,
            content_type,
            body,
        }
    }

    /// The `scope` value for this rejection: the operation's scopes (and, if configured, for 403 the scopes
    /// already granted), never `offline_access`.
    fn scope_value(
        &self,
        rejection: &Rejection,
        requirement: &Requirement,
        granted: Option<&ScopeSet>,
    ) -> Option<String> {
        match rejection {
            Rejection::MissingCredentials | Rejection::InvalidToken(_) => {
                requirement.challenge_scope().map(str::to_owned)
            }
            #[cfg(feature = "dpop")]
            Rejection::InvalidDpopProof(_) => requirement.challenge_scope().map(str::to_owned),
            Rejection::InsufficientScope => {
                let granted = granted.filter(|_| self.include_granted_scopes);
                let mut scopes: Vec<&str> = requirement
                    .preferred()
                    .chain(granted.into_iter().flat_map(ScopeSet::iter))
                    .filter(|s| *s != OFFLINE_ACCESS && is_valid_scope(s))
                    .collect();
                scopes.sort_unstable();
                scopes.dedup();
                (!scopes.is_empty()).then(|| scopes.join(" "))
            }
            _ => None,
        }
    }

    /// The `WWW-Authenticate` value, or `None` for rejections that carry no challenge.
    pub(crate) fn challenge(&self, rejection: &Rejection, scope: Option<&str>) -> Option<String> {
        if !rejection.has_challenge() {
            return None;
        }
        let mut header = String::with_capacity(self.prefix.len() + 160);
        header.push_str(&self.prefix);
        if let Some(error) = rejection.challenge_error() {
            push_param(&mut header, "error", error, crate::charset::is_nqschar);
            push_param(
                &mut header,
                "error_description",
                rejection.description(),
                crate::charset::is_nqschar,
            );
        }
        if let Some(scope) = scope {
            // Scope tokens are separated by single spaces; anything else outside the set is dropped.
            push_param(&mut header, "scope", scope, crate::charset::is_nqschar);
        }
        Some(header)
    }

    /// Builds the full response for a rejection.
    ///
    /// The challenge and body of the common rejections are rendered once per requirement (or once per guard
    /// when they name no scope) and shared afterwards: a rejected request costs a response and its header
    /// map, no formatting.
    pub(crate) fn respond(
        &self,
        rejection: Rejection,
        requirement: &Requirement,
        granted: Option<&ScopeSet>,
        facts: RequestFacts,
        detail: &Detail,
    ) -> Response<FixedBody> {
        // One line per rejection, with what an operator needs: the stable kind, the validator's detail,
        // and for a scope shortfall what was required and what the token had (scopes are not secrets).
        tracing::debug!(
            status = rejection.status().as_u16(),
            kind = rejection.kind(),
            detail = %detail,
            required = %Preferred(requirement),
            granted = granted.map(tracing::field::display),
            grpc = facts.grpc.is_some(),
            "bearer-guard rejected a request"
        );
        let rendered = match self.slot(&rejection, requirement, granted) {
            Some(slot) => slot
                .get_or_init(|| self.render(&rejection, requirement, granted))
                .clone(),
            None => self.render(&rejection, requirement, granted),
        };

        let mut response = if let Some(content_type) = facts.grpc {
            grpc_response(&rejection, content_type)
        } else {
            let mut response = Response::new(FixedBody::new(rendered.body));
            *response.status_mut() = rejection.status();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, rendered.content_type);
            response
        };
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = rendered.challenge {
            match &self.dpop {
                None => {
                    headers.insert(WWW_AUTHENTICATE, challenge);
                }
                Some(dpop) => dpop_challenges(dpop, &rejection, facts.scheme, challenge, headers),
            }
            if facts.cors {
                headers.insert(
                    ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(if self.dpop.is_some() {
                        "WWW-Authenticate, DPoP-Nonce"
                    } else {
                        "WWW-Authenticate"
                    }),
                );
            }
        }
        if let Rejection::Unavailable { retry_after, .. } = rejection {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            if facts.cors {
                headers.insert(
                    ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static("Retry-After"),
                );
            }
        }
        response
    }
}

mod body;
mod dpop;
mod rejection;
use dpop::dpop_challenges;
pub(crate) use dpop::DpopChallenge;
pub use rejection::Rejection;
mod grpc;
#[cfg(test)]
mod tests;
