//! hello-client as a library: one exchange with a server, over TCP or UDP, returning the
//! reply's raw bytes.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190      # Message from server: Hello World!
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use hello_proto::addr::Host;
use hello_proto::sock;
use hello_proto::trace::{Event, Tracer};
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
    /// Bound on connecting, and again on reading the whole reply.
    pub timeout: Duration,
    /// Bound on the reply's size.
    pub max_reply: usize,
    /// Where socket calls are narrated.
    pub tracer: Tracer,
}

impl Request {
    /// A plain hello request with the defaults of SPEC §1.
    pub fn new(host: Host, port: u16) -> Request {
        Request {
            host,
            port,
            message: None,
            udp: false,
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
    let addrs = req.host.resolve(req.port)?;
    if req.udp {
        udp_exchange(req, &addrs)
    } else {
        tcp_exchange(req, &addrs)
    }
}

/// Tries each address in turn, as `nc` does, and keeps the first connection made.
fn connect(req: &Request, addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), Error> {
    let mut last = None;
    for &addr in addrs {
        match sock::connect_tcp(addr, req.timeout, &req.tracer) {
            Ok(s) => return Ok((s, addr)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::new(Step::Resolve, req.host.with_port(req.port), Cause::NoAddress)))
}

fn tcp_exchange(req: &Request, addrs: &[SocketAddr]) -> Result<Vec<u8>, Error> {
    let (mut stream, addr) = connect(req, addrs)?;
    let fd = stream.as_raw_fd();
    let tracer = &req.tracer;
    let deadline = Instant::now() + req.timeout;
    let fail = |step, e| sock::fail_within(tracer, step, fd, &addr, e, req.timeout);
    // A server may answer and close before it reads the message (the hello service
    // never reads): a send that fails because the peer is gone ends the sending, and the
    // reply is still read. The failure is reported only if no reply came.
    let mut send_failure = None;
    if req.message.is_some() {
        let payload = req.payload();
        let mut rest = &payload[..];
        while !rest.is_empty() {
            set_timeout(&stream, deadline, |s, t| s.set_write_timeout(t))
                .map_err(|e| fail(Step::Write, e))?;
            match stream.write(rest) {
                Ok(0) => return Err(fail(Step::Write, io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    if tracer.on() {
                        tracer.emit(Event::Write { fd, data: &rest[..n] });
                    }
                    rest = &rest[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if sock::peer_gone(&e) => {
                    send_failure = Some(fail(Step::Write, e));
                    break;
                }
                Err(e) => return Err(fail(Step::Write, e)),
            }
        }
        // Half-close: the server sees end of stream, and can still answer.
        if send_failure.is_none() {
            match stream.shutdown(Shutdown::Write) {
                Ok(()) => {
                    if tracer.on() {
                        tracer.emit(Event::ShutdownWrite { fd });
                    }
                }
                Err(e) if sock::peer_gone(&e) => send_failure = Some(fail(Step::Shutdown, e)),
                Err(e) => return Err(fail(Step::Shutdown, e)),
            }
        }
    }
    // TCP has no message boundaries: read until end of stream.
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        set_timeout(&stream, deadline, |s, t| s.set_read_timeout(t)).map_err(|e| fail(Step::Read, e))?;
        match stream.read(&mut buf) {
            Ok(n) => {
                if tracer.on() {
                    tracer.emit(Event::Read { fd, data: &buf[..n] });
                }
                if n == 0 {
                    break;
                }
                if reply.len() + n > req.max_reply {
                    return Err(Error::new(Step::Read, addr, Cause::TooLong(req.max_reply)));
                }
                reply.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A server that closes with our message unread makes its kernel send RST
            // instead of FIN. A reply that already ends with its terminator is whole.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && ends_complete(&reply) => {
                // Traced like any failed call, but not an error for the user.
                let _traced = fail(Step::Read, e);
                break;
            }
            Err(e) => return Err(send_failure.unwrap_or_else(|| fail(Step::Read, e))),
        }
    }
    drop(stream);
    if tracer.on() {
        tracer.emit(Event::Close { fd });
    }
    if reply.is_empty() {
        return Err(send_failure.unwrap_or_else(|| Error::new(Step::Read, addr, Cause::ClosedEarly)));
    }
    Ok(reply)
}

/// Whether a reply ends with the terminator of its wire format (NUL, or LF for an
/// LF-terminated echo): then a reset after it cannot have cut it short.
fn ends_complete(reply: &[u8]) -> bool {
    matches!(reply.last(), Some(0 | b'\n'))
}

/// Sets a socket timeout to what is left until `deadline`; a passed deadline is a timeout.
fn set_timeout(
    stream: &TcpStream,
    deadline: Instant,
    set: impl Fn(&TcpStream, Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    set(stream, Some(left))
}

fn udp_exchange(req: &Request, addrs: &[SocketAddr]) -> Result<Vec<u8>, Error> {
    // A datagram has no handshake to tell a dead address from a live one: use the first.
    let addr = addrs[0];
    let socket: UdpSocket = sock::connect_udp(addr, &req.tracer)?;
    let fd = socket.as_raw_fd();
    let tracer = &req.tracer;
    let fail = |step, e| sock::fail_within(tracer, step, fd, &addr, e, req.timeout);
    let payload = req.payload();
    // sendto() with the address, as the textbook UDP client does (and as traced); on the
    // connected socket it goes to the same server.
    let sent = socket
        .send_to(&payload, addr)
        .map_err(|e| fail(Step::Sendto, e))?;
    if tracer.on() {
        tracer.emit(Event::SendTo {
            fd,
            peer: addr,
            data: &payload[..sent],
        });
    }
    let deadline = Instant::now() + req.timeout;
    let mut buf = vec![0u8; 65536];
    let reply = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail(Step::Recvfrom, io::ErrorKind::TimedOut.into()));
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| fail(Step::Recvfrom, e))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if tracer.on() {
                    tracer.emit(Event::RecvFrom {
                        fd,
                        peer: from,
                        data: &buf[..n],
                    });
                }
                break buf[..n].to_vec();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(Step::Recvfrom, e)),
        }
    };
    drop(socket);
    if tracer.on() {
        tracer.emit(Event::Close { fd });
    }
    if reply.len() > req.max_reply {
        return Err(Error::new(Step::Recvfrom, addr, Cause::TooLong(req.max_reply)));
    }
    Ok(reply)
}
