//! [`Detail`]: what an operator's log needs to act on a refused token.

use std::fmt;

/// What an operator's log needs to act on a refused token: which check failed, and with which values.
///
/// ```
/// use bearer_guard::{Detail, InvalidToken, ValidationError};
///
/// let error = ValidationError::refused(
///     InvalidToken::WrongAudience,
///     Detail::mismatch("aud", "https://mcp.example.com/mcp", "https://other.example.com"),
/// );
/// assert_eq!(error.kind(), "wrong_audience");
/// assert_eq!(
///     error.detail().to_string(),
///     r#"aud: expected "https://mcp.example.com/mcp", found "https://other.example.com""#,
/// );
/// // The client sees only the fixed description, never the detail.
/// assert_eq!(error.to_string(), "invalid token: The access token was not issued for this resource");
/// ```
///
/// A detail holds claim and header values an operator needs (audience, issuer, `kid`, `alg`, `typ`, times)
/// and never a token, a signature or a secret. The values come from a token that was refused, so they may
/// be unverified and chosen by the caller: each is cut to [`Detail::MAX_VALUE_CHARS`] characters, and
/// anything outside printable ASCII is replaced by `?` so that a value cannot forge log lines. A detail
/// costs one allocation when a token is refused and nothing when one is accepted.
///
/// `Display` renders the facts for a log line (`none` when there are none); they never reach the client.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Detail(Option<Box<Facts>>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Facts {
    Note(&'static str),
    Mismatch {
        what: &'static str,
        expected: Box<str>,
        found: Box<str>,
    },
    Found {
        what: &'static str,
        found: Box<str>,
    },
    Time {
        claim: &'static str,
        at: i64,
        now: i64,
    },
}

impl Detail {
    /// No detail: the kind says everything.
    pub const NONE: Detail = Detail(None);

    /// The longest value a detail keeps, in characters; longer values are cut and end in `...`.
    pub const MAX_VALUE_CHARS: usize = 96;

    /// Which check failed, in fixed words (e.g. `"the payload is not a JSON object"`).
    pub fn note(note: &'static str) -> Self {
        Self(Some(Box::new(Facts::Note(note))))
    }

    /// A value that differs from the one expected (e.g. `aud` expected `https://mcp.example.com/mcp`,
    /// found `https://other.example.com`).
    pub fn mismatch(what: &'static str, expected: &str, found: &str) -> Self {
        Self(Some(Box::new(Facts::Mismatch {
            what,
            expected: loggable(expected),
            found: loggable(found),
        })))
    }

    /// A value that was refused as such (e.g. `kid` `"2024-old"`, `alg` `"HS256"`).
    pub fn found(what: &'static str, found: &str) -> Self {
        Self(Some(Box::new(Facts::Found {
            what,
            found: loggable(found),
        })))
    }

    /// A time claim (`exp`, `nbf`, `iat`, seconds since the epoch) compared with the clock.
    pub fn time(claim: &'static str, at: f64, now: f64) -> Self {
        // `as` saturates: a claim of 1e300 is logged as i64::MAX, never wraps.
        Self(Some(Box::new(Facts::Time {
            claim,
            at: at as i64,
            now: now as i64,
        })))
    }

    /// Whether there is anything to log beyond the kind.
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

/// The value as a log may show it: at most [`Detail::MAX_VALUE_CHARS`] characters, printable ASCII only.
fn loggable(value: &str) -> Box<str> {
    // The usual value (a URL, a kid) is short printable ASCII: copied as is.
    if value.len() <= Detail::MAX_VALUE_CHARS && value.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return value.into();
    }
    let mut out = String::with_capacity(value.len().min(Detail::MAX_VALUE_CHARS + 3));
    for (i, c) in value.chars().enumerate() {
        if i == Detail::MAX_VALUE_CHARS {
            out.push_str("...");
            break;
        }
        out.push(if c == ' ' || c.is_ascii_graphic() {
            c
        } else {
            '?'
        });
    }
    out.into_boxed_str()
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_deref() {
            None => f.write_str("none"),
            Some(Facts::Note(note)) => f.write_str(note),
            Some(Facts::Mismatch {
                what,
                expected,
                found,
            }) => write!(f, "{what}: expected {expected:?}, found {found:?}"),
            Some(Facts::Found { what, found }) => write!(f, "{what} {found:?}"),
            Some(Facts::Time { claim, at, now }) => {
                let (distance, side) = if at <= now {
                    (now.saturating_sub(*at), "before")
                } else {
                    (at.saturating_sub(*now), "after")
                };
                write!(f, "{claim} {at} is {distance} s {side} now ({now})")
            }
        }
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Detail({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_and_cannot_forge_log_lines() {
        let long = "a".repeat(500);
        let detail = Detail::found("kid", &long);
        let shown = detail.to_string();
        assert!(shown.len() < 120, "{shown}");
        assert!(shown.ends_with("...\""), "{shown}");

        let forged = Detail::found("kid", "x\n2026-12-07 INFO admin logged in\u{1b}[0m\u{202e}");
        let shown = forged.to_string();
        assert!(!shown.contains('\n') && !shown.contains('\u{1b}') && !shown.contains('\u{202e}'));
        assert_eq!(shown, r#"kid "x?2026-12-07 INFO admin logged in?[0m?""#);
    }

    #[test]
    fn renders_each_shape() {
        assert_eq!(Detail::NONE.to_string(), "none");
        assert!(Detail::NONE.is_none());
        assert_eq!(Detail::note("no exp claim").to_string(), "no exp claim");
        assert_eq!(
            Detail::mismatch("iss", "https://a", "https://b").to_string(),
            r#"iss: expected "https://a", found "https://b""#
        );
        assert_eq!(
            Detail::time("exp", 100.0, 160.5).to_string(),
            "exp 100 is 60 s before now (160)"
        );
        assert_eq!(
            Detail::time("nbf", 200.0, 160.0).to_string(),
            "nbf 200 is 40 s after now (160)"
        );
        assert_eq!(
            Detail::time("exp", 1e300, 0.0).to_string(),
            format!("exp {} is {} s after now (0)", i64::MAX, i64::MAX)
        );
        assert_eq!(
            format!("{:?}", Detail::found("alg", "HS256")),
            r#"Detail(alg "HS256")"#
        );
    }
}
