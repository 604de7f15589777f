//! `--max-conns` across the workers of a server: one count of the clients being served,
//! taken before each `accept()` and given back when the client's exchange has ended, so
//! that the limit holds for the whole server and not per worker.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The server-wide count of clients being served, bounded by `--max-conns`.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    taken: AtomicUsize,
}

impl Slots {
    /// Room for `max` clients at once (at least one).
    pub fn new(max: usize) -> Slots {
        Slots {
            max: max.max(1),
            taken: AtomicUsize::new(0),
        }
    }

    /// Whether a client could be taken now.
    pub fn has_room(&self) -> bool {
        self.taken.load(Ordering::Relaxed) < self.max
    }

    /// Takes a slot if one is free; the caller gives it back with [`Slots::release`].
    pub fn try_take(&self) -> bool {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a slot back.
    pub fn release(&self) {
        let _ = self
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Slots taken now.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn never_more_than_max_even_when_threads_race() {
        let slots = Arc::new(Slots::new(5));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = Arc::clone(&slots);
                std::thread::spawn(move || (0..1000).filter(|_| s.try_take()).count())
            })
            .collect();
        let taken: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(taken, 5);
        assert_eq!(slots.taken(), 5);
        assert!(!slots.has_room());
        slots.release();
        assert!(slots.has_room());
        assert!(slots.try_take());
        assert!(!slots.try_take());
    }

    #[test]
    fn a_release_too_many_does_not_wrap() {
        let slots = Slots::new(1);
        slots.release();
        assert_eq!(slots.taken(), 0);
        assert!(slots.try_take());
    }
}
