//! `--trace`: what each socket call is, shown with its real arguments and result and one
//! line of explanation, in English or Korean (docs/contract.md#the-trace).
//!
//! This module only words the events; it does no I/O. The code that makes a call, in
//! [`crate::sys`], emits its event right after the call returns, from the real values,
//! through a [`crate::sys::Tracer`].
//!
//! Every explanation is written as an (English, Korean) pair in [`explain`], so no line
//! can fall back to English; the Korean uses the tutorials' terms (소켓 생성, 주소 할당,
//! 연결요청 대기상태, 연결 수락, 연결 요청, 데이터 송수신, Half-close, 소켓 종료).

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
    },
    /// `setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1)`: one listener of a worker's own.
    ReusePort {
        /// The socket.
        fd: i32,
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
    /// `send(fd, …, MSG_MORE)` sent these bytes of a reply that a `shutdown(SHUT_WR)`
    /// follows (see `crate::sys::Stream::send`).
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

/// Renders one trace line: `03:41:07.123456 server  listen(3, 4096) = 0  # explanation\n`.
pub fn render(role: Role, lang: Lang, time: String, event: &Event<'_>) -> String {
    let who = match role {
        Role::Server => "server",
        Role::Client => "client",
    };
    render_as(who, lang, time, event)
}

/// [`render`] with the role column spelled out (`server#2`: worker 2 of a server).
pub fn render_as(who: &str, lang: Lang, time: String, event: &Event<'_>) -> String {
    format!("{time} {who}  {}  # {}\n", call(event), explain(event, lang))
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
        Event::ReuseAddr { fd } => format!("setsockopt({fd}, SOL_SOCKET, SO_REUSEADDR, 1) = 0"),
        Event::ReusePort { fd } => format!("setsockopt({fd}, SOL_SOCKET, SO_REUSEPORT, 1) = 0"),
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
        Event::Failed { step, fd, err } => {
            let args = fd.map(|f| f.to_string()).unwrap_or_default();
            failed_call(*step, &args, err)
        }
        Event::FailedAt { step, fd, addr, err } => failed_call(*step, &format!("{fd}, {addr}"), err),
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
        Event::ReuseAddr { .. } => say(
            "let bind() take the port even while old connections wait in TIME_WAIT",
            "주소 재할당 허용: Time-wait 상태의 연결이 남아 있어도 같은 포트에 bind() 할 수 있습니다",
        ),
        Event::ReusePort { .. } => say(
            "one port, several listening sockets: the kernel spreads new connections over their queues",
            "포트 공유: 같은 포트의 여러 소켓에 커널이 새 연결을 나눠 각자의 대기 큐에 넣습니다",
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
            "listening: connections the kernel completes wait in the accept queue (up to backlog) for accept()",
            "연결요청 대기상태: 연결이 완료된 요청은 연결요청 대기 큐(최대 backlog개)에서 accept()를 기다립니다",
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
            "연결 요청: 서버와의 3-way handshake가 끝나 연결되었습니다",
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
            "읽지 않은 데이터 없음: close()로 깔끔하게 닫힙니다 (남아 있으면 RST가 가서 응답이 사라질 수 있음)",
        ),
        Event::Unread { data: Some([]), .. } => say(
            "the client already half-closed: nothing unread, close() is clean",
            "클라이언트가 이미 Half-close 했습니다: 남은 데이터가 없어 close()로 깔끔하게 닫힙니다",
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
        Event::SendMore { data: [.., 0], .. } => say(
            "send, held by MSG_MORE: leaves with the FIN of shutdown() in one packet; \\0 is the C string's NUL",
            "데이터 전송: MSG_MORE로 잡아 두었다가 shutdown()의 FIN과 한 패킷으로 보냅니다. \\0은 C 문자열의 NUL",
        ),
        Event::SendMore { .. } => say(
            "send, held by MSG_MORE: leaves with the FIN of the shutdown() below in one packet",
            "데이터 전송: MSG_MORE로 잡아 두었다가 아래 shutdown()의 FIN과 한 패킷으로 보냅니다",
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
        Step::Connect => "연결 요청",
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
            "a signal came while accept() waited (a child ended: SIGCHLD); the server looks around",
            "accept()가 기다리는 동안 시그널이 왔습니다(자식 종료: SIGCHLD). 할 일을 확인합니다",
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

    const ALL_ERRNOS: [i32; 23] = [
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

    const ALL_STEPS: [Step; 22] = [
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
            Event::ReusePort { .. } => 33,
        }
    }
    const VARIANTS: usize = 34;

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
            Event::ReuseAddr { fd: 3 },
            Event::ReusePort { fd: 3 },
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
        ]
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
        assert!(failed(Step::Connect, Lang::Ko).starts_with("연결 요청 실패: "));
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
        let line = render(
            Role::Server,
            Lang::En,
            "00:00:00.000000".into(),
            &Event::Close { fd: 4 },
        );
        assert_eq!(
            line,
            "00:00:00.000000 server  close(4) = 0  # close the socket and release its descriptor\n"
        );
    }
}
