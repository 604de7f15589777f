//! The select model: the textbook's I/O multiplexing. One thread; each turn it puts the
//! listening socket (while it may take clients) and every client into `select()`'s sets —
//! the read set or the write set, as the client's connection core waits — with the
//! nearest deadline as the time limit, then drives whatever is ready.
//!
//! `FD_SETSIZE` is handled the honest way: a set holds descriptors 0..1023 only, so the
//! model takes at most [`MAX_CLIENTS`] clients at once (fewer with `--max-conns`); with
//! the server's own few descriptors every accepted one then fits, and further clients
//! wait in the listen backlog. Should a descriptor not fit after all (the process had
//! other files open), that client is reset with a line and no more are taken until one
//! leaves. This model keeps `select()` on purpose, because it is the textbook's; `poll()`
//! has no such limit, and the event loop (epoll) is the model that scales.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use hello_proto::sys::{FD_SETSIZE, FdSets, Stream, WakePipe};
use hello_proto::{Error, Step};
use slab::Slab;

use crate::accept::{Acceptor, Next};
use crate::budget::Budget;
use crate::drive::{Exchange, Wait};
use crate::{Config, RESERVED_FDS, Stop, Summary, report};

/// The most clients at once: every descriptor a set can hold, but those the server keeps
/// for itself.
pub const MAX_CLIENTS: usize = FD_SETSIZE - RESERVED_FDS as usize;

struct Client<'c> {
    exchange: Exchange<'c>,
    waits_for: Wait,
}

struct Loop<'c> {
    config: &'c Config,
    budget: &'c Budget,
    clients: Slab<Client<'c>>,
    acceptor: Option<Acceptor>,
    /// Clients taken at most now (lowered if a descriptor did not fit a set).
    slots: usize,
    buf: Vec<u8>,
    grace_end: Option<Instant>,
    /// Out of descriptors: the listening socket stays out of the sets until then.
    backoff_until: Option<Instant>,
    summary: Summary,
}

/// Serves with `select()` until `stop` (or, with `--once`, one client), then finishes the
/// exchanges within the grace.
pub fn run(listener: TcpListener, config: &Config, stop: &Stop) -> Result<Summary, Error> {
    let mut acceptor = Acceptor::new(listener, config, stop, true)?;
    acceptor.set_blocking(false)?;
    let local = acceptor.local();
    let wake = WakePipe::new().map_err(|e| Error::new(Step::Socket, local, e))?;
    let _wake = stop.on_stop(wake.waker());
    let budget = Budget::new(config.max_buffered);
    let mut lp = Loop {
        config,
        budget: &budget,
        clients: Slab::new(),
        acceptor: Some(acceptor),
        slots: config.max_conns.clamp(1, MAX_CLIENTS),
        buf: vec![0u8; 16 * 1024],
        grace_end: None,
        backoff_until: None,
        summary: Summary::default(),
    };
    let mut sets = FdSets::new();
    loop {
        if stop.is_stopped() && lp.grace_end.is_none() {
            lp.begin_stop(stop);
        }
        if lp.grace_end.is_some() {
            // Stopping: the queue is taken to its end, readiness or not (accept.rs).
            lp.accept(stop)?;
        }
        if lp.acceptor.is_none() && lp.clients.is_empty() {
            return Ok(lp.summary);
        }
        let listening = lp.fill(&mut sets, wake.fd());
        sets.select(lp.next_deadline(), &config.tracer)
            .map_err(|e| Error::new(Step::Select, local, e))?;
        if sets.readable(wake.fd()) {
            wake.drain();
        }
        if listening && lp.acceptor.as_ref().is_some_and(|a| sets.readable(a.fd())) {
            lp.accept(stop)?;
        }
        let ready: Vec<usize> = lp
            .clients
            .iter()
            .filter(|(_, c)| {
                let fd = c.exchange.stream().fd();
                sets.readable(fd) || sets.writable(fd)
            })
            .map(|(key, _)| key)
            .collect();
        for key in ready {
            lp.drive(key);
        }
        lp.expire(Instant::now());
    }
}

impl<'c> Loop<'c> {
    /// Puts the wake pipe, the listening socket (while clients may be taken) and every
    /// client into the sets; whether the listening socket is in.
    fn fill(&self, sets: &mut FdSets, wake: i32) -> bool {
        sets.clear();
        sets.watch_read(wake);
        let backing_off = self.backoff_until.is_some_and(|t| Instant::now() < t);
        let listening = match &self.acceptor {
            Some(acceptor) if self.clients.len() < self.slots && !backing_off => {
                sets.watch_read(acceptor.fd())
            }
            _ => false,
        };
        for (_, c) in &self.clients {
            let fd = c.exchange.stream().fd();
            match c.waits_for {
                Wait::Readable => sets.watch_read(fd),
                Wait::Writable => sets.watch_write(fd),
            };
        }
        listening
    }

    /// How long `select()` may sleep: until the nearest client deadline or the end of a
    /// back-off (`None`: no bound; a stop wakes it through the wake pipe).
    fn next_deadline(&self) -> Option<Duration> {
        let now = Instant::now();
        self.clients
            .iter()
            .filter_map(|(_, c)| c.exchange.core().deadline())
            .chain(self.backoff_until)
            .min()
            .map(|d| d.saturating_duration_since(now))
    }

    /// Takes the clients that are queued, while there is room.
    fn accept(&mut self, stop: &Stop) -> Result<(), Error> {
        while self.clients.len() < self.slots {
            let Some(acceptor) = &mut self.acceptor else {
                return Ok(());
            };
            match acceptor.next(stop)? {
                Next::Client(stream, peer) => self.take(stream, peer),
                Next::Empty => return Ok(()),
                // Out of descriptors: the listening socket rests a while.
                Next::Backoff => {
                    self.backoff_until = Some(Instant::now() + crate::accept::BACKOFF);
                    return Ok(());
                }
                Next::Closed => self.acceptor = None,
            }
        }
        Ok(())
    }

    /// A new client: driven as far as it goes at once, kept only if it must wait.
    fn take(&mut self, stream: Stream, peer: SocketAddr) {
        if usize::try_from(stream.fd()).is_ok_and(|fd| fd >= FD_SETSIZE) {
            report(&Error::new(
                Step::Select,
                peer,
                std::io::Error::other(format!("descriptor {} does not fit FD_SETSIZE", stream.fd())),
            ));
            let exchange = Exchange::new(self.config, self.budget, stream, peer);
            self.summary.count(exchange.end());
            self.slots = self.clients.len().max(1);
            return;
        }
        let mut exchange = Exchange::new(self.config, self.budget, stream, peer);
        if let Some(end) = self.grace_end {
            exchange.core_mut().on_stop(end);
        }
        match exchange.advance(&mut self.buf) {
            Some(waits_for) => {
                self.clients.insert(Client { exchange, waits_for });
            }
            None => self.summary.count(exchange.end()),
        }
    }

    fn drive(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        match client.exchange.advance(&mut self.buf) {
            Some(waits_for) => client.waits_for = waits_for,
            None => {
                let client = self.clients.remove(key);
                self.summary.count(client.exchange.end());
                self.slots = self.config.max_conns.clamp(1, MAX_CLIENTS);
            }
        }
    }

    /// Hands the clients whose deadline has passed to their core.
    fn expire(&mut self, now: Instant) {
        let due: Vec<usize> = self
            .clients
            .iter()
            .filter(|(_, c)| c.exchange.core().deadline().is_some_and(|d| d <= now))
            .map(|(key, _)| key)
            .collect();
        for key in due {
            if let Some(client) = self.clients.get_mut(key) {
                client.exchange.expire(now);
            }
            self.drive(key);
        }
    }

    /// A stop: the queue is still taken (see accept.rs); every exchange ends by the grace.
    fn begin_stop(&mut self, stop: &Stop) {
        self.grace_end = stop.grace_end(self.config.grace);
        if let Some(end) = self.grace_end {
            for (_, c) in &mut self.clients {
                c.exchange.core_mut().on_stop(end);
            }
        }
    }
}
