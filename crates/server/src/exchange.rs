//! One TCP exchange on a blocking socket, as the iterative and thread-per-client models
//! (and `--once`) run it: greet, or read a request and reply; then close.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use hello_proto::sock::{fail_within, peer_gone, send_more};
use hello_proto::trace::{Event, Tracer};
use hello_proto::wire::{Exchange, Progress, Service};
use hello_proto::{Error, Step};
use socket2::SockRef;

/// How long, and how many bytes, the server keeps reading after its reply so that
/// `close()` does not meet unread input and reset the connection before the peer has
/// read the reply.
pub const DRAIN_TIME: Duration = Duration::from_millis(500);
/// See [`DRAIN_TIME`].
pub const DRAIN_BYTES: usize = 64 * 1024;

/// A write this small always fits an idle socket's send buffer, so it cannot block and
/// needs no write timeout (which would cost a `setsockopt()` per connection).
const NEVER_BLOCKS: usize = 4096;

/// Serves one accepted connection to the end and closes it. `idle` bounds every wait on
/// the peer. Errors name the failing call and the peer.
pub fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: &Service,
    idle: Duration,
    tracer: &Tracer,
) -> Result<(), Error> {
    let fd = stream.as_raw_fd();
    let result = match service.start() {
        Exchange::Greet(bytes) => {
            if bytes.len() > NEVER_BLOCKS {
                set_timeouts(&stream, idle, peer)?;
            }
            write_all(&mut stream, bytes, peer, idle, tracer).and_then(|()| {
                // Half-close first, so the client has the whole greeting and its end before
                // the check; then drain only if the client sent something.
                if shutdown_write(&stream, peer, tracer)? && input_waiting(fd, tracer) {
                    drain(&mut stream, &mut [0u8; 8192], tracer);
                }
                Ok(())
            })
        }
        Exchange::Read(mut request) => {
            set_timeouts(&stream, idle, peer)?;
            echo(&mut stream, &mut request, peer, idle, tracer)
        }
    };
    drop(stream);
    if tracer.on() {
        tracer.emit(Event::Close { fd });
    }
    result
}

fn set_timeouts(stream: &TcpStream, idle: Duration, peer: SocketAddr) -> Result<(), Error> {
    stream
        .set_read_timeout(Some(idle))
        .and_then(|()| stream.set_write_timeout(Some(idle)))
        .map_err(|e| Error::new(Step::Setsockopt, peer, e))
}

fn echo(
    stream: &mut TcpStream,
    request: &mut hello_proto::wire::EchoRequest,
    peer: SocketAddr,
    idle: Duration,
    tracer: &Tracer,
) -> Result<(), Error> {
    let mut buf = [0u8; 8192];
    let mut saw_eof = false;
    let reply = loop {
        let n = read(stream, &mut buf, peer, idle, tracer)?;
        let progress = if n == 0 {
            saw_eof = true;
            request.finish()
        } else {
            request.feed(&buf[..n])
        };
        match progress {
            Progress::NeedMore => continue,
            Progress::Reply(r) | Progress::TooLong(r) => break r,
            // `feed` only says Done after a reply, and the loop ends at the reply.
            Progress::Done => return Ok(()),
        }
    };
    write_all(stream, &reply, peer, idle, tracer)?;
    if shutdown_write(stream, peer, tracer)? && !saw_eof {
        drain(stream, &mut buf, tracer);
    }
    Ok(())
}

/// `recv(fd, MSG_DONTWAIT)` once, after the greeting and the half-close: the hello
/// service never reads, so this is how it learns whether the client sent anything
/// (`echo hi | nc`) that must be read away before `close()`, which would otherwise send
/// RST and could destroy the greeting. One system call per connection, and no drain
/// for the usual silent client. A client that half-closed (0) or a failed call leaves
/// nothing to read.
pub(crate) fn input_waiting(fd: RawFd, tracer: &Tracer) -> bool {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call, and
    // recv(2) writes at most that many.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    match usize::try_from(n) {
        Ok(n) => {
            if tracer.on() {
                tracer.emit(Event::Unread {
                    fd,
                    data: Some(&buf[..n]),
                });
            }
            n > 0
        }
        Err(_) => {
            let err = io::Error::last_os_error();
            if tracer.on() {
                if err.kind() == io::ErrorKind::WouldBlock {
                    tracer.emit(Event::Unread { fd, data: None });
                } else {
                    tracer.emit(Event::Failed {
                        step: Step::Read,
                        fd: Some(fd),
                        err: &err,
                    });
                }
            }
            false
        }
    }
}

/// `read(2)` once, traced; a timeout is reported as the idle timeout.
fn read(
    stream: &mut TcpStream,
    buf: &mut [u8],
    peer: SocketAddr,
    idle: Duration,
    tracer: &Tracer,
) -> Result<usize, Error> {
    loop {
        match stream.read(buf) {
            Ok(n) => {
                if tracer.on() {
                    tracer.emit(Event::Read {
                        fd: stream.as_raw_fd(),
                        data: &buf[..n],
                    });
                }
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(fail_within(
                    tracer,
                    Step::Read,
                    stream.as_raw_fd(),
                    &peer,
                    e,
                    idle,
                ));
            }
        }
    }
}

/// [`send_more`] until every byte is sent, traced call by call. The caller half-closes
/// right after, which sends the held tail together with the FIN.
pub(crate) fn write_all(
    stream: &mut TcpStream,
    mut bytes: &[u8],
    peer: SocketAddr,
    idle: Duration,
    tracer: &Tracer,
) -> Result<(), Error> {
    while !bytes.is_empty() {
        let err = match send_more(stream, bytes, tracer) {
            Ok(0) => io::Error::from(io::ErrorKind::WriteZero),
            Ok(n) => {
                bytes = &bytes[n..];
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => e,
        };
        let fd = stream.as_raw_fd();
        return Err(fail_within(tracer, Step::Write, fd, &peer, err, idle));
    }
    Ok(())
}

/// `shutdown(SHUT_WR)`: the reply is complete, the peer sees end of stream. Returns
/// whether the connection is still there to drain: a peer that already closed or reset it
/// (a client that hung up without waiting for the reply) is not an error worth a line.
pub(crate) fn shutdown_write<S: AsFd + AsRawFd>(
    stream: &S,
    peer: SocketAddr,
    tracer: &Tracer,
) -> Result<bool, Error> {
    let fd = stream.as_raw_fd();
    match SockRef::from(stream).shutdown(Shutdown::Write) {
        Ok(()) => {
            if tracer.on() {
                tracer.emit(Event::ShutdownWrite { fd });
            }
            Ok(true)
        }
        Err(e) => {
            if tracer.on() {
                tracer.emit(Event::Failed {
                    step: Step::Shutdown,
                    fd: Some(fd),
                    err: &e,
                });
            }
            if peer_gone(&e) {
                Ok(false)
            } else {
                Err(Error::new(Step::Shutdown, peer, e))
            }
        }
    }
}

/// Reads and discards what the peer still sends, until it closes, [`DRAIN_TIME`] passes
/// or [`DRAIN_BYTES`] arrive. Failures here only end the drain.
fn drain(stream: &mut TcpStream, buf: &mut [u8], tracer: &Tracer) {
    let until = Instant::now() + DRAIN_TIME;
    let mut left = DRAIN_BYTES;
    while left > 0 {
        let now = Instant::now();
        if now >= until || stream.set_read_timeout(Some(until - now)).is_err() {
            return;
        }
        match stream.read(buf) {
            Ok(n) => {
                if tracer.on() {
                    tracer.emit(Event::Read {
                        fd: stream.as_raw_fd(),
                        data: &buf[..n],
                    });
                }
                if n == 0 {
                    return;
                }
                left = left.saturating_sub(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}
