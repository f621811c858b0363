//! Scopes: a parsed scope set, requirements (all-of / any-of), hierarchies, and per-request policies.
//!
//! Scopes are case-sensitive tokens of `%x21 / %x23-5B / %x5D-7E` separated by single spaces
//! (RFC 6749 §3.3, OAuth 2.1 §1.4.1). A [`ScopePolicy`] says which scopes a request needs; the layer
//! checks the validated token's scopes against it and answers `403 insufficient_scope` when they fall
//! short, naming every scope the operation needs in one challenge.
//!
//! ```
//! use bearer_guard::scope::{Requirement, RoutePolicy, ScopeHierarchy, ScopeSet};
//! use http::Method;
//!
//! let policy = RoutePolicy::new()
//!     .route(Some(Method::GET), "/notes", Requirement::all_of(["notes:read"]))
//!     .route(None, "/admin/*", Requirement::any_of(["admin", "root"]))
//!     .fallback(Requirement::all_of(["api"]));
//!
//! // `mcp` implies `mcp:read` and `mcp:write` (MCP 2026-07-28 §11.1.2).
//! let hierarchy = ScopeHierarchy::new().implies("mcp", ["mcp:read", "mcp:write"]);
//! let granted = ScopeSet::parse("mcp").unwrap();
//! assert!(Requirement::all_of(["mcp:write"]).is_satisfied_by(&granted, &hierarchy));
//! # let _ = policy;
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::Method;

use crate::error::BuildError;

mod set;
pub use set::ScopeSet;

/// The scope MCP 2026-07-28 §10 says must never be advertised in a challenge or in `scopes_supported`.
pub(crate) const OFFLINE_ACCESS: &str = "offline_access";

/// Is `scope` a valid scope token (`1*( %x21 / %x23-5B / %x5D-7E )`)?
pub fn is_valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// For each narrow scope, every broader scope that implies it.
type ImpliedBy = HashMap<Box<str>, Box<[Box<str>]>>;

/// Broader scopes that imply narrower ones (e.g. `mcp` implies `mcp:read` and `mcp:write`).
///
/// Implications are transitive and are resolved once, when built. MCP 2026-07-28 §11.1.2 requires servers
/// to honour such hierarchies when judging whether a token's scopes are sufficient.
#[derive(Clone, Default)]
pub struct ScopeHierarchy {
    /// For each narrow scope: every broader scope that implies it (transitively).
    implied_by: Arc<ImpliedBy>,
    /// The declared edges, kept so more can be added.
    edges: Arc<Vec<(Box<str>, Box<str>)>>,
}

impl ScopeHierarchy {
    /// No implications.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that `broad` implies each of `narrower`.
    pub fn implies<I, S>(mut self, broad: &str, narrower: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let edges = Arc::make_mut(&mut self.edges);
        for narrow in narrower {
            edges.push((broad.into(), narrow.as_ref().into()));
        }
        self.implied_by = Arc::new(Self::close(edges));
        self
    }

    fn close(edges: &[(Box<str>, Box<str>)]) -> ImpliedBy {
        // direct parents of each scope
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        for (broad, narrow) in edges {
            parents.entry(narrow).or_default().push(broad);
        }
        let mut closed = HashMap::new();
        for &narrow in parents.keys() {
            let mut seen: HashSet<&str> = HashSet::new();
            let mut stack: Vec<&str> = parents[narrow].clone();
            while let Some(scope) = stack.pop() {
                if scope != narrow && seen.insert(scope) {
                    if let Some(more) = parents.get(scope) {
                        stack.extend(more.iter().copied());
                    }
                }
            }
            let mut ancestors: Vec<Box<str>> = seen.into_iter().map(Box::from).collect();
            ancestors.sort_unstable();
            closed.insert(Box::from(narrow), ancestors.into_boxed_slice());
        }
        closed
    }

    /// Does `granted` hold `scope`, directly or through a broader scope?
    pub fn grants(&self, granted: &ScopeSet, scope: &str) -> bool {
        if granted.contains(scope) {
            return true;
        }
        match self.implied_by.get(scope) {
            Some(broader) => broader.iter().any(|b| granted.contains(b)),
            None => false,
        }
    }

    fn all_scopes(&self) -> impl Iterator<Item = &str> {
        self.edges.iter().flat_map(|(a, b)| [&**a, &**b])
    }
}

impl fmt::Debug for ScopeHierarchy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.edges.iter().map(|(a, b)| format!("{a} => {b}")))
            .finish()
    }
}

/// Which scopes an operation needs: any one of several alternatives, each an all-of set.
///
/// An empty requirement ([`Requirement::none`]) is satisfied by every valid token. Cloning is cheap
/// (reference counted), so policies hand out pre-built requirements without allocating.
///
/// A requirement holding a scope that is not valid scope syntax can never be satisfied: a policy mistake
/// fails closed. [`BearerAuthLayerBuilder::build`](crate::BearerAuthLayerBuilder::build) reports such
/// scopes for the policies it can inspect.
#[derive(Clone)]
pub struct Requirement(Arc<RequirementInner>);

struct RequirementInner {
    alternatives: Vec<Vec<Box<str>>>,
    /// The `scope` challenge value: the first alternative, `offline_access` removed, invalid scopes dropped.
    challenge_scope: Option<Box<str>>,
    /// The rejections of this requirement, rendered once by the first guard that sends them.
    rendered: crate::challenge::RenderedSlots,
}

impl Requirement {
    /// No scope needed.
    pub fn none() -> Self {
        Self::from_alternatives(Vec::new())
    }

    /// Every one of `scopes` is needed.
    pub fn all_of<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set: Vec<Box<str>> = scopes.into_iter().map(|s| s.as_ref().into()).collect();
        if set.is_empty() {
            return Self::none();
        }
        Self::from_alternatives(vec![set])
    }

    /// Any one of `scopes` suffices. The first one is the one named in challenges.
    pub fn any_of<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::from_alternatives(
            scopes
                .into_iter()
                .map(|s| vec![Box::<str>::from(s.as_ref())])
                .collect(),
        )
    }

    /// This requirement, or else all of `scopes` (an additional alternative).
    pub fn or_all_of<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut alternatives = self.0.alternatives.clone();
        let extra: Vec<Box<str>> = scopes.into_iter().map(|s| s.as_ref().into()).collect();
        if alternatives.is_empty() || extra.is_empty() {
            // `none()` or an empty alternative is already satisfied by everything.
            return Self::none();
        }
        alternatives.push(extra);
        Self::from_alternatives(alternatives)
    }

    fn from_alternatives(mut alternatives: Vec<Vec<Box<str>>>) -> Self {
        for alt in &mut alternatives {
            alt.sort_unstable();
            alt.dedup();
        }
        let challenge_scope = alternatives.first().and_then(|first| {
            let shown: Vec<&str> = first
                .iter()
                .map(|s| &**s)
                .filter(|s| *s != OFFLINE_ACCESS && is_valid_scope(s))
                .collect();
            (!shown.is_empty()).then(|| shown.join(" ").into_boxed_str())
        });
        Self(Arc::new(RequirementInner {
            alternatives,
            rendered: Default::default(),
            challenge_scope,
        }))
    }

    /// Is nothing required?
    pub fn is_none(&self) -> bool {
        self.0.alternatives.is_empty()
    }

    /// Is the requirement met by `granted`, honouring `hierarchy`?
    pub fn is_satisfied_by(&self, granted: &ScopeSet, hierarchy: &ScopeHierarchy) -> bool {
        self.0.alternatives.is_empty()
            || self
                .0
                .alternatives
                .iter()
                .any(|alt| alt.iter().all(|scope| hierarchy.grants(granted, scope)))
    }

    /// The scopes of the preferred (first) alternative: what a challenge names.
    pub fn preferred(&self) -> impl Iterator<Item = &str> {
        self.0
            .alternatives
            .first()
            .into_iter()
            .flatten()
            .map(|s| &**s)
    }

    /// Every alternative, each a list of scopes that are all needed.
    pub fn alternatives(&self) -> impl Iterator<Item = &[Box<str>]> {
        self.0.alternatives.iter().map(Vec::as_slice)
    }

    /// The pre-rendered `scope` value for challenges (`offline_access` never included).
    pub(crate) fn challenge_scope(&self) -> Option<&str> {
        self.0.challenge_scope.as_deref()
    }

    /// The cache of this requirement's rendered rejections.
    pub(crate) fn rendered(&self) -> &crate::challenge::RenderedSlots {
        &self.0.rendered
    }

    /// Reports the first scope with invalid syntax.
    pub fn check(&self) -> Result<(), BuildError> {
        for scope in self.0.alternatives.iter().flatten() {
            if !is_valid_scope(scope) {
                return Err(BuildError::InvalidScope(scope.escape_default().to_string()));
            }
        }
        Ok(())
    }
}

impl Default for Requirement {
    fn default() -> Self {
        Self::none()
    }
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("Requirement::none");
        }
        f.debug_tuple("Requirement::any_of")
            .field(&self.0.alternatives)
            .finish()
    }
}

/// Decides which scopes a request needs, from its method, URI and headers.
///
/// Implemented for [`Requirement`] (the same for every request), [`RoutePolicy`] and for closures
/// `Fn(&http::request::Parts) -> Requirement`.
///
/// ```
/// use bearer_guard::scope::{Requirement, ScopePolicy};
/// use http::Method;
///
/// let read = Requirement::all_of(["api:read"]);
/// let write = Requirement::all_of(["api:write"]);
/// let policy = move |parts: &http::request::Parts| {
///     if parts.method == Method::GET { read.clone() } else { write.clone() }
/// };
/// let (parts, ()) = http::Request::post("/x").body(()).unwrap().into_parts();
/// assert_eq!(policy.requirement(&parts).preferred().collect::<Vec<_>>(), ["api:write"]);
/// ```
pub trait ScopePolicy: Send + Sync + 'static {
    /// The scopes this request needs.
    fn requirement(&self, request: &Parts) -> Requirement;

    /// Checks the policy's static configuration (called by the layer's `build()`).
    fn check(&self) -> Result<(), BuildError> {
        Ok(())
    }
}

impl ScopePolicy for Requirement {
    fn requirement(&self, _request: &Parts) -> Requirement {
        self.clone()
    }

    fn check(&self) -> Result<(), BuildError> {
        Requirement::check(self)
    }
}

impl<F> ScopePolicy for F
where
    F: Fn(&Parts) -> Requirement + Send + Sync + 'static,
{
    fn requirement(&self, request: &Parts) -> Requirement {
        self(request)
    }
}

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

    /// Adds a route. `method: None` matches every method.
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
}

impl ScopePolicy for RoutePolicy {
    fn requirement(&self, request: &Parts) -> Requirement {
        let path = request.uri.path();
        for (method, pattern, requirement) in &self.routes {
            if method.as_ref().is_none_or(|m| *m == request.method) && pattern.matches(path) {
                return requirement.clone();
            }
        }
        self.fallback.clone()
    }

    fn check(&self) -> Result<(), BuildError> {
        for (_, _, requirement) in &self.routes {
            requirement.check()?;
        }
        self.fallback.check()
    }
}

/// Checks a hierarchy's scopes.
pub(crate) fn check_hierarchy(hierarchy: &ScopeHierarchy) -> Result<(), BuildError> {
    for scope in hierarchy.all_scopes() {
        if !is_valid_scope(scope) {
            return Err(BuildError::InvalidScope(scope.escape_default().to_string()));
        }
    }
    Ok(())
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

    #[test]
    fn scope_syntax() {
        assert!(is_valid_scope("mcp:read"));
        assert!(is_valid_scope("!#[]~"));
        assert!(!is_valid_scope(""));
        assert!(!is_valid_scope("a b"));
        assert!(!is_valid_scope("a\"b"));
        assert!(!is_valid_scope("a\\b"));
        assert!(!is_valid_scope("caf\u{e9}"));
        assert!(!is_valid_scope("a\tb"));
    }

    #[test]
    fn all_of_and_any_of() {
        let none = ScopeHierarchy::new();
        let granted = ScopeSet::parse("a b").unwrap();
        assert!(Requirement::all_of(["a", "b"]).is_satisfied_by(&granted, &none));
        assert!(!Requirement::all_of(["a", "c"]).is_satisfied_by(&granted, &none));
        assert!(Requirement::any_of(["c", "b"]).is_satisfied_by(&granted, &none));
        assert!(!Requirement::any_of(["c", "d"]).is_satisfied_by(&granted, &none));
        assert!(Requirement::none().is_satisfied_by(&ScopeSet::empty(), &none));
        assert!(Requirement::all_of(["x"])
            .or_all_of(["a", "b"])
            .is_satisfied_by(&granted, &none));
        assert!(!Requirement::all_of(["x"])
            .or_all_of(["a", "z"])
            .is_satisfied_by(&granted, &none));
    }

    #[test]
    fn invalid_required_scope_fails_closed() {
        let none = ScopeHierarchy::new();
        let requirement = Requirement::all_of(["a b"]);
        let granted = ScopeSet::parse("a b").unwrap();
        assert!(!requirement.is_satisfied_by(&granted, &none));
        assert!(requirement.check().is_err());
    }

    #[test]
    fn hierarchy_is_transitive() {
        let hierarchy = ScopeHierarchy::new()
            .implies("admin", ["mcp"])
            .implies("mcp", ["mcp:read", "mcp:write"]);
        let admin = ScopeSet::parse("admin").unwrap();
        let reader = ScopeSet::parse("mcp:read").unwrap();
        assert!(hierarchy.grants(&admin, "mcp:write"));
        assert!(hierarchy.grants(&admin, "mcp"));
        assert!(hierarchy.grants(&reader, "mcp:read"));
        assert!(!hierarchy.grants(&reader, "mcp:write"));
        assert!(!hierarchy.grants(&reader, "mcp"));
        // No reverse implication, no case folding.
        assert!(!hierarchy.grants(&ScopeSet::parse("MCP").unwrap(), "mcp:read"));
    }

    #[test]
    fn hierarchy_cycles_terminate() {
        let hierarchy = ScopeHierarchy::new()
            .implies("a", ["b"])
            .implies("b", ["a"]);
        assert!(hierarchy.grants(&ScopeSet::parse("a").unwrap(), "b"));
        assert!(hierarchy.grants(&ScopeSet::parse("b").unwrap(), "a"));
        assert!(!hierarchy.grants(&ScopeSet::parse("c").unwrap(), "a"));
    }

    #[test]
    fn challenge_scope_never_names_offline_access() {
        let req = Requirement::all_of(["offline_access", "mcp:read"]);
        assert_eq!(req.challenge_scope(), Some("mcp:read"));
        assert_eq!(
            Requirement::all_of(["offline_access"]).challenge_scope(),
            None
        );
        assert_eq!(Requirement::none().challenge_scope(), None);
        assert_eq!(
            Requirement::any_of(["b", "a"]).challenge_scope(),
            Some("b"),
            "any-of names its first alternative"
        );
    }

    #[test]
    fn route_policy_first_match_wins() {
        let policy = RoutePolicy::new()
            .route(Some(Method::GET), "/notes", Requirement::all_of(["read"]))
            .route(None, "/notes", Requirement::all_of(["write"]))
            .route(None, "/admin/*", Requirement::all_of(["admin"]))
            .fallback(Requirement::all_of(["base"]));
        let first = |m, p| {
            policy
                .requirement(&parts(m, p))
                .preferred()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(first(Method::GET, "/notes"), ["read"]);
        assert_eq!(first(Method::POST, "/notes"), ["write"]);
        assert_eq!(first(Method::GET, "/notes/1"), ["base"]);
        assert_eq!(first(Method::GET, "/admin"), ["admin"]);
        assert_eq!(first(Method::GET, "/admin/users"), ["admin"]);
        assert_eq!(first(Method::GET, "/administrator"), ["base"]);
        assert_eq!(first(Method::GET, "/notes?x=1"), ["read"]);
    }

    #[test]
    fn route_policy_check_reports_bad_scopes() {
        let bad = RoutePolicy::new().route(None, "/", Requirement::all_of(["bad scope"]));
        assert!(ScopePolicy::check(&bad).is_err());
        assert!(check_hierarchy(&ScopeHierarchy::new().implies("a", ["b\"c"])).is_err());
    }
}
