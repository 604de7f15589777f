//! Untraced, non-blocking socket calls for the load generator (`hello-load`), which makes
//! tens of thousands of connections a second from an epoll loop: a trace line per call
//! would be unreadable and is not offered, so these calls skip even the one branch a
//! tracer that is off costs. Each helper is still named after the call it makes, and
//! lives here because every system call of the project does (ARCHITECTURE.md).

use std::io::{self, Read as _};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// A server's address, converted once into the form `connect(2)` takes, so that each of
/// many connections does not convert it again.
#[derive(Debug, Clone)]
pub struct Peer {
    addr: SockAddr,
    domain: Domain,
}

impl Peer {
    /// The peer at `addr`.
    pub fn new(addr: SocketAddr) -> Peer {
        Peer {
            addr: SockAddr::from(addr),
            domain: Domain::for_address(addr),
        }
    }
}

/// A non-blocking socket, closed (`close(2)`) when dropped.
#[derive(Debug)]
pub struct Conn(Socket);

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Whether a call on a non-blocking socket only said "not yet" (EAGAIN, or EINPROGRESS
/// from `connect(2)`): wait for readiness and call again.
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::EINPROGRESS)
}

impl Conn {
    /// `socket(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)` (one call: no `fcntl()`), then
    /// `connect(2)`. The handshake usually goes on after the call returns (EINPROGRESS,
    /// which is not an error here): the socket becomes writable once connected, and a
    /// failed connect shows as an error on the next call, or in [`Conn::take_error`].
    pub fn connect_tcp(peer: &Peer) -> io::Result<Conn> {
        Conn::connect(peer, Type::STREAM, Protocol::TCP)
    }

    /// `socket(SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC)`, then `connect(2)` (no packet is
    /// sent; the kernel delivers only the peer's datagrams, and an ICMP "port
    /// unreachable" comes back as ECONNREFUSED on the next call).
    pub fn connect_udp(peer: &Peer) -> io::Result<Conn> {
        Conn::connect(peer, Type::DGRAM, Protocol::UDP)
    }

    fn connect(peer: &Peer, ty: Type, proto: Protocol) -> io::Result<Conn> {
        let s = Socket::new(peer.domain, ty.nonblocking(), Some(proto))?;
        match s.connect(&peer.addr) {
            Ok(()) => Ok(Conn(s)),
            Err(e) if would_block(&e) => Ok(Conn(s)),
            Err(e) => Err(e),
        }
    }

    /// `read(2)` (as `recv(2)` with no flags): 0 is end of stream; EAGAIN is "nothing yet".
    /// Interrupted calls are made again.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.0).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                got => return got,
            }
        }
    }

    /// `send(2)` with `MSG_NOSIGNAL` (a peer that is gone is EPIPE, not a SIGPIPE).
    /// Interrupted calls are made again.
    pub fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        loop {
            match self.0.send_with_flags(bytes, libc::MSG_NOSIGNAL) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                sent => return sent,
            }
        }
    }

    /// `shutdown(SHUT_WR)`: the peer sees end of stream; reading goes on.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }

    /// `getsockopt(SO_ERROR)`: why a non-blocking connect failed, if it did.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.take_error()
    }
}

/// A timer whose expiry makes its descriptor readable (`timerfd_create(2)`), to wake an
/// epoll loop at a precise instant: `epoll_wait()`'s own timeout counts whole
/// milliseconds, too coarse to start exchanges on a schedule of a few hundred
/// microseconds. Closed when dropped.
#[derive(Debug)]
pub struct Timer(OwnedFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Timer {
    /// `timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)`, disarmed.
    pub fn new() -> io::Result<Timer> {
        // SAFETY: timerfd_create(2) takes no pointers; a descriptor it returns is new and
        // owned by nobody else.
        let fd =
            unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above: `fd` is open and ours alone.
        Ok(Timer(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// `timerfd_settime(2)`: expire once, `after` from now (a zero `after` would disarm
    /// the timer, so it is made a nanosecond). Setting it again replaces the expiry, and
    /// each expiry wakes an edge-triggered epoll anew: the count need never be read.
    pub fn set(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(after.subsec_nanos()),
            },
        };
        // SAFETY: `spec` is a valid itimerspec for the whole call; the old value is not asked for.
        if unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::net::{TcpListener, UdpSocket};
    use std::time::{Duration, Instant};

    /// Calls `f` until it stops saying "not yet", for at most 5 s.
    fn until_ready<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match f() {
                Err(e) if would_block(&e) && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                got => return got,
            }
        }
    }

    #[test]
    fn a_tcp_exchange_without_blocking() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Conn::connect_tcp(&Peer::new(l.local_addr().unwrap())).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 16];
        let e = c.read(&mut buf).unwrap_err();
        assert!(would_block(&e), "{e}");
        assert_eq!(until_ready(|| c.send(b"ping")).unwrap(), 4);
        c.shutdown_write().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut got).unwrap();
        assert_eq!(got, b"ping");
        s.write_all(b"pong").unwrap();
        drop(s);
        assert_eq!(until_ready(|| c.read(&mut buf)).unwrap(), 4);
        assert_eq!(until_ready(|| c.read(&mut buf)).unwrap(), 0, "end of stream");
        assert!(c.take_error().unwrap().is_none());
    }

    #[test]
    fn a_refused_connect_shows_in_the_next_call_or_so_error() {
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let refused = match Conn::connect_tcp(&Peer::new(addr)) {
            Err(e) => e,
            Ok(c) => match until_ready(|| c.read(&mut [0u8; 4])) {
                Err(e) => e,
                Ok(n) => panic!("read {n} bytes from a closed port"),
            },
        };
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused, "{refused}");
    }

    #[test]
    fn a_timer_makes_its_descriptor_readable_when_it_expires() {
        let t = Timer::new().unwrap();
        let readable = |limit_ms| {
            let mut pfd = libc::pollfd {
                fd: t.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the whole call.
            unsafe { libc::poll(&mut pfd, 1, limit_ms) == 1 }
        };
        assert!(!readable(0), "disarmed");
        let t0 = Instant::now();
        t.set(Duration::from_millis(20)).unwrap();
        assert!(!readable(5), "not before its time");
        assert!(readable(1000), "expired");
        assert!(t0.elapsed() >= Duration::from_millis(20), "{:?}", t0.elapsed());
        t.set(Duration::ZERO).unwrap();
        assert!(readable(1000), "a zero delay is at once, not disarmed");
    }

    #[test]
    fn a_udp_exchange_without_blocking() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = Conn::connect_udp(&Peer::new(server.local_addr().unwrap())).unwrap();
        assert_eq!(c.send(b"x").unwrap(), 1);
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"x");
        server.send_to(b"yz", from).unwrap();
        assert_eq!(until_ready(|| c.read(&mut buf)).unwrap(), 2);
        assert_eq!(&buf[..2], b"yz");
    }
}
