//! The one accept step: `accept()` and what to do when it fails — accept again, back off
//! while out of descriptors, or stop — shared by every model and by `--once`.
//!
//! A stop loses no client the kernel has already connected. The listening socket is never
//! shut down or closed with connections in its queue (Linux resets every one of them).
//! At the moment of the stop the kernel is told to complete no more handshakes
//! (`listen(fd, 0)`, from the stopping thread: new SYNs are dropped, and their clients,
//! retrying a second later, find the port closed; Linux still lets one more in when the
//! queue is empty); then the queue is accepted to its end and those clients are served,
//! and only then is the socket closed. A blocking `accept()` notices a stop because it never blocks for long: the
//! listening socket's `SO_RCVTIMEO` brings it back every [`STOP_CHECK`]. An inherited
//! socket (socket activation) may be shared with the process taking over: its queue is
//! left to that process.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hello_proto::sys::{self, IdleWaits, Stream, Tracer};
use hello_proto::{Error, Step};

use crate::log::report_always;
use crate::slots::Slots;
use crate::stop::WakeGuard;
use crate::{Config, Stop};

/// How long to wait before accepting again when the process or system is out of
/// descriptors or memory: long enough not to spin a core, short enough to recover soon.
pub const BACKOFF: Duration = Duration::from_millis(50);

/// How long a blocking `accept()` waits before it comes back to look for a stop.
pub const STOP_CHECK: Duration = Duration::from_millis(100);

/// Failures retried in a row before backing off, so that an error that repeats for ever
/// cannot spin a core.
const RETRIES: usize = 64;

/// The response to a failed `accept()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptFailure {
    /// Nothing to accept (non-blocking socket): wait for readiness.
    WouldBlock,
    /// A signal ended the wait (SIGCHLD in the fork model): the caller may have work.
    Interrupted,
    /// The connection died in the queue or a signal interrupted: accept again now.
    Retry,
    /// Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): wait [`BACKOFF`],
    /// then accept again; descriptors free up as clients finish.
    Backoff,
    /// The listening socket itself is unusable (shut down, closed, not listening).
    Fatal,
}

/// Classifies an `accept()` error. Linux reports a new connection's pending network
/// errors through `accept()` (`accept(2)`, "Error handling"); those are retried.
pub fn classify(err: &io::Error) -> AcceptFailure {
    match err.kind() {
        io::ErrorKind::WouldBlock => return AcceptFailure::WouldBlock,
        io::ErrorKind::Interrupted => return AcceptFailure::Interrupted,
        _ => {}
    }
    match err.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptFailure::Backoff,
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT | libc::EOPNOTSUPP) => {
            AcceptFailure::Fatal
        }
        _ => AcceptFailure::Retry,
    }
}

/// What [`Acceptor::next`] found.
pub(crate) enum Next {
    /// A new client's connection, accepted: its socket and its address.
    Accepted(Stream, SocketAddr),
    /// The accept queue is empty (non-blocking listener): wait for readiness.
    Empty,
    /// Out of descriptors or memory: accept again after [`BACKOFF`].
    Backoff,
    /// No more clients will be taken: stopped (and the queue emptied), or `--once` has had
    /// its client.
    Closed,
}

/// What the slot-aware accept step ([`Acceptor::take`]) found.
pub(crate) enum Taken {
    /// A new client's connection, accepted, its slot taken (the caller gives it back when
    /// the exchange ends).
    Accepted(Stream, SocketAddr),
    /// The accept queue is empty: wait for readiness.
    Empty,
    /// Every slot is taken: the clients stay in the backlog until one is free.
    Full,
    /// Out of descriptors or memory: nothing is taken until then.
    Resting,
    /// No more clients will be taken (see [`Next::Closed`]).
    Closed,
}

/// Where the listening socket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepting.
    Open,
    /// Stopping: no new connections; the queue is being emptied (taken to its end).
    Emptying,
    /// No more clients.
    Closed,
}

/// The listening socket and the accept-failure policy.
pub(crate) struct Acceptor {
    /// Shared with the stop's waker, which tells the kernel to stop completing handshakes.
    listener: Arc<TcpListener>,
    local: SocketAddr,
    tracer: Tracer,
    /// Accepted sockets are made non-blocking (the event loop) or left blocking.
    nonblocking: bool,
    /// Clients still to take: one with `--once`, else no limit.
    left: Option<u64>,
    /// This acceptor ran out of descriptors and has not found the queue empty since: one
    /// episode, however many clients leave (and let one more in) meanwhile.
    starved_here: bool,
    /// Out of descriptors: no `accept()` until then.
    resting_until: Option<Instant>,
    /// The server is out of descriptors: shared by the workers of one server, so that an
    /// episode is reported once. Set by the first acceptor to run out, cleared when one
    /// that ran out accepts again.
    starved: Arc<AtomicBool>,
    /// The socket was inherited, and may be shared with another process.
    inherited: bool,
    /// The listening socket is in blocking mode.
    blocking: bool,
    /// Bound on emptying the queue after a stop.
    grace: Duration,
    phase: Phase,
    /// The blocking waits for the next client, for the trace (shown once, then counted).
    idle: IdleWaits,
    _stop_listening: Option<WakeGuard>,
}

impl Acceptor {
    /// Takes over `listener`, with `SO_RCVTIMEO` set to [`STOP_CHECK`] so that a blocking
    /// `accept()` comes back to look for a stop, and (unless it was inherited) a waker that
    /// shrinks its backlog to nothing the moment `stop` is triggered.
    pub fn new(
        listener: TcpListener,
        config: &Config,
        stop: &Stop,
        nonblocking: bool,
    ) -> Result<Acceptor, Error> {
        let fd = listener.as_raw_fd();
        let local = listener
            .local_addr()
            .map_err(|e| Error::new(Step::Getsockname, format!("listening socket {fd}"), e))?;
        sys::set_accept_timeout(&listener, STOP_CHECK, &config.tracer)
            .map_err(|e| Error::new(Step::Setsockopt, local, e))?;
        // An inherited socket may come non-blocking (and another process may change that).
        let blocking = !sys::is_nonblocking(&listener).map_err(|e| Error::new(Step::Fcntl, local, e))?;
        let listener = Arc::new(listener);
        let stop_listening = (!config.inherited_listener).then(|| {
            let (l, tracer) = (Arc::clone(&listener), config.tracer.clone());
            // A failure only means the kernel goes on queueing until the socket closes.
            stop.on_stop(move || {
                let _ = sys::stop_listening(&l, &tracer);
            })
        });
        Ok(Acceptor {
            listener,
            local,
            tracer: config.tracer.clone(),
            nonblocking,
            left: config.once.then_some(1),
            starved_here: false,
            resting_until: None,
            starved: Arc::new(AtomicBool::new(false)),
            inherited: config.inherited_listener,
            blocking,
            grace: config.grace,
            phase: Phase::Open,
            idle: IdleWaits::default(),
            _stop_listening: stop_listening,
        })
    }

    /// Reports running out of descriptors once for all the acceptors sharing `flag` (the
    /// workers of one server), not once each.
    pub fn share_starvation(&mut self, flag: Arc<AtomicBool>) {
        self.starved = flag;
    }

    /// The listening socket's descriptor (to register it with an event loop).
    pub fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// The address the listening socket is bound to.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// `accept()` once, and again at once after a connection that died in the queue. An
    /// exhaustion (EMFILE, …) is reported once per episode: until the queue is found
    /// empty (a client that leaves lets one more in, which is the same episode). A
    /// listening socket that fails for good is the server's error, unless it was shut
    /// down by a stop.
    pub fn next(&mut self, stop: &Stop) -> Result<Next, Error> {
        for _ in 0..RETRIES {
            if self.left == Some(0) || self.phase == Phase::Closed {
                return Ok(Next::Closed);
            }
            if stop.is_stopped() && !self.queue_left(stop)? {
                return Ok(Next::Closed);
            }
            let err =
                match sys::accept_counting(&self.listener, self.nonblocking, &self.tracer, &mut self.idle) {
                    Ok((stream, peer)) => {
                        self.accepted();
                        return Ok(Next::Accepted(stream, peer));
                    }
                    Err(e) => e,
                };
            if let Some(next) = self.failed(err, stop) {
                return next;
            }
        }
        Ok(Next::Backoff)
    }

    /// The slot-aware accept step of the event-driven models: a client is taken only while
    /// a slot is free (taken here from `slots`, given back by the caller when the exchange
    /// ends, or here when no client came), never while resting after running out of
    /// descriptors, and as [`Acceptor::next`] says (`--once`, emptying the queue after a stop).
    pub fn take(&mut self, slots: &Slots, stop: &Stop) -> Result<Taken, Error> {
        if self.resting_until().is_some() {
            return Ok(Taken::Resting);
        }
        if !slots.try_take() {
            return Ok(Taken::Full);
        }
        let next = self.next(stop);
        if !matches!(next, Ok(Next::Accepted(..))) {
            slots.release();
        }
        Ok(match next? {
            Next::Accepted(stream, peer) => Taken::Accepted(stream, peer),
            Next::Empty => Taken::Empty,
            Next::Backoff => Taken::Resting,
            Next::Closed => Taken::Closed,
        })
    }

    /// When the rest after running out of descriptors ends, while it lasts.
    pub fn resting_until(&self) -> Option<Instant> {
        self.resting_until.filter(|t| Instant::now() < *t)
    }

    /// Whether a client may be taken by a call queued elsewhere (the io_uring model's
    /// accept): not resting, not stopping, and `--once` not served.
    pub fn may_take(&self) -> bool {
        self.resting_until().is_none() && self.phase == Phase::Open && self.left != Some(0)
    }

    /// Whether this acceptor is in an out-of-descriptors episode (which only an empty
    /// queue ends).
    pub fn starved(&self) -> bool {
        self.starved_here
    }

    /// A client was accepted (here, or by an io_uring accept on this socket): `--once`
    /// has its client, and the counters one more connection.
    pub fn accepted(&mut self) {
        crate::metrics::accepted();
        self.left = self.left.map(|n| n.saturating_sub(1));
    }

    /// The queue was found empty: the server has caught up, and an out-of-descriptors
    /// episode is over (the next is reported again).
    fn caught_up(&mut self) {
        if self.starved_here {
            self.starved_here = false;
            self.starved.store(false, Ordering::Relaxed);
        }
    }

    /// The policy for a failed accept (here, or an io_uring accept on this socket): what
    /// to do next, or `None` to accept again at once.
    pub fn failed(&mut self, err: io::Error, stop: &Stop) -> Option<Result<Next, Error>> {
        match classify(&err) {
            AcceptFailure::WouldBlock if self.phase == Phase::Emptying => {
                self.caught_up();
                self.phase = Phase::Closed;
                Some(Ok(Next::Closed))
            }
            AcceptFailure::WouldBlock => {
                self.caught_up();
                Some(Ok(Next::Empty))
            }
            AcceptFailure::Interrupted => Some(Ok(Next::Empty)),
            AcceptFailure::Retry => None,
            AcceptFailure::Backoff => {
                let first_here = !std::mem::replace(&mut self.starved_here, true);
                if first_here && !self.starved.swap(true, Ordering::Relaxed) {
                    report_always(&Error::new(Step::Accept, self.local, err));
                }
                self.resting_until = Some(Instant::now() + BACKOFF);
                Some(Ok(Next::Backoff))
            }
            AcceptFailure::Fatal if stop.is_stopped() => Some(Ok(Next::Closed)),
            AcceptFailure::Fatal => Some(Err(Error::new(Step::Accept, self.local, err))),
        }
    }

    /// A stop: whether clients are still to be taken from the queue. The first time, the
    /// socket turns non-blocking, so that the queue's end shows as EAGAIN. An inherited socket's queue is left to the
    /// process that shares it; `--once` takes no other client; after the grace, nothing.
    fn queue_left(&mut self, stop: &Stop) -> Result<bool, Error> {
        match self.phase {
            Phase::Closed => return Ok(false),
            Phase::Emptying => {
                let over = stop
                    .grace_end(self.grace)
                    .is_some_and(|end| Instant::now() >= end);
                if over {
                    self.phase = Phase::Closed;
                }
                return Ok(!over);
            }
            Phase::Open => {}
        }
        if self.inherited || self.left.is_some() {
            self.phase = Phase::Closed;
            return Ok(false);
        }
        // The stop's waker has already shrunk the backlog: no new connections queue up.
        self.set_blocking(false)?;
        self.phase = Phase::Emptying;
        Ok(true)
    }

    /// [`Acceptor::next`] for the blocking models: waits out back-offs, and returns the
    /// next client or `None` once no more will be taken.
    pub fn next_blocking(&mut self, stop: &Stop) -> Result<Option<(Stream, SocketAddr)>, Error> {
        loop {
            match self.next(stop)? {
                Next::Accepted(stream, peer) => return Ok(Some((stream, peer))),
                Next::Closed => return Ok(None),
                // The accept timeout ran out (to look for a stop), or the socket is
                // non-blocking after all (a socket shared with another process, which may
                // change its mode): wait for a client, briefly, so that nothing spins.
                Next::Empty => self.wait_for_client(),
                Next::Backoff => thread::sleep(BACKOFF),
            }
        }
    }

    /// In a child after `fork()`: closes this process's copy of the listening socket (the
    /// parent keeps accepting on its own), traced, and stops listening for the stop here.
    pub fn close_copy_in_child(self) {
        let Acceptor {
            listener,
            _stop_listening,
            tracer,
            ..
        } = self;
        // The waker held the other reference to the listening socket.
        drop(_stop_listening);
        if let Ok(listener) = Arc::try_unwrap(listener) {
            sys::process::close_copy_in_child(listener, &tracer);
        }
    }

    /// [`Acceptor::close_copy_in_child`] for a child that only borrows the acceptor and
    /// `_exit`s right after (the fork model's scrape child): the listening socket is not
    /// held past the parent's stop.
    pub fn close_listener_in_child(&self) {
        sys::process::close_borrowed_copy_in_child(&self.listener, &self.tracer);
    }

    /// Whether the listening socket is in blocking mode.
    pub fn is_blocking(&self) -> bool {
        self.blocking
    }

    /// Waits at most [`STOP_CHECK`] for a connection to be queued (`poll(2)`).
    pub fn wait_for_client(&mut self) {
        sys::wait_readable(&*self.listener, STOP_CHECK, &self.tracer, &mut self.idle);
    }

    /// `fcntl(F_SETFL)`: the event loop blocks in `accept()` itself while it has no
    /// client to wait for, and waits in `epoll_wait()` otherwise.
    pub fn set_blocking(&mut self, blocking: bool) -> Result<(), Error> {
        // While stopping, the queue's end must show as EAGAIN: non-blocking it stays.
        let blocking = blocking && self.phase == Phase::Open;
        if blocking == self.blocking {
            return Ok(());
        }
        sys::set_nonblocking(&self.listener, !blocking, &self.tracer)
            .map_err(|e| Error::new(Step::Fcntl, self.local, e))?;
        self.blocking = blocking;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let c = |e| classify(&io::Error::from_raw_os_error(e));
        assert_eq!(c(libc::ECONNABORTED), AcceptFailure::Retry);
        assert_eq!(c(libc::EINTR), AcceptFailure::Interrupted);
        assert_eq!(c(libc::EPROTO), AcceptFailure::Retry);
        assert_eq!(c(libc::EMFILE), AcceptFailure::Backoff);
        assert_eq!(c(libc::ENFILE), AcceptFailure::Backoff);
        assert_eq!(c(libc::ENOBUFS), AcceptFailure::Backoff);
        assert_eq!(c(libc::EAGAIN), AcceptFailure::WouldBlock);
        assert_eq!(c(libc::EINVAL), AcceptFailure::Fatal);
        assert_eq!(c(libc::EBADF), AcceptFailure::Fatal);
    }

    #[test]
    fn once_takes_one_client_and_a_stop_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::new(hello_proto::wire::Service::hello("hi"));
        config.once = true;
        let stop = Stop::new();
        let mut acceptor = Acceptor::new(listener, &config, &stop, false).unwrap();
        let _a = std::net::TcpStream::connect(addr).unwrap();
        let _b = std::net::TcpStream::connect(addr).unwrap();
        assert!(matches!(acceptor.next(&stop), Ok(Next::Accepted(..))));
        assert!(
            matches!(acceptor.next(&stop), Ok(Next::Closed)),
            "--once: one client"
        );

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut acceptor =
            Acceptor::new(listener, &Config::new(config.service.clone()), &stop, false).unwrap();
        stop.stop();
        assert!(
            matches!(acceptor.next_blocking(&stop), Ok(None)),
            "stopped: no client"
        );
    }
}
