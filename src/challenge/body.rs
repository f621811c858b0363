//! The bodies of rejection responses: the [`ErrorBody`] a user may supply, the default JSON body and RFC 9457
//! problem details. (The status and `WWW-Authenticate` challenge are rendered by the parent module.)

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::Rejection;

/// What an [`ErrorBody`] gets to write a response body from. All text is safe to show.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RejectionInfo<'a> {
    /// The rejection.
    pub rejection: Rejection,
    /// The HTTP status that will be sent.
    pub status: StatusCode,
    /// The error code (RFC 6750 code, or `unauthorized`, `temporarily_unavailable`, `server_error`).
    pub error: &'static str,
    /// A fixed, human-readable description.
    pub description: &'static str,
    /// The `scope` value of the challenge, if any.
    pub scope: Option<&'a str>,
}

/// Writes the body of a rejection response. The status and `WWW-Authenticate` header are set by the guard
/// and cannot be changed here.
///
/// Implemented for closures `Fn(&RejectionInfo) -> (HeaderValue, Bytes)` returning the content type and the
/// bytes. [`JsonErrorBody`] is the default; [`ProblemJsonBody`] writes RFC 9457 problem details.
pub trait ErrorBody: Send + Sync + 'static {
    /// Returns the `Content-Type` and the body.
    fn render(&self, info: &RejectionInfo<'_>) -> (HeaderValue, Bytes);

    /// Does [`render`](Self::render) always return the same output for the same input? Then the guard
    /// renders each kind of rejection once and reuses the bytes (a flood of rejected requests costs no
    /// formatting). Default `false`: rendered for every rejection.
    fn is_deterministic(&self) -> bool {
        false
    }
}

impl<F> ErrorBody for F
where
    F: Fn(&RejectionInfo<'_>) -> (HeaderValue, Bytes) + Send + Sync + 'static,
{
    fn render(&self, info: &RejectionInfo<'_>) -> (HeaderValue, Bytes) {
        self(info)
    }
}

/// `{"error": "…", "error_description": "…"}` as `application/json` (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonErrorBody;

impl ErrorBody for JsonErrorBody {
    fn is_deterministic(&self) -> bool {
        true
    }

    fn render(&self, info: &RejectionInfo<'_>) -> (HeaderValue, Bytes) {
        let body = serde_json::json!({
            "error": info.error,
            "error_description": info.description,
        });
        (
            HeaderValue::from_static("application/json"),
            Bytes::from(body.to_string()),
        )
    }
}

/// RFC 9457 problem details as `application/problem+json`, with the OAuth `error` code as an extension.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemJsonBody;

impl ErrorBody for ProblemJsonBody {
    fn is_deterministic(&self) -> bool {
        true
    }

    fn render(&self, info: &RejectionInfo<'_>) -> (HeaderValue, Bytes) {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": info.status.canonical_reason().unwrap_or("Error"),
            "status": info.status.as_u16(),
            "detail": info.description,
            "error": info.error,
        });
        (
            HeaderValue::from_static("application/problem+json"),
            Bytes::from(body.to_string()),
        )
    }
}
