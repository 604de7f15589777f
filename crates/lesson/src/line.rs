//! One `--trace` line taken apart (docs/contract.md#the-trace): when the call was made,
//! how long it took, which process made it, the call, the textbook mark and the
//! explanation; and what the call did to a connection, as far as the timeline needs to
//! know (bytes sent or received, a FIN, a connect, an accept, a datagram).
//!
//! Pure: text in, values out.

/// One traced call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// When the call was made: microseconds since midnight (UTC), as both programs stamp.
    pub start: u64,
    /// How long it took, in microseconds.
    pub took: u64,
    /// `server`, `client`, or a fork model child's `server[4242]`.
    pub who: String,
    /// The call as C would spell it, with its result.
    pub call: String,
    /// Whether the textbook's program makes this call.
    pub textbook: bool,
    /// The explanation, without the mark.
    pub explanation: String,
}

impl Call {
    /// When the call returned.
    pub fn end(&self) -> u64 {
        self.start + self.took
    }

    /// The call's name: `read`, `epoll_wait`.
    pub fn name(&self) -> &str {
        self.call.split(['(', ' ', ':']).next().unwrap_or_default()
    }

    /// What the call did, for the timeline.
    pub fn act(&self) -> Act {
        act(&self.call)
    }
}

/// `03:41:07.123456` as microseconds since midnight.
fn time_of_day(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() != 15 || b[2] != b':' || b[5] != b':' || b[8] != b'.' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<u64>().ok();
    let (h, m, s, us) = (num(0..2)?, num(3..5)?, num(6..8)?, num(9..15)?);
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + us)
}

/// Takes a trace line apart; `None` for anything else (an error line, the count line of
/// `--trace textbook`).
pub fn parse(line: &str) -> Option<Call> {
    let start = time_of_day(line.get(..15)?)?;
    let rest = line.get(15..)?.strip_prefix(" +")?;
    let (took, rest) = rest.split_once("µs ")?;
    let took = took.parse().ok()?;
    let (who, rest) = rest.split_once("  ")?;
    let (call, note) = rest.rsplit_once("  # ")?;
    let (textbook, explanation) = if let Some(e) = note.strip_prefix("[textbook] ") {
        (true, e)
    } else if let Some(e) = note.strip_prefix("[교재] ") {
        (true, e)
    } else if let Some(e) = note.strip_prefix("[added] ") {
        (false, e)
    } else {
        (false, note.strip_prefix("[추가] ")?)
    };
    Some(Call {
        start,
        took,
        who: who.to_string(),
        call: call.to_string(),
        textbook,
        explanation: explanation.to_string(),
    })
}

/// Every trace line of a program's stderr.
pub fn parse_all(text: &str) -> Vec<Call> {
    text.lines().filter_map(parse).collect()
}

/// What a call did, as far as what crosses between the programs goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// `accept() = fd, peer addr`.
    Accept {
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
    /// `fork()` returned in the parent.
    Forked,
    /// Anything else: no effect on the other program.
    Other,
}

/// The call's arguments (inside its parentheses, quoted data skipped over) and what
/// follows ` = `, if the call returned a value.
fn split_call(call: &str) -> Option<(&str, &str, &str)> {
    let open = call.find('(')?;
    let name = &call[..open];
    let bytes = call.as_bytes();
    let (mut i, mut quoted, mut depth) = (open + 1, false, 1);
    while i < bytes.len() {
        match (quoted, bytes[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => quoted = false,
            (false, b'"') => quoted = true,
            (false, b'(') => depth += 1,
            (false, b')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let args = call.get(open + 1..i)?;
    let result = call.get(i + 1..)?.strip_prefix(" = ").unwrap_or("");
    Some((name, args, result))
}

/// The port at the end of `a.b.c.d:PORT` or `[v6]:PORT`.
fn port_of(addr: &str) -> Option<u16> {
    addr.trim().rsplit_once(':')?.1.parse().ok()
}

/// The leading number of a result: `13 "Hello"` → 13.
fn leading_number(s: &str) -> Option<i64> {
    let end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().ok()
}

/// What a call (as the trace spells it) did.
pub fn act(call: &str) -> Act {
    let Some((name, args, result)) = split_call(call) else {
        return Act::Other;
    };
    let fd = || leading_number(args.trim()).and_then(|n| i32::try_from(n).ok());
    let count = || leading_number(result).and_then(|n| u64::try_from(n).ok());
    if result.starts_with("-1") {
        let io = matches!(name, "read" | "recv" | "write" | "send");
        return match (io, result.contains("ECONNRESET"), fd()) {
            (true, true, Some(fd)) => Act::Reset { fd },
            _ => Act::Other,
        };
    }
    let got = || -> Option<Act> {
        Some(match name {
            "socket" => Act::Socket {
                fd: i32::try_from(leading_number(result)?).ok()?,
                udp: args.contains("SOCK_DGRAM"),
            },
            "bind" => Act::Bind {
                fd: fd()?,
                port: port_of(args.split_once(", ")?.1).filter(|p| *p != 0)?,
            },
            "connect" if !args.contains("AF_UNSPEC") => Act::Connect {
                fd: fd()?,
                port: port_of(args.split_once(", ")?.1)?,
            },
            "getsockname" => Act::LocalPort {
                fd: fd()?,
                port: port_of(result)?,
            },
            "accept" => {
                let (new, peer) = result.split_once(", peer ")?;
                Act::Accept {
                    fd: i32::try_from(leading_number(new)?).ok()?,
                    peer: port_of(peer)?,
                }
            }
            "write" | "send" => Act::Send {
                fd: fd()?,
                n: count()?,
            },
            "read" | "recv" => match count()? {
                0 => Act::Eof { fd: fd()? },
                n => Act::Receive { fd: fd()?, n },
            },
            "shutdown" => Act::Shutdown { fd: fd()? },
            "close" => Act::Close { fd: fd()? },
            "setsockopt" if args.contains("SO_LINGER") => Act::Linger0 { fd: fd()? },
            "sendto" => {
                let (_, to) = args.rsplit_once(", ")?;
                Act::SendTo {
                    fd: fd()?,
                    port: port_of(to)?,
                    n: count()?,
                }
            }
            "recvfrom" => {
                let (_, from) = result.rsplit_once(", from ")?;
                Act::RecvFrom {
                    fd: fd()?,
                    port: port_of(from)?,
                    n: count()?,
                }
            }
            "fork" if !result.contains("in child") => Act::Forked,
            _ => Act::Other,
        })
    };
    got().unwrap_or(Act::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_comes_apart() {
        let c = parse("03:41:07.123456 +52µs server[4242]  read(8) = 6 \"a) = 9\\\"\"  # [교재] 데이터 수신")
            .unwrap();
        assert_eq!(c.start, ((3 * 60 + 41) * 60 + 7) * 1_000_000 + 123_456);
        assert_eq!((c.took, c.who.as_str(), c.textbook), (52, "server[4242]", true));
        assert_eq!(c.call, "read(8) = 6 \"a) = 9\\\"\"");
        assert_eq!(c.explanation, "데이터 수신");
        assert_eq!(c.act(), Act::Receive { fd: 8, n: 6 });
        assert_eq!(c.end(), c.start + 52);
        assert!(parse("hello-client: connect() error: 127.0.0.1:1: refused").is_none());
        assert!(parse("server: 3 calls beyond the textbook not shown: recv ×1").is_none());
    }

    #[test]
    fn calls_say_what_they_did() {
        assert_eq!(
            act("socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP) = 3"),
            Act::Socket { fd: 3, udp: true }
        );
        assert_eq!(act("bind(3, 127.0.0.1:0) = 0"), Act::Other);
        assert_eq!(
            act("bind(3, 127.0.0.1:9190) = 0"),
            Act::Bind { fd: 3, port: 9190 }
        );
        assert_eq!(
            act("connect(3, [::1]:9190) = 0"),
            Act::Connect { fd: 3, port: 9190 }
        );
        assert_eq!(
            act("connect(3, 127.0.0.1:9190) = -1 ECONNREFUSED (x)"),
            Act::Other
        );
        assert_eq!(
            act("accept(3) = 8, peer 127.0.0.1:37288"),
            Act::Accept { fd: 8, peer: 37288 }
        );
        assert_eq!(act("accept(3) = -1 EAGAIN"), Act::Other);
        assert_eq!(
            act("send(8, \"Hello World!\\0\", MSG_MORE) = 13"),
            Act::Send { fd: 8, n: 13 }
        );
        assert_eq!(act("recv(8, MSG_DONTWAIT) = 0"), Act::Eof { fd: 8 });
        assert_eq!(act("read(3) = 0"), Act::Eof { fd: 3 });
        assert_eq!(act("shutdown(8, SHUT_WR) = 0"), Act::Shutdown { fd: 8 });
        assert_eq!(
            act("sendto(3, \"x, y\", 127.0.0.1:9190) = 4"),
            Act::SendTo {
                fd: 3,
                port: 9190,
                n: 4
            }
        );
        assert_eq!(
            act("recvfrom(3) = 13 \"Hello, from 1:2\", from 127.0.0.1:9190"),
            Act::RecvFrom {
                fd: 3,
                port: 9190,
                n: 13
            }
        );
        assert_eq!(
            act("setsockopt(8, SOL_SOCKET, SO_LINGER, {1, 0}) = 0"),
            Act::Linger0 { fd: 8 }
        );
        assert_eq!(
            act("read(3) = -1 ECONNRESET (Connection reset by peer)"),
            Act::Reset { fd: 3 }
        );
        assert_eq!(
            act("read(3) = -1 EAGAIN (Resource temporarily unavailable)"),
            Act::Other
        );
        assert_eq!(act("fork() = 4242"), Act::Forked);
        assert_eq!(act("fork() = 0, in child 4242"), Act::Other);
        assert_eq!(
            act("getsockname(3) = 127.0.0.1:5555"),
            Act::LocalPort { fd: 3, port: 5555 }
        );
    }
}
