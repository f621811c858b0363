//! Bounded HTTP reads of remote documents (JWKS, authorization server metadata).
//!
//! Every read has a total timeout, a response size cap enforced while streaming (a lying or absent
//! `Content-Length` does not help an attacker), no redirects, and only `https` URLs (or `http` on loopback).
//! Errors carry no response body: nothing the remote server said is echoed to clients or logs.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::CACHE_CONTROL;
use http::HeaderMap;

use crate::resource::check_url;

/// Default total timeout of one remote read.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest timeout of one remote read; longer settings are clamped to it (a `Duration::MAX` "never"
/// would otherwise overflow deadline arithmetic in the HTTP stack).
pub const MAX_FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// Default largest remote document accepted (256 KiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Why a remote read failed. The texts are fixed: no remote content, no URL query, no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not `https` (or `http` on loopback), or is not a valid absolute URL.
    InsecureUrl,
    /// Connecting or sending failed.
    Connect,
    /// The read took longer than the timeout.
    Timeout,
    /// The server answered with a non-success status.
    Status(u16),
    /// The response was larger than the size cap.
    TooLarge,
    /// The body could not be read.
    Body,
    /// The body was not the JSON document expected.
    InvalidDocument,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsecureUrl => f.write_str("URL is not https (or http on loopback)"),
            Self::Connect => f.write_str("connection failed"),
            Self::Timeout => f.write_str("timed out"),
            Self::Status(code) => write!(f, "HTTP status {code}"),
            Self::TooLarge => f.write_str("response exceeds the size limit"),
            Self::Body => f.write_str("response body could not be read"),
            Self::InvalidDocument => f.write_str("response is not the expected JSON document"),
        }
    }
}

impl std::error::Error for FetchError {}

/// After a failed remote read (key set, metadata), the least time before the next attempt: a failing
/// authorization server is not asked again by every request.
pub(crate) const FAILURE_BACKOFF: Duration = Duration::from_secs(1);

/// The status and (bounded) body of a form `POST`'s answer.
#[cfg(feature = "introspection")]
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// A fetched document.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) body: Bytes,
    /// `Cache-Control: max-age`, when the server sent one (and no `no-store`/`no-cache`).
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) max_age: Option<Duration>,
}

/// An HTTP client with the limits every remote read must respect. Cloning shares the connection pool.
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    pub(crate) fn new(timeout: Duration, max_bytes: usize) -> Result<Self, crate::BuildError> {
        let timeout = timeout.min(MAX_FETCH_TIMEOUT);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bearer-guard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| crate::BuildError::Invalid("the HTTP client could not be built"))?;
        Ok(Self { client, max_bytes })
    }

    /// `POST url` with a form body (and an optional `Authorization` value), bounded. A 2xx or 4xx answer is
    /// returned with its body (a 4xx may be a definite OAuth error about the request); any other status is
    /// an error, its body unread.
    #[cfg(feature = "introspection")]
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: String,
        authorization: Option<&http::HeaderValue>,
    ) -> Result<Answer, FetchError> {
        check_url(url, "url", true).map_err(|_| FetchError::InsecureUrl)?;
        let mut request = self
            .client
            .post(url)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        if let Some(value) = authorization {
            request = request.header(http::header::AUTHORIZATION, value.clone());
        }
        let response = request.send().await.map_err(classify)?;
        let status = response.status();
        if !(status.is_success() || status.is_client_error()) {
            return Err(FetchError::Status(status.as_u16()));
        }
        let body = read_limited(response, self.max_bytes).await?;
        Ok(Answer {
            status: status.as_u16(),
            body,
        })
    }

    /// `GET url`, bounded.
    pub(crate) async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        check_url(url, "url", true).map_err(|_| FetchError::InsecureUrl)?;
        let request = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json");
        let response = request.send().await.map_err(classify)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let max_age = max_age(response.headers());
        let body = read_limited(response, self.max_bytes).await?;
        Ok(Fetched { body, max_age })
    }
}

/// Maps a reqwest error to a fixed category (the reqwest error text may contain the URL).
pub(crate) fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout
    } else if error.is_body() || error.is_decode() {
        FetchError::Body
    } else {
        FetchError::Connect
    }
}

/// Reads the body, refusing it as soon as it grows past `max_bytes`.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Bytes, FetchError> {
    if response
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// `Cache-Control: max-age=N`, ignored when `no-store` or `no-cache` is present.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            if directive.eq_ignore_ascii_case("no-store")
                || directive.eq_ignore_ascii_case("no-cache")
            {
                return None;
            }
            if let Some((name, seconds)) = directive.split_once('=') {
                if name.trim().eq_ignore_ascii_case("max-age") {
                    max_age = seconds
                        .trim()
                        .trim_matches('"')
                        .parse()
                        .ok()
                        .map(Duration::from_secs);
                }
            }
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn cache_control_max_age() {
        let mut headers = HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=600"),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(600)));
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("max-age=600, no-cache"),
        );
        assert_eq!(max_age(&headers), None);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("MAX-AGE=\"30\""));
        assert_eq!(max_age(&headers), Some(Duration::from_secs(30)));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=-1"));
        assert_eq!(max_age(&headers), None);
    }
}
