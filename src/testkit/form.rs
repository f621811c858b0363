//! Request bodies of the development issuer's `POST` endpoints: bounded reading, form decoding (with the
//! `form_urlencoded` crate) and the client credentials a caller presents (RFC 6749 §2.3.1).

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::HeaderMap;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

/// The most a `POST` endpoint reads of a request body.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// How long a `POST` endpoint waits for a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Standard base64 that accepts the `Basic` credentials with or without padding.
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a request body could not be read.
pub(crate) enum BodyError {
    /// Over [`BODY_LIMIT`].
    TooLarge,
    /// The connection failed or the body did not arrive within the timeout.
    Failed,
}

/// Reads at most [`BODY_LIMIT`] bytes of body within ten seconds.
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, BODY_LIMIT).collect()).await;
    match read {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge)
        }
        Ok(Err(_)) | Err(_) => Err(BodyError::Failed),
    }
}

/// Whether the request declares this media type (parameters such as `charset` allowed).
pub(crate) fn has_media_type(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(media_type))
}

/// A decoded `application/x-www-form-urlencoded` body. Debug output shows the field names only.
pub(crate) struct Form {
    fields: Vec<(String, String)>,
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Form").field("names", &names).finish()
    }
}

impl Form {
    /// Decodes the body as browsers do (WHATWG URL standard): `+` is a space, `%XX` a byte, bytes that
    /// are not UTF-8 become U+FFFD. Empty pairs are skipped.
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self {
            fields: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The value of the first parameter `name` (check [`has_repeats`](Self::has_repeats) first).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// How many times `name` is given.
    pub(crate) fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|(field, _)| field == name)
            .count()
    }

    /// Whether any parameter is given more than once (RFC 6749 §3.2 forbids it).
    pub(crate) fn has_repeats(&self) -> bool {
        let mut seen = HashSet::with_capacity(self.fields.len());
        !self.fields.iter().all(|(name, _)| seen.insert(name))
    }
}

/// The outcome of authenticating a caller of a `POST` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// Valid credentials by exactly one method.
    Authenticated,
    /// No, malformed or wrong credentials: `401 invalid_client`.
    Unauthenticated,
    /// More than one method (RFC 6749 §2.3.1), or more than one `Authorization` header:
    /// `400 invalid_request`.
    Ambiguous,
}

/// Constant-time comparison (a length difference is not hidden).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// The client credentials a request presents. Debug output leaves secrets out.
pub(crate) enum Credentials<'a> {
    /// No `Authorization` header and no `client_secret` field (a public client names itself with the
    /// `client_id` field, if at all).
    Nothing,
    /// `client_secret_basic`: id and secret from `Authorization: Basic`, each form-url-decoded.
    Basic {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// `client_secret_post`: the `client_id` (empty when missing) and `client_secret` fields.
    Post {
        /// The client id.
        id: &'a str,
        /// The client secret.
        secret: &'a str,
    },
    /// `Authorization: Bearer` with these credentials.
    Bearer(&'a [u8]),
    /// Another scheme, or `Basic` credentials that do not decode.
    Malformed,
    /// Two methods, or two `Authorization` headers (RFC 6749 §2.3.1: exactly one method).
    Ambiguous,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nothing => f.write_str("Nothing"),
            Self::Basic { id, .. } => f
                .debug_struct("Basic")
                .field("id", id)
                .finish_non_exhaustive(),
            Self::Post { id, .. } => f
                .debug_struct("Post")
                .field("id", id)
                .finish_non_exhaustive(),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Malformed => f.write_str("Malformed"),
            Self::Ambiguous => f.write_str("Ambiguous"),
        }
    }
}

impl<'a> Credentials<'a> {
    /// What `headers` and `form` present.
    pub(crate) fn of(headers: &'a HeaderMap, form: &'a Form) -> Self {
        let mut authorizations = headers.get_all(AUTHORIZATION).iter();
        let authorization = authorizations.next();
        if authorizations.next().is_some() {
            return Self::Ambiguous;
        }
        match (authorization, form.get("client_secret")) {
            (Some(_), Some(_)) => Self::Ambiguous,
            (None, Some(secret)) => Self::Post {
                id: form.get("client_id").unwrap_or_default(),
                secret,
            },
            (None, None) => Self::Nothing,
            (Some(header), None) => {
                let value = header.as_bytes();
                let (scheme, credentials) = match value.iter().position(|b| *b == b' ') {
                    Some(at) => (&value[..at], value.get(at + 1..).unwrap_or_default()),
                    None => (value, &[][..]),
                };
                let credentials = credentials.trim_ascii();
                if scheme.eq_ignore_ascii_case(b"Bearer") {
                    Self::Bearer(credentials)
                } else if scheme.eq_ignore_ascii_case(b"Basic") {
                    basic_credentials(credentials)
                        .map_or(Self::Malformed, |(id, secret)| Self::Basic { id, secret })
                } else {
                    Self::Malformed
                }
            }
        }
    }
}

/// `(id, secret)` from `Basic` credentials: base64, split at the first `:`, each part form-url-decoded
/// (RFC 6749 §2.3.1).
fn basic_credentials(encoded: &[u8]) -> Option<(String, String)> {
    let decoded = BASIC_B64.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_component(id), form_component(secret)))
}

/// One form-urlencoded component decoded: `+` is a space, then `%XX` a byte (bytes that are not UTF-8
/// become U+FFFD), as `form_urlencoded` decodes bodies.
fn form_component(component: &str) -> String {
    let spaced = component.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn form_decoding() {
        let form = Form::parse(
            b"token=a%26b&&flag&token_type_hint=access_token&x=1=2&s=a+b%20c%3A%3a%C3%A9",
        );
        assert_eq!(form.get("token"), Some("a&b"));
        assert_eq!(form.get("flag"), Some(""));
        assert_eq!(form.get("x"), Some("1=2"));
        assert_eq!(form.get("s"), Some("a b c::é"));
        assert_eq!(form.get("missing"), None);
        assert!(!form.has_repeats());
        assert_eq!(Form::parse(b"p=100%&q=%zz%4").get("p"), Some("100%"));
        assert_eq!(Form::parse(b"q=%zz%4").get("q"), Some("%zz%4"));
        let twice = Form::parse(b"token=a&token=b");
        assert_eq!(twice.get("token"), Some("a"));
        assert_eq!(twice.count("token"), 2);
        assert!(twice.has_repeats());
        assert!(Form::parse(b"tok%65n=a&token=b").has_repeats());
        let secret = Form::parse(b"token=very-secret-token&client_secret=hunter2");
        let debug = format!("{secret:?}");
        assert!(debug.contains("client_secret"));
        assert!(!debug.contains("very-secret-token") && !debug.contains("hunter2"));
    }

    #[test]
    fn components_decode_like_bodies() {
        assert_eq!(form_component("client%3Aid+%C3%A9"), "client:id é");
        assert_eq!(form_component("a&b=c%2B"), "a&b=c+");
        assert_eq!(form_component("100%"), "100%");
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn presented_credentials() {
        let empty = Form::parse(b"token=t");
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("a%3Ab:c+d")
        );
        let headers_basic = headers(&basic);
        match Credentials::of(&headers_basic, &empty) {
            Credentials::Basic { id, secret } => {
                assert_eq!((id.as_str(), secret.as_str()), ("a:b", "c d"))
            }
            other => panic!("{other:?}"),
        }
        let no_colon = headers(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("x")
        ));
        assert!(matches!(
            Credentials::of(&no_colon, &empty),
            Credentials::Malformed
        ));
        let bearer = headers("bearer rs-token");
        assert!(matches!(
            Credentials::of(&bearer, &empty),
            Credentials::Bearer(b"rs-token")
        ));
        let other = headers("Digest x");
        assert!(matches!(
            Credentials::of(&other, &empty),
            Credentials::Malformed
        ));
        let none = HeaderMap::new();
        assert!(matches!(
            Credentials::of(&none, &empty),
            Credentials::Nothing
        ));
        let post = Form::parse(b"client_id=c&client_secret=s");
        assert!(matches!(
            Credentials::of(&none, &post),
            Credentials::Post {
                id: "c",
                secret: "s"
            }
        ));
        assert!(matches!(
            Credentials::of(&headers_basic, &post),
            Credentials::Ambiguous
        ));
        let mut two = headers("Bearer a");
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert!(matches!(
            Credentials::of(&two, &empty),
            Credentials::Ambiguous
        ));
        let debug = format!("{:?}", Credentials::of(&headers_basic, &empty));
        assert!(!debug.contains("c d"), "{debug}");
    }
}
