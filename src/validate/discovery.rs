//! Authorization server metadata discovery (RFC 8414, OpenID Connect Discovery 1.0).
//!
//! From an issuer identifier, the candidate URLs are tried in the order MCP clients use
//! (MCP 2025-11-25 §4.3):
//!
//! | issuer | candidates |
//! |---|---|
//! | `https://as.example.com` | `/.well-known/oauth-authorization-server`, `/.well-known/openid-configuration` |
//! | `https://as.example.com/tenant` | `/.well-known/oauth-authorization-server/tenant`, `/.well-known/openid-configuration/tenant`, `/tenant/.well-known/openid-configuration` |
//!
//! A document is used only when its `issuer` is *identical* to the configured issuer (RFC 8414 §3.3,
//! OpenID Discovery §4.3); otherwise the next candidate is tried.

use serde::Deserialize;

use crate::fetch::{FetchError, Fetcher};

/// The parts of the authorization server metadata this crate uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// `issuer`: checked to be identical to the configured issuer.
    pub issuer: String,
    /// `jwks_uri`: where the signing keys are.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// `introspection_endpoint` (RFC 7662).
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

/// Why discovery failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// No candidate answered with a usable document; the last failure is given.
    Unreachable(FetchError),
    /// A document was found but its `issuer` differs from the configured one (and no other candidate fit).
    IssuerMismatch,
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "authorization server metadata unavailable: {e}"),
            Self::IssuerMismatch => {
                f.write_str("authorization server metadata names another issuer")
            }
        }
    }
}

impl std::error::Error for DiscoveryError {}

/// The metadata URLs for `issuer`, in the order they are tried.
pub fn candidate_urls(issuer: &str) -> Vec<String> {
    let Some(scheme_end) = issuer.find("://").map(|i| i + 3) else {
        return Vec::new();
    };
    let path_start = issuer[scheme_end..]
        .find('/')
        .map_or(issuer.len(), |i| scheme_end + i);
    let origin = &issuer[..path_start];
    let path = issuer[path_start..].trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

/// Fetches the metadata of `issuer`, trying each candidate URL in turn.
pub(crate) async fn discover(
    fetcher: &Fetcher,
    issuer: &str,
) -> Result<AuthorizationServerMetadata, DiscoveryError> {
    let mut last = DiscoveryError::Unreachable(FetchError::InvalidDocument);
    for url in candidate_urls(issuer) {
        match fetcher.get(&url).await {
            Ok(fetched) => {
                match serde_json::from_slice::<AuthorizationServerMetadata>(&fetched.body) {
                    Ok(doc) if doc.issuer == issuer => return Ok(doc),
                    Ok(_) => {
                        tracing::warn!(
                            issuer,
                            url = url.as_str(),
                            "authorization server metadata names another issuer; ignored"
                        );
                        last = DiscoveryError::IssuerMismatch;
                    }
                    Err(_) => {
                        if last != DiscoveryError::IssuerMismatch {
                            last = DiscoveryError::Unreachable(FetchError::InvalidDocument);
                        }
                    }
                }
            }
            Err(error) => {
                tracing::debug!(issuer, url = url.as_str(), %error, "metadata candidate failed");
                if last != DiscoveryError::IssuerMismatch {
                    last = DiscoveryError::Unreachable(error);
                }
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_mcp_order() {
        assert_eq!(
            candidate_urls("https://as.example.com"),
            [
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            candidate_urls("https://as.example.com/"),
            candidate_urls("https://as.example.com")
        );
        assert_eq!(
            candidate_urls("https://as.example.com/realms/demo/"),
            [
                "https://as.example.com/.well-known/oauth-authorization-server/realms/demo",
                "https://as.example.com/.well-known/openid-configuration/realms/demo",
                "https://as.example.com/realms/demo/.well-known/openid-configuration"
            ]
        );
        assert!(candidate_urls("not a url").is_empty());
    }
}
