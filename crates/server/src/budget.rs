//! The server-wide budget for bytes of requests and replies held in memory
//! (`--max-buffered`): each connection's limit bounds one client, this bounds them all.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Default `--max-buffered`: 64 MiB.
pub const DEFAULT_MAX_BUFFERED: usize = 64 * 1024 * 1024;

/// Bytes held by every connection together, against a maximum.
#[derive(Debug)]
pub struct Budget {
    max: usize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `max` bytes, none used.
    pub fn new(max: usize) -> Budget {
        Budget {
            max,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `n` more bytes if they fit; false (and nothing taken) if they do not.
    pub fn try_reserve(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    /// A connection that counted `was` bytes now holds `now`: the difference is given
    /// back or taken (taken even past the maximum: the bytes are already held, and a
    /// finished request's reply is only a few bytes longer than the request it replaces).
    pub fn settle(&self, was: usize, now: usize) {
        // Most calls change nothing (a hello exchange holds no bytes): no atomic write.
        if now == was {
            return;
        }
        if now > was {
            self.used.fetch_add(now - was, Ordering::AcqRel);
        } else {
            // Never below zero, whatever a caller got wrong.
            let _ = self
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    Some(used.saturating_sub(was - now))
                });
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The maximum.
    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_maximum_and_settle_back_to_zero() {
        let b = Budget::new(100);
        assert!(b.try_reserve(60));
        assert!(!b.try_reserve(41), "would go over");
        assert!(b.try_reserve(40));
        assert_eq!(b.used(), 100);
        b.settle(60, 70);
        assert_eq!(
            b.used(),
            110,
            "a reply a few bytes longer than its request is held"
        );
        b.settle(70, 0);
        b.settle(40, 0);
        assert_eq!(b.used(), 0);
        b.settle(5, 0);
        assert_eq!(b.used(), 0, "never below zero");
        let all = Budget::new(usize::MAX);
        assert!(all.try_reserve(usize::MAX));
        assert!(!all.try_reserve(1), "an overflow is refused, not wrapped");
    }
}
