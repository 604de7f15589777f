//! A UDP socket whose every call is traced: the server's bound socket and the client's
//! connected one, and the server's batches (`recvmmsg()`, `sendmmsg()`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::SockAddr;

use super::{Tracer, close, trace_failure, trace_failure_since};
use crate::error::Step;
use crate::trace::{Datagram, Event, Timeout};

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

    /// `recvmmsg(2)` with `MSG_WAITFORONE`: waits for one datagram and takes, in the same
    /// call, those already queued behind it, up to the batch's slots; each whole (cut to
    /// the slot's size) with its sender. `Ok(0)` when the socket was shut down for reading
    /// ([`Dgram::shutdown_read`]) and nothing came before: a datagram always has a sender,
    /// so that is the only way to get none.
    pub fn recv_batch(&self, batch: &mut Batch) -> io::Result<usize> {
        let fd = self.fd();
        let began = self.tracer.begin();
        // The headers the last call filled in: their address lengths are the kernel's
        // answers, not the room there is.
        for hdr in &mut batch.hdrs[..batch.got] {
            hdr.msg_hdr.msg_namelen = ADDR_ROOM;
        }
        batch.got = 0;
        let slots = batch.hdrs.len() as libc::c_uint;
        let got = loop {
            // SAFETY: every header points at its own iovec, address storage and slot of
            // `batch`, all owned by it, never resized, and of the lengths the headers give
            // (see `Batch::new`); the kernel writes at most those lengths, into at most
            // `slots` headers. No timeout is passed.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    batch.hdrs.as_mut_ptr(),
                    slots,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            match n {
                -1 => {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    trace_failure_since(&self.tracer, began, Step::Recvmmsg, Some(fd), None, &e);
                    return Err(e);
                }
                n => break n as usize,
            }
        };
        // A header with no sender is the shutdown's wake-up: the batch ends before it.
        batch.got = batch.hdrs[..got]
            .iter()
            .position(|h| h.msg_hdr.msg_namelen == 0)
            .unwrap_or(got);
        if self.tracer.on() && batch.got > 0 {
            let seen: Vec<Datagram<'_>> = (0..batch.got)
                .filter_map(|i| {
                    Some(Datagram {
                        peer: batch.peer(i)?,
                        data: batch.datagram(i),
                    })
                })
                .collect();
            self.tracer.emit_since(
                began,
                Event::RecvMmsg {
                    fd,
                    slots: slots as usize,
                    got: &seen,
                },
            );
        }
        Ok(batch.got)
    }

    /// Sends `replies[i]` to the sender of the batch's datagram `i`, each its own datagram:
    /// one reply with `sendto(2)`, the textbook's call, more with one `sendmmsg(2)` (made
    /// again for the rest when the kernel takes only some). Returns the replies the kernel
    /// refused, each with its index, the call and the error (nothing is allocated when
    /// none is); the others still go.
    pub fn reply_batch<R: AsRef<[u8]>>(
        &self,
        batch: &mut Batch,
        replies: &[R],
    ) -> Vec<(usize, Step, io::Error)> {
        let mut refused = Vec::new();
        let n = replies.len().min(batch.got);
        if n == 1 {
            if let Err(e) = self.reply_one(batch, replies[0].as_ref()) {
                refused.push((0, Step::Sendto, e));
            }
            return refused;
        }
        for (i, reply) in replies[..n].iter().enumerate() {
            let reply = reply.as_ref();
            batch.out_iovs[i] = libc::iovec {
                iov_base: reply.as_ptr().cast_mut().cast(),
                iov_len: reply.len(),
            };
            batch.out_hdrs[i].msg_hdr.msg_namelen = batch.hdrs[i].msg_hdr.msg_namelen;
        }
        let fd = self.fd();
        let mut from = 0;
        while from < n {
            let began = self.tracer.begin();
            // SAFETY: headers `from..n` point at the address storage `recv_batch` filled
            // (with the lengths it returned) and at iovecs set just above to `replies`,
            // which outlive the call; the kernel only reads them, and writes each
            // header's `msg_len`.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    batch.out_hdrs[from..n].as_mut_ptr(),
                    (n - from) as libc::c_uint,
                    0,
                )
            };
            if sent < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first datagram of the rest was refused: it alone fails.
                trace_failure_since(&self.tracer, began, Step::Sendmmsg, Some(fd), None, &e);
                refused.push((from, Step::Sendmmsg, e));
                from += 1;
                continue;
            }
            let sent = sent as usize;
            if self.tracer.on() {
                let shown: Vec<Datagram<'_>> = (from..from + sent)
                    .filter_map(|i| {
                        Some(Datagram {
                            peer: batch.peer(i)?,
                            data: replies[i].as_ref(),
                        })
                    })
                    .collect();
                self.tracer
                    .emit_since(began, Event::SendMmsg { fd, sent: &shown });
            }
            from += sent;
        }
        refused
    }

    /// `sendto(2)` of one reply to the sender of the batch's first datagram, to the
    /// address as `recvmmsg()` gave it.
    fn reply_one(&self, batch: &Batch, reply: &[u8]) -> io::Result<usize> {
        let fd = self.fd();
        let began = self.tracer.begin();
        let to = &batch.hdrs[0].msg_hdr;
        loop {
            // SAFETY: `reply` is valid for reads of its length; the address is the storage
            // `recv_batch` filled, of the length it returned.
            let n = unsafe {
                libc::sendto(
                    fd,
                    reply.as_ptr().cast(),
                    reply.len(),
                    0,
                    to.msg_name.cast_const().cast(),
                    to.msg_namelen,
                )
            };
            if n >= 0 {
                if self.tracer.on() {
                    if let Some(peer) = batch.peer(0) {
                        let data = &reply[..n as usize];
                        self.tracer.emit_since(began, Event::SendTo { fd, peer, data });
                    }
                }
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                trace_failure_since(&self.tracer, began, Step::Sendto, Some(fd), None, &e);
                return Err(e);
            }
        }
    }

    /// `close(2)`.
    pub fn close(self) {
        close(self.inner, &self.tracer);
    }
}

/// The room an address takes: any family's.
const ADDR_ROOM: libc::socklen_t = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// Room for the datagrams one `recvmmsg()` takes (each slot holds one whole datagram and
/// its sender), and the headers their replies go out with in one `sendmmsg()`.
///
/// Each header points into the batch's own vectors, which are made once at their full
/// length and never resized, so the pointers stay valid wherever the `Batch` moves.
pub struct Batch {
    /// The slots, `size` bytes each, one after the other.
    slots: Vec<u8>,
    size: usize,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// The replies' iovecs, set by each `reply_batch`.
    out_iovs: Vec<libc::iovec>,
    /// The replies' headers: each names the address of the datagram it answers.
    out_hdrs: Vec<libc::mmsghdr>,
    /// Datagrams the last `recv_batch` took.
    got: usize,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("slots", &self.hdrs.len())
            .field("size", &self.size)
            .field("got", &self.got)
            .finish()
    }
}

impl Batch {
    /// Room for `slots` datagrams (at least 1) of up to `size` bytes each. The memory is
    /// zeroed lazily by the system: a slot's pages are only touched by datagrams as long.
    pub fn new(slots: usize, size: usize) -> Batch {
        let slots_n = slots.max(1);
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structures for which
        // all-zero bytes are a valid value (null pointers, zero lengths).
        let zeroed = || unsafe { std::mem::zeroed::<libc::sockaddr_storage>() };
        let mut batch = Batch {
            slots: vec![0u8; slots_n * size],
            size,
            addrs: (0..slots_n).map(|_| zeroed()).collect(),
            iovs: Vec::with_capacity(slots_n),
            // SAFETY: as above.
            hdrs: (0..slots_n).map(|_| unsafe { std::mem::zeroed() }).collect(),
            out_iovs: (0..slots_n)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            // SAFETY: as above.
            out_hdrs: (0..slots_n).map(|_| unsafe { std::mem::zeroed() }).collect(),
            got: 0,
        };
        let base = batch.slots.as_mut_ptr();
        for i in 0..slots_n {
            batch.iovs.push(libc::iovec {
                // SAFETY: slot `i` starts within `slots` (i * size <= its length).
                iov_base: unsafe { base.add(i * size) }.cast(),
                iov_len: size,
            });
        }
        for i in 0..slots_n {
            let name: *mut libc::sockaddr_storage = &mut batch.addrs[i];
            let iov: *mut libc::iovec = &mut batch.iovs[i];
            let out_iov: *mut libc::iovec = &mut batch.out_iovs[i];
            let hdr = &mut batch.hdrs[i].msg_hdr;
            hdr.msg_name = name.cast();
            hdr.msg_namelen = ADDR_ROOM;
            hdr.msg_iov = iov;
            hdr.msg_iovlen = 1;
            let out = &mut batch.out_hdrs[i].msg_hdr;
            out.msg_name = name.cast();
            out.msg_iov = out_iov;
            out.msg_iovlen = 1;
        }
        batch
    }

    /// How many datagrams the last [`Dgram::recv_batch`] took.
    pub fn len(&self) -> usize {
        self.got
    }

    /// Whether the last [`Dgram::recv_batch`] took none.
    pub fn is_empty(&self) -> bool {
        self.got == 0
    }

    /// Datagram `i` of the last [`Dgram::recv_batch`] (cut to the slot's size).
    pub fn datagram(&self, i: usize) -> &[u8] {
        let len = (self.hdrs[i].msg_len as usize).min(self.size);
        &self.slots[i * self.size..i * self.size + len]
    }

    /// The sender of datagram `i`: an IPv4 or IPv6 address (`None` for any other family).
    pub fn peer(&self, i: usize) -> Option<SocketAddr> {
        let storage = &self.addrs[i];
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in, which it has
                // room and alignment for.
                let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for a sockaddr_in6.
                let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// Two senders' datagrams queued before the call: one `recvmmsg()` takes both, each
    /// with its own bytes and sender (IPv4 and IPv6), one `sendmmsg()` answers each, and a
    /// batch of one goes out with `sendto()`; a shutdown then ends a batch with none.
    #[test]
    fn a_batch_takes_what_is_queued_and_answers_each_sender() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(s) = UdpSocket::bind(bind) else {
                continue;
            };
            let to = s.local_addr().unwrap();
            let server = Dgram::new(s, Tracer::off());
            let clients: Vec<UdpSocket> = (0..2).map(|_| UdpSocket::bind(bind).unwrap()).collect();
            for (i, c) in clients.iter().enumerate() {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                c.send_to(format!("m{i}").as_bytes(), to).unwrap();
            }
            let mut batch = Batch::new(8, 64);
            // Loopback delivers at once; a second call gathers one that was late.
            let mut got: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
            while got.len() < 2 {
                let n = server.recv_batch(&mut batch).unwrap();
                assert!(n > 0, "{bind}");
                got.extend((0..n).map(|i| (batch.datagram(i).to_vec(), batch.peer(i).unwrap())));
                let replies: Vec<Vec<u8>> = (0..n).map(|i| [b"re:", batch.datagram(i)].concat()).collect();
                assert!(server.reply_batch(&mut batch, &replies).is_empty(), "{bind}");
            }
            for (i, c) in clients.iter().enumerate() {
                let want = format!("m{i}").into_bytes();
                assert!(
                    got.contains(&(want.clone(), c.local_addr().unwrap())),
                    "{bind}: {got:?}"
                );
                let mut buf = [0u8; 16];
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], [b"re:", &want[..]].concat().as_slice(), "{bind}");
            }
            server.shutdown_read();
            assert_eq!(
                server.recv_batch(&mut batch).unwrap(),
                0,
                "{bind}: shut down, no sender"
            );
        }
    }

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
