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

use crate::accept::{Acceptor, Taken};
use crate::budget::Budget;
use crate::drive::Wait;
use crate::exchanges::Exchanges;
use crate::slots::Slots;
use crate::{Config, RESERVED_FDS, Stop, Summary, report};

/// The most clients at once: every descriptor a set can hold, but those the server keeps
/// for itself.
pub const MAX_CLIENTS: usize = FD_SETSIZE - RESERVED_FDS as usize;

struct Loop<'c> {
    /// The clients, each with what readiness it waits for.
    exchanges: Exchanges<'c, Wait>,
    acceptor: Option<Acceptor>,
    /// `--max-conns`, at most [`MAX_CLIENTS`].
    slots: &'c Slots,
    /// A descriptor did not fit a set: no client is taken until one leaves.
    full: bool,
    buf: Vec<u8>,
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
    let slots = Slots::new(config.max_conns.clamp(1, MAX_CLIENTS));
    let mut lp = Loop {
        exchanges: Exchanges::new(config, &budget),
        acceptor: Some(acceptor),
        slots: &slots,
        full: false,
        buf: vec![0u8; 16 * 1024],
        summary: Summary::default(),
    };
    let mut sets = FdSets::new();
    loop {
        if stop.is_stopped() && !lp.exchanges.stopping() {
            lp.exchanges.stop(stop);
        }
        if lp.exchanges.stopping() {
            // Stopping: the queue is taken to its end, readiness or not (accept.rs).
            lp.accept(stop)?;
        }
        if lp.acceptor.is_none() && lp.exchanges.is_empty() {
            return Ok(lp.summary);
        }
        let listening = lp.fill(&mut sets, wake.fd());
        sets.select(lp.next_deadline(), &config.tracer)
            .map_err(|e| Error::new(Step::Select, local, e))?;
        if sets.readable(wake.fd()) {
            wake.clear();
        }
        if listening && lp.acceptor.as_ref().is_some_and(|a| sets.readable(a.fd())) {
            lp.accept(stop)?;
        }
        let ready: Vec<usize> = lp
            .exchanges
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
        let room = !self.full && self.slots.has_room();
        let listening = match &self.acceptor {
            Some(acceptor) if room && acceptor.resting_until().is_none() => sets.watch_read(acceptor.fd()),
            _ => false,
        };
        for (_, c) in self.exchanges.iter() {
            let fd = c.exchange.stream().fd();
            match c.state {
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
        let resting = self.acceptor.as_ref().and_then(Acceptor::resting_until);
        self.exchanges
            .next_deadline()
            .into_iter()
            .chain(resting)
            .min()
            .map(|d| d.saturating_duration_since(now))
    }

    /// Takes the clients that are queued, while there is room (the one slot-aware step).
    fn accept(&mut self, stop: &Stop) -> Result<(), Error> {
        while !self.full {
            let Some(acceptor) = &mut self.acceptor else {
                return Ok(());
            };
            match acceptor.take(self.slots, stop)? {
                Taken::Accepted(stream, peer) => self.take(stream, peer),
                // Out of descriptors: the listening socket rests a while.
                Taken::Empty | Taken::Full | Taken::Resting => return Ok(()),
                Taken::Closed => self.acceptor = None,
            }
        }
        Ok(())
    }

    /// A new client, its slot taken: driven as far as it goes at once, kept only if it
    /// must wait.
    fn take(&mut self, stream: Stream, peer: SocketAddr) {
        let fits = usize::try_from(stream.fd()).is_ok_and(|fd| fd < FD_SETSIZE);
        let mut exchange = self.exchanges.begin(stream, Some(peer));
        if !fits {
            report(&Error::new(
                Step::Select,
                peer,
                std::io::Error::other(format!(
                    "descriptor {} does not fit FD_SETSIZE",
                    exchange.stream().fd()
                )),
            ));
            self.summary.count(exchange.end());
            self.slots.release();
            self.full = true;
            return;
        }
        match exchange.advance(&mut self.buf) {
            Some(waits_for) => {
                self.exchanges.insert(exchange, waits_for);
            }
            None => {
                self.summary.count(exchange.end());
                self.slots.release();
            }
        }
    }

    fn drive(&mut self, key: usize) {
        if let Some(entry) = self.exchanges.advance(key, &mut self.buf) {
            self.summary.count(entry.exchange.end());
            self.slots.release();
            self.full = false;
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
}
