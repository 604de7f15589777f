//! Carries out the connection core's actions with the traced calls of `hello_proto::sys`:
//! the one place where an [`Action`] becomes a system call and its result an [`Input`],
//! where the memory a connection holds is counted against the server's budget, and where
//! an exchange's end is carried out and reported. Every model uses [`Exchange`]; none of
//! them knows what a hello or echo exchange is.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use hello_proto::conn::{Action, Connection, Input, Outcome, Unread};
use hello_proto::sys::Stream;
use hello_proto::{Cause, Error};

use crate::budget::Budget;
use crate::{Config, report};

/// What the socket must become before the next call can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Readable: input, end of stream or an error.
    Readable,
    /// Writable: room in the send buffer.
    Writable,
}

/// What the call the core asked for returned, before it is fed back.
#[derive(Debug)]
pub(crate) enum Called {
    /// The call returned; feed this with [`Exchange::feed`] (a read's bytes are in the
    /// buffer).
    Returned(Returned),
    /// The call would block (or, on a blocking socket, its socket timeout ran out):
    /// nothing to feed.
    Wait(Wait),
    /// The core asks for the last call, close or abort: see [`Exchange::end`].
    End,
}

/// A returned call, as [`Input`] without the borrow of the read buffer.
#[derive(Debug)]
pub(crate) enum Returned {
    Sent(usize),
    Received(usize),
    HalfClosed,
    Unread(Unread),
    Failed(io::Error),
}

/// One accepted connection being served: the core, its socket, and what it holds of the
/// server's memory budget.
pub(crate) struct Exchange<'c> {
    core: Connection<'c>,
    stream: Stream,
    /// The client's address; `None` until needed for a socket accepted without it (the
    /// io_uring model's multishot accept).
    peer: Option<SocketAddr>,
    budget: &'c Budget,
    /// Bytes counted in the budget for this connection.
    held: usize,
}

impl<'c> Exchange<'c> {
    /// A connection accepted at `now`, to be served as `config` says.
    pub(crate) fn new(config: &'c Config, budget: &'c Budget, stream: Stream, peer: SocketAddr) -> Self {
        Exchange::with_peer(config, budget, stream, Some(peer))
    }

    /// A connection accepted at `now` whose address is not known yet: it is asked for
    /// (`getpeername()`) only if a log line needs it.
    pub(crate) fn with_peer(
        config: &'c Config,
        budget: &'c Budget,
        stream: Stream,
        peer: Option<SocketAddr>,
    ) -> Self {
        let mut core = Connection::new(&config.service, config.limits, Instant::now());
        let mut peer = peer;
        if config.proxy_protocol {
            let trusted = match &config.proxy_from {
                None => true,
                Some(blocks) => {
                    // The io_uring model's accept does not say who the peer is: asked now.
                    peer = peer.or_else(|| stream.peer_addr().ok());
                    peer.is_some_and(|p| blocks.iter().any(|b| b.contains(p.ip())))
                }
            };
            core = core.expect_proxy_header(trusted);
        }
        Exchange {
            core,
            stream,
            peer,
            budget,
            held: 0,
        }
    }

    pub(crate) fn core(&self) -> &Connection<'c> {
        &self.core
    }

    pub(crate) fn core_mut(&mut self) -> &mut Connection<'c> {
        &mut self.core
    }

    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Makes the call the core asks for, reading into `buf`.
    pub(crate) fn call(&self, buf: &mut [u8]) -> Called {
        let stream = &self.stream;
        let returned = match self.core.poll() {
            Action::Send { bytes, more } => match stream.send(bytes, more) {
                Ok(n) => Returned::Sent(n),
                Err(e) if would_block(&e) => return Called::Wait(Wait::Writable),
                Err(e) => Returned::Failed(e),
            },
            Action::Read => match stream.read(buf) {
                Ok(n) => Returned::Received(n),
                Err(e) if would_block(&e) => return Called::Wait(Wait::Readable),
                Err(e) => Returned::Failed(e),
            },
            Action::HalfClose => match stream.shutdown_write() {
                Ok(()) => Returned::HalfClosed,
                Err(e) => Returned::Failed(e),
            },
            Action::CheckUnread => match stream.check_unread() {
                Ok(0) => Returned::Unread(Unread::Eof),
                Ok(n) => Returned::Unread(Unread::Data(n)),
                Err(e) if would_block(&e) => Returned::Unread(Unread::Nothing),
                Err(e) => Returned::Failed(e),
            },
            Action::Close | Action::Abort => return Called::End,
        };
        Called::Returned(returned)
    }

    /// Feeds a call's result to the core, as of `now`, when the call returned. Request
    /// bytes are held only if the budget has room for them; else the core is told so, and
    /// answers that the server is busy.
    pub(crate) fn feed(&mut self, returned: Returned, buf: &[u8], now: Instant) {
        let mut reserved = 0;
        let input = match returned {
            Returned::Sent(n) => Input::Sent(n),
            Returned::Received(n) if n > 0 && self.core.reads_request() => {
                if self.budget.try_reserve(n) {
                    reserved = n;
                    Input::Received(&buf[..n.min(buf.len())])
                } else {
                    Input::OverBudget
                }
            }
            Returned::Received(n) => Input::Received(&buf[..n.min(buf.len())]),
            Returned::HalfClosed => Input::HalfClosed,
            Returned::Unread(answer) => Input::Unread(answer),
            Returned::Failed(e) => Input::Failed(e),
        };
        self.core.handle(input, now);
        if let Some(header) = self.core.take_header() {
            // Behind a balancer: the real client, for the trace and every log line.
            self.stream.trace_proxy_header(&header);
            if let Some((client, _)) = header.addresses {
                self.peer = Some(client);
            }
        }
        let held = self.core.held();
        self.budget.settle(self.held + reserved, held);
        self.held = held;
    }

    /// Makes the call the core asks for and feeds back its result: `None` once it was
    /// fed, else why nothing could be.
    pub(crate) fn step(&mut self, buf: &mut [u8]) -> Option<Called> {
        match self.call(buf) {
            Called::Returned(returned) => {
                self.feed(returned, buf, Instant::now());
                None
            }
            other => Some(other),
        }
    }

    /// Makes calls until the core must wait for the socket (`Some`) or is over (`None`).
    /// Each call either moves the exchange on or ends it, so this ends.
    pub(crate) fn advance(&mut self, buf: &mut [u8]) -> Option<Wait> {
        loop {
            match self.step(buf) {
                None => {}
                Some(Called::Wait(wait)) => return Some(wait),
                Some(Called::End | Called::Returned(_)) => return None,
            }
        }
    }

    /// The event loop's timer for this connection ran out at `now`: the core decides, and
    /// a wait that timed out is traced as the call that was waiting.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.core.on_timeout(now);
        if let Some(Outcome::Failed {
            step,
            cause: Cause::TimedOut(_) | Cause::RequestTimedOut(_),
        }) = self.core.ending()
        {
            self.stream.trace_deadline(*step);
        }
    }

    /// Carries out the end the core asked for — `close()`, or an abort with RST — gives
    /// back the memory it held, and reports a failed exchange in one line. A connection
    /// ended before the core asked is aborted, and counts as unfinished. Returns whether
    /// the exchange failed.
    pub(crate) fn end(self) -> bool {
        self.end_with(|stream, abort| if abort { stream.abort() } else { stream.close() })
    }

    /// [`Exchange::end`] with the last call made by `close` (given the socket, and
    /// whether to abort): a driver whose calls go through a queue (io_uring).
    pub(crate) fn end_with(self, close: impl FnOnce(Stream, bool)) -> bool {
        self.budget.settle(self.held, 0);
        let failed = matches!(self.core.ending(), Some(Outcome::Failed { .. }) | None);
        // A log line names the client: asked for now if it was not known, while the
        // socket is still open.
        let peer = match self.peer {
            Some(peer) => Some(peer),
            None if failed => self.stream.peer_addr().ok(),
            None => None,
        };
        let abort = !matches!(self.core.poll(), Action::Close);
        close(self.stream, abort);
        match self.core.finish() {
            Outcome::Served | Outcome::PeerGone => false,
            Outcome::Failed { step, cause } => {
                let target = peer.map_or_else(|| "a client that is gone".to_string(), |p| p.to_string());
                report(&Error::new(step, target, cause));
                true
            }
        }
    }
}

/// The call must be made again later: the socket is not ready (non-blocking), or a
/// signal woke it (a stream that wakes on signals: the driver looks for a stop first).
fn would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}
