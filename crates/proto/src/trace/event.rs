//! The events: one traced call and its real values, as `crate::sys` reports it.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::{Family, Kind};
use crate::error::Step;

/// One datagram of a batched call (`recvmmsg()`, `sendmmsg()`): its sender or destination,
/// and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The sender (received) or the destination (sent).
    pub peer: SocketAddr,
    /// The datagram.
    pub data: &'a [u8],
}

/// Which socket timeout `setsockopt()` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// `SO_RCVTIMEO`: a blocking receive gives up after it.
    Receive,
    /// `SO_SNDTIMEO`: a blocking send gives up after it.
    Send,
}

/// What an `epoll` instance is asked to watch, or found ready: the `EPOLL*` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// `EPOLLIN`: input, a connection to accept, or end of stream.
    pub readable: bool,
    /// `EPOLLOUT`: room to send.
    pub writable: bool,
    /// `EPOLLRDHUP` (the peer half-closed) or `EPOLLHUP`.
    pub hangup: bool,
    /// `EPOLLERR`.
    pub error: bool,
    /// `EPOLLET`: edge-triggered (registrations only).
    pub edge: bool,
    /// `EPOLLEXCLUSIVE`: of the epoll instances waiting on one socket, wake one (a
    /// listening socket shared by workers; registrations only).
    pub exclusive: bool,
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = [
            (self.readable, "EPOLLIN"),
            (self.writable, "EPOLLOUT"),
            (self.hangup, "EPOLLRDHUP"),
            (self.error, "EPOLLERR"),
            (self.edge, "EPOLLET"),
            (self.exclusive, "EPOLLEXCLUSIVE"),
        ];
        let names: Vec<&str> = bits.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
        if names.is_empty() {
            f.write_str("0")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// A call made through the io_uring ring (`IORING_OP_*`), as its completion names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UringOp {
    /// `IORING_OP_ACCEPT`: one request per client, queued while a slot is free.
    Accept,
    /// `IORING_OP_SEND` with `MSG_MORE`.
    Send,
    /// `IORING_OP_SHUTDOWN` with `SHUT_WR`.
    Shutdown,
    /// `IORING_OP_RECV` with `MSG_DONTWAIT`: the unread-input check.
    CheckUnread,
    /// `IORING_OP_RECV` into a provided buffer.
    Recv,
    /// `IORING_OP_CLOSE`.
    Close,
    /// `IORING_OP_ASYNC_CANCEL` of the call pending on a socket.
    Cancel,
    /// `IORING_OP_READ` of the stop's eventfd.
    Wake,
    /// `IORING_OP_PROVIDE_BUFFERS`.
    ProvideBuffers,
}

/// One socket call and its result.
#[derive(Debug)]
pub enum Event<'a> {
    /// `socket(2)` returned `fd`.
    Socket {
        /// Domain.
        family: Family,
        /// Type.
        kind: Kind,
        /// The new descriptor.
        fd: i32,
    },
    /// `setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1)`.
    ReuseAddr {
        /// The socket.
        fd: i32,
        /// Stream or datagram: only a TCP port has connections left in TIME_WAIT.
        kind: Kind,
    },
    /// `setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1)`: one listener of a worker's own.
    ReusePort {
        /// The socket.
        fd: i32,
    },
    /// `fcntl(fd, F_DUPFD_CLOEXEC, 0) = copy`: another descriptor of the same listening
    /// socket, for a worker that shares its accept queue.
    DupListener {
        /// The listening socket.
        fd: i32,
        /// The new descriptor.
        copy: i32,
    },
    /// `setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0)`: dual-stack.
    DualStack {
        /// The socket.
        fd: i32,
    },
    /// `bind(2)`.
    Bind {
        /// The socket.
        fd: i32,
        /// The address asked for.
        addr: SocketAddr,
    },
    /// `listen(2)`.
    Listen {
        /// The socket.
        fd: i32,
        /// The backlog passed.
        backlog: i32,
    },
    /// `setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, limit)` on the listening socket: a blocking
    /// `accept()` comes back after `limit` to look for a stop.
    AcceptTimeout {
        /// The listening socket.
        fd: i32,
        /// The timeout.
        limit: std::time::Duration,
    },
    /// `getsockname(2)` on a listening socket passed in by socket activation.
    Activated {
        /// The socket (3).
        fd: i32,
        /// Its address.
        addr: SocketAddr,
    },
    /// A stop has begun with a drain delay: the agent answers `drain` (not a call).
    Draining {
        /// How long the server keeps serving before it stops.
        delay: std::time::Duration,
    },
    /// The drain delay is over: the server stops (not a call).
    Drained,
    /// `select(2)` returned: the sets passed and the descriptors found ready.
    Select {
        /// The `nfds` argument: the highest descriptor watched, plus one.
        nfds: i32,
        /// Watched for reading.
        read: &'a [i32],
        /// Watched for writing.
        write: &'a [i32],
        /// The time limit passed (`None`: NULL, no limit).
        timeout: Option<std::time::Duration>,
        /// Found readable.
        readable: &'a [i32],
        /// Found writable.
        writable: &'a [i32],
    },
    /// `fork(2)` returned: in the parent the child's pid, in the child 0.
    Fork {
        /// The child's process id.
        child: i32,
        /// Whether this line is the child's.
        in_child: bool,
    },
    /// `close(2)` of a descriptor's copy after `fork()`: the client's socket in the
    /// parent, the listening socket in the child.
    CloseCopy {
        /// The descriptor.
        fd: i32,
        /// Whether the child closes it.
        in_child: bool,
    },
    /// `waitpid(2)` reaped a child.
    Waitpid {
        /// The child.
        pid: i32,
        /// Its exit code, when it exited.
        code: Option<i32>,
        /// The signal that ended it, when one did.
        signal: Option<i32>,
    },
    /// `_exit(2)` of a child that has served its client.
    Exit {
        /// The exit code.
        code: i32,
    },
    /// A PROXY protocol header was read on `fd` (not a call: what the bytes said).
    ProxyHeader {
        /// The connection.
        fd: i32,
        /// 1 or 2.
        version: u8,
        /// The real client and the address it connected to; `None`: the header named
        /// none (a balancer's own health check).
        addresses: Option<(SocketAddr, SocketAddr)>,
    },
    /// `listen(fd, 0)` at a stop: no new connections; the queued ones are still accepted.
    StopListening {
        /// The listening socket.
        fd: i32,
    },
    /// `getsockname(2)` after `bind()` with port 0.
    BoundPort {
        /// The socket.
        fd: i32,
        /// The address now bound.
        addr: SocketAddr,
    },
    /// `accept(2)` returned a new connected socket.
    Accept {
        /// The listening socket.
        listener: i32,
        /// The new socket.
        fd: i32,
        /// The client's address.
        peer: SocketAddr,
    },
    /// `connect(2)` succeeded: a TCP handshake, or (UDP) the peer address recorded.
    Connect {
        /// The socket.
        fd: i32,
        /// The server's address.
        addr: SocketAddr,
        /// Stream or datagram: only a stream socket's `connect()` sends anything.
        kind: Kind,
    },
    /// `getsockname(2)` after `connect()`: the address the kernel chose for the client.
    Ephemeral {
        /// The socket.
        fd: i32,
        /// The local address and ephemeral port.
        addr: SocketAddr,
    },
    /// `read(2)` returned these bytes (empty: end of stream).
    Read {
        /// The socket.
        fd: i32,
        /// The bytes read.
        data: &'a [u8],
    },
    /// `write(2)` wrote these bytes.
    Write {
        /// The socket.
        fd: i32,
        /// The bytes written.
        data: &'a [u8],
    },
    /// `send(fd, …, MSG_MORE)` sent these bytes of a reply whose FIN follows at once,
    /// with the `close()` or a `shutdown(SHUT_WR)` (see `crate::sys::Stream::send`).
    SendMore {
        /// The socket.
        fd: i32,
        /// The bytes sent.
        data: &'a [u8],
    },
    /// `recv(fd, MSG_DONTWAIT)` after the reply, to find input the client sent that was
    /// never read: `None` when there was none (EAGAIN).
    Unread {
        /// The socket.
        fd: i32,
        /// What was waiting (empty: the client had half-closed), or `None`.
        data: Option<&'a [u8]>,
    },
    /// `shutdown(fd, SHUT_WR)`.
    ShutdownWrite {
        /// The socket.
        fd: i32,
    },
    /// `close(2)`.
    Close {
        /// The socket.
        fd: i32,
    },
    /// `setsockopt(fd, SOL_SOCKET, SO_LINGER, {1, 0})`: the `close()` that follows resets
    /// the connection.
    Linger0 {
        /// The socket.
        fd: i32,
    },
    /// `connect(fd, AF_UNSPEC)` from the stopping thread: resets a connection whose
    /// exchange outlived the stop's grace, and wakes the thread blocked on it.
    Disconnect {
        /// The socket.
        fd: i32,
    },
    /// `shutdown(fd, SHUT_RDWR)`: the stopping thread wakes a blocked exchange where
    /// `connect(AF_UNSPEC)` is refused.
    ShutdownBoth {
        /// The socket.
        fd: i32,
    },
    /// `sendto(2)` (or `send(2)` on a connected socket) sent one datagram.
    SendTo {
        /// The socket.
        fd: i32,
        /// The destination.
        peer: SocketAddr,
        /// The datagram.
        data: &'a [u8],
    },
    /// `recvfrom(2)` received one datagram.
    RecvFrom {
        /// The socket.
        fd: i32,
        /// The sender.
        peer: SocketAddr,
        /// The datagram.
        data: &'a [u8],
    },
    /// `setsockopt(SO_RCVBUF)`: room asked for the datagrams queued while the server is
    /// busy (the kernel caps it at `net.core.rmem_max`).
    RecvBuffer {
        /// The socket.
        fd: i32,
        /// The bytes asked for.
        bytes: usize,
    },
    /// `recvmmsg(2)` with `MSG_WAITFORONE` received a batch: it waited for the first
    /// datagram and took those already queued behind it, up to `slots`.
    RecvMmsg {
        /// The socket.
        fd: i32,
        /// How many datagrams the call could take.
        slots: usize,
        /// The datagrams, in the order they came.
        got: &'a [Datagram<'a>],
    },
    /// `sendmmsg(2)` sent a batch of datagrams, each to its own destination.
    SendMmsg {
        /// The socket.
        fd: i32,
        /// The datagrams sent.
        sent: &'a [Datagram<'a>],
    },
    /// `epoll_create1(EPOLL_CLOEXEC)` returned the instance's descriptor.
    EpollCreate {
        /// The epoll instance.
        epfd: i32,
    },
    /// `epoll_ctl(epfd, EPOLL_CTL_ADD, fd, events)`.
    EpollAdd {
        /// The epoll instance.
        epfd: i32,
        /// The descriptor watched.
        fd: i32,
        /// What it is watched for.
        events: Readiness,
    },
    /// `epoll_ctl(epfd, EPOLL_CTL_DEL, fd)`.
    EpollDel {
        /// The epoll instance.
        epfd: i32,
        /// The descriptor no longer watched.
        fd: i32,
    },
    /// `epoll_wait()` returned: the descriptors found ready and what each is ready for.
    EpollWait {
        /// The epoll instance.
        epfd: i32,
        /// The `maxevents` argument.
        max: usize,
        /// The time limit passed, in ms (-1: none).
        timeout_ms: i32,
        /// The ready descriptors.
        ready: &'a [(i32, Readiness)],
    },
    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`: what another thread writes to wake the
    /// event loop.
    Eventfd {
        /// The new descriptor.
        fd: i32,
        /// Read by an io_uring ring (the uring model) rather than watched by epoll.
        ring: bool,
    },
    /// `fcntl(fd, F_SETFL, …)` switching a socket to non-blocking mode or back.
    NonBlocking {
        /// The socket.
        fd: i32,
        /// Non-blocking from now on (`O_NONBLOCK` set), or blocking again.
        on: bool,
    },
    /// `poll()` on a listening socket, waiting for a connection to be queued.
    PollListener {
        /// The listening socket.
        fd: i32,
        /// The time limit, in ms.
        timeout_ms: i32,
        /// Whether a connection was queued (1) or the limit ran out (0).
        ready: bool,
    },
    /// `accept()` = -1 EAGAIN: nobody waits in the accept queue.
    AcceptEmpty {
        /// The listening socket.
        listener: i32,
        /// A blocking socket whose `SO_RCVTIMEO` ran out, or a non-blocking one.
        blocking: bool,
    },
    /// A blocking server waited for its next client, and the same two calls — `accept()`
    /// giving up after its `SO_RCVTIMEO`, and a `poll()` that found nobody — repeated
    /// this many more times (shown once, then counted).
    IdleRepeats {
        /// The listening socket.
        listener: i32,
        /// How many more times.
        times: u64,
    },
    /// `setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO, limit)` on a connection.
    SocketTimeout {
        /// The socket.
        fd: i32,
        /// Which one.
        which: Timeout,
        /// The limit (`None`: none, the call may wait for ever).
        limit: Option<std::time::Duration>,
    },
    /// A thread takes a client: a new one (`pthread_create()`), or one that served an
    /// earlier client and was waiting for the next.
    Thread {
        /// The client's socket.
        fd: i32,
        /// The thread's number in this server (1, 2, …), in the order they started.
        thread: u64,
        /// A new thread, or one handed the client.
        new: bool,
    },
    /// The kernel gave an unbound UDP socket its address and port at its first
    /// `sendto()`: `getsockname()` after it.
    BoundBySendto {
        /// The socket.
        fd: i32,
        /// The address and ephemeral port.
        addr: SocketAddr,
    },
    /// `getpeername(2)` on a connection the ring accepted (its accept gives no address).
    PeerName {
        /// The connection.
        fd: i32,
        /// The client's address.
        addr: SocketAddr,
    },
    /// `io_uring_setup(2)` returned the ring's descriptor.
    UringSetup {
        /// The ring.
        fd: i32,
        /// Submission queue entries asked for.
        entries: u32,
        /// The setup flags taken (`IORING_SETUP_*`), as C spells them; empty: none.
        flags: &'static str,
    },
    /// `io_uring_enter(2)`: the calls queued since the last one handed to the kernel, a
    /// wait for at least one completion (bounded by the nearest deadline), and the
    /// completions then reaped from the ring.
    UringEnter {
        /// The ring.
        fd: i32,
        /// Calls handed to the kernel.
        submitted: usize,
        /// Completions waited for: 1, or 0 when the submission queue was full and the
        /// calls in it were only handed over.
        min_complete: u32,
        /// The wait's bound (`None`: until a completion).
        timeout: Option<std::time::Duration>,
        /// Completions reaped.
        completed: usize,
        /// The wait ran out with nothing submitted (the call returned -1 ETIME).
        timed_out: bool,
    },
    /// One completion (CQE) of a call made through the ring, with its result.
    UringDone {
        /// Which call.
        op: UringOp,
        /// The socket it was made on (the listening socket for an accept).
        fd: i32,
        /// The result: a descriptor, a byte count, 0, or `-errno`.
        result: i32,
        /// The bytes sent or received, for a send or a receive that moved some.
        data: Option<&'a [u8]>,
        /// An accepted client's address.
        peer: Option<SocketAddr>,
        /// The call was linked to the next one (`IOSQE_IO_LINK`): that one runs only if
        /// this one succeeds.
        linked: bool,
        /// A multishot call that goes on (`IORING_CQE_F_MORE`).
        more: bool,
    },
    /// A call failed.
    Failed {
        /// The call.
        step: Step,
        /// The socket, if there was one.
        fd: Option<i32>,
        /// The OS error.
        err: &'a io::Error,
    },
    /// A call that takes an address (`bind()`, `connect()`) failed: shown with the address.
    FailedAt {
        /// The call.
        step: Step,
        /// The socket.
        fd: i32,
        /// The address passed.
        addr: SocketAddr,
        /// The OS error.
        err: &'a io::Error,
    },
}
