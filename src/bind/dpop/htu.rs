//! The `htu` comparison of RFC 9449 §4.3 item 9: the request URI without query and fragment, normalized
//! per RFC 3986 §6.2.2 (case, percent-encoding, dot segments) and §6.2.3 (default port, empty path).
//!
//! The expected value is built from the guard's *configured* public origin and the request's path, never
//! from a `Host` header (which the client controls).

use std::fmt::Write as _;

/// `scheme://authority` of a configured URL, lowercased, default port removed.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = match (scheme.as_str(), authority.rsplit_once(':')) {
        ("https", Some((host, "443"))) | ("http", Some((host, "80"))) => host.to_owned(),
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

/// Normalizes an absolute URI for comparison; `None` when it is not one (or is absurdly long).
pub(crate) fn normalize(uri: &str) -> Option<String> {
    if uri.len() > 4096 {
        return None;
    }
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    let uri = &uri[..end];
    let (scheme, rest) = uri.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let slash = rest.find('/').unwrap_or(rest.len());
    let origin = origin_of(&uri[..scheme.len() + 3 + slash])?;
    let path = normalize_path(&rest[slash..])?;
    Some(origin + &path)
}

/// Percent-encoding normalized (hex upper case, unreserved characters decoded), dot segments removed, and
/// an empty path made `/`.
fn normalize_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                decoded.push(char::from(value));
            } else {
                let _ = write!(decoded, "%{value:02X}");
            }
            i += 3;
        } else if b.is_ascii_graphic() {
            decoded.push(char::from(b));
            i += 1;
        } else {
            return None;
        }
    }
    let mut output: Vec<&str> = Vec::new();
    for segment in decoded.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                output.pop();
            }
            other => output.push(other),
        }
    }
    // A trailing `.` or `..` leaves a trailing slash (RFC 3986 §5.2.4).
    if decoded.ends_with("/.") || decoded.ends_with("/..") {
        output.push("");
    }
    let mut normalized = String::with_capacity(decoded.len().max(1));
    for segment in &output {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    Some(normalized)
}

/// The `htu` a proof for a request to `path` must carry, normalized: the configured origin and the path.
pub(crate) fn expected(origin: &str, path: &str) -> Option<String> {
    let path = if path.is_empty() { "/" } else { path };
    Some(origin.to_owned() + &normalize_path(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_rules() {
        let n = |u: &str| normalize(u).unwrap();
        assert_eq!(
            n("https://MCP.Example.com:443/mcp"),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(
            n("HTTPS://mcp.example.com/mcp?x=1#f"),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(n("http://h:80"), "http://h/");
        assert_eq!(n("http://h:8080/a/./b/../c"), "http://h:8080/a/c");
        assert_eq!(n("https://h/%7euser/%2f%41"), "https://h/~user/%2FA");
        assert_ne!(
            n("https://h/MCP"),
            n("https://h/mcp"),
            "paths stay case sensitive"
        );
        assert_ne!(n("https://h:8443/mcp"), n("https://h/mcp"));
        for bad in [
            "mcp",
            "https://",
            "https:///x",
            "https://u@h/",
            "https://h/%zz",
            "https://h/a b",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn expected_is_the_configured_origin_and_the_path() {
        let origin = origin_of("https://MCP.example.com:443/mcp").unwrap();
        assert_eq!(origin, "https://mcp.example.com");
        assert_eq!(
            expected(&origin, "/mcp").unwrap(),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(expected(&origin, "").unwrap(), "https://mcp.example.com/");
        assert_eq!(
            expected(&origin, "/a/../mcp").as_deref(),
            normalize("https://mcp.example.com/mcp").as_deref()
        );
    }
}
