//! `--metrics ADDR:PORT`: the counters (`metrics`) as Prometheus's text exposition, at
//! `GET /metrics`, on a listening socket of its own. A second start-up line, `metrics on
//! ADDR:PORT`, gives its address.
//!
//! Hardened as the agent port is: a scrape is one short request, so each connection gets
//! at most [`REQUEST_LIMIT`] bytes of request head within [`REQUEST_TIME`], then one reply
//! (at most [`REPLY_TIME`] to send it) and a close. Garbage is a 400, a head too long a
//! 431, a client too slow a 408. A flood never touches the main port's threads, slots or
//! budget. Its calls are not traced (a scrape every second would bury the trace).
//!
//! Every model but fork serves it on a thread of its own ([`Exporter::spawn`]), which reads
//! up to [`AT_ONCE`] requests at once through an epoll set of its own: a crowd of silent
//! clients cannot keep a scrape out (read one at a time, twenty of them kept one waiting
//! 20 s), and one more past [`AT_ONCE`] makes room by closing the one that came first.
//! The fork model's parent may have no thread, so it takes each scrape on its loop's turn
//! and forks a child to answer it ([`Exporter::take_forking`]), a few at once: the
//! child's copy of the counters is the snapshot it sends.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hello_proto::sys::epoll::Epoll;
use hello_proto::sys::{self, Stream, Tracer};
use hello_proto::{Error, Step};

use crate::metrics;

/// Bytes of request head read before the client is told it is too long.
pub const REQUEST_LIMIT: usize = 8192;
/// How long a client has to send its request head.
pub const REQUEST_TIME: Duration = Duration::from_secs(1);
/// How long the reply may take to go out.
pub const REPLY_TIME: Duration = Duration::from_secs(1);
/// Requests the exporter's thread reads at once.
pub const AT_ONCE: usize = 64;

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

    /// Answers scrapes on a thread of its own, up to [`AT_ONCE`] at once, for as long as
    /// the process lives.
    pub fn spawn(self: Arc<Self>) -> Result<(), Error> {
        let local = self.local;
        let quiet = Tracer::off();
        let mut epoll =
            Epoll::new(AT_ONCE + 1, &quiet).map_err(|e| Error::new(Step::EpollCreate, local, e))?;
        sys::set_nonblocking(&self.listener, true, &quiet).map_err(|e| Error::new(Step::Fcntl, local, e))?;
        epoll
            .add(self.listener.as_raw_fd(), LISTENER, true, false)
            .map_err(|e| Error::new(Step::EpollCtl, local, e))?;
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&self.listener, epoll))
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

/// The epoll key of the listening socket; a request's is its place in the table, plus one.
const LISTENER: u64 = 0;

/// A connection whose request head is being read (by [`serve`]).
struct Reading {
    stream: Stream,
    head: Vec<u8>,
    until: Instant,
}

/// How long the thread waits before accepting again after an error (out of descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The exporter's thread: requests read as they come (edge-triggered), each answered once
/// its head is whole, each given [`REQUEST_TIME`]; for ever.
fn serve(listener: &TcpListener, mut epoll: Epoll) {
    let quiet = Tracer::off();
    let mut table: Vec<Option<Reading>> = (0..AT_ONCE).map(|_| None).collect();
    let mut accept_again = false;
    loop {
        let now = Instant::now();
        for slot in &mut table {
            if let Some(r) = slot.take_if(|r| r.until <= now) {
                finish(r.stream, &status("408 Request Timeout", ""));
            }
        }
        let next = table.iter().flatten().map(|r| r.until).min();
        let mut timeout = next.map(|t| t.saturating_duration_since(now));
        if accept_again {
            timeout = Some(timeout.map_or(ACCEPT_RETRY, |t| t.min(ACCEPT_RETRY)));
        }
        let keys: Vec<u64> = match epoll.wait(timeout) {
            Ok(ready) => ready.iter().map(|r| r.key).collect(),
            Err(_) => {
                std::thread::sleep(ACCEPT_RETRY);
                continue;
            }
        };
        if accept_again || keys.contains(&LISTENER) {
            accept_again = take(listener, &mut epoll, &mut table, &quiet);
        }
        for key in keys.into_iter().filter(|&k| k != LISTENER) {
            let at = usize::try_from(key - 1).unwrap_or(usize::MAX);
            if let Some(slot) = table.get_mut(at) {
                read_more(slot);
            }
        }
    }
}

/// Accepts every connection waiting, each into a free place of `table` (the one that came
/// first is closed to make room when none is). Whether to try again soon (an accept
/// failed for another reason than an empty queue: out of descriptors).
fn take(listener: &TcpListener, epoll: &mut Epoll, table: &mut [Option<Reading>], quiet: &Tracer) -> bool {
    loop {
        let stream = match sys::accept(listener, true, quiet) {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        };
        let at = match table.iter().position(Option::is_none) {
            Some(at) => at,
            None => {
                let oldest = (0..table.len())
                    .min_by_key(|&i| table[i].as_ref().map(|r| r.until))
                    .unwrap_or(0);
                if let Some(r) = table[oldest].take() {
                    finish(
                        r.stream,
                        &status("503 Service Unavailable", "too many requests at once\n"),
                    );
                }
                oldest
            }
        };
        let key = u64::try_from(at).unwrap_or(u64::MAX).saturating_add(1);
        if epoll.add(stream.fd(), key, true, false).is_err() {
            stream.close();
            continue;
        }
        table[at] = Some(Reading {
            stream,
            head: Vec::new(),
            until: Instant::now() + REQUEST_TIME,
        });
    }
}

/// Reads what has arrived of `slot`'s request; answers and empties `slot` once the head
/// is whole or too long, or the client has gone.
fn read_more(slot: &mut Option<Reading>) {
    let Some(r) = slot else {
        return;
    };
    let mut chunk = [0u8; 2048];
    let answer = loop {
        if head_end(&r.head).is_some() {
            break Some(reply(Ok(parse(&r.head))));
        }
        if r.head.len() >= REQUEST_LIMIT {
            break Some(reply(Err("431 Request Header Fields Too Large")));
        }
        let room = (REQUEST_LIMIT - r.head.len()).min(chunk.len());
        match r.stream.read(&mut chunk[..room]) {
            Ok(0) => break None,
            Ok(n) => r.head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break None,
        }
    };
    if let Some(r) = slot.take() {
        match answer {
            Some(text) => finish(r.stream, &text),
            None => r.stream.close(),
        }
    }
}

/// In a fork model child: reads one request head within the limits on a blocking socket,
/// answers it, closes.
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
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break Err("408 Request Timeout"),
        }
    };
    finish(stream, &reply(asked));
}

/// The whole response to a request read as `asked` (or the status line of why it was not).
fn reply(asked: Result<Asked, &str>) -> String {
    match asked {
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
    }
}

/// Sends `reply` within [`REPLY_TIME`] and closes; a reply cut short (a socket that
/// would block: a few KiB always fit an idle one's buffer) ends in RST, never a FIN.
fn finish(stream: Stream, reply: &str) {
    let _ = stream.set_write_timeout(Some(REPLY_TIME));
    let mut sent = 0;
    let bytes = reply.as_bytes();
    let until = Instant::now() + REPLY_TIME;
    while sent < bytes.len() && Instant::now() < until {
        match stream.send(&bytes[sent..], false) {
            Ok(n) if n > 0 => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    if sent == bytes.len() {
        let _ = stream.shutdown_write();
        stream.close();
    } else {
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

    #[test]
    fn one_more_than_at_once_closes_the_oldest_and_a_scrape_still_gets_in() {
        use std::io::{Read, Write};
        use std::net::TcpStream;
        let exporter = Arc::new(Exporter::bind("127.0.0.1:0".parse().unwrap(), 128).unwrap());
        let addr = exporter.local();
        exporter.spawn().unwrap();
        let read_all = |mut s: TcpStream| {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        };
        let first = TcpStream::connect(addr).unwrap();
        // Taken in order: the first is in the table before the others come.
        std::thread::sleep(Duration::from_millis(50));
        let rest: Vec<TcpStream> = (0..AT_ONCE).map(|_| TcpStream::connect(addr).unwrap()).collect();
        assert!(read_all(first).starts_with("HTTP/1.1 503 "));
        let mut scrape = TcpStream::connect(addr).unwrap();
        scrape.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let t0 = Instant::now();
        assert!(read_all(scrape).starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(t0.elapsed() < REQUEST_TIME, "{:?}", t0.elapsed());
        drop(rest);
    }
}
