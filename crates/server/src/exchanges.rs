//! The exchanges an event-driven model (epoll, select, io_uring) is serving, and what
//! every one of them needs whatever the model waits with: a slot and a generation, the
//! timer heap on their cores' deadlines, and the stop's grace — given to every exchange
//! in flight when the stop comes, and to every one taken from the queue after it. A model
//! keeps its own state beside each exchange (`T`: what it waits for, its calls in the
//! ring).

use std::net::SocketAddr;
use std::time::Instant;

use hello_proto::sys::Stream;
use slab::Slab;

use crate::budget::Budget;
use crate::drive::{Exchange, Wait};
use crate::timers::Timers;
use crate::{Config, Stop};

/// Generations wrap at 24 bits: a slot would have to be reused 16 million times
/// while a late event of its first exchange is still to come to be mistaken (the io_uring
/// model's keys carry 24 bits of it).
pub(crate) const GENERATION_MASK: u32 = 0xFF_FFFF;

/// An exchange in its slot: the exchange, its generation, its timer entry and the
/// model's state.
pub(crate) struct Entry<'c, T> {
    pub(crate) exchange: Exchange<'c>,
    /// Tells this exchange from a later one in the same slot.
    pub(crate) generation: u32,
    /// The deadline of its entry in the timer heap, if it has one.
    queued: Option<Instant>,
    /// What the model keeps of it.
    pub(crate) state: T,
}

/// The exchanges being served, their deadlines, and the stop's grace.
pub(crate) struct Exchanges<'c, T> {
    config: &'c Config,
    budget: &'c Budget,
    slab: Slab<Entry<'c, T>>,
    timers: Timers,
    next_generation: u32,
    /// When the stop's grace ends, once stopping.
    grace_end: Option<Instant>,
}

impl<'c, T> Exchanges<'c, T> {
    /// No exchange yet; each will be served as `config` says, its memory counted in `budget`.
    pub(crate) fn new(config: &'c Config, budget: &'c Budget) -> Self {
        Exchanges {
            config,
            budget,
            slab: Slab::new(),
            timers: Timers::default(),
            next_generation: 0,
            grace_end: None,
        }
    }

    /// The exchange of a connection just accepted (`peer`: `None` if the accept did not
    /// say), with the stop's grace if stopping. A model drives it as far as it goes at
    /// once, and [`Exchanges::insert`]s it only if it has to wait.
    pub(crate) fn begin(&self, stream: Stream, peer: Option<SocketAddr>) -> Exchange<'c> {
        let mut exchange = Exchange::with_peer(self.config, self.budget, stream, peer);
        if let Some(grace_end) = self.grace_end {
            exchange.core_mut().on_stop(grace_end);
        }
        exchange
    }

    /// Takes `exchange` in, under a new generation, its deadline queued; returns its slot.
    pub(crate) fn insert(&mut self, exchange: Exchange<'c>, state: T) -> usize {
        self.next_generation = self.next_generation.wrapping_add(1) & GENERATION_MASK;
        let slot = self.slab.insert(Entry {
            exchange,
            generation: self.next_generation,
            queued: None,
            state,
        });
        self.schedule(slot);
        slot
    }

    /// The slot the next [`Exchanges::insert`] will use.
    pub(crate) fn vacant_slot(&self) -> usize {
        self.slab.vacant_key()
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&Entry<'c, T>> {
        self.slab.get(slot)
    }

    pub(crate) fn get_mut(&mut self, slot: usize) -> Option<&mut Entry<'c, T>> {
        self.slab.get_mut(slot)
    }

    /// The exchange in `slot`, if it is of `generation`.
    pub(crate) fn of_generation(&mut self, slot: usize, generation: u32) -> Option<&mut Entry<'c, T>> {
        self.slab.get_mut(slot).filter(|c| c.generation == generation)
    }

    /// Takes the exchange out (it is over); its timer entry goes stale.
    pub(crate) fn remove(&mut self, slot: usize) -> Option<Entry<'c, T>> {
        let entry = self.slab.try_remove(slot);
        if self.slab.is_empty() {
            self.timers.clear();
        }
        entry
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Entry<'c, T>)> {
        self.slab.iter()
    }

    /// Queues the exchange's deadline if it is earlier than its queued one (a later one is
    /// found out when the earlier entry comes up).
    pub(crate) fn schedule(&mut self, slot: usize) {
        let Some(entry) = self.slab.get_mut(slot) else {
            return;
        };
        match entry.exchange.core().deadline() {
            Some(deadline) if entry.queued.is_none_or(|q| deadline < q) => {
                entry.queued = Some(deadline);
                self.timers.push(deadline, slot, entry.generation);
            }
            _ => {}
        }
    }

    /// The earliest deadline queued: how long the model may wait.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next exchange whose deadline has passed at `now`; those whose deadline moved on
    /// are queued again, stale entries skipped (and pruned when they pile up).
    pub(crate) fn next_due(&mut self, now: Instant) -> Option<usize> {
        let slab = &self.slab;
        self.timers.prune(slab.len(), |t, slot, generation| {
            slab.get(slot)
                .is_some_and(|c| c.generation == generation && c.queued == Some(t))
        });
        while let Some((t, slot, generation)) = self.timers.pop_due(now) {
            let Some(entry) = self.slab.get_mut(slot) else {
                continue;
            };
            if entry.generation != generation || entry.queued != Some(t) {
                continue;
            }
            entry.queued = None;
            if entry.exchange.core().deadline().is_some_and(|d| d <= now) {
                return Some(slot);
            }
            self.schedule(slot);
        }
        None
    }

    /// A stop: every exchange, in flight or taken later, ends by the grace's end.
    pub(crate) fn stop(&mut self, stop: &Stop) {
        let Some(grace_end) = stop.grace_end(self.config.grace) else {
            return;
        };
        self.grace_end = Some(grace_end);
        let slots: Vec<usize> = self.slab.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            if let Some(entry) = self.slab.get_mut(slot) {
                entry.exchange.core_mut().on_stop(grace_end);
            }
            self.schedule(slot);
        }
    }

    /// Whether a stop has given the exchanges its grace.
    pub(crate) fn stopping(&self) -> bool {
        self.grace_end.is_some()
    }
}

impl<'c> Exchanges<'c, Wait> {
    /// Drives the exchange in `slot` as far as its socket allows (the readiness models):
    /// either it waits again, for what its core now asks, with its deadline queued, or it
    /// is over and is taken out and returned, for the model to count it and free its
    /// slot.
    pub(crate) fn advance(&mut self, slot: usize, buf: &mut [u8]) -> Option<Entry<'c, Wait>> {
        let entry = self.slab.get_mut(slot)?;
        match entry.exchange.advance(buf) {
            Some(waits_for) => {
                entry.state = waits_for;
                self.schedule(slot);
                None
            }
            None => self.remove(slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hello_proto::conn::Limits;
    use hello_proto::sys::Tracer;
    use hello_proto::wire::Service;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    fn stream() -> (Stream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = hello_proto::sys::accept(&l, true, &Tracer::off()).unwrap();
        (s, c)
    }

    #[test]
    fn a_deadline_comes_due_once_and_a_stop_reaches_every_exchange() {
        let mut config = Config::new(Service::Echo { max_request: 64 });
        config.limits = Limits::with_idle(Duration::from_secs(10));
        config.grace = Duration::from_millis(1);
        let budget = Budget::new(1 << 20);
        let mut exchanges: Exchanges<'_, ()> = Exchanges::new(&config, &budget);
        let (a, _ca) = stream();
        let (b, _cb) = stream();
        let sa = exchanges.insert(exchanges.begin(a, None), ());
        let sb = exchanges.insert(exchanges.begin(b, None), ());
        assert_ne!(
            exchanges.get(sa).unwrap().generation,
            exchanges.get(sb).unwrap().generation
        );
        let now = Instant::now();
        assert_eq!(
            exchanges.next_due(now),
            None,
            "nothing due before the idle timeout"
        );
        // A stop brings every deadline to the grace's end, the one queued already too.
        let stop = Stop::new();
        exchanges.stop(&stop);
        assert!(!exchanges.stopping(), "not stopped yet");
        stop.stop();
        exchanges.stop(&stop);
        let now = Instant::now();
        assert!(exchanges.stopping());
        let later = now + Duration::from_millis(2);
        let mut due = vec![
            exchanges.next_due(later).unwrap(),
            exchanges.next_due(later).unwrap(),
        ];
        due.sort_unstable();
        assert_eq!(due, [sa, sb]);
        assert_eq!(exchanges.next_due(later), None, "each once");
        // An exchange taken after the stop gets the same end.
        let (c, _cc) = stream();
        let exchange = exchanges.begin(c, None);
        assert!(
            exchange
                .core()
                .deadline()
                .is_some_and(|d| d <= now + Duration::from_millis(1))
        );
        // The last one out leaves no timer behind.
        exchanges.remove(sa);
        exchanges.remove(sb);
        assert!(exchanges.is_empty());
        assert_eq!(exchanges.next_deadline(), None);
    }
}
