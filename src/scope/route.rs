//! [`RoutePolicy`]: per-route scope requirements, matched so that no spelling of a path that a router
//! could send to a protected handler falls to a weaker requirement.
//!
//! ```
//! use bearer_guard::scope::{Requirement, RoutePolicy, ScopePolicy};
//! use http::Method;
//!
//! let policy = RoutePolicy::new()
//!     .route(Some(Method::GET), "/notes", Requirement::all_of(["notes:read"]))
//!     .fallback(Requirement::none());
//! let needs = |method: Method, path: &str| {
//!     let (parts, ()) = http::Request::builder().method(method).uri(path).body(()).unwrap().into_parts();
//!     policy.requirement(&parts).preferred().map(str::to_owned).collect::<Vec<_>>()
//! };
//! assert_eq!(needs(Method::GET, "/notes"), ["notes:read"]);
//! assert_eq!(needs(Method::HEAD, "/notes"), ["notes:read"], "HEAD is served by GET handlers");
//! assert_eq!(needs(Method::GET, "/notes/"), ["notes:read"], "a trailing slash");
//! assert_eq!(needs(Method::GET, "//n%6Ftes"), ["notes:read"], "doubled slashes, percent-encoding");
//! assert_eq!(needs(Method::GET, "/Notes"), ["notes:read"], "case");
//! assert!(needs(Method::GET, "/notes/1").is_empty());
//! ```

use std::borrow::Cow;

use http::request::Parts;
use http::Method;

use super::{Requirement, ScopePolicy};
use crate::error::BuildError;

/// How a [`RoutePolicy`] route matches a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathPattern {
    Exact(Box<str>),
    /// `"/admin/*"`: `/admin` itself and everything below it.
    Prefix(Box<str>),
}

impl PathPattern {
    fn parse(pattern: &str) -> Self {
        match pattern.strip_suffix("/*") {
            Some(prefix) => Self::Prefix(prefix.into()),
            None => Self::Exact(pattern.into()),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => path == &**exact,
            Self::Prefix(prefix) => match path.strip_prefix(&**prefix) {
                Some(rest) => rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
        }
    }
}

/// Per-route requirements: the first route whose method and path match decides; otherwise the fallback.
///
/// Paths are matched exactly, or as a prefix on a segment boundary when the pattern ends in `/*`
/// (`"/admin/*"` matches `/admin`, `/admin/` and `/admin/users`, not `/administrator`).
///
/// **How requests reach a route.** Routers disagree on spellings: axum routes `/notes/`, `//notes`,
/// `/n%6Ftes` and `/Notes` elsewhere than `/notes` (case-sensitive, no normalization), while other routers,
/// proxies and `NormalizePath` layers fold some of them together. So a request is matched twice: as it is,
/// and in a normalized form (percent-escapes decoded, repeated slashes collapsed, `.` and `..` segments
/// removed, the trailing slash dropped, ASCII letters lowercased); when the two match different routes, the
/// request needs **both** requirements. A spelling never gets a weaker requirement than a route it could be
/// routed to; the cost is that a path differing from a protected one only in such a way (say `/Notes`
/// beside `/notes`) needs that route's scopes too. Likewise `HEAD` matches routes for `GET` (axum, like
/// most frameworks, answers `HEAD` with the `GET` handler): a `HEAD` request needs at least what `GET` does.
/// Patterns are written in normalized form (lowercase, no trailing slash) to match every spelling.
#[derive(Debug, Clone, Default)]
pub struct RoutePolicy {
    routes: Vec<(Option<Method>, PathPattern, Requirement)>,
    fallback: Requirement,
}

impl RoutePolicy {
    /// No routes; the fallback requires nothing until [`RoutePolicy::fallback`] sets it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route. `method: None` matches every method; `Some(GET)` matches `HEAD` too.
    pub fn route(mut self, method: Option<Method>, path: &str, requirement: Requirement) -> Self {
        self.routes
            .push((method, PathPattern::parse(path), requirement));
        self
    }

    /// The requirement for requests no route matches.
    pub fn fallback(mut self, requirement: Requirement) -> Self {
        self.fallback = requirement;
        self
    }

    /// The first matching route's requirement, or the fallback.
    fn first_match(&self, method: &Method, path: &str) -> &Requirement {
        let method_matches = |route: &Option<Method>| match route {
            None => true,
            Some(m) => m == method || (*method == Method::HEAD && *m == Method::GET),
        };
        self.routes
            .iter()
            .find(|(m, pattern, _)| method_matches(m) && pattern.matches(path))
            .map_or(&self.fallback, |(_, _, requirement)| requirement)
    }
}

impl ScopePolicy for RoutePolicy {
    fn requirement(&self, request: &Parts) -> Requirement {
        let path = request.uri.path();
        let as_sent = self.first_match(&request.method, path);
        match normalize(path) {
            Cow::Borrowed(_) => as_sent.clone(),
            Cow::Owned(normalized) => as_sent.and(self.first_match(&request.method, &normalized)),
        }
    }

    fn check(&self) -> Result<(), BuildError> {
        for (_, _, requirement) in &self.routes {
            requirement.check()?;
        }
        self.fallback.check()
    }
}

/// The normalized form of a path (see [`RoutePolicy`]); borrowed when the path is already normal, so the
/// usual request allocates nothing.
fn normalize(path: &str) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    let needs_work = bytes.iter().any(|&b| b == b'%' || b.is_ascii_uppercase())
        || path.contains("//")
        || path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        || (path.len() > 1 && path.ends_with('/'));
    if !needs_work {
        return Cow::Borrowed(path);
    }
    // Percent-decode every escape (a router that decodes `%2F` sees a slash), then fold case.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
    // Remove empty, `.` and `..` segments (RFC 3986 §5.2.4 for the dots); no trailing slash.
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut normalized = String::with_capacity(decoded.len());
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    Cow::Owned(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, path: &str) -> Parts {
        http::Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn needs(policy: &RoutePolicy, method: Method, path: &str) -> Vec<String> {
        let requirement = policy.requirement(&parts(method, path));
        let mut alternatives: Vec<String> = requirement
            .alternatives()
            .map(|alt| alt.join("+"))
            .collect();
        alternatives.sort();
        alternatives
    }

    #[test]
    fn route_policy_first_match_wins() {
        let policy = RoutePolicy::new()
            .route(Some(Method::GET), "/notes", Requirement::all_of(["read"]))
            .route(None, "/notes", Requirement::all_of(["write"]))
            .route(None, "/admin/*", Requirement::all_of(["admin"]))
            .fallback(Requirement::all_of(["base"]));
        let first = |m, p| needs(&policy, m, p);
        assert_eq!(first(Method::GET, "/notes"), ["read"]);
        assert_eq!(first(Method::HEAD, "/notes"), ["read"]);
        assert_eq!(first(Method::POST, "/notes"), ["write"]);
        assert_eq!(first(Method::GET, "/notes/1"), ["base"]);
        assert_eq!(first(Method::GET, "/admin"), ["admin"]);
        assert_eq!(first(Method::GET, "/admin/users"), ["admin"]);
        assert_eq!(first(Method::GET, "/administrator"), ["base"]);
        assert_eq!(first(Method::GET, "/notes?x=1"), ["read"]);
        // Other spellings of a route need its requirement as well as their own.
        for spelling in [
            "/notes/",
            "//notes",
            "/n%6Ftes",
            "/NOTES",
            "/x/../notes",
            "/./notes",
        ] {
            assert_eq!(first(Method::GET, spelling), ["base+read"], "{spelling}");
        }
        assert_eq!(first(Method::GET, "/admin%2Fusers"), ["admin+base"]);
        assert_eq!(first(Method::GET, "/Admin/Users"), ["admin+base"]);
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for path in ["/", "/mcp", "/a/b-c_d~e.f", "/notes/1"] {
            assert!(matches!(normalize(path), Cow::Borrowed(_)), "{path}");
        }
        assert_eq!(normalize("//a///b/"), "/a/b");
        assert_eq!(normalize("/a/./b/../c"), "/a/c");
        assert_eq!(normalize("/../.."), "/");
        assert_eq!(normalize("/%41%2f%zz"), "/a/%zz");
        assert_eq!(normalize("/%ff"), "/\u{fffd}");
    }

    #[test]
    fn route_policy_check_reports_bad_scopes_and_empty_lists() {
        let bad = RoutePolicy::new().route(None, "/", Requirement::all_of(["bad scope"]));
        assert!(ScopePolicy::check(&bad).is_err());
        let empty = RoutePolicy::new().route(None, "/", Requirement::any_of(Vec::<String>::new()));
        assert!(ScopePolicy::check(&empty).is_err());
    }
}
