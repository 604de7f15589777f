//! The textbook's own programs' calls (`--textbook`), made as `hello_server.c`,
//! `hello_client.c`, the echo and the UDP programs make them: plain `socket(PF_INET, …, 0)`,
//! `bind()`, `listen()`, `accept()` (not `accept4()`), `connect()`, `read()`, `write()`,
//! `sendto()`, `recvfrom()` and `close()`, on blocking IPv4 sockets with no option set —
//! no `SOCK_CLOEXEC`, no `setsockopt()`, no time limit, no retry on `EINTR`. Each call
//! is traced with the line of the C program that makes it (`src`), so the trace is the
//! program read call by call; `tests/tests/textbook.rs` compares these calls with the C
//! programs' under strace.
//!
//! A failed call is the step-tagged [`Error`] the programs print on one line and exit 1
//! with, as the textbook's `error_handling("bind() error")` does.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::SockAddr;

use super::{Tracer, trace_failure_since};
use crate::error::{Error, Result, Step};
use crate::trace::{Event, Family, Kind};

/// A blocking IPv4 socket made by [`socket`]: closed by [`close`] (traced) or, on an
/// error's way out, when dropped (as the C program's `exit(1)` closes it).
#[derive(Debug)]
pub struct Sock(OwnedFd);

impl AsRawFd for Sock {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A `struct sockaddr_in` and its length, as the C programs pass them to `accept()`,
/// `recvfrom()` and `getsockname()` (`sizeof(clnt_addr)`: 16 bytes, not a
/// `sockaddr_storage`).
struct SockaddrIn {
    sin: libc::sockaddr_in,
    len: libc::socklen_t,
}

impl SockaddrIn {
    fn new() -> SockaddrIn {
        SockaddrIn {
            // SAFETY: sockaddr_in is plain integers, for which all zeroes is a value.
            sin: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        }
    }

    fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        std::ptr::from_mut(&mut self.sin).cast()
    }

    /// The address the kernel wrote (sockets here are all `PF_INET`).
    fn addr(&self) -> SocketAddr {
        let ip = std::net::Ipv4Addr::from(u32::from_be(self.sin.sin_addr.s_addr));
        SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(self.sin.sin_port)))
    }
}

/// The result of a libc call that returns -1 and sets errno on failure.
fn checked(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Traces a failed call and turns it into the error line's [`Error`] on `target`.
fn failed(
    tracer: &Tracer,
    began: super::Began,
    step: Step,
    fd: Option<RawFd>,
    target: impl std::fmt::Display,
    addr: Option<SocketAddr>,
    err: io::Error,
) -> Error {
    trace_failure_since(tracer, began, step, fd, addr, &err);
    Error::new(step, target, err)
}

/// `socket(PF_INET, SOCK_STREAM or SOCK_DGRAM, 0)`, as the textbook writes it (protocol
/// 0: the kernel picks TCP or UDP), on `src`.
pub fn socket(kind: Kind, src: &str, tracer: &Tracer) -> Result<Sock> {
    let ty = match kind {
        Kind::Stream => libc::SOCK_STREAM,
        Kind::Dgram => libc::SOCK_DGRAM,
    };
    let began = tracer.before("socket", src);
    // SAFETY: socket(2) takes no pointer; a descriptor it returns is new and owned by
    // nobody else.
    let fd = unsafe { checked(libc::socket(libc::AF_INET, ty, 0)) }
        .map_err(|e| failed(tracer, began, Step::Socket, None, "PF_INET", None, e))?;
    // SAFETY: `fd` was just returned by socket(2), so it is open and ours alone.
    let sock = Sock(unsafe { OwnedFd::from_raw_fd(fd) });
    if tracer.on() {
        let event = Event::Socket {
            family: Family::Inet,
            kind,
            fd,
        };
        tracer.emit_from(began, event, src);
    }
    Ok(sock)
}

/// `bind(2)` to `addr` (`htonl(INADDR_ANY)` for 0.0.0.0), on `src`.
pub fn bind(sock: &Sock, addr: SocketAddrV4, src: &str, tracer: &Tracer) -> Result<()> {
    let fd = sock.as_raw_fd();
    let sa = SockAddr::from(addr);
    let began = tracer.before("bind", src);
    // SAFETY: `sa` is a valid sockaddr_in of `sa.len()` bytes, alive for the call.
    unsafe { checked(libc::bind(fd, sa.as_ptr().cast(), sa.len())) }
        .map_err(|e| failed(tracer, began, Step::Bind, Some(fd), addr, Some(addr.into()), e))?;
    if tracer.on() {
        tracer.emit_from(
            began,
            Event::Bind {
                fd,
                addr: addr.into(),
            },
            src,
        );
    }
    Ok(())
}

/// `listen(2)` with `backlog` (the textbook's 5), on `src`.
pub fn listen(sock: &Sock, backlog: i32, at: SocketAddrV4, src: &str, tracer: &Tracer) -> Result<()> {
    let fd = sock.as_raw_fd();
    let began = tracer.before("listen", src);
    // SAFETY: listen(2) takes no pointer.
    unsafe { checked(libc::listen(fd, backlog)) }
        .map_err(|e| failed(tracer, began, Step::Listen, Some(fd), at, None, e))?;
    if tracer.on() {
        tracer.emit_from(began, Event::Listen { fd, backlog }, src);
    }
    Ok(())
}

/// `getsockname(2)` after a bind to port 0: the port the kernel chose, which the start-up
/// line must tell (the tutorial's programs are given a port and never call it). Traced
/// as the added call it is, with the C peer's line `src`.
pub fn getsockname(sock: &Sock, asked: SocketAddrV4, src: &str, tracer: &Tracer) -> Result<SocketAddr> {
    let fd = sock.as_raw_fd();
    let began = tracer.before("getsockname", src);
    let mut sin = SockaddrIn::new();
    // SAFETY: `sin` is a sockaddr_in of the length passed, which getsockname(2) fills.
    unsafe { checked(libc::getsockname(fd, sin.as_mut_ptr(), &mut sin.len)) }
        .map_err(|e| failed(tracer, began, Step::Getsockname, Some(fd), asked, None, e))?;
    let bound = sin.addr();
    if tracer.on() {
        tracer.emit_from(began, Event::BoundPort { fd, addr: bound }, src);
    }
    Ok(bound)
}

/// `accept(2)` — the textbook's, not `accept4()`: blocks until a client is queued, and
/// returns its socket and address, on `src`.
pub fn accept(listener: &Sock, at: SocketAddr, src: &str, tracer: &Tracer) -> Result<(Sock, SocketAddr)> {
    let lfd = listener.as_raw_fd();
    let began = tracer.before("accept", src);
    let mut sin = SockaddrIn::new();
    // SAFETY: `sin` is a sockaddr_in of the length passed, which accept(2) fills.
    let fd = unsafe { checked(libc::accept(lfd, sin.as_mut_ptr(), &mut sin.len)) }
        .map_err(|e| failed(tracer, began, Step::Accept, Some(lfd), at, None, e))?;
    // SAFETY: `fd` was just returned by accept(2), so it is open and ours alone.
    let sock = Sock(unsafe { OwnedFd::from_raw_fd(fd) });
    let peer = sin.addr();
    if tracer.on() {
        let event = Event::Accept {
            listener: lfd,
            fd: sock.as_raw_fd(),
            peer,
        };
        tracer.emit_from(began, event, src);
    }
    Ok((sock, peer))
}

/// `connect(2)` to `addr`: over TCP the three-way handshake, on `src`.
pub fn connect(sock: &Sock, addr: SocketAddrV4, src: &str, tracer: &Tracer) -> Result<()> {
    let fd = sock.as_raw_fd();
    let sa = SockAddr::from(addr);
    let began = tracer.before("connect", src);
    // SAFETY: `sa` is a valid sockaddr_in of `sa.len()` bytes, alive for the call.
    unsafe { checked(libc::connect(fd, sa.as_ptr().cast(), sa.len())) }
        .map_err(|e| failed(tracer, began, Step::Connect, Some(fd), addr, Some(addr.into()), e))?;
    if tracer.on() {
        let event = Event::Connect {
            fd,
            addr: addr.into(),
            kind: Kind::Stream,
        };
        tracer.emit_from(began, event, src);
    }
    Ok(())
}

/// One `read(2)` of at most `buf.len()` bytes (0: end of stream), on `src`. `peer` names
/// the other side in an error line.
pub fn read(sock: &Sock, buf: &mut [u8], peer: SocketAddr, src: &str, tracer: &Tracer) -> Result<usize> {
    let fd = sock.as_raw_fd();
    let began = tracer.before("read", src);
    // SAFETY: `buf` is writable for `buf.len()` bytes for the call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    let n = usize::try_from(n).map_err(|_| {
        failed(
            tracer,
            began,
            Step::Read,
            Some(fd),
            peer,
            None,
            io::Error::last_os_error(),
        )
    })?;
    let got = buf.get(..n).unwrap_or_default();
    if tracer.on() {
        tracer.emit_from(began, Event::Read { fd, data: got }, src);
    }
    Ok(n)
}

/// One `write(2)` of `bytes`, on `src`; returns what the kernel took (on a blocking
/// socket, all of a short reply).
pub fn write(sock: &Sock, bytes: &[u8], peer: SocketAddr, src: &str, tracer: &Tracer) -> Result<usize> {
    let fd = sock.as_raw_fd();
    let began = tracer.before("write", src);
    // SAFETY: `bytes` is readable for `bytes.len()` bytes for the call.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    let n = usize::try_from(n).map_err(|_| {
        failed(
            tracer,
            began,
            Step::Write,
            Some(fd),
            peer,
            None,
            io::Error::last_os_error(),
        )
    })?;
    if tracer.on() {
        let data = bytes.get(..n).unwrap_or_default();
        tracer.emit_from(began, Event::Write { fd, data }, src);
    }
    Ok(n)
}

/// `sendto(2)` of one datagram to `to`, on `src`.
pub fn sendto(sock: &Sock, bytes: &[u8], to: SocketAddr, src: &str, tracer: &Tracer) -> Result<usize> {
    let fd = sock.as_raw_fd();
    let sa = SockAddr::from(to);
    let began = tracer.before("sendto", src);
    // SAFETY: `bytes` is readable for its length and `sa` a valid address of `sa.len()`
    // bytes, both alive for the call.
    let n = unsafe {
        libc::sendto(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
            sa.as_ptr().cast(),
            sa.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| {
        failed(
            tracer,
            began,
            Step::Sendto,
            Some(fd),
            to,
            None,
            io::Error::last_os_error(),
        )
    })?;
    if tracer.on() {
        let data = bytes.get(..n).unwrap_or_default();
        tracer.emit_from(began, Event::SendTo { fd, peer: to, data }, src);
    }
    Ok(n)
}

/// One `recvfrom(2)` into `buf` (a longer datagram is cut to it, as in C), on `src`:
/// the bytes kept and the sender. `at` names the socket in an error line.
pub fn recvfrom(
    sock: &Sock,
    buf: &mut [u8],
    at: impl std::fmt::Display,
    src: &str,
    tracer: &Tracer,
) -> Result<(usize, SocketAddr)> {
    let fd = sock.as_raw_fd();
    let began = tracer.before("recvfrom", src);
    let mut sin = SockaddrIn::new();
    // SAFETY: `buf` is writable for its length, and `sin` a sockaddr_in of the length
    // passed, which recvfrom(2) fills, both for the call.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            sin.as_mut_ptr(),
            &mut sin.len,
        )
    };
    let n = usize::try_from(n).map_err(|_| {
        failed(
            tracer,
            began,
            Step::Recvfrom,
            Some(fd),
            &at,
            None,
            io::Error::last_os_error(),
        )
    })?;
    let from = sin.addr();
    if tracer.on() {
        let data = buf.get(..n).unwrap_or_default();
        tracer.emit_from(began, Event::RecvFrom { fd, peer: from, data }, src);
    }
    Ok((n, from))
}

/// `close(2)`, on `src`. Its result is not checked, as in the C programs: the descriptor
/// is gone either way.
pub fn close(sock: Sock, src: &str, tracer: &Tracer) {
    let began = tracer.before("close", src);
    let fd = sock.as_raw_fd();
    drop(sock);
    if tracer.on() {
        tracer.emit_from(began, Event::Close { fd }, src);
    }
}
