//! [`StaticValidator`]: a fixed set of tokens, for development and service-to-service calls.
//!
//! Tokens are stored only as SHA-256 digests. A presented token is hashed once and compared with *every*
//! stored digest in constant time (`subtle`), so neither the length of a token nor how many of its leading
//! bytes match can be learnt from response times, and the position of a match in the set does not show.

use std::fmt;

use serde_json::{Map, Value};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::error::{BuildError, InvalidToken};
use crate::extract::is_b64token;
use crate::scope::ScopeSet;
use crate::token::{AccessToken, BearerToken};
use crate::validate::{TokenValidator, Validation, ValidationContext};

/// Tokens shorter than this are refused at build time: they could be guessed.
pub const MIN_STATIC_TOKEN_BYTES: usize = 16;

/// Who a static token stands for.
///
/// ```
/// # use bearer_guard::StaticToken;
/// let ci = StaticToken::new("ci-bot").client_id("ci").scopes(["deploy"]);
/// # let _ = ci;
/// ```
#[derive(Debug, Clone)]
pub struct StaticToken {
    subject: String,
    client_id: Option<String>,
    scopes: Vec<String>,
}

impl StaticToken {
    /// A token for `subject`, with no scopes yet.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            client_id: None,
            scopes: Vec::new(),
        }
    }

    /// Sets the client id reported in the [`AccessToken`].
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets the granted scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// Validates a fixed set of tokens.
///
/// ```
/// use bearer_guard::{BearerToken, StaticToken, StaticValidator, TokenValidator, ValidationContext};
///
/// let validator = StaticValidator::builder()
///     .token("dev-token-0123456789abcdef", StaticToken::new("alice").scopes(["notes:read"]))
///     .build()
///     .unwrap();
///
/// let token = BearerToken::new("dev-token-0123456789abcdef").unwrap();
/// let context = ValidationContext::new("https://api.example.com/notes");
/// let access = validator.validate(&token, &context).into_ready().unwrap().unwrap();
/// assert_eq!(access.subject(), Some("alice"));
/// // The token never shows in Debug output.
/// assert!(!format!("{validator:?}").contains("dev-token"));
/// ```
pub struct StaticValidator {
    entries: Box<[([u8; 32], AccessToken)]>,
}

impl StaticValidator {
    /// Starts a builder.
    pub fn builder() -> StaticValidatorBuilder {
        StaticValidatorBuilder::default()
    }

    /// Number of tokens configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn lookup(&self, token: &BearerToken) -> Option<&AccessToken> {
        let presented = token.sha256();
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u64;
        for (i, (digest, _)) in self.entries.iter().enumerate() {
            let hit = digest.ct_eq(&presented);
            index.conditional_assign(&(i as u64), hit);
            found |= hit;
        }
        if bool::from(found) {
            self.entries.get(index as usize).map(|(_, access)| access)
        } else {
            None
        }
    }
}

impl TokenValidator for StaticValidator {
    fn validate(&self, token: &BearerToken, _context: &ValidationContext) -> Validation {
        Validation::ready(
            self.lookup(token)
                .cloned()
                .ok_or(InvalidToken::Unknown.into()),
        )
    }

    /// Responsible only for its own tokens (so it can sit first in a [`FirstMatch`](crate::FirstMatch)).
    fn is_responsible_for(&self, token: &BearerToken, _context: &ValidationContext) -> bool {
        self.lookup(token).is_some()
    }

    /// Static tokens come from configuration, not from an authorization server.
    fn trusted_issuers(&self) -> Option<Vec<String>> {
        Some(Vec::new())
    }
}

impl fmt::Debug for StaticValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticValidator")
            .field(
                "subjects",
                &self
                    .entries
                    .iter()
                    .map(|(_, access)| access.subject().unwrap_or(""))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Builds a [`StaticValidator`].
#[derive(Default)]
pub struct StaticValidatorBuilder {
    tokens: Vec<(String, StaticToken)>,
}

impl StaticValidatorBuilder {
    /// Adds a token and the identity it stands for.
    pub fn token(mut self, token: impl Into<String>, identity: StaticToken) -> Self {
        self.tokens.push((token.into(), identity));
        self
    }

    /// Checks every token (length, `b64token` syntax, no duplicates, valid scopes) and builds.
    pub fn build(self) -> Result<StaticValidator, BuildError> {
        let mut entries: Vec<([u8; 32], AccessToken)> = Vec::with_capacity(self.tokens.len());
        for (token, identity) in self.tokens {
            if token.len() < MIN_STATIC_TOKEN_BYTES {
                return Err(BuildError::InvalidStaticToken(
                    "static tokens must be at least 16 bytes long",
                ));
            }
            let Some(bearer) = BearerToken::new(&token) else {
                return Err(BuildError::InvalidStaticToken(
                    "static tokens must use RFC 6750 b64token characters",
                ));
            };
            debug_assert!(is_b64token(bearer.as_bytes()));
            let digest = bearer.sha256();
            if entries.iter().any(|(d, _)| *d == digest) {
                return Err(BuildError::InvalidStaticToken("duplicate static token"));
            }
            let scopes = ScopeSet::try_from_iter(&identity.scopes)?;
            let mut claims = Map::new();
            claims.insert("sub".into(), Value::String(identity.subject.clone()));
            if !scopes.is_empty() {
                claims.insert("scope".into(), Value::String(scopes.to_scope_string()));
            }
            let mut access = AccessToken::builder()
                .subject(identity.subject)
                .scope_set(scopes);
            if let Some(client_id) = identity.client_id {
                claims.insert("client_id".into(), Value::String(client_id.clone()));
                access = access.client_id(client_id);
            }
            entries.push((digest, access.raw_claims(claims).build()));
        }
        Ok(StaticValidator {
            entries: entries.into_boxed_slice(),
        })
    }
}

impl fmt::Debug for StaticValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticValidatorBuilder")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> StaticValidator {
        StaticValidator::builder()
            .token(
                "alice-token-0123456789",
                StaticToken::new("alice").scopes(["a", "b"]),
            )
            .token(
                "bob-token-0123456789abc",
                StaticToken::new("bob").client_id("svc").scopes(["c"]),
            )
            .build()
            .unwrap()
    }

    fn check(v: &StaticValidator, token: &str) -> Result<AccessToken, crate::ValidationError> {
        let context = ValidationContext::new("https://rs.example.com");
        v.validate(&BearerToken::new(token).unwrap(), &context)
            .into_ready()
            .unwrap()
    }

    #[test]
    fn known_tokens_map_to_their_identity() {
        let v = validator();
        let alice = check(&v, "alice-token-0123456789").unwrap();
        assert_eq!(alice.subject(), Some("alice"));
        assert_eq!(alice.scopes().to_scope_string(), "a b");
        assert_eq!(alice.claim("scope"), Some(&Value::from("a b")));
        let bob = check(&v, "bob-token-0123456789abc").unwrap();
        assert_eq!((bob.subject(), bob.client_id()), (Some("bob"), Some("svc")));
    }

    #[test]
    fn unknown_tokens_and_near_misses_are_rejected() {
        let v = validator();
        for token in [
            "alice-token-012345678",
            "alice-token-01234567890",
            "Alice-token-0123456789",
            "x",
        ] {
            assert_eq!(
                check(&v, token).unwrap_err(),
                crate::ValidationError::from(InvalidToken::Unknown),
                "{token}"
            );
        }
    }

    #[test]
    fn build_refuses_weak_or_unusable_tokens() {
        let short = StaticValidator::builder()
            .token("short", StaticToken::new("a"))
            .build();
        assert!(matches!(short, Err(BuildError::InvalidStaticToken(_))));
        let spaced = StaticValidator::builder()
            .token("has a space in it 12345", StaticToken::new("a"))
            .build();
        assert!(matches!(spaced, Err(BuildError::InvalidStaticToken(_))));
        let dup = StaticValidator::builder()
            .token("same-token-0123456789", StaticToken::new("a"))
            .token("same-token-0123456789", StaticToken::new("b"))
            .build();
        assert!(matches!(dup, Err(BuildError::InvalidStaticToken(_))));
        let bad_scope = StaticValidator::builder()
            .token(
                "fine-token-0123456789",
                StaticToken::new("a").scopes(["bad scope"]),
            )
            .build();
        assert!(matches!(bad_scope, Err(BuildError::InvalidScope(_))));
    }

    #[test]
    fn debug_shows_subjects_only() {
        let v = validator();
        let builder =
            StaticValidator::builder().token("alice-token-0123456789", StaticToken::new("a"));
        for debug in [format!("{v:?}"), format!("{builder:?}")] {
            assert!(!debug.contains("token-0123"), "{debug}");
        }
    }
}
