//! Carries out the connection core's actions with the traced calls of `hello_proto::sys`:
//! the one place where an [`Action`] becomes a system call and its result an [`Input`],
//! where the memory a connection holds is counted against the server's budget, and where
//! an exchange's end is carried out and reported. Every TCP model serves through
//! [`Exchange`]; none of them knows what a hello or echo exchange is.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use hello_proto::conn::{Action, Connection, Input, Outcome, Unread};
use hello_proto::sys::Stream;
use hello_proto::{Cause, Error};

use crate::budget::Budget;
use crate::{Config, metrics, report};

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

/// A call that may wait on its socket, made at once ([`Exchange::call`]) or queued and
/// completed later ([`Exchange::complete`]): its result means the same to the core either
/// way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// `send()` of the reply.
    Send,
    /// `read()` of the request (or of what is discarded).
    Read,
    /// `recv(MSG_PEEK | MSG_DONTWAIT)`: unread input?
    CheckUnread,
}

impl Call {
    /// What the call's `result` is to the core, or the readiness to wait for when it
    /// would have blocked.
    pub(crate) fn returned(self, result: io::Result<usize>) -> Result<Returned, Wait> {
        match (self, result) {
            (Call::Send, Ok(n)) => Ok(Returned::Sent(n)),
            (Call::Read, Ok(n)) => Ok(Returned::Received(n)),
            (Call::CheckUnread, Ok(0)) => Ok(Returned::Unread(Unread::Eof)),
            (Call::CheckUnread, Ok(n)) => Ok(Returned::Unread(Unread::Data(n))),
            (Call::CheckUnread, Err(e)) if would_block(&e) => Ok(Returned::Unread(Unread::Nothing)),
            (Call::Send, Err(e)) if would_block(&e) => Err(Wait::Writable),
            (Call::Read, Err(e)) if would_block(&e) => Err(Wait::Readable),
            (_, Err(e)) => Ok(Returned::Failed(e)),
        }
    }
}

/// A call to queue (the io_uring model), as [`Exchange::queued_call`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued<'a> {
    /// Send `bytes`; `then_check`: if they all go, the core's next call is the check for
    /// unread input (which may then be linked after the send).
    Send { bytes: &'a [u8], then_check: bool },
    /// Read the request (or what is discarded).
    Read,
    /// Check for unread input.
    CheckUnread,
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
    /// io_uring model's accept).
    peer: Option<SocketAddr>,
    budget: &'c Budget,
    /// Bytes counted in the budget for this connection.
    held: usize,
    /// When the connection was taken: the exchange's duration counts from here.
    started: Instant,
}

impl<'c> Exchange<'c> {
    /// A connection just accepted, to be served as `config` says; the exchange's time
    /// counts from now.
    pub(crate) fn new(config: &'c Config, budget: &'c Budget, stream: Stream, peer: SocketAddr) -> Self {
        Exchange::with_peer(config, budget, stream, Some(peer))
    }

    /// [`Exchange::new`] for a connection whose address may not be known yet (`None`):
    /// it is asked for (`getpeername()`) only if `--proxy-from` or a log line needs it.
    pub(crate) fn with_peer(
        config: &'c Config,
        budget: &'c Budget,
        stream: Stream,
        peer: Option<SocketAddr>,
    ) -> Self {
        let started = Instant::now();
        let mut core = Connection::new(&config.service, config.limits, started);
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
            started,
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
        let (call, result) = match self.core.poll() {
            Action::Send { bytes, more } => (Call::Send, stream.send(bytes, more)),
            Action::Read => (Call::Read, stream.read(buf)),
            Action::HalfClose => {
                return Called::Returned(match stream.shutdown_write() {
                    Ok(()) => Returned::HalfClosed,
                    Err(e) => Returned::Failed(e),
                });
            }
            Action::CheckUnread => (Call::CheckUnread, stream.check_unread()),
            Action::Close | Action::Abort => return Called::End,
        };
        match call.returned(result) {
            Ok(returned) => Called::Returned(returned),
            Err(wait) => Called::Wait(wait),
        }
    }

    /// The call the core asks for, if it is one a driver may queue instead of making it
    /// (the io_uring model); `None` for the half-close, the close and the abort.
    pub(crate) fn queued_call(&self) -> Option<Queued<'_>> {
        match self.core.poll() {
            Action::Send { bytes, .. } => Some(Queued::Send {
                bytes,
                then_check: self.core.next_if_done() == Some(Action::CheckUnread),
            }),
            Action::Read => Some(Queued::Read),
            Action::CheckUnread => Some(Queued::CheckUnread),
            Action::HalfClose | Action::Close | Action::Abort => None,
        }
    }

    /// A queued call completed with `result` (a read's bytes in `data`): fed to the core as
    /// of `now` if the core still asks for that call (a call linked after a send that did
    /// not go whole is not asked for), as if it had been made here.
    pub(crate) fn complete(&mut self, call: Call, result: io::Result<usize>, data: &[u8], now: Instant) {
        let asked = matches!(
            (call, self.core.poll()),
            (Call::Send, Action::Send { .. })
                | (Call::CheckUnread, Action::CheckUnread)
                | (Call::Read, Action::Read)
        );
        if let (true, Ok(returned)) = (asked, call.returned(result)) {
            self.feed(returned, data, now);
        }
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

    /// The event-driven model's timer for this connection ran out at `now` (its socket is
    /// non-blocking, and no call of it is pending): what arrived meanwhile is taken first —
    /// the call the core waits for is made once more, and a result fed — since a stall
    /// of the server (stopped, a paused VM, CPU throttling) is not the client's fault.
    /// Then the core decides, and a wait that timed out is traced as the call that was
    /// waiting.
    pub(crate) fn expire(&mut self, now: Instant, buf: &mut [u8]) {
        self.take_what_arrived(buf, now);
        self.core.on_timeout(now);
        if let Some(Outcome::Failed {
            step,
            cause: Cause::TimedOut(_) | Cause::RequestTimedOut(_),
        }) = self.core.ending()
        {
            self.stream.trace_deadline(*step);
        }
    }

    /// Before a deadline ends the exchange: the call the core waits for is made once more
    /// (on a socket that cannot make it wait: non-blocking, or its timeout at its
    /// shortest) and what it returned fed as of `now`.
    pub(crate) fn take_what_arrived(&mut self, buf: &mut [u8], now: Instant) {
        if let Called::Returned(returned) = self.call(buf) {
            self.feed(returned, buf, now);
        }
    }

    /// Carries out the end the core asked for — `close()`, or an abort with RST — gives
    /// back the memory it held, counts the exchange (`metrics`: how it ended, how long it
    /// took), and reports a failed exchange in one line. A connection
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
        let outcome = self.core.finish();
        metrics::exchange_ended(metrics::Ended::of(&outcome), self.started.elapsed());
        match outcome {
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
