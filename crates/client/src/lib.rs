//! hello-client as a library: one exchange with a server, over TCP or UDP, returning the
//! reply's raw bytes.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190      # Message from server: Hello World!
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hello_proto::addr::Host;
use hello_proto::conn::peer_gone;
use hello_proto::sys::{self, Dgram, Stream, Tracer};
use hello_proto::{Cause, Error, Step};

/// Default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on a reply (`--max-reply`).
pub const DEFAULT_MAX_REPLY: usize = 1024 * 1024;

/// One exchange to make.
#[derive(Debug, Clone)]
pub struct Request {
    /// The server.
    pub host: Host,
    /// Its port.
    pub port: u16,
    /// Text to send (with a NUL); `None` just reads (over UDP: sends an empty datagram).
    pub message: Option<String>,
    /// Datagram instead of stream.
    pub udp: bool,
    /// With `udp`: the textbook's first UDP client, with no `connect()` (its address comes
    /// at the first `sendto()`, and a datagram from anyone is taken as the reply).
    pub unconnected: bool,
    /// Bound on connecting, and again on reading the whole reply.
    pub timeout: Duration,
    /// Bound on the reply's size.
    pub max_reply: usize,
    /// Where socket calls are narrated.
    pub tracer: Tracer,
}

impl Request {
    /// A plain hello request with the documented defaults
    /// (docs/contract.md#client-options).
    pub fn new(host: Host, port: u16) -> Request {
        Request {
            host,
            port,
            message: None,
            udp: false,
            unconnected: false,
            timeout: DEFAULT_TIMEOUT,
            max_reply: DEFAULT_MAX_REPLY,
            tracer: Tracer::off(),
        }
    }

    /// The bytes sent: the message and its NUL, as the textbook client writes a C string.
    fn payload(&self) -> Vec<u8> {
        match &self.message {
            Some(m) => {
                let mut v = m.clone().into_bytes();
                v.push(0);
                v
            }
            None => Vec::new(),
        }
    }
}

/// Makes the exchange and returns the reply's bytes exactly as received.
pub fn exchange(req: &Request) -> Result<Vec<u8>, Error> {
    let addrs = sys::resolve(&req.host, req.port)?;
    if req.udp {
        udp_exchange(req, &addrs)
    } else {
        tcp_exchange(req, &addrs)
    }
}

/// Tries each address in turn, as `nc` does, and keeps the first connection made.
fn connect(req: &Request, addrs: &[SocketAddr]) -> Result<(Stream, SocketAddr), Error> {
    let mut last = None;
    for &addr in addrs {
        match sys::connect_tcp(addr, req.timeout, &req.tracer) {
            Ok(s) => return Ok((s, addr)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::new(Step::Resolve, req.host.with_port(req.port), Cause::NoAddress)))
}

fn tcp_exchange(req: &Request, addrs: &[SocketAddr]) -> Result<Vec<u8>, Error> {
    let (stream, addr) = connect(req, addrs)?;
    let deadline = Instant::now() + req.timeout;
    let fail = |step, e| Error::new(step, addr, Cause::within(e, req.timeout));
    // A server may answer and close before it reads the message (the hello service
    // never reads): a send that fails because the peer is gone ends the sending, and the
    // reply is still read. The failure is reported only if no reply came.
    let send_failure = match &req.message {
        Some(_) => send_message(req, &stream, deadline)
            .map_err(|(step, e)| fail(step, e))?
            .map(|(step, e)| fail(step, e)),
        None => None,
    };
    let got = read_reply(req, &stream, deadline);
    stream.close();
    match got {
        Ok(reply) if req.message.is_some() => match cut_short(&reply) {
            Some((announced, received)) => Err(Error::new(
                Step::Read,
                addr,
                Cause::CutShort { announced, received },
            )),
            None if reply.is_empty() => {
                Err(send_failure.unwrap_or_else(|| Error::new(Step::Read, addr, Cause::ClosedEarly)))
            }
            None => Ok(reply),
        },
        Ok(reply) if !reply.is_empty() => Ok(reply),
        Ok(_) => Err(send_failure.unwrap_or_else(|| Error::new(Step::Read, addr, Cause::ClosedEarly))),
        Err(ReadFailure::Os(e)) => Err(send_failure.unwrap_or_else(|| fail(Step::Read, e))),
        Err(ReadFailure::TooLong) => Err(Error::new(Step::Read, addr, Cause::TooLong(req.max_reply))),
    }
}

/// Writes the message and its NUL, then half-closes (`shutdown(SHUT_WR)`): the server
/// sees end of stream and can still answer. `Ok(Some(_))`: the server is already gone,
/// which only matters if no reply comes.
fn send_message(
    req: &Request,
    stream: &Stream,
    deadline: Instant,
) -> Result<Option<(Step, io::Error)>, (Step, io::Error)> {
    let payload = req.payload();
    let mut rest = &payload[..];
    while !rest.is_empty() {
        set_timeout(deadline, |t| stream.set_write_timeout(t)).map_err(|e| (Step::Write, e))?;
        match stream.write(rest) {
            Ok(0) => return Err((Step::Write, io::ErrorKind::WriteZero.into())),
            Ok(n) => rest = &rest[n..],
            Err(e) if peer_gone(&e) => return Ok(Some((Step::Write, e))),
            Err(e) => return Err((Step::Write, e)),
        }
    }
    match stream.shutdown_write() {
        Ok(()) => Ok(None),
        Err(e) if peer_gone(&e) => Ok(Some((Step::Shutdown, e))),
        Err(e) => Err((Step::Shutdown, e)),
    }
}

enum ReadFailure {
    Os(io::Error),
    TooLong,
}

/// Reads until end of stream: TCP has no message boundaries.
fn read_reply(req: &Request, stream: &Stream, deadline: Instant) -> Result<Vec<u8>, ReadFailure> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        set_timeout(deadline, |t| stream.set_read_timeout(t)).map_err(ReadFailure::Os)?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(reply),
            Ok(n) if reply.len() + n > req.max_reply => return Err(ReadFailure::TooLong),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            // A reset is never taken for the end of a reply: the reply may be cut short
            // (docs/contract.md#what-the-client-prints).
            Err(e) => return Err(ReadFailure::Os(e)),
        }
    }
}

/// Sets a socket timeout to what is left until `deadline`; a passed deadline is a timeout.
fn set_timeout(deadline: Instant, set: impl Fn(Option<Duration>) -> io::Result<()>) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    set(Some(left))
}

fn udp_exchange(req: &Request, addrs: &[SocketAddr]) -> Result<Vec<u8>, Error> {
    // A datagram has no handshake to tell a dead address from a live one: use the first.
    let addr = addrs[0];
    let socket: Dgram = if req.unconnected {
        sys::unconnected_udp(addr, &req.tracer)?
    } else {
        sys::connect_udp(addr, &req.tracer)?
    };
    let fail = |step, e| Error::new(step, addr, Cause::within(e, req.timeout));
    // sendto() with the address, as the textbook UDP client does (and as traced); on the
    // connected socket it goes to the same server.
    socket
        .send_to(&req.payload(), addr)
        .map_err(|e| fail(Step::Sendto, e))?;
    let deadline = Instant::now() + req.timeout;
    let mut buf = vec![0u8; 65536];
    let got = loop {
        if let Err(e) = set_timeout(deadline, |t| socket.set_read_timeout(t)) {
            break Err(fail(Step::Recvfrom, e));
        }
        match socket.recv_from(&mut buf) {
            Ok(Some((n, _))) => break Ok(buf[..n].to_vec()),
            // Only a shutdown gives no sender, and nothing shuts this socket down.
            Ok(None) => {}
            Err(e) => break Err(fail(Step::Recvfrom, e)),
        }
    };
    socket.close();
    let reply = got?;
    if reply.len() > req.max_reply {
        return Err(Error::new(Step::Recvfrom, addr, Cause::TooLong(req.max_reply)));
    }
    Ok(reply)
}

/// An echo reply `"<len> : <msg>"` whose message is shorter than its `<len>`: the bytes
/// announced and received. A reply that ended early in a clean end of stream (a server
/// that gave up and closed) is told apart this way; anything not of that form is left
/// alone.
pub fn cut_short(reply: &[u8]) -> Option<(usize, usize)> {
    let digits = reply.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = reply[digits..].strip_prefix(b" : ")?;
    let announced: usize = std::str::from_utf8(&reply[..digits]).ok()?.parse().ok()?;
    let msg = match rest.last() {
        Some(0 | b'\n') => &rest[..rest.len() - 1],
        _ => rest,
    };
    (msg.len() < announced).then_some((announced, msg.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_reply_shorter_than_its_length_is_cut_short() {
        assert_eq!(cut_short(b"4000000 : yyy"), Some((4_000_000, 3)));
        assert_eq!(cut_short(b"5 : hel"), Some((5, 3)));
        assert_eq!(cut_short(b"5 : hello\0"), None);
        assert_eq!(cut_short(b"2 : hi\n"), None);
        assert_eq!(cut_short(b"0 : \0"), None);
        assert_eq!(cut_short(b"Hello World!\0"), None, "not an echo reply");
        assert_eq!(cut_short(b"error: message longer than 8 bytes\0"), None);
        assert_eq!(cut_short(b"99999999999999999999999 : x"), None, "no such length");
    }
}
