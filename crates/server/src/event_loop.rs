//! The event-loop model: one thread, one `epoll` instance. Each client is a
//! connection core driven as far as its socket allows; a client is registered only when
//! it has to be waited for, so a hello client is greeted and closed inside the accept
//! step and never registered.
//!
//! While nothing is registered, the loop blocks in `accept()` itself, as the textbook loop
//! does, instead of in `epoll_wait()`: a client is then served without the `epoll_wait()`
//! wake-up and the `accept()` that returns EAGAIN, which at one client at a time is most
//! of what an event loop costs over the blocking loop. As soon as a client is registered
//! the listener is non-blocking again and `epoll_wait()` drives all.
//!
//! The epoll calls are `hello_proto::sys::epoll`'s, traced like every other call.
//!
//! The exchanges, their deadlines (the timer heap) and the stop's grace are `exchanges`';
//! accepting is `accept`'s slot-aware step. What is left here is how the loop waits.
//!
//! With `--workers N` ([`run_workers`]) there are N such loops, one per thread, each
//! with a listening socket of its own in one `SO_REUSEPORT` set: the kernel spreads the
//! connections over their accept queues, and the workers share nothing but the budget
//! and the count of clients (`--max-conns` holds for the server). A worker takes a slot
//! before each `accept()`; so that no slot is held while it waits, the workers never
//! block in `accept()`, and always wait in `epoll_wait()`.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use hello_proto::sys::Stream;
use hello_proto::sys::epoll::{Epoll, Ready, Wakeup};
use hello_proto::{Error, Step};

use crate::accept::{Acceptor, Taken};
use crate::budget::Budget;
use crate::drive::Wait;
use crate::exchanges::Exchanges;
use crate::slots::Slots;
use crate::stop::WakeGuard;
use crate::{AcceptQueues, Config, Stop, Summary};

const LISTENER: u64 = u64::MAX - 1;
const WAKER: u64 = u64::MAX - 2;
/// Events taken per `epoll_wait()`.
const EVENTS: usize = 1024;
/// Accepts per loop iteration, so that a flood of new clients cannot starve the
/// registered ones.
const ACCEPT_BATCH: usize = 256;
/// How often a worker with no free slot (the others hold them all) looks again.
const ROOM_CHECK: Duration = Duration::from_millis(10);

/// What the workers of one server share.
struct Shared {
    budget: Budget,
    slots: Slots,
    /// Out of descriptors: reported once for all workers.
    starved: Arc<AtomicBool>,
}

impl Shared {
    fn new(config: &Config) -> Shared {
        Shared {
            budget: Budget::new(config.max_buffered),
            slots: Slots::new(config.max_conns),
            starved: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The loop's state.
struct Loop<'c> {
    slots: &'c Slots,
    /// With no client registered, block in `accept()` (one worker only: see the module
    /// docs).
    block_when_idle: bool,
    epoll: Epoll,
    /// Written by the stop to wake `epoll_wait()`.
    wakeup: Wakeup,
    /// The registered clients, each with what readiness it waits for (events of the
    /// other kind need no call).
    exchanges: Exchanges<'c, Wait>,
    buf: Vec<u8>,
    /// `None` once no more clients are taken (a stop, or `--once` served).
    acceptor: Option<Acceptor>,
    /// The listener may have clients queued (it reported readiness and has not said
    /// EAGAIN since).
    accept_ready: bool,
    summary: Summary,
    /// The listening socket's address, for error lines.
    local: SocketAddr,
    /// Keeps the stop's wake-up of this loop registered.
    _wake: WakeGuard,
}

/// Runs the event loop until `stop` (or, with `--once`, one client), then finishes the
/// registered exchanges within `config.grace`, aborting what is left when it runs out.
pub fn run(listener: TcpListener, config: &Config, stop: &Stop) -> Result<Summary, Error> {
    let shared = Shared::new(config);
    Loop::new(listener, config, stop, &shared, true, false)?.run(stop)
}

/// [`run`] with one event loop per listening socket, each on a thread of its own (the
/// first on the calling thread), sharing the budget and `--max-conns`. The listeners are
/// normally one `SO_REUSEPORT` set (`sys::listen_tcp_reuseport`). A worker that fails
/// stops the others; the first failure is returned.
pub fn run_workers(
    mut listeners: Vec<TcpListener>,
    queues: AcceptQueues,
    config: &Config,
    stop: &Stop,
) -> Result<Summary, Error> {
    if listeners.len() == 1 {
        if let Some(listener) = listeners.pop() {
            return run(listener, config, stop);
        }
    }
    let shared = Shared::new(config);
    let configs: Vec<Config> = (1..=listeners.len())
        .map(|n| Config {
            tracer: config.tracer.for_worker(n),
            ..config.clone()
        })
        .collect();
    // Every loop is set up (its epoll instance, its wake-up) before any takes a client,
    // so that a worker that takes clients at once cannot use up the descriptors another
    // still needs to start.
    let loops = listeners
        .into_iter()
        .zip(&configs)
        .map(|(listener, config)| {
            Loop::new(
                listener,
                config,
                stop,
                &shared,
                false,
                queues == AcceptQueues::Shared,
            )
        })
        .collect::<Result<Vec<_>, Error>>()?;
    crate::on_worker_threads(loops, "worker", stop, |lp| lp.run(stop))
}

impl<'c> Loop<'c> {
    /// One event loop on `listener`, set up: its epoll instance watches the listener and
    /// its wake-up, which the stop triggers.
    fn new(
        listener: TcpListener,
        config: &'c Config,
        stop: &Stop,
        shared: &'c Shared,
        block_when_idle: bool,
        shared_queue: bool,
    ) -> Result<Loop<'c>, Error> {
        let mut acceptor = Acceptor::new(listener, config, stop, true)?;
        acceptor.share_starvation(Arc::clone(&shared.starved));
        acceptor.set_blocking(block_when_idle)?;
        let local = acceptor.local();
        let mut epoll =
            Epoll::new(EVENTS, &config.tracer).map_err(|e| Error::new(Step::EpollCreate, local, e))?;
        let wakeup = Wakeup::new(&mut epoll, WAKER).map_err(|e| Error::new(Step::Eventfd, local, e))?;
        let wake = stop.on_stop(wakeup.waker());
        let added = if shared_queue {
            epoll.add_exclusive(acceptor.fd(), LISTENER)
        } else {
            epoll.add(acceptor.fd(), LISTENER, true, false)
        };
        added.map_err(|e| Error::new(Step::EpollCtl, local, e))?;
        let lp = Loop {
            slots: &shared.slots,
            block_when_idle,
            epoll,
            wakeup,
            exchanges: Exchanges::new(config, &shared.budget),
            buf: vec![0u8; 16 * 1024],
            acceptor: Some(acceptor),
            accept_ready: true,
            summary: Summary::default(),
            local,
            _wake: wake,
        };
        Ok(lp)
    }

    /// Serves until a stop has emptied the queue and the last exchange has ended.
    fn run(mut self, stop: &Stop) -> Result<Summary, Error> {
        let lp = &mut self;
        let local = lp.local;
        let mut ready: Vec<Ready> = Vec::with_capacity(EVENTS);
        let mut stopping = false;
        loop {
            if stop.is_stopped() && !stopping {
                stopping = true;
                lp.begin_stop(stop);
            }
            if lp.acceptor.is_none() && lp.exchanges.is_empty() {
                return Ok(lp.summary);
            }
            if lp.block_when_idle && lp.exchanges.is_empty() && lp.acceptor.is_some() {
                lp.accept_blocking(stop)?;
                continue;
            }
            lp.leave_blocking_accept()?;
            lp.accept_batch(stop)?;
            if lp.acceptor.is_none() && lp.exchanges.is_empty() {
                // The stop has just emptied the queue: nothing is left to wait for.
                continue;
            }
            lp.wait(&mut ready, local)?;
            for event in &ready {
                match event.key {
                    LISTENER => lp.accept_ready = true,
                    WAKER => lp.wakeup.clear(),
                    key => lp.on_event(key, event),
                }
            }
            lp.expire(Instant::now());
        }
    }

    /// No client to wait for: block in `accept()` like the textbook loop.
    fn accept_blocking(&mut self, stop: &Stop) -> Result<(), Error> {
        let Some(acceptor) = &mut self.acceptor else {
            return Ok(());
        };
        acceptor.set_blocking(true)?;
        // The only worker: a slot is always free with no client registered.
        if !self.slots.try_take() {
            return Ok(());
        }
        match acceptor.next_blocking(stop)? {
            Some((stream, peer)) => self.on_accept(stream, peer),
            None => {
                self.slots.release();
                self.close_acceptor();
            }
        }
        Ok(())
    }

    /// A client is registered: the listener goes back to non-blocking, and clients that
    /// queued meanwhile are accepted first.
    fn leave_blocking_accept(&mut self) -> Result<(), Error> {
        if let Some(acceptor) = &mut self.acceptor {
            if acceptor.is_blocking() {
                acceptor.set_blocking(false)?;
                self.accept_ready = true;
            }
        }
        Ok(())
    }

    /// Accepts while the listener may have clients, with the one slot-aware step.
    fn accept_batch(&mut self, stop: &Stop) -> Result<(), Error> {
        for _ in 0..ACCEPT_BATCH {
            if !self.accept_ready {
                break;
            }
            let Some(acceptor) = &mut self.acceptor else {
                break;
            };
            match acceptor.take(self.slots, stop)? {
                Taken::Accepted(stream, peer) => self.on_accept(stream, peer),
                Taken::Empty => self.accept_ready = false,
                Taken::Full | Taken::Resting => break,
                Taken::Closed => self.close_acceptor(),
            }
        }
        Ok(())
    }

    /// Whether a client could be taken at once.
    fn can_accept(&self) -> bool {
        self.accept_ready
            && self.slots.has_room()
            && self
                .acceptor
                .as_ref()
                .is_some_and(|a| a.resting_until().is_none())
    }

    /// Sleeps in `epoll_wait()` until an event, the next deadline or the end of a
    /// back-off; not at all while accepting can go on.
    fn wait(&mut self, ready: &mut Vec<Ready>, local: SocketAddr) -> Result<(), Error> {
        let timeout = if self.can_accept() {
            Some(Duration::ZERO)
        } else {
            let next_timer = self.exchanges.next_deadline();
            let resting = self.acceptor.as_ref().and_then(Acceptor::resting_until);
            // The other workers hold every slot: none of them tells this one when they
            // free one.
            let room_check =
                (self.acceptor.is_some() && !self.slots.has_room()).then(|| Instant::now() + ROOM_CHECK);
            [next_timer, resting, room_check]
                .into_iter()
                .flatten()
                .min()
                .map(|t| t.saturating_duration_since(Instant::now()))
        };
        ready.clear();
        match self.epoll.wait(timeout) {
            Ok(got) => {
                ready.extend_from_slice(got);
                Ok(())
            }
            Err(e) => Err(Error::new(Step::EpollWait, local, e)),
        }
    }

    /// A new client: driven as far as it goes at once (a hello client to its end), and
    /// registered only if it has to wait.
    fn on_accept(&mut self, stream: Stream, peer: SocketAddr) {
        let mut exchange = self.exchanges.begin(stream, Some(peer));
        let Some(waits_for) = exchange.advance(&mut self.buf) else {
            self.summary.count(exchange.end());
            self.slots.release();
            return;
        };
        let key = self.exchanges.vacant_slot();
        let fd = exchange.stream().fd();
        if let Err(e) = self.epoll.add(fd, key as u64, true, true) {
            crate::report(&Error::new(Step::EpollCtl, peer, e));
            // Ended before the core asked: aborted, and counted as failed.
            self.summary.count(exchange.end());
            self.slots.release();
            return;
        }
        self.exchanges.insert(exchange, waits_for);
    }

    fn on_event(&mut self, key: u64, event: &Ready) {
        let Ok(key) = usize::try_from(key) else {
            return;
        };
        let Some(entry) = self.exchanges.get(key) else {
            return;
        };
        let r = event.readiness;
        let relevant = r.error
            || r.hangup
            || match entry.state {
                Wait::Readable => r.readable,
                Wait::Writable => r.writable,
            };
        if relevant {
            self.drive(key);
        }
    }

    /// Drives a registered client as far as its socket allows; closes it when it is over.
    fn drive(&mut self, key: usize) {
        if let Some(entry) = self.exchanges.advance(key, &mut self.buf) {
            // Closing the socket also takes it out of the epoll set.
            self.summary.count(entry.exchange.end());
            self.slots.release();
        }
    }

    /// Hands the clients whose deadline has passed to their core (what arrived for them
    /// is taken first: see `Exchange::expire`).
    fn expire(&mut self, now: Instant) {
        while let Some(key) = self.exchanges.next_due(now) {
            if let Some(entry) = self.exchanges.get_mut(key) {
                entry.exchange.expire(now, &mut self.buf);
            }
            self.drive(key);
        }
    }

    /// A stop: no new clients, those already queued are still taken; every exchange now ends
    /// by the grace's end.
    fn begin_stop(&mut self, stop: &Stop) {
        // The acceptor takes what is queued to its end, then closes (accept.rs).
        self.accept_ready = true;
        self.exchanges.stop(stop);
    }

    /// Takes no more clients: the listening socket leaves the epoll set and is closed.
    fn close_acceptor(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = self.epoll.delete(acceptor.fd());
        }
    }
}
