//! The thread-per-client model: each client is served start to end by a thread of its
//! own, with blocking calls, at most `max_conns` at once; further clients wait in the
//! listen backlog. A thread that has finished its client waits [`KEEP_IDLE`] for the next
//! one before it exits, so a busy server does not create and destroy a thread per client
//! (measured: that cost about 95 µs of CPU per client, mostly the `munmap()` of the
//! thread's stacks and the TLB shootdown it sends to the other CPU).

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hello_proto::sys::{self, Stream};
use hello_proto::{Error, Step};

use crate::accept::Acceptor;
use crate::blocking::{self, Env, InFlight};
use crate::budget::Budget;
use crate::{Config, Stop, Summary, report};

/// Stack of a client thread. An exchange needs its 8 KiB read buffer and little else, so
/// a small stack keeps memory (and address space) per client low: 1000 client threads
/// fit in about 200 MiB of address space, arenas included.
pub const STACK_SIZE: usize = 128 * 1024;

/// How long a thread that has served its client waits for another before it exits.
pub const KEEP_IDLE: Duration = Duration::from_secs(5);

/// How long the accepting thread waits, after the grace, for the threads the stop reset.
const AFTER_GRACE: Duration = Duration::from_secs(1);

/// A client's connection, accepted and not yet served: its socket and its address.
type Accepted = (Stream, SocketAddr);

#[derive(Default)]
struct State {
    /// Clients being served, plus the slot reserved for the next `accept()`.
    busy: usize,
    /// Threads waiting for a client, not counting those a client was already handed to.
    idle: usize,
    /// Clients handed to waiting threads and not yet picked up.
    handed: VecDeque<Accepted>,
    /// Set on stop: waiting threads exit.
    stopping: bool,
}

/// The client threads: counts busy ones (the accepting thread waits when all
/// `max_conns` are busy) and hands clients to the ones waiting for work.
#[derive(Default)]
struct Pool {
    state: Mutex<State>,
    /// Signalled when a client is handed over, and on stop.
    work: Condvar,
    /// Signalled when a busy thread finishes its client.
    freed: Condvar,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free slot and reserves it; false once a stop's `grace` is over (until
    /// then, the clients still queued at a stop wait for slots as before).
    fn acquire(&self, max: usize, stop: &Stop, grace: Duration) -> bool {
        let mut s = self.lock();
        while s.busy >= max {
            if stop.grace_end(grace).is_some_and(|end| Instant::now() >= end) {
                return false;
            }
            // Bounded wait: a stop is noticed within this interval even if its
            // notification raced past the check above.
            s = self
                .freed
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        s.busy += 1;
        true
    }

    /// Gives a client (whose slot is reserved) to a waiting thread, or back to the
    /// caller when no thread waits.
    fn hand_over(&self, accepted: Accepted) -> Option<Accepted> {
        let mut s = self.lock();
        if s.idle == 0 {
            return Some(accepted);
        }
        s.idle -= 1;
        s.handed.push_back(accepted);
        drop(s);
        self.work.notify_one();
        None
    }

    /// Releases a slot without waiting for work (an unused reservation, a thread that
    /// could not start or did not finish normally).
    fn release(&self) {
        let mut s = self.lock();
        s.busy = s.busy.saturating_sub(1);
        drop(s);
        self.freed.notify_all();
    }

    /// A thread finished its client: releases the slot and waits up to [`KEEP_IDLE`] for
    /// the next client (`None`: none came, or stopping; the thread exits).
    fn next(&self) -> Option<Accepted> {
        let mut s = self.lock();
        s.busy = s.busy.saturating_sub(1);
        self.freed.notify_all();
        if s.stopping {
            return None;
        }
        s.idle += 1;
        let deadline = Instant::now() + KEEP_IDLE;
        loop {
            // A client handed over is taken even when stopping: its slot is counted.
            if let Some(accepted) = s.handed.pop_front() {
                return Some(accepted);
            }
            let now = Instant::now();
            if s.stopping || now >= deadline {
                s.idle -= 1;
                return None;
            }
            s = self
                .work
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Tells waiting threads to exit.
    fn stop(&self) {
        self.lock().stopping = true;
        self.work.notify_all();
    }

    /// Waits until no client is being served. After a stop the wait is bounded: the
    /// grace, then [`AFTER_GRACE`] for the threads whose exchanges it reset.
    fn wait_idle(&self, stop: &Stop, grace: Duration) {
        let mut s = self.lock();
        while s.busy > 0 {
            let bound = stop.grace_end(grace).map(|end| end + AFTER_GRACE);
            let now = Instant::now();
            if bound.is_some_and(|b| now >= b) {
                return;
            }
            // Bounded wait: a stop that comes meanwhile is noticed within this interval.
            let wait = bound.map_or(Duration::from_millis(100), |b| {
                (b - now).min(Duration::from_millis(100))
            });
            s = self
                .freed
                .wait_timeout(s, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Releases a client's slot if its thread never gets to [`Pool::next`]: the thread could
/// not be started, or the exchange panicked.
struct Slot {
    pool: Arc<Pool>,
    held: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.held {
            self.pool.release();
        }
    }
}

/// What a client thread needs besides its client.
struct Shared {
    config: Arc<Config>,
    budget: Budget,
    stop: Stop,
    in_flight: Arc<InFlight>,
    exchanges: AtomicU64,
    failed: AtomicU64,
    /// Accepted threads started so far: each is numbered in the trace.
    started: AtomicU64,
}

/// Serves `accepted`, then each client handed over while it waits, until none comes; the
/// thread is number `number` in the trace.
fn client_thread(mut slot: Slot, shared: &Shared, mut accepted: Accepted, number: u64) {
    loop {
        let (stream, peer) = accepted;
        let env = Env {
            config: &shared.config,
            budget: &shared.budget,
            stop: &shared.stop,
            in_flight: &shared.in_flight,
        };
        let failed = blocking::serve(stream, peer, env);
        shared.exchanges.fetch_add(1, Ordering::Relaxed);
        shared.failed.fetch_add(u64::from(failed), Ordering::Relaxed);
        slot.held = false;
        match slot.pool.next() {
            Some(next) => {
                slot.held = true;
                sys::process::trace_handed_over(&shared.config.tracer, next.0.fd(), number);
                accepted = next;
            }
            None => return,
        }
    }
}

/// Serves each client on its own thread until `stop` (or, with `--once`, one client),
/// then waits for the clients in flight: for at most the grace after a stop, when the
/// exchanges still unfinished are reset.
pub fn run(listener: TcpListener, config: Arc<Config>, stop: &Stop) -> Result<Summary, Error> {
    let mut acceptor = Acceptor::new(listener, &config, stop, false)?;
    let pool = Arc::new(Pool::default());
    let shared = Arc::new(Shared {
        config: Arc::clone(&config),
        budget: Budget::new(config.max_buffered),
        stop: stop.clone(),
        in_flight: Arc::new(InFlight::default()),
        exchanges: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        started: AtomicU64::new(0),
    });
    let _armed = blocking::reset_after_grace(stop, &shared.in_flight, &config);
    let result = accept_clients(&mut acceptor, &pool, &shared);
    drop(acceptor);
    pool.stop();
    pool.wait_idle(stop, config.grace);
    result?;
    Ok(Summary {
        exchanges: shared.exchanges.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
    })
}

/// The accepting thread: a slot is taken before `accept()`, so that clients beyond
/// `max_conns` stay in the backlog; each client goes to a waiting thread or a new one.
fn accept_clients(acceptor: &mut Acceptor, pool: &Arc<Pool>, shared: &Arc<Shared>) -> Result<(), Error> {
    let max = shared.config.max_conns.max(1);
    loop {
        if !pool.acquire(max, &shared.stop, shared.config.grace) {
            return Ok(());
        }
        let Some((stream, peer)) = acceptor
            .next_blocking(&shared.stop)
            .inspect_err(|_| pool.release())?
        else {
            pool.release();
            return Ok(());
        };
        let Some(accepted) = pool.hand_over((stream, peer)) else {
            continue;
        };
        let slot = Slot {
            pool: Arc::clone(pool),
            held: true,
        };
        let thread_shared = Arc::clone(shared);
        let number = shared.started.fetch_add(1, Ordering::Relaxed) + 1;
        let fd = accepted.0.fd();
        let spawned =
            sys::process::spawn_client_thread(STACK_SIZE, &shared.config.tracer, fd, number, move || {
                client_thread(slot, &thread_shared, accepted, number)
            });
        if let Err(e) = spawned {
            // No thread (the process's thread or address-space limit): the client is
            // refused, in one line. The closure, with the client and its slot, was
            // dropped: the client is closed and the slot released.
            let err = Error::new(Step::Spawn, peer, e);
            crate::metrics::failed_before_serving(&err);
            report(&err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn accepted() -> (Accepted, std::net::TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let got = hello_proto::sys::accept(&l, false, &hello_proto::sys::Tracer::off()).unwrap();
        (got, c)
    }

    #[test]
    fn a_waiting_thread_gets_the_client_and_the_slot_count_holds() {
        let pool = Arc::new(Pool::default());
        let stop = Stop::new();
        // Nobody waits: the client comes back to be given a new thread.
        assert!(pool.acquire(2, &stop, Duration::ZERO));
        let (first, _c1) = accepted();
        let first = pool.hand_over(first).unwrap();
        // A thread finishes `first` and waits; the next client is handed to it.
        drop(first);
        let p = Arc::clone(&pool);
        let waiter = thread::spawn(move || p.next().map(|(_, peer)| peer));
        assert!(wait_for(|| pool.lock().idle == 1));
        assert!(pool.acquire(2, &stop, Duration::ZERO));
        let (second, _c2) = accepted();
        let peer = second.1;
        assert!(pool.hand_over(second).is_none());
        assert_eq!(waiter.join().unwrap(), Some(peer));
        let s = pool.lock();
        assert_eq!((s.busy, s.idle, s.handed.len()), (1, 0, 0));
    }

    #[test]
    fn stop_sends_waiting_threads_away() {
        let pool = Arc::new(Pool::default());
        pool.lock().busy = 1;
        let p = Arc::clone(&pool);
        let waiter = thread::spawn(move || p.next().is_none());
        assert!(wait_for(|| pool.lock().idle == 1));
        pool.stop();
        assert!(waiter.join().unwrap());
        let s = pool.lock();
        assert_eq!((s.busy, s.idle), (0, 0));
    }

    #[test]
    fn an_unfinished_exchange_releases_its_slot() {
        let pool = Arc::new(Pool::default());
        assert!(pool.acquire(1, &Stop::new(), Duration::ZERO));
        drop(Slot {
            pool: Arc::clone(&pool),
            held: true,
        });
        assert_eq!(pool.lock().busy, 0);
    }

    fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if cond() {
                return true;
            }
            thread::sleep(Duration::from_millis(1));
        }
        false
    }
}
