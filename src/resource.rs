//! Checks for the URLs the configuration names: the resource identifier and authorization servers.
//!
//! The resource identifier (RFC 8707 §2, RFC 9728 §1.2, MCP §8.1) must be an absolute `https` URL, or
//! `http` on a loopback host for development, with no fragment, no query and no user info. It is kept
//! verbatim: it is the `resource` in the metadata and the audience tokens must name, compared code point
//! by code point (RFC 9728 §6).

use http::Uri;

use crate::error::BuildError;

/// The well-known path prefix of RFC 9728 §3.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// A checked resource identifier and the URLs derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceUrl {
    /// Verbatim, as configured.
    pub(crate) resource: String,
    /// The path-inserted well-known path: `/.well-known/oauth-protected-resource{path}`.
    pub(crate) metadata_path: String,
    /// The absolute URL of the metadata document (what `resource_metadata` names).
    pub(crate) metadata_url: String,
}

/// Is `host` a loopback name or address (`localhost`, `127.0.0.0/8`, `::1`)?
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Characters allowed in a quoted challenge value that is a URI (`%x21 / %x23-5B / %x5D-7E`).
fn fits_challenge_charset(s: &str) -> bool {
    s.bytes().all(crate::charset::is_nqchar)
}

/// Checks an absolute URL used as an identifier: https (http only on loopback), no fragment, no user info;
/// queries are refused when `allow_query` is false. Returns the parsed URI.
pub(crate) fn check_url(url: &str, what: &str, allow_query: bool) -> Result<Uri, String> {
    if url.contains('#') {
        return Err(format!("{what} must not contain a fragment"));
    }
    if !fits_challenge_charset(url) {
        return Err(format!(
            "{what} must be printable ASCII without spaces, quotes or backslashes"
        ));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("{what} is not a valid absolute URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!(
            "{what} must be an absolute URL with a scheme and host"
        ));
    };
    if authority.as_str().contains('@') {
        return Err(format!("{what} must not contain user info"));
    }
    if authority.host().is_empty() {
        return Err(format!("{what} must name a host"));
    }
    let secure = scheme.eq_ignore_ascii_case("https");
    let loopback_http = scheme.eq_ignore_ascii_case("http") && is_loopback_host(authority.host());
    if !secure && !loopback_http {
        return Err(format!(
            "{what} must use https (http is allowed only on loopback hosts)"
        ));
    }
    if !allow_query && uri.query().is_some() {
        return Err(format!("{what} must not contain a query"));
    }
    Ok(uri)
}

impl ResourceUrl {
    /// Checks `resource` and derives the metadata URLs from it.
    pub(crate) fn parse(resource: &str) -> Result<Self, BuildError> {
        let uri =
            check_url(resource, "the resource", false).map_err(BuildError::InvalidResource)?;
        let path = match uri.path() {
            "/" => "",
            path => path,
        };
        let metadata_path = format!("{WELL_KNOWN_PREFIX}{path}");
        // Scheme and authority exactly as configured: take them from the original text.
        // (check_url guarantees `scheme://authority`, and no query or fragment after it.)
        let authority_start = resource.find("://").map_or(0, |i| i + 3);
        let origin_end = resource[authority_start..]
            .find('/')
            .map_or(resource.len(), |i| authority_start + i);
        let origin = &resource[..origin_end];
        let metadata_url = format!("{origin}{metadata_path}");
        Ok(Self {
            resource: resource.to_owned(),
            metadata_path,
            metadata_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_insertion() {
        let r = ResourceUrl::parse("https://api.example.com/mcp").unwrap();
        assert_eq!(r.metadata_path, "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(
            r.metadata_url,
            "https://api.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let root = ResourceUrl::parse("https://api.example.com").unwrap();
        assert_eq!(root.metadata_path, WELL_KNOWN_PREFIX);
        assert_eq!(
            root.metadata_url,
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
        let slash = ResourceUrl::parse("https://api.example.com/").unwrap();
        assert_eq!(slash.metadata_path, WELL_KNOWN_PREFIX);
        let port = ResourceUrl::parse("http://127.0.0.1:8080/a/b").unwrap();
        assert_eq!(
            port.metadata_url,
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b"
        );
    }

    #[test]
    fn refuses_unsafe_identifiers() {
        for bad in [
            "http://api.example.com/mcp",
            "https://api.example.com/mcp#frag",
            "https://api.example.com/mcp?x=1",
            "https://user@api.example.com/mcp",
            "/mcp",
            "api.example.com/mcp",
            "ftp://api.example.com/",
            "https://api.example.com/m\"cp",
            "https://api.example.com/m cp",
            "",
        ] {
            assert!(ResourceUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_http_is_allowed() {
        for ok in [
            "http://127.0.0.1:3000/mcp",
            "http://localhost:3000/mcp",
            "http://[::1]:3000/mcp",
            "http://127.1.2.3/mcp",
            "https://localhost/mcp",
        ] {
            assert!(ResourceUrl::parse(ok).is_ok(), "{ok}");
        }
        assert!(ResourceUrl::parse("http://localhost.example.com/mcp").is_err());
        assert!(ResourceUrl::parse("http://10.0.0.1/mcp").is_err());
    }
}
