//! The thread-per-client model: the accepting thread hands each client to a new thread,
//! with at most `max_conns` at once; further clients wait in the listen backlog.

use std::cell::Cell;
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use hello_proto::Error;

use crate::iterative::accept_loop;
use crate::{Config, Stop, exchange, report};

/// Stack of a client thread. An exchange needs its 8 KiB read buffer and little else, so
/// a small stack keeps memory per client low.
pub const STACK_SIZE: usize = 128 * 1024;

/// Counts busy client threads; the accepting thread waits here when all are busy.
#[derive(Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    /// Waits for a free slot (false: stopped first).
    fn acquire(&self, max: usize, stop: &Stop) -> bool {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy >= max {
            if stop.is_stopped() {
                return false;
            }
            // Bounded wait: a stop is noticed within this interval even if its
            // notification raced past the check above.
            busy = self
                .freed
                .wait_timeout(busy, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *busy += 1;
        true
    }

    fn release(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        *busy = busy.saturating_sub(1);
        self.freed.notify_all();
    }

    /// Waits until no client thread is busy or `deadline` passes.
    fn drain(&self, deadline: Instant) {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy > 0 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            busy = self
                .freed
                .wait_timeout(busy, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Releases a slot when the client thread ends, however it ends.
struct SlotGuard(Arc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Serves each client on its own thread until `stop`, then waits up to `config.grace`
/// for the client threads to finish.
pub fn run(listener: TcpListener, config: Arc<Config>, stop: &Stop) -> Result<(), Error> {
    let slots = Arc::new(Slots::default());
    let max = config.max_conns.max(1);
    // A slot is taken before `accept()`, so that clients beyond `max_conns` stay in the
    // backlog; if `accept()` fails, the slot stays reserved for the next attempt.
    let reserved = Cell::new(false);
    let result = accept_loop(
        listener,
        &config,
        stop,
        || {
            reserved.get() || {
                let got = slots.acquire(max, stop);
                reserved.set(got);
                got
            }
        },
        |stream, peer| {
            reserved.set(false);
            let guard = SlotGuard(Arc::clone(&slots));
            let config = Arc::clone(&config);
            let spawned = thread::Builder::new()
                .name("client".into())
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let _guard = guard;
                    if let Err(e) =
                        exchange::serve(stream, peer, &config.service, config.idle_timeout, &config.tracer)
                    {
                        report(&e);
                    }
                });
            if let Err(e) = spawned {
                // The closure, with the stream and the guard, was dropped: the client is
                // closed and its slot released.
                report(&Error::new(hello_proto::Step::Accept, peer, e));
            }
        },
    );
    if reserved.get() {
        slots.release();
    }
    slots.drain(Instant::now() + config.grace);
    result
}
