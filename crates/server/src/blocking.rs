//! The blocking driver: serves one connection to its end with blocking calls, as the
//! textbook's servers do, for the iterative, fork (in each child) and thread-per-client
//! models.
//!
//! Blocking calls wait in the kernel, so deadlines are kept two ways. Each `read()` and
//! `send()` is bounded by a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`) set from the
//! core's deadline, only when the one set no longer fits; a call that gives up returns
//! EAGAIN and the core decides. A stop cannot shorten a call already waiting, so the
//! connections in flight are registered in [`InFlight`], and when the grace runs out a
//! thread resets what is left from outside (`connect(AF_UNSPEC)`), which sends RST and
//! wakes the thread blocked on it.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use hello_proto::conn::{Action, Input};
use hello_proto::sys::{self, Stream, Tracer};
use slab::Slab;

use crate::budget::Budget;
use crate::drive::{Called, Exchange};
use crate::stop::WakeGuard;
use crate::{Config, Stop};

/// A send this small always fits an idle socket's send buffer, so it cannot block and
/// needs no send timeout (which would cost a `setsockopt()` per connection).
const NEVER_BLOCKS: usize = 4096;

/// A socket timeout within this much of what the deadline needs is left as it is: the
/// deadline is kept to this precision, and a steady client costs no `setsockopt()` per
/// read.
const SLACK: Duration = Duration::from_millis(10);

/// What serving a connection with blocking calls needs besides the connection.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub config: &'a Config,
    pub budget: &'a Budget,
    pub stop: &'a Stop,
    pub in_flight: &'a InFlight,
}

/// Serves `stream` to the end of its exchange and closes it. Returns whether the exchange
/// failed (it was then reported).
pub(crate) fn serve(stream: Stream, peer: SocketAddr, env: Env<'_>) -> bool {
    let fd = stream.fd();
    let mut exchange = Exchange::new(env.config, env.budget, stream, peer);
    let Some(ticket) = env.in_flight.enter(fd) else {
        // The grace is already over: end it unfinished.
        return exchange.end();
    };
    let mut buf = [0u8; 8192];
    let mut timeouts = Timeouts::default();
    loop {
        timeouts.bound(&mut exchange);
        let called = exchange.call(&mut buf);
        // A stop may have come while the call waited: the core learns of it before the
        // call's result, which counts for nothing once the grace is over (the call may
        // have been woken by the reset that ends the grace).
        if let Some(grace_end) = env.stop.grace_end(env.config.grace) {
            exchange.core_mut().on_stop(grace_end);
        }
        match called {
            Called::Returned(returned) => exchange.feed(returned, &buf, Instant::now()),
            // The socket timeout ran out, or a signal ended the wait; the core decides
            // whether its deadline has passed — after what arrived meanwhile is taken (a
            // stall of the server is not the client's fault: see `Exchange::expire`).
            Called::Wait(_) => {
                let now = Instant::now();
                if exchange.core().deadline().is_some_and(|d| d <= now) {
                    // The deadline has passed: the socket timeout is now at its
                    // shortest, and the call cannot wait.
                    timeouts.bound(&mut exchange);
                    exchange.take_what_arrived(&mut buf, now);
                }
                exchange.core_mut().on_timeout(now);
            }
            Called::End => break,
        }
    }
    env.in_flight.leave(ticket);
    exchange.end()
}

/// The socket timeouts set on one connection (`None`: none, a call may wait for ever).
#[derive(Default)]
struct Timeouts {
    read: Option<Duration>,
    write: Option<Duration>,
}

impl Timeouts {
    /// Before a call that may block: bounds it by the core's deadline. A timeout that
    /// cannot be set fails the call it was for.
    fn bound(&mut self, exchange: &mut Exchange<'_>) {
        let Some(deadline) = exchange.core().deadline() else {
            return;
        };
        let stream = exchange.stream();
        let set = match exchange.core().poll() {
            Action::Read => fit(&mut self.read, deadline, |t| stream.set_read_timeout(Some(t))),
            Action::Send { bytes, .. } if self.write.is_none() && bytes.len() <= NEVER_BLOCKS => Ok(()),
            Action::Send { .. } => fit(&mut self.write, deadline, |t| stream.set_write_timeout(Some(t))),
            _ => Ok(()),
        };
        if let Err(e) = set {
            exchange.core_mut().handle(Input::Failed(e), Instant::now());
        }
    }
}

/// Sets `current` to what is left until `deadline`, unless it is within [`SLACK`] of it.
fn fit(
    current: &mut Option<Duration>,
    deadline: Instant,
    set: impl FnOnce(Duration) -> std::io::Result<()>,
) -> std::io::Result<()> {
    // A zero timeout means "none" to the kernel: a deadline that has passed gets the
    // shortest one instead, and the call returns at once.
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_micros(1));
    if current.is_some_and(|t| t.abs_diff(left) <= SLACK) {
        return Ok(());
    }
    set(left)?;
    *current = Some(left);
    Ok(())
}

/// The connections being served with blocking calls, so that they can be reset from
/// outside when the stop's grace runs out.
#[derive(Default)]
pub(crate) struct InFlight {
    registry: Mutex<Registry>,
    emptied: Condvar,
}

#[derive(Default)]
struct Registry {
    fds: Slab<RawFd>,
    /// The grace ran out: nothing new enters.
    reset: bool,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection starts being served; `None` once the grace has run out.
    fn enter(&self, fd: RawFd) -> Option<usize> {
        let mut r = self.lock();
        (!r.reset).then(|| r.fds.insert(fd))
    }

    /// The connection is about to be closed: from now on no reset may reach its
    /// descriptor, which the next `accept()` may reuse.
    fn leave(&self, ticket: usize) {
        let mut r = self.lock();
        r.fds.try_remove(ticket);
        if r.fds.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// Resets every connection still in flight, waking the threads blocked on them.
    fn reset_all(&self, tracer: &Tracer) {
        let mut r = self.lock();
        r.reset = true;
        for (_, &fd) in r.fds.iter() {
            sys::interrupt(fd, tracer);
        }
    }

    /// Waits until no connection is in flight, or `until` passes; whether none is.
    pub(crate) fn wait_empty(&self, until: Instant) -> bool {
        let mut r = self.lock();
        while !r.fds.is_empty() {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            r = self
                .emptied
                .wait_timeout(r, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Arms the stop: when it comes, a thread gives the exchanges in flight `config.grace`,
/// then resets whatever is left. (No thread can be started: reset at once.)
pub(crate) fn reset_after_grace(stop: &Stop, in_flight: &Arc<InFlight>, config: &Config) -> WakeGuard {
    let armed = AtomicBool::new(false);
    let in_flight = Arc::clone(in_flight);
    let grace = config.grace;
    let tracer = config.tracer.clone();
    stop.on_stop(move || {
        if armed.swap(true, Ordering::SeqCst) {
            return;
        }
        let until = Instant::now() + grace;
        let (watched, t) = (Arc::clone(&in_flight), tracer.clone());
        let timer = thread::Builder::new().name("grace".into()).spawn(move || {
            if !watched.wait_empty(until) {
                watched.reset_all(&t);
            }
        });
        if timer.is_err() {
            in_flight.reset_all(&tracer);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hello_proto::wire::Service;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (Stream, SocketAddr, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = sys::accept(&l, false, &Tracer::off()).unwrap();
        (s, peer, c)
    }

    #[test]
    fn a_hello_exchange_sends_the_greeting_and_ends_cleanly() {
        let (s, peer, mut c) = pair();
        let config = Config::new(Service::hello("Hi"));
        let env = Env {
            config: &config,
            budget: &Budget::new(0),
            stop: &Stop::new(),
            in_flight: &InFlight::default(),
        };
        assert!(!serve(s, peer, env));
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"Hi\0");
    }

    #[test]
    fn the_grace_resets_an_exchange_blocked_in_read() {
        let (s, peer, mut c) = pair();
        let mut config = Config::new(Service::Echo { max_request: 64 });
        config.grace = Duration::from_millis(100);
        let config = Arc::new(config);
        let stop = Stop::new();
        let in_flight = Arc::new(InFlight::default());
        let _armed = reset_after_grace(&stop, &in_flight, &config);
        let server = {
            let (config, stop, in_flight) = (Arc::clone(&config), stop.clone(), Arc::clone(&in_flight));
            thread::spawn(move || {
                let env = Env {
                    config: &config,
                    budget: &Budget::new(1 << 20),
                    stop: &stop,
                    in_flight: &in_flight,
                };
                serve(s, peer, env)
            })
        };
        c.write_all(b"unfinished").unwrap();
        let started = Instant::now();
        stop.stop();
        assert!(server.join().unwrap(), "an unfinished exchange is a failure");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let mut got = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let e = c.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "got {got:?}");
        assert!(in_flight.wait_empty(Instant::now()));
    }

    #[test]
    fn socket_timeouts_are_set_only_when_they_no_longer_fit() {
        let mut t = None;
        let mut calls = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..3 {
            fit(&mut t, deadline, |_| {
                calls += 1;
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(calls, 1);
        fit(&mut t, Instant::now() + Duration::from_secs(2), |_| {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 2, "an earlier deadline (a stop) is set");
        assert!(t.is_some_and(|t| t <= Duration::from_secs(2)));
    }
}
