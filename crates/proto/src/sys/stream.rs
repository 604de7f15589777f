//! A connected TCP socket whose every call is traced: the server's accepted connections
//! and the client's connection. Also `accept4(2)`, which makes them, and the reset the
//! blocking server models use to end an exchange that outlived the stop's grace.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use socket2::{SockAddr, SockRef};

use super::{Began, IdleWaits, Tracer, close, trace_failure, trace_failure_since};
use crate::error::Step;
use crate::trace::{Event, Timeout};

/// How many bytes the unread-input check takes: enough to tell whether anything waits.
const UNREAD_PROBE: usize = 64;

/// A connected TCP socket. Calls interrupted by a signal (EINTR) are made again; every
/// other result is traced as it happens and handed back.
#[derive(Debug)]
pub struct Stream {
    inner: TcpStream,
    tracer: Tracer,
    /// Made non-blocking by `accept4(SOCK_NONBLOCK)`: EAGAIN then means "wait for
    /// readiness", which is not a failure and is not traced. On a blocking socket EAGAIN
    /// means its `SO_RCVTIMEO`/`SO_SNDTIMEO` ran out, and is.
    nonblocking: bool,
    /// A signal ends a blocking call with EINTR instead of the call being made again
    /// (see [`Stream::wake_on_signal`]).
    interruptible: bool,
}

impl Stream {
    pub(super) fn new(inner: TcpStream, nonblocking: bool, tracer: Tracer) -> Stream {
        Stream {
            inner,
            tracer,
            nonblocking,
            interruptible: false,
        }
    }

    /// From now on a signal that comes while a call waits ends the call with EINTR
    /// (`io::ErrorKind::Interrupted`) instead of it being made again, so that the caller
    /// can look at what the signal set (a stop) and shorten its deadline. A call bounded
    /// by `SO_RCVTIMEO`/`SO_SNDTIMEO` is never restarted by the kernel (signal(7)), which
    /// is what lets a single-threaded process learn of a stop without a thread.
    pub fn wake_on_signal(&mut self) {
        self.interruptible = true;
    }

    /// The descriptor, as the trace shows it.
    pub fn fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// `getsockname(2)`: the local address (a client's ephemeral port).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The local port, or 0 if `getsockname(2)` fails.
    pub fn local_port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    fn failed(&self, began: Began, step: Step, err: &io::Error) {
        if !(self.nonblocking && err.kind() == io::ErrorKind::WouldBlock) {
            trace_failure_since(&self.tracer, began, step, Some(self.fd()), None, err);
        }
    }

    /// Makes `call` until a signal does not interrupt it; traces a failure as `step`, and
    /// hands a success to `traced` (which is called only with the trace on).
    fn made<T>(
        &self,
        step: Step,
        mut call: impl FnMut() -> io::Result<T>,
        traced: impl FnOnce(&Tracer, super::Began, RawFd, &T),
    ) -> io::Result<T> {
        let began = self.tracer.begin();
        loop {
            match call() {
                Ok(v) => {
                    if self.tracer.on() {
                        traced(&self.tracer, began, self.fd(), &v);
                    }
                    return Ok(v);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !self.interruptible => {}
                Err(e) => {
                    self.failed(began, step, &e);
                    return Err(e);
                }
            }
        }
    }

    /// `read(2)`: what arrived, at most `buf.len()` bytes; 0 is end of stream.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let began = self.tracer.begin();
        let n = self.made(Step::Read, || (&self.inner).read(buf), |_, _, _, _| {})?;
        if self.tracer.on() {
            self.tracer.emit_since(
                began,
                Event::Read {
                    fd: self.fd(),
                    data: &buf[..n],
                },
            );
        }
        Ok(n)
    }

    /// `write(2)`, as the textbook client writes its message (std sends with
    /// `MSG_NOSIGNAL`: a peer that is gone is EPIPE, not a SIGPIPE).
    pub fn write(&self, bytes: &[u8]) -> io::Result<usize> {
        self.made(
            Step::Write,
            || (&self.inner).write(bytes),
            |t, began, fd, &n| {
                t.emit_since(
                    began,
                    Event::Write {
                        fd,
                        data: &bytes[..n],
                    },
                )
            },
        )
    }

    /// `send(2)` with `MSG_NOSIGNAL`, and with `MSG_MORE` when `more`: the short tail (all
    /// of a small reply) then waits in the socket for the FIN of the `shutdown()` that
    /// must follow at once, and both leave in one segment — one packet fewer per
    /// connection, and the peer wakes once for reply and end of stream.
    pub fn send(&self, bytes: &[u8], more: bool) -> io::Result<usize> {
        let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
        self.made(
            Step::Write,
            || SockRef::from(&self.inner).send_with_flags(bytes, flags),
            |t, began, fd, &n| {
                let data = &bytes[..n];
                t.emit_since(
                    began,
                    if more {
                        Event::SendMore { fd, data }
                    } else {
                        Event::Write { fd, data }
                    },
                );
            },
        )
    }

    /// `shutdown(SHUT_WR)`: half-close; the peer sees end of stream, reading goes on.
    pub fn shutdown_write(&self) -> io::Result<()> {
        // Stamped before the call: its FIN may be on the wire before it returns.
        let began = self.tracer.begin();
        match self.inner.shutdown(Shutdown::Write) {
            Ok(()) => {
                if self.tracer.on() {
                    self.tracer
                        .emit_since(began, Event::ShutdownWrite { fd: self.fd() });
                }
                Ok(())
            }
            Err(e) => {
                self.failed(began, Step::Shutdown, &e);
                Err(e)
            }
        }
    }

    /// `recv(MSG_DONTWAIT)` once, after the reply: did the client send anything that was
    /// never read? `Ok(0)`: it half-closed; `Ok(n)`: n bytes were waiting (and are read
    /// away); EAGAIN: nothing. Never blocks, whatever the socket's mode.
    pub fn check_unread(&self) -> io::Result<usize> {
        let mut buf = [0u8; UNREAD_PROBE];
        let fd = self.fd();
        loop {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call,
            // and recv(2) writes at most that many.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if let Ok(n) = usize::try_from(n) {
                if self.tracer.on() {
                    self.tracer.emit(Event::Unread {
                        fd,
                        data: Some(&buf[..n]),
                    });
                }
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock if self.tracer.on() => {
                    self.tracer.emit(Event::Unread { fd, data: None })
                }
                io::ErrorKind::WouldBlock => {}
                _ => trace_failure(&self.tracer, Step::Read, Some(fd), None, &e),
            }
            return Err(e);
        }
    }

    /// `setsockopt(SO_RCVTIMEO)`: a blocking `read()` gives up (EAGAIN) after `limit`.
    pub fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        let set = self.inner.set_read_timeout(limit);
        self.trace_timeout(Timeout::Receive, limit, &set);
        set
    }

    /// `setsockopt(SO_SNDTIMEO)`: a blocking `send()` gives up (EAGAIN) after `limit`.
    pub fn set_write_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        let set = self.inner.set_write_timeout(limit);
        self.trace_timeout(Timeout::Send, limit, &set);
        set
    }

    fn trace_timeout(&self, which: Timeout, limit: Option<Duration>, set: &io::Result<()>) {
        match set {
            Ok(()) if self.tracer.on() => self.tracer.emit(Event::SocketTimeout {
                fd: self.fd(),
                which,
                limit,
            }),
            Ok(()) => {}
            Err(e) => trace_failure(&self.tracer, Step::Setsockopt, Some(self.fd()), None, e),
        }
    }

    /// A deadline passed while an event loop waited on this socket to `step`: traced as
    /// that call timing out (no call failed; the loop's timer ran out).
    pub fn trace_deadline(&self, step: Step) {
        trace_failure(
            &self.tracer,
            step,
            Some(self.fd()),
            None,
            &io::ErrorKind::TimedOut.into(),
        );
    }

    /// What the PROXY header read on this connection said (no call: the header was read
    /// by the `read()`s traced before).
    pub fn trace_proxy_header(&self, header: &crate::proxy::Header) {
        if self.tracer.on() {
            self.tracer.emit(Event::ProxyHeader {
                fd: self.fd(),
                version: header.version,
                addresses: header.addresses,
            });
        }
    }

    /// `close(2)` of the parent's copy of a client's socket after `fork()`: the child has
    /// the connection; it ends when the child closes its copy too.
    pub fn close_parent_copy(self) {
        let fd = self.fd();
        let tracer = self.tracer.clone();
        drop(self);
        if tracer.on() {
            tracer.emit(Event::CloseCopy { fd, in_child: false });
        }
    }

    /// `close(2)`: with nothing unread, the end of stream (FIN) the peer expects.
    pub fn close(self) {
        close(self.inner, &self.tracer);
    }

    /// `setsockopt(SO_LINGER, {1, 0})`, then `close(2)`: the connection is reset (RST) and
    /// whatever is still unsent is dropped, so the peer can tell a cut-off reply from a
    /// whole one.
    pub fn abort(self) {
        self.linger0();
        self.close();
    }

    /// `setsockopt(SO_LINGER, {1, 0})`: the close that follows resets the connection
    /// (a failure is traced, and the close still comes).
    pub(super) fn linger0(&self) {
        match SockRef::from(&self.inner).set_linger(Some(Duration::ZERO)) {
            Ok(()) => {
                if self.tracer.on() {
                    self.tracer.emit(Event::Linger0 { fd: self.fd() });
                }
            }
            Err(e) => trace_failure(&self.tracer, Step::Setsockopt, Some(self.fd()), None, &e),
        }
    }

    /// The descriptor, handed over: nothing here closes it any more (a close made through
    /// the io_uring ring, which closes it itself).
    pub(super) fn into_fd(self) -> OwnedFd {
        OwnedFd::from(self.inner)
    }

    /// `getpeername(2)`: the client's address, for a socket accepted without it (the
    /// ring's accept asks for a descriptor only).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self.inner.peer_addr() {
            Ok(addr) => {
                if self.tracer.on() {
                    self.tracer.emit(Event::PeerName { fd: self.fd(), addr });
                }
                Ok(addr)
            }
            Err(e) => {
                trace_failure(&self.tracer, Step::Getsockname, Some(self.fd()), None, &e);
                Err(e)
            }
        }
    }
}

/// `accept4(2)`: the next connection of the accept queue, non-blocking or not (a new
/// socket does not inherit the listening socket's mode; asking here saves an `fcntl()`).
/// Every result is traced, EAGAIN too (the accept queue is empty, or a blocking
/// listener's `SO_RCVTIMEO` ran out); classifying a failure is the caller's business.
pub fn accept(
    listener: &TcpListener,
    nonblocking: bool,
    tracer: &Tracer,
) -> io::Result<(Stream, SocketAddr)> {
    accept_counting(listener, nonblocking, tracer, &mut IdleWaits::default())
}

/// [`accept`] in a loop that waits for its next client: a blocking listener's waits with
/// nobody coming are shown once and then counted in `idle` (see [`IdleWaits`]).
pub fn accept_counting(
    listener: &TcpListener,
    nonblocking: bool,
    tracer: &Tracer,
    idle: &mut IdleWaits,
) -> io::Result<(Stream, SocketAddr)> {
    let lfd = listener.as_raw_fd();
    let began = tracer.begin();
    let flags = libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: `try_init` hands over storage of its length, which accept4(2) fills with at
    // most that many bytes and the length it wrote; the descriptor it returns is new and
    // owned by nobody else.
    let accepted = unsafe {
        SockAddr::try_init(
            |storage, len| match libc::accept4(lfd, storage.cast(), len, flags) {
                -1 => Err(io::Error::last_os_error()),
                fd => Ok(TcpStream::from_raw_fd(fd)),
            },
        )
    };
    let (stream, peer) = match accepted {
        Ok((stream, addr)) => (stream, addr.as_socket()),
        Err(e) => {
            if e.kind() != io::ErrorKind::WouldBlock {
                trace_failure_since(tracer, began, Step::Accept, Some(lfd), None, &e);
            } else if tracer.on() {
                let blocking = listener_blocking(listener);
                if idle.show_empty(blocking) {
                    tracer.emit_since(
                        began,
                        Event::AcceptEmpty {
                            listener: lfd,
                            blocking,
                        },
                    );
                }
            }
            return Err(e);
        }
    };
    idle.client_came(lfd, began, tracer);
    // A TCP listener's peers are internet addresses; anything else is not a client.
    let peer = peer.ok_or_else(|| io::Error::other("accept() returned no internet address"))?;
    if tracer.on() {
        tracer.emit_since(
            began,
            Event::Accept {
                listener: lfd,
                fd: stream.as_raw_fd(),
                peer,
            },
        );
    }
    Ok((Stream::new(stream, nonblocking, tracer.clone()), peer))
}

/// Whether the listening socket is in blocking mode (`fcntl(F_GETFL)`; asked only to word
/// the trace).
fn listener_blocking(listener: &TcpListener) -> bool {
    SockRef::from(listener).nonblocking().is_ok_and(|nb| !nb)
}

/// `connect(fd, AF_UNSPEC)`, called from another thread: resets the connection (RST),
/// drops what is unsent, and wakes a thread blocked in `read()` or `send()` on it, which
/// then fails. This is how the blocking server models end an exchange that outlived the
/// stop's grace. Where the kernel refuses it (some 6.6 kernels, with EBUSY, while a thread
/// waits), `shutdown(SHUT_RDWR)` wakes the thread instead; it then aborts the connection.
///
/// The caller must keep `fd` open for the whole call (the server's in-flight registry
/// does: a connection leaves it before it is closed).
pub fn interrupt(fd: RawFd, tracer: &Tracer) {
    let unspec = libc::sockaddr {
        sa_family: libc::AF_UNSPEC as libc::sa_family_t,
        sa_data: [0; 14],
    };
    let len = std::mem::size_of::<libc::sockaddr>() as libc::socklen_t;
    // SAFETY: `unspec` is a valid sockaddr of `len` bytes for the whole call.
    if unsafe { libc::connect(fd, &unspec, len) } == 0 {
        if tracer.on() {
            tracer.emit(Event::Disconnect { fd });
        }
        return;
    }
    trace_failure(tracer, Step::Connect, Some(fd), None, &io::Error::last_os_error());
    // SAFETY: shutdown(2) takes no pointers.
    if unsafe { libc::shutdown(fd, libc::SHUT_RDWR) } == 0 {
        if tracer.on() {
            tracer.emit(Event::ShutdownBoth { fd });
        }
    } else {
        trace_failure(
            tracer,
            Step::Shutdown,
            Some(fd),
            None,
            &io::Error::last_os_error(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::thread;

    fn pair(nonblocking: bool) -> (Stream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = accept(&l, nonblocking, &Tracer::off()).unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        (s, c)
    }

    #[test]
    fn accept_makes_the_socket_in_the_mode_asked_for() {
        let (s, _c) = pair(true);
        let e = s.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let (s, _c) = pair(false);
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let e = s.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "a blocking read times out");
    }

    #[test]
    fn unread_check_tells_nothing_data_and_eof_apart() {
        let (s, mut c) = pair(false);
        assert_eq!(s.check_unread().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        c.write_all(b"hi").unwrap();
        c.flush().unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(5);
        let n = loop {
            match s.check_unread() {
                Ok(n) => break n,
                Err(_) if std::time::Instant::now() < until => thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(n, 2);
        c.shutdown(Shutdown::Write).unwrap();
        let n = loop {
            match s.check_unread() {
                Ok(n) => break n,
                Err(_) if std::time::Instant::now() < until => thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(n, 0);
    }

    #[test]
    fn abort_resets_and_close_ends_cleanly() {
        let (s, mut c) = pair(false);
        s.send(b"part", false).unwrap();
        s.abort();
        let mut buf = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let e = c.read_to_end(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);

        let (s, mut c) = pair(false);
        s.send(b"whole", true).unwrap();
        s.shutdown_write().unwrap();
        s.close();
        let mut buf = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"whole");
    }

    #[test]
    fn interrupt_wakes_a_blocked_read_and_resets_the_peer() {
        let (s, mut c) = pair(false);
        let fd = s.fd();
        let reader = thread::spawn(move || s.read(&mut [0u8; 16]));
        // The reader may not be blocked yet; the interrupt works either way: a read after
        // it fails at once.
        thread::sleep(Duration::from_millis(50));
        interrupt(fd, &Tracer::off());
        let got = reader.join().unwrap();
        assert!(got.is_err() || got.as_ref().is_ok_and(|n| *n == 0), "{got:?}");
        let mut buf = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(c.read_to_end(&mut buf).is_err(), "the peer sees a reset");
    }
}
