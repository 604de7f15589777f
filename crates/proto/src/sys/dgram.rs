//! A UDP socket whose every call is traced: the server's bound socket and the client's
//! connected one.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::SockAddr;

use super::{Tracer, close, trace_failure, trace_failure_since};
use crate::error::Step;
use crate::trace::{Event, Timeout};

/// A UDP socket. Calls interrupted by a signal (EINTR) are made again.
#[derive(Debug)]
pub struct Dgram {
    inner: UdpSocket,
    tracer: Tracer,
    /// Neither bound nor connected yet: the first `sendto()` gives it an address, and the
    /// trace then shows which.
    unbound: std::sync::atomic::AtomicBool,
}

impl Dgram {
    pub(super) fn new(inner: UdpSocket, tracer: Tracer) -> Dgram {
        Dgram {
            inner,
            tracer,
            unbound: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn unbound(inner: UdpSocket, tracer: Tracer) -> Dgram {
        Dgram {
            inner,
            tracer,
            unbound: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The descriptor, as the trace shows it.
    pub fn fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// `setsockopt(SO_RCVTIMEO)`: `recvfrom()` gives up (EAGAIN) after `limit`.
    pub fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        let set = self.inner.set_read_timeout(limit);
        match &set {
            Ok(()) if self.tracer.on() => self.tracer.emit(Event::SocketTimeout {
                fd: self.fd(),
                which: Timeout::Receive,
                limit,
            }),
            Ok(()) => {}
            Err(e) => trace_failure(&self.tracer, Step::Setsockopt, Some(self.fd()), None, e),
        }
        set
    }

    /// A second descriptor of the same socket (`fcntl(F_DUPFD_CLOEXEC)`), for waking a
    /// blocked `recvfrom()` from another thread with [`Dgram::shutdown_read`].
    pub fn try_clone(&self) -> io::Result<Dgram> {
        Ok(Dgram::new(self.inner.try_clone()?, Tracer::off()))
    }

    /// `shutdown(SHUT_RD)`: a `recvfrom()` blocked on the socket returns at once, with no
    /// datagram and no sender (see [`Dgram::recv_from`]); the kernel may report ENOTCONN
    /// for an unconnected socket but wakes it all the same.
    pub fn shutdown_read(&self) {
        // SAFETY: shutdown(2) takes no pointers.
        unsafe { libc::shutdown(self.fd(), libc::SHUT_RD) };
    }

    /// `recvfrom(2)`: one whole datagram (cut to `buf.len()`) and its sender. `Ok(None)`
    /// when the socket was shut down for reading ([`Dgram::shutdown_read`]): a datagram
    /// always has a sender, so that is the only way to get none.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        let fd = self.fd();
        let began = self.tracer.begin();
        loop {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes and recvfrom(2) writes
            // at most that many; `try_init` hands over address storage of its length.
            let got = unsafe {
                SockAddr::try_init(|storage, len| {
                    match libc::recvfrom(fd, buf.as_mut_ptr().cast(), buf.len(), 0, storage.cast(), len) {
                        -1 => Err(io::Error::last_os_error()),
                        n => Ok(n as usize),
                    }
                })
            };
            match got {
                Ok((n, from)) => {
                    let Some(peer) = from.as_socket() else {
                        return Ok(None);
                    };
                    if self.tracer.on() {
                        self.tracer.emit_since(
                            began,
                            Event::RecvFrom {
                                fd,
                                peer,
                                data: &buf[..n],
                            },
                        );
                    }
                    return Ok(Some((n, peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    trace_failure_since(&self.tracer, began, Step::Recvfrom, Some(fd), None, &e);
                    return Err(e);
                }
            }
        }
    }

    /// `sendto(2)`: one datagram to `peer` (on a connected socket, the server it is
    /// connected to).
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<usize> {
        let began = self.tracer.begin();
        loop {
            match self.inner.send_to(bytes, peer) {
                Ok(n) => {
                    if self.tracer.on() {
                        self.tracer.emit_since(
                            began,
                            Event::SendTo {
                                fd: self.fd(),
                                peer,
                                data: &bytes[..n],
                            },
                        );
                        if self.unbound.swap(false, std::sync::atomic::Ordering::Relaxed) {
                            if let Ok(addr) = self.inner.local_addr() {
                                self.tracer.emit(Event::BoundBySendto { fd: self.fd(), addr });
                            }
                        }
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    trace_failure_since(&self.tracer, began, Step::Sendto, Some(self.fd()), None, &e);
                    return Err(e);
                }
            }
        }
    }

    /// `close(2)`.
    pub fn close(self) {
        close(self.inner, &self.tracer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn shutdown_read_wakes_a_blocked_recvfrom_with_no_sender() {
        for bind in ["127.0.0.1:0", "0.0.0.0:0", "[::1]:0"] {
            let Ok(s) = UdpSocket::bind(bind) else {
                continue;
            };
            let s = Dgram::new(s, Tracer::off());
            let waker = s.try_clone().unwrap();
            let reader = thread::spawn(move || s.recv_from(&mut [0u8; 64]).map(|r| r.is_none()));
            thread::sleep(Duration::from_millis(50));
            waker.shutdown_read();
            assert!(reader.join().unwrap().unwrap(), "{bind}: no datagram, no sender");
        }
    }
}
