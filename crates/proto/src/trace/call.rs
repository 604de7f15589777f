//! The C-call rendering: each event as C would spell the call, with its real arguments
//! and result (`read(4) = 6 "hello\0"`).

use std::fmt::{self, Write as _};
use std::io;

use super::{Datagram, Event, Family, Kind, Timeout, UringOp};
use crate::error::Step;

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
        Event::RecvBuffer { fd, bytes } => format!("setsockopt({fd}, SOL_SOCKET, SO_RCVBUF, {bytes}) = 0"),
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
        Event::RecvMmsg { fd, slots, got } => format!(
            "recvmmsg({fd}, {slots}, MSG_WAITFORONE) = {}: {}",
            got.len(),
            Batch(got, ", from ")
        ),
        Event::SendMmsg { fd, sent } => {
            format!(
                "sendmmsg({fd}, {n}) = {n}: {}",
                Batch(sent, ", to "),
                n = sent.len()
            )
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
            format!("accept({listener}) = -1 EAGAIN, poll() = 0 (×{times})")
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
pub(super) fn timeval(t: std::time::Duration) -> String {
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
pub(super) struct Shown<'a>(pub(super) &'a [u8]);

/// A batch's datagrams, `6 "hello\0", from 127.0.0.1:40000; …` (`", to "` for a sent
/// batch, whose sizes are its result): the first few, then how many more, so that a line
/// stays one short write however full the batch.
struct Batch<'a>(&'a [Datagram<'a>], &'a str);

impl fmt::Display for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let Batch(datagrams, to) = *self;
        for (i, d) in datagrams.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}{to}{}", d.data.len(), Shown(d.data), d.peer)?;
        }
        if datagrams.len() > SHOWN {
            write!(f, "; {} more", datagrams.len() - SHOWN)?;
        }
        Ok(())
    }
}

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
pub(super) fn errno_name(code: i32) -> String {
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
