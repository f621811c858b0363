//! A parsed key set and how a token's key is chosen from it.

use crate::fetch::FetchError;
use crate::validate::alg::{Algorithm, AlgorithmSet};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

#[allow(unused_imports)]
use super::*;

/// Why no key could be chosen for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyMiss {
    /// No key has this `kid` (or, without `kid`, no key fits the algorithm).
    NotFound,
    /// The key exists but is not bound to the token's algorithm.
    WrongAlgorithm,
    /// No `kid`, and more than one key fits.
    Ambiguous,
}

/// A parsed key set.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub(super) keys: Vec<VerifyKey>,
    pub(super) by_kid: HashMap<Box<str>, Vec<usize>>,
}

impl KeySet {
    /// Parses a JWKS document. Fails when the document is not a JWKS or has too many keys; individual
    /// unusable keys are skipped.
    pub(crate) fn parse(
        document: &[u8],
        allowed: AlgorithmSet,
        max_keys: usize,
    ) -> Result<Self, FetchError> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Value>,
        }
        let jwks: Jwks =
            serde_json::from_slice(document).map_err(|_| FetchError::InvalidDocument)?;
        if jwks.keys.len() > max_keys {
            return Err(FetchError::TooLarge);
        }
        Ok(Self::from_keys(
            jwks.keys
                .iter()
                .filter_map(|jwk| VerifyKey::from_jwk(jwk, allowed))
                .collect(),
        ))
    }

    pub(super) fn from_keys(keys: Vec<VerifyKey>) -> Self {
        let mut by_kid: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(kid) = &key.kid {
                by_kid.entry(kid.clone()).or_default().push(i);
            }
        }
        Self { keys, by_kid }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Chooses the key for a token: by `kid` if present; without `kid`, the single key bound to `alg`.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifyKey, KeyMiss> {
        match kid {
            Some(kid) => {
                let candidates = self.by_kid.get(kid).ok_or(KeyMiss::NotFound)?;
                candidates
                    .iter()
                    .map(|&i| &self.keys[i])
                    .find(|key| key.algorithms.contains(alg))
                    .ok_or(KeyMiss::WrongAlgorithm)
            }
            None => {
                let mut fitting = self.keys.iter().filter(|key| key.algorithms.contains(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) => Err(KeyMiss::NotFound),
                    (Some(_), Some(_)) => Err(KeyMiss::Ambiguous),
                }
            }
        }
    }

    /// Did any key of `self` disappear from `next`?
    pub(super) fn loses_keys_in(&self, next: &KeySet) -> bool {
        self.keys.iter().any(|old| {
            !next
                .keys
                .iter()
                .any(|new| new.fingerprint == old.fingerprint)
        })
    }
}
