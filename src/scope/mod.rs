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

use crate::error::BuildError;

mod route;
mod set;
pub use route::RoutePolicy;
pub use set::ScopeSet;

/// The scope MCP 2026-07-28 §10 says must never be advertised in a challenge or in `scopes_supported`.
pub(crate) const OFFLINE_ACCESS: &str = "offline_access";

/// Is `scope` a valid scope token (`1*( %x21 / %x23-5B / %x5D-7E )`)?
pub fn is_valid_scope(scope: &str) -> bool {
    crate::charset::is_scope_token(scope)
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
/// An empty requirement ([`Requirement::none`]) is satisfied by every valid token; it is the only one.
/// A requirement built from an *empty list* ([`all_of`](Requirement::all_of), [`any_of`](Requirement::any_of)
/// or [`or_all_of`](Requirement::or_all_of) of nothing, as an empty configuration entry gives) is never
/// satisfied, and [`BearerAuthLayerBuilder::build`](crate::BearerAuthLayerBuilder::build) refuses it:
/// a missing list must not open the door. Cloning is cheap
/// (reference counted), so policies hand out pre-built requirements without allocating.
///
/// A requirement holding a scope that is not valid scope syntax can never be satisfied: a policy mistake
/// fails closed. [`BearerAuthLayerBuilder::build`](crate::BearerAuthLayerBuilder::build) reports such
/// scopes for the policies it can inspect.
#[derive(Clone)]
pub struct Requirement(Arc<RequirementInner>);

struct RequirementInner {
    alternatives: Vec<Vec<Box<str>>>,
    /// Built from an empty scope list: satisfied by nothing, refused by `check`.
    empty_list: bool,
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
            return Self::empty_list();
        }
        Self::from_alternatives(vec![set])
    }

    /// Any one of `scopes` suffices. The first one is the one named in challenges.
    pub fn any_of<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let alternatives: Vec<Vec<Box<str>>> = scopes
            .into_iter()
            .map(|s| vec![Box::<str>::from(s.as_ref())])
            .collect();
        if alternatives.is_empty() {
            return Self::empty_list();
        }
        Self::from_alternatives(alternatives)
    }

    /// Every scope of `scopes` (the union the MCP layer challenges with); nothing when `scopes` is empty.
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    pub(crate) fn union_of<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Self {
        let set: Vec<Box<str>> = scopes.into_iter().map(Box::from).collect();
        if set.is_empty() {
            return Self::none();
        }
        Self::from_alternatives(vec![set])
    }

    /// Both requirements: every way to satisfy this one combined with every way to satisfy `other`.
    pub(crate) fn and(&self, other: &Requirement) -> Requirement {
        if Arc::ptr_eq(&self.0, &other.0) || other.is_none() {
            return self.clone();
        }
        if self.is_none() {
            return other.clone();
        }
        if self.0.empty_list || other.0.empty_list {
            return Self::empty_list();
        }
        let mut alternatives = Vec::new();
        for a in &self.0.alternatives {
            for b in &other.0.alternatives {
                alternatives.push(a.iter().chain(b).cloned().collect());
            }
        }
        Self::from_alternatives(alternatives)
    }

    /// What an empty list builds: never satisfied, refused at build.
    fn empty_list() -> Self {
        let mut requirement = Self::from_alternatives(Vec::new());
        if let Some(inner) = Arc::get_mut(&mut requirement.0) {
            inner.empty_list = true;
        }
        requirement
    }

    /// This requirement, or else all of `scopes` (an additional alternative).
    pub fn or_all_of<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut alternatives = self.0.alternatives.clone();
        let extra: Vec<Box<str>> = scopes.into_iter().map(|s| s.as_ref().into()).collect();
        if self.0.empty_list || extra.is_empty() {
            return Self::empty_list();
        }
        if alternatives.is_empty() {
            // `none()` is already satisfied by everything.
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
            empty_list: false,
            rendered: Default::default(),
            challenge_scope,
        }))
    }

    /// Is nothing required? (Not for a requirement built from an empty list, which nothing satisfies.)
    pub fn is_none(&self) -> bool {
        self.0.alternatives.is_empty() && !self.0.empty_list
    }

    /// Is the requirement met by `granted`, honouring `hierarchy`?
    pub fn is_satisfied_by(&self, granted: &ScopeSet, hierarchy: &ScopeHierarchy) -> bool {
        if self.0.empty_list {
            return false;
        }
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

    /// Reports a requirement built from an empty list, or the first scope with invalid syntax.
    pub fn check(&self) -> Result<(), BuildError> {
        if self.0.empty_list {
            return Err(BuildError::Invalid(
                "a requirement was built from an empty scope list (use Requirement::none() to require nothing)",
            ));
        }
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
        if self.0.empty_list {
            return f.write_str("Requirement::empty_list (never satisfied)");
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
mod tests;
