//! `--trace`: what each socket call is, shown with its real arguments and result and one
//! line of explanation, in English or Korean (docs/contract.md#the-trace).
//!
//! This module only words the events; it does no I/O. The code that makes a call, in
//! [`crate::sys`], emits its event right after the call returns, from the real values,
//! through a [`crate::sys::Tracer`].
//!
//! Every explanation is written as an (English, Korean) pair in [`explain`], so no line
//! can fall back to English; the Korean uses the tutorials' terms (소켓 생성, 주소 할당,
//! 연결요청 대기상태, 연결 수락, 연결요청, 데이터 송수신, Half-close, 소켓 종료), spelled as
//! the tutorials spell them (`연결요청` in one word, everywhere).

use std::fmt::{self, Write as _};
use std::io;
use std::net::SocketAddr;

use crate::error::Step;

/// The language of the explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Korean, in the tutorials' own terms.
    Ko,
}

impl Lang {
    /// `--lang` if given, else Korean when `LC_ALL`, `LC_MESSAGES` or `LANG` (the first one
    /// set, as `setlocale(3)` reads them) starts with `ko`, else English.
    pub fn choose(flag: Option<Lang>) -> Lang {
        if let Some(l) = flag {
            return l;
        }
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .find(|v| !v.is_empty());
        match locale {
            Some(v) if v.starts_with("ko") => Lang::Ko,
            _ => Lang::En,
        }
    }

    /// Parses `en` or `ko` (`--lang`).
    pub fn parse(s: &str) -> Result<Lang, String> {
        match s {
            "en" => Ok(Lang::En),
            "ko" => Ok(Lang::Ko),
            _ => Err(format!("'{s}' is not a supported language (en, ko)")),
        }
    }
}

/// Address family of a socket, as passed to `socket(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `AF_INET`.
    Inet,
    /// `AF_INET6`.
    Inet6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::Inet
        } else {
            Family::Inet6
        }
    }
}

/// Socket type, as passed to `socket(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_STREAM` (TCP).
    Stream,
    /// `SOCK_DGRAM` (UDP).
    Dgram,
}

/// Which calls `--trace` shows (`--trace` alone: all; `--trace textbook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selection {
    /// Every call.
    #[default]
    All,
    /// Only the calls the textbook's program makes; the others are counted.
    Textbook,
}

impl Selection {
    /// Parses `all` or `textbook` (`--trace=WHICH`).
    pub fn parse(s: &str) -> Result<Selection, String> {
        match s {
            "all" => Ok(Selection::All),
            "textbook" => Ok(Selection::Textbook),
            _ => Err(format!("'{s}' is not a trace selection (all, textbook)")),
        }
    }
}

/// `--trace textbook` as the shell passes it (two words) made into `--trace=textbook`,
/// so that `--trace` can still stand alone before a host or a port (`--trace 9190`).
pub fn join_trace_value<T: AsRef<std::ffi::OsStr> + From<String>>(args: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(args.len());
    for arg in args {
        let value = ["textbook", "all"].into_iter().find(|v| arg.as_ref() == *v);
        let after_trace = out.last().is_some_and(|prev| prev.as_ref() == "--trace");
        match value {
            Some(v) if after_trace => {
                out.pop();
                out.push(T::from(format!("--trace={v}")));
            }
            _ => out.push(arg),
        }
    }
    out
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

/// Which program is speaking, shown on every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// hello-server.
    Server,
    /// hello-client.
    Client,
}

/// Renders one trace line: the time the call was made, how long it took, who made it,
/// the call, whether the textbook's program makes it, and what it does:
/// `03:41:07.123456 +52µs server  listen(3, 4096) = 0  # [textbook] explanation\n`. `who`
/// is `server` or `client`, or names a worker of a server with several (`server#2`) or a
/// process made by `fork()` (`server[4242]`).
pub fn render(who: &str, lang: Lang, time: &str, took: std::time::Duration, event: &Event<'_>) -> String {
    format!(
        "{time} +{}µs {who}  {}  # [{}] {}\n",
        took.as_micros(),
        call(event),
        tag(textbook(event), lang),
        explain(event, lang)
    )
}

/// `server` or `client`, as every line names its program.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
    }
}

/// The mark of a line: the textbook's call, or one real software adds.
pub fn tag(textbook: bool, lang: Lang) -> &'static str {
    match (textbook, lang) {
        (true, Lang::En) => "textbook",
        (false, Lang::En) => "added",
        (true, Lang::Ko) => "교재",
        (false, Lang::Ko) => "추가",
    }
}

/// Whether the textbook's program for this exchange makes this call: `hello_server.c`,
/// `echo_server.c`, `uecho_server.c`, their clients, and the chapters' multi-process,
/// `select()`, `epoll` and thread servers. The other calls are what real software adds;
/// their explanations say why.
pub fn textbook(event: &Event<'_>) -> bool {
    match event {
        Event::Socket { .. }
        | Event::Bind { .. }
        | Event::Listen { .. }
        | Event::Accept { .. }
        | Event::Connect { .. }
        | Event::Read { .. }
        | Event::Write { .. }
        | Event::Close { .. }
        | Event::SendTo { .. }
        | Event::RecvFrom { .. }
        | Event::Select { .. }
        | Event::Fork { .. }
        | Event::CloseCopy { .. }
        | Event::Waitpid { .. }
        | Event::Exit { .. }
        | Event::EpollCreate { .. }
        | Event::EpollAdd { .. }
        | Event::EpollDel { .. }
        | Event::EpollWait { .. }
        | Event::Thread { new: true, .. } => true,
        Event::Failed { step, .. } | Event::FailedAt { step, .. } => matches!(
            step,
            Step::Socket
                | Step::Bind
                | Step::Listen
                | Step::Accept
                | Step::Connect
                | Step::Read
                | Step::Write
                | Step::Sendto
                | Step::Recvfrom
                | Step::Select
                | Step::Fork
                | Step::Waitpid
                | Step::EpollCreate
                | Step::EpollCtl
                | Step::EpollWait
                | Step::Spawn
        ),
        Event::ReuseAddr { .. }
        | Event::ReusePort { .. }
        | Event::DupListener { .. }
        | Event::DualStack { .. }
        | Event::AcceptTimeout { .. }
        | Event::Activated { .. }
        | Event::Draining { .. }
        | Event::Drained
        | Event::ProxyHeader { .. }
        | Event::StopListening { .. }
        | Event::BoundPort { .. }
        | Event::Ephemeral { .. }
        | Event::SendMore { .. }
        | Event::Unread { .. }
        | Event::ShutdownWrite { .. }
        | Event::Linger0 { .. }
        | Event::Disconnect { .. }
        | Event::ShutdownBoth { .. }
        | Event::Eventfd { .. }
        | Event::NonBlocking { .. }
        | Event::PollListener { .. }
        | Event::AcceptEmpty { .. }
        | Event::IdleRepeats { .. }
        | Event::SocketTimeout { .. }
        | Event::Thread { new: false, .. }
        | Event::BoundBySendto { .. }
        | Event::PeerName { .. }
        | Event::UringSetup { .. }
        | Event::UringEnter { .. }
        | Event::UringDone { .. } => false,
    }
}

/// The name of the call an event shows (`setsockopt`, `epoll_wait`), for counting.
pub fn call_name(event: &Event<'_>) -> String {
    let shown = call(event);
    shown
        .split(['(', ' ', ':'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// With `--trace textbook`, the line that counts what was left out, by call name, or
/// `None` when nothing was: `server: 7 calls beyond the textbook not shown: recv ×1, …`.
pub fn left_out_line(
    who: &str,
    lang: Lang,
    left_out: &std::collections::BTreeMap<String, u64>,
) -> Option<String> {
    let total: u64 = left_out.values().sum();
    if total == 0 {
        return None;
    }
    let each: Vec<String> = left_out.iter().map(|(name, n)| format!("{name} ×{n}")).collect();
    Some(match lang {
        Lang::En => format!(
            "{who}: {total} calls beyond the textbook not shown: {}\n",
            each.join(", ")
        ),
        Lang::Ko => format!(
            "{who}: 교재에 없는 호출 {total}개는 생략했습니다: {}\n",
            each.join(", ")
        ),
    })
}

/// The call as C would spell it, with its real arguments and result.
pub fn call(event: &Event<'_>) -> String {
    match event {
        Event::Socket { family, kind, fd } => {
            let d = match family {
                Family::Inet => "AF_INET",
                Family::Inet6 => "AF_INET6",
            };
            let (t, p) = match kind {
                Kind::Stream => ("SOCK_STREAM", "IPPROTO_TCP"),
                Kind::Dgram => ("SOCK_DGRAM", "IPPROTO_UDP"),
            };
            format!("socket({d}, {t}, {p}) = {fd}")
        }
        Event::ReusePort { fd } => format!("setsockopt({fd}, SOL_SOCKET, SO_REUSEPORT, 1) = 0"),
        Event::DupListener { fd, copy } => format!("fcntl({fd}, F_DUPFD_CLOEXEC, 0) = {copy}"),
        Event::ReuseAddr { fd, .. } => format!("setsockopt({fd}, SOL_SOCKET, SO_REUSEADDR, 1) = 0"),
        Event::DualStack { fd } => format!("setsockopt({fd}, IPPROTO_IPV6, IPV6_V6ONLY, 0) = 0"),
        Event::Bind { fd, addr } => format!("bind({fd}, {addr}) = 0"),
        Event::Listen { fd, backlog } => format!("listen({fd}, {backlog}) = 0"),
        Event::AcceptTimeout { fd, limit } => {
            format!(
                "setsockopt({fd}, SOL_SOCKET, SO_RCVTIMEO, {}) = 0",
                crate::addr::HumanDuration(*limit)
            )
        }
        Event::StopListening { fd } => format!("listen({fd}, 0) = 0"),
        Event::Select {
            nfds,
            read,
            write,
            timeout,
            readable,
            writable,
        } => {
            let t = timeout.map_or("NULL".to_string(), |t| crate::addr::HumanDuration(t).to_string());
            format!(
                "select({nfds}, {}, {}, NULL, {t}) = {}: readable {}, writable {}",
                FdList(read),
                FdList(write),
                readable.len() + writable.len(),
                FdList(readable),
                FdList(writable)
            )
        }
        Event::Fork {
            child,
            in_child: false,
        } => format!("fork() = {child}"),
        Event::Fork {
            child,
            in_child: true,
        } => format!("fork() = 0, in child {child}"),
        Event::CloseCopy { fd, .. } => format!("close({fd}) = 0"),
        Event::Waitpid { pid, code, signal } => match (code, signal) {
            (Some(code), _) => format!("waitpid(-1, WNOHANG) = {pid}, exited {code}"),
            (None, Some(sig)) => format!("waitpid(-1, WNOHANG) = {pid}, killed by signal {sig}"),
            (None, None) => format!("waitpid(-1, WNOHANG) = {pid}"),
        },
        Event::Exit { code } => format!("_exit({code})"),
        Event::Activated { fd, addr } => format!("getsockname({fd}) = {addr}"),
        Event::Draining { delay } => format!("drain: {}", crate::addr::HumanDuration(*delay)),
        Event::Drained => "drain: over".to_string(),
        Event::ProxyHeader {
            fd,
            version,
            addresses: Some((src, dst)),
        } => format!("PROXY v{version} on {fd}: client {src}, to {dst}"),
        Event::ProxyHeader {
            fd,
            version,
            addresses: None,
        } => format!("PROXY v{version} on {fd}: no addresses"),
        Event::BoundPort { fd, addr } | Event::Ephemeral { fd, addr } => {
            format!("getsockname({fd}) = {addr}")
        }
        Event::Accept { listener, fd, peer } => format!("accept({listener}) = {fd}, peer {peer}"),
        Event::Connect { fd, addr, .. } => format!("connect({fd}, {addr}) = 0"),
        Event::Unread { fd, data: None } => format!("recv({fd}, MSG_DONTWAIT) = -1 EAGAIN"),
        Event::Unread { fd, data: Some([]) } => format!("recv({fd}, MSG_DONTWAIT) = 0"),
        Event::Unread { fd, data: Some(d) } => {
            format!("recv({fd}, MSG_DONTWAIT) = {} {}", d.len(), Shown(d))
        }
        Event::Read { fd, data: [] } => format!("read({fd}) = 0"),
        Event::Read { fd, data } => format!("read({fd}) = {} {}", data.len(), Shown(data)),
        Event::Write { fd, data } => format!("write({fd}, {}) = {}", Shown(data), data.len()),
        Event::SendMore { fd, data } => {
            format!("send({fd}, {}, MSG_MORE) = {}", Shown(data), data.len())
        }
        Event::ShutdownWrite { fd } => format!("shutdown({fd}, SHUT_WR) = 0"),
        Event::Close { fd } => format!("close({fd}) = 0"),
        Event::Linger0 { fd } => format!("setsockopt({fd}, SOL_SOCKET, SO_LINGER, {{1, 0}}) = 0"),
        Event::Disconnect { fd } => format!("connect({fd}, AF_UNSPEC) = 0"),
        Event::ShutdownBoth { fd } => format!("shutdown({fd}, SHUT_RDWR) = 0"),
        Event::SendTo { fd, peer, data } => {
            format!("sendto({fd}, {}, {peer}) = {}", Shown(data), data.len())
        }
        Event::RecvFrom { fd, peer, data } => {
            format!("recvfrom({fd}) = {} {}, from {peer}", data.len(), Shown(data))
        }
        Event::EpollCreate { epfd } => format!("epoll_create1(EPOLL_CLOEXEC) = {epfd}"),
        Event::EpollAdd { epfd, fd, events } => {
            format!("epoll_ctl({epfd}, EPOLL_CTL_ADD, {fd}, {events}) = 0")
        }
        Event::EpollDel { epfd, fd } => format!("epoll_ctl({epfd}, EPOLL_CTL_DEL, {fd}) = 0"),
        Event::EpollWait {
            epfd,
            max,
            timeout_ms,
            ready,
        } => {
            let shown: Vec<String> = ready.iter().map(|(fd, r)| format!("{fd} {r}")).collect();
            let head = format!(
                "epoll_wait({epfd}, events, {max}, {timeout_ms}) = {}",
                ready.len()
            );
            if shown.is_empty() {
                head
            } else {
                format!("{head}: {{{}}}", shown.join(", "))
            }
        }
        Event::Eventfd { fd, .. } => format!("eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK) = {fd}"),
        Event::NonBlocking { fd, on: true } => format!("fcntl({fd}, F_SETFL, O_RDWR|O_NONBLOCK) = 0"),
        Event::NonBlocking { fd, on: false } => format!("fcntl({fd}, F_SETFL, O_RDWR) = 0"),
        Event::PollListener {
            fd,
            timeout_ms,
            ready,
        } => format!("poll({fd}: POLLIN, {timeout_ms}) = {}", u8::from(*ready)),
        Event::AcceptEmpty { listener, .. } => format!("accept({listener}) = -1 EAGAIN"),
        Event::IdleRepeats { listener, times } => {
            format!("accept({listener}) = -1 EAGAIN, poll() = 0: {times} more times")
        }
        Event::SocketTimeout { fd, which, limit } => {
            let opt = match which {
                Timeout::Receive => "SO_RCVTIMEO",
                Timeout::Send => "SO_SNDTIMEO",
            };
            let value = limit.map_or("0 (none)".to_string(), timeval);
            format!("setsockopt({fd}, SOL_SOCKET, {opt}, {value}) = 0")
        }
        Event::Thread {
            fd,
            thread,
            new: true,
        } => format!("pthread_create() = 0: thread {thread} serves {fd}"),
        Event::Thread {
            fd,
            thread,
            new: false,
        } => format!("pthread_cond_signal(): thread {thread} serves {fd}"),
        Event::BoundBySendto { fd, addr } => format!("getsockname({fd}) = {addr}"),
        Event::PeerName { fd, addr } => format!("getpeername({fd}) = {addr}"),
        Event::UringSetup { fd, entries, flags } => {
            let flags = if flags.is_empty() { "0" } else { flags };
            format!("io_uring_setup({entries}, {{flags: {flags}}}) = {fd}")
        }
        Event::UringEnter {
            fd,
            submitted,
            min_complete,
            timeout,
            completed,
            timed_out,
        } => {
            let returned = if *timed_out && *submitted == 0 {
                "-1 ETIME".to_string()
            } else {
                submitted.to_string()
            };
            let wait = match (min_complete, timeout) {
                (0, _) => String::new(),
                (_, None) => ", no time limit".to_string(),
                (_, Some(t)) => format!(", at most {}", timeval(*t)),
            };
            format!(
                "io_uring_enter({fd}, to_submit {submitted}, min_complete {min_complete}{wait}) = {returned}: submitted {submitted}, completed {completed}"
            )
        }
        Event::UringDone { .. } => uring_call(event),
        Event::Failed { step, fd, err } => {
            let args = fd.map(|f| f.to_string()).unwrap_or_default();
            failed_call(*step, &args, err)
        }
        Event::FailedAt { step, fd, addr, err } => failed_call(*step, &format!("{fd}, {addr}"), err),
    }
}

/// A socket timeout as the kernel keeps it (a `timeval`, to the microsecond), in
/// seconds or milliseconds: `10s`, `100ms`, `4.999997s`.
fn timeval(t: std::time::Duration) -> String {
    let us = t.as_micros();
    match (us % 1_000_000, us % 1000) {
        (0, _) => format!("{}s", us / 1_000_000),
        (_, 0) if us < 1_000_000 => format!("{}ms", us / 1000),
        _ => {
            let frac = format!("{:06}", us % 1_000_000);
            format!("{}.{}s", us / 1_000_000, frac.trim_end_matches('0'))
        }
    }
}

/// A set of descriptors as C's tutorials draw it: `{3, 8}`.
struct FdList<'a>(&'a [i32]);

impl fmt::Display for FdList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.0.iter().map(i32::to_string).collect();
        write!(f, "{{{}}}", shown.join(", "))
    }
}

/// A ring completion as C would spell the call with its result:
/// `IORING_OP_SEND(7, "Hello World!\0", MSG_MORE, IOSQE_IO_LINK) = 13`; a failure reads
/// `= -ECANCELED (Operation canceled)`, as the completion carries it.
fn uring_call(event: &Event<'_>) -> String {
    let Event::UringDone {
        op,
        fd,
        result,
        data,
        peer,
        linked,
        more,
    } = event
    else {
        return String::new();
    };
    let args = match op {
        UringOp::Accept => format!("IORING_OP_ACCEPT({fd}"),
        UringOp::Send => format!(
            "IORING_OP_SEND({fd}, {}, MSG_MORE",
            Shown(data.unwrap_or_default())
        ),
        UringOp::Shutdown => format!("IORING_OP_SHUTDOWN({fd}, SHUT_WR"),
        UringOp::CheckUnread => format!("IORING_OP_RECV({fd}, MSG_DONTWAIT"),
        UringOp::Recv => format!("IORING_OP_RECV({fd}, IOSQE_BUFFER_SELECT"),
        UringOp::Close => format!("IORING_OP_CLOSE({fd}"),
        UringOp::Cancel => format!("IORING_OP_ASYNC_CANCEL({fd}"),
        UringOp::Wake => format!("IORING_OP_READ({fd}"),
        UringOp::ProvideBuffers => "IORING_OP_PROVIDE_BUFFERS(".to_string(),
    };
    let link = if *linked { ", IOSQE_IO_LINK" } else { "" };
    let mut s = format!("{args}{link}) = ");
    if *result < 0 {
        let code = -*result;
        let err = io::Error::from_raw_os_error(code);
        let _ = write!(s, "-{} ({})", errno_name(code), strerror(&err, code));
    } else {
        let _ = write!(s, "{result}");
        match (op, data, peer) {
            (UringOp::Recv | UringOp::CheckUnread, Some(d), _) if !d.is_empty() => {
                let _ = write!(s, " {}", Shown(d));
            }
            (UringOp::Accept, _, Some(p)) => {
                let _ = write!(s, ", peer {p}");
            }
            _ => {}
        }
    }
    if *more {
        s.push_str(", IORING_CQE_F_MORE");
    }
    s
}

/// What a ring completion means, and what io_uring does there that the textbook's call
/// does not.
fn uring_explain(op: UringOp, result: i32, linked: bool, lang: Lang) -> String {
    let say = |en: &str, ko: &str| match lang {
        Lang::En => en.to_string(),
        Lang::Ko => ko.to_string(),
    };
    if result == -libc::ECANCELED {
        return say(
            "cancelled: the call linked before it failed, or the server cancelled it",
            "취소됨: 앞에 연결(link)된 요청이 실패했거나 서버가 취소했습니다",
        );
    }
    match op {
        UringOp::Accept if result < 0 => say(
            "the kernel's accept failed: the server accepts again (or backs off), as after accept()",
            "커널의 연결 수락이 실패했습니다: accept() 실패 때처럼 다시 받거나 잠시 쉽니다",
        ),
        UringOp::Accept => say(
            "accepted by the kernel: a NEW descriptor for this client, with no accept() call",
            "커널이 연결을 수락했습니다: accept() 호출 없이 이 클라이언트의 새 소켓이 생깁니다",
        ),
        UringOp::Send if result < 0 => say(
            "the send failed: the calls linked after it are cancelled",
            "전송 실패: 뒤에 연결(link)된 요청은 취소됩니다",
        ),
        UringOp::Send if linked => say(
            "send, held by MSG_MORE, the check linked after it: the reply leaves with the FIN that follows",
            "MSG_MORE로 보류한 전송, 뒤에 확인 요청을 연결: 응답은 이어지는 FIN과 한 패킷으로 갑니다",
        ),
        UringOp::Send => say(
            "send, held by MSG_MORE: the reply leaves with the FIN that follows",
            "MSG_MORE로 보류한 전송: 응답은 이어지는 FIN과 한 패킷으로 갑니다",
        ),
        UringOp::Shutdown => say(
            "half-close from the ring: linked, it runs only once the send before it sent everything",
            "링에서 한 Half-close: 앞의 전송이 모두 끝나야만 실행됩니다 (IOSQE_IO_LINK)",
        ),
        UringOp::CheckUnread if result == -libc::EAGAIN => say(
            "the check found nothing unread: close at once, a FIN and no RST",
            "읽지 않은 입력이 없습니다: 바로 닫습니다 (RST 없이 FIN)",
        ),
        UringOp::CheckUnread => say(
            "the check, from the ring: did the client send anything never read? (it never waits)",
            "링에서 한 확인: 클라이언트가 보낸 것 중 읽지 않은 입력이 있는지 봅니다 (기다리지 않음)",
        ),
        UringOp::Recv if result == 0 => say(
            "EOF: the peer closed its side; the kernel waited for it, the server made no call",
            "EOF: 상대가 자기 쪽을 닫았습니다. 기다린 것은 커널이고 서버는 호출하지 않았습니다",
        ),
        UringOp::Recv => say(
            "received into a buffer the kernel picked when data came: no buffer waits per idle client",
            "데이터가 올 때 커널이 고른 버퍼로 받았습니다: 기다리는 클라이언트마다 버퍼를 두지 않습니다",
        ),
        UringOp::Close => say(
            "close from the ring, submitted with other clients' calls in one system call",
            "링에서 한 소켓 종료: 다른 클라이언트의 요청과 함께 시스템 콜 한 번으로 넘겼습니다",
        ),
        UringOp::Cancel => say(
            "cancel the socket's pending call before closing it: no late result may name a reused descriptor",
            "닫기 전에 이 소켓의 대기 중인 요청을 취소합니다: 재사용된 번호로 늦은 결과가 오지 않게",
        ),
        UringOp::Wake => say(
            "the stop's wake-up: an eventfd read by the ring ends the wait in io_uring_enter()",
            "종료 요청 깨우기: 링이 읽는 eventfd가 io_uring_enter()의 대기를 끝냅니다",
        ),
        UringOp::ProvideBuffers => say(
            "receive buffers handed to the kernel, to pick from when data comes",
            "수신 버퍼를 커널에 넘깁니다. 데이터가 오면 커널이 여기서 골라 씁니다",
        ),
    }
}

/// `connect(3, 127.0.0.1:1) = -1 ECONNREFUSED (Connection refused)`; without an errno
/// (a time limit that ran out in poll(2)), `connect(3, 127.0.0.1:1): timed out`.
fn failed_call(step: Step, args: &str, err: &io::Error) -> String {
    let name = step.name();
    let called = match name.strip_suffix("()") {
        Some(bare) => format!("{bare}({args})"),
        None => name.to_string(),
    };
    match err.raw_os_error() {
        Some(code) => format!("{called} = -1 {} ({})", errno_name(code), strerror(err, code)),
        None => format!("{called}: {err}"),
    }
}

/// Bytes shown as a C string literal (NUL as `\0`, other control and invalid bytes as
/// `\n`, `\r`, `\t` or `\xNN`), cut after 64 bytes with `...`.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        let data = self.0;
        let mut end = data.len().min(MAX);
        // Do not cut a UTF-8 character in two: back off to its first byte.
        if end < data.len() {
            while end > MAX - 3 && data[end] & 0xC0 == 0x80 {
                end -= 1;
            }
        }
        let mut s = String::from("\"");
        for chunk in data[..end].utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\0' => s.push_str("\\0"),
                    '\n' => s.push_str("\\n"),
                    '\r' => s.push_str("\\r"),
                    '\t' => s.push_str("\\t"),
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    c if c.is_control() => {
                        let mut utf8 = [0u8; 4];
                        for b in c.encode_utf8(&mut utf8).bytes() {
                            let _ = write!(s, "\\x{b:02x}");
                        }
                    }
                    c => s.push(c),
                }
            }
            for b in chunk.invalid() {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
        s.push('"');
        if end < data.len() {
            s.push_str("...");
        }
        f.write_str(&s)
    }
}

/// The symbolic name of an errno (`ECONNREFUSED`), or `errno N`.
fn errno_name(code: i32) -> String {
    let name = match code {
        libc::EACCES => "EACCES",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EAGAIN => "EAGAIN",
        libc::EBADF => "EBADF",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::EINTR => "EINTR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENFILE => "ENFILE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        libc::ENOTCONN => "ENOTCONN",
        libc::EPERM => "EPERM",
        libc::EPIPE => "EPIPE",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECANCELED => "ECANCELED",
        libc::ENOSYS => "ENOSYS",
        libc::ETIME => "ETIME",
        libc::ENOENT => "ENOENT",
        libc::EALREADY => "EALREADY",
        libc::EEXIST => "EEXIST",
        _ => return format!("errno {code}"),
    };
    name.to_string()
}

/// `strerror(3)`'s text: the OS error's message without std's ` (os error N)`.
fn strerror(err: &io::Error, code: i32) -> String {
    let full = err.to_string();
    match full.strip_suffix(&format!(" (os error {code})")) {
        Some(text) => text.to_string(),
        None => full,
    }
}

/// The most a send can hold and still be said to leave in one packet: one Ethernet
/// segment (1500-byte MTU, less the IP and TCP headers with timestamps). Loopback's
/// segments are larger, so a send this small fits one packet on any usual path.
const ONE_SEGMENT: usize = 1448;

/// The one-line explanation of an event, in `lang`. Every text is written as an
/// (English, Korean) pair, so no line can be missing its Korean.
pub fn explain(event: &Event<'_>, lang: Lang) -> String {
    let say = |en: &str, ko: &str| match lang {
        Lang::En => en.to_string(),
        Lang::Ko => ko.to_string(),
    };
    match event {
        Event::Socket {
            kind: Kind::Stream, ..
        } => say(
            "create a TCP socket: a new descriptor, with no address yet",
            "소켓 생성: TCP 소켓의 파일 디스크립터를 받습니다 (주소는 아직 없음)",
        ),
        Event::Socket {
            kind: Kind::Dgram, ..
        } => say(
            "create a UDP socket: datagrams, no connection, no listen()/accept()",
            "소켓 생성: UDP 소켓. 연결 없이 데이터그램을 주고받습니다 (listen/accept 없음)",
        ),
        Event::ReuseAddr {
            kind: Kind::Stream, ..
        } => say(
            "let bind() take the port even while old connections wait in TIME_WAIT",
            "주소 재할당 허용: Time-wait 상태의 연결이 남아 있어도 같은 포트에 bind() 할 수 있습니다",
        ),
        Event::ReuseAddr {
            kind: Kind::Dgram, ..
        } => say(
            "UDP has no connections left to wait out: this only lets sockets with the option share the port",
            "UDP에는 기다릴 연결이 없습니다: 같은 옵션을 켠 다른 소켓과 포트를 함께 쓸 수 있게 할 뿐입니다",
        ),
        Event::ReusePort { .. } => say(
            "one port, several listening sockets: the kernel spreads new connections over their queues",
            "포트 공유: 같은 포트의 여러 소켓에 커널이 새 연결을 나눠 각자의 대기 큐에 넣습니다",
        ),
        Event::DupListener { .. } => say(
            "another descriptor of the listening socket, for another worker: the workers share one accept queue",
            "리스닝 소켓의 디스크립터를 하나 더: 다른 워커용이며, 워커들이 연결 대기 큐 하나를 함께 씁니다",
        ),
        Event::DualStack { .. } => say(
            "dual-stack: IPv4 clients reach this IPv6 socket too, as ::ffff:a.b.c.d",
            "듀얼 스택: IPv4 클라이언트도 이 IPv6 소켓으로 받습니다 (::ffff:a.b.c.d 형태)",
        ),
        Event::Bind { addr, .. } => {
            let any = addr.ip().is_unspecified();
            let what = match (any, addr.is_ipv6()) {
                (true, false) => say(
                    "INADDR_ANY (0.0.0.0) = every local IPv4 address",
                    "INADDR_ANY(0.0.0.0)는 이 컴퓨터의 모든 IPv4 주소",
                ),
                (true, true) => say(
                    "in6addr_any (::) = every local address",
                    "in6addr_any(::)는 이 컴퓨터의 모든 주소",
                ),
                (false, _) => say(
                    "only traffic sent to this IP reaches the socket",
                    "이 IP로 오는 연결과 데이터만 받습니다",
                ),
            };
            let port0 = addr.port() == 0;
            match lang {
                Lang::En if port0 => format!("assign the address: {what}; port 0: the kernel picks one"),
                Lang::En => format!("assign the address: {what}"),
                Lang::Ko if port0 && any => {
                    format!("주소 할당: {what}, 포트 0은 커널이 고르는 빈 포트입니다")
                }
                Lang::Ko if any => format!("주소 할당: {what}입니다"),
                Lang::Ko if port0 => format!("주소 할당: {what}. 포트 0은 커널이 고르는 빈 포트입니다"),
                Lang::Ko => format!("주소 할당: {what}"),
            }
        }
        Event::Listen { .. } => say(
            "listening: the kernel completes handshakes; they wait in the accept queue (backlog + 1) for accept()",
            "연결요청 대기상태: 커널이 맺은 연결은 대기 큐(backlog+1개까지)에서 accept()를 기다립니다",
        ),
        Event::AcceptTimeout { .. } => say(
            "a blocking accept() now gives up after this long, so the server can see when it is told to stop",
            "블로킹 accept()가 이 시간마다 돌아오게 해서, 서버가 종료 요청을 알아챌 수 있게 합니다",
        ),
        Event::ProxyHeader {
            addresses: Some(_), ..
        } => say(
            "the balancer in front names the real client: logs and this trace use its address",
            "앞단의 로드밸런서가 실제 클라이언트 주소를 알려 줍니다: 로그와 이 추적은 그 주소를 씁니다",
        ),
        Event::ProxyHeader { addresses: None, .. } => say(
            "the balancer speaks for itself (a health check): the connection's own addresses stand",
            "로드밸런서 자신의 연결입니다(헬스 체크): 연결의 실제 주소를 그대로 씁니다",
        ),
        Event::Activated { .. } => say(
            "socket activation: this listening socket was passed in (LISTEN_FDS): no socket/bind/listen",
            "소켓 활성화: 연결요청 대기 중인 소켓을 넘겨받았습니다 (socket/bind/listen 없음)",
        ),
        Event::Draining { .. } => say(
            "stopping: the agent now answers drain, so the balancer sends no new clients; serving goes on",
            "종료 준비: 에이전트가 drain을 알려 로드밸런서가 새 클라이언트를 보내지 않습니다. 처리는 계속합니다",
        ),
        Event::Drained => say(
            "the balancer has had time to stop sending: now the server stops accepting",
            "로드밸런서가 새 연결을 멈출 시간이 지났습니다: 이제 연결 수락을 멈춥니다",
        ),
        Event::Select { .. } => say(
            "select: sleep until one of these descriptors is ready; a set holds only 0..1023 (FD_SETSIZE)",
            "select: 이 중 하나가 준비될 때까지 기다립니다. 한 집합에는 0..1023(FD_SETSIZE)만 넣을 수 있습니다",
        ),
        Event::Fork { in_child: false, .. } => say(
            "fork: a copy of this process will serve the client; the parent goes back to accept()",
            "fork: 이 프로세스를 복사한 자식이 클라이언트를 맡고, 부모는 다시 accept()로 돌아갑니다",
        ),
        Event::Fork { in_child: true, .. } => say(
            "in the child: it has a copy of every descriptor, the client's and the listening socket",
            "자식 프로세스: 클라이언트 소켓과 서버 소켓, 모든 파일 디스크립터의 복사본을 가집니다",
        ),
        Event::CloseCopy { in_child: false, .. } => say(
            "the parent closes its copy of the client's socket: the connection ends when both copies are closed",
            "부모는 클라이언트 소켓의 복사본을 닫습니다: 두 복사본이 모두 닫혀야 연결이 끝납니다",
        ),
        Event::CloseCopy { in_child: true, .. } => say(
            "the child closes its copy of the listening socket: it serves one client, the parent accepts",
            "자식은 서버 소켓의 복사본을 닫습니다: 자식은 클라이언트 하나만, 연결 수락은 부모가 합니다",
        ),
        Event::Waitpid { .. } => say(
            "reap the finished child: without waitpid() it would stay a zombie in the process table",
            "끝난 자식을 거둡니다: waitpid() 하지 않으면 좀비 프로세스로 남습니다",
        ),
        Event::Exit { .. } => say(
            "the child has served its client and ends; the parent reaps it",
            "자식이 클라이언트 처리를 마치고 종료합니다. 부모가 거둡니다",
        ),
        Event::StopListening { .. } => say(
            "stopping: the kernel takes no new connections; those already queued are still accepted and served",
            "종료 중: 커널이 새 연결요청은 더 받지 않고, 이미 대기 큐에 있는 연결은 accept()해서 처리합니다",
        ),
        Event::BoundPort { .. } => say(
            "port 0 was asked for: this is the port the kernel picked",
            "포트 0을 요청했으므로, 커널이 골라 할당한 실제 포트입니다",
        ),
        Event::Accept { .. } => say(
            "accept: a NEW descriptor for this client; the listening socket keeps listening",
            "연결 수락: 이 클라이언트와 통신할 새 소켓이 생깁니다. 서버 소켓은 계속 연결요청을 기다립니다",
        ),
        Event::Connect {
            kind: Kind::Stream, ..
        } => say(
            "connect: the three-way handshake with the server is complete",
            "연결요청: 서버와의 3-way handshake가 끝나 연결되었습니다",
        ),
        Event::Connect {
            kind: Kind::Dgram, ..
        } => say(
            "connect on UDP sends nothing: it only records the server as the socket's peer",
            "UDP의 connect()는 아무것도 보내지 않고, 목적지(서버) 주소만 소켓에 등록합니다",
        ),
        Event::Ephemeral { .. } => say(
            "the kernel gave the client its address and an ephemeral port at connect(): no bind()",
            "클라이언트의 IP와 임의의 포트는 connect() 때 커널이 자동으로 할당했습니다 (bind() 없음)",
        ),
        Event::Read { data: [], .. } => say(
            "read() = 0 is EOF: the peer closed its side (close or half-close)",
            "read()가 0을 반환하면 EOF: 상대가 연결을 닫았거나 Half-close 했습니다",
        ),
        Event::Read { .. } => say(
            "receive: TCP has no message boundaries, one read() may get part of a message",
            "데이터 수신: TCP에는 데이터의 경계가 없어 read() 한 번에 메시지 일부만 올 수도 있습니다",
        ),
        Event::Unread { data: None, .. } => say(
            "nothing left unread, so close() is clean; unread input would make it send RST",
            "읽지 않은 데이터 없음: close()로 깔끔하게 닫힙니다 (남아 있으면 RST를 보내 응답이 사라질 수 있음)",
        ),
        Event::Unread { data: Some([]), .. } => say(
            "the client's FIN is here (it half-closed or closed): nothing unread, close() is clean",
            "클라이언트의 FIN이 왔습니다(Half-close 또는 close): 남은 데이터가 없어 깔끔하게 닫힙니다",
        ),
        Event::Unread { .. } => say(
            "the client sent data: read it away first, so close() does not send RST",
            "클라이언트가 보낸 데이터가 있습니다: 마저 읽고 닫아서 close() 때 RST가 가지 않게 합니다",
        ),
        Event::Write { data: [.., 0], .. } => say(
            "send: the trailing \\0 is the C string's NUL, sent with the text",
            "데이터 전송: 끝의 \\0은 C 문자열의 끝을 나타내는 NUL로, 함께 전송됩니다",
        ),
        Event::Write { .. } => say(
            "send the bytes to the peer",
            "데이터 전송: 상대 소켓으로 바이트를 보냅니다",
        ),
        Event::SendMore { data, .. } if data.len() > ONE_SEGMENT => say(
            "send: full segments leave now; MSG_MORE holds only the last part, which leaves with the FIN",
            "데이터 전송: 꽉 찬 세그먼트는 바로 나가고, MSG_MORE는 마지막 조각만 잡아 두었다가 FIN과 함께 보냅니다",
        ),
        Event::SendMore { data: [.., 0], .. } => say(
            "send, held by MSG_MORE: leaves in one packet with the FIN that follows; \\0 is the C string's NUL",
            "데이터 전송: MSG_MORE로 잡아 두었다가 뒤따르는 FIN과 한 패킷으로 보냅니다. \\0은 C 문자열의 NUL",
        ),
        Event::SendMore { .. } => say(
            "send, held by MSG_MORE: leaves in one packet with the FIN of the close() or shutdown() below",
            "데이터 전송: MSG_MORE로 잡아 두었다가 아래 close()나 shutdown()의 FIN과 한 패킷으로 보냅니다",
        ),
        Event::ShutdownWrite { .. } => say(
            "half-close: send EOF (FIN) to the peer, but keep reading",
            "Half-close: 출력 스트림만 종료해 상대에게 EOF를 보내고, 입력 스트림으로는 계속 받습니다",
        ),
        Event::Close { .. } => say(
            "close the socket and release its descriptor",
            "소켓 종료: 소켓을 닫고 파일 디스크립터를 반환합니다",
        ),
        Event::Linger0 { .. } => say(
            "linger 0: the close() below resets the connection (RST) and drops unsent data",
            "linger 0: 아래 close()는 FIN 대신 RST로 연결을 끊고, 보내지 못한 데이터는 버립니다",
        ),
        Event::Disconnect { .. } => say(
            "the stop's grace is over: reset this connection (RST) and wake the thread blocked on it",
            "종료 유예 시간이 끝났습니다: 이 연결을 RST로 끊고, 여기서 멈춰 있는 스레드를 깨웁니다",
        ),
        Event::ShutdownBoth { .. } => say(
            "the stop's grace is over: shut both directions to wake the thread blocked on it",
            "종료 유예 시간이 끝났습니다: 양방향을 모두 닫아 여기서 멈춰 있는 스레드를 깨웁니다",
        ),
        Event::SendTo { data: [], .. } => say(
            "send an empty datagram: in UDP even 0 bytes is a message",
            "데이터그램 전송: 빈 데이터그램도 UDP에서는 하나의 메시지입니다",
        ),
        Event::SendTo { .. } => say(
            "send one datagram to this address; UDP keeps its boundaries",
            "데이터그램 전송: 목적지 주소로 데이터그램 하나를 보냅니다 (경계가 유지됨)",
        ),
        Event::RecvFrom { data: [], .. } => say(
            "receive an empty datagram: in UDP 0 bytes is a message, not EOF",
            "데이터그램 수신: 빈 데이터그램입니다. UDP에서 0바이트는 EOF가 아닙니다",
        ),
        Event::RecvFrom { .. } => say(
            "receive one whole datagram and the address of its sender",
            "데이터그램 수신: 데이터그램 하나를 통째로 받고, 보낸 쪽 주소도 알게 됩니다",
        ),
        Event::EpollCreate { .. } => say(
            "create an epoll instance: the kernel watches many sockets for this one thread",
            "epoll 인스턴스 생성: 여러 소켓의 이벤트를 운영체제가 대신 관찰하는 저장소를 만듭니다",
        ),
        Event::EpollAdd { events, .. } if events.exclusive => say(
            "register the shared listening socket: a new connection wakes one worker's epoll_wait(), not all",
            "함께 쓰는 리스닝 소켓 등록: 새 연결이 오면 워커 하나만 epoll_wait()에서 깨어납니다",
        ),
        Event::EpollAdd { events, .. } if events.edge => say(
            "register the socket: epoll_wait() reports it when ready (EPOLLET: once per change)",
            "관찰 대상 등록: 준비되면 epoll_wait()가 알려 줍니다 (EPOLLET: 상태가 바뀔 때 한 번, 엣지 트리거)",
        ),
        Event::EpollAdd { .. } => say(
            "register the socket: epoll_wait() reports it while it is ready",
            "관찰 대상 등록: 준비된 동안 epoll_wait()가 알려 줍니다",
        ),
        Event::EpollDel { .. } => say(
            "stop watching the socket: it is about to be closed",
            "관찰 대상 삭제: 곧 닫을 소켓입니다",
        ),
        Event::EpollWait { ready: [], .. } => say(
            "the time limit ran out with nothing ready: a deadline is due",
            "제한 시간이 지났고 준비된 것은 없습니다: 처리할 마감 시각이 되었습니다",
        ),
        Event::EpollWait { .. } => say(
            "wait for events: only the ready descriptors come back, no scan of every socket as with select()",
            "이벤트 대기: select()처럼 전부 확인하지 않고, 준비된 파일 디스크립터만 돌려받습니다",
        ),
        Event::Eventfd { ring: true, .. } => say(
            "an eventfd the ring keeps a read queued on: another thread writes to it to end the wait for a stop",
            "링이 읽기를 걸어 두는 eventfd: 종료 요청 때 다른 스레드가 여기에 써서 대기를 끝냅니다",
        ),
        Event::Eventfd { ring: false, .. } => say(
            "an eventfd in the epoll set: another thread writes to it to wake epoll_wait() for a stop",
            "epoll에 넣어 두는 eventfd: 종료 요청 때 다른 스레드가 여기에 써서 epoll_wait()를 깨웁니다",
        ),
        Event::NonBlocking { on: true, .. } => say(
            "non-blocking: with clients to wait for, accept() must never sleep; EAGAIN means the queue is empty",
            "넌블로킹 모드: 기다릴 클라이언트가 있으니 accept()에서 잠들면 안 됩니다. 큐가 비면 EAGAIN",
        ),
        Event::NonBlocking { on: false, .. } => say(
            "blocking again: no client to wait for, so the loop sleeps in accept() like the textbook's",
            "다시 블로킹 모드: 기다릴 클라이언트가 없어 교재의 서버처럼 accept()에서 잠듭니다",
        ),
        Event::PollListener { ready: true, .. } => say(
            "a connection is queued: accept() will not wait",
            "대기 큐에 연결이 있습니다: accept()가 기다리지 않습니다",
        ),
        Event::PollListener { ready: false, .. } => say(
            "no client within the limit: look for a stop, then wait again",
            "제한 시간 안에 클라이언트가 없었습니다: 종료 요청을 확인하고 다시 기다립니다",
        ),
        Event::AcceptEmpty { blocking: false, .. } => say(
            "the accept queue is empty: every queued client has been taken; back to waiting for events",
            "대기 큐가 비었습니다: 기다리던 클라이언트를 모두 받았으니 다시 이벤트를 기다립니다",
        ),
        Event::AcceptEmpty { blocking: true, .. } => say(
            "SO_RCVTIMEO ran out with nobody queued: look for a stop, then wait again",
            "SO_RCVTIMEO 동안 연결요청이 없었습니다: 종료 요청을 확인하고 다시 기다립니다",
        ),
        Event::IdleRepeats { .. } => say(
            "while no client came, these two calls repeated (each bounded, to look for a stop): counted here",
            "클라이언트가 없는 동안 이 두 호출이 반복되었습니다(종료 요청 확인용): 횟수만 적습니다",
        ),
        Event::SocketTimeout {
            which: Timeout::Receive,
            limit: Some(_),
            ..
        } => say(
            "bound the blocking receives: one that waits this long fails with EAGAIN",
            "블로킹 수신의 제한 시간: 이만큼 기다려도 데이터가 없으면 EAGAIN으로 실패합니다",
        ),
        Event::SocketTimeout {
            which: Timeout::Send,
            limit: Some(_),
            ..
        } => say(
            "bound the blocking sends: one that finds no room for this long fails with EAGAIN",
            "블로킹 송신의 제한 시간: 이만큼 기다려도 보낼 공간이 없으면 EAGAIN으로 실패합니다",
        ),
        Event::SocketTimeout { limit: None, .. } => say(
            "no time limit: a blocking call may wait for ever",
            "제한 시간 없음: 블로킹 호출이 끝없이 기다릴 수 있습니다",
        ),
        Event::Thread { new: true, .. } => say(
            "a new thread serves this client with blocking calls; the main thread goes back to accept()",
            "새 스레드가 이 클라이언트를 맡고, 메인 스레드는 다시 accept()로 돌아갑니다",
        ),
        Event::Thread { new: false, .. } => say(
            "a thread done with its last client takes this one: no new thread (creating one costs ~95 µs)",
            "앞 클라이언트를 마친 스레드가 이어서 맡습니다: 스레드를 새로 만들지 않습니다(약 95µs 절약)",
        ),
        Event::BoundBySendto { .. } => say(
            "no bind(): the kernel gave the socket its address and a port at its first sendto()",
            "bind() 없음: 첫 sendto() 때 커널이 IP와 포트를 자동으로 할당했습니다",
        ),
        Event::PeerName { .. } => say(
            "the ring's accept asks for no address: asked for now, for the trace or a log line",
            "링의 accept는 주소를 받지 않습니다: 추적이나 로그에 쓰려고 지금 묻습니다",
        ),
        Event::UringSetup { .. } => say(
            "io_uring: two rings shared with the kernel, calls queued in one, results read from the other",
            "io_uring: 커널과 함께 쓰는 두 링을 만듭니다. 한쪽에 요청을 쌓고 다른 쪽에서 결과를 읽습니다",
        ),
        Event::UringEnter { .. } => say(
            "one system call submits the queued calls and reaps many clients' results (textbook: one per call)",
            "시스템 콜 한 번으로 쌓인 요청을 넘기고 여러 클라이언트의 결과를 거둡니다 (교재는 호출마다 한 번)",
        ),
        Event::UringDone {
            op, result, linked, ..
        } => uring_explain(*op, *result, *linked, lang),
        Event::Failed { step, err, .. } | Event::FailedAt { step, err, .. } => {
            let mut s = say("failed: ", &format!("{} 실패: ", step_ko(*step)));
            s += &failure_reason(*step, err, lang);
            s
        }
    }
}

/// The tutorials' name for each step, for Korean failure lines.
fn step_ko(step: Step) -> &'static str {
    match step {
        Step::Resolve => "이름 해석",
        Step::Socket => "소켓 생성",
        Step::Setsockopt => "소켓 옵션 설정",
        Step::Bind => "주소 할당",
        Step::Listen => "연결요청 대기상태 진입",
        Step::Accept => "연결 수락",
        Step::Connect => "연결요청",
        Step::Read => "데이터 수신",
        Step::Write => "데이터 전송",
        Step::Shutdown => "Half-close",
        Step::Sendto => "데이터그램 전송",
        Step::Recvfrom => "데이터그램 수신",
        Step::Getsockname => "주소 확인",
        Step::Fcntl => "디스크립터 설정(fcntl)",
        Step::EpollCreate => "epoll 인스턴스 생성",
        Step::EpollCtl => "epoll 관심 대상 등록",
        Step::EpollWait => "이벤트 대기(epoll_wait)",
        Step::Eventfd => "깨우기용 eventfd 생성",
        Step::Spawn => "스레드 생성",
        Step::Select => "이벤트 대기(select)",
        Step::Fork => "프로세스 복사(fork)",
        Step::Waitpid => "자식 프로세스 회수(waitpid)",
        Step::UringSetup => "io_uring 생성",
        Step::UringEnter => "io_uring 요청 제출",
    }
}

/// Why a call failed, in words, from its errno (and the step, where that matters).
fn failure_reason(step: Step, err: &io::Error, lang: Lang) -> String {
    let say = |en: &str, ko: &str| match lang {
        Lang::En => en.to_string(),
        Lang::Ko => ko.to_string(),
    };
    let datagram = matches!(step, Step::Sendto | Step::Recvfrom);
    let timed_out = || {
        say(
            "timed out, nothing arrived within the time limit",
            "제한 시간 안에 응답이 없었습니다 (시간 초과)",
        )
    };
    let Some(code) = err.raw_os_error() else {
        return match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timed_out(),
            _ => say("see the error text in the call", "호출 결과의 오류 내용을 보세요"),
        };
    };
    match code {
        libc::ECONNREFUSED if datagram => say(
            "nothing listens on that port (an ICMP port unreachable came back)",
            "그 포트에서 받는 소켓이 없어 ICMP port unreachable이 돌아왔습니다",
        ),
        libc::ECONNREFUSED => say(
            "nothing listens on that port, so the host answered with RST",
            "그 포트에서 연결요청을 기다리는 소켓이 없어 RST로 거절되었습니다",
        ),
        libc::EADDRINUSE => say(
            "another socket already holds this address and port",
            "다른 소켓이 이미 이 주소와 포트를 사용하고 있습니다",
        ),
        libc::EADDRNOTAVAIL => say(
            "that IP is not one of this machine's addresses",
            "그 IP는 이 컴퓨터의 주소가 아닙니다",
        ),
        libc::EACCES if step == Step::Bind => say(
            "ports below 1024 need privileges",
            "1024 미만의 포트에는 관리자 권한이 필요합니다",
        ),
        libc::EACCES | libc::EPERM => say("permission denied", "권한이 없습니다"),
        libc::EAFNOSUPPORT => say(
            "this address family is not available here (IPv6 disabled?)",
            "이 주소 체계를 쓸 수 없습니다 (IPv6가 꺼져 있나요?)",
        ),
        libc::ETIMEDOUT => timed_out(),
        // A blocking socket with SO_RCVTIMEO/SO_SNDTIMEO reports its timeout as EAGAIN.
        c if c == libc::EAGAIN || c == libc::EWOULDBLOCK => timed_out(),
        libc::ECONNRESET => say(
            "the peer reset the connection (RST)",
            "상대가 연결을 강제로 끊었습니다 (RST)",
        ),
        libc::EPIPE => say(
            "the peer has closed, so nothing more can be sent",
            "상대가 연결을 닫아 더는 보낼 수 없습니다",
        ),
        libc::ECONNABORTED => say(
            "the connection died in the queue before accept() took it",
            "accept()가 꺼내기 전에 대기 큐의 연결이 끊겼습니다",
        ),
        libc::ENETUNREACH | libc::EHOSTUNREACH => say(
            "no route to that host or network",
            "그 호스트(네트워크)로 가는 경로가 없습니다",
        ),
        libc::EMFILE | libc::ENFILE => say("out of file descriptors", "파일 디스크립터가 바닥났습니다"),
        libc::ENOBUFS | libc::ENOMEM => say("out of kernel memory", "커널 메모리가 부족합니다"),
        libc::EINTR if step == Step::Accept => say(
            "a signal came while accept() waited (a child ended, or a stop): the server looks around",
            "accept() 도중 시그널이 왔습니다(자식 종료나 종료 요청). 할 일을 확인합니다",
        ),
        // A listening socket shut down for reading is how a stop wakes accept().
        libc::EINVAL if step == Step::Accept => say(
            "the listening socket was shut down: the server is stopping",
            "서버 종료 중: 연결요청 대기 소켓을 shutdown 해서 더는 연결을 받지 않습니다",
        ),
        libc::EMSGSIZE => say(
            "the datagram is too large to send",
            "데이터그램이 너무 커서 보낼 수 없습니다",
        ),
        _ => say("errno tells why", "errno가 원인을 알려 줍니다"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_ERRNOS: [i32; 29] = [
        libc::ECANCELED,
        libc::ENOSYS,
        libc::ETIME,
        libc::ENOENT,
        libc::EALREADY,
        libc::EEXIST,
        libc::EACCES,
        libc::EADDRINUSE,
        libc::EADDRNOTAVAIL,
        libc::EAFNOSUPPORT,
        libc::EAGAIN,
        libc::EBADF,
        libc::ECONNABORTED,
        libc::ECONNREFUSED,
        libc::ECONNRESET,
        libc::EHOSTUNREACH,
        libc::EINPROGRESS,
        libc::EINTR,
        libc::EINVAL,
        libc::EMFILE,
        libc::EMSGSIZE,
        libc::ENETUNREACH,
        libc::ENFILE,
        libc::ENOBUFS,
        libc::ENOMEM,
        libc::ENOTCONN,
        libc::EPERM,
        libc::EPIPE,
        libc::ETIMEDOUT,
    ];

    const ALL_STEPS: [Step; 24] = [
        Step::Resolve,
        Step::Socket,
        Step::Setsockopt,
        Step::Bind,
        Step::Listen,
        Step::Accept,
        Step::Connect,
        Step::Read,
        Step::Write,
        Step::Shutdown,
        Step::Sendto,
        Step::Recvfrom,
        Step::Getsockname,
        Step::Fcntl,
        Step::EpollCreate,
        Step::EpollCtl,
        Step::EpollWait,
        Step::Eventfd,
        Step::Spawn,
        Step::Select,
        Step::Fork,
        Step::Waitpid,
        Step::UringSetup,
        Step::UringEnter,
    ];

    /// One number per variant, with no wildcard: a new variant does not compile until it
    /// is listed here, and `samples` must then cover it.
    fn variant(e: &Event<'_>) -> usize {
        match e {
            Event::Socket { .. } => 0,
            Event::ReuseAddr { .. } => 1,
            Event::DualStack { .. } => 2,
            Event::Bind { .. } => 3,
            Event::Listen { .. } => 4,
            Event::BoundPort { .. } => 5,
            Event::Accept { .. } => 6,
            Event::Connect { .. } => 7,
            Event::Ephemeral { .. } => 8,
            Event::Read { .. } => 9,
            Event::Write { .. } => 10,
            Event::ShutdownWrite { .. } => 11,
            Event::Close { .. } => 12,
            Event::SendTo { .. } => 13,
            Event::RecvFrom { .. } => 14,
            Event::Failed { .. } => 15,
            Event::FailedAt { .. } => 16,
            Event::Unread { .. } => 17,
            Event::SendMore { .. } => 18,
            Event::Linger0 { .. } => 19,
            Event::Disconnect { .. } => 20,
            Event::ShutdownBoth { .. } => 21,
            Event::AcceptTimeout { .. } => 22,
            Event::StopListening { .. } => 23,
            Event::ProxyHeader { .. } => 24,
            Event::Activated { .. } => 25,
            Event::Draining { .. } => 26,
            Event::Drained => 27,
            Event::Select { .. } => 28,
            Event::Fork { .. } => 29,
            Event::CloseCopy { .. } => 30,
            Event::Waitpid { .. } => 31,
            Event::Exit { .. } => 32,
            Event::EpollCreate { .. } => 33,
            Event::EpollAdd { .. } => 34,
            Event::EpollDel { .. } => 35,
            Event::EpollWait { .. } => 36,
            Event::Eventfd { .. } => 37,
            Event::NonBlocking { .. } => 38,
            Event::PollListener { .. } => 39,
            Event::AcceptEmpty { .. } => 40,
            Event::IdleRepeats { .. } => 41,
            Event::SocketTimeout { .. } => 42,
            Event::Thread { .. } => 43,
            Event::BoundBySendto { .. } => 44,
            Event::ReusePort { .. } => 45,
            Event::UringSetup { .. } => 46,
            Event::UringEnter { .. } => 47,
            Event::UringDone { .. } => 48,
            Event::PeerName { .. } => 49,
            Event::DupListener { .. } => 50,
        }
    }
    const VARIANTS: usize = 51;

    /// Every branch of `explain` but the failures (see `errors`).
    fn samples() -> Vec<Event<'static>> {
        let a: SocketAddr = "127.0.0.1:9190".parse().unwrap();
        let v = |s: &str| s.parse::<SocketAddr>().unwrap();
        vec![
            Event::Socket {
                family: Family::Inet,
                kind: Kind::Stream,
                fd: 3,
            },
            Event::Socket {
                family: Family::Inet6,
                kind: Kind::Dgram,
                fd: 3,
            },
            Event::ReuseAddr {
                fd: 3,
                kind: Kind::Stream,
            },
            Event::ReuseAddr {
                fd: 3,
                kind: Kind::Dgram,
            },
            Event::ReusePort { fd: 3 },
            Event::DupListener { fd: 3, copy: 4 },
            Event::DualStack { fd: 3 },
            Event::Bind {
                fd: 3,
                addr: v("0.0.0.0:0"),
            },
            Event::Bind {
                fd: 3,
                addr: v("0.0.0.0:9190"),
            },
            Event::Bind {
                fd: 3,
                addr: v("[::]:9190"),
            },
            Event::Bind {
                fd: 3,
                addr: v("[::]:0"),
            },
            Event::Bind { fd: 3, addr: a },
            Event::Bind {
                fd: 3,
                addr: v("[::1]:0"),
            },
            Event::Listen { fd: 3, backlog: 4096 },
            Event::AcceptTimeout {
                fd: 3,
                limit: std::time::Duration::from_millis(100),
            },
            Event::StopListening { fd: 3 },
            Event::Activated { fd: 3, addr: a },
            Event::Draining {
                delay: std::time::Duration::from_secs(2),
            },
            Event::Drained,
            Event::Select {
                nfds: 10,
                read: &[3, 8],
                write: &[9],
                timeout: Some(std::time::Duration::from_millis(2500)),
                readable: &[3],
                writable: &[],
            },
            Event::Fork {
                child: 4242,
                in_child: false,
            },
            Event::Fork {
                child: 4242,
                in_child: true,
            },
            Event::CloseCopy {
                fd: 9,
                in_child: false,
            },
            Event::CloseCopy {
                fd: 3,
                in_child: true,
            },
            Event::Waitpid {
                pid: 4242,
                code: Some(0),
                signal: None,
            },
            Event::Exit { code: 0 },
            Event::ProxyHeader {
                fd: 4,
                version: 2,
                addresses: Some((a, v("10.0.0.2:9190"))),
            },
            Event::ProxyHeader {
                fd: 4,
                version: 2,
                addresses: None,
            },
            Event::BoundPort { fd: 3, addr: a },
            Event::Accept {
                listener: 3,
                fd: 4,
                peer: a,
            },
            Event::Connect {
                fd: 3,
                addr: a,
                kind: Kind::Stream,
            },
            Event::Connect {
                fd: 3,
                addr: a,
                kind: Kind::Dgram,
            },
            Event::Ephemeral { fd: 3, addr: a },
            Event::Read { fd: 4, data: b"hi\0" },
            Event::Read { fd: 4, data: b"" },
            Event::Write {
                fd: 4,
                data: b"Hello World!\0",
            },
            Event::Write {
                fd: 4,
                data: b"2 : hi\n",
            },
            Event::SendMore {
                fd: 4,
                data: b"Hello World!\0",
            },
            Event::SendMore {
                fd: 4,
                data: b"2 : hi\n",
            },
            Event::Unread { fd: 4, data: None },
            Event::Unread {
                fd: 4,
                data: Some(b""),
            },
            Event::Unread {
                fd: 4,
                data: Some(b"hi\n"),
            },
            Event::ShutdownWrite { fd: 4 },
            Event::Close { fd: 4 },
            Event::Linger0 { fd: 4 },
            Event::Disconnect { fd: 4 },
            Event::ShutdownBoth { fd: 4 },
            Event::SendTo {
                fd: 3,
                peer: a,
                data: b"",
            },
            Event::SendTo {
                fd: 3,
                peer: a,
                data: b"x\0",
            },
            Event::RecvFrom {
                fd: 3,
                peer: a,
                data: b"x",
            },
            Event::RecvFrom {
                fd: 3,
                peer: a,
                data: b"",
            },
            Event::EpollCreate { epfd: 5 },
            Event::EpollAdd {
                epfd: 5,
                fd: 8,
                events: Readiness {
                    readable: true,
                    writable: true,
                    hangup: true,
                    error: false,
                    edge: true,
                    exclusive: false,
                },
            },
            Event::EpollAdd {
                epfd: 5,
                fd: 8,
                events: Readiness {
                    readable: true,
                    ..Readiness::default()
                },
            },
            Event::EpollAdd {
                epfd: 5,
                fd: 3,
                events: Readiness {
                    readable: true,
                    edge: true,
                    exclusive: true,
                    ..Readiness::default()
                },
            },
            Event::EpollDel { epfd: 5, fd: 3 },
            Event::EpollWait {
                epfd: 5,
                max: 1024,
                timeout_ms: 100,
                ready: &[],
            },
            Event::EpollWait {
                epfd: 5,
                max: 1024,
                timeout_ms: -1,
                ready: &[(
                    8,
                    Readiness {
                        readable: true,
                        writable: false,
                        hangup: false,
                        error: false,
                        edge: false,
                        exclusive: false,
                    },
                )],
            },
            Event::Eventfd { fd: 7, ring: false },
            Event::Eventfd { fd: 7, ring: true },
            Event::NonBlocking { fd: 3, on: true },
            Event::NonBlocking { fd: 3, on: false },
            Event::PollListener {
                fd: 3,
                timeout_ms: 100,
                ready: true,
            },
            Event::PollListener {
                fd: 3,
                timeout_ms: 100,
                ready: false,
            },
            Event::AcceptEmpty {
                listener: 3,
                blocking: true,
            },
            Event::AcceptEmpty {
                listener: 3,
                blocking: false,
            },
            Event::IdleRepeats {
                listener: 3,
                times: 12,
            },
            Event::SocketTimeout {
                fd: 8,
                which: Timeout::Receive,
                limit: Some(std::time::Duration::from_secs(10)),
            },
            Event::SocketTimeout {
                fd: 8,
                which: Timeout::Send,
                limit: Some(std::time::Duration::from_secs(10)),
            },
            Event::SocketTimeout {
                fd: 8,
                which: Timeout::Send,
                limit: None,
            },
            Event::Thread {
                fd: 8,
                thread: 2,
                new: true,
            },
            Event::Thread {
                fd: 8,
                thread: 2,
                new: false,
            },
            Event::BoundBySendto { fd: 3, addr: a },
            Event::PeerName { fd: 7, addr: a },
            Event::UringSetup {
                fd: 4,
                entries: 256,
                flags: "IORING_SETUP_SINGLE_ISSUER",
            },
            Event::UringEnter {
                fd: 4,
                submitted: 3,
                min_complete: 1,
                timeout: Some(std::time::Duration::from_millis(9990)),
                completed: 5,
                timed_out: false,
            },
        ]
        .into_iter()
        .chain(uring_samples())
        .collect()
    }

    /// A completion of every op, with a result of each kind it has a branch for.
    fn uring_samples() -> Vec<Event<'static>> {
        let ops = [
            UringOp::Accept,
            UringOp::Send,
            UringOp::Shutdown,
            UringOp::CheckUnread,
            UringOp::Recv,
            UringOp::Close,
            UringOp::Cancel,
            UringOp::Wake,
            UringOp::ProvideBuffers,
        ];
        let mut v = Vec::new();
        for op in ops {
            for result in [7, 0, -libc::EAGAIN, -libc::ECANCELED, -libc::EMFILE] {
                for linked in [true, false] {
                    v.push(Event::UringDone {
                        op,
                        fd: 7,
                        result,
                        data: Some(b"hi\0"),
                        peer: Some("127.0.0.1:5000".parse().unwrap()),
                        linked,
                        more: true,
                    });
                }
            }
        }
        v
    }

    /// Every step with every errno this file knows, an unknown errno, and no errno.
    fn errors() -> Vec<(Step, io::Error)> {
        let mut v = Vec::new();
        for step in ALL_STEPS {
            for code in ALL_ERRNOS.into_iter().chain([libc::EXDEV]) {
                v.push((step, io::Error::from_raw_os_error(code)));
            }
            v.push((step, io::Error::from(io::ErrorKind::TimedOut)));
            v.push((step, io::Error::from(io::ErrorKind::WriteZero)));
        }
        v
    }

    fn has_hangul(s: &str) -> bool {
        s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
    }

    /// Terminal columns: a Hangul syllable takes two.
    fn width(s: &str) -> usize {
        s.chars()
            .map(|c| {
                if has_hangul(c.encode_utf8(&mut [0; 4])) {
                    2
                } else {
                    1
                }
            })
            .sum()
    }

    fn check_both(e: &Event<'_>) {
        let en = explain(e, Lang::En);
        let ko = explain(e, Lang::Ko);
        assert!(!en.is_empty(), "{e:?}");
        assert!(!has_hangul(&en), "{e:?}: Hangul in English: {en}");
        assert!(has_hangul(&ko), "{e:?}: Korean explanation has no Hangul: {ko}");
        assert_ne!(en, ko, "{e:?} is not translated");
        for s in [&en, &ko] {
            assert!(!s.contains('\n') && !s.contains("  "), "{e:?}: {s:?}");
            assert!(width(s) <= 100, "{e:?}: line too long: {s}");
        }
    }

    #[test]
    fn every_event_is_explained_in_both_languages() {
        let events = samples();
        let errs = errors();
        let failures: Vec<Event<'_>> = errs
            .iter()
            .flat_map(|(step, err)| {
                [
                    Event::Failed {
                        step: *step,
                        fd: Some(3),
                        err,
                    },
                    Event::FailedAt {
                        step: *step,
                        fd: 3,
                        addr: "127.0.0.1:9190".parse().unwrap(),
                        err,
                    },
                ]
            })
            .collect();
        let mut seen = [false; VARIANTS];
        for e in events.iter().chain(&failures) {
            seen[variant(e)] = true;
            check_both(e);
        }
        assert!(seen.iter().all(|s| *s), "a variant has no sample: {seen:?}");
    }

    #[test]
    fn branches_say_different_things() {
        let v = |s: &str| s.parse::<SocketAddr>().unwrap();
        let bind = |a| explain(&Event::Bind { fd: 3, addr: v(a) }, Lang::En);
        assert!(bind("0.0.0.0:9190").contains("INADDR_ANY"));
        assert!(!bind("0.0.0.0:9190").contains("port 0"));
        assert!(bind("0.0.0.0:0").contains("port 0"));
        assert!(bind("[::]:9190").contains("in6addr_any"));
        assert!(bind("127.0.0.1:9190").contains("only"));
        let bind_ko = |a| explain(&Event::Bind { fd: 3, addr: v(a) }, Lang::Ko);
        assert!(bind_ko("0.0.0.0:0").starts_with("주소 할당: INADDR_ANY"));
        assert!(bind_ko("0.0.0.0:0").contains("포트 0"));
        assert!(bind_ko("[::]:1").contains("in6addr_any"));

        let eof = explain(&Event::Read { fd: 3, data: b"" }, Lang::Ko);
        assert!(eof.contains("EOF"), "{eof}");
        let udp = explain(
            &Event::Connect {
                fd: 3,
                addr: v("127.0.0.1:1"),
                kind: Kind::Dgram,
            },
            Lang::En,
        );
        assert!(!udp.contains("handshake"), "{udp}");

        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let failed = |step, lang| {
            explain(
                &Event::Failed {
                    step,
                    fd: Some(3),
                    err: &refused,
                },
                lang,
            )
        };
        assert!(failed(Step::Connect, Lang::En).contains("RST"));
        assert!(failed(Step::Recvfrom, Lang::En).contains("ICMP"));
        assert!(failed(Step::Connect, Lang::Ko).starts_with("연결요청 실패: "));
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        let accept = explain(
            &Event::Failed {
                step: Step::Accept,
                fd: Some(3),
                err: &einval,
            },
            Lang::En,
        );
        assert!(accept.contains("stopping"), "{accept}");
    }

    /// The lines issue 14 found wrong, each checked so that it stays right.
    #[test]
    fn lines_once_wrong_stay_right() {
        // SO_REUSEADDR on a UDP socket has nothing to do with TIME_WAIT connections.
        for lang in [Lang::En, Lang::Ko] {
            let udp = explain(
                &Event::ReuseAddr {
                    fd: 3,
                    kind: Kind::Dgram,
                },
                lang,
            );
            assert!(
                !udp.to_lowercase().contains("time_wait") && !udp.contains("Time-wait 상태의"),
                "{udp}"
            );
            let tcp = explain(
                &Event::ReuseAddr {
                    fd: 3,
                    kind: Kind::Stream,
                },
                lang,
            );
            assert!(tcp.to_lowercase().contains("time"), "{tcp}");
        }
        // recv() = 0 means the client's FIN came: a half-close or a whole close.
        let eof = |lang| {
            explain(
                &Event::Unread {
                    fd: 4,
                    data: Some(b""),
                },
                lang,
            )
        };
        assert!(
            eof(Lang::Ko).contains("Half-close 또는 close"),
            "{}",
            eof(Lang::Ko)
        );
        assert!(
            eof(Lang::En).contains("half-closed or closed"),
            "{}",
            eof(Lang::En)
        );
        // A send of 120,010 bytes does not leave in one packet.
        let big = vec![b'x'; 120_010];
        for lang in [Lang::En, Lang::Ko] {
            let line = explain(&Event::SendMore { fd: 4, data: &big }, lang);
            assert!(
                !line.contains("one packet") && !line.contains("한 패킷"),
                "{line}"
            );
            let small = explain(
                &Event::SendMore {
                    fd: 4,
                    data: b"Hello World!\0",
                },
                lang,
            );
            assert!(
                small.contains("one packet") || small.contains("한 패킷"),
                "{small}"
            );
        }
        // Linux queues backlog + 1 connections, not backlog.
        for lang in [Lang::En, Lang::Ko] {
            let listen = explain(&Event::Listen { fd: 3, backlog: 1 }, lang);
            assert!(
                listen.contains("backlog + 1") || listen.contains("backlog+1개"),
                "{listen}"
            );
        }
        // The tutorials write 연결요청 in one word, and so does every line.
        for e in samples() {
            let ko = explain(&e, Lang::Ko);
            assert!(!ko.contains("연결 요청"), "{e:?}: {ko}");
        }
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let ko = explain(
            &Event::Failed {
                step: Step::Connect,
                fd: Some(3),
                err: &refused,
            },
            Lang::Ko,
        );
        assert!(ko.starts_with("연결요청 실패: "), "{ko}");
    }

    #[test]
    fn calls_show_real_values() {
        let a: SocketAddr = "127.0.0.1:9190".parse().unwrap();
        let c = |e: Event<'_>| call(&e);
        assert_eq!(
            c(Event::Socket {
                family: Family::Inet,
                kind: Kind::Stream,
                fd: 3
            }),
            "socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3"
        );
        assert_eq!(c(Event::Listen { fd: 3, backlog: 4096 }), "listen(3, 4096) = 0");
        assert_eq!(
            c(Event::Accept {
                listener: 3,
                fd: 4,
                peer: a
            }),
            "accept(3) = 4, peer 127.0.0.1:9190"
        );
        assert_eq!(c(Event::Read { fd: 4, data: b"hi\0" }), "read(4) = 3 \"hi\\0\"");
        assert_eq!(c(Event::Read { fd: 4, data: b"" }), "read(4) = 0");
        assert_eq!(
            c(Event::Write {
                fd: 4,
                data: b"Hello World!\0"
            }),
            "write(4, \"Hello World!\\0\") = 13"
        );
        assert_eq!(
            c(Event::SendMore {
                fd: 4,
                data: b"5 : hello\0"
            }),
            "send(4, \"5 : hello\\0\", MSG_MORE) = 10"
        );
        assert_eq!(
            c(Event::RecvFrom {
                fd: 3,
                peer: "[::1]:7".parse().unwrap(),
                data: b""
            }),
            "recvfrom(3) = 0 \"\", from [::1]:7"
        );
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(
            c(Event::Failed {
                step: Step::Connect,
                fd: Some(3),
                err: &refused
            }),
            "connect(3) = -1 ECONNREFUSED (Connection refused)"
        );
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(
            c(Event::Failed {
                step: Step::Connect,
                fd: Some(3),
                err: &timeout
            }),
            "connect(3): timed out"
        );
        assert_eq!(
            c(Event::FailedAt {
                step: Step::Connect,
                fd: 3,
                addr: a,
                err: &refused
            }),
            "connect(3, 127.0.0.1:9190) = -1 ECONNREFUSED (Connection refused)"
        );
        let no_fd = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(
            c(Event::Failed {
                step: Step::Socket,
                fd: None,
                err: &no_fd
            })
            .starts_with("socket() = -1 EMFILE (")
        );
        assert_eq!(errno_name(libc::EXDEV), "errno 18");
    }

    #[test]
    fn socket_timeouts_read_as_set() {
        let d = std::time::Duration::from_micros;
        assert_eq!(timeval(d(10_000_000)), "10s");
        assert_eq!(timeval(d(100_000)), "100ms");
        assert_eq!(timeval(d(4_999_997)), "4.999997s");
        assert_eq!(timeval(d(1_500_000)), "1.5s");
        assert_eq!(timeval(d(1)), "0.000001s");
    }

    #[test]
    fn data_is_shown_as_a_c_literal() {
        assert_eq!(Shown(b"a\0\n\r\t\"\\").to_string(), r#""a\0\n\r\t\"\\""#);
        assert_eq!(Shown(b"\xff\x1b").to_string(), r#""\xff\x1b""#);
        assert_eq!(Shown("\u{85}한".as_bytes()).to_string(), "\"\\xc2\\x85한\"");
        let long = vec![b'a'; 100];
        assert_eq!(Shown(&long).to_string(), format!("\"{}\"...", "a".repeat(64)));
        // A cut never splits a character: 21 three-byte characters are 63 bytes.
        let hangul = "한".repeat(30);
        assert_eq!(
            Shown(hangul.as_bytes()).to_string(),
            format!("\"{}\"...", "한".repeat(21))
        );
    }

    #[test]
    fn lang_choice() {
        assert_eq!(Lang::choose(Some(Lang::Ko)), Lang::Ko);
        assert_eq!(Lang::choose(Some(Lang::En)), Lang::En);
        assert_eq!(Lang::parse("ko"), Ok(Lang::Ko));
        assert_eq!(Lang::parse("en"), Ok(Lang::En));
        assert!(Lang::parse("fr").is_err());
    }

    #[test]
    fn render_has_role_time_call_and_explanation() {
        let took = std::time::Duration::from_micros(52);
        let line = render(
            "server",
            Lang::En,
            "00:00:00.000000",
            took,
            &Event::Close { fd: 4 },
        );
        assert_eq!(
            line,
            "00:00:00.000000 +52µs server  close(4) = 0  # [textbook] close the socket and release its descriptor\n"
        );
        let line = render(
            "client",
            Lang::Ko,
            "00:00:00.000000",
            took,
            &Event::ShutdownWrite { fd: 4 },
        );
        assert!(
            line.starts_with("00:00:00.000000 +52µs client  shutdown(4, SHUT_WR) = 0  # [추가] Half-close"),
            "{line}"
        );
        let child = render(
            "server[4242]",
            Lang::En,
            "00:00:00.000000",
            took,
            &Event::Exit { code: 0 },
        );
        assert!(
            child.starts_with("00:00:00.000000 +52µs server[4242]  _exit(0)"),
            "{child}"
        );
    }

    #[test]
    fn textbook_calls_are_told_from_added_ones_and_counted_by_name() {
        assert!(textbook(&Event::Listen { fd: 3, backlog: 5 }));
        assert!(textbook(&Event::EpollCreate { epfd: 5 }));
        assert!(!textbook(&Event::SendMore { fd: 4, data: b"x" }));
        assert!(!textbook(&Event::AcceptEmpty {
            listener: 3,
            blocking: false
        }));
        assert_eq!(
            call_name(&Event::ReuseAddr {
                fd: 3,
                kind: Kind::Stream
            }),
            "setsockopt"
        );
        assert_eq!(call_name(&Event::Drained), "drain");
        let mut counts = std::collections::BTreeMap::new();
        assert_eq!(left_out_line("server", Lang::En, &counts), None);
        counts.insert("setsockopt".to_string(), 2);
        counts.insert("recv".to_string(), 1);
        assert_eq!(
            left_out_line("server", Lang::En, &counts).unwrap(),
            "server: 3 calls beyond the textbook not shown: recv ×1, setsockopt ×2\n"
        );
        assert!(
            left_out_line("client", Lang::Ko, &counts)
                .unwrap()
                .contains("교재에 없는 호출 3개")
        );
        let args = |v: &[&str]| join_trace_value(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(args(&["--trace", "textbook", "0"]), ["--trace=textbook", "0"]);
        assert_eq!(args(&["--trace", "9190"]), ["--trace", "9190"]);
        assert_eq!(Selection::parse("textbook"), Ok(Selection::Textbook));
        assert!(Selection::parse("some").is_err());
    }
}
