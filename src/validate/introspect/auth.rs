//! [`ClientAuth`]: how the resource server authenticates to the introspection endpoint.
//!
//! ```
//! use bearer_guard::ClientAuth;
//!
//! let auth = ClientAuth::basic("resource-server", "s3cret");
//! assert!(!format!("{auth:?}").contains("s3cret"), "secrets never show in Debug output");
//! ```

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderValue;

pub(super) fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// How the resource server authenticates to the introspection endpoint. Secrets never appear in `Debug`.
#[derive(Clone)]
pub struct ClientAuth(pub(super) AuthKind);

#[derive(Clone)]
pub(super) enum AuthKind {
    /// `Authorization` value, precomputed and marked sensitive.
    Header(HeaderValue),
    /// `client_secret_post` form fields, already form-encoded (`&client_id=…&client_secret=…`).
    Post(String),
}

impl ClientAuth {
    /// `client_secret_basic`: `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`
    /// (RFC 6749 §2.3.1: the id and secret are form-urlencoded *before* base64).
    pub fn basic(client_id: &str, client_secret: &str) -> Self {
        let credentials = format!("{}:{}", form_encode(client_id), form_encode(client_secret));
        Self::header(format!("Basic {}", STANDARD.encode(credentials)))
    }

    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    pub fn post(client_id: &str, client_secret: &str) -> Self {
        Self(AuthKind::Post(format!(
            "&client_id={}&client_secret={}",
            form_encode(client_id),
            form_encode(client_secret)
        )))
    }

    /// A bearer credential of the resource server's own (`Authorization: Bearer …`).
    pub fn bearer(token: &str) -> Self {
        Self::header(format!("Bearer {token}"))
    }

    fn header(value: String) -> Self {
        // A value that cannot be a header (control characters) is caught at build time.
        let mut value =
            HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static(""));
        value.set_sensitive(true);
        Self(AuthKind::Header(value))
    }

    pub(super) fn is_valid(&self) -> bool {
        match &self.0 {
            AuthKind::Header(value) => !value.is_empty(),
            AuthKind::Post(_) => true,
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            AuthKind::Header(v) if v.as_bytes().starts_with(b"Basic") => {
                f.write_str("ClientAuth::Basic(..)")
            }
            AuthKind::Header(_) => f.write_str("ClientAuth::Bearer(..)"),
            AuthKind::Post(_) => f.write_str("ClientAuth::Post(..)"),
        }
    }
}
