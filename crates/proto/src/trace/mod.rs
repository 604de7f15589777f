//! `--trace`: what each socket call is, shown with its real arguments and result and one
//! line of explanation, in English or Korean (docs/contract.md#the-trace).
//!
//! This module only words the events; it does no I/O. The code that makes a call, in
//! [`crate::sys`], emits its event right after the call returns, from the real values,
//! through a [`crate::sys::Tracer`].
//!
//! The module is split by what it holds: [`Event`] (`event`), the C rendering [`call`]
//! (`call`), the explanations [`explain`] (`explain`), and the JSON [`record::Record`] of
//! `--trace-format json` (`record`); here, what every line has (who, the mark, the
//! language) and the text line ([`render`]).
//!
//! Every explanation is written as an (English, Korean) pair in [`explain`], so no line
//! can fall back to English; the Korean uses the tutorials' terms (소켓 생성, 주소 할당,
//! 연결요청 대기상태, 연결요청 대기 큐, 서버 소켓, 연결 수락, 연결요청, 송신, 수신,
//! Half-close, 소켓 닫기), spelled as the tutorials spell them (`연결요청` in one word,
//! everywhere), one term for one thing (never 리스닝 소켓, 데이터 전송 or 소켓 종료).

mod call;
mod event;
mod explain;
pub mod record;

use std::net::SocketAddr;

use crate::error::Step;

pub use call::call;
pub use event::{Datagram, Event, Readiness, Timeout, UringOp};
pub use explain::explain;

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

/// How `--trace` writes its lines (`--trace-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One line of text per call ([`render`]): what a learner reads.
    #[default]
    Text,
    /// One JSON object per line ([`record::Record`]): what a program reads.
    Json,
}

impl Format {
    /// Parses `text` or `json` (`--trace-format`).
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(format!("'{s}' is not a trace format (text, json)")),
        }
    }
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
/// process made by `fork()` (`server[4242]`). With `src`, the textbook C program's line
/// that makes the call (`--textbook`) comes after the mark, before the explanation:
/// `# [textbook] listen(serv_sock, 5)  explanation`.
pub fn render(
    who: &str,
    lang: Lang,
    time: &str,
    took: std::time::Duration,
    event: &Event<'_>,
    src: Option<&str>,
) -> String {
    let src = src.map(|s| format!("{s}  ")).unwrap_or_default();
    format!(
        "{time} +{}µs {who}  {}  # [{}] {src}{}\n",
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
        | Event::RecvBuffer { .. }
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
        | Event::UringDone { .. }
        | Event::RecvMmsg { .. }
        | Event::SendMmsg { .. } => false,
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
            "{who}: {} beyond the textbook not shown: {}\n",
            crate::words::counted(total, "call"),
            each.join(", ")
        ),
        Lang::Ko => format!(
            "{who}: 교재에 없는 호출 {total}개는 생략했습니다: {}\n",
            each.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::call::{Shown, errno_name, timeval};
    use super::*;
    use std::io;

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

    const ALL_STEPS: [Step; 26] = [
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
        Step::Sendmmsg,
        Step::Recvmmsg,
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
            Event::RecvMmsg { .. } => 51,
            Event::SendMmsg { .. } => 52,
            Event::RecvBuffer { .. } => 53,
        }
    }
    const VARIANTS: usize = 54;

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
            Event::RecvBuffer {
                fd: 3,
                bytes: 4 << 20,
            },
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
            Event::RecvMmsg {
                fd: 3,
                slots: 64,
                got: Box::leak(Box::new([Datagram { peer: a, data: b"hi" }])),
            },
            Event::RecvMmsg {
                fd: 3,
                slots: 64,
                got: Box::leak(Box::new([
                    Datagram { peer: a, data: b"hi" },
                    Datagram {
                        peer: v("127.0.0.1:40000"),
                        data: b"",
                    },
                ])),
            },
            Event::SendMmsg {
                fd: 3,
                sent: Box::leak(Box::new([
                    Datagram {
                        peer: a,
                        data: b"x\0",
                    },
                    Datagram {
                        peer: v("127.0.0.1:40000"),
                        data: b"y\0",
                    },
                ])),
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

    /// The lines a reader of the tutorials found wrong in issue 23, and the tutorials'
    /// terms, each checked so that they stay right.
    #[test]
    fn issue_23s_words_stay_the_tutorials() {
        let all = || samples().into_iter().chain(failure_samples());
        for e in all() {
            let ko = explain(&e, Lang::Ko);
            // One term for one thing: the tutorials' 서버 소켓, 송신, 소켓 닫기, and the
            // queue always called by its name, 연결요청 대기 큐.
            for wrong in [
                "리스닝 소켓",
                "데이터 전송",
                "데이터그램 전송",
                "소켓 종료",
                "디스크립터를 반환",
            ] {
                assert!(!ko.contains(wrong), "{e:?}: {ko}");
            }
            let queues = ko.matches("대기 큐").count();
            assert_eq!(queues, ko.matches("연결요청 대기 큐").count(), "{e:?}: {ko}");
            // No event loop, no events: only an event-driven model may say so.
            let eventful = matches!(
                e,
                Event::EpollWait { .. } | Event::EpollCreate { .. } | Event::Select { .. }
            );
            assert!(eventful || !ko.contains("이벤트를 기다립니다"), "{e:?}: {ko}");
        }
        // connect() returns once the connection is in the server's queue, not at accept().
        let connect = Event::Connect {
            fd: 3,
            addr: "127.0.0.1:9190".parse().unwrap(),
            kind: Kind::Stream,
        };
        let ko = explain(&connect, Lang::Ko);
        assert!(ko.contains("연결요청 대기 큐") && ko.contains("accept()"), "{ko}");
        let en = explain(&connect, Lang::En);
        assert!(en.contains("accept queue") && en.contains("accept()"), "{en}");
        // close() gives the descriptor back to the operating system (반환 is a return value).
        assert!(explain(&Event::Close { fd: 4 }, Lang::Ko).contains("운영체제에 돌려줍니다"));
        // A bind to one IP: UDP has no connections, only datagrams.
        let bind = explain(
            &Event::Bind {
                fd: 3,
                addr: "127.0.0.1:9190".parse().unwrap(),
            },
            Lang::Ko,
        );
        assert!(bind.contains("데이터그램"), "{bind}");
        // The queue running dry in the blocking models is no event.
        let empty = Event::AcceptEmpty {
            listener: 3,
            blocking: false,
        };
        assert!(!explain(&empty, Lang::En).contains("event"));
    }

    /// A failure of every step, with and without its address.
    fn failure_samples() -> Vec<Event<'static>> {
        static ERR: std::sync::OnceLock<io::Error> = std::sync::OnceLock::new();
        let err = ERR.get_or_init(|| io::Error::from_raw_os_error(libc::ECONNREFUSED));
        ALL_STEPS
            .iter()
            .map(|&step| Event::Failed {
                step,
                fd: Some(3),
                err,
            })
            .collect()
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
            None,
        );
        assert_eq!(
            line,
            "00:00:00.000000 +52µs server  close(4) = 0  # [textbook] close the socket and release its descriptor\n"
        );
        let from = render(
            "server",
            Lang::En,
            "00:00:00.000000",
            took,
            &Event::Close { fd: 4 },
            Some("close(clnt_sock);"),
        );
        assert_eq!(
            from,
            "00:00:00.000000 +52µs server  close(4) = 0  # [textbook] close(clnt_sock);  close the socket and release its descriptor\n"
        );
        let line = render(
            "client",
            Lang::Ko,
            "00:00:00.000000",
            took,
            &Event::ShutdownWrite { fd: 4 },
            None,
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
            None,
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
