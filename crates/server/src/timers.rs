//! The timer heap of the event-driven models: each connection's deadline, earliest first,
//! keyed by its slot and generation. An entry made stale by progress (or by the
//! connection's end) is found out when it comes up, and the stale ones are pruned once
//! they outnumber the live ones by far, so that the heap never grows past a small
//! multiple of the connections it serves.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// An entry: when, and whose (slot, generation).
type Entry = (Instant, usize, u32);

/// The connections' deadlines: earliest first.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    /// Queues deadline `at` of the connection of `generation` in `slot`.
    pub(crate) fn push(&mut self, at: Instant, slot: usize, generation: u32) {
        self.heap.push(Reverse((at, slot, generation)));
    }

    /// The earliest deadline queued.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Drops the entries `live` says are stale once they outnumber the live ones by far,
    /// and gives back the memory a burst left: every connection queues its deadline, and
    /// at thousands of connections a second with a 10 s idle limit the stale entries
    /// would otherwise pile up until their time comes (and the heap keep its peak size).
    pub(crate) fn prune(&mut self, live_count: usize, live: impl Fn(Instant, usize, u32) -> bool) {
        if self.heap.len() > 2 * live_count + 1024 {
            self.heap
                .retain(|Reverse((t, slot, generation))| live(*t, *slot, *generation));
        }
        let len = self.heap.len();
        if self.heap.capacity() > 4 * len + 4096 {
            self.heap.shrink_to(2 * len + 1024);
        }
    }

    /// The earliest entry due at `now`, taken out.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        match self.heap.peek() {
            Some(Reverse((t, _, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Forgets every entry (no connection is left).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }

    /// Entries queued, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_timer_heap_gives_due_deadlines_earliest_first() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.push(ms(30), 3, 1);
        timers.push(ms(10), 1, 1);
        timers.push(ms(20), 2, 7);
        assert_eq!(timers.next(), Some(ms(10)));
        assert_eq!(timers.pop_due(ms(5)), None, "nothing due yet");
        assert_eq!(timers.pop_due(ms(25)), Some((ms(10), 1, 1)));
        assert_eq!(timers.pop_due(ms(25)), Some((ms(20), 2, 7)));
        assert_eq!(timers.pop_due(ms(25)), None);
        assert_eq!(timers.next(), Some(ms(30)));
        timers.clear();
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn stale_entries_are_pruned_and_the_memory_of_a_burst_given_back() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        timers.push(ms(30), 3, 1);
        for slot in 0..10_000 {
            timers.push(ms(40), slot, 2);
        }
        let cap = timers.heap.capacity();
        timers.prune(1, |_, slot, _| slot == 3);
        assert_eq!(timers.len(), 2, "the live entries stay: slot 3's two");
        assert!(timers.heap.capacity() < cap / 4, "shrunk");
        assert_eq!(timers.next(), Some(ms(30)));
        timers.prune(1, |_, _, _| false);
        assert_eq!(timers.len(), 2, "a small heap is left alone");
    }

    #[test]
    fn a_few_stale_entries_are_left_for_their_time() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for slot in 0..100 {
            timers.push(t0, slot, 0);
        }
        timers.prune(50, |_, _, _| false);
        assert_eq!(timers.len(), 100, "pruning costs a pass: only when it pays");
    }
}
