//! One `--trace-format json` line read back (docs/contract.md#the-trace-as-json): a
//! [`Record`] with when the call was made, how long it took, which process made it, the
//! call and its values, the mark and the explanation; and what the call did to a
//! connection, as far as the timeline needs to know (bytes sent or received, a FIN, a
//! connect, an accept, a datagram, a readiness report, a child's exit, a signal), read
//! from the record's fields, never from the rendered text.
//!
//! Pure: text in, values out.

use hello_proto::trace::record::Record;

/// Every record of a program's stderr (its other lines, such as an error line, left out).
pub fn parse_all(text: &str) -> Vec<Record> {
    text.lines().filter_map(Record::parse).collect()
}

/// What a call did, as far as what crosses between the programs goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// `socket()` made descriptor `fd`; `udp` for a datagram socket.
    Socket {
        /// The descriptor.
        fd: i32,
        /// A datagram socket.
        udp: bool,
    },
    /// `bind(fd, addr)` with a port that is not 0.
    Bind {
        /// The descriptor.
        fd: i32,
        /// The port.
        port: u16,
    },
    /// `listen(fd, backlog) = 0`: a listening socket.
    Listen {
        /// The descriptor.
        fd: i32,
    },
    /// `connect(fd, addr) = 0`: a TCP handshake (or a UDP peer set) with `port`.
    Connect {
        /// The descriptor.
        fd: i32,
        /// The server's port.
        port: u16,
    },
    /// `getsockname(fd) = addr`: the socket's own port.
    LocalPort {
        /// The descriptor.
        fd: i32,
        /// Its port.
        port: u16,
    },
    /// `accept(listener) = fd, peer addr` (or the ring's accept completion).
    Accept {
        /// The listening socket.
        listener: i32,
        /// The new descriptor.
        fd: i32,
        /// The client's port.
        peer: u16,
    },
    /// `write()`/`send()` sent `n` bytes.
    Send {
        /// The descriptor.
        fd: i32,
        /// Bytes sent.
        n: u64,
    },
    /// `read()`/`recv()` got `n` bytes (not 0).
    Receive {
        /// The descriptor.
        fd: i32,
        /// Bytes received.
        n: u64,
    },
    /// `read()`/`recv()` = 0: end of stream.
    Eof {
        /// The descriptor.
        fd: i32,
    },
    /// `shutdown()`: a FIN is sent.
    Shutdown {
        /// The descriptor.
        fd: i32,
    },
    /// `close()`.
    Close {
        /// The descriptor.
        fd: i32,
    },
    /// `setsockopt(SO_LINGER, {1, 0})`: the `close()` that follows sends RST.
    Linger0 {
        /// The descriptor.
        fd: i32,
    },
    /// `sendto()` sent a datagram of `n` bytes to `port`.
    SendTo {
        /// The descriptor.
        fd: i32,
        /// Where to.
        port: u16,
        /// Its size.
        n: u64,
    },
    /// `recvfrom()` received a datagram of `n` bytes from `port`.
    RecvFrom {
        /// The descriptor.
        fd: i32,
        /// From where.
        port: u16,
        /// Its size.
        n: u64,
    },
    /// A receive or send on `fd` failed with ECONNRESET: the peer reset the connection.
    Reset {
        /// The descriptor.
        fd: i32,
    },
    /// A receive or send on `fd` failed with ECONNREFUSED: for a connected UDP socket,
    /// an ICMP port unreachable came back for a datagram it sent.
    Refused {
        /// The descriptor.
        fd: i32,
    },
    /// `waitpid()` reaped this child: it has exited.
    Reaped {
        /// The child's process id.
        child: i64,
    },
    /// `select()`, `poll()` or `epoll_wait()` found these descriptors ready to read (or
    /// to accept, or at end of stream).
    Ready {
        /// The descriptors.
        fds: Vec<i32>,
    },
    /// `fork()` returned in the parent: the child's process id.
    Forked {
        /// The child.
        child: i64,
    },
    /// `fork()` returned 0: the first call of the child.
    InChild,
    /// A child's `_exit()`: its parent is sent SIGCHLD.
    Exit,
    /// A call that failed with EINTR: a signal came while it waited.
    Interrupted,
    /// Anything else: no effect on the other program.
    Other,
}

/// What a call did, from its record's fields.
pub fn act(r: &Record) -> Act {
    let name = r.call.as_str();
    let (Some(fd), Some(ret)) = (r.fd, r.ret) else {
        return match name {
            "_exit" => Act::Exit,
            "fork" => match r.ret {
                Some(0) => Act::InChild,
                Some(child) if child > 0 => Act::Forked { child },
                _ => Act::Other,
            },
            "select" => Act::Ready {
                fds: r.readable.clone().unwrap_or_default(),
            },
            "waitpid" => match r.ret {
                Some(child) if child > 0 => Act::Reaped { child },
                _ => Act::Other,
            },
            _ => Act::Other,
        };
    };
    let io = matches!(
        name,
        "read" | "recv" | "write" | "send" | "IORING_OP_RECV" | "IORING_OP_SEND"
    );
    match r.errno.as_deref() {
        Some("ECONNRESET") if io => return Act::Reset { fd },
        Some("ECONNREFUSED") if io || matches!(name, "recvfrom" | "sendto") => return Act::Refused { fd },
        Some("EINTR") => return Act::Interrupted,
        Some(_) => return Act::Other,
        None if ret < 0 => return Act::Other,
        None => {}
    }
    let n = u64::try_from(ret).unwrap_or(0);
    let port = |a: Option<std::net::SocketAddr>| a.map(|a| a.port());
    let got = || -> Option<Act> {
        Some(match name {
            "socket" => Act::Socket {
                fd,
                udp: r.proto.as_deref() == Some("udp"),
            },
            "bind" => Act::Bind {
                fd,
                port: port(r.local).filter(|p| *p != 0)?,
            },
            "listen" => Act::Listen { fd },
            "connect" => Act::Connect {
                fd,
                port: port(r.peer)?,
            },
            "getsockname" => Act::LocalPort {
                fd,
                port: port(r.local)?,
            },
            "accept" | "IORING_OP_ACCEPT" => Act::Accept {
                listener: fd,
                fd: i32::try_from(ret).ok()?,
                peer: port(r.peer)?,
            },
            "write" | "send" | "IORING_OP_SEND" => Act::Send { fd, n },
            "read" | "recv" | "IORING_OP_RECV" if n == 0 => Act::Eof { fd },
            "read" | "recv" | "IORING_OP_RECV" => Act::Receive { fd, n },
            "shutdown" | "IORING_OP_SHUTDOWN" => Act::Shutdown { fd },
            "close" | "IORING_OP_CLOSE" => Act::Close { fd },
            "setsockopt" if r.opt.as_deref() == Some("SO_LINGER") => Act::Linger0 { fd },
            "sendto" => Act::SendTo {
                fd,
                port: port(r.peer)?,
                n,
            },
            "recvfrom" => Act::RecvFrom {
                fd,
                port: port(r.peer)?,
                n,
            },
            // A batch of one datagram is that datagram (its record names the sender and
            // counts its bytes); a larger batch names no one sender and is left out.
            "recvmmsg" if ret == 1 => Act::RecvFrom {
                fd,
                port: port(r.peer)?,
                n: r.bytes?,
            },
            "sendmmsg" if ret == 1 => Act::SendTo {
                fd,
                port: port(r.peer)?,
                n: r.bytes?,
            },
            "poll" | "epoll_wait" => Act::Ready {
                fds: r.readable.clone()?,
            },
            _ => Act::Other,
        })
    };
    got().unwrap_or(Act::Other)
}

/// The record of `event` made by `who` at `t_us` for `dur_us`, in English, read back
/// from its JSON line: the tests' traces, made by the programs' own writer.
#[cfg(test)]
pub(crate) fn record(who: &str, t_us: u64, dur_us: u64, event: hello_proto::trace::Event<'_>) -> Record {
    let line = Record::of(who, hello_proto::trace::Lang::En, t_us, dur_us, &event).line();
    Record::parse(&line).unwrap_or_else(|| panic!("not a record: {line}"))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::SocketAddr;

    use hello_proto::error::Step;
    use hello_proto::trace::{Event, Family, Kind, Readiness};

    use super::*;

    fn of(event: Event<'_>) -> Act {
        act(&record("server", 0, 0, event))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lines_that_are_no_record_are_left_out() {
        let line = Record::of(
            "server[4242]",
            hello_proto::trace::Lang::Ko,
            7,
            52,
            &Event::Close { fd: 8 },
        )
        .line();
        let text = format!("{line}hello-client: connect() error: 127.0.0.1:1: refused\n{line}");
        let all = parse_all(&text);
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].t_us, all[0].dur_us, all[0].who.as_str()),
            (7, 52, "server[4242]")
        );
        assert!(all[0].textbook() && all[0].end() == 59);
    }

    #[test]
    fn calls_say_what_they_did() {
        let udp = Event::Socket {
            family: Family::Inet,
            kind: Kind::Dgram,
            fd: 3,
        };
        assert_eq!(of(udp), Act::Socket { fd: 3, udp: true });
        let bind0 = Event::Bind {
            fd: 3,
            addr: addr("127.0.0.1:0"),
        };
        assert_eq!(of(bind0), Act::Other);
        let bind = Event::Bind {
            fd: 3,
            addr: addr("127.0.0.1:9190"),
        };
        assert_eq!(of(bind), Act::Bind { fd: 3, port: 9190 });
        assert_eq!(of(Event::Listen { fd: 3, backlog: 4096 }), Act::Listen { fd: 3 });
        let connect = Event::Connect {
            fd: 3,
            addr: addr("[::1]:9190"),
            kind: Kind::Stream,
        };
        assert_eq!(of(connect), Act::Connect { fd: 3, port: 9190 });
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let failed = Event::FailedAt {
            step: Step::Connect,
            fd: 3,
            addr: addr("127.0.0.1:9190"),
            err: &refused,
        };
        assert_eq!(of(failed), Act::Other);
        let accept = Event::Accept {
            listener: 3,
            fd: 8,
            peer: addr("127.0.0.1:37288"),
        };
        assert_eq!(
            of(accept),
            Act::Accept {
                listener: 3,
                fd: 8,
                peer: 37288
            }
        );
        let empty = Event::AcceptEmpty {
            listener: 3,
            blocking: false,
        };
        assert_eq!(of(empty), Act::Other);
        assert_eq!(
            of(Event::SendMore {
                fd: 8,
                data: b"Hello World!\0"
            }),
            Act::Send { fd: 8, n: 13 }
        );
        assert_eq!(
            of(Event::Unread {
                fd: 8,
                data: Some(b"")
            }),
            Act::Eof { fd: 8 }
        );
        assert_eq!(of(Event::Unread { fd: 8, data: None }), Act::Other);
        assert_eq!(of(Event::Read { fd: 3, data: b"" }), Act::Eof { fd: 3 });
        assert_eq!(of(Event::ShutdownWrite { fd: 8 }), Act::Shutdown { fd: 8 });
        let sendto = Event::SendTo {
            fd: 3,
            peer: addr("127.0.0.1:9190"),
            data: b"x, y",
        };
        assert_eq!(
            of(sendto),
            Act::SendTo {
                fd: 3,
                port: 9190,
                n: 4
            }
        );
        let recvfrom = Event::RecvFrom {
            fd: 3,
            peer: addr("127.0.0.1:9190"),
            data: b"Hello, from 1:2",
        };
        assert_eq!(
            of(recvfrom),
            Act::RecvFrom {
                fd: 3,
                port: 9190,
                n: 15
            }
        );
        assert_eq!(of(Event::Linger0 { fd: 8 }), Act::Linger0 { fd: 8 });
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        let read = |err| Event::Failed {
            step: Step::Read,
            fd: Some(3),
            err,
        };
        assert_eq!(of(read(&reset)), Act::Reset { fd: 3 });
        let again = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(of(read(&again)), Act::Other);
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(of(read(&refused)), Act::Refused { fd: 3 });
        let reaped = Event::Waitpid {
            pid: 4242,
            code: Some(0),
            signal: None,
        };
        assert_eq!(of(reaped), Act::Reaped { child: 4242 });
        let eintr = io::Error::from_raw_os_error(libc::EINTR);
        let accept_eintr = Event::Failed {
            step: Step::Accept,
            fd: Some(3),
            err: &eintr,
        };
        assert_eq!(of(accept_eintr), Act::Interrupted);
        assert_eq!(
            of(Event::Fork {
                child: 4242,
                in_child: false
            }),
            Act::Forked { child: 4242 }
        );
        assert_eq!(
            of(Event::Fork {
                child: 4242,
                in_child: true
            }),
            Act::InChild
        );
        assert_eq!(of(Event::Exit { code: 0 }), Act::Exit);
        let local = Event::BoundPort {
            fd: 3,
            addr: addr("127.0.0.1:5555"),
        };
        assert_eq!(of(local), Act::LocalPort { fd: 3, port: 5555 });
    }

    #[test]
    fn readiness_reports_name_the_descriptors_ready_to_read() {
        let sel = Event::Select {
            nfds: 9,
            read: &[3, 8],
            write: &[],
            timeout: None,
            readable: &[8],
            writable: &[],
        };
        assert_eq!(of(sel), Act::Ready { fds: vec![8] });
        let ready = [(
            5,
            Readiness {
                hangup: true,
                ..Readiness::default()
            },
        )];
        let wait = Event::EpollWait {
            epfd: 4,
            max: 64,
            timeout_ms: -1,
            ready: &ready,
        };
        assert_eq!(of(wait), Act::Ready { fds: vec![5] });
        let poll = Event::PollListener {
            fd: 3,
            timeout_ms: 100,
            ready: true,
        };
        assert_eq!(of(poll), Act::Ready { fds: vec![3] });
    }
}
