//! [`RedisReplayStore`]: one `SET key 1 NX PX ttl` per proof, shared by every replica.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Semaphore;

use super::{ReplayStore, StoreCall, StoreError};

/// A replay store on Redis (feature `redis`), for a fleet of replicas behind a load balancer.
///
/// Each proof costs one `SET <prefix><hex key> 1 NX PX <ttl ms>` on a multiplexed, automatically
/// reconnecting connection (redis-rs's `ConnectionManager`, which pipelines concurrent calls on one
/// socket: the pooling redis-rs recommends for async use). Every call is bounded in time
/// ([`timeout`](RedisReplayStoreBuilder::timeout), 250 ms by default) and in number
/// ([`max_in_flight`](RedisReplayStoreBuilder::max_in_flight), 1 024 by default; beyond it
/// [`StoreError::Busy`] at once). Keys are SHA-256 digests under a prefix (`bearer-guard:dpop:` by default).
#[derive(Clone)]
pub struct RedisReplayStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    in_flight: Arc<Semaphore>,
}

/// Configures a [`RedisReplayStore`].
#[derive(Debug, Clone)]
pub struct RedisReplayStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    max_in_flight: usize,
}

impl RedisReplayStore {
    /// A builder for the Redis server at `url` (`redis://host:port/db`, `rediss://` for TLS).
    pub fn builder(url: impl Into<String>) -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder {
            url: url.into(),
            prefix: "bearer-guard:dpop:".into(),
            timeout: Duration::from_millis(250),
            max_in_flight: 1024,
        }
    }

    async fn insert(self, key: String, ttl: Duration) -> Result<bool, StoreError> {
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            return Err(StoreError::Busy);
        };
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection.clone();
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(1).arg("NX").arg("PX").arg(millis);
        let command = set.query_async::<Option<String>>(&mut connection);
        match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(Some(_))) => Ok(true),
            Ok(Ok(None)) => Ok(false),
            Ok(Err(_)) => Err(StoreError::Unreachable),
            Err(_) => Err(StoreError::Timeout),
        }
    }
}

impl RedisReplayStoreBuilder {
    /// The prefix of every key (default `bearer-guard:dpop:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound on one call, connecting included (default 250 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bound on calls in flight (default 1 024).
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// Connects (within the timeout).
    ///
    /// # Errors
    /// [`StoreError::Unreachable`] for a bad URL or a refused connection, [`StoreError::Timeout`].
    pub async fn connect(self) -> Result<RedisReplayStore, StoreError> {
        let client = redis::Client::open(self.url.as_str()).map_err(|_| StoreError::Unreachable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let connect = ConnectionManager::new_with_config(client, config);
        let connection = tokio::time::timeout(self.timeout * 4, connect)
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(|_| StoreError::Unreachable)?;
        Ok(RedisReplayStore {
            connection,
            prefix: self.prefix.into(),
            timeout: self.timeout,
            in_flight: Arc::new(Semaphore::new(self.max_in_flight)),
        })
    }
}

impl ReplayStore for RedisReplayStore {
    fn insert_if_absent(&self, key: &[u8; 32], ttl: Duration) -> StoreCall {
        let mut name = String::with_capacity(self.prefix.len() + 64);
        name.push_str(&self.prefix);
        for byte in key {
            name.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            name.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
        }
        StoreCall::Pending(Box::pin(self.clone().insert(name, ttl)))
    }
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
