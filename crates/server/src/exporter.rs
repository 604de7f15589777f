//! `--metrics ADDR:PORT`: the counters (`metrics`) as Prometheus's text exposition, at
//! `GET /metrics`, on a listening socket of its own. A second start-up line, `metrics on
//! ADDR:PORT`, gives its address.
//!
//! Hardened as the agent port is: a scrape is one short request, so each connection gets
//! at most [`REQUEST_LIMIT`] bytes of request head within [`REQUEST_TIME`], then one reply
//! (at most [`REPLY_TIME`] to send it) and a close. Garbage is a 400, a head too long a
//! 431, a client too slow is closed; one connection at a time, so a flood waits in the
//! exporter's own backlog and never touches the main port's threads, slots or budget.
//! Its calls are not traced (a scrape every second would bury the trace).
//!
//! The threaded models serve it on a thread of its own ([`Exporter::spawn`]); the fork
//! model's parent may have no thread, so it takes each scrape on its loop's turn and
//! forks a child to answer it ([`Exporter::take_forking`]): the child's copy of the
//! counters is the snapshot it sends.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hello_proto::sys::{self, Stream, Tracer};
use hello_proto::{Error, Step};

use crate::metrics;

/// Bytes of request head read before the client is told it is too long.
pub const REQUEST_LIMIT: usize = 8192;
/// How long a client has to send its request head.
pub const REQUEST_TIME: Duration = Duration::from_secs(1);
/// How long the reply may take to go out.
pub const REPLY_TIME: Duration = Duration::from_secs(1);

/// The metrics listener and what the exposition says about the server.
#[derive(Debug)]
pub struct Exporter {
    listener: TcpListener,
    local: SocketAddr,
}

impl Exporter {
    /// Binds `addr` and listens with `backlog`.
    pub fn bind(addr: SocketAddr, backlog: i32) -> Result<Exporter, Error> {
        let listener = sys::listen_tcp(addr, backlog, &Tracer::off())?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::new(Step::Getsockname, addr, e))?;
        Ok(Exporter { listener, local })
    }

    /// The address the metrics are served on.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Answers scrapes on a thread of its own, one at a time, for as long as the process
    /// lives.
    pub fn spawn(self: Arc<Self>) -> Result<(), Error> {
        let local = self.local;
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let quiet = Tracer::off();
                loop {
                    match sys::accept(&self.listener, false, &quiet) {
                        Ok((stream, _)) => answer(stream),
                        // Out of descriptors, or a connection that died in the queue.
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
            .map(|_| ())
            .map_err(|e| Error::new(Step::Spawn, local, e))
    }

    /// Makes the listener non-blocking, for [`Exporter::take_forking`].
    pub fn for_forking(&self) -> Result<(), Error> {
        sys::set_nonblocking(&self.listener, true, &Tracer::off())
            .map_err(|e| Error::new(Step::Fcntl, self.local, e))
    }

    /// The fork model's parent, on its loop's turn: takes a waiting scrape, if any, and
    /// returns it to be answered in a child ([`Exporter::answer_in_child`]).
    pub fn take_forking(&self) -> Option<Stream> {
        sys::accept(&self.listener, false, &Tracer::off())
            .ok()
            .map(|(stream, _)| stream)
    }

    /// In a fork model child: answers `stream` from this process's copy of the counters.
    pub fn answer_in_child(&self, stream: Stream) {
        answer(stream);
    }
}

/// What the request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    /// `GET /metrics` (or `HEAD`: the same head, no body).
    Metrics { head_only: bool },
    /// Another path.
    NotFound,
    /// Another method.
    Method,
    /// Not an HTTP request line.
    Garbage,
}

/// The request line's meaning. Pure.
fn parse(head: &[u8]) -> Asked {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next()) else {
        return Asked::Garbage;
    };
    if words.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Asked::Garbage;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => Asked::Metrics {
            head_only: method == "HEAD",
        },
        ("GET" | "HEAD", _) => Asked::NotFound,
        _ => Asked::Method,
    }
}

/// Where a request's head ends (after its blank line), if it has.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|at| at + 2))
}

/// Reads one request head within the limits, answers it, closes.
fn answer(stream: Stream) {
    let until = Instant::now() + REQUEST_TIME;
    let mut buf = vec![0u8; REQUEST_LIMIT];
    let mut got = 0;
    let asked = loop {
        if head_end(&buf[..got]).is_some() {
            break Ok(parse(&buf[..got]));
        }
        if got == buf.len() {
            break Err("431 Request Header Fields Too Large");
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break Err("408 Request Timeout");
        }
        match stream.read(&mut buf[got..]) {
            Ok(0) => return stream.close(),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break Err("408 Request Timeout"),
        }
    };
    let reply = match asked {
        Ok(Asked::Metrics { head_only }) => {
            let body = metrics::snapshot().exposition(&metrics::labels());
            let mut reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if !head_only {
                reply.push_str(&body);
            }
            reply
        }
        Ok(Asked::NotFound) => status("404 Not Found", "the metrics are at /metrics\n"),
        Ok(Asked::Method) => status("405 Method Not Allowed", "GET /metrics\n"),
        Ok(Asked::Garbage) => status("400 Bad Request", "not an HTTP/1 request\n"),
        Err(line) => status(line, ""),
    };
    let _ = stream.set_write_timeout(Some(REPLY_TIME));
    let mut sent = 0;
    let bytes = reply.as_bytes();
    let until = Instant::now() + REPLY_TIME;
    while sent < bytes.len() && Instant::now() < until {
        match stream.send(&bytes[sent..], false) {
            Ok(n) if n > 0 => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    if sent == bytes.len() {
        let _ = stream.shutdown_write();
        stream.close();
    } else {
        // A reply cut short ends in RST, never a FIN (as every exchange's).
        stream.abort();
    }
}

/// A reply with no metrics: the status line and a short text.
fn status(line: &str, text: &str) -> String {
    format!(
        "HTTP/1.1 {line}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_by_their_line() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Asked::Metrics { head_only: false }
        );
        assert_eq!(
            parse(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Asked::Metrics { head_only: true }
        );
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Asked::NotFound);
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Asked::Method);
        assert_eq!(parse(b"\x16\x03\x01garbage\n\n"), Asked::Garbage);
        assert_eq!(parse(b"GET /metrics\r\n\r\n"), Asked::Garbage);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
