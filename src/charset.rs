//! The character sets of RFC 6749 Appendix A and RFC 6750 §3, in one place.
//!
//! ```text
//! scope-token       = 1*( %x21 / %x23-5B / %x5D-7E )            (NQCHAR: printable ASCII but " and \)
//! error_description = *( %x20-21 / %x23-5B / %x5D-7E )          (NQSCHAR: the same plus space)
//! error_uri, realm  = quoted values of the same sets
//! ```

/// Is `b` an `NQCHAR` (`%x21 / %x23-5B / %x5D-7E`): a scope-token or URI character in a challenge?
#[inline]
pub(crate) const fn is_nqchar(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Is `b` an `NQSCHAR` (`%x20-21 / %x23-5B / %x5D-7E`): an `error_description` or `realm` character?
#[inline]
pub(crate) const fn is_nqschar(b: u8) -> bool {
    b == b' ' || is_nqchar(b)
}

/// Is `s` a valid scope token (`1*NQCHAR`)?
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_nqchar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_match_the_grammar() {
        for b in 0u8..=255 {
            let nq = b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
            assert_eq!(is_nqchar(b), nq, "{b:#x}");
            assert_eq!(is_nqschar(b), nq || b == 0x20, "{b:#x}");
        }
        assert!(is_scope_token("mcp:read"));
        assert!(!is_scope_token("") && !is_scope_token("a b") && !is_scope_token("a\"b"));
    }
}
