//! The event-loop model: one thread, one `epoll` instance (through mio), every client a
//! small state machine. A hello client is greeted and closed inside the accept step and
//! never registered; an echo client is registered until its reply is sent.
//!
//! While nothing is registered, the loop blocks in `accept()` itself, as the textbook loop
//! does, instead of in `epoll_wait()`: a client is then served without the `epoll_wait()`
//! wake-up and the `accept()` that returns EAGAIN, which at one client at a time is most
//! of what an event loop costs over the blocking loop. As soon as a client is registered
//! (an echo request, a client that sent data to the hello service, a greeting larger than
//! the socket buffer) the listener is non-blocking again and `epoll_wait()` drives all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hello_proto::sock::{fail_within, send_more};
use hello_proto::trace::{Event, Tracer};
use hello_proto::wire::{EchoRequest, Exchange, Progress};
use hello_proto::{Error, Step};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use socket2::SockRef;

use crate::accept::{AcceptFailure, AcceptFailures, BACKOFF};
use crate::exchange::{DRAIN_BYTES, DRAIN_TIME, input_waiting, shutdown_write};
use crate::{Config, Stop, report};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// Accepts per loop iteration, so that a flood of new clients cannot starve the
/// registered ones.
const ACCEPT_BATCH: usize = 256;

/// What a registered connection is doing.
enum State {
    /// Reading an echo request.
    Reading(EchoRequest),
    /// Sending `reply[sent..]`; then close (hello, unless the client sent something) or
    /// half-close and drain (echo).
    Writing {
        reply: Vec<u8>,
        sent: usize,
        drain_after: bool,
        saw_eof: bool,
    },
    /// Reply sent and write side shut down; reading until the peer closes.
    Draining { left: usize },
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Distinguishes this connection from a later one in the same slab slot.
    id: u64,
    /// When the connection is closed if nothing happens.
    deadline: Instant,
    /// The deadline of this connection's entry in the timer heap.
    queued: Instant,
    state: State,
}

/// What to do with a connection after handling an event.
enum Verdict {
    Keep,
    Close,
    Fail(Error),
}

/// Runs the event loop until `stop`, then finishes registered exchanges for at most
/// `config.grace`.
pub fn run(listener: TcpListener, config: &Config, stop: &Stop) -> Result<(), Error> {
    let local = listener
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, "listener", e))?;
    let poll_err = |e| Error::new(Step::Poll, local, e);
    // A stop wakes both places the loop may sleep in: epoll_wait() through the waker, and
    // a blocking accept() through shutdown(SHUT_RD) on a duplicate of the listening
    // socket (owned by the waker, so it is never a descriptor that was closed and reused).
    let waking = listener
        .try_clone()
        .map_err(|e| Error::new(Step::Socket, local, e))?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    let mut poll = Poll::new().map_err(poll_err)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(poll_err)?);
    let _wake = stop.on_stop(move || {
        let _ = waker.wake();
        let _ = SockRef::from(&waking).shutdown(Shutdown::Read);
    });
    let mut blocking = true;
    SockRef::from(&listener)
        .set_nonblocking(false)
        .map_err(|e| Error::new(Step::Setsockopt, local, e))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(poll_err)?;

    let mut lp = Loop {
        config,
        conns: Slab::new(),
        timers: BinaryHeap::new(),
        next_id: 0,
        buf: vec![0u8; 16 * 1024],
    };
    let mut events = Events::with_capacity(1024);
    let mut failures = AcceptFailures::new(local, listener.as_raw_fd(), &config.tracer);
    let mut listener = Some(listener);
    let mut listener_ready = true;
    let mut backoff_until: Option<Instant> = None;
    let mut stop_deadline: Option<Instant> = None;

    loop {
        let now = Instant::now();
        if stop.is_stopped() && stop_deadline.is_none() {
            stop_deadline = Some(now + config.grace);
            // Closing the listening socket stops accepting at once.
            if let Some(mut l) = listener.take() {
                let _ = poll.registry().deregister(&mut l);
            }
        }
        if let Some(deadline) = stop_deadline {
            if lp.conns.is_empty() || now >= deadline {
                return Ok(());
            }
        }

        // Nothing registered, nothing to wait for: block in accept() like the textbook loop.
        if let Some(l) = &listener {
            if lp.conns.is_empty() && stop_deadline.is_none() {
                if !blocking {
                    set_blocking(l, true, local)?;
                    blocking = true;
                }
                lp.timers.clear();
                if let Some(t) = backoff_until.take() {
                    std::thread::sleep(t.saturating_duration_since(now));
                }
                match l.accept() {
                    Ok((stream, peer)) => {
                        failures.recovered();
                        lp.on_accept(poll.registry(), l.as_raw_fd(), stream, peer);
                    }
                    Err(e) => {
                        if stop.is_stopped() {
                            continue;
                        }
                        if failures.handle(e)? == AcceptFailure::Backoff {
                            backoff_until = Some(Instant::now() + BACKOFF);
                        }
                    }
                }
                continue;
            }
            if blocking {
                set_blocking(l, false, local)?;
                blocking = false;
                // Clients may have queued while the loop was serving: drain first.
                listener_ready = true;
            }
        }

        // Accept while the listener may have clients, there is room, and no backoff.
        if let Some(l) = &listener {
            if backoff_until.is_some_and(|t| now >= t) {
                backoff_until = None;
            }
            if listener_ready && backoff_until.is_none() {
                for _ in 0..ACCEPT_BATCH {
                    if lp.conns.len() >= config.max_conns.max(1) {
                        break;
                    }
                    match l.accept() {
                        Ok((stream, peer)) => {
                            failures.recovered();
                            lp.on_accept(poll.registry(), l.as_raw_fd(), stream, peer);
                        }
                        Err(e) => match failures.handle(e) {
                            Ok(AcceptFailure::WouldBlock) => {
                                listener_ready = false;
                                break;
                            }
                            Ok(AcceptFailure::Backoff) => {
                                backoff_until = Some(Instant::now() + BACKOFF);
                                break;
                            }
                            Ok(_) => {}
                            // A stop shuts the listener down, which fails like a broken one.
                            Err(_) if stop.is_stopped() => break,
                            Err(e) => return Err(e),
                        },
                    }
                }
            }
        }

        // Sleep until an event, the next timer, the end of a backoff or of the grace
        // period; not at all while accepting is still possible.
        let can_accept = listener.is_some()
            && listener_ready
            && backoff_until.is_none()
            && lp.conns.len() < config.max_conns.max(1);
        let mut wake_at = lp.timers.peek().map(|Reverse((t, _, _))| *t);
        for t in [backoff_until, stop_deadline].into_iter().flatten() {
            wake_at = Some(wake_at.map_or(t, |w| w.min(t)));
        }
        let timeout = if can_accept {
            Some(Duration::ZERO)
        } else {
            wake_at.map(|t| t.saturating_duration_since(Instant::now()))
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(poll_err(e)),
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => listener_ready = true,
                WAKER => {}
                Token(key) => lp.on_event(key, event),
            }
        }
        lp.expire(Instant::now());
    }
}

struct Loop<'c> {
    config: &'c Config,
    conns: Slab<Conn>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_id: u64,
    buf: Vec<u8>,
}

impl Loop<'_> {
    /// A new client: greet it and close at once if the greeting fits the socket buffer
    /// (the usual case, with no registration at all), else register it.
    fn on_accept(
        &mut self,
        registry: &mio::Registry,
        listener_fd: i32,
        mut stream: TcpStream,
        peer: SocketAddr,
    ) {
        let fd = stream.as_raw_fd();
        let tracer = &self.config.tracer;
        if tracer.on() {
            tracer.emit(Event::Accept {
                listener: listener_fd,
                fd,
                peer,
            });
        }
        let state = match self.config.service.start() {
            Exchange::Greet(bytes) => {
                let sent = match write_some(&mut stream, bytes, tracer) {
                    Ok(n) => n,
                    Err(e) => {
                        report(&fail_within(
                            tracer,
                            Step::Write,
                            fd,
                            &peer,
                            e,
                            self.config.idle_timeout,
                        ));
                        close(stream, tracer);
                        return;
                    }
                };
                if sent < bytes.len() {
                    State::Writing {
                        reply: bytes[sent..].to_vec(),
                        sent: 0,
                        drain_after: false,
                        saw_eof: false,
                    }
                } else {
                    match after_greeting(&stream, peer, tracer) {
                        Ok(Some(draining)) => draining,
                        Ok(None) => {
                            close(stream, tracer);
                            return;
                        }
                        Err(e) => {
                            report(&e);
                            close(stream, tracer);
                            return;
                        }
                    }
                }
            }
            Exchange::Read(request) => State::Reading(request),
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = registry.register(&mut stream, Token(key), Interest::READABLE | Interest::WRITABLE) {
            report(&Error::new(Step::Poll, peer, e));
            close(stream, tracer);
            return;
        }
        let wait = if matches!(state, State::Draining { .. }) {
            DRAIN_TIME
        } else {
            self.config.idle_timeout
        };
        let deadline = Instant::now() + wait;
        self.next_id += 1;
        entry.insert(Conn {
            stream,
            peer,
            id: self.next_id,
            deadline,
            queued: deadline,
            state,
        });
        self.timers.push(Reverse((deadline, key, self.next_id)));
    }

    fn on_event(&mut self, key: usize, event: &mio::event::Event) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // An edge for the direction the connection does not wait on needs no syscall.
        let relevant = match conn.state {
            State::Reading(_) | State::Draining { .. } => {
                event.is_readable() || event.is_read_closed() || event.is_error()
            }
            State::Writing { .. } => event.is_writable() || event.is_write_closed() || event.is_error(),
        };
        if !relevant {
            return;
        }
        let verdict = advance(conn, &mut self.buf, self.config);
        match verdict {
            Verdict::Keep => {
                // The deadline may have moved earlier (draining): queue it.
                if conn.deadline < conn.queued {
                    conn.queued = conn.deadline;
                    self.timers.push(Reverse((conn.deadline, key, conn.id)));
                }
            }
            Verdict::Close => self.close(key),
            Verdict::Fail(e) => {
                report(&e);
                self.close(key);
            }
        }
    }

    /// Closes connections whose deadline passed; requeues those that were active since.
    fn expire(&mut self, now: Instant) {
        while let Some(Reverse((t, key, id))) = self.timers.peek().copied() {
            if t > now {
                return;
            }
            self.timers.pop();
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.id != id || conn.queued != t {
                continue;
            }
            if conn.deadline > now {
                conn.queued = conn.deadline;
                self.timers.push(Reverse((conn.deadline, key, id)));
                continue;
            }
            if matches!(conn.state, State::Reading(_) | State::Writing { .. }) {
                let fd = conn.stream.as_raw_fd();
                let step = if matches!(conn.state, State::Reading(_)) {
                    Step::Read
                } else {
                    Step::Write
                };
                let err = io::Error::from(io::ErrorKind::TimedOut);
                report(&fail_within(
                    &self.config.tracer,
                    step,
                    fd,
                    &conn.peer,
                    err,
                    self.config.idle_timeout,
                ));
            }
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(conn) = self.conns.try_remove(key) {
            close(conn.stream, &self.config.tracer);
        }
    }
}

/// Moves a connection as far as its socket allows.
fn advance(conn: &mut Conn, buf: &mut [u8], config: &Config) -> Verdict {
    let tracer = &config.tracer;
    let fd = conn.stream.as_raw_fd();
    let fail = |step, e| Verdict::Fail(fail_within(tracer, step, fd, &conn.peer, e, config.idle_timeout));
    loop {
        match &mut conn.state {
            State::Reading(request) => {
                let (progress, eof) = match read_some(&mut conn.stream, buf, tracer) {
                    Ok(None) => return Verdict::Keep,
                    Ok(Some(0)) => (request.finish(), true),
                    Ok(Some(n)) => (request.feed(&buf[..n]), false),
                    Err(e) => return fail(Step::Read, e),
                };
                conn.deadline = Instant::now() + config.idle_timeout;
                match progress {
                    Progress::NeedMore => {}
                    Progress::Reply(reply) | Progress::TooLong(reply) => {
                        conn.state = State::Writing {
                            reply,
                            sent: 0,
                            drain_after: true,
                            saw_eof: eof,
                        };
                    }
                    Progress::Done => return Verdict::Close,
                }
            }
            State::Writing {
                reply,
                sent,
                drain_after,
                saw_eof,
            } => {
                match write_some(&mut conn.stream, &reply[*sent..], tracer) {
                    Ok(n) => *sent += n,
                    Err(e) => return fail(Step::Write, e),
                }
                if *sent < reply.len() {
                    return Verdict::Keep;
                }
                if !*drain_after {
                    match after_greeting(&conn.stream, conn.peer, tracer) {
                        Ok(Some(draining)) => {
                            conn.state = draining;
                            conn.deadline = Instant::now() + DRAIN_TIME;
                            continue;
                        }
                        Ok(None) => return Verdict::Close,
                        Err(e) => return Verdict::Fail(e),
                    }
                }
                match shutdown_write(&conn.stream, conn.peer, tracer) {
                    Ok(true) => {}
                    // The client hung up without waiting for the reply: nothing to drain
                    // and nothing worth reporting.
                    Ok(false) => return Verdict::Close,
                    Err(e) => return Verdict::Fail(e),
                }
                if *saw_eof {
                    return Verdict::Close;
                }
                conn.state = State::Draining { left: DRAIN_BYTES };
                conn.deadline = Instant::now() + DRAIN_TIME;
            }
            State::Draining { left } => match read_some(&mut conn.stream, buf, tracer) {
                Ok(None) => return Verdict::Keep,
                Ok(Some(0)) | Err(_) => return Verdict::Close,
                Ok(Some(n)) => {
                    *left = left.saturating_sub(n);
                    if *left == 0 {
                        return Verdict::Close;
                    }
                }
            },
        }
    }
}

/// Switches the listening socket between blocking (`accept()` sleeps, nothing is
/// registered) and non-blocking (`epoll_wait()` sleeps): one `fcntl(2)`, only when the
/// loop changes mode.
fn set_blocking(l: &mio::net::TcpListener, blocking: bool, local: SocketAddr) -> Result<(), Error> {
    SockRef::from(l)
        .set_nonblocking(!blocking)
        .map_err(|e| Error::new(Step::Setsockopt, local, e))
}

/// After the whole greeting is written: half-close, then `None` when the connection can
/// simply be closed, or the draining state when the client sent something (closing with
/// unread input would send RST and could destroy the greeting).
fn after_greeting(stream: &TcpStream, peer: SocketAddr, tracer: &Tracer) -> Result<Option<State>, Error> {
    // The half-close comes first: the client sees the end of the greeting at once, and the
    // check below and close() are off its path (measured: cheaper, too, than checking
    // first and closing).
    if !shutdown_write(stream, peer, tracer)? {
        return Ok(None);
    }
    if !input_waiting(stream.as_raw_fd(), tracer) {
        return Ok(None);
    }
    Ok(Some(State::Draining { left: DRAIN_BYTES }))
}

/// One non-blocking `read(2)`: `Ok(None)` when nothing is ready.
fn read_some(stream: &mut TcpStream, buf: &mut [u8], tracer: &Tracer) -> io::Result<Option<usize>> {
    loop {
        match stream.read(buf) {
            Ok(n) => {
                if tracer.on() {
                    tracer.emit(Event::Read {
                        fd: stream.as_raw_fd(),
                        data: &buf[..n],
                    });
                }
                return Ok(Some(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Non-blocking [`send_more`] until done or the socket buffer is full; returns bytes sent.
/// Every caller half-closes once the whole reply is sent, which pushes the held tail out.
fn write_some(stream: &mut TcpStream, bytes: &[u8], tracer: &Tracer) -> io::Result<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        match send_more(stream, &bytes[sent..], tracer) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// `close(2)`, traced. Closing also removes the socket from the epoll set.
fn close(stream: TcpStream, tracer: &Tracer) {
    let fd = stream.as_raw_fd();
    drop(stream);
    if tracer.on() {
        tracer.emit(Event::Close { fd });
    }
}
