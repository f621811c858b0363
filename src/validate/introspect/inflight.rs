//! Bounding the introspection calls an unauthenticated caller can cause: concurrent requests with one
//! token share one call ([`Inflight`]), and distinct tokens queue for a bounded number of call slots
//! ([`Limiter`]): beyond the slots and the queue, or after waiting too long, a request gets 503 with
//! `Retry-After` instead of another call to the authorization server.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use std::time::Duration;
//! # use bearer_guard::{IntrospectionValidator, BuildError};
//! // 16 calls at once at most, 64 more waiting at most, each waiting up to 2 s for a slot.
//! let validator = IntrospectionValidator::builder()
//!     .endpoint("https://auth.example.com/introspect")
//!     .max_concurrent_calls(16)
//!     .max_queued_calls(64)
//!     .max_queue_wait(Duration::from_secs(2))
//!     .build()?;
//! # let _ = validator; Ok::<(), BuildError>(()) }).unwrap();
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

use crate::validate::ValidationResult;

/// Default number of introspection calls in flight at once, per validator.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 32;
/// Default number of distinct-token requests waiting for a call slot, per validator.
pub const DEFAULT_MAX_QUEUED_CALLS: usize = 256;
/// Default longest wait for a call slot.
pub const DEFAULT_MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);

type Cell = Arc<OnceCell<ValidationResult>>;

/// Calls in flight, by cache key; every concurrent caller of one key waits on the same cell.
#[derive(Default)]
pub(super) struct Inflight {
    map: Mutex<HashMap<[u8; 32], Cell>>,
}

impl Inflight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cell>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of keys with a call in flight (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Runs `call` once for every concurrent caller of `key`. `cached` is asked first, under the map's
    /// lock, when no call is in flight: the call for this key may have ended between the caller's own
    /// cache lookup and now, and its answer is cached before its entry is removed (under this lock), so a
    /// late caller finds it instead of making a second call.
    pub(super) async fn share<F, Fut>(
        &self,
        key: [u8; 32],
        cached: impl FnOnce() -> Option<ValidationResult>,
        call: F,
    ) -> ValidationResult
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ValidationResult>,
    {
        let cell = {
            let mut map = self.lock();
            if !map.contains_key(&key) {
                if let Some(result) = cached() {
                    return result;
                }
            }
            map.entry(key).or_default().clone()
        };
        let waiter = Waiter {
            inflight: self,
            key,
            cell: Some(cell),
        };
        let Some(cell) = waiter.cell.as_ref() else {
            return Err(crate::ValidationError::Internal(
                "introspection waiter without a call",
            ));
        };
        let result = cell.get_or_init(call).await.clone();
        drop(waiter);
        result
    }
}

/// One caller's hold on an in-flight call. Dropping it (done, or cancelled) removes the map entry when the
/// call finished or nobody else waits on it, so abandoned calls cannot pile up in the map.
struct Waiter<'a> {
    inflight: &'a Inflight,
    key: [u8; 32],
    /// Always `Some` until dropped; taken in `drop` so the reference is released under the map's lock.
    cell: Option<Cell>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let Some(cell) = self.cell.take() else { return };
        let mut map = self.inflight.lock();
        let ours = map
            .get(&self.key)
            .is_some_and(|current| Arc::ptr_eq(current, &cell));
        // Every clone and drop of the cell happens under this lock, so the count is exact: the map's
        // reference and ours means nobody else waits.
        if ours && (cell.initialized() || Arc::strong_count(&cell) == 2) {
            map.remove(&self.key);
        }
        drop(cell);
    }
}

/// Call slots of one introspection endpoint, with a bounded queue in front of them.
pub(super) struct Limiter {
    slots: Semaphore,
    queued: AtomicUsize,
    max_queued: usize,
    max_wait: Duration,
}

/// No call slot could be had: too many waiting, or waited too long.
#[derive(Debug)]
pub(super) struct Busy;

/// Counts a waiting caller; uncounts it when it stops waiting (got a slot, gave up, or was cancelled).
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limiter {
    pub(super) fn new(max_concurrent: usize, max_queued: usize, max_wait: Duration) -> Self {
        Self {
            slots: Semaphore::new(max_concurrent.min(Semaphore::MAX_PERMITS)),
            queued: AtomicUsize::new(0),
            max_queued,
            max_wait,
        }
    }

    /// A call slot, at once if one is free, else after waiting in the bounded queue.
    pub(super) async fn acquire(&self) -> Result<SemaphorePermit<'_>, Busy> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let _queued = Queued(&self.queued);
        match tokio::time::timeout(self.max_wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_is_bounded_and_slots_are_released() {
        let limiter = Limiter::new(1, 1, Duration::from_millis(200));
        let first = limiter.acquire().await.unwrap();
        // One may wait; a second waiter is refused at once.
        let waiting = limiter.acquire();
        tokio::pin!(waiting);
        assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        assert!(limiter.acquire().await.is_err(), "the queue is full");
        drop(first);
        assert!(waiting.await.is_ok(), "the waiter gets the freed slot");
        // Waiting too long is refused too.
        let _held = limiter.acquire().await.unwrap();
        assert!(limiter.acquire().await.is_err(), "timed out waiting");
        assert_eq!(limiter.queued.load(Ordering::Acquire), 0);
    }

    /// Polls once; `None` if still pending.
    async fn futures_poll_once<F: Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
