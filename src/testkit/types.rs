//! What the development issuer reports and injects: its errors, its endpoints, failure behaviors.

use std::fmt;
use std::time::Duration;

#[cfg(doc)]
use super::{DevIssuer, DevIssuerBuilder};

/// Why the development issuer could not do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum TestkitError {
    /// [`DevIssuerBuilder::start`] was not called within a tokio runtime.
    NoRuntime,
    /// Binding or inspecting the listening socket failed.
    Io(std::io::Error),
    /// Key generation or signing failed in aws-lc-rs.
    Crypto(&'static str),
    /// No key has this key id.
    UnknownKey(String),
    /// The issuer has no signing key at all.
    NoKey,
    /// An RSA key was needed (HS256 confusion tokens) but the chosen key is not RSA, or there is none.
    NoRsaKey,
    /// An invalid builder setting.
    InvalidConfig(&'static str),
    /// A header or claims set could not be serialized, or a reply body is not JSON.
    Json(serde_json::Error),
    /// An HTTP exchange of the test kit's clients failed (connection, protocol, body).
    Http(String),
    /// An HTTP exchange of the test kit's clients took longer than [`probe::WAIT`](super::probe::WAIT).
    Timeout,
}

impl fmt::Display for TestkitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRuntime => {
                f.write_str("the development issuer must be started within a tokio runtime")
            }
            Self::Io(err) => write!(f, "development issuer socket error: {err}"),
            Self::Crypto(what) => write!(f, "development issuer crypto error: {what}"),
            Self::UnknownKey(kid) => write!(f, "no development issuer key with kid {kid:?}"),
            Self::NoKey => f.write_str("the development issuer has no signing key"),
            Self::NoRsaKey => f.write_str("no RSA key available for this operation"),
            Self::InvalidConfig(what) => write!(f, "invalid development issuer setting: {what}"),
            Self::Json(err) => write!(f, "JSON (de)serialization failed: {err}"),
            Self::Http(what) => f.write_str(what),
            Self::Timeout => write!(f, "no complete answer within {:?}", super::probe::WAIT),
        }
    }
}

impl std::error::Error for TestkitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            Self::Json(err) => Some(err),
            _ => None,
        }
    }
}

/// An HTTP endpoint of the development issuer (for [`DevIssuer::requests`] and [`DevIssuer::set_behavior`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /jwks`.
    Jwks,
    /// RFC 8414 metadata, `/.well-known/oauth-authorization-server{issuer_path}`.
    OAuthMetadata,
    /// OpenID metadata, at both `/.well-known/openid-configuration{issuer_path}` and
    /// `{issuer_path}/.well-known/openid-configuration`.
    OpenIdMetadata,
    /// `POST /introspect` (RFC 7662 token introspection).
    Introspection,
    /// `POST /revoke` (RFC 7009 token revocation).
    Revocation,
    /// `GET` and `POST /authorize` (the [authorization server](DevIssuerBuilder::authorization_server)).
    Authorization,
    /// `POST /token` (the [authorization server](DevIssuerBuilder::authorization_server)).
    Token,
    /// `POST /register`, dynamic client registration (the
    /// [authorization server](DevIssuerBuilder::authorization_server)).
    Registration,
}

/// How many [`Endpoint`] variants there are (the size of the counter and behavior arrays).
pub(super) const ENDPOINTS: usize = 8;

impl Endpoint {
    pub(super) const fn index(self) -> usize {
        match self {
            Endpoint::Jwks => 0,
            Endpoint::OAuthMetadata => 1,
            Endpoint::OpenIdMetadata => 2,
            Endpoint::Introspection => 3,
            Endpoint::Revocation => 4,
            Endpoint::Authorization => 5,
            Endpoint::Token => 6,
            Endpoint::Registration => 7,
        }
    }
}

/// How an endpoint answers (failure injection). Requests are counted before the behavior applies.
///
/// On [`Endpoint::Introspection`], `Status` and `InvalidJson` answer before the caller is authenticated;
/// `Slow` delays the normal handling; `Oversize` and `WrongIssuer` change successful (`200`) answers only.
/// On [`Endpoint::Revocation`] only `Status` and `Slow` have an effect; on the authorization server's
/// endpoints, `Status`, `OAuthError` and `Slow`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Serve the document normally.
    #[default]
    Normal,
    /// Answer with this status code and a small JSON body that is not an OAuth error (a code outside
    /// 200–999 becomes 500).
    Status(u16),
    /// Answer with this status code and an OAuth error body `{"error": code}` (RFC 6749 §5.2), as
    /// authorization servers answer requests they refuse (e.g. `400 unsupported_token_type`).
    OAuthError(u16, &'static str),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer 200 with the normal document plus a `"padding"` member, about this many bytes in total (for
    /// introspection: the answer for the token, padded).
    Oversize(usize),
    /// Answer 200 `application/json` with a body that is not JSON.
    InvalidJson,
    /// Metadata whose `issuer` is `http://127.0.0.1:PORT/wrong-issuer`; introspection answers for active
    /// tokens whose `iss` is that URL; the JWKS endpoint answers normally.
    WrongIssuer,
}
