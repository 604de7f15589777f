//! The socket calls of the textbook flow, made with socket2 and handed back as std types.
//! Each helper traces every call it makes and tags every failure with its [`Step`].

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use crate::error::{Cause, Error, Result, Step};
use crate::trace::{Event, Family, Kind, Tracer};

/// Records a failed call on the trace and turns it into a step-tagged [`Error`].
pub fn fail(tracer: &Tracer, step: Step, fd: Option<i32>, target: &SocketAddr, err: io::Error) -> Error {
    trace_failure(tracer, step, fd, target, &err);
    Error::new(step, target, err)
}

/// [`fail`] for a call bounded in time (`SO_RCVTIMEO`/`SO_SNDTIMEO`, a connect timeout, a
/// deadline): giving up (EAGAIN, ETIMEDOUT) is reported as `timed out after LIMIT`.
pub fn fail_within(
    tracer: &Tracer,
    step: Step,
    fd: i32,
    target: &SocketAddr,
    err: io::Error,
    limit: Duration,
) -> Error {
    if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
        trace_failure(tracer, step, Some(fd), target, &err);
        Error::new(step, target, Cause::TimedOut(limit))
    } else {
        fail(tracer, step, Some(fd), target, err)
    }
}

/// The peer closed or reset the connection (ENOTCONN, ECONNRESET, EPIPE): sending more is
/// pointless, but what it sent before may still be read.
pub fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotConnected | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// One `send(2)` with `MSG_MORE` (and `MSG_NOSIGNAL`), traced when it succeeds: for a
/// reply that a `shutdown(SHUT_WR)` or `close()` follows at once. Full segments leave at
/// once; the short tail (all of a small reply) waits in the socket for the FIN, and both
/// leave in one segment: one packet fewer per connection, and the peer wakes once for
/// reply and end of stream instead of twice. The caller must send the FIN promptly, as
/// nothing else pushes the tail out.
pub fn send_more<S: AsFd>(socket: &S, bytes: &[u8], tracer: &Tracer) -> io::Result<usize> {
    let n = SockRef::from(socket).send_with_flags(bytes, libc::MSG_MORE | libc::MSG_NOSIGNAL)?;
    if tracer.on() {
        tracer.emit(Event::SendMore {
            fd: socket.as_fd().as_raw_fd(),
            data: &bytes[..n],
        });
    }
    Ok(n)
}

fn trace_failure(tracer: &Tracer, step: Step, fd: Option<i32>, target: &SocketAddr, err: &io::Error) {
    if tracer.on() {
        match (step, fd) {
            // The calls that take the address show it, as the successful ones do.
            (Step::Bind | Step::Connect, Some(fd)) => tracer.emit(Event::FailedAt {
                step,
                fd,
                addr: *target,
                err,
            }),
            _ => tracer.emit(Event::Failed { step, fd, err }),
        }
    }
}

/// `socket(2)` for `addr`'s family.
fn socket(addr: &SocketAddr, kind: Kind, tracer: &Tracer) -> Result<Socket> {
    let (ty, proto) = match kind {
        Kind::Stream => (Type::STREAM, Protocol::TCP),
        Kind::Dgram => (Type::DGRAM, Protocol::UDP),
    };
    let s = Socket::new(Domain::for_address(*addr), ty, Some(proto))
        .map_err(|e| fail(tracer, Step::Socket, None, addr, e))?;
    if tracer.on() {
        tracer.emit(Event::Socket {
            family: Family::of(addr),
            kind,
            fd: s.as_raw_fd(),
        });
    }
    Ok(s)
}

/// `setsockopt(SO_REUSEADDR)`, `setsockopt(IPV6_V6ONLY, 0)` for `::`, then `bind(2)`, and
/// `getsockname(2)` when the kernel chose the port. Returns the address bound.
fn bind(s: &Socket, addr: &SocketAddr, tracer: &Tracer) -> Result<SocketAddr> {
    let fd = s.as_raw_fd();
    s.set_reuse_address(true)
        .map_err(|e| fail(tracer, Step::Setsockopt, Some(fd), addr, e))?;
    if tracer.on() {
        tracer.emit(Event::ReuseAddr { fd });
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // `::` is dual-stack whatever net.ipv6.bindv6only says (SPEC §1).
        s.set_only_v6(false)
            .map_err(|e| fail(tracer, Step::Setsockopt, Some(fd), addr, e))?;
        if tracer.on() {
            tracer.emit(Event::DualStack { fd });
        }
    }
    s.bind(&SockAddr::from(*addr))
        .map_err(|e| fail(tracer, Step::Bind, Some(fd), addr, e))?;
    if tracer.on() {
        tracer.emit(Event::Bind { fd, addr: *addr });
    }
    if addr.port() != 0 {
        return Ok(*addr);
    }
    let bound = local_addr(s).map_err(|e| fail(tracer, Step::Getsockname, Some(fd), addr, e))?;
    if tracer.on() {
        tracer.emit(Event::BoundPort { fd, addr: bound });
    }
    Ok(bound)
}

fn local_addr(s: &Socket) -> io::Result<SocketAddr> {
    s.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an internet socket address"))
}

/// The server's set-up: `socket()` → `setsockopt(SO_REUSEADDR)` → `bind()` →
/// `listen(backlog)`. The kernel caps `backlog` at `net.core.somaxconn`.
pub fn listen_tcp(addr: SocketAddr, backlog: i32, tracer: &Tracer) -> Result<TcpListener> {
    let s = socket(&addr, Kind::Stream, tracer)?;
    let bound = bind(&s, &addr, tracer)?;
    let fd = s.as_raw_fd();
    s.listen(backlog)
        .map_err(|e| fail(tracer, Step::Listen, Some(fd), &bound, e))?;
    if tracer.on() {
        tracer.emit(Event::Listen { fd, backlog });
    }
    Ok(TcpListener::from(s))
}

/// A UDP server socket: `socket(SOCK_DGRAM)` → `setsockopt(SO_REUSEADDR)` → `bind()`.
pub fn bind_udp(addr: SocketAddr, tracer: &Tracer) -> Result<UdpSocket> {
    let s = socket(&addr, Kind::Dgram, tracer)?;
    bind(&s, &addr, tracer)?;
    Ok(UdpSocket::from(s))
}

/// The client's set-up: `socket()` → `connect()` bounded by `timeout`, then
/// `getsockname()` to learn the address and ephemeral port the kernel chose.
pub fn connect_tcp(addr: SocketAddr, timeout: Duration, tracer: &Tracer) -> Result<TcpStream> {
    let s = socket(&addr, Kind::Stream, tracer)?;
    let fd = s.as_raw_fd();
    if let Err(e) = s.connect_timeout(&SockAddr::from(addr), timeout) {
        let err = fail_within(tracer, Step::Connect, fd, &addr, e, timeout);
        close(s, tracer);
        return Err(err);
    }
    trace_connected(&s, addr, Kind::Stream, tracer);
    Ok(TcpStream::from(s))
}

/// A connected UDP client: `socket(SOCK_DGRAM)` → `connect()` (no packet is sent; the
/// kernel now delivers only the server's datagrams) → `getsockname()`.
pub fn connect_udp(addr: SocketAddr, tracer: &Tracer) -> Result<UdpSocket> {
    let s = socket(&addr, Kind::Dgram, tracer)?;
    let fd = s.as_raw_fd();
    if let Err(e) = s.connect(&SockAddr::from(addr)) {
        let err = fail(tracer, Step::Connect, Some(fd), &addr, e);
        close(s, tracer);
        return Err(err);
    }
    trace_connected(&s, addr, Kind::Dgram, tracer);
    Ok(UdpSocket::from(s))
}

/// `close(2)` of a socket given up on (a failed `connect()`: the next address, if any,
/// gets a new socket), traced so that the next `socket()` reusing the number is no surprise.
fn close(s: Socket, tracer: &Tracer) {
    let fd = s.as_raw_fd();
    drop(s);
    if tracer.on() {
        tracer.emit(Event::Close { fd });
    }
}

fn trace_connected(s: &Socket, addr: SocketAddr, kind: Kind, tracer: &Tracer) {
    if tracer.on() {
        let fd = s.as_raw_fd();
        tracer.emit(Event::Connect { fd, addr, kind });
        if let Ok(local) = local_addr(s) {
            tracer.emit(Event::Ephemeral { fd, addr: local });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn listen_on_port_zero_gets_a_real_port_and_accepts() {
        let t = Tracer::off();
        let l = listen_tcp("127.0.0.1:0".parse().unwrap(), 16, &t).unwrap();
        let addr = l.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let mut c = connect_tcp(addr, Duration::from_secs(2), &t).unwrap();
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        s.write_all(b"hi").unwrap();
        drop(s);
        let mut got = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hi");
    }

    #[test]
    fn second_bind_reports_bind_step_and_address() {
        let t = Tracer::off();
        let l = listen_tcp("127.0.0.1:0".parse().unwrap(), 16, &t).unwrap();
        let addr = l.local_addr().unwrap();
        let e = listen_tcp(addr, 16, &t).unwrap_err();
        assert_eq!(e.step, Step::Bind);
        assert_eq!(
            e.to_string(),
            format!("bind() error: {addr}: Address already in use (os error 98)")
        );
    }

    #[test]
    fn refused_connect_reports_connect_step() {
        let t = Tracer::off();
        // Bind a port, then close it, so that nothing listens there.
        let addr = listen_tcp("127.0.0.1:0".parse().unwrap(), 1, &t)
            .unwrap()
            .local_addr()
            .unwrap();
        let e = connect_tcp(addr, Duration::from_secs(2), &t).unwrap_err();
        assert_eq!(e.step, Step::Connect);
        assert!(e.to_string().contains("Connection refused"), "{e}");
    }

    #[test]
    fn dual_stack_listener_takes_ipv4_clients() {
        let t = Tracer::off();
        let Ok(l) = listen_tcp("[::]:0".parse().unwrap(), 16, &t) else {
            // Straight to stderr: libtest captures only the print! family, and a skip must show.
            let _ = std::io::Write::write_all(&mut std::io::stderr(), b"SKIP: no IPv6 on this machine\n");
            return;
        };
        let port = l.local_addr().unwrap().port();
        let c = connect_tcp(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(2),
            &t,
        );
        assert!(c.is_ok(), "{c:?}");
    }

    #[test]
    fn udp_pair() {
        let t = Tracer::off();
        let s = bind_udp("127.0.0.1:0".parse().unwrap(), &t).unwrap();
        let c = connect_udp(s.local_addr().unwrap(), &t).unwrap();
        c.send(b"x").unwrap();
        let mut buf = [0u8; 8];
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (n, from) = s.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"x"[..], c.local_addr().unwrap()));
    }
}
