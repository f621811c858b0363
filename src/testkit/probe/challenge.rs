//! A strict `WWW-Authenticate` parser (RFC 9110 §11) and an RFC 6750 §3 / RFC 9728 §5.1 checker, for
//! tests that assert what a guarded service answers.
//!
//! ```
//! use bearer_guard::testkit::probe::{check_bearer_challenge, parse_challenges};
//!
//! let value = r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", scope="mcp:read mcp:write""#;
//! let challenge = check_bearer_challenge(value).unwrap();
//! assert_eq!(challenge.param("scope"), Some("mcp:read mcp:write"));
//!
//! // Stricter than a recipient must be: what a sender must not generate is refused.
//! assert!(parse_challenges(r#"Bearer realm="a", realm="b""#).is_err()); // a parameter twice
//! assert!(parse_challenges("Bearer  realm=x, ").is_err()); // an empty list element
//! // And the RFC 6750 rules: Bearer alone, resource_metadata present, each value in its character set.
//! assert!(check_bearer_challenge(r#"Bearer realm="x""#).is_err());
//! assert!(check_bearer_challenge(r#"Basic realm="x", Bearer resource_metadata="https://x/""#).is_err());
//! ```

use crate::charset::{is_nqchar, is_nqschar};

/// One challenge: the scheme and its auth-params, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme as sent (compare case-insensitively: RFC 9110 §11.1).
    pub scheme: String,
    /// The auth-params, names as sent, values unquoted and unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (names are case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// OWS / BWS: `*( SP / HTAB )`; returns what was skipped.
    fn ows(&mut self) -> &[u8] {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        &self.bytes[start..self.at]
    }

    fn token(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE` (RFC 9110 §5.6.4), unescaped.
    fn quoted_string(&mut self) -> Result<String, String> {
        if self.peek() != Some(b'"') {
            return Err("expected a quoted-string".into());
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err("unterminated quoted-string".into());
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err("unterminated quoted-pair".into());
                    };
                    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    if !(escaped == b'\t'
                        || escaped == b' '
                        || (0x21..=0x7E).contains(&escaped)
                        || escaped >= 0x80)
                    {
                        return Err(format!("invalid quoted-pair \\x{escaped:02x}"));
                    }
                    self.at += 1;
                    out.push(escaped);
                }
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF => out.push(b),
                other => return Err(format!("invalid character 0x{other:02x} in quoted-string")),
            }
        }
        String::from_utf8(out).map_err(|_| "quoted-string is not UTF-8".to_owned())
    }

    /// Is the cursor at `token BWS "="` (an auth-param) rather than at a new challenge?
    fn at_auth_param(&self) -> bool {
        let mut probe = Cursor {
            bytes: self.bytes,
            at: self.at,
        };
        probe.token().is_some() && {
            probe.ows();
            probe.peek() == Some(b'=')
        }
    }
}

/// Parses a `WWW-Authenticate` field value strictly (RFC 9110 §11.6.1, §11.2, §5.6.1, §5.6.4).
///
/// Stricter than a recipient must be: it refuses empty list elements (which senders MUST NOT generate),
/// leading or trailing whitespace, token68 (not needed here), anything but `1*SP` between scheme and
/// parameters, empty parameter names or values, and duplicate parameter names within a challenge
/// (compared case-insensitively, RFC 9110 §11.2).
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, String> {
    let mut c = Cursor {
        bytes: value.as_bytes(),
        at: 0,
    };
    if c.at_end() {
        return Err("empty field value".into());
    }
    if matches!(c.peek(), Some(b' ' | b'\t')) {
        return Err("leading whitespace".into());
    }
    let mut challenges = Vec::new();
    'challenges: loop {
        let scheme = c
            .token()
            .ok_or_else(|| format!("expected an auth-scheme at byte {}", c.at))?;
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
        };
        let gap = c.ows().to_vec();
        if c.at_end() {
            if !gap.is_empty() {
                return Err("trailing whitespace".into());
            }
            challenges.push(challenge);
            break;
        }
        if c.peek() == Some(b',') {
            c.at += 1;
            c.ows();
            if c.at_end() || c.peek() == Some(b',') {
                return Err("empty list element".into());
            }
            challenges.push(challenge);
            continue;
        }
        if gap.is_empty() || gap.iter().any(|&b| b != b' ') {
            return Err("auth-scheme must be followed by 1*SP".into());
        }
        loop {
            let name = c
                .token()
                .ok_or_else(|| format!("expected an auth-param name at byte {}", c.at))?;
            c.ows();
            if c.peek() != Some(b'=') {
                return Err(format!(
                    "expected '=' after {name:?} (token68 is not supported)"
                ));
            }
            c.at += 1;
            c.ows();
            let value = if c.peek() == Some(b'"') {
                c.quoted_string()?
            } else {
                c.token()
                    .ok_or_else(|| format!("expected a token or quoted-string for {name:?}"))?
            };
            if challenge
                .params
                .iter()
                .any(|(seen, _)| seen.eq_ignore_ascii_case(&name))
            {
                return Err(format!("duplicate auth-param {name:?}"));
            }
            challenge.params.push((name, value));
            let gap = c.ows().len();
            if c.at_end() {
                if gap > 0 {
                    return Err("trailing whitespace".into());
                }
                challenges.push(challenge);
                break 'challenges;
            }
            if c.peek() != Some(b',') {
                return Err(format!("expected ',' at byte {}", c.at));
            }
            c.at += 1;
            c.ows();
            if c.at_end() || c.peek() == Some(b',') {
                return Err("empty list element".into());
            }
            if !c.at_auth_param() {
                challenges.push(challenge);
                continue 'challenges;
            }
        }
    }
    Ok(challenges)
}

/// Parses `value` strictly and checks that it is exactly one `Bearer` challenge whose parameters are the
/// RFC 6750 / RFC 9728 ones (`realm`, `scope`, `error`, `error_description`, `error_uri`,
/// `resource_metadata`), each at most once, non-empty, within its RFC 6750 §3 character set and without
/// escapes, with `resource_metadata` present and `error` one of the three RFC 6750 codes.
///
/// # Errors
///
/// What is wrong with the value, in words (the value included, for the test's failure message).
pub fn check_bearer_challenge(value: &str) -> Result<Challenge, String> {
    let mut challenges =
        parse_challenges(value).map_err(|e| format!("unparsable challenge {value:?}: {e}"))?;
    if challenges.len() != 1 {
        return Err(format!(
            "{} challenges, not exactly one, in {value:?}",
            challenges.len()
        ));
    }
    let challenge = challenges.remove(0);
    if challenge.scheme != "Bearer" {
        return Err(format!(
            "the challenge is {:?}, not Bearer, in {value:?}",
            challenge.scheme
        ));
    }
    if value.contains('\\') {
        return Err(format!("no escapes are needed (or allowed) in {value:?}"));
    }
    if challenge.param("resource_metadata").is_none() {
        return Err(format!("no resource_metadata in {value:?}"));
    }
    for (name, v) in &challenge.params {
        if v.is_empty() {
            return Err(format!("{name} is empty in {value:?}"));
        }
        let fits = match name.as_str() {
            "scope" => v
                .split(' ')
                .all(|s| !s.is_empty() && s.bytes().all(is_nqchar)),
            "error" | "error_description" | "realm" => v.bytes().all(is_nqschar),
            "resource_metadata" | "error_uri" => v.bytes().all(is_nqchar),
            other => return Err(format!("unexpected auth-param {other:?} in {value:?}")),
        };
        if !fits {
            return Err(format!(
                "{name} is outside its RFC 6750 §3 character set in {value:?}"
            ));
        }
    }
    match challenge.param("error") {
        None | Some("invalid_request" | "invalid_token" | "insufficient_scope") => Ok(challenge),
        Some(other) => Err(format!("unknown error code {other:?} in {value:?}")),
    }
}
