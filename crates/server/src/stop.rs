//! The stop signal: tells a running server to stop accepting, records when, so that every
//! exchange in flight gets the same grace, and wakes whatever the server is blocked in (a
//! blocking `accept()` or `recvmmsg()`, `select()`, `epoll_wait()`, `io_uring_enter()`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

type WakeFn = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Inner {
    /// Shared with signal handlers that only set a flag (the fork model's process runs no
    /// signal thread): see [`Stop::flag`].
    stopped: Arc<AtomicBool>,
    at: OnceLock<Instant>,
    next_id: AtomicU64,
    wakers: Mutex<Vec<(u64, WakeFn)>>,
}

/// A cloneable handle: [`Stop::stop`] from a signal thread (or a test) makes `run` return.
#[derive(Clone, Default)]
pub struct Stop(Arc<Inner>);

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Stop {
    /// A handle that has not been stopped.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the server to stop accepting, and wakes it. The first call sets the time the
    /// grace is counted from.
    pub fn stop(&self) {
        self.0.at.get_or_init(Instant::now);
        self.0.stopped.store(true, Ordering::SeqCst);
        let wakers = self.0.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, wake) in wakers.iter() {
            wake();
        }
    }

    /// The flag alone, for a signal handler to set (`signal_hook::flag::register`): the
    /// server notices it at its next look (within 100 ms) and then calls [`Stop::stop`]
    /// itself, which records the time and runs the wakers.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0.stopped)
    }

    /// Whether the stop was asked for (by [`Stop::stop`] or through [`Stop::flag`]).
    #[inline]
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::Relaxed)
    }

    /// When exchanges in flight must be over: `grace` after the first [`Stop::stop`].
    pub fn grace_end(&self, grace: Duration) -> Option<Instant> {
        if !self.is_stopped() {
            return None;
        }
        // Stopped through the flag alone: the grace counts from now, when it is seen.
        Some(*self.0.at.get_or_init(Instant::now) + grace)
    }

    /// Registers `wake` to run on stop (at once if already stopped); it stays registered
    /// until the returned guard is dropped.
    pub fn on_stop(&self, wake: impl Fn() + Send + Sync + 'static) -> WakeGuard {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut wakers = self.0.wakers.lock().unwrap_or_else(PoisonError::into_inner);
            wakers.push((id, Box::new(wake)));
        }
        // Checked after registering, so that a stop racing with registration still wakes.
        if self.is_stopped() {
            self.stop();
        }
        WakeGuard {
            stop: self.clone(),
            id,
        }
    }
}

/// Unregisters a waker when dropped.
pub struct WakeGuard {
    stop: Stop,
    id: u64,
}

impl Drop for WakeGuard {
    fn drop(&mut self) {
        let mut wakers = self.stop.0.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        wakers.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn wakers_run_on_stop_and_not_after_their_guard_drops() {
        let s = Stop::new();
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let g = s.on_stop(move || {
            n2.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(s.grace_end(Duration::from_secs(2)), None);
        s.stop();
        assert!(s.is_stopped());
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let end = s.grace_end(Duration::from_secs(2)).unwrap();
        drop(g);
        s.stop();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(
            s.grace_end(Duration::from_secs(2)),
            Some(end),
            "the first stop counts"
        );
    }

    #[test]
    fn registering_after_stop_wakes_at_once() {
        let s = Stop::new();
        s.stop();
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let _g = s.on_stop(move || {
            n2.fetch_add(1, Ordering::SeqCst);
        });
        assert!(n.load(Ordering::SeqCst) >= 1);
    }
}
