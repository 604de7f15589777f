//! `--trace`: narrates each socket call as it is made, with its real arguments and result
//! and one line of explanation, in English or Korean (SPEC §9).
//!
//! The code that makes a call emits its event right after the call returns, from the real
//! values. With tracing off a [`Tracer`] is a `None` and every hook is one branch.

use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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
    /// `connect(2)` succeeded.
    Connect {
        /// The socket.
        fd: i32,
        /// The server's address.
        addr: SocketAddr,
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
}

/// Which program is speaking, shown on every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// hello-server.
    Server,
    /// hello-client.
    Client,
}

#[derive(Debug)]
struct Sink {
    role: Role,
    lang: Lang,
}

/// Where trace events go: nowhere (the default), or stderr.
#[derive(Debug, Clone, Default)]
pub struct Tracer(Option<Arc<Sink>>);

impl Tracer {
    /// A tracer that prints nothing.
    pub fn off() -> Tracer {
        Tracer(None)
    }

    /// A tracer that writes one line per event to stderr.
    pub fn stderr(role: Role, lang: Lang) -> Tracer {
        Tracer(Some(Arc::new(Sink { role, lang })))
    }

    /// Whether events are printed; call sites check this before building an event.
    #[inline]
    pub fn on(&self) -> bool {
        self.0.is_some()
    }

    /// Prints one event (a no-op when off).
    #[inline]
    pub fn emit(&self, event: Event<'_>) {
        if let Some(sink) = &self.0 {
            let line = render(sink.role, sink.lang, clock(), &event);
            // One write(2) per line keeps lines whole when threads trace at once; a closed
            // stderr is not worth failing the exchange for.
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// Wall-clock time of day (UTC) with microseconds: `03:41:07.123456`. Both programs use
/// the same clock, so their lines can be merged in the order they happened.
fn clock() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        now.subsec_micros()
    )
}

/// Renders one trace line: `03:41:07.123456 server  listen(3, 4096) = 0  # explanation\n`.
pub fn render(role: Role, lang: Lang, time: String, event: &Event<'_>) -> String {
    let who = match role {
        Role::Server => "server",
        Role::Client => "client",
    };
    format!("{time} {who}  {}  # {}\n", call(event), explain(event, lang))
}

/// The call as C would spell it, with its real arguments and result.
pub fn call(event: &Event<'_>) -> String {
    match event {
        Event::Socket { family, kind, fd } => {
            let (d, t, p) = (
                match family {
                    Family::Inet => "AF_INET",
                    Family::Inet6 => "AF_INET6",
                },
                match kind {
                    Kind::Stream => "SOCK_STREAM",
                    Kind::Dgram => "SOCK_DGRAM",
                },
                match kind {
                    Kind::Stream => "IPPROTO_TCP",
                    Kind::Dgram => "IPPROTO_UDP",
                },
            );
            format!("socket({d}, {t}, {p}) = {fd}")
        }
        Event::ReuseAddr { fd } => format!("setsockopt({fd}, SOL_SOCKET, SO_REUSEADDR, 1) = 0"),
        Event::DualStack { fd } => format!("setsockopt({fd}, IPPROTO_IPV6, IPV6_V6ONLY, 0) = 0"),
        Event::Bind { fd, addr } => format!("bind({fd}, {addr}) = 0"),
        Event::Listen { fd, backlog } => format!("listen({fd}, {backlog}) = 0"),
        Event::BoundPort { fd, addr } | Event::Ephemeral { fd, addr } => {
            format!("getsockname({fd}) = {addr}")
        }
        Event::Accept { listener, fd, peer } => format!("accept({listener}) = {fd}, peer {peer}"),
        Event::Connect { fd, addr } => format!("connect({fd}, {addr}) = 0"),
        Event::Read { fd, data } => format!("read({fd}) = {} {}", data.len(), Shown(data)),
        Event::Write { fd, data } => format!("write({fd}, {}) = {}", Shown(data), data.len()),
        Event::ShutdownWrite { fd } => format!("shutdown({fd}, SHUT_WR) = 0"),
        Event::Close { fd } => format!("close({fd}) = 0"),
        Event::SendTo { fd, peer, data } => {
            format!("sendto({fd}, {}, {peer}) = {}", Shown(data), data.len())
        }
        Event::RecvFrom { fd, peer, data } => {
            format!("recvfrom({fd}) = {} {}, from {peer}", data.len(), Shown(data))
        }
        Event::Failed { step, fd, err } => {
            let name = step.name().trim_end_matches("()");
            let arg = fd.map(|f| f.to_string()).unwrap_or_default();
            format!("{name}({arg}) = -1 {} ({err})", errno_name(err))
        }
    }
}

/// Bytes shown as a C string literal, NUL and control bytes made visible, cut at 64 bytes.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        let cut = self.0.len() > MAX;
        let shown = if cut { &self.0[..MAX] } else { self.0 };
        let mut s = String::from("\"");
        for chunk in shown.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\0' => s.push_str("\\0"),
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    c if c.is_control() => s.extend(c.escape_default()),
                    c => s.push(c),
                }
            }
            for b in chunk.invalid() {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
        s.push('"');
        if cut {
            s.push_str("...");
        }
        f.write_str(&s)
    }
}

/// The symbolic errno of an OS error (`ECONNREFUSED`), or `errno N`.
fn errno_name(err: &io::Error) -> String {
    let Some(code) = err.raw_os_error() else {
        return "(no errno)".into();
    };
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
        libc::ENOTCONN => "ENOTCONN",
        libc::EPERM => "EPERM",
        libc::EPIPE => "EPIPE",
        libc::ETIMEDOUT => "ETIMEDOUT",
        _ => return format!("errno {code}"),
    };
    name.to_string()
}

/// The one-line explanation of an event, in `lang`.
pub fn explain(event: &Event<'_>, lang: Lang) -> String {
    use Lang::{En, Ko};
    let s: &str = match (event, lang) {
        (
            Event::Socket {
                kind: Kind::Stream, ..
            },
            En,
        ) => "create a TCP socket: the kernel returns a file descriptor, with no address yet",
        (
            Event::Socket {
                kind: Kind::Stream, ..
            },
            Ko,
        ) => "소켓 생성: TCP 소켓을 만들고 파일 디스크립터를 돌려받습니다 (아직 주소는 없습니다)",
        (
            Event::Socket {
                kind: Kind::Dgram, ..
            },
            En,
        ) => "create a UDP socket: datagrams, no connection and no accept()",
        (
            Event::Socket {
                kind: Kind::Dgram, ..
            },
            Ko,
        ) => "소켓 생성: UDP 소켓입니다. 연결 과정(listen/accept) 없이 데이터그램을 주고받습니다",
        (Event::ReuseAddr { .. }, En) => {
            "allow bind() to reuse the port while old connections wait in TIME_WAIT"
        }
        (Event::ReuseAddr { .. }, Ko) => {
            "주소 재할당 허용: TIME_WAIT 상태의 이전 연결이 남아 있어도 같은 포트에 bind() 할 수 있습니다"
        }
        (Event::DualStack { .. }, En) => {
            "dual-stack: this IPv6 socket also takes IPv4 clients, seen as ::ffff:a.b.c.d"
        }
        (Event::DualStack { .. }, Ko) => {
            "듀얼 스택: 이 IPv6 소켓은 IPv4 클라이언트도 받습니다 (::ffff:a.b.c.d 형태로 보입니다)"
        }
        (Event::Bind { addr, .. }, lang) => {
            return bind_explanation(addr, lang);
        }
        (Event::Listen { .. }, En) => {
            "wait for connections: the kernel completes handshakes and queues them (up to the backlog, capped by somaxconn) until accept() takes them"
        }
        (Event::Listen { .. }, Ko) => {
            "연결요청 대기상태: 커널이 연결(3-way handshake)을 완료해 대기 큐에 쌓아 두고, accept()가 하나씩 꺼내 갑니다 (큐 크기는 backlog, somaxconn이 상한)"
        }
        (Event::BoundPort { .. }, En) => "the port the kernel chose for port 0",
        (Event::BoundPort { .. }, Ko) => "포트 0을 요청했으므로 커널이 고른 실제 포트입니다",
        (Event::Accept { .. }, En) => {
            "accept a connection: a NEW descriptor for this client; the listening socket keeps listening"
        }
        (Event::Accept { .. }, Ko) => {
            "연결 수락: 이 클라이언트와 통신할 새 소켓(디스크립터)이 생깁니다. 서버 소켓은 계속 연결요청을 기다립니다"
        }
        (Event::Connect { .. }, En) => "connect: the three-way handshake with the server completed",
        (Event::Connect { .. }, Ko) => "연결 요청: 서버와의 3-way handshake가 완료되었습니다",
        (Event::Ephemeral { .. }, En) => {
            "the kernel gave the client this address and ephemeral port at connect(); the client never called bind()"
        }
        (Event::Ephemeral { .. }, Ko) => {
            "클라이언트 주소는 connect() 때 커널이 자동으로 할당했습니다 (IP와 임의의 포트, bind() 호출 없음)"
        }
        (Event::Read { data: [], .. }, En) => "read() returned 0: the peer closed its side (end of stream)",
        (Event::Read { data: [], .. }, Ko) => {
            "read()가 0을 반환: 상대방이 연결을 닫았습니다 (EOF, 데이터의 끝)"
        }
        (Event::Read { .. }, En) => {
            "receive bytes; TCP has no message boundaries, so one read() may hold part of a message"
        }
        (Event::Read { .. }, Ko) => {
            "데이터 수신: TCP에는 데이터의 경계가 없어 한 번의 read()가 메시지의 일부만 가져올 수도 있습니다"
        }
        (Event::Write { .. }, En) => "send bytes to the peer (\\0 is the C string's NUL)",
        (Event::Write { .. }, Ko) => "데이터 전송: 상대 소켓으로 바이트를 보냅니다 (\\0은 C 문자열 끝의 NUL)",
        (Event::ShutdownWrite { .. }, En) => "half-close: send EOF (FIN) to the peer but keep reading",
        (Event::ShutdownWrite { .. }, Ko) => {
            "Half-close: 출력 스트림만 종료해 상대에게 EOF(FIN)를 보내고, 입력은 계속 받을 수 있습니다"
        }
        (Event::Close { .. }, En) => "close the socket and release its descriptor",
        (Event::Close { .. }, Ko) => "소켓 종료: 연결을 닫고 디스크립터를 반환합니다",
        (Event::SendTo { .. }, En) => "send one datagram to this address",
        (Event::SendTo { .. }, Ko) => "데이터그램 전송: 목적지 주소를 지정해 하나의 데이터그램을 보냅니다",
        (Event::RecvFrom { .. }, En) => "receive one whole datagram and learn who sent it",
        (Event::RecvFrom { .. }, Ko) => {
            "데이터그램 수신: 데이터그램 하나를 통째로 받고 보낸 쪽의 주소도 알게 됩니다"
        }
        (Event::Failed { .. }, En) => "the call failed; errno says why",
        (Event::Failed { .. }, Ko) => "호출 실패: errno가 그 이유를 알려 줍니다",
    };
    s.to_string()
}

fn bind_explanation(addr: &SocketAddr, lang: Lang) -> String {
    let any = addr.ip().is_unspecified();
    let v6 = addr.is_ipv6();
    let mut s = String::from(match lang {
        Lang::En => "assign the address: ",
        Lang::Ko => "주소 할당: ",
    });
    s.push_str(match (any, v6, lang) {
        (true, false, Lang::En) => "INADDR_ANY (0.0.0.0) means every local IPv4 address",
        (true, false, Lang::Ko) => "INADDR_ANY(0.0.0.0)는 이 컴퓨터의 모든 IPv4 주소를 뜻합니다",
        (true, true, Lang::En) => "in6addr_any (::) means every local address",
        (true, true, Lang::Ko) => "in6addr_any(::)는 이 컴퓨터의 모든 주소를 뜻합니다",
        (false, _, Lang::En) => "only connections to this address are accepted",
        (false, _, Lang::Ko) => "이 주소로 들어오는 연결만 받습니다",
    });
    if addr.port() == 0 {
        s.push_str(match lang {
            Lang::En => "; port 0 lets the kernel choose a free port",
            Lang::Ko => "; 포트 0이면 커널이 빈 포트를 고릅니다",
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(err: &io::Error) -> Vec<Event<'_>> {
        let a: SocketAddr = "127.0.0.1:9190".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
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
            Event::DualStack { fd: 3 },
            Event::Bind { fd: 3, addr: any },
            Event::Bind {
                fd: 3,
                addr: "[::]:9190".parse().unwrap(),
            },
            Event::Bind { fd: 3, addr: a },
            Event::Listen { fd: 3, backlog: 4096 },
            Event::BoundPort { fd: 3, addr: a },
            Event::Accept {
                listener: 3,
                fd: 4,
                peer: a,
            },
            Event::Connect { fd: 3, addr: a },
            Event::Ephemeral { fd: 3, addr: a },
            Event::Read { fd: 4, data: b"hi\0" },
            Event::Read { fd: 4, data: b"" },
            Event::Write {
                fd: 4,
                data: b"Hello World!\0",
            },
            Event::ShutdownWrite { fd: 4 },
            Event::Close { fd: 4 },
            Event::SendTo {
                fd: 3,
                peer: a,
                data: b"",
            },
            Event::RecvFrom {
                fd: 3,
                peer: a,
                data: b"x",
            },
            Event::Failed {
                step: Step::Connect,
                fd: Some(3),
                err,
            },
        ]
    }

    #[test]
    fn every_event_is_explained_in_both_languages() {
        let err = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        for e in samples(&err) {
            let en = explain(&e, Lang::En);
            let ko = explain(&e, Lang::Ko);
            assert!(!en.is_empty() && !ko.is_empty(), "{e:?}");
            assert_ne!(en, ko, "{e:?} is not translated");
            assert!(
                ko.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)),
                "{e:?}: Korean explanation has no Hangul: {ko}"
            );
        }
    }

    #[test]
    fn calls_show_real_values() {
        let err = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let s = samples(&err);
        assert_eq!(call(&s[0]), "socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3");
        assert_eq!(call(&s[7]), "listen(3, 4096) = 0");
        assert_eq!(call(&s[9]), "accept(3) = 4, peer 127.0.0.1:9190");
        assert_eq!(call(&s[12]), "read(4) = 3 \"hi\\0\"");
        assert_eq!(call(&s[14]), "write(4, \"Hello World!\\0\") = 13");
        assert!(call(&s[19]).starts_with("connect(3) = -1 ECONNREFUSED (Connection refused"));
        assert!(explain(&s[4], Lang::En).contains("INADDR_ANY"));
        assert!(explain(&s[4], Lang::En).contains("port 0"));
    }

    #[test]
    fn long_and_binary_data_is_cut_and_escaped() {
        let long = vec![b'a'; 100];
        let shown = Shown(&long).to_string();
        assert_eq!(shown.len(), 64 + 2 + 3);
        assert_eq!(Shown(b"\xff\x1b\"").to_string(), "\"\\xff\\u{1b}\\\"\"");
    }

    #[test]
    fn lang_choice() {
        assert_eq!(Lang::choose(Some(Lang::Ko)), Lang::Ko);
        assert_eq!(Lang::parse("ko"), Ok(Lang::Ko));
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
