//! Setting sockets up: the server's `socket()` → `setsockopt()` → `bind()` → `listen()`,
//! the client's `socket()` → `connect()`, and name resolution. Made with socket2 and
//! handed back as std types or as this module's traced [`Stream`] and [`Dgram`].

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use super::{Dgram, IdleWaits, Stream, Tracer, close, trace_failure, trace_failure_since};
use crate::addr::Host;
use crate::error::{Cause, Error, Result, Step};
use crate::trace::{Event, Family, Kind};

/// Default `listen()` backlog (`--backlog`): the kernel's usual cap (`net.core.somaxconn`).
/// A backlog of 128 overflows at 256 simultaneous connects, and every connection that
/// overflows waits out a 1 s SYN retransmit (docs/contract.md#server-models-and-limits).
pub const DEFAULT_BACKLOG: i32 = 4096;

/// Traces a failed set-up call and turns it into a step-tagged [`Error`] on `target`.
fn fail(tracer: &Tracer, step: Step, fd: Option<i32>, target: SocketAddr, err: io::Error) -> Error {
    trace_failure(tracer, step, fd, Some(target), &err);
    Error::new(step, target, err)
}

/// `socket(2)` for `addr`'s family.
fn socket(addr: SocketAddr, kind: Kind, tracer: &Tracer) -> Result<Socket> {
    let (ty, proto) = match kind {
        Kind::Stream => (Type::STREAM, Protocol::TCP),
        Kind::Dgram => (Type::DGRAM, Protocol::UDP),
    };
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))
        .map_err(|e| fail(tracer, Step::Socket, None, addr, e))?;
    if tracer.on() {
        tracer.emit(Event::Socket {
            family: Family::of(&addr),
            kind,
            fd: s.as_raw_fd(),
        });
    }
    Ok(s)
}

/// `setsockopt(SO_REUSEADDR)`, `setsockopt(SO_REUSEPORT)` for a listener of a set,
/// `setsockopt(IPV6_V6ONLY, 0)` for `::`, then `bind(2)`, and `getsockname(2)` when the
/// kernel chose the port. Returns the address bound.
fn bind(s: &Socket, addr: SocketAddr, kind: Kind, reuse_port: bool, tracer: &Tracer) -> Result<SocketAddr> {
    let fd = s.as_raw_fd();
    s.set_reuse_address(true)
        .map_err(|e| fail(tracer, Step::Setsockopt, Some(fd), addr, e))?;
    if tracer.on() {
        tracer.emit(Event::ReuseAddr { fd, kind });
    }
    if reuse_port {
        s.set_reuse_port(true)
            .map_err(|e| fail(tracer, Step::Setsockopt, Some(fd), addr, e))?;
        if tracer.on() {
            tracer.emit(Event::ReusePort { fd });
        }
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // `::` is dual-stack whatever net.ipv6.bindv6only says (docs/contract.md#the-two-programs).
        s.set_only_v6(false)
            .map_err(|e| fail(tracer, Step::Setsockopt, Some(fd), addr, e))?;
        if tracer.on() {
            tracer.emit(Event::DualStack { fd });
        }
    }
    s.bind(&SockAddr::from(addr))
        .map_err(|e| fail(tracer, Step::Bind, Some(fd), addr, e))?;
    if tracer.on() {
        tracer.emit(Event::Bind { fd, addr });
    }
    if addr.port() != 0 {
        return Ok(addr);
    }
    let bound = local_addr(s).map_err(|e| fail(tracer, Step::Getsockname, Some(fd), addr, e))?;
    if tracer.on() {
        tracer.emit(Event::BoundPort { fd, addr: bound });
    }
    Ok(bound)
}

/// `getsockname(2)` as a std address.
pub(super) fn local_addr(s: &Socket) -> io::Result<SocketAddr> {
    s.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an internet socket address"))
}

/// The server's set-up: `socket()` → `setsockopt(SO_REUSEADDR)` → `bind()` →
/// `listen(backlog)`. The kernel caps `backlog` at `net.core.somaxconn`.
pub fn listen_tcp(addr: SocketAddr, backlog: i32, tracer: &Tracer) -> Result<TcpListener> {
    listen_one(addr, backlog, false, tracer)
}

/// `count` listening sockets on one address, each with `SO_REUSEPORT` set before its
/// `bind()`: the kernel then spreads new connections over them (by a hash of the
/// client's address and port), and each has an accept queue of its own, so each can
/// belong to one worker thread. The first one may ask for port 0; the others take the
/// port the kernel gave it. Only processes of the same user can join the set.
pub fn listen_tcp_reuseport(
    addr: SocketAddr,
    backlog: i32,
    count: usize,
    tracer: &Tracer,
) -> Result<Vec<TcpListener>> {
    let first = listen_one(addr, backlog, true, tracer)?;
    let bound = first
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, addr, e))?;
    let mut all = Vec::with_capacity(count);
    all.push(first);
    for _ in 1..count {
        all.push(listen_one(bound, backlog, true, tracer)?);
    }
    Ok(all)
}

/// `count` descriptors of one listening socket, `listener` the first: the others are
/// `fcntl(F_DUPFD_CLOEXEC)` copies, for workers that share its one accept queue (each
/// watches it with `EPOLLEXCLUSIVE`). The socket closes when its last copy does.
pub fn dup_listener(listener: TcpListener, count: usize, tracer: &Tracer) -> Result<Vec<TcpListener>> {
    let fd = listener.as_raw_fd();
    let local = listener
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, "the listening socket", e))?;
    let mut all = Vec::with_capacity(count.max(1));
    for _ in 1..count {
        let copy = listener
            .try_clone()
            .map_err(|e| fail(tracer, Step::Fcntl, Some(fd), local, e))?;
        if tracer.on() {
            tracer.emit(Event::DupListener {
                fd,
                copy: copy.as_raw_fd(),
            });
        }
        all.push(copy);
    }
    all.insert(0, listener);
    Ok(all)
}

fn listen_one(addr: SocketAddr, backlog: i32, reuse_port: bool, tracer: &Tracer) -> Result<TcpListener> {
    let s = socket(addr, Kind::Stream, tracer)?;
    let bound = bind(&s, addr, Kind::Stream, reuse_port, tracer)?;
    let fd = s.as_raw_fd();
    s.listen(backlog)
        .map_err(|e| fail(tracer, Step::Listen, Some(fd), bound, e))?;
    if tracer.on() {
        tracer.emit(Event::Listen { fd, backlog });
    }
    Ok(TcpListener::from(s))
}

/// `setsockopt(SO_RCVTIMEO)` on a listening socket: a blocking `accept()` gives up
/// (EAGAIN) after `limit`, so the server can look for a stop now and then without being
/// woken from outside.
pub fn set_accept_timeout(listener: &TcpListener, limit: Duration, tracer: &Tracer) -> io::Result<()> {
    let fd = listener.as_raw_fd();
    match SockRef::from(listener).set_read_timeout(Some(limit)) {
        Ok(()) => {
            if tracer.on() {
                tracer.emit(Event::AcceptTimeout { fd, limit });
            }
            Ok(())
        }
        Err(e) => {
            trace_failure(tracer, Step::Setsockopt, Some(fd), None, &e);
            Err(e)
        }
    }
}

/// `listen(fd, 0)` on a listening socket, to stop: the kernel completes no more
/// handshakes (new SYNs are dropped, and their clients find the port closed when they
/// retry), while the connections already queued stay there to be accepted.
pub fn stop_listening(listener: &TcpListener, tracer: &Tracer) -> io::Result<()> {
    let fd = listener.as_raw_fd();
    match SockRef::from(listener).listen(0) {
        Ok(()) => {
            if tracer.on() {
                tracer.emit(Event::StopListening { fd });
            }
            Ok(())
        }
        Err(e) => {
            trace_failure(tracer, Step::Listen, Some(fd), None, &e);
            Err(e)
        }
    }
}

/// `poll(2)` for readability (a listening socket: a connection queued) for at most
/// `limit`. Failures and interruptions just end the wait: the caller tries its call. While
/// nobody comes, only the first wait of a quiet spell is traced (see [`IdleWaits`]).
pub fn wait_readable(socket: &impl AsRawFd, limit: Duration, tracer: &Tracer, idle: &mut IdleWaits) {
    let fd = socket.as_raw_fd();
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(limit.as_millis()).unwrap_or(libc::c_int::MAX);
    let began = tracer.begin();
    // SAFETY: `pfd` is one valid pollfd for the whole call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if !tracer.on() || n < 0 {
        return;
    }
    let ready = n > 0;
    if ready {
        idle.client_came(fd, began, tracer);
    } else if !idle.show_poll() {
        return;
    }
    tracer.emit_since(
        began,
        Event::PollListener {
            fd,
            timeout_ms: ms,
            ready,
        },
    );
}

/// `fcntl(F_SETFL)` setting or clearing `O_NONBLOCK` on a listening socket.
pub fn set_nonblocking(listener: &TcpListener, on: bool, tracer: &Tracer) -> io::Result<()> {
    let fd = listener.as_raw_fd();
    match SockRef::from(listener).set_nonblocking(on) {
        Ok(()) => {
            if tracer.on() {
                tracer.emit(Event::NonBlocking { fd, on });
            }
            Ok(())
        }
        Err(e) => {
            trace_failure(tracer, Step::Fcntl, Some(fd), None, &e);
            Err(e)
        }
    }
}

/// `fcntl(F_GETFL)`: whether a listening socket is non-blocking (an inherited one may
/// come so). A flag read at start-up, not narrated.
pub fn is_nonblocking(listener: &TcpListener) -> io::Result<bool> {
    SockRef::from(listener).nonblocking()
}

/// A UDP server socket: `socket(SOCK_DGRAM)` → `setsockopt(SO_REUSEADDR)` → `bind()`.
pub fn bind_udp(addr: SocketAddr, tracer: &Tracer) -> Result<Dgram> {
    bind_udp_one(addr, false, tracer).map(|(s, _)| Dgram::new(s.into(), tracer.clone()))
}

/// `count` UDP sockets on one port, each with `SO_REUSEPORT` (the kernel spreads the
/// senders over them by a hash of their addresses): the first binds `addr` (port 0: the
/// kernel's choice), the others the address it got. Socket `n` (from 1) traces its
/// calls as worker `n`, `server#n`.
pub fn bind_udp_reuseport(addr: SocketAddr, count: usize, tracer: &Tracer) -> Result<Vec<Dgram>> {
    let (first, bound) = bind_udp_one(addr, true, tracer)?;
    let mut all = vec![Dgram::new(first.into(), tracer.for_worker(1))];
    for n in 2..=count {
        let (s, _) = bind_udp_one(bound, true, tracer)?;
        all.push(Dgram::new(s.into(), tracer.for_worker(n)));
    }
    Ok(all)
}

/// One UDP socket bound to `addr` (with `SO_REUSEPORT` for a set) and its receive
/// buffer asked for; returns it and the address bound.
fn bind_udp_one(addr: SocketAddr, reuse_port: bool, tracer: &Tracer) -> Result<(Socket, SocketAddr)> {
    let s = socket(addr, Kind::Dgram, tracer)?;
    let bound = bind(&s, addr, Kind::Dgram, reuse_port, tracer)?;
    // A burst that outgrows the default buffer (212,992 bytes: some 200 small datagrams,
    // each counted with its bookkeeping) is dropped by the kernel; a failure only leaves
    // the default, and the trace shows it.
    let fd = s.as_raw_fd();
    match s.set_recv_buffer_size(UDP_RECV_BUFFER) {
        Ok(()) if tracer.on() => tracer.emit(Event::RecvBuffer {
            fd,
            bytes: UDP_RECV_BUFFER,
        }),
        Ok(()) => {}
        Err(e) => trace_failure(tracer, Step::Setsockopt, Some(fd), None, &e),
    }
    Ok((s, bound))
}

/// The receive buffer the UDP server asks for: 4 MiB, so that thousands of datagrams in
/// flight wait in the queue instead of being dropped (the kernel caps it at
/// `net.core.rmem_max`, 4 MiB on this machine, 208 KiB on some).
pub const UDP_RECV_BUFFER: usize = 4 << 20;

/// The client's set-up: `socket()` → `connect()` bounded by `timeout`, then
/// `getsockname()` to learn the address and ephemeral port the kernel chose, which is
/// handed back with the stream (`None` if `getsockname()` failed).
pub fn connect_tcp(
    addr: SocketAddr,
    timeout: Duration,
    tracer: &Tracer,
) -> Result<(Stream, Option<SocketAddr>)> {
    let s = socket(addr, Kind::Stream, tracer)?;
    let fd = s.as_raw_fd();
    let began = tracer.begin();
    if let Err(e) = s.connect_timeout(&SockAddr::from(addr), timeout) {
        trace_failure_since(tracer, began, Step::Connect, Some(fd), Some(addr), &e);
        close(s, tracer);
        return Err(Error::new(Step::Connect, addr, Cause::within(e, timeout)));
    }
    let local = connected(&s, addr, Kind::Stream, began, tracer);
    Ok((Stream::new(s.into(), false, tracer.clone()), local))
}

/// A connected UDP client: `socket(SOCK_DGRAM)` → `connect()` (no packet is sent; the
/// kernel now delivers only the server's datagrams) → `getsockname()`, whose address is
/// handed back with the socket.
pub fn connect_udp(addr: SocketAddr, tracer: &Tracer) -> Result<(Dgram, Option<SocketAddr>)> {
    let s = socket(addr, Kind::Dgram, tracer)?;
    let fd = s.as_raw_fd();
    let began = tracer.begin();
    if let Err(e) = s.connect(&SockAddr::from(addr)) {
        let err = fail(tracer, Step::Connect, Some(fd), addr, e);
        close(s, tracer);
        return Err(err);
    }
    let local = connected(&s, addr, Kind::Dgram, began, tracer);
    Ok((Dgram::new(s.into(), tracer.clone()), local))
}

/// The textbook's first UDP client: `socket(SOCK_DGRAM)` and nothing more, no `bind()`
/// and no `connect()`. The kernel gives the socket an address and a port at its first
/// `sendto()` (traced with `getsockname()` after it), and `recvfrom()` takes a datagram
/// from anyone.
pub fn unconnected_udp(server: SocketAddr, tracer: &Tracer) -> Result<Dgram> {
    let s = socket(server, Kind::Dgram, tracer)?;
    Ok(Dgram::unbound(s.into(), tracer.clone()))
}

/// Traces the connect, then makes the `getsockname()` whose line shows the ephemeral port,
/// and returns that address: the one call serves the trace and the caller's report.
fn connected(
    s: &Socket,
    addr: SocketAddr,
    kind: Kind,
    began: super::Began,
    tracer: &Tracer,
) -> Option<SocketAddr> {
    let fd = s.as_raw_fd();
    if tracer.on() {
        tracer.emit_since(began, Event::Connect { fd, addr, kind });
    }
    let local = local_addr(s).ok();
    if let (true, Some(local)) = (tracer.on(), local) {
        tracer.emit(Event::Ephemeral { fd, addr: local });
    }
    local
}

/// Every address of `host` (`getaddrinfo(3)` for a name; a literal needs no call).
pub fn resolve(host: &Host, port: u16) -> Result<Vec<SocketAddr>> {
    if let Some(ip) = host.ip() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let target = host.with_port(port);
    let addrs: Vec<SocketAddr> = (host.name(), port)
        .to_socket_addrs()
        .map_err(|e| Error::new(Step::Resolve, &target, e))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::new(Step::Resolve, &target, Cause::NoAddress));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn listen_on_port_zero_gets_a_real_port_and_accepts() {
        let t = Tracer::off();
        let l = listen_tcp(loopback(), 16, &t).unwrap();
        let addr = l.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let (c, local) = connect_tcp(addr, Duration::from_secs(2), &t).unwrap();
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(peer.port(), c.local_port());
        assert_eq!(
            Some(peer),
            local,
            "the local address handed back is the one the server sees"
        );
        std::io::Write::write_all(&mut s, b"hi").unwrap();
        drop(s);
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut got = [0u8; 8];
        assert_eq!(c.read(&mut got).unwrap(), 2);
        assert_eq!(&got[..2], b"hi");
        assert_eq!(c.read(&mut got).unwrap(), 0);
    }

    #[test]
    fn second_bind_reports_bind_step_and_address() {
        let t = Tracer::off();
        let l = listen_tcp(loopback(), 16, &t).unwrap();
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
        let addr = listen_tcp(loopback(), 1, &t).unwrap().local_addr().unwrap();
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
        let s = bind_udp(loopback(), &t).unwrap();
        let (c, local) = connect_udp(s.local_addr().unwrap(), &t).unwrap();
        assert_eq!(local, Some(c.local_addr().unwrap()));
        c.send_to(b"x", s.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (n, from) = s.recv_from(&mut buf).unwrap().unwrap();
        assert_eq!((&buf[..n], from), (&b"x"[..], c.local_addr().unwrap()));
    }

    #[test]
    fn literals_resolve_without_a_lookup_and_localhost_to_loopback() {
        let v = resolve(&Host::parse("::1").unwrap(), 7).unwrap();
        assert_eq!(v, vec!["[::1]:7".parse().unwrap()]);
        // `localhost` is answered from /etc/hosts: no query leaves the machine.
        let v = resolve(&Host::parse("localhost").unwrap(), 9).unwrap();
        assert!(v.iter().all(|a| a.ip().is_loopback()), "{v:?}");
    }
}
