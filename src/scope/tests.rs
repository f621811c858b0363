use super::*;

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
fn empty_lists_are_never_satisfied_and_refused_at_build() {
    let granted = ScopeSet::parse("a b").unwrap();
    let none = ScopeHierarchy::new();
    let nothing: [&str; 0] = [];
    for empty in [
        Requirement::any_of(nothing),
        Requirement::all_of(nothing),
        Requirement::all_of(["a"]).or_all_of(nothing),
        Requirement::any_of(nothing).or_all_of(["a"]),
    ] {
        assert!(!empty.is_satisfied_by(&granted, &none), "{empty:?}");
        assert!(!empty.is_none());
        assert!(empty.check().is_err(), "{empty:?}");
        assert!(ScopePolicy::check(&empty).is_err());
    }
    // `none()` is the one explicit way to require nothing.
    assert!(Requirement::none().is_satisfied_by(&ScopeSet::empty(), &none));
    assert!(Requirement::none().check().is_ok());
    // A conjunction with an empty list stays unsatisfiable.
    assert!(!Requirement::all_of(["a"])
        .and(&Requirement::any_of(nothing))
        .is_satisfied_by(&granted, &none));
    let both = Requirement::any_of(["a", "x"]).and(&Requirement::any_of(["b", "y"]));
    assert!(both.is_satisfied_by(&granted, &none));
    assert!(!both.is_satisfied_by(&ScopeSet::parse("a").unwrap(), &none));
}

#[test]
fn hierarchy_check_reports_bad_scopes() {
    assert!(check_hierarchy(&ScopeHierarchy::new().implies("a", ["b\"c"])).is_err());
}
